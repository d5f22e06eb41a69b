// Host test shim: btstack_tlv_posix_init_instance() returning the bond store
// adapter (see btstack_tlv_posix.h).

#include <stddef.h>
#include <string.h>

#include "btstack_tlv_posix.h"

// The context the suite passes must be the adapter's too (C99 compile-time check).
typedef char context_starts_with_adapter[offsetof(btstack_tlv_posix_t, tlv) == 0 ? 1 : -1];

const btstack_tlv_t *btstack_tlv_posix_init_instance(btstack_tlv_posix_t *context, const char *db_path) {
    const btstack_tlv_t *impl = bondstore_tlv_init_instance(&context->tlv, db_path);
    context->db_path = db_path;
    context->file = fopen("/dev/null", "r");
    return impl;
}

void btstack_tlv_posix_deinit(btstack_tlv_posix_t *self) {
    self->file = NULL; // the suite has closed it
}
