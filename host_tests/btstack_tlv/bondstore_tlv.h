// Host test adapter: BTstack's btstack_tlv_t over the bond store core
// (extmod/bondstore), on a POSIX file.  Not part of the firmware; used to run
// BTstack's own TLV test suites against the store (test_btstack_suites.py).
#ifndef HOST_TESTS_BTSTACK_TLV_BONDSTORE_TLV_H
#define HOST_TESTS_BTSTACK_TLV_BONDSTORE_TLV_H

#include <stdint.h>

#include "btstack_config.h"
#include "btstack_tlv.h"
#include "bondstore.h"

#if defined __cplusplus
extern "C" {
#endif

// The record buffer is sized from the stack's configuration, as the firmware
// sizes it: NVM_NUM_DEVICE_DB_ENTRIES device-DB entries (le_device_db_tlv.c's
// le_device_db_entry_t: 60 bytes, 100 with ENABLE_LE_SIGNED_WRITE),
// NVN_NUM_GATT_SERVER_CCC CCCD records (att_server.c, 8 bytes), ER and IR
// (16 bytes each) and the static address (6 bytes).
#ifndef NVM_NUM_DEVICE_DB_ENTRIES
#error "NVM_NUM_DEVICE_DB_ENTRIES not defined in btstack_config.h"
#endif
#ifndef NVN_NUM_GATT_SERVER_CCC
#define NVN_NUM_GATT_SERVER_CCC (20) // att_server.c's default (spelt that way in BTstack)
#endif
#ifdef ENABLE_LE_SIGNED_WRITE
#define BONDSTORE_TLV_DEVICE_DB_ENTRY_LEN (100)
#else
#define BONDSTORE_TLV_DEVICE_DB_ENTRY_LEN (60)
#endif
// Test-only: shrink (or grow) the buffer to show that the sizing is tight.
#ifndef BONDSTORE_TLV_CAPACITY_ADJUST
#define BONDSTORE_TLV_CAPACITY_ADJUST (0)
#endif
#define BONDSTORE_TLV_CAPACITY ( \
    MP_BONDSTORE_RECORDS_SIZE(NVM_NUM_DEVICE_DB_ENTRIES, BONDSTORE_TLV_DEVICE_DB_ENTRY_LEN) \
    + MP_BONDSTORE_RECORDS_SIZE(NVN_NUM_GATT_SERVER_CCC, 8) \
    + MP_BONDSTORE_RECORDS_SIZE(2, 16) \
    + MP_BONDSTORE_RECORDS_SIZE(1, 6) \
    + BONDSTORE_TLV_CAPACITY_ADJUST)

#define BONDSTORE_TLV_PATH_MAX (240)

typedef struct {
    mp_bondstore_t store;
    char path[BONDSTORE_TLV_PATH_MAX + 5]; // room for ".new" / ".rsv"
    int load_result;  // of mp_bondstore_load() at init
    int last_error;   // of the last store_tag/delete_tag (0: success)
    uint8_t records[BONDSTORE_TLV_CAPACITY];
} bondstore_tlv_t;

// Bind self to the bond file at path (plus "<path>.new", "<path>.rsv") and
// load it.  The returned btstack_tlv_t's functions take self, or a struct
// whose first member is self, as their context.
const btstack_tlv_t *bondstore_tlv_init_instance(bondstore_tlv_t *self, const char *path);

// Remove the bond file and its side files (an erased medium).
void bondstore_tlv_remove_files(const char *path);

#if defined __cplusplus
}
#endif

#endif
