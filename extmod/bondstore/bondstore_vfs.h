/*
 * This file is part of the MicroPython project, http://micropython.org/
 *
 * The MIT License (MIT)
 *
 * Copyright (c) 2025 MicroPython BTstack bond-store contributors
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
#ifndef MICROPY_INCLUDED_EXTMOD_BONDSTORE_BONDSTORE_VFS_H
#define MICROPY_INCLUDED_EXTMOD_BONDSTORE_BONDSTORE_VFS_H

#include "py/obj.h"
#include "extmod/bondstore/bondstore.h"

// Connects the bond store to MicroPython's VFS: its files are "<path>",
// "<path>.new" (left by format version 1) and "<path>.rsv" (the reserve) on
// whatever filesystem is mounted there.  On littlefs the store uses atomic
// commits (a file's new content appears at sync), elsewhere in-place ones.
// It also keeps ble.config(bond_file=...) and what both Bluetooth stacks'
// store glue shares: loading with one message, reporting write failures once,
// random numbers and static addresses.
//
// Every VFS call is made under nlr protection: an OSError becomes an
// MP_BONDSTORE_ERR_* code, any other exception (KeyboardInterrupt raised
// while the filesystem ran pending events) is scheduled to be raised again
// once the caller is back in Python, so it is never swallowed.

// The bond file when ble.config(bond_file=...) has not been given.  Ports
// may override it; on unix "~/" is expanded from $HOME.  Each stack has its
// own file: the records are the stack's own.
#ifndef MICROPY_BLUETOOTH_BOND_FILE
#if MICROPY_BLUETOOTH_NIMBLE
#define MP_BONDSTORE_VFS_NAME "nimble_bonds"
#else
#define MP_BONDSTORE_VFS_NAME "btstack_bonds"
#endif
#if MICROPY_VFS_POSIX
#define MICROPY_BLUETOOTH_BOND_FILE "~/.micropython/" MP_BONDSTORE_VFS_NAME
#else
#define MICROPY_BLUETOOTH_BOND_FILE "/." MP_BONDSTORE_VFS_NAME
#endif
#endif

// Longest bond_file path accepted by ble.config() (kept in static RAM).
#ifndef MICROPY_BLUETOOTH_BOND_FILE_MAX
#if MICROPY_VFS_POSIX
#define MICROPY_BLUETOOTH_BOND_FILE_MAX (255)
#else
#define MICROPY_BLUETOOTH_BOND_FILE_MAX (64)
#endif
#endif

typedef struct _mp_bondstore_vfs_t {
    mp_obj_t path[3];    // str objects, indexed by MP_BONDSTORE_FILE_*
    bool persistent;     // false with bond_file=None (or unusable): RAM only
    bool error_reported; // say once per session that writes fail, not per write
} mp_bondstore_vfs_t;

// Bind store to the bond file that ble.config(bond_file=...) names and read
// it into RAM, printing what the user should know about the file in one
// line.  Allocates and does file I/O: call it before the stack starts, never
// from a stack callback.  Never raises.
void mp_bondstore_vfs_load(mp_bondstore_vfs_t *ctx, mp_bondstore_t *store, uint8_t *records, size_t capacity);

// Note the result of mp_bondstore_commit(): a failure is printed once per
// session (until a commit succeeds).  Returns true if the commit should be
// tried again later (the change is still pending).
bool mp_bondstore_vfs_commit_failed(mp_bondstore_vfs_t *ctx, int err);

// Fill buf from the port's random number source; false (the exception
// printed) if it raised.
bool mp_bondstore_vfs_random(uint8_t *buf, size_t len);

// Whether addr (6 bytes, most significant first) is a valid random static
// address, and a new one from mp_bondstore_vfs_random().
bool mp_bondstore_vfs_static_address_valid(const uint8_t *addr);
bool mp_bondstore_vfs_new_static_address(uint8_t *addr);

// Whether key (a stack's root key or IRK) is usable, i.e. not all zero, and a
// new one from mp_bondstore_vfs_random().
bool mp_bondstore_vfs_key_valid(const uint8_t *key, size_t len);
bool mp_bondstore_vfs_new_key(uint8_t *key, size_t len);

// ble.config('bond_file') is implemented by mp_bluetooth_get_bond_file() and
// mp_bluetooth_set_bond_file() (see extmod/modbluetooth.h).

#endif // MICROPY_INCLUDED_EXTMOD_BONDSTORE_BONDSTORE_VFS_H
