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

#include <string.h>
#include <stdlib.h>

#include "py/runtime.h"
#include "py/mphal.h"
#include "extmod/vfs.h"

#if MICROPY_PY_BLUETOOTH && MICROPY_BLUETOOTH_BTSTACK && MICROPY_BLUETOOTH_BTSTACK_BOND_STORE

#include "lib/btstack/src/btstack.h"
#include "lib/btstack/src/btstack_tlv.h"
#include "extmod/modbluetooth.h"
#include "extmod/btstack/modbluetooth_btstack.h"
#include "extmod/btstack/btstack_bond_store.h"
#include "extmod/btstack/mp_tlvstore.h"
#include "extmod/btstack/mp_tlvstore_vfs.h"

#define DEBUG_printf(...) // printf("bond_store: " __VA_ARGS__)

// Tags as BTstack builds them (sm.c, le_device_db_tlv.c, att_server.c).
#define TAG32(a, b, c, d) (((uint32_t)(a) << 24) | ((uint32_t)(b) << 16) | ((uint32_t)(c) << 8) | (uint32_t)(d))
#define TAG_ER TAG32('S', 'M', 'E', 'R')
#define TAG_IR TAG32('S', 'M', 'I', 'R')
#define TAG_STATIC_ADDRESS TAG32('M', 'P', 'S', 'A')
#define TAG_DEVICE_DB(i) TAG32('B', 'T', 'D', (i))
#define TAG_CCCD(i) TAG32('B', 'T', 'C', (i))

// att_server.c's default (the macro name is spelt that way in BTstack).
#ifndef NVN_NUM_GATT_SERVER_CCC
#define NVN_NUM_GATT_SERVER_CCC (20)
#endif

typedef struct _mp_bluetooth_btstack_bond_store_t {
    mp_tlvstore_t store;
    mp_tlvstore_vfs_t vfs;
    bool persistent; // false with bond_file=None: RAM only, by request
    bool error_reported; // say once per session that writes fail, not per write
} mp_bluetooth_btstack_bond_store_t;

// ble.config(bond_file=...): kept outside the heap so that it survives
// active(0)/active(1) and a soft reset cannot leave it dangling.
enum { BOND_FILE_DEFAULT, BOND_FILE_CUSTOM, BOND_FILE_DISABLED };
static uint8_t bond_file_mode;
static char bond_file_path[MICROPY_BLUETOOTH_BTSTACK_BOND_FILE_MAX + 1];

static mp_bluetooth_btstack_bond_store_t *bond_store(void) {
    mp_bluetooth_btstack_root_pointers_t *rp = MP_STATE_PORT(bluetooth_btstack_root_pointers);
    return rp ? rp->bond_store : NULL;
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

static void report_error(const char *what, int err) {
    mp_bluetooth_btstack_bond_store_t *bs = bond_store();
    if (bs != NULL) {
        if (!bs->persistent && MP_TLVSTORE_ERR_APPLIED_IN_RAM(err)) {
            return; // bond_file=None: keeping bonds in RAM only is what was asked for.
        }
        if (bs->error_reported) {
            return;
        }
        bs->error_reported = true;
    }
    mp_printf(MICROPY_ERROR_PRINTER, "bluetooth: bond store %s failed (%d)%s\n", what, err,
        MP_TLVSTORE_ERR_APPLIED_IN_RAM(err) ? ", bonds kept in RAM only this session" : "");
}

// BTstack's btstack_tlv_t interface.  These run inside BTstack callbacks:
// they never raise (the store and its VFS adapter return error codes).

static int tlv_get_tag(void *context, uint32_t tag, uint8_t *buffer, uint32_t buffer_size) {
    int len = mp_tlvstore_get(context, tag, buffer, buffer_size);
    return len < 0 ? 0 : len;
}

// Keep a value the stack (or this module) made: in the store, then in an
// _IRQ_SET_SECRET handler.  Returns false if not even RAM has it.
static bool keep_value(mp_tlvstore_t *store, uint32_t tag, const uint8_t *data, size_t len) {
    int err = mp_tlvstore_store(store, tag, data, len);
    if (err != MP_TLVSTORE_OK) {
        report_error("write", err);
        if (!MP_TLVSTORE_ERR_APPLIED_IN_RAM(err)) {
            return false;
        }
    }
    mirror_to_handler(tag, data, len);
    return true;
}

static int tlv_store_tag(void *context, uint32_t tag, const uint8_t *data, uint32_t data_size) {
    return keep_value(context, tag, data, data_size) ? 0 : 1;
}

static void tlv_delete_tag(void *context, uint32_t tag) {
    if (mp_tlvstore_get(context, tag, NULL, 0) < 0) {
        return; // BTstack deletes speculatively; nothing to do or to mirror.
    }
    int err = mp_tlvstore_delete(context, tag);
    if (err != MP_TLVSTORE_OK) {
        report_error("delete", err);
    }
    mirror_to_handler(tag, NULL, 0);
}

static const btstack_tlv_t bond_store_tlv = {
    .get_tag = tlv_get_tag,
    .store_tag = tlv_store_tag,
    .delete_tag = tlv_delete_tag,
};

// The size BTstack expects for tag's value, or 0 if any size may do.  Device
// DB and CCCD entries are raw BTstack structs: their size is whatever the
// stack wrote before, if anything.
static size_t tag_value_len(uint32_t tag, int current_len) {
    if (tag == TAG_ER || tag == TAG_IR) {
        return 16;
    } else if (tag == TAG_STATIC_ADDRESS) {
        return 6;
    }
    return current_len > 0 ? (size_t)current_len : 0;
}

// Ask an _IRQ_GET_SECRET handler for tag; a value it has wins over the file.
static void import_from_handler(mp_tlvstore_t *store, uint32_t tag) {
    uint8_t key[4];
    tag_to_key(tag, key);
    const uint8_t *value;
    size_t len;
    if (!mp_bluetooth_gap_on_get_secret(MP_BLUETOOTH_BTSTACK_SECRET_TYPE_TLV, 0, key, sizeof(key), &value, &len)) {
        return;
    }
    uint8_t current[MP_TLVSTORE_MAX_VALUE];
    int current_len = mp_tlvstore_get(store, tag, current, sizeof(current));
    // A value of the wrong size would be ignored by BTstack (which would then
    // make a new key, voiding every bond): keep the file's value instead.
    size_t expected_len = tag_value_len(tag, current_len);
    if (len == 0 || len > MP_TLVSTORE_MAX_VALUE || (expected_len && len != expected_len)) {
        mp_printf(MICROPY_ERROR_PRINTER, "bluetooth: _IRQ_GET_SECRET returned %u bytes for tag %08x, ignored\n", (unsigned)len, (unsigned)tag);
        return;
    }
    if (current_len == (int)len && memcmp(current, value, len) == 0) {
        return;
    }
    DEBUG_printf("import tag %08x (%u bytes) from handler\n", (unsigned)tag, (unsigned)len);
    int err = mp_tlvstore_store(store, tag, value, len);
    if (err != MP_TLVSTORE_OK) {
        report_error("write", err);
    }
}

static bool random_bytes(uint8_t *buf, size_t len) {
    nlr_buf_t nlr;
    if (nlr_push(&nlr) == 0) {
        mp_hal_get_random(len, buf);
        nlr_pop();
        return true;
    }
    mp_obj_print_exception(MICROPY_ERROR_PRINTER, MP_OBJ_FROM_PTR(nlr.ret_val));
    return false;
}

static bool is_zero(const uint8_t *buf, size_t len) {
    for (size_t i = 0; i < len; ++i) {
        if (buf[i]) {
            return false;
        }
    }
    return true;
}

// BTstack would generate missing ER/IR itself, but from the controller's
// LE Rand; use the port's cryptographic source instead, once, and keep it.
static void ensure_key(mp_tlvstore_t *store, uint32_t tag) {
    uint8_t key[16];
    if (mp_tlvstore_get(store, tag, key, sizeof(key)) == sizeof(key) && !is_zero(key, sizeof(key))) {
        return;
    }
    do {
        if (!random_bytes(key, sizeof(key))) {
            return; // BTstack falls back to generating it.
        }
    } while (is_zero(key, sizeof(key)));
    keep_value(store, tag, key, sizeof(key));
}

// Resolve the configured path: NULL when persistence is disabled.  On unix
// a leading "~/" is taken from $HOME, and its directory is created.
static const char *bond_file(vstr_t *vstr) {
    const char *path = MICROPY_BLUETOOTH_BTSTACK_BOND_FILE;
    if (bond_file_mode == BOND_FILE_DISABLED) {
        return NULL;
    } else if (bond_file_mode == BOND_FILE_CUSTOM) {
        path = bond_file_path;
    }
    #if MICROPY_VFS_POSIX
    if (path[0] == '~' && path[1] == '/') {
        const char *home = getenv("HOME");
        vstr_add_str(vstr, home ? home : ".");
        const char *dir_end = strrchr(path, '/');
        vstr_add_strn(vstr, path + 1, dir_end - path - 1);
        nlr_buf_t nlr;
        if (nlr_push(&nlr) == 0) {
            mp_vfs_mkdir(mp_obj_new_str(vstr_str(vstr), vstr_len(vstr)));
            nlr_pop();
        } else {
            // Most likely it exists already; opening the file will tell.
        }
        vstr_add_str(vstr, dir_end);
        return vstr_null_terminated_str(vstr);
    }
    #endif
    (void)vstr;
    return path;
}

static int no_file_open(void *ctx, int file, int mode, void **fh) {
    (void)ctx;
    (void)file;
    (void)fh;
    return mode == MP_TLVSTORE_OPEN_CREATE ? MP_TLVSTORE_ERR_ROFS : MP_TLVSTORE_ERR_NOENT;
}

static int no_file_remove(void *ctx, int file) {
    (void)ctx;
    (void)file;
    return 0;
}

// bond_file=None: the store lives in RAM for the session (and in an
// _IRQ_SET_SECRET handler, if the application has one).
static const mp_tlvstore_io_t no_file_io = {
    .open = no_file_open,
    .remove = no_file_remove,
};

void mp_bluetooth_btstack_bond_store_init(void) {
    mp_bluetooth_btstack_root_pointers_t *rp = MP_STATE_PORT(bluetooth_btstack_root_pointers);
    mp_bluetooth_btstack_bond_store_t *bs = m_new0(mp_bluetooth_btstack_bond_store_t, 1);
    rp->bond_store = bs;

    vstr_t vstr;
    vstr_init(&vstr, 32);
    const char *path = bond_file(&vstr);
    bs->persistent = path != NULL;
    if (path != NULL && mp_tlvstore_vfs_init(&bs->vfs, path)) {
        mp_tlvstore_init(&bs->store, &mp_tlvstore_vfs_io, &bs->vfs);
    } else {
        mp_tlvstore_init(&bs->store, &no_file_io, NULL);
    }

    mp_tlvstore_load_result_t result;
    int err = mp_tlvstore_load(&bs->store, &result);
    DEBUG_printf("load %s: err=%d flags=%04x entries=%u\n", path ? path : "(none)", err, (unsigned)result.flags, result.entries);
    const uint32_t repaired = MP_TLVSTORE_LOAD_HEADER_BAD | MP_TLVSTORE_LOAD_TORN_TAIL | MP_TLVSTORE_LOAD_CORRUPT_MIDDLE | MP_TLVSTORE_LOAD_SIDE_REPLAYED;
    if (path != NULL && (err != MP_TLVSTORE_OK || (result.flags & repaired))) {
        mp_printf(MICROPY_ERROR_PRINTER, "bluetooth: bond store %s: recovered (flags 0x%04x, %u entries kept, %u bytes dropped)%s\n",
            path, (unsigned)result.flags, result.entries, (unsigned)(result.tail_bytes + result.junk_bytes),
            err != MP_TLVSTORE_OK ? ", file not writable: bonds kept in RAM only" : "");
    }
    vstr_clear(&vstr);

    // An application's own secret store wins over the file.
    for (int i = 0; i < NVM_NUM_DEVICE_DB_ENTRIES; ++i) {
        import_from_handler(&bs->store, TAG_DEVICE_DB(i));
    }
    for (int i = 0; i < NVN_NUM_GATT_SERVER_CCC; ++i) {
        import_from_handler(&bs->store, TAG_CCCD(i));
    }
    import_from_handler(&bs->store, TAG_ER);
    import_from_handler(&bs->store, TAG_IR);
    import_from_handler(&bs->store, TAG_STATIC_ADDRESS);

    ensure_key(&bs->store, TAG_ER);
    ensure_key(&bs->store, TAG_IR);

    btstack_tlv_set_instance(&bond_store_tlv, &bs->store);
}

void mp_bluetooth_btstack_bond_store_deinit(void) {
    btstack_tlv_set_instance(NULL, NULL);
    mp_bluetooth_btstack_root_pointers_t *rp = MP_STATE_PORT(bluetooth_btstack_root_pointers);
    if (rp != NULL) {
        rp->bond_store = NULL;
    }
}

static bool valid_static_address(const uint8_t *addr) {
    // Two top bits 0b11; the remaining 46 bits neither all 0 nor all 1.
    if ((addr[0] & 0xc0) != 0xc0) {
        return false;
    }
    uint8_t all_or = addr[0] & 0x3f, all_and = addr[0] | 0xc0;
    for (int i = 1; i < 6; ++i) {
        all_or |= addr[i];
        all_and &= addr[i];
    }
    return all_or != 0 && all_and != 0xff;
}

bool mp_bluetooth_btstack_bond_store_static_address(uint8_t *addr) {
    mp_bluetooth_btstack_bond_store_t *bs = bond_store();
    if (bs == NULL) {
        return false;
    }
    if (mp_tlvstore_get(&bs->store, TAG_STATIC_ADDRESS, addr, 6) == 6 && valid_static_address(addr)) {
        return true;
    }
    do {
        if (!random_bytes(addr, 6)) {
            return false;
        }
        addr[0] |= 0xc0;
    } while (!valid_static_address(addr));
    keep_value(&bs->store, TAG_STATIC_ADDRESS, addr, 6);
    return true;
}

mp_obj_t mp_bluetooth_get_bond_file(void) {
    switch (bond_file_mode) {
        case BOND_FILE_DISABLED:
            return mp_const_none;
        case BOND_FILE_CUSTOM:
            return mp_obj_new_str(bond_file_path, strlen(bond_file_path));
        default:
            return MP_OBJ_NEW_QSTR(qstr_from_str(MICROPY_BLUETOOTH_BTSTACK_BOND_FILE));
    }
}

void mp_bluetooth_set_bond_file(mp_obj_t path_in) {
    if (path_in == mp_const_none) {
        bond_file_mode = BOND_FILE_DISABLED;
        return;
    }
    size_t len;
    const char *path = mp_obj_str_get_data(path_in, &len);
    if (len == 0 || len > MICROPY_BLUETOOTH_BTSTACK_BOND_FILE_MAX || strlen(path) != len) {
        mp_raise_ValueError(MP_ERROR_TEXT("invalid bond_file"));
    }
    memcpy(bond_file_path, path, len + 1);
    bond_file_mode = BOND_FILE_CUSTOM;
}

#endif // MICROPY_PY_BLUETOOTH && MICROPY_BLUETOOTH_BTSTACK && MICROPY_BLUETOOTH_BTSTACK_BOND_STORE
