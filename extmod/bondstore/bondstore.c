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

// The bond store; spec/bond-store.md describes the file this writes.

#include <string.h>

#include "bondstore.h"

// Format version 1 fields (spec section 6).
#define V1_HEADER_VERSION (8)     // main header: u16
#define V1_HEADER_GENERATION (12) // u32
#define V1_HEADER_CRC (20)        // u32, of bytes 0..19
#define V1_SIDE_GENERATION (12)   // side file header: u32
#define V1_SIDE_IMAGE_LEN (16)    // u32
#define V1_SIDE_IMAGE_CRC (20)    // u32
#define V1_SIDE_CRC (28)          // u32, of bytes 0..27
#define V1_SLOT_MARKER (0xa5)     // slot header: marker, 0, u16 capacity, u32 CRC of 0..3
#define V1_SLOT_CAPACITY (2)
#define V1_SLOT_CRC (4)
#define V1_RECORD_LENGTH (2)      // record: type 1, flags 0, u16 length, tag, sequence
#define V1_RECORD_TAG (4)
#define V1_RECORD_SEQ (8)

#define CHUNK (128)        // bytes read at a time (on the stack)
#define ZEROS (32)         // bytes zeroed at a time (in flash)
#define RESERVE_LEN (4096) // one littlefs block: more than a file keeps inline

static const uint8_t zeros[ZEROS];

static uint32_t get_le(const uint8_t *p, int n) {
    uint32_t v = 0;
    while (n--) {
        v = (v << 8) | p[n];
    }
    return v;
}

static void put_le(uint8_t *p, uint32_t v, int n) {
    while (n--) {
        *p++ = v;
        v >>= 8;
    }
}

static uint32_t round_up(uint32_t n, uint32_t align) {
    return (n + align - 1) & ~(align - 1);
}

uint32_t mp_bondstore_crc(const void *buf, unsigned int len, uint32_t crc) {
    // uzlib's 4-bit table (lib/uzlib/crc32.c), so either may be linked.
    static const uint32_t table[16] = {
        0x00000000, 0x1db71064, 0x3b6e20c8, 0x26d930ac, 0x76dc4190, 0x6b6b51f4, 0x4db26158, 0x5005713c,
        0xedb88320, 0xf00f9344, 0xd6d6a3e8, 0xcb61b38c, 0x9b64c2b0, 0x86d3d2d4, 0xa00ae278, 0xbdbdf21c,
    };
    const uint8_t *p = buf;
    while (len--) {
        crc = (crc >> 4) ^ table[(crc ^ *p) & 0xf];
        crc = (crc >> 4) ^ table[(crc ^ (*p++ >> 4)) & 0xf];
    }
    return crc;
}

// ---- RAM records --------------------------------------------------------

static size_t record_size(const uint8_t *r) {
    return MP_BONDSTORE_RECORD_OVERHEAD + r[MP_BONDSTORE_RECORD_LENGTH];
}

static uint32_t record_crc(mp_bondstore_t *s, const uint8_t *r) {
    return ~s->io->crc(r, MP_BONDSTORE_RECORD_HEADER_LEN + r[MP_BONDSTORE_RECORD_LENGTH], 0xffffffff);
}

// Offset of tag's record in store->records, or -1.
static int find(const mp_bondstore_t *s, uint32_t tag) {
    for (size_t p = 0; p < s->used; p += record_size(s->records + p)) {
        if (get_le(s->records + p, 4) == tag) {
            return p;
        }
    }
    return -1;
}

void mp_bondstore_init(mp_bondstore_t *s, const mp_bondstore_io_t *io, void *io_ctx, uint8_t *records, size_t capacity) {
    memset(s, 0, sizeof(*s));
    s->io = io;
    s->io_ctx = io_ctx;
    s->records = records;
    s->capacity = capacity;
}

int mp_bondstore_get(const mp_bondstore_t *s, uint32_t tag, uint8_t *buf, size_t size) {
    int p = find(s, tag);
    if (p < 0) {
        return MP_BONDSTORE_ERR_NOT_FOUND;
    }
    size_t len = s->records[p + MP_BONDSTORE_RECORD_LENGTH];
    if (size) {
        memcpy(buf, s->records + p + MP_BONDSTORE_RECORD_HEADER_LEN, len < size ? len : size);
    }
    return len;
}

int mp_bondstore_set(mp_bondstore_t *s, uint32_t tag, const uint8_t *data, size_t len) {
    if (len > MP_BONDSTORE_VALUE_MAX) {
        return MP_BONDSTORE_ERR_TOO_BIG;
    }
    int p = find(s, tag);
    size_t old = p < 0 ? 0 : record_size(s->records + p);
    if (p >= 0 && data != NULL && old == MP_BONDSTORE_RECORD_OVERHEAD + len
        && memcmp(s->records + p + MP_BONDSTORE_RECORD_HEADER_LEN, data, len) == 0) {
        return MP_BONDSTORE_OK;
    }
    if (data != NULL && s->used - old + MP_BONDSTORE_RECORD_OVERHEAD + len > s->capacity) {
        return MP_BONDSTORE_ERR_FULL;
    }
    if (p >= 0) {
        s->used -= old;
        memmove(s->records + p, s->records + p + old, s->used - p);
        // Deleted key bytes must not linger in RAM either.
        memset(s->records + s->used, 0, old);
        s->dirty = true;
    }
    if (data != NULL) {
        uint8_t *r = s->records + s->used;
        put_le(r, tag, 4);
        r[MP_BONDSTORE_RECORD_LENGTH] = len;
        memcpy(r + MP_BONDSTORE_RECORD_HEADER_LEN, data, len);
        put_le(r + MP_BONDSTORE_RECORD_HEADER_LEN + len, record_crc(s, r), 4);
        s->used += MP_BONDSTORE_RECORD_OVERHEAD + len;
        s->dirty = true;
    }
    return MP_BONDSTORE_OK;
}

bool mp_bondstore_record(const mp_bondstore_t *s, size_t i, uint32_t *tag, const uint8_t **value, size_t *len) {
    size_t p = 0;
    for (; p < s->used && i; --i) {
        p += record_size(s->records + p);
    }
    if (p >= s->used) {
        return false;
    }
    *tag = get_le(s->records + p, 4);
    *len = s->records[p + MP_BONDSTORE_RECORD_LENGTH];
    *value = s->records + p + MP_BONDSTORE_RECORD_HEADER_LEN;
    return true;
}

// Keep the records of records[0..len) that pass their CRC, moved together;
// returns their length.  Unless salvaging, stop at the first bad one.
static uint32_t check_records(mp_bondstore_t *s, uint32_t len, bool salvage) {
    uint32_t p = 0, kept = 0;
    while (p + MP_BONDSTORE_RECORD_OVERHEAD <= len && p + record_size(s->records + p) <= len) {
        uint32_t n = record_size(s->records + p);
        if (record_crc(s, s->records + p) == get_le(s->records + p + n - 4, 4)) {
            memmove(s->records + kept, s->records + p, n);
            kept += n;
        } else if (!salvage) {
            break;
        }
        p += n;
    }
    return kept;
}

// ---- Reading ------------------------------------------------------------

// Read exactly len bytes; a short read (end of file) is MP_BONDSTORE_ERR_NOENT.
static int read_full(mp_bondstore_t *s, void *fh, uint32_t off, uint8_t *buf, uint32_t len) {
    int n = s->io->read(s->io_ctx, fh, off, buf, len);
    return n < 0 ? n : (uint32_t)n == len ? 0 : MP_BONDSTORE_ERR_NOENT;
}

// CRC of len file bytes at off, continuing from crc.
static int crc_file(mp_bondstore_t *s, void *fh, uint32_t off, uint32_t len, uint32_t *crc) {
    uint8_t buf[CHUNK];
    for (uint32_t n; len; off += n, len -= n) {
        n = len < CHUNK ? len : CHUNK;
        int err = read_full(s, fh, off, buf, n);
        if (err) {
            return err;
        }
        *crc = s->io->crc(buf, n, *crc);
    }
    return 0;
}

// The CRC a header must carry for its body (bytes 0..11, then the body).
static uint32_t image_crc(mp_bondstore_t *s, const uint8_t *header, const uint8_t *body, size_t len) {
    uint32_t crc = s->io->crc(header, MP_BONDSTORE_HEADER_CRC, 0xffffffff);
    return ~s->io->crc(body, len, crc);
}

// Whether header h at pos and the len bytes after it are a whole image.
static bool image_valid(mp_bondstore_t *s, void *fh, uint32_t pos, const uint8_t *h, uint32_t len) {
    uint32_t crc = s->io->crc(h, MP_BONDSTORE_HEADER_CRC, 0xffffffff);
    return h[MP_BONDSTORE_HEADER_VERSION] == MP_BONDSTORE_VERSION && h[MP_BONDSTORE_HEADER_ZERO] == 0
           && crc_file(s, fh, pos + MP_BONDSTORE_HEADER_LEN, len, &crc) == 0
           && ~crc == get_le(h + MP_BONDSTORE_HEADER_CRC, 4);
}

// A found image: its position and records' length (-1: none found).
typedef struct {
    uint32_t pos;
    int len;
    uint32_t gen;
} image_ref_t;

static void keep_newest(image_ref_t *ref, uint32_t pos, uint32_t len, uint32_t gen) {
    if (ref->len < 0 || (int32_t)(gen - ref->gen) > 0) {
        ref->pos = pos;
        ref->len = len;
        ref->gen = gen;
    }
}

// Step 1 of load: find the newest valid image, and the newest torn one.
static void find_images(mp_bondstore_t *s, void *fh, image_ref_t *valid, image_ref_t *torn) {
    bool newer = false;
    for (uint32_t pos = 0; pos < MP_BONDSTORE_FILE_MAX; pos += MP_BONDSTORE_IMAGE_ALIGN) {
        uint8_t h[MP_BONDSTORE_HEADER_LEN];
        int n = s->io->read(s->io_ctx, fh, pos, h, sizeof(h));
        if (n <= 0) {
            if (n < 0) {
                s->found |= MP_BONDSTORE_LOAD_READ_ERROR;
            }
            break;
        }
        if (memcmp(h, MP_BONDSTORE_MAGIC, (size_t)n < 4 ? (size_t)n : 4) != 0) {
            continue;
        }
        s->found |= MP_BONDSTORE_LOAD_DAMAGED; // cleared by load() if all is well
        if ((size_t)n < sizeof(h)) {
            break;
        }
        uint32_t len = get_le(h + MP_BONDSTORE_HEADER_LENGTH, 2);
        uint32_t gen = get_le(h + MP_BONDSTORE_HEADER_GENERATION, 4);
        newer |= h[MP_BONDSTORE_HEADER_VERSION] > MP_BONDSTORE_VERSION;
        if (image_valid(s, fh, pos, h, len)) {
            keep_newest(valid, pos, len, gen);
        } else if (h[MP_BONDSTORE_HEADER_VERSION] == MP_BONDSTORE_VERSION) {
            keep_newest(torn, pos, len, gen);
        }
    }
    // A torn header can look newer too: only without a valid image is it one.
    if (valid->len < 0 && newer) {
        s->found |= MP_BONDSTORE_LOAD_NEWER;
    }
    s->generation = valid->len >= 0 ? valid->gen : torn->gen;
}

// Step 2: the records of the image at pos.  Without a whole image, the
// newest image's records that pass their own CRC are salvaged (a file
// damaged by something other than a power cut: a cut always leaves one).
static int read_image(mp_bondstore_t *s, void *fh, uint32_t pos, uint32_t len, bool salvage) {
    if (len > s->capacity) {
        if (!salvage) {
            s->found |= MP_BONDSTORE_LOAD_TOO_BIG;
            return MP_BONDSTORE_ERR_PROTECTED;
        }
        len = s->capacity;
    }
    int n = s->io->read(s->io_ctx, fh, pos + MP_BONDSTORE_HEADER_LEN, s->records, len);
    if (n < 0) {
        s->found |= MP_BONDSTORE_LOAD_READ_ERROR;
        return MP_BONDSTORE_ERR_PROTECTED;
    }
    s->used = check_records(s, n, salvage);
    memset(s->records + s->used, 0, s->capacity - s->used);
    if (salvage) {
        s->found |= MP_BONDSTORE_LOAD_SALVAGED;
        s->mode = MP_BONDSTORE_MODE_REWRITE;
        s->dirty = true;
    } else if (s->used != len) {
        // The image's CRC matched, so only a foreign writer makes records that don't add up.
        s->found |= MP_BONDSTORE_LOAD_FOREIGN;
        return MP_BONDSTORE_ERR_PROTECTED;
    } else {
        s->image_pos = pos;
        s->image_len = len;
        s->mode = MP_BONDSTORE_MODE_OK;
    }
    return 0;
}

// Step 3: the file's length, and whether it holds non-zero bytes outside
// [lo, hi), i.e. torn or stale data the next commit must remove.
static void scan_rest(mp_bondstore_t *s, void *fh, uint32_t lo, uint32_t hi) {
    uint8_t buf[CHUNK];
    int n = CHUNK;
    for (uint32_t off = 0; n == CHUNK && off < MP_BONDSTORE_FILE_MAX; off += n) {
        n = s->io->read(s->io_ctx, fh, off, buf, CHUNK);
        for (int i = 0; i < n; ++i) {
            if (buf[i] && (off + i < lo || off + i >= hi)) {
                s->unclean = true;
            }
        }
        s->file_end = off + (n > 0 ? n : 0);
    }
}

// ---- Format version 1 (spec section 6) ----------------------------------

#if MP_BONDSTORE_MIGRATE_V1

// Generation of the version-1 main header at base, or 0 if not valid.
static uint32_t v1_generation(mp_bondstore_t *s, void *fh, uint32_t base) {
    uint8_t h[MP_BONDSTORE_V1_HEADER_LEN];
    if (read_full(s, fh, base, h, sizeof(h)) || memcmp(h, MP_BONDSTORE_V1_MAGIC, 8) != 0
        || get_le(h + V1_HEADER_VERSION, 2) != 1
        || ~s->io->crc(h, V1_HEADER_CRC, 0xffffffff) != get_le(h + V1_HEADER_CRC, 4)) {
        return 0;
    }
    return get_le(h + V1_HEADER_GENERATION, 4);
}

// Generation of a valid version-1 side file (a snapshot of a main file), or 0.
static uint32_t v1_side_generation(mp_bondstore_t *s, void *fh) {
    uint8_t h[MP_BONDSTORE_V1_SIDE_HEADER_LEN];
    uint32_t crc = 0xffffffff;
    if (read_full(s, fh, 0, h, sizeof(h)) || memcmp(h, MP_BONDSTORE_V1_SIDE_MAGIC, 8) != 0
        || ~s->io->crc(h, V1_SIDE_CRC, 0xffffffff) != get_le(h + V1_SIDE_CRC, 4)
        || crc_file(s, fh, sizeof(h), get_le(h + V1_SIDE_IMAGE_LEN, 4), &crc)
        || ~crc != get_le(h + V1_SIDE_IMAGE_CRC, 4)
        || v1_generation(s, fh, sizeof(h)) != get_le(h + V1_SIDE_GENERATION, 4)) {
        return 0;
    }
    return get_le(h + V1_SIDE_GENERATION, 4);
}

// Load the live records of a version-1 main file at base: walk the slots,
// keep each tag's valid record with the highest sequence number.
static void v1_read(mp_bondstore_t *s, void *fh, uint32_t base) {
    struct {
        uint32_t tag, seq;
    } seen[MP_BONDSTORE_V1_MAX_TAGS];
    size_t nseen = 0;
    uint8_t r[MP_BONDSTORE_V1_RECORD_HEADER_LEN + MP_BONDSTORE_VALUE_MAX + 4];
    uint32_t p = base + MP_BONDSTORE_V1_HEADER_LEN;
    for (;;) {
        uint8_t h[MP_BONDSTORE_V1_SLOT_HEADER_LEN];
        int n = s->io->read(s->io_ctx, fh, p, h, sizeof(h));
        if (n < (int)sizeof(h) || h[0] != V1_SLOT_MARKER || h[1] != 0
            || ~s->io->crc(h, V1_SLOT_CRC, 0xffffffff) != get_le(h + V1_SLOT_CRC, 4)) {
            if (n != 0) {
                s->found |= MP_BONDSTORE_LOAD_V1_DROPPED; // a torn tail, or damage
            }
            return;
        }
        uint32_t cap = get_le(h + V1_SLOT_CAPACITY, 2), len = 0, tag, seq;
        p += sizeof(h);
        if (read_full(s, fh, p, r, MP_BONDSTORE_V1_RECORD_HEADER_LEN) == 0 && r[0] == 1 && r[1] == 0
            && (len = get_le(r + V1_RECORD_LENGTH, 2)) <= MP_BONDSTORE_VALUE_MAX
            && MP_BONDSTORE_V1_RECORD_HEADER_LEN + len + 4 <= cap
            && read_full(s, fh, p + MP_BONDSTORE_V1_RECORD_HEADER_LEN, r + MP_BONDSTORE_V1_RECORD_HEADER_LEN, len + 4) == 0
            && ~s->io->crc(r, MP_BONDSTORE_V1_RECORD_HEADER_LEN + len, 0xffffffff)
            == get_le(r + MP_BONDSTORE_V1_RECORD_HEADER_LEN + len, 4)) {
            tag = get_le(r + V1_RECORD_TAG, 4);
            seq = get_le(r + V1_RECORD_SEQ, 4);
            size_t i = 0;
            while (i < nseen && seen[i].tag != tag) {
                ++i;
            }
            if (i == nseen && nseen < MP_BONDSTORE_V1_MAX_TAGS) {
                seen[nseen++].tag = tag;
                seen[i].seq = seq;
            } else if (i < nseen && (int32_t)(seq - seen[i].seq) < 0) {
                p += cap;
                continue; // an older copy left by an interrupted replace
            } else if (i < nseen) {
                seen[i].seq = seq;
            }
            if (mp_bondstore_set(s, tag, r + MP_BONDSTORE_V1_RECORD_HEADER_LEN, len)) {
                s->found |= MP_BONDSTORE_LOAD_TOO_BIG;
            }
        }
        p += cap;
    }
}

// The main file held no version-2 image: migrate a version-1 store (from its
// side file if an interrupted compaction left the newer state there).
static void v1_migrate(mp_bondstore_t *s, void *fh) {
    uint32_t gen = v1_generation(s, fh, 0), side_gen = 0;
    void *side;
    if (s->io->open(s->io_ctx, MP_BONDSTORE_FILE_V1_SIDE, MP_BONDSTORE_OPEN_READ, &side) == 0) {
        side_gen = v1_side_generation(s, side);
        if (side_gen && (!gen || (int32_t)(side_gen - gen) > 0)) {
            v1_read(s, side, MP_BONDSTORE_V1_SIDE_HEADER_LEN);
            gen = 0;
        }
        s->io->close(s->io_ctx, side);
    }
    if (gen) {
        v1_read(s, fh, 0);
    }
    if (gen || side_gen) {
        s->found |= MP_BONDSTORE_LOAD_MIGRATED;
        s->mode = MP_BONDSTORE_MODE_REWRITE;
        s->dirty = true;
    }
}

#else
static void v1_migrate(mp_bondstore_t *s, void *fh) {
    (void)s;
    (void)fh;
}
#endif // MP_BONDSTORE_MIGRATE_V1

int mp_bondstore_load(mp_bondstore_t *s) {
    mp_bondstore_init(s, s->io, s->io_ctx, s->records, s->capacity);
    void *fh;
    int err = s->io->open(s->io_ctx, MP_BONDSTORE_FILE_MAIN, MP_BONDSTORE_OPEN_READ, &fh);
    if (err == MP_BONDSTORE_ERR_NOENT) {
        return 0;
    } else if (err) {
        s->found = MP_BONDSTORE_LOAD_READ_ERROR;
        s->mode = MP_BONDSTORE_MODE_PROTECTED;
        return MP_BONDSTORE_ERR_PROTECTED;
    }
    image_ref_t valid = { 0, -1, 0 }, torn = { 0, -1, 0 };
    find_images(s, fh, &valid, &torn);
    if (valid.len >= 0) {
        err = read_image(s, fh, valid.pos, valid.len, false);
        scan_rest(s, fh, valid.pos, valid.pos + MP_BONDSTORE_HEADER_LEN + valid.len);
    } else {
        scan_rest(s, fh, 0, 0);
        v1_migrate(s, fh);
        if (s->mode == MP_BONDSTORE_MODE_NEW && torn.len >= 0) {
            err = read_image(s, fh, torn.pos, torn.len, true);
        }
        // A file with no trace of either format, and not blank, is not ours.
        if (s->mode == MP_BONDSTORE_MODE_NEW && !(s->found & MP_BONDSTORE_LOAD_DAMAGED) && s->unclean) {
            s->found |= MP_BONDSTORE_LOAD_FOREIGN;
        }
    }
    s->io->close(s->io_ctx, fh);
    if (!s->unclean) {
        s->found &= ~MP_BONDSTORE_LOAD_DAMAGED;
    }
    if (err || (s->found & (MP_BONDSTORE_LOAD_FOREIGN | MP_BONDSTORE_LOAD_NEWER | MP_BONDSTORE_LOAD_TOO_BIG | MP_BONDSTORE_LOAD_READ_ERROR))) {
        // The one exit for "not ours to write": keep what was read, in RAM.
        s->mode = MP_BONDSTORE_MODE_PROTECTED;
        s->dirty = false;
        return MP_BONDSTORE_ERR_PROTECTED;
    }
    return 0;
}

// ---- Writing (spec section 5) -------------------------------------------

static int write_zeros(mp_bondstore_t *s, void *fh, uint32_t off, uint32_t end) {
    int err = 0;
    for (uint32_t n; off < end && !err; off += n) {
        n = end - off < ZEROS ? end - off : ZEROS;
        err = s->io->write(s->io_ctx, fh, off, zeros, n);
    }
    return err;
}

// Write the image at pos, then make it durable.
static int write_image(mp_bondstore_t *s, void *fh, uint32_t pos, uint32_t gen) {
    uint8_t h[MP_BONDSTORE_HEADER_LEN];
    memcpy(h, MP_BONDSTORE_MAGIC, 4);
    h[MP_BONDSTORE_HEADER_VERSION] = MP_BONDSTORE_VERSION;
    h[MP_BONDSTORE_HEADER_ZERO] = 0;
    put_le(h + MP_BONDSTORE_HEADER_LENGTH, s->used, 2);
    put_le(h + MP_BONDSTORE_HEADER_GENERATION, gen, 4);
    put_le(h + MP_BONDSTORE_HEADER_CRC, image_crc(s, h, s->records, s->used), 4);
    int err = s->io->write(s->io_ctx, fh, pos, h, sizeof(h));
    if (!err) {
        err = s->io->write(s->io_ctx, fh, pos + sizeof(h), s->records, s->used);
    }
    return err ? err : s->io->sync(s->io_ctx, fh);
}

// The new image is durable: it is now the state on disk.
static void committed(mp_bondstore_t *s, uint32_t pos, uint32_t gen) {
    if (s->mode == MP_BONDSTORE_MODE_REWRITE) {
        s->io->remove(s->io_ctx, MP_BONDSTORE_FILE_V1_SIDE);
    }
    s->mode = MP_BONDSTORE_MODE_OK;
    s->image_pos = pos;
    s->image_len = s->used;
    s->generation = gen;
    s->dirty = false;
}

// Atomic filesystem: replace the whole file, whose new content appears at
// sync.  A full filesystem cannot even delete this way (copy on write), so
// the reserve file is given up for it, and taken again when there is room.
static int commit_atomic(mp_bondstore_t *s, uint32_t gen) {
    void *fh;
    int err = MP_BONDSTORE_ERR_NOSPC;
    for (int tries = 2; err == MP_BONDSTORE_ERR_NOSPC && tries--;) {
        if (tries == 0) {
            s->reserved = false;
            if (s->io->remove(s->io_ctx, MP_BONDSTORE_FILE_RESERVE) != 0) {
                break;
            }
        }
        err = s->io->open(s->io_ctx, MP_BONDSTORE_FILE_MAIN, MP_BONDSTORE_OPEN_CREATE, &fh);
        if (!err) {
            err = write_image(s, fh, 0, gen);
            s->io->close(s->io_ctx, fh);
        }
    }
    if (err) {
        return err;
    }
    committed(s, 0, gen);
    s->file_end = MP_BONDSTORE_HEADER_LEN + s->used;
    s->unclean = false;
    // Look for the reserve once per load, not at every commit.
    if (s->reserved) {
        return 0;
    }
    if (s->io->open(s->io_ctx, MP_BONDSTORE_FILE_RESERVE, MP_BONDSTORE_OPEN_READ, &fh) == 0) {
        s->io->close(s->io_ctx, fh);
        s->reserved = true;
    } else if (s->io->open(s->io_ctx, MP_BONDSTORE_FILE_RESERVE, MP_BONDSTORE_OPEN_CREATE, &fh) == 0) {
        err = write_zeros(s, fh, 0, RESERVE_LEN);
        err = err ? err : s->io->sync(s->io_ctx, fh);
        s->io->close(s->io_ctx, fh);
        s->reserved = !err;
        if (err) {
            s->io->remove(s->io_ctx, MP_BONDSTORE_FILE_RESERVE);
        }
    }
    return 0;
}

// Any other filesystem: write the new image where the current state is not,
// sync, then zero the current state (and any torn bytes), sync.  The file is
// created at its full size, so later commits never need free space.
static int commit_in_place(mp_bondstore_t *s, uint32_t gen) {
    void *fh;
    int err = s->io->open(s->io_ctx, MP_BONDSTORE_FILE_MAIN, MP_BONDSTORE_OPEN_RDWR, &fh);
    if (err == MP_BONDSTORE_ERR_NOENT) {
        // Removed while in use: nothing on disk to keep.
        s->mode = MP_BONDSTORE_MODE_NEW;
        s->file_end = 0;
        s->unclean = false;
        err = s->io->open(s->io_ctx, MP_BONDSTORE_FILE_MAIN, MP_BONDSTORE_OPEN_CREATE, &fh);
    }
    if (err) {
        return err;
    }
    uint32_t copy_pos = round_up(MP_BONDSTORE_HEADER_LEN + s->capacity, MP_BONDSTORE_COPY_ALIGN);
    uint32_t full = copy_pos + MP_BONDSTORE_HEADER_LEN + s->capacity;
    // The bytes holding the current state: its image, or a whole version-1 file.
    uint32_t old_lo = s->image_pos, old_hi = s->image_pos + MP_BONDSTORE_HEADER_LEN + s->image_len;
    if (s->mode != MP_BONDSTORE_MODE_OK) {
        old_lo = 0;
        old_hi = s->mode == MP_BONDSTORE_MODE_REWRITE ? s->file_end : 0;
    }
    uint32_t pos = 0;
    if (old_hi > old_lo && old_lo < MP_BONDSTORE_HEADER_LEN + (uint32_t)s->used) {
        pos = old_hi > copy_pos ? round_up(old_hi, MP_BONDSTORE_COPY_ALIGN) : copy_pos;
    }
    uint32_t hi = pos + MP_BONDSTORE_HEADER_LEN + s->used;
    full = full > hi ? full : hi;
    // Zero-fill up to the full size first: FAT leaves a gap's content undefined.
    err = write_zeros(s, fh, s->file_end, pos);
    err = err ? err : write_zeros(s, fh, s->file_end > hi ? s->file_end : hi, full);
    err = err ? err : write_image(s, fh, pos, gen);
    if (!err) {
        committed(s, pos, gen);
        s->file_end = s->file_end > full ? s->file_end : full;
        if (s->unclean) {
            old_lo = 0;
            old_hi = s->file_end;
        }
        // Zero the old state, around the new image.
        err = write_zeros(s, fh, old_lo, old_hi < pos ? old_hi : pos);
        err = err ? err : write_zeros(s, fh, old_lo > hi ? old_lo : hi, old_hi);
        err = err ? err : s->io->sync(s->io_ctx, fh);
        s->unclean = err != 0;
    }
    s->io->close(s->io_ctx, fh);
    return err;
}

int mp_bondstore_commit(mp_bondstore_t *s) {
    if (s->mode == MP_BONDSTORE_MODE_PROTECTED) {
        return MP_BONDSTORE_ERR_PROTECTED;
    }
    if (!s->dirty && !s->unclean) {
        return 0;
    }
    uint32_t gen = s->generation + 1;
    return (s->io->flags & MP_BONDSTORE_IO_ATOMIC) ? commit_atomic(s, gen) : commit_in_place(s, gen);
}
