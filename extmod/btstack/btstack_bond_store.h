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
#ifndef MICROPY_INCLUDED_EXTMOD_BTSTACK_BTSTACK_BOND_STORE_H
#define MICROPY_INCLUDED_EXTMOD_BTSTACK_BTSTACK_BOND_STORE_H

#include "py/obj.h"

// Persistent bonds for the BTstack binding.
//
// BTstack keeps everything it must remember across restarts in its TLV
// (tag/length/value) interface: the LE device DB ('BTD'+index, i.e. the
// bonds), the stack's own ER/IR keys ('SMER'/'SMIR') and bonded peers'
// CCCDs ('BTC'+index).  This module implements that interface on the bond
// store (extmod/bondstore), a file on MicroPython's filesystem, and mirrors
// every change to an _IRQ_SET_SECRET handler if the application has one
// (aioble's pattern), so both keep working:
//
// - At active(1) the file is loaded into RAM.  Then, for every tag BTstack
//   may read, an _IRQ_GET_SECRET handler is asked (type
//   MP_BLUETOOTH_BTSTACK_SECRET_TYPE_TLV, key = the 4-byte tag, big
//   endian); a bytes value it returns wins over the file and is written to
//   it.  During the session BTstack's lookups are served from RAM.
// - BTstack's stores and deletes change RAM only (stack callbacks never do
//   file I/O); they are written to the file together, when the stack's event
//   loop next runs outside any filesystem operation, and always before an
//   _IRQ_ENCRYPTION_UPDATE reports a new bond (see
//   mp_bluetooth_btstack_bond_store_commit()).
// - A device-DB entry that names a peer but has no keys yet is not a bond:
//   it is kept out of the file until its keys arrive, so a power cut during
//   pairing leaves the peer either fully bonded or not bonded at all.
// - Missing ER/IR keys are generated from the port's random number source
//   (mp_hal_get_random) once, and kept.
// - Without a public or controller-supplied address, the random static
//   address generated at first start is kept too (tag 'MPSA'), so the
//   device's identity, and with it every peer's bond, survives restarts.

// Secret type used for BTstack TLV entries in _IRQ_GET/SET_SECRET.
#define MP_BLUETOOTH_BTSTACK_SECRET_TYPE_TLV (0x20)

// Called from mp_bluetooth_init() before BTstack's security manager starts:
// loads the store and registers it as BTstack's TLV.  Never raises.
void mp_bluetooth_btstack_bond_store_init(void);

// Called from mp_bluetooth_deinit(): writes pending changes, unregisters the TLV.
void mp_bluetooth_btstack_bond_store_deinit(void);

// Write pending changes to the file now, unless a filesystem operation is in
// progress (mp_vfs_blockdev_busy()): then as soon as the stack's event loop
// runs outside it.  Never raises.
void mp_bluetooth_btstack_bond_store_commit(void);

// Fill addr with the kept random static address, generating and keeping a
// new one if there is none.  Returns false if no address could be provided.
bool mp_bluetooth_btstack_bond_store_static_address(uint8_t *addr);

// The file is MICROPY_BLUETOOTH_BOND_FILE unless ble.config(bond_file=...)
// names another (extmod/bondstore/bondstore_vfs.h).

#endif // MICROPY_INCLUDED_EXTMOD_BTSTACK_BTSTACK_BOND_STORE_H
