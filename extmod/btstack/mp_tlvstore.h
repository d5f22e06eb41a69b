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
#ifndef MICROPY_INCLUDED_EXTMOD_BTSTACK_MP_TLVSTORE_H
#define MICROPY_INCLUDED_EXTMOD_BTSTACK_MP_TLVSTORE_H

// Portable, power-loss-safe tag/length/value store used to persist BTstack
// bonds (le_device_db 'BTD'+i, sm 'SMER'/'SMIR', att_server 'BTC'+i).
//
// This file has no MicroPython or BTstack dependencies and does no dynamic
// allocation: all state lives in mp_tlvstore_t, whose size is fixed by the
// macros below.  File access goes through mp_tlvstore_io_t, supplied by the
// caller (e.g. a VFS adapter).  The on-disk format is specified in
// spec/bond-store.md.

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

// Largest value that may be stored under one tag.  BTstack's largest value is
// the le_device_db entry (60 bytes, 100 with ENABLE_LE_SIGNED_WRITE).  The
// on-disk format (version 1) caps values at 255 bytes.
#ifndef MP_TLVSTORE_MAX_VALUE
#define MP_TLVSTORE_MAX_VALUE (255)
#endif

// Maximum number of live tags: 16 device-DB entries + ER + IR + 20 CCCDs.
#ifndef MP_TLVSTORE_MAX_ENTRIES
#define MP_TLVSTORE_MAX_ENTRIES (40)
#endif

// Bytes of RAM holding all live values (the cache that serves get()).
#ifndef MP_TLVSTORE_CACHE_SIZE
#define MP_TLVSTORE_CACHE_SIZE (1536)
#endif

// Number of free (scrubbed, reusable) slots tracked.  If a file has more, the
// store compacts instead of tracking them.
#ifndef MP_TLVSTORE_MAX_FREE
#define MP_TLVSTORE_MAX_FREE (MP_TLVSTORE_MAX_ENTRIES)
#endif

#if MP_TLVSTORE_MAX_VALUE > 255 || MP_TLVSTORE_MAX_VALUE < 1
#error "MP_TLVSTORE_MAX_VALUE must be 1..255 (format version 1)"
#endif
#if MP_TLVSTORE_CACHE_SIZE > 65535
#error "MP_TLVSTORE_CACHE_SIZE must fit in 16 bits"
#endif

// On-disk constants (see spec/bond-store.md).
#define MP_TLVSTORE_VERSION (1)
#define MP_TLVSTORE_HEADER_LEN (24)      // main file header
#define MP_TLVSTORE_SIDE_HEADER_LEN (32) // side (snapshot) file header
#define MP_TLVSTORE_SLOT_HEADER_LEN (8)
#define MP_TLVSTORE_RECORD_OVERHEAD (16) // record header (12) + CRC-32 (4)
#define MP_TLVSTORE_SCRATCH_SIZE (MP_TLVSTORE_SLOT_HEADER_LEN + MP_TLVSTORE_RECORD_OVERHEAD + MP_TLVSTORE_MAX_VALUE)

// Error codes.  Codes >= MP_TLVSTORE_ERR_IO mean "nothing was changed".
// Codes <= MP_TLVSTORE_ERR_IO (I/O class) returned by a mutating call mean
// the change WAS applied to the RAM cache (so BLE keeps working this session)
// but may not be durable; the store is then in RAM-only (degraded) mode.
#define MP_TLVSTORE_OK (0)
#define MP_TLVSTORE_ERR_INVAL (-1)     // bad argument or store not loaded
#define MP_TLVSTORE_ERR_TOO_BIG (-2)   // value longer than MP_TLVSTORE_MAX_VALUE
#define MP_TLVSTORE_ERR_FULL (-3)      // RAM cache or entry table full
#define MP_TLVSTORE_ERR_NOT_FOUND (-4) // get(): no such tag
#define MP_TLVSTORE_ERR_NOENT (-5)     // io->open(): file does not exist
#define MP_TLVSTORE_ERR_VERSION (-6)   // load(): file written by a newer format
#define MP_TLVSTORE_ERR_IO (-16)       // generic I/O error
#define MP_TLVSTORE_ERR_NOSPC (-17)    // filesystem full
#define MP_TLVSTORE_ERR_ROFS (-18)     // read-only filesystem
#define MP_TLVSTORE_ERR_RAM_ONLY (-19) // store is degraded/protected: RAM only

#define MP_TLVSTORE_ERR_APPLIED_IN_RAM(err) ((err) <= MP_TLVSTORE_ERR_IO)

// The two files used by the store; the adapter maps them to names, e.g.
// "/.btstack_bonds" and "/.btstack_bonds.new" (see spec).
#define MP_TLVSTORE_FILE_MAIN (0)
#define MP_TLVSTORE_FILE_SIDE (1)

// Open modes.
#define MP_TLVSTORE_OPEN_READ (0)   // existing file, read only ("rb")
#define MP_TLVSTORE_OPEN_RDWR (1)   // existing file, read/write, no truncation ("r+b")
#define MP_TLVSTORE_OPEN_CREATE (2) // create or truncate to 0, read/write ("w+b")

// I/O vtable implemented by the adapter.  All functions return >= 0 on
// success or a negative MP_TLVSTORE_ERR_* code (map ENOENT -> ERR_NOENT,
// ENOSPC -> ERR_NOSPC, EROFS -> ERR_ROFS, anything else -> ERR_IO).
// The store never relies on rename; it needs positional read/write, a
// durable sync (a write barrier: data written before sync() returns must be
// on media before anything written after it), and remove.
typedef struct _mp_tlvstore_io_t {
    // Open `file` (MP_TLVSTORE_FILE_*) with `mode` (MP_TLVSTORE_OPEN_*);
    // store an adapter handle in *fh.  Missing file with READ/RDWR -> ERR_NOENT.
    int (*open)(void *ctx, int file, int mode, void **fh);
    // Read up to len bytes at offset; return bytes read (short only at EOF).
    int (*read)(void *ctx, void *fh, uint32_t offset, uint8_t *buf, uint32_t len);
    // Write all len bytes at offset (may extend the file); return 0.
    int (*write)(void *ctx, void *fh, uint32_t offset, const uint8_t *buf, uint32_t len);
    // Make everything written so far durable.
    int (*sync)(void *ctx, void *fh);
    // Close the handle (called exactly once per successful open, also after
    // errors).
    int (*close)(void *ctx, void *fh);
    // Delete `file`; a missing file is success.
    int (*remove)(void *ctx, int file);
    // Optional (may be NULL): truncate an open file to len bytes.  Used to
    // cut a torn tail cheaply; without it the store compacts instead.
    int (*truncate)(void *ctx, void *fh, uint32_t len);
} mp_tlvstore_io_t;

// Load result flags (mp_tlvstore_load_result_t.flags).
#define MP_TLVSTORE_LOAD_NO_FILE (0x0001)        // main file missing: empty store
#define MP_TLVSTORE_LOAD_HEADER_BAD (0x0002)     // main header corrupt/short/garbage
#define MP_TLVSTORE_LOAD_SIDE_REPLAYED (0x0004)  // interrupted compaction completed
#define MP_TLVSTORE_LOAD_SIDE_DISCARDED (0x0008) // stale or torn side file removed
#define MP_TLVSTORE_LOAD_TORN_TAIL (0x0010)      // torn/corrupt tail dropped
#define MP_TLVSTORE_LOAD_CORRUPT_MIDDLE (0x0020) // unparseable bytes skipped mid-file
#define MP_TLVSTORE_LOAD_REPAIRED (0x0040)       // repairs were written successfully
#define MP_TLVSTORE_LOAD_COMPACTED (0x0080)      // file was rewritten by compaction
#define MP_TLVSTORE_LOAD_REPAIR_FAILED (0x0100)  // repair write failed: RAM-only mode
#define MP_TLVSTORE_LOAD_OVERFLOW (0x0200)       // more entries than fit: protected
#define MP_TLVSTORE_LOAD_VERSION (0x0400)        // newer format: protected, not loaded
#define MP_TLVSTORE_LOAD_READ_ERROR (0x0800)     // read failed: protected

typedef struct _mp_tlvstore_load_result_t {
    uint32_t flags;         // MP_TLVSTORE_LOAD_*
    uint16_t entries;       // live entries now in the cache
    uint16_t bad_records;   // slots whose record failed its CRC (torn write)
    uint16_t superseded;    // older duplicate records of a tag (scrubbed)
    uint16_t overflow;      // valid entries that did not fit in RAM
    uint32_t tail_bytes;    // bytes of torn tail dropped
    uint32_t junk_bytes;    // unparseable bytes skipped in the middle
    uint32_t file_size;     // size of main file after load/repair
    uint32_t generation;    // main header generation after load
} mp_tlvstore_load_result_t;

// Internal state; treat as opaque.
typedef struct _mp_tlvstore_entry_t {
    uint32_t tag;
    uint32_t seq;      // record sequence number on disk
    uint32_t slot;     // file offset of the slot header
    uint16_t cap;      // slot capacity (bytes of record area)
    uint16_t len;      // value length
    uint16_t val_off;  // offset of value in cache[]
} mp_tlvstore_entry_t;

typedef struct _mp_tlvstore_free_t {
    uint32_t slot;
    uint16_t cap;
    uint16_t dirty;    // record area not known to be all zero
} mp_tlvstore_free_t;

typedef struct _mp_tlvstore_t {
    const mp_tlvstore_io_t *io;
    void *io_ctx;
    uint32_t file_end;     // logical end of the main file (0: no file)
    uint32_t generation;   // generation in the main header
    uint32_t next_seq;
    uint32_t compactions;  // statistics: number of compactions performed
    uint16_t num_entries;
    uint16_t num_free;
    uint16_t cache_used;
    uint8_t mode;          // internal: MP_TLVSTORE_MODE_*
    uint8_t need_compact;
    mp_tlvstore_entry_t entries[MP_TLVSTORE_MAX_ENTRIES];
    mp_tlvstore_free_t free_slots[MP_TLVSTORE_MAX_FREE];
    uint8_t cache[MP_TLVSTORE_CACHE_SIZE];
    uint8_t scratch[MP_TLVSTORE_SCRATCH_SIZE];
} mp_tlvstore_t;

// Store modes as reported by mp_tlvstore_mode().
#define MP_TLVSTORE_MODE_UNLOADED (0)
#define MP_TLVSTORE_MODE_OK (1)        // RAM cache equals the durable state
#define MP_TLVSTORE_MODE_DEGRADED (2)  // a write failed; RAM-only until a compaction succeeds
#define MP_TLVSTORE_MODE_PROTECTED (3) // file unreadable/newer/overflowing: never written

typedef struct _mp_tlvstore_iter_t {
    uint16_t index;
} mp_tlvstore_iter_t;

// Bind the store to an I/O implementation; does no I/O.
void mp_tlvstore_init(mp_tlvstore_t *store, const mp_tlvstore_io_t *io, void *io_ctx);

// Read the files into RAM, recovering from interrupted operations and
// corruption (repairs are written back).  `result` may be NULL.  Returns 0
// if the store is fully operational, or a negative code if it is usable in
// RAM only (see result->flags).  May be called again to reload.
int mp_tlvstore_load(mp_tlvstore_t *store, mp_tlvstore_load_result_t *result);

// Copy the value of `tag` into buf (at most size bytes; buf may be NULL when
// size is 0).  Returns the value length, or MP_TLVSTORE_ERR_NOT_FOUND.
// Served from RAM, never does I/O.
int mp_tlvstore_get(const mp_tlvstore_t *store, uint32_t tag, uint8_t *buf, size_t size);

// Store (insert or replace) a value.  Returns 0 once durable; when it
// returns, no older value of `tag` is readable in the store files.
int mp_tlvstore_store(mp_tlvstore_t *store, uint32_t tag, const uint8_t *data, size_t len);

// Delete a tag (absent tag: no-op, returns 0).  When it returns 0 the value's
// bytes are no longer readable in the store files.
int mp_tlvstore_delete(mp_tlvstore_t *store, uint32_t tag);

// Delete all tags atomically.
int mp_tlvstore_clear(mp_tlvstore_t *store);

// Rewrite the file with only live data (normally automatic).
int mp_tlvstore_compact(mp_tlvstore_t *store);

// Number of live entries, current mode (MP_TLVSTORE_MODE_*).
size_t mp_tlvstore_count(const mp_tlvstore_t *store);
int mp_tlvstore_mode(const mp_tlvstore_t *store);

// Iterate over live entries (order unspecified).  Pointers stay valid until
// the next mutating call; do not mutate while iterating.
void mp_tlvstore_iter_init(mp_tlvstore_iter_t *iter);
bool mp_tlvstore_iter_next(const mp_tlvstore_t *store, mp_tlvstore_iter_t *iter,
    uint32_t *tag, const uint8_t **value, size_t *len);

// CRC-32 as used on disk (IEEE 802.3, reflected, same as zlib.crc32).
uint32_t mp_tlvstore_crc32(uint32_t crc, const uint8_t *buf, size_t len);

#endif // MICROPY_INCLUDED_EXTMOD_BTSTACK_MP_TLVSTORE_H
