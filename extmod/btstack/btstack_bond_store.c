/*
 * This file is part of the MicroPython project, http://micropython.org/
 *
 * The MIT License (MIT)
 *
 * Permission is hereby granted, free of charge, to any person obtaining a copy
 * of this software and associated documentation files (the "Software"), to deal
 * in the Software without restriction, including without limitation the rights
 * to use, copy, modify, merge, publish, distribute, sublicense, and/or sell
 * copies of the Software, and to permit persons to whom the Software is
 * furnished to do so, subject to the following conditions:
 *
 * The above copyright notice and this permission notice shall be included in
 * all copies or substantial portions of the Software.
 *
 * THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR
 * IMPLIED, INCLUDING BUT NOT LIMITED TO THE WARRANTIES OF MERCHANTABILITY,
 * FITNESS FOR A PARTICULAR PURPOSE AND NONINFRINGEMENT. IN NO EVENT SHALL THE
 * AUTHORS OR COPYRIGHT HOLDERS BE LIABLE FOR ANY CLAIM, DAMAGES OR OTHER
 * LIABILITY, WHETHER IN AN ACTION OF CONTRACT, TORT OR OTHERWISE, ARISING FROM,
 * OUT OF OR IN CONNECTION WITH THE SOFTWARE OR THE USE OR OTHER DEALINGS IN
 * THE SOFTWARE.
 */

#include <stddef.h>
#include <string.h>

#include "py/runtime.h"
#include "py/mphal.h"
#include "extmod/vfs.h"

#if MICROPY_PY_BLUETOOTH && MICROPY_BLUETOOTH_BTSTACK && MICROPY_BLUETOOTH_BTSTACK_BOND_STORE

#include "lib/btstack/src/btstack.h"
#include "lib/btstack/src/btstack_tlv.h"
#include "extmod/modbluetooth.h"
#include "extmod/btstack/modbluetooth_btstack.h"
#include "extmod/btstack/btstack_bond_store.h"
#include "extmod/bondstore/bondstore.h"
#include "extmod/bondstore/bondstore_vfs.h"

#define DEBUG_printf(...) // printf("bond_store: " __VA_ARGS__)

// Tags as BTstack builds them (sm.c, le_device_db_tlv.c, att_server.c).
#define TAG32(a, b, c, d) (((uint32_t)(a) << 24) | ((uint32_t)(b) << 16) | ((uint32_t)(c) << 8) | (uint32_t)(d))
#define TAG_ER TAG32('S', 'M', 'E', 'R')
#define TAG_IR TAG32('S', 'M', 'I', 'R')
#define TAG_STATIC_ADDRESS TAG32('M', 'P', 'S', 'A')
#define TAG_DEVICE_DB(i) TAG32('B', 'T', 'D', (i))
#define TAG_CCCD(i) TAG32('B', 'T', 'C', (i))
#define TAG_IS_DEVICE_DB(tag) (((tag) & 0xffffff00) == TAG_DEVICE_DB(0))

// att_server.c's default (the macro name is spelt that way in BTstack).
#ifndef NVN_NUM_GATT_SERVER_CCC
#define NVN_NUM_GATT_SERVER_CCC (20)
#endif

// How long to wait before writing again after a write failed (and, without
// static scheduler nodes, when the stack ran inside a filesystem operation).
#ifndef MICROPY_BLUETOOTH_BTSTACK_BOND_STORE_RETRY_MS
#define MICROPY_BLUETOOTH_BTSTACK_BOND_STORE_RETRY_MS (1000)
#endif

// le_device_db_tlv.c's entry, private there: mirrored for its size and for
// where the key size is.  An entry with a key size of 0 names a peer but
// holds no keys: le_device_db_add() writes it, le_device_db_encryption_set()
// completes it.
typedef struct {
    uint32_t seq_nr;
    int addr_type;
    bd_addr_t addr;
    sm_key_t irk;
    sm_key_t ltk;
    uint16_t ediv;
    uint8_t rand[8];
    uint8_t key_size;
    uint8_t authenticated;
    uint8_t authorized;
    uint8_t secure_connection;
    #ifdef ENABLE_LE_SIGNED_WRITE
    sm_key_t remote_csrk;
    uint32_t remote_counter;
    sm_key_t local_csrk;
    uint32_t local_counter;
    #endif
} device_db_entry_t;

// att_server.c's persistent_ccc_entry_t.
#define CCCD_ENTRY_LEN (8)

// Room for every record the stack's configuration allows.
#define RECORDS_SIZE ( \
    MP_BONDSTORE_RECORDS_SIZE(NVM_NUM_DEVICE_DB_ENTRIES, sizeof(device_db_entry_t)) \
    + MP_BONDSTORE_RECORDS_SIZE(NVN_NUM_GATT_SERVER_CCC, CCCD_ENTRY_LEN) \
    + MP_BONDSTORE_RECORDS_SIZE(2, 16) /* ER, IR */ \
    + MP_BONDSTORE_RECORDS_SIZE(1, 6)) /* static address */

typedef struct _mp_bluetooth_btstack_bond_store_t {
    mp_bondstore_t store;
    mp_bondstore_vfs_t vfs;
    btstack_timer_source_t retry_timer;
    uint32_t pending_tag; // a device-DB entry without keys yet (0: none)
    device_db_entry_t pending;
    uint8_t records[RECORDS_SIZE];
} mp_bluetooth_btstack_bond_store_t;

static mp_bluetooth_btstack_bond_store_t *bond_store(void) {
    mp_bluetooth_btstack_root_pointers_t *rp = MP_STATE_PORT(bluetooth_btstack_root_pointers);
    return rp ? rp->bond_store : NULL;
}

// Commits run from the scheduler: at the next point where pending events are
// processed, which is soon after the stack's callback returns, and which
// (unlike the stack's own timers) comes outside a filesystem operation soon
// after that operation has ended.
static void retry_timer_handler(btstack_timer_source_t *ts) {
    (void)ts;
    mp_bluetooth_btstack_bond_store_commit();
}

static void retry_later(mp_bluetooth_btstack_bond_store_t *bs) {
    btstack_run_loop_remove_timer(&bs->retry_timer);
    btstack_run_loop_set_timer_handler(&bs->retry_timer, retry_timer_handler);
    btstack_run_loop_set_timer(&bs->retry_timer, MICROPY_BLUETOOTH_BTSTACK_BOND_STORE_RETRY_MS);
    btstack_run_loop_add_timer(&bs->retry_timer);
}

#if MICROPY_SCHEDULER_STATIC_NODES
static mp_sched_node_t commit_node;

static void commit_scheduled(mp_sched_node_t *node) {
    (void)node;
    mp_bluetooth_btstack_bond_store_commit();
}

static void schedule_commit(mp_bluetooth_btstack_bond_store_t *bs) {
    (void)bs;
    mp_sched_schedule_node(&commit_node, commit_scheduled);
}
#else
#define schedule_commit retry_later
#endif

void mp_bluetooth_btstack_bond_store_commit(void) {
    mp_bluetooth_btstack_bond_store_t *bs = bond_store();
    if (bs == NULL || !bs->vfs.persistent) {
        return;
    }
    if (mp_vfs_blockdev_busy()) {
        // The stack runs from inside a filesystem operation (rp2's flash
        // processes pending events): write once it has finished.
        DEBUG_printf("commit deferred\n");
        schedule_commit(bs);
        return;
    }
    // A change that could not be written stays pending: try again later
    // (once the stack's run loop runs), and with the next one.
    if (mp_bondstore_vfs_commit_failed(&bs->vfs, mp_bondstore_commit(&bs->store))
        && mp_bluetooth_btstack_state != MP_BLUETOOTH_BTSTACK_STATE_OFF) {
        retry_later(bs);
    }
}

static void tag_to_key(uint32_t tag, uint8_t *key) {
    key[0] = tag >> 24;
    key[1] = tag >> 16;
    key[2] = tag >> 8;
    key[3] = tag;
}

// Let an _IRQ_SET_SECRET handler mirror a change (value NULL: deleted).
static void mirror_to_handler(uint32_t tag, const uint8_t *value, size_t len) {
    uint8_t key[4];
    tag_to_key(tag, key);
    if (!mp_bluetooth_gap_on_set_secret(MP_BLUETOOTH_BTSTACK_SECRET_TYPE_TLV, key, sizeof(key), value, len)) {
        mp_printf(MICROPY_ERROR_PRINTER, "bluetooth: _IRQ_SET_SECRET handler did not store a secret\n");
    }
}

// Keep a value the stack (or this module) made: in RAM, to be written with
// the next commit, and in an _IRQ_SET_SECRET handler.
static bool keep_value(mp_bluetooth_btstack_bond_store_t *bs, uint32_t tag, const void *data, size_t len) {
    int err = mp_bondstore_set(&bs->store, tag, data, len);
    if (err != 0) {
        mp_printf(MICROPY_ERROR_PRINTER, "bluetooth: bond store has no room for tag %08x (%d)\n", (unsigned)tag, err);
        return false;
    }
    mirror_to_handler(tag, data, len);
    return true;
}

// BTstack's btstack_tlv_t interface.  These run inside BTstack callbacks:
// RAM only, no file I/O, never raise.

static int tlv_get_tag(void *context, uint32_t tag, uint8_t *buffer, uint32_t buffer_size) {
    mp_bluetooth_btstack_bond_store_t *bs = context;
    if (tag == bs->pending_tag) {
        memcpy(buffer, &bs->pending, MIN(buffer_size, sizeof(bs->pending)));
        return sizeof(bs->pending);
    }
    int len = mp_bondstore_get(&bs->store, tag, buffer, buffer_size);
    return len < 0 ? 0 : len;
}

static int tlv_store_tag(void *context, uint32_t tag, const uint8_t *data, uint32_t data_size) {
    mp_bluetooth_btstack_bond_store_t *bs = context;
    if (TAG_IS_DEVICE_DB(tag) && data_size == sizeof(bs->pending)
        && data[offsetof(device_db_entry_t, key_size)] == 0) {
        // A peer without keys is not a bond yet: hold it back until it is.
        // One is enough: MicroPython's BTstack has one connection, so one
        // pairing at a time; a newer one replaces a pairing that never
        // completed (which thus leaves no trace, as if it had not started).
        bs->pending_tag = tag;
        memcpy(&bs->pending, data, data_size);
        return 0;
    }
    if (tag == bs->pending_tag) {
        bs->pending_tag = 0;
    }
    if (!keep_value(bs, tag, data, data_size)) {
        return 1;
    }
    schedule_commit(bs);
    return 0;
}

static void tlv_delete_tag(void *context, uint32_t tag) {
    mp_bluetooth_btstack_bond_store_t *bs = context;
    if (tag == bs->pending_tag) {
        bs->pending_tag = 0;
    }
    if (mp_bondstore_get(&bs->store, tag, NULL, 0) < 0) {
        return; // BTstack deletes speculatively; nothing to do or to mirror.
    }
    mp_bondstore_set(&bs->store, tag, NULL, 0);
    mirror_to_handler(tag, NULL, 0);
    schedule_commit(bs);
}

static const btstack_tlv_t bond_store_tlv = {
    .get_tag = tlv_get_tag,
    .store_tag = tlv_store_tag,
    .delete_tag = tlv_delete_tag,
};

// The size BTstack expects for tag's value.
static size_t tag_value_len(uint32_t tag) {
    if (tag == TAG_ER || tag == TAG_IR) {
        return 16;
    } else if (tag == TAG_STATIC_ADDRESS) {
        return 6;
    } else if (TAG_IS_DEVICE_DB(tag)) {
        return sizeof(device_db_entry_t);
    }
    return CCCD_ENTRY_LEN;
}

// Ask an _IRQ_GET_SECRET handler for tag; a value it has wins over the file.
static void import_from_handler(mp_bluetooth_btstack_bond_store_t *bs, uint32_t tag) {
    uint8_t key[4];
    tag_to_key(tag, key);
    const uint8_t *value;
    size_t len;
    if (!mp_bluetooth_gap_on_get_secret(MP_BLUETOOTH_BTSTACK_SECRET_TYPE_TLV, 0, key, sizeof(key), &value, &len)) {
        return;
    }
    // A value of the wrong size would be ignored by BTstack (which would then
    // make a new key, voiding every bond): keep the file's value instead.
    if (len != tag_value_len(tag)) {
        mp_printf(MICROPY_ERROR_PRINTER, "bluetooth: _IRQ_GET_SECRET returned %u bytes for tag %08x, ignored\n", (unsigned)len, (unsigned)tag);
        return;
    }
    DEBUG_printf("import tag %08x (%u bytes) from handler\n", (unsigned)tag, (unsigned)len);
    mp_bondstore_set(&bs->store, tag, value, len);
}

// BTstack would generate missing ER/IR itself, but from the controller's
// LE Rand; use the port's cryptographic source instead, once, and keep it.
static void ensure_key(mp_bluetooth_btstack_bond_store_t *bs, uint32_t tag) {
    uint8_t key[16];
    if (mp_bondstore_get(&bs->store, tag, key, sizeof(key)) == sizeof(key) && mp_bondstore_vfs_key_valid(key, sizeof(key))) {
        return;
    }
    // Without a random source BTstack falls back to generating it.
    if (mp_bondstore_vfs_new_key(key, sizeof(key))) {
        keep_value(bs, tag, key, sizeof(key));
    }
}

void mp_bluetooth_btstack_bond_store_init(void) {
    mp_bluetooth_btstack_root_pointers_t *rp = MP_STATE_PORT(bluetooth_btstack_root_pointers);
    // Like mp_bluetooth_init()'s own allocations, these raise MemoryError
    // before the stack starts if the heap is exhausted.
    mp_bluetooth_btstack_bond_store_t *bs = m_new0(mp_bluetooth_btstack_bond_store_t, 1);
    rp->bond_store = bs;
    mp_bondstore_vfs_load(&bs->vfs, &bs->store, bs->records, sizeof(bs->records));

    // An application's own secret store wins over the file.
    for (int i = 0; i < NVM_NUM_DEVICE_DB_ENTRIES; ++i) {
        import_from_handler(bs, TAG_DEVICE_DB(i));
    }
    for (int i = 0; i < NVN_NUM_GATT_SERVER_CCC; ++i) {
        import_from_handler(bs, TAG_CCCD(i));
    }
    import_from_handler(bs, TAG_ER);
    import_from_handler(bs, TAG_IR);
    import_from_handler(bs, TAG_STATIC_ADDRESS);

    ensure_key(bs, TAG_ER);
    ensure_key(bs, TAG_IR);
    btstack_tlv_set_instance(&bond_store_tlv, bs);
    // New keys, imports and repairs: one write, before the stack starts.
    if (!mp_vfs_blockdev_busy()) {
        mp_bluetooth_btstack_bond_store_commit();
    }
}

void mp_bluetooth_btstack_bond_store_deinit(void) {
    mp_bluetooth_btstack_bond_store_t *bs = bond_store();
    if (bs != NULL) {
        btstack_run_loop_remove_timer(&bs->retry_timer);
        if (!mp_vfs_blockdev_busy()) {
            mp_bluetooth_btstack_bond_store_commit();
        }
        MP_STATE_PORT(bluetooth_btstack_root_pointers)->bond_store = NULL;
    }
    btstack_tlv_set_instance(NULL, NULL);
}

bool mp_bluetooth_btstack_bond_store_static_address(uint8_t *addr) {
    mp_bluetooth_btstack_bond_store_t *bs = bond_store();
    if (bs == NULL) {
        return false;
    }
    if (mp_bondstore_get(&bs->store, TAG_STATIC_ADDRESS, addr, 6) == 6 && mp_bondstore_vfs_static_address_valid(addr)) {
        return true;
    }
    if (!mp_bondstore_vfs_new_static_address(addr)) {
        return false;
    }
    if (keep_value(bs, TAG_STATIC_ADDRESS, addr, 6)) {
        mp_bluetooth_btstack_bond_store_commit();
    }
    return true;
}

#endif // MICROPY_PY_BLUETOOTH && MICROPY_BLUETOOTH_BTSTACK && MICROPY_BLUETOOTH_BTSTACK_BOND_STORE
