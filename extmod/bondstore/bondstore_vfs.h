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
//
// Every VFS call is made under nlr protection: an OSError becomes an
// MP_BONDSTORE_ERR_* code, any other exception (KeyboardInterrupt raised
// while the filesystem ran pending events) is scheduled to be raised again
// once the caller is back in Python, so it is never swallowed.

typedef struct _mp_bondstore_vfs_t {
    mp_obj_t path[3]; // str objects, indexed by MP_BONDSTORE_FILE_*
} mp_bondstore_vfs_t;

// No file at all: the store works in RAM only.
extern const mp_bondstore_io_t mp_bondstore_vfs_no_file;

// Prepare ctx for the bond file at path (allocates, so call it outside any
// stack callback).  Returns the file access to give the store:
// &mp_bondstore_vfs_no_file if path is NULL, or if it cannot be used (the
// error is printed then).
const mp_bondstore_io_t *mp_bondstore_vfs_init(mp_bondstore_vfs_t *ctx, const char *path);

#endif // MICROPY_INCLUDED_EXTMOD_BONDSTORE_BONDSTORE_VFS_H
