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
#ifndef MICROPY_INCLUDED_EXTMOD_BONDSTORE_BONDSTORE_H
#define MICROPY_INCLUDED_EXTMOD_BONDSTORE_BONDSTORE_H

// Portable, power-loss-safe store of a Bluetooth stack's bond records
// (tag -> value of 0..255 bytes), kept in one file.  spec/bond-store.md is the
// on-disk specification.
//
// The invariant that explains every guarantee: the file always holds one
// complete, CRC-checked image of the whole store; a commit writes the next
// image where it cannot damage the current one, and only then removes the
// current one.  Changes are made in RAM (set/delete) and become durable
// together at commit(), so a caller can make a multi-record change atomic.
//
// No MicroPython or Bluetooth-stack headers, no dynamic allocation: the
// caller supplies the RAM (mp_bondstore_t and the record buffer) and the file
// access (mp_bondstore_io_t).

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

// On-disk constants (spec/bond-store.md, section 2).  tools/bondfile.py and
// the host tests read them from here.
#define MP_BONDSTORE_MAGIC "MPBS"
#define MP_BONDSTORE_VERSION (2)
#define MP_BONDSTORE_HEADER_LEN (16)     // image header, with these fields:
#define MP_BONDSTORE_HEADER_VERSION (4)  //   u8 format version
#define MP_BONDSTORE_HEADER_ZERO (5)     //   u8 reserved, 0
#define MP_BONDSTORE_HEADER_LENGTH (6)   //   u16 records' length
#define MP_BONDSTORE_HEADER_GENERATION (8) // u32
#define MP_BONDSTORE_HEADER_CRC (12)     //   u32 CRC of bytes 0..11 and the records
#define MP_BONDSTORE_RECORD_HEADER_LEN (5) // tag (u32) + length (u8, at 4)
#define MP_BONDSTORE_RECORD_LENGTH (4)
#define MP_BONDSTORE_RECORD_OVERHEAD (9)   // header + CRC-32 (4) after the value
#define MP_BONDSTORE_VALUE_MAX (255)
#define MP_BONDSTORE_IMAGE_ALIGN (512)   // images start at multiples of this
#define MP_BONDSTORE_FILE_MAX (65536)    // larger files are not bond stores
// Format version 1 (read once, then rewritten as version 2).
#define MP_BONDSTORE_V1_MAGIC "MPTLVDB\x1a"
#define MP_BONDSTORE_V1_SIDE_MAGIC "MPTLVSN\x1a"
#define MP_BONDSTORE_V1_HEADER_LEN (24)
#define MP_BONDSTORE_V1_SIDE_HEADER_LEN (32)
#define MP_BONDSTORE_V1_SLOT_HEADER_LEN (8)
#define MP_BONDSTORE_V1_RECORD_HEADER_LEN (12)

// Where a commit on a non-atomic filesystem puts the second image: the next
// multiple of this after the largest image, so that the two images never
// share a flash sector or FAT cluster (rp2: 4096-byte erase sectors).
#ifndef MP_BONDSTORE_COPY_ALIGN
#define MP_BONDSTORE_COPY_ALIGN (4096)
#endif

// Read files of format version 1 (and rewrite them as version 2).  Costs
// about 800 bytes of code; can go once no device has such a file.
#ifndef MP_BONDSTORE_MIGRATE_V1
#define MP_BONDSTORE_MIGRATE_V1 (1)
#endif

// Distinct tags a version-1 file may hold (its writer's table size); only
// needed to migrate such a file.
#ifndef MP_BONDSTORE_V1_MAX_TAGS
#define MP_BONDSTORE_V1_MAX_TAGS (48)
#endif

// Bytes of record buffer needed for n values of len bytes each.
#define MP_BONDSTORE_RECORDS_SIZE(n, len) ((n) * (MP_BONDSTORE_RECORD_OVERHEAD + (len)))

// Result codes.  Codes below MP_BONDSTORE_ERR_IO come from the file system:
// a commit that returns one has changed nothing on disk that matters (the
// file still holds the previous state) and the RAM state stays pending.
#define MP_BONDSTORE_OK (0)
#define MP_BONDSTORE_ERR_NOT_FOUND (-1) // get(): no such tag
#define MP_BONDSTORE_ERR_TOO_BIG (-2)   // value longer than MP_BONDSTORE_VALUE_MAX
#define MP_BONDSTORE_ERR_FULL (-3)      // record buffer full
#define MP_BONDSTORE_ERR_PROTECTED (-4) // the file is not ours to write (see mode)
#define MP_BONDSTORE_ERR_NOENT (-5)     // io: no such file
#define MP_BONDSTORE_ERR_IO (-16)       // io: any other failure
#define MP_BONDSTORE_ERR_NOSPC (-17)    // io: filesystem full
#define MP_BONDSTORE_ERR_ROFS (-18)     // io: read-only filesystem

// The files the store uses; the adapter maps them to names.
#define MP_BONDSTORE_FILE_MAIN (0)    // the bond file, e.g. "/.btstack_bonds"
#define MP_BONDSTORE_FILE_V1_SIDE (1) // "<bond file>.new", left by format version 1
#define MP_BONDSTORE_FILE_RESERVE (2) // "<bond file>.rsv", space for a delete (atomic mode)

#define MP_BONDSTORE_OPEN_READ (0)   // existing file, read only
#define MP_BONDSTORE_OPEN_RDWR (1)   // existing file, read and write in place
#define MP_BONDSTORE_OPEN_CREATE (2) // create, or truncate to zero, read/write

// io->flags
#define MP_BONDSTORE_IO_ATOMIC (1)   // a file's changes become visible at sync, all at once (littlefs)

// File access, implemented by the adapter.  Functions return >= 0 or an
// MP_BONDSTORE_ERR_* code from the io group.
typedef struct _mp_bondstore_io_t {
    int (*open)(void *ctx, int file, int mode, void **fh);
    // Read up to len bytes at offset; returns the bytes read (short only at EOF).
    int (*read)(void *ctx, void *fh, uint32_t offset, uint8_t *buf, uint32_t len);
    // Write len bytes at offset, extending the file if needed; returns 0.
    int (*write)(void *ctx, void *fh, uint32_t offset, const uint8_t *buf, uint32_t len);
    // A write barrier: what was written before is on the media before anything after.
    int (*sync)(void *ctx, void *fh);
    int (*close)(void *ctx, void *fh);
    // Returns 0 if the file was removed, MP_BONDSTORE_ERR_NOENT if there was none.
    int (*remove)(void *ctx, int file);
    // CRC-32 update with uzlib's signature and convention (uzlib_crc32, which
    // littlefs uses too: no final inversion), so a port can pass the one it
    // already links; or mp_bondstore_crc.
    uint32_t (*crc)(const void *buf, unsigned int len, uint32_t crc);
    uint32_t flags; // MP_BONDSTORE_IO_*
} mp_bondstore_io_t;

// Modes (mp_bondstore_t.mode).
#define MP_BONDSTORE_MODE_NEW (0)       // no file yet, or it held no image
#define MP_BONDSTORE_MODE_OK (1)        // RAM was loaded from the file
#define MP_BONDSTORE_MODE_REWRITE (2)   // salvaged or migrated: the next commit writes a new image beside all of the file
#define MP_BONDSTORE_MODE_PROTECTED (3) // foreign, newer, oversized or unreadable file: never written

// What load() found, for the adapter's one message; in order of importance.
#define MP_BONDSTORE_LOAD_FOREIGN (1)     // the file is not a bond store
#define MP_BONDSTORE_LOAD_NEWER (2)       // written by a newer format version
#define MP_BONDSTORE_LOAD_TOO_BIG (4)     // holds more records than fit the buffer
#define MP_BONDSTORE_LOAD_READ_ERROR (8)
#define MP_BONDSTORE_LOAD_SALVAGED (16)   // no whole image: records that pass their CRC kept
#define MP_BONDSTORE_LOAD_V1_DROPPED (32) // version-1 records that could not be read
#define MP_BONDSTORE_LOAD_MIGRATED (64)   // read from a version-1 file
#define MP_BONDSTORE_LOAD_DAMAGED (128)   // torn or stale bytes found (removed at next commit)

typedef struct _mp_bondstore_t {
    const mp_bondstore_io_t *io;
    void *io_ctx;
    uint8_t *records;      // tag (4, little endian), length (1), value, CRC (4); repeated
    uint16_t capacity;     // size of records[]
    uint16_t used;         // bytes of records[] in use
    uint32_t generation;   // of the image on disk
    uint32_t image_pos;    // where that image starts
    uint16_t image_len;    // and its records' length
    uint32_t file_end;     // bytes of the file that may be non-zero
    uint8_t mode;          // MP_BONDSTORE_MODE_*
    uint8_t found;         // MP_BONDSTORE_LOAD_* flags of the last load
    bool dirty;            // RAM differs from the file
    bool unclean;          // the file holds bytes other than the image
    bool reserved;         // the reserve file is known to exist (atomic mode)
} mp_bondstore_t;

// Bind the store to its RAM and file access; does no I/O.
void mp_bondstore_init(mp_bondstore_t *store, const mp_bondstore_io_t *io, void *io_ctx,
    uint8_t *records, size_t capacity);

// Read the file into RAM.  Returns 0, or MP_BONDSTORE_ERR_PROTECTED when the
// file must be left alone (store->found says why); the store then works in
// RAM only.  Never writes.
int mp_bondstore_load(mp_bondstore_t *store);

// Copy tag's value into buf (at most size bytes).  Returns the value's full
// length, or MP_BONDSTORE_ERR_NOT_FOUND.  RAM only.
int mp_bondstore_get(const mp_bondstore_t *store, uint32_t tag, uint8_t *buf, size_t size);

// Insert, replace or delete (data NULL) a value in RAM; commit() makes it
// durable.  Setting an unchanged value changes nothing.
int mp_bondstore_set(mp_bondstore_t *store, uint32_t tag, const uint8_t *data, size_t len);

// Write RAM to the file if it differs.  After a 0 return the file holds
// exactly the RAM state; no replaced or deleted value is left in it.
int mp_bondstore_commit(mp_bondstore_t *store);

// The i-th record (i from 0): returns false past the last one.
bool mp_bondstore_record(const mp_bondstore_t *store, size_t i, uint32_t *tag, const uint8_t **value, size_t *len);

// CRC-32 (IEEE, reflected) as uzlib_crc32 computes it: start with
// 0xffffffff, invert the result for the zlib value.
uint32_t mp_bondstore_crc(const void *buf, unsigned int len, uint32_t crc);

#endif // MICROPY_INCLUDED_EXTMOD_BONDSTORE_BONDSTORE_H
