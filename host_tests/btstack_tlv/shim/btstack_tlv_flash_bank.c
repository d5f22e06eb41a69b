// Host test shim: btstack_tlv_flash_bank_init_instance() returning the bond
// store adapter (see btstack_tlv_flash_bank.h).

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "btstack_tlv_flash_bank.h"

// The context the suite passes must be the adapter's too (C99 compile-time check).
typedef char context_starts_with_adapter[offsetof(btstack_tlv_flash_bank_t, tlv) == 0 ? 1 : -1];

static const uint8_t marker[4] = {'M', 'P', 'B', 'S'};

const btstack_tlv_t *btstack_tlv_flash_bank_init_instance(btstack_tlv_flash_bank_t *context,
    const hal_flash_bank_t *hal_flash_bank_impl, void *hal_flash_bank_context) {
    const char *path = getenv("BONDSTORE_TLV_FLASH_FILE");
    path = path && *path ? path : BONDSTORE_TLV_FLASH_FILE;
    uint8_t head[sizeof(marker)];
    hal_flash_bank_impl->read(hal_flash_bank_context, 0, 0, head, sizeof(head));
    if (memcmp(head, marker, sizeof(marker)) != 0) {
        // Erased flash: an empty store.
        bondstore_tlv_remove_files(path);
        hal_flash_bank_impl->write(hal_flash_bank_context, 0, 0, marker, sizeof(marker));
    }
    const btstack_tlv_t *impl = bondstore_tlv_init_instance(&context->tlv, path);
    context->hal_flash_bank_impl = hal_flash_bank_impl;
    context->hal_flash_bank_context = hal_flash_bank_context;
    context->write_offset = 0;
    context->current_bank = 0;
    context->delete_tag_len = 0;
    return impl;
}
