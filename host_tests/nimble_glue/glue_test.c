// Unit test of extmod/nimble/nimble_bond_store.c on the build machine: the
// glue and the bond store's core, compiled against a NimBLE tree's headers
// (see mpoverlay/nimble_glue.py), with the few NimBLE functions the glue
// calls stubbed below.  NimBLE's store callbacks are called the way
// ble_store.c does; prints "N checks passed" or the first failed check.

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "extmod/nimble/nimble_bond_store.h"

#define CHECK(cond) do { \
        if (!(cond)) { \
            printf("FAILED %s:%d: %s\n", __FILE__, __LINE__, #cond); \
            exit(1); \
        } \
        ++checks; \
} while (0)

static int checks;

// --- What the glue needs from NimBLE and from the binding ------------------

struct ble_hs_cfg ble_hs_cfg;
static int lock_depth;
static int max_lock_depth;
static bool host_enabled;

void ble_hs_lock(void) {
    if (++lock_depth > max_lock_depth) {
        max_lock_depth = lock_depth;
    }
}

void ble_hs_unlock(void) {
    --lock_depth;
}

int ble_hs_is_enabled(void) {
    return host_enabled;
}

// As NimBLE's: forget every record of the peer.
int ble_gap_unpair(const ble_addr_t *peer_addr) {
    union ble_store_key key;
    memset(&key, 0, sizeof(key));
    key.sec.peer_addr = *peer_addr;
    while (ble_hs_cfg.store_delete_cb(BLE_STORE_OBJ_TYPE_OUR_SEC, &key) == 0) {
    }
    while (ble_hs_cfg.store_delete_cb(BLE_STORE_OBJ_TYPE_PEER_SEC, &key) == 0) {
    }
    memset(&key, 0, sizeof(key));
    key.cccd.peer_addr = *peer_addr;
    while (ble_hs_cfg.store_delete_cb(BLE_STORE_OBJ_TYPE_CCCD, &key) == 0) {
    }
    return 0;
}

// The last change mirrored to the handler.
static int changes;
static int changed_type;
static uint8_t changed_key[16];
static size_t changed_key_len;
static bool changed_deleted;

void mp_nimble_bond_store_changed(int type, const uint8_t *key, size_t key_len, const uint8_t *value, size_t value_len) {
    (void)value_len;
    ++changes;
    changed_type = type;
    memcpy(changed_key, key, key_len);
    changed_key_len = key_len;
    changed_deleted = value == NULL;
}

// --- The store under test, in RAM ----------------------------------------

static int no_file(void *ctx, int file, int mode, void **fh) {
    (void)ctx;
    (void)file;
    (void)mode;
    (void)fh;
    return MP_BONDSTORE_ERR_NOENT;
}

static const mp_bondstore_io_t ram_io = { .open = no_file, .crc = mp_bondstore_crc };
static mp_nimble_bond_store_t bs;

static void fresh_store(void) {
    memset(&bs, 0, sizeof(bs));
    mp_bondstore_init(&bs.store, &ram_io, NULL, bs.records, sizeof(bs.records));
    mp_bondstore_load(&bs.store);
    mp_nimble_bond_store_bind(&bs);
    mp_nimble_bond_store_set_callbacks();
    changes = 0;
}

static ble_addr_t addr(uint8_t n) {
    ble_addr_t a = { .type = BLE_ADDR_RANDOM, .val = { n, 1, 2, 3, 4, 0xc5 } };
    return a;
}

static struct ble_store_value_sec sec(uint8_t n, uint8_t key_byte) {
    struct ble_store_value_sec v;
    memset(&v, 0, sizeof(v));
    v.peer_addr = addr(n);
    v.key_size = 16;
    v.ediv = 0x1234;
    v.rand_num = 0x1122334455667788ull;
    memset(v.ltk, key_byte, 16);
    v.ltk_present = 1;
    memset(v.irk, key_byte + 1, 16);
    v.irk_present = 1;
    v.authenticated = 0;
    v.sc = 1;
    return v;
}

// Write a bond (our record, then the peer's) as ble_store.c does, running
// the status callback on overflow.
static int write_obj(int type, const union ble_store_value *v) {
    for (;;) {
        int rc = ble_hs_cfg.store_write_cb(type, v);
        if (rc != BLE_HS_ESTORE_CAP) {
            return rc;
        }
        struct ble_store_status_event event = {
            .event_code = BLE_STORE_EVENT_OVERFLOW,
            .overflow = { .obj_type = type, .value = v },
        };
        rc = ble_hs_cfg.store_status_cb(&event, NULL);
        if (rc != 0) {
            return rc;
        }
    }
}

static void bond(uint8_t n, uint8_t key_byte) {
    union ble_store_value v = { .sec = sec(n, key_byte) };
    CHECK(write_obj(BLE_STORE_OBJ_TYPE_OUR_SEC, &v) == 0);
    CHECK(write_obj(BLE_STORE_OBJ_TYPE_PEER_SEC, &v) == 0);
}

static int read_sec(int type, const ble_addr_t *a, int idx, struct ble_store_value_sec *out) {
    union ble_store_key key;
    memset(&key, 0, sizeof(key));
    key.sec.peer_addr = a ? *a : *BLE_ADDR_ANY;
    key.sec.idx = idx;
    union ble_store_value value;
    int rc = ble_hs_cfg.store_read_cb(type, &key, &value);
    if (rc == 0) {
        *out = value.sec;
    }
    return rc;
}

static int count(int type) {
    struct ble_store_value_sec v;
    int n = 0;
    while (read_sec(type, NULL, n, &v) == 0) {
        ++n;
    }
    return n;
}

// --- Tests -----------------------------------------------------------------

static void test_security_records_round_trip(void) {
    fresh_store();
    bond(1, 0xa0);
    struct ble_store_value_sec want = sec(1, 0xa0), got;
    ble_addr_t a = addr(1);
    CHECK(read_sec(BLE_STORE_OBJ_TYPE_PEER_SEC, &a, 0, &got) == 0);
    CHECK(ble_addr_cmp(&got.peer_addr, &want.peer_addr) == 0);
    CHECK(got.key_size == 16 && got.ediv == 0x1234 && got.rand_num == want.rand_num);
    CHECK(memcmp(got.ltk, want.ltk, 16) == 0 && memcmp(got.irk, want.irk, 16) == 0);
    CHECK(got.ltk_present && got.irk_present && !got.csrk_present && got.sc && !got.authenticated);
    ble_addr_t other = addr(2);
    CHECK(read_sec(BLE_STORE_OBJ_TYPE_PEER_SEC, &other, 0, &got) == BLE_HS_ENOENT);
    // The handler saw the peer's record last, keyed by the 7-byte address.
    CHECK(changes == 2 && changed_type == BLE_STORE_OBJ_TYPE_PEER_SEC && !changed_deleted);
    CHECK(changed_key_len == sizeof(ble_addr_t) && memcmp(changed_key, &a, sizeof(a)) == 0);
}

static void test_a_peer_has_one_record_of_each_kind(void) {
    fresh_store();
    bond(1, 0xa0);
    bond(1, 0xb0); // pairs again: new keys, new EDIV/Rand would not matter
    CHECK(count(BLE_STORE_OBJ_TYPE_OUR_SEC) == 1 && count(BLE_STORE_OBJ_TYPE_PEER_SEC) == 1);
    struct ble_store_value_sec got;
    CHECK(read_sec(BLE_STORE_OBJ_TYPE_OUR_SEC, NULL, 0, &got) == 0 && got.ltk[0] == 0xb0);
}

static void test_ediv_and_rand_select_a_record(void) {
    #if !MP_NIMBLE_BOND_STORE_ESP_NIMBLE
    fresh_store();
    bond(1, 0xa0);
    union ble_store_key key;
    memset(&key, 0, sizeof(key));
    key.sec.peer_addr = addr(1);
    key.sec.ediv_rand_present = 1;
    key.sec.ediv = 0x1234;
    key.sec.rand_num = 0x1122334455667788ull;
    union ble_store_value value;
    CHECK(ble_hs_cfg.store_read_cb(BLE_STORE_OBJ_TYPE_OUR_SEC, &key, &value) == 0);
    key.sec.ediv = 0x4321;
    CHECK(ble_hs_cfg.store_read_cb(BLE_STORE_OBJ_TYPE_OUR_SEC, &key, &value) == BLE_HS_ENOENT);
    #endif
}

static void test_full_store_replaces_the_least_recently_paired(void) {
    fresh_store();
    int max = MYNEWT_VAL(BLE_STORE_MAX_BONDS);
    for (int n = 0; n < max; ++n) {
        bond(n, n);
    }
    bond(0, 0x55); // re-pairing peer 0 makes peer 1 the least recent
    CHECK(count(BLE_STORE_OBJ_TYPE_PEER_SEC) == max);
    bond(max, 0x77);
    CHECK(count(BLE_STORE_OBJ_TYPE_PEER_SEC) == max && count(BLE_STORE_OBJ_TYPE_OUR_SEC) == max);
    struct ble_store_value_sec got;
    ble_addr_t gone = addr(1), kept = addr(0), new_peer = addr(max);
    CHECK(read_sec(BLE_STORE_OBJ_TYPE_PEER_SEC, &gone, 0, &got) == BLE_HS_ENOENT);
    CHECK(read_sec(BLE_STORE_OBJ_TYPE_OUR_SEC, &gone, 0, &got) == BLE_HS_ENOENT);
    CHECK(read_sec(BLE_STORE_OBJ_TYPE_PEER_SEC, &kept, 0, &got) == 0);
    CHECK(read_sec(BLE_STORE_OBJ_TYPE_PEER_SEC, &new_peer, 0, &got) == 0);
}

static void test_cccds_by_peer_and_handle(void) {
    fresh_store();
    bond(1, 0xa0);
    union ble_store_value v;
    memset(&v, 0, sizeof(v));
    v.cccd.peer_addr = addr(1);
    v.cccd.chr_val_handle = 0x0010;
    v.cccd.flags = 1;
    CHECK(write_obj(BLE_STORE_OBJ_TYPE_CCCD, &v) == 0);
    CHECK(changed_type == BLE_STORE_OBJ_TYPE_CCCD && changed_key_len == sizeof(ble_addr_t) + 2);
    CHECK(changed_key[sizeof(ble_addr_t)] == 0x10 && changed_key[sizeof(ble_addr_t) + 1] == 0);
    v.cccd.chr_val_handle = 0x0020;
    v.cccd.flags = 2;
    CHECK(write_obj(BLE_STORE_OBJ_TYPE_CCCD, &v) == 0);
    v.cccd.flags = 3; // the same CCCD again: replaced
    CHECK(write_obj(BLE_STORE_OBJ_TYPE_CCCD, &v) == 0);
    union ble_store_key key;
    union ble_store_value got;
    memset(&key, 0, sizeof(key));
    key.cccd.peer_addr = addr(1);
    key.cccd.chr_val_handle = 0x0020;
    CHECK(ble_hs_cfg.store_read_cb(BLE_STORE_OBJ_TYPE_CCCD, &key, &got) == 0 && got.cccd.flags == 3);
    key.cccd.chr_val_handle = 0; // any handle: two of them
    key.cccd.idx = 1;
    CHECK(ble_hs_cfg.store_read_cb(BLE_STORE_OBJ_TYPE_CCCD, &key, &got) == 0);
    key.cccd.idx = 2;
    CHECK(ble_hs_cfg.store_read_cb(BLE_STORE_OBJ_TYPE_CCCD, &key, &got) == BLE_HS_ENOENT);
    // Unpairing the peer takes its CCCDs too, each deletion mirrored.
    ble_addr_t a = addr(1);
    CHECK(ble_gap_unpair(&a) == 0);
    key.cccd.idx = 0;
    CHECK(ble_hs_cfg.store_read_cb(BLE_STORE_OBJ_TYPE_CCCD, &key, &got) == BLE_HS_ENOENT);
    CHECK(changed_deleted && changed_type == BLE_STORE_OBJ_TYPE_CCCD);
    CHECK(count(BLE_STORE_OBJ_TYPE_PEER_SEC) == 0);
}

static void test_delete_of_nothing_says_so(void) {
    fresh_store();
    union ble_store_key key;
    memset(&key, 0, sizeof(key));
    key.sec.peer_addr = addr(9);
    CHECK(ble_hs_cfg.store_delete_cb(BLE_STORE_OBJ_TYPE_PEER_SEC, &key) == BLE_HS_ENOENT);
    CHECK(changes == 0);
}

static void test_half_a_bond_is_dropped_at_bind(void) {
    fresh_store();
    bond(1, 0xa0);
    bond(2, 0xb0);
    union ble_store_value v;
    memset(&v, 0, sizeof(v));
    v.cccd.peer_addr = addr(3); // a CCCD of a peer with no bond
    v.cccd.chr_val_handle = 0x0010;
    CHECK(write_obj(BLE_STORE_OBJ_TYPE_CCCD, &v) == 0);
    // Peer 2 loses its peer record, as a salvaged damaged file would.
    union ble_store_key key;
    memset(&key, 0, sizeof(key));
    key.sec.peer_addr = addr(2);
    CHECK(ble_hs_cfg.store_delete_cb(BLE_STORE_OBJ_TYPE_PEER_SEC, &key) == 0);
    mp_nimble_bond_store_bind(&bs);
    struct ble_store_value_sec got;
    ble_addr_t a1 = addr(1), a2 = addr(2);
    CHECK(read_sec(BLE_STORE_OBJ_TYPE_OUR_SEC, &a2, 0, &got) == BLE_HS_ENOENT);
    CHECK(read_sec(BLE_STORE_OBJ_TYPE_OUR_SEC, &a1, 0, &got) == 0);
    memset(&key, 0, sizeof(key));
    union ble_store_value cccd;
    CHECK(ble_hs_cfg.store_read_cb(BLE_STORE_OBJ_TYPE_CCCD, &key, &cccd) == BLE_HS_ENOENT);
}

static void test_import_checks_the_size(void) {
    fresh_store();
    struct ble_store_value_sec v = sec(4, 0xc0);
    CHECK(mp_nimble_bond_store_import(BLE_STORE_OBJ_TYPE_OUR_SEC, (const uint8_t *)&v, sizeof(v)) == 0);
    CHECK(mp_nimble_bond_store_import(BLE_STORE_OBJ_TYPE_PEER_SEC, (const uint8_t *)&v, sizeof(v) - 1) == BLE_HS_EINVAL);
    CHECK(count(BLE_STORE_OBJ_TYPE_OUR_SEC) == 1 && count(BLE_STORE_OBJ_TYPE_PEER_SEC) == 0);
    CHECK(changes == 0); // what came from the handler is not mirrored back
}

static void test_keys_and_other_objects(void) {
    fresh_store();
    uint8_t irk[16], back[16];
    memset(irk, 0x42, sizeof(irk));
    CHECK(!mp_nimble_bond_store_get_key(MP_NIMBLE_SECRET_TYPE_OUR_IRK, back, 16));
    CHECK(mp_nimble_bond_store_set_key(MP_NIMBLE_SECRET_TYPE_OUR_IRK, irk, 16) == 0);
    CHECK(mp_nimble_bond_store_get_key(MP_NIMBLE_SECRET_TYPE_OUR_IRK, back, 16) && memcmp(irk, back, 16) == 0);
    CHECK(!mp_nimble_bond_store_get_key(MP_NIMBLE_SECRET_TYPE_STATIC_ADDRESS, back, 6));
    #ifdef BLE_STORE_GEN_KEY_IRK
    struct ble_store_gen_key gen;
    memset(&gen, 0, sizeof(gen));
    CHECK(ble_hs_cfg.store_gen_key_cb(BLE_STORE_GEN_KEY_IRK, &gen, BLE_HS_CONN_HANDLE_NONE) == 0);
    CHECK(memcmp(gen.irk, irk, 16) == 0);
    CHECK(ble_hs_cfg.store_gen_key_cb(BLE_STORE_GEN_KEY_LTK, &gen, 0) != 0);
    #endif
    union ble_store_key key;
    union ble_store_value value;
    memset(&key, 0, sizeof(key));
    CHECK(ble_hs_cfg.store_read_cb(99, &key, &value) == BLE_HS_ENOTSUP);
}

static void test_commit_holds_the_host_lock_while_the_host_runs(void) {
    fresh_store();
    bond(1, 0xa0);
    max_lock_depth = 0;
    host_enabled = false;
    mp_nimble_bond_store_commit();
    CHECK(max_lock_depth == 0);
    host_enabled = true;
    mp_nimble_bond_store_commit();
    CHECK(max_lock_depth == 1 && lock_depth == 0);
    host_enabled = false;
}

static void test_unbound_store_answers_nothing(void) {
    fresh_store();
    mp_nimble_bond_store_bind(NULL);
    struct ble_store_value_sec got;
    CHECK(read_sec(BLE_STORE_OBJ_TYPE_PEER_SEC, NULL, 0, &got) == BLE_HS_ENOTSUP);
    CHECK(mp_nimble_bond_store_commit() == 0);
}

int main(void) {
    test_security_records_round_trip();
    test_a_peer_has_one_record_of_each_kind();
    test_ediv_and_rand_select_a_record();
    test_full_store_replaces_the_least_recently_paired();
    test_cccds_by_peer_and_handle();
    test_delete_of_nothing_says_so();
    test_half_a_bond_is_dropped_at_bind();
    test_import_checks_the_size();
    test_keys_and_other_objects();
    test_commit_holds_the_host_lock_while_the_host_runs();
    test_unbound_store_answers_nothing();
    printf("%d checks passed\n", checks);
    return 0;
}
