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
#ifndef MICROPY_INCLUDED_EXTMOD_BTSTACK_MP_TLVSTORE_VFS_H
#define MICROPY_INCLUDED_EXTMOD_BTSTACK_MP_TLVSTORE_VFS_H

#include "py/obj.h"
#include "extmod/btstack/mp_tlvstore.h"

// Connects the portable TLV store to MicroPython's VFS: the store's two
// files are "<path>" and "<path>.new" on whatever filesystem is mounted
// there (littlefs on rp2, the host's filesystem through VfsPosix on unix).
//
// Every VFS call is made under nlr protection, so an exception raised by a
// filesystem (full, read-only, removed card...) becomes an MP_TLVSTORE_ERR_*
// code and never propagates into the Bluetooth stack that called the store.

typedef struct _mp_tlvstore_vfs_t {
    mp_obj_t path[2]; // str objects, indexed by MP_TLVSTORE_FILE_MAIN/SIDE
} mp_tlvstore_vfs_t;

extern const mp_tlvstore_io_t mp_tlvstore_vfs_io;

// Prepare ctx for the store file at path (allocates the two path strings,
// so call it outside any stack callback).  Returns false, with the error
// printed, if the path cannot be used.
bool mp_tlvstore_vfs_init(mp_tlvstore_vfs_t *ctx, const char *path);

#endif // MICROPY_INCLUDED_EXTMOD_BTSTACK_MP_TLVSTORE_VFS_H
