// Host test shim: stands in for BTstack's platform/posix/btstack_tlv_posix.h
// so that test/tlv_posix runs against the bond store (bondstore_tlv.h).  Same
// type and function names as BTstack's, so the suite compiles unchanged.
#ifndef BTSTACK_TLV_POSIX_H
#define BTSTACK_TLV_POSIX_H

#include <stdio.h>

#include "bondstore_tlv.h"

#if defined __cplusplus
extern "C" {
#endif

typedef struct {
    bondstore_tlv_t tlv; // first: the context the suite passes is this struct
    const char *db_path;
    // The suite fclose()s this before reopening: a stand-in handle
    // (/dev/null); the store opens and closes its file per operation.
    FILE *file;
} btstack_tlv_posix_t;

// Bind context to the bond file at db_path and load it.
const btstack_tlv_t *btstack_tlv_posix_init_instance(btstack_tlv_posix_t *context, const char *db_path);

// Nothing to free (the store allocates nothing).
void btstack_tlv_posix_deinit(btstack_tlv_posix_t *self);

#if defined __cplusplus
}
#endif

#endif
