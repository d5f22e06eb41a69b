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
#ifndef MICROPY_INCLUDED_EXTMOD_NIMBLE_NIMBLE_BOND_STORE_H
#define MICROPY_INCLUDED_EXTMOD_NIMBLE_NIMBLE_BOND_STORE_H

// Persistent bonds for the NimBLE binding: NimBLE's store callbacks
// (ble_hs_cfg.store_read/write/delete_cb) on the bond store
// (extmod/bondstore).  This file and nimble_bond_store.c see only NimBLE's
// host headers and the store's portable core, so that they compile against
// both lib/mynewt-nimble and Espressif's esp-nimble; modbluetooth_nimble.c
// connects them to MicroPython (the file, the secret handlers, the scheduler).
//
// The records (spec/bond-store.md, "NimBLE records"): our and the peers'
// security records (LTK, EDIV/Rand, IRK, CSRK, key size, authenticated and
// SC flags), bonded peers' CCCDs, our IRK, and the random static address.
// They are kept in a fixed little-endian layout, not as NimBLE's structs,
// whose layout differs between NimBLE versions and compilers.
//
// Like NimBLE's own RAM store, it holds MYNEWT_VAL(BLE_STORE_MAX_BONDS) bonds
// and MYNEWT_VAL(BLE_STORE_MAX_CCCDS) CCCDs, and reports BLE_HS_ESTORE_CAP
// when full; its ble_hs_cfg.store_status_cb then unpairs the oldest peer,
// i.e. the one paired least recently, and NimBLE writes again.
//
// The callbacks run with NimBLE's host lock held (ble_store.c) and change RAM
// only; mp_nimble_bond_store_commit() takes the same lock, so on ports where
// the host runs in its own task (ESP32) a commit never sees half a change.

#include "host/ble_hs.h"
#include "host/ble_store.h"
#include "extmod/bondstore/bondstore.h"

// Secret types of _IRQ_GET_SECRET/_IRQ_SET_SECRET with the NimBLE binding.
// Types 1..3 are NimBLE's BLE_STORE_OBJ_TYPE_*, with the key and value that
// MicroPython has always passed (values are NimBLE's structs as this
// firmware lays them out):
//   1 (our security record), 2 (peer's): key = the peer's identity
//     address as ble_addr_t (7 bytes: type, address least significant byte
//     first); value = struct ble_store_value_sec.
//   3 (CCCD of a bonded peer): key = ble_addr_t + characteristic value
//     handle (2 bytes, little endian); value = struct ble_store_value_cccd.
//   10 (our IRK): key b"irk", value 16 bytes.
//   11 (our random static address): key b"addr", value 6 bytes, most
//     significant first (as BTstack's 'MPSA' tag).
#define MP_NIMBLE_SECRET_TYPE_OUR_IRK (10)
#define MP_NIMBLE_SECRET_TYPE_STATIC_ADDRESS (11)

// esp-nimble (ESP-IDF) keys security records by address only and adds a
// bond count and a sign counter; NimBLE 1.4 (lib/mynewt-nimble) also keys
// them by EDIV/Rand.  esp-nimble is recognised by its local-IRK store type.
#ifndef MP_NIMBLE_BOND_STORE_ESP_NIMBLE
#ifdef BLE_STORE_OBJ_TYPE_LOCAL_IRK
#define MP_NIMBLE_BOND_STORE_ESP_NIMBLE (1)
#else
#define MP_NIMBLE_BOND_STORE_ESP_NIMBLE (0)
#endif
#endif

// Record value lengths (spec/bond-store.md).
#define MP_NIMBLE_BOND_STORE_SEC_LEN (71)
#define MP_NIMBLE_BOND_STORE_CCCD_LEN (12)

#define MP_NIMBLE_BOND_STORE_RECORDS_SIZE ( \
    MP_BONDSTORE_RECORDS_SIZE(2 * MYNEWT_VAL(BLE_STORE_MAX_BONDS), MP_NIMBLE_BOND_STORE_SEC_LEN) \
    + MP_BONDSTORE_RECORDS_SIZE(MYNEWT_VAL(BLE_STORE_MAX_CCCDS), MP_NIMBLE_BOND_STORE_CCCD_LEN) \
    + MP_BONDSTORE_RECORDS_SIZE(1, 16) /* our IRK */ \
    + MP_BONDSTORE_RECORDS_SIZE(1, 6)) /* static address */

typedef struct _mp_nimble_bond_store_t {
    mp_bondstore_t store;
    uint8_t records[MP_NIMBLE_BOND_STORE_RECORDS_SIZE];
} mp_nimble_bond_store_t;

// Implemented by the binding: a record changed (value NULL: deleted).  Key
// and value are as for _IRQ_SET_SECRET (above).  Called from the store
// callbacks, with the host lock held.
void mp_nimble_bond_store_changed(int type, const uint8_t *key, size_t key_len, const uint8_t *value, size_t value_len);

// Serve NimBLE's store callbacks from bs (already loaded), after removing
// what is left of a bond that lost a record (see drop_partial_bonds());
// NULL unbinds.
void mp_nimble_bond_store_bind(mp_nimble_bond_store_t *bs);

// Point ble_hs_cfg's store and status callbacks (and, on esp-nimble, the
// IRK generator) at this store.  Call it before the host starts and again from
// the sync callback: ESP-IDF 5.5.3 and later overwrite them at startup.
void mp_nimble_bond_store_set_callbacks(void);

// Take a value from an _IRQ_GET_SECRET handler (type 1..3: NimBLE's struct)
// into RAM, replacing the record for the same key.  Returns 0, or
// BLE_HS_EINVAL if the value has the wrong size for the type.
int mp_nimble_bond_store_import(int type, const uint8_t *value, size_t len);

// Our IRK (MP_NIMBLE_SECRET_TYPE_OUR_IRK, 16 bytes) or static address
// (MP_NIMBLE_SECRET_TYPE_STATIC_ADDRESS, 6 bytes): get returns false if the
// store holds none; set returns an MP_BONDSTORE_* code.  RAM only.
bool mp_nimble_bond_store_get_key(int type, uint8_t *buf, size_t len);
int mp_nimble_bond_store_set_key(int type, const uint8_t *buf, size_t len);

// Write pending changes to the file (under the host lock while the host
// runs); returns
// mp_bondstore_commit()'s code.
int mp_nimble_bond_store_commit(void);

#endif // MICROPY_INCLUDED_EXTMOD_NIMBLE_NIMBLE_BOND_STORE_H
