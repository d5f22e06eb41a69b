// Host test shim: stands in for BTstack's platform/embedded/btstack_tlv_flash_bank.h
// so that test/flash_tlv and test/le_device_db_tlv run against the bond store
// (bondstore_tlv.h).  Same type and function names as BTstack's.
#ifndef BTSTACK_TLV_FLASH_BANK_H
#define BTSTACK_TLV_FLASH_BANK_H

#include <stdint.h>

#include "bondstore_tlv.h"
#include "hal_flash_bank.h"

#if defined __cplusplus
extern "C" {
#endif

// The bond file the store uses (relative to the working directory) unless
// the environment variable BONDSTORE_TLV_FLASH_FILE names another.
#define BONDSTORE_TLV_FLASH_FILE "bondstore_tlv_flash.bin"

typedef struct {
    bondstore_tlv_t tlv; // first: the context the suite passes is this struct
    const hal_flash_bank_t *hal_flash_bank_impl;
    void *hal_flash_bank_context;
    // BTstack's bank state.  Unused: only here so that the suite compiles;
    // the tests that read them are not run (see README.md).
    uint32_t write_offset;
    int8_t current_bank;
    uint8_t delete_tag_len;
} btstack_tlv_flash_bank_t;

// Bind context to the bond file and load it.  The file stands for what the
// flash banks hold: if the banks were erased since the last init (no marker
// at bank 0, offset 0), the file is removed first and the marker written.
const btstack_tlv_t *btstack_tlv_flash_bank_init_instance(btstack_tlv_flash_bank_t *context,
    const hal_flash_bank_t *hal_flash_bank_impl, void *hal_flash_bank_context);

#if defined __cplusplus
}
#endif

#endif
