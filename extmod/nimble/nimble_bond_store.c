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

// Enabled by the build (nimble.mk, nimble.cmake, the esp32 port), which
// knows whether NimBLE is in it: this file sees no MicroPython configuration.
#if MICROPY_BLUETOOTH_NIMBLE_BOND_STORE

#include <string.h>

#include "extmod/nimble/nimble_bond_store.h"
// For ble_hs_lock()/ble_hs_unlock().
#include "nimble/host/src/ble_hs_priv.h"

#define DEBUG_printf(...) // printf("nimble_bond_store: " __VA_ARGS__)

#define TAG32(a, b, c, d) (((uint32_t)(a) << 24) | ((uint32_t)(b) << 16) | ((uint32_t)(c) << 8) | (uint32_t)(d))
// One tag per record: a prefix per kind and a slot number (0..255).
#define TAG_OUR_SEC TAG32('N', 'O', 'S', 0)
#define TAG_PEER_SEC TAG32('N', 'P', 'S', 0)
#define TAG_CCCD TAG32('N', 'C', 'C', 0)
#define TAG_SLOTS (0xff)
#define TAG_OUR_IRK TAG32('N', 'I', 'R', 'K')
#define TAG_STATIC_ADDRESS TAG32('M', 'P', 'S', 'A')

#if MYNEWT_VAL(BLE_STORE_MAX_BONDS) > TAG_SLOTS || MYNEWT_VAL(BLE_STORE_MAX_CCCDS) > TAG_SLOTS
#error "the NimBLE bond store keeps at most 255 bonds and 255 CCCDs"
#endif

// Security record flags (offset SEC_FLAGS).
#define SEC_LTK (1)
#define SEC_IRK (2)
#define SEC_CSRK (4)
#define SEC_AUTHENTICATED (8)
#define SEC_SC (16)

// Offsets in a security record; a CCCD record is the address, then the
// handle (2), flags (2) and value_changed (1).
#define REC_ADDR_TYPE (0)
#define REC_ADDR (1)
#define REC_ADDR_LEN (7)
#define SEC_KEY_SIZE (7)
#define SEC_EDIV (8)
#define SEC_RAND (10)
#define SEC_FLAGS (18)
#define SEC_LTK_AT (19)
#define SEC_IRK_AT (35)
#define SEC_CSRK_AT (51)
#define SEC_SIGN_COUNTER (67)
#define CCCD_HANDLE (7)
#define CCCD_FLAGS (9)
#define CCCD_VALUE_CHANGED (11)

static mp_nimble_bond_store_t *bond_store;

static void put_le(uint8_t *p, uint64_t v, int n) {
    for (int i = 0; i < n; ++i) {
        p[i] = v >> (8 * i);
    }
}

static uint64_t get_le(const uint8_t *p, int n) {
    uint64_t v = 0;
    for (int i = n - 1; i >= 0; --i) {
        v = (v << 8) | p[i];
    }
    return v;
}

static void put_addr(uint8_t *r, const ble_addr_t *addr) {
    r[REC_ADDR_TYPE] = addr->type;
    memcpy(r + REC_ADDR, addr->val, 6);
}

static void get_addr(const uint8_t *r, ble_addr_t *addr) {
    addr->type = r[REC_ADDR_TYPE];
    memcpy(addr->val, r + REC_ADDR, 6);
}

static void sec_encode(uint8_t *r, const struct ble_store_value_sec *v) {
    put_addr(r, &v->peer_addr);
    r[SEC_KEY_SIZE] = v->key_size;
    put_le(r + SEC_EDIV, v->ediv, 2);
    put_le(r + SEC_RAND, v->rand_num, 8);
    r[SEC_FLAGS] = (v->ltk_present ? SEC_LTK : 0) | (v->irk_present ? SEC_IRK : 0)
        | (v->csrk_present ? SEC_CSRK : 0) | (v->authenticated ? SEC_AUTHENTICATED : 0)
        | (v->sc ? SEC_SC : 0);
    memcpy(r + SEC_LTK_AT, v->ltk, 16);
    memcpy(r + SEC_IRK_AT, v->irk, 16);
    memcpy(r + SEC_CSRK_AT, v->csrk, 16);
    #if MP_NIMBLE_BOND_STORE_ESP_NIMBLE
    put_le(r + SEC_SIGN_COUNTER, v->sign_counter, 4);
    #else
    put_le(r + SEC_SIGN_COUNTER, 0, 4);
    #endif
}

static void sec_decode(const uint8_t *r, struct ble_store_value_sec *v) {
    memset(v, 0, sizeof(*v));
    get_addr(r, &v->peer_addr);
    v->key_size = r[SEC_KEY_SIZE];
    v->ediv = get_le(r + SEC_EDIV, 2);
    v->rand_num = get_le(r + SEC_RAND, 8);
    v->ltk_present = (r[SEC_FLAGS] & SEC_LTK) != 0;
    v->irk_present = (r[SEC_FLAGS] & SEC_IRK) != 0;
    v->csrk_present = (r[SEC_FLAGS] & SEC_CSRK) != 0;
    v->authenticated = (r[SEC_FLAGS] & SEC_AUTHENTICATED) != 0;
    v->sc = (r[SEC_FLAGS] & SEC_SC) != 0;
    memcpy(v->ltk, r + SEC_LTK_AT, 16);
    memcpy(v->irk, r + SEC_IRK_AT, 16);
    memcpy(v->csrk, r + SEC_CSRK_AT, 16);
    #if MP_NIMBLE_BOND_STORE_ESP_NIMBLE
    v->sign_counter = get_le(r + SEC_SIGN_COUNTER, 4);
    #endif
}

static void cccd_encode(uint8_t *r, const struct ble_store_value_cccd *v) {
    put_addr(r, &v->peer_addr);
    put_le(r + CCCD_HANDLE, v->chr_val_handle, 2);
    put_le(r + CCCD_FLAGS, v->flags, 2);
    r[CCCD_VALUE_CHANGED] = v->value_changed;
}

static void cccd_decode(const uint8_t *r, struct ble_store_value_cccd *v) {
    memset(v, 0, sizeof(*v));
    get_addr(r, &v->peer_addr);
    v->chr_val_handle = get_le(r + CCCD_HANDLE, 2);
    v->flags = get_le(r + CCCD_FLAGS, 2);
    v->value_changed = r[CCCD_VALUE_CHANGED] & 1;
}

// Whether the store is bound and keeps objects of obj_type (esp-nimble has
// more types, e.g. the local IRK and RPA records, which the binding has
// never kept).
static bool serves(int obj_type) {
    return bond_store != NULL && (obj_type == BLE_STORE_OBJ_TYPE_OUR_SEC
        || obj_type == BLE_STORE_OBJ_TYPE_PEER_SEC || obj_type == BLE_STORE_OBJ_TYPE_CCCD);
}

static uint32_t tag_prefix(int obj_type) {
    switch (obj_type) {
        case BLE_STORE_OBJ_TYPE_OUR_SEC:
            return TAG_OUR_SEC;
        case BLE_STORE_OBJ_TYPE_PEER_SEC:
            return TAG_PEER_SEC;
        default:
            return TAG_CCCD;
    }
}

static size_t record_len(int obj_type) {
    return obj_type == BLE_STORE_OBJ_TYPE_CCCD ? MP_NIMBLE_BOND_STORE_CCCD_LEN : MP_NIMBLE_BOND_STORE_SEC_LEN;
}

static bool is_any(const ble_addr_t *addr) {
    return ble_addr_cmp(addr, BLE_ADDR_ANY) == 0;
}

// Whether record r (of obj_type) matches key, NimBLE's way: an address of
// BLE_ADDR_ANY, a handle of 0 and an absent EDIV/Rand match everything.
static bool matches(int obj_type, const union ble_store_key *key, const uint8_t *r) {
    ble_addr_t addr;
    get_addr(r, &addr);
    if (obj_type == BLE_STORE_OBJ_TYPE_CCCD) {
        return (is_any(&key->cccd.peer_addr) || ble_addr_cmp(&addr, &key->cccd.peer_addr) == 0)
               && (key->cccd.chr_val_handle == 0 || key->cccd.chr_val_handle == get_le(r + CCCD_HANDLE, 2));
    }
    if (!is_any(&key->sec.peer_addr) && ble_addr_cmp(&addr, &key->sec.peer_addr) != 0) {
        return false;
    }
    #if !MP_NIMBLE_BOND_STORE_ESP_NIMBLE
    if (key->sec.ediv_rand_present) {
        return key->sec.ediv == get_le(r + SEC_EDIV, 2) && key->sec.rand_num == get_le(r + SEC_RAND, 8);
    }
    #endif
    return true;
}

// The skip-th record of obj_type that matches key (key NULL: any), its tag
// in *tag; NULL if none.  *count is the number of records of obj_type.
static const uint8_t *find(int obj_type, const union ble_store_key *key, int skip, uint32_t *tag, int *count) {
    const uint8_t *found = NULL;
    const uint8_t *value;
    size_t len;
    uint32_t t;
    *count = 0;
    for (size_t i = 0; mp_bondstore_record(&bond_store->store, i, &t, &value, &len); ++i) {
        if ((t & ~TAG_SLOTS) != tag_prefix(obj_type) || len != record_len(obj_type)) {
            continue;
        }
        ++*count;
        if (found == NULL && (key == NULL || matches(obj_type, key, value)) && skip-- == 0) {
            found = value;
            *tag = t;
        }
    }
    return found;
}

// A tag of obj_type's kind that no record has.
static uint32_t free_tag(int obj_type) {
    uint32_t tag = tag_prefix(obj_type);
    while (mp_bondstore_get(&bond_store->store, tag, NULL, 0) >= 0) {
        ++tag;
    }
    return tag;
}

// The key an _IRQ_SET_SECRET handler gets for record r (see the header).
static size_t handler_key(int obj_type, const uint8_t *r, uint8_t *key) {
    ble_addr_t addr;
    get_addr(r, &addr);
    memcpy(key, &addr, sizeof(addr));
    if (obj_type != BLE_STORE_OBJ_TYPE_CCCD) {
        return sizeof(addr);
    }
    memcpy(key + sizeof(addr), r + CCCD_HANDLE, 2);
    return sizeof(addr) + 2;
}

static int store_read(int obj_type, const union ble_store_key *key, union ble_store_value *value) {
    if (!serves(obj_type)) {
        return BLE_HS_ENOTSUP;
    }
    uint32_t tag;
    int count;
    int skip = obj_type == BLE_STORE_OBJ_TYPE_CCCD ? key->cccd.idx : key->sec.idx;
    const uint8_t *r = find(obj_type, key, skip, &tag, &count);
    if (r == NULL) {
        return BLE_HS_ENOENT;
    }
    if (obj_type == BLE_STORE_OBJ_TYPE_CCCD) {
        cccd_decode(r, &value->cccd);
    } else {
        sec_decode(r, &value->sec);
    }
    return 0;
}

// Put record r of obj_type into RAM, replacing the one with the same key.
static int keep_record(int obj_type, const uint8_t *r, const union ble_store_key *key) {
    uint32_t tag;
    int count;
    if (find(obj_type, key, 0, &tag, &count) == NULL) {
        int max = obj_type == BLE_STORE_OBJ_TYPE_CCCD ? MYNEWT_VAL(BLE_STORE_MAX_CCCDS) : MYNEWT_VAL(BLE_STORE_MAX_BONDS);
        if (count >= max) {
            return BLE_HS_ESTORE_CAP; // store_status_cb makes room, then NimBLE retries
        }
        tag = free_tag(obj_type);
    }
    return mp_bondstore_set(&bond_store->store, tag, r, record_len(obj_type)) == 0 ? 0 : BLE_HS_ESTORE_CAP;
}

// Encode value of obj_type into r and make the key that finds its record:
// the peer's address (and a CCCD's handle), never EDIV/Rand, so that a peer
// has one record of each kind.
static void encode(int obj_type, const union ble_store_value *value, uint8_t *r, union ble_store_key *key) {
    memset(key, 0, sizeof(*key));
    if (obj_type == BLE_STORE_OBJ_TYPE_CCCD) {
        cccd_encode(r, &value->cccd);
        key->cccd.peer_addr = value->cccd.peer_addr;
        key->cccd.chr_val_handle = value->cccd.chr_val_handle;
    } else {
        sec_encode(r, &value->sec);
        key->sec.peer_addr = value->sec.peer_addr;
    }
}

static int store_write(int obj_type, const union ble_store_value *value) {
    if (!serves(obj_type)) {
        return BLE_HS_ENOTSUP;
    }
    uint8_t r[MP_NIMBLE_BOND_STORE_SEC_LEN];
    union ble_store_key key;
    encode(obj_type, value, r, &key);
    int rc = keep_record(obj_type, r, &key);
    DEBUG_printf("write type=%d -> %d\n", obj_type, rc);
    if (rc == 0) {
        uint8_t handler_key_buf[sizeof(ble_addr_t) + 2];
        size_t key_len = handler_key(obj_type, r, handler_key_buf);
        mp_nimble_bond_store_changed(obj_type, handler_key_buf, key_len, (const uint8_t *)value,
            obj_type == BLE_STORE_OBJ_TYPE_CCCD ? sizeof(value->cccd) : sizeof(value->sec));
    }
    return rc;
}

static int store_delete(int obj_type, const union ble_store_key *key) {
    if (!serves(obj_type)) {
        return BLE_HS_ENOTSUP;
    }
    uint32_t tag;
    int count;
    const uint8_t *r = find(obj_type, key, 0, &tag, &count);
    if (r == NULL) {
        // NimBLE deletes until told there is nothing left (ble_store_util_delete_all).
        return BLE_HS_ENOENT;
    }
    uint8_t handler_key_buf[sizeof(ble_addr_t) + 2];
    size_t key_len = handler_key(obj_type, r, handler_key_buf);
    mp_bondstore_set(&bond_store->store, tag, NULL, 0);
    DEBUG_printf("delete type=%d tag=%08x\n", obj_type, (unsigned)tag);
    mp_nimble_bond_store_changed(obj_type, handler_key_buf, key_len, NULL, 0);
    return 0;
}

// The store is full: unpair the peer paired least recently (its security
// records come first, as every write appends), but never the peer whose
// record does not fit.  NimBLE's ble_store_util_status_rr() would do this,
// but NimBLE 1.4's ble_gap_unpair_oldest_peer() fails with more than one
// bond (it lists the peers into a buffer of one).
static int store_status(struct ble_store_status_event *event, void *arg) {
    (void)arg;
    if (event->event_code != BLE_STORE_EVENT_OVERFLOW || bond_store == NULL) {
        return 0; // BLE_STORE_EVENT_FULL: nothing to do until it overflows
    }
    const ble_addr_t *keep = event->overflow.obj_type == BLE_STORE_OBJ_TYPE_CCCD
        ? &event->overflow.value->cccd.peer_addr : &event->overflow.value->sec.peer_addr;
    ble_addr_t oldest;
    uint32_t tag;
    int count;
    const uint8_t *r;
    for (int i = 0; (r = find(BLE_STORE_OBJ_TYPE_PEER_SEC, NULL, i, &tag, &count)) != NULL; ++i) {
        get_addr(r, &oldest);
        if (ble_addr_cmp(&oldest, keep) != 0) {
            DEBUG_printf("full: unpair the oldest peer\n");
            return ble_gap_unpair(&oldest);
        }
    }
    return BLE_HS_ESTORE_CAP;
}

#ifdef BLE_STORE_GEN_KEY_IRK
// esp-nimble asks for our IRK at host startup (ble_hs_startup.c), before the
// sync callback; other keys are left to NimBLE.
static int store_gen_key(uint8_t key, struct ble_store_gen_key *gen_key, uint16_t conn_handle) {
    (void)conn_handle;
    if (key == BLE_STORE_GEN_KEY_IRK && mp_nimble_bond_store_get_key(MP_NIMBLE_SECRET_TYPE_OUR_IRK, gen_key->irk, 16)) {
        return 0;
    }
    return BLE_HS_ENOENT;
}
#endif

// Whether the store holds a record of obj_type for the peer of record r.
static bool has_record_for_peer(int obj_type, const uint8_t *r) {
    union ble_store_key key;
    memset(&key, 0, sizeof(key));
    get_addr(r, &key.sec.peer_addr); // cccd.peer_addr is at the same place
    uint32_t tag;
    int count;
    return find(obj_type, &key, 0, &tag, &count) != NULL;
}

// A bond is two security records (ble_sm_persist_keys() writes both), and a
// CCCD is kept only for a bonded peer.  A record whose bond lost its other
// half (a damaged file whose intact records were salvaged) is removed, so
// that a peer is either fully bonded or not at all.
static void drop_partial_bonds(void) {
    static const int partner[] = {
        [BLE_STORE_OBJ_TYPE_OUR_SEC] = BLE_STORE_OBJ_TYPE_PEER_SEC,
        [BLE_STORE_OBJ_TYPE_PEER_SEC] = BLE_STORE_OBJ_TYPE_OUR_SEC,
        [BLE_STORE_OBJ_TYPE_CCCD] = BLE_STORE_OBJ_TYPE_PEER_SEC,
    };
    for (int obj_type = BLE_STORE_OBJ_TYPE_OUR_SEC; obj_type <= BLE_STORE_OBJ_TYPE_CCCD; ++obj_type) {
        uint32_t tag;
        int count;
        const uint8_t *r;
        for (int i = 0; (r = find(obj_type, NULL, i, &tag, &count)) != NULL;) {
            if (has_record_for_peer(partner[obj_type], r)) {
                ++i;
            } else {
                DEBUG_printf("drop partial bond record %08x\n", (unsigned)tag);
                mp_bondstore_set(&bond_store->store, tag, NULL, 0);
            }
        }
    }
}

void mp_nimble_bond_store_bind(mp_nimble_bond_store_t *bs) {
    bond_store = bs;
    if (bs != NULL) {
        drop_partial_bonds();
    }
}

void mp_nimble_bond_store_set_callbacks(void) {
    ble_hs_cfg.store_read_cb = store_read;
    ble_hs_cfg.store_write_cb = store_write;
    ble_hs_cfg.store_delete_cb = store_delete;
    ble_hs_cfg.store_status_cb = store_status;
    #ifdef BLE_STORE_GEN_KEY_IRK
    ble_hs_cfg.store_gen_key_cb = store_gen_key;
    #endif
}

int mp_nimble_bond_store_import(int obj_type, const uint8_t *value, size_t len) {
    union ble_store_value v;
    size_t expected = obj_type == BLE_STORE_OBJ_TYPE_CCCD ? sizeof(v.cccd) : sizeof(v.sec);
    if (bond_store == NULL || len != expected) {
        return BLE_HS_EINVAL;
    }
    memcpy(&v, value, len);
    uint8_t r[MP_NIMBLE_BOND_STORE_SEC_LEN];
    union ble_store_key key;
    encode(obj_type, &v, r, &key);
    return keep_record(obj_type, r, &key);
}

static uint32_t key_tag(int type) {
    return type == MP_NIMBLE_SECRET_TYPE_OUR_IRK ? TAG_OUR_IRK : TAG_STATIC_ADDRESS;
}

bool mp_nimble_bond_store_get_key(int type, uint8_t *buf, size_t len) {
    return bond_store != NULL && mp_bondstore_get(&bond_store->store, key_tag(type), buf, len) == (int)len;
}

int mp_nimble_bond_store_set_key(int type, const uint8_t *buf, size_t len) {
    return bond_store == NULL ? MP_BONDSTORE_ERR_IO : mp_bondstore_set(&bond_store->store, key_tag(type), buf, len);
}

int mp_nimble_bond_store_commit(void) {
    if (bond_store == NULL) {
        return 0;
    }
    // Before the host starts and after it stops no callback can run (and
    // the lock may not exist).
    bool locked = ble_hs_is_enabled();
    if (locked) {
        ble_hs_lock();
    }
    int err = mp_bondstore_commit(&bond_store->store);
    if (locked) {
        ble_hs_unlock();
    }
    return err;
}

#endif // MICROPY_BLUETOOTH_NIMBLE_BOND_STORE
