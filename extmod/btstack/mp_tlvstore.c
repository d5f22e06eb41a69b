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

// Durable TLV store.  Design summary (full spec: spec/bond-store.md):
//
// - The main file is a header followed by "slots".  A slot is an 8-byte slot
//   header (marker, capacity, CRC) that is written once, when the slot is
//   appended, and never modified until the next compaction.  Because slot
//   headers are immutable the file can always be walked, even if the record
//   inside a slot is torn.
// - A slot's record area holds either one record (type, len, tag, seq, value,
//   CRC-32) followed by zero bytes, or only zero bytes (a free slot).
// - store(): write the new record into a free slot of sufficient capacity (or
//   append a new slot), sync, then overwrite the old record with zeros, sync.
//   If power fails in between, both records are valid and the higher sequence
//   number wins; the loader scrubs the loser.  delete(): overwrite the record
//   with zeros, sync.  A partially zeroed record fails its CRC, so a torn
//   delete is a completed delete.  Old values are therefore gone from the file
//   as soon as the call returns, and replace-heavy workloads ping-pong between
//   two slots without growing the file.
// - compaction (and clear) never relies on rename: the complete new image is
//   written to a side file with its own CRC, verified, then copied over the
//   main file (header last), then the side file is removed.  On load a valid
//   side file whose generation is newer than the main header is replayed.

#include <string.h>

#include "mp_tlvstore.h"

#define REC_TYPE_TLV (0x01)
#define SLOT_MARKER (0xa5)
#define REC_HEADER_LEN (12)
// Format limits, independent of the configured MP_TLVSTORE_MAX_VALUE so that a
// file written with a larger configuration can still be walked.
#define FORMAT_MAX_VALUE (255)
#define SLOT_CAP_MIN (MP_TLVSTORE_RECORD_OVERHEAD)
#define SLOT_CAP_MAX (MP_TLVSTORE_RECORD_OVERHEAD + FORMAT_MAX_VALUE)

#if MP_TLVSTORE_SCRATCH_SIZE < MP_TLVSTORE_SIDE_HEADER_LEN
#error "scratch buffer too small"
#endif

static const uint8_t main_magic[8] = {'M', 'P', 'T', 'L', 'V', 'D', 'B', 0x1a};
static const uint8_t side_magic[8] = {'M', 'P', 'T', 'L', 'V', 'S', 'N', 0x1a};

/******************************************************************************/
// Little-endian packing and CRC-32.

static void put16(uint8_t *p, uint16_t v) {
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

static void put32(uint8_t *p, uint32_t v) {
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}

static uint16_t get16(const uint8_t *p) {
    return (uint16_t)(p[0] | (p[1] << 8));
}

static uint32_t get32(const uint8_t *p) {
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}

// Nibble-table CRC: 64 bytes of table, a good size/speed trade-off for MCUs.
static const uint32_t crc_nibble[16] = {
    0x00000000, 0x1db71064, 0x3b6e20c8, 0x26d930ac, 0x76dc4190, 0x6b6b51f4, 0x4db26158, 0x5005713c,
    0xedb88320, 0xf00f9344, 0xd6d6a3e8, 0xcb61b38c, 0x9b64c2b0, 0x86d3d2d4, 0xa00ae278, 0xbdbdf21c,
};

uint32_t mp_tlvstore_crc32(uint32_t crc, const uint8_t *buf, size_t len) {
    crc = ~crc;
    while (len--) {
        crc ^= *buf++;
        crc = (crc >> 4) ^ crc_nibble[crc & 15];
        crc = (crc >> 4) ^ crc_nibble[crc & 15];
    }
    return ~crc;
}

static bool all_zero(const uint8_t *p, size_t len) {
    while (len--) {
        if (*p++ != 0) {
            return false;
        }
    }
    return true;
}

/******************************************************************************/
// I/O helpers.

static int io_open(mp_tlvstore_t *s, int file, int mode, void **fh) {
    *fh = NULL;
    int r = s->io->open(s->io_ctx, file, mode, fh);
    return r < 0 ? r : 0;
}

static void io_close(mp_tlvstore_t *s, void *fh) {
    // Errors on close are ignored: every write path syncs before closing.
    s->io->close(s->io_ctx, fh);
}

// Read exactly len bytes unless EOF intervenes; returns bytes read or <0.
static int io_read(mp_tlvstore_t *s, void *fh, uint32_t off, uint8_t *buf, uint32_t len) {
    uint32_t got = 0;
    while (got < len) {
        int r = s->io->read(s->io_ctx, fh, off + got, buf + got, len - got);
        if (r < 0) {
            return r;
        }
        if (r == 0) {
            break;
        }
        got += (uint32_t)r;
    }
    return (int)got;
}

static int io_write(mp_tlvstore_t *s, void *fh, uint32_t off, const uint8_t *buf, uint32_t len) {
    int r = s->io->write(s->io_ctx, fh, off, buf, len);
    return r < 0 ? r : 0;
}

static int io_sync(mp_tlvstore_t *s, void *fh) {
    int r = s->io->sync(s->io_ctx, fh);
    return r < 0 ? r : 0;
}

// Write zeros over [off, off+len) using the scratch buffer.
static int io_zero(mp_tlvstore_t *s, void *fh, uint32_t off, uint32_t len) {
    memset(s->scratch, 0, sizeof(s->scratch));
    while (len > 0) {
        uint32_t n = len < sizeof(s->scratch) ? len : (uint32_t)sizeof(s->scratch);
        int r = io_write(s, fh, off, s->scratch, n);
        if (r < 0) {
            return r;
        }
        off += n;
        len -= n;
    }
    return 0;
}

/******************************************************************************/
// RAM cache.

static int find_entry(const mp_tlvstore_t *s, uint32_t tag) {
    for (int i = 0; i < s->num_entries; ++i) {
        if (s->entries[i].tag == tag) {
            return i;
        }
    }
    return -1;
}

static void cache_drop_value(mp_tlvstore_t *s, int idx) {
    mp_tlvstore_entry_t *e = &s->entries[idx];
    uint16_t off = e->val_off;
    uint16_t len = e->len;
    memmove(s->cache + off, s->cache + off + len, s->cache_used - off - len);
    s->cache_used -= len;
    for (int i = 0; i < s->num_entries; ++i) {
        if (s->entries[i].val_off > off) {
            s->entries[i].val_off -= len;
        }
    }
    e->len = 0;
    e->val_off = s->cache_used;
}

static void cache_remove(mp_tlvstore_t *s, int idx) {
    cache_drop_value(s, idx);
    // Keep insertion order so iteration is deterministic.
    memmove(&s->entries[idx], &s->entries[idx + 1], (s->num_entries - idx - 1) * sizeof(s->entries[0]));
    s->num_entries -= 1;
}

// Insert or replace; capacity must have been checked by the caller.
static int cache_set(mp_tlvstore_t *s, int idx, uint32_t tag, const uint8_t *data, uint16_t len) {
    if (idx < 0) {
        idx = s->num_entries++;
        memset(&s->entries[idx], 0, sizeof(s->entries[idx]));
        s->entries[idx].tag = tag;
    } else {
        cache_drop_value(s, idx);
    }
    mp_tlvstore_entry_t *e = &s->entries[idx];
    e->val_off = s->cache_used;
    e->len = len;
    memcpy(s->cache + s->cache_used, data, len);
    s->cache_used += len;
    return idx;
}

static bool cache_fits(const mp_tlvstore_t *s, int idx, size_t len) {
    if (idx < 0 && s->num_entries >= MP_TLVSTORE_MAX_ENTRIES) {
        return false;
    }
    size_t used = s->cache_used - (idx < 0 ? 0 : s->entries[idx].len);
    return used + len <= MP_TLVSTORE_CACHE_SIZE;
}

static void add_free(mp_tlvstore_t *s, uint32_t slot, uint16_t cap, bool dirty) {
    if (s->num_free >= MP_TLVSTORE_MAX_FREE) {
        // Untracked free space: let compaction reclaim (and scrub) it.
        s->need_compact = 1;
        return;
    }
    s->free_slots[s->num_free].slot = slot;
    s->free_slots[s->num_free].cap = cap;
    s->free_slots[s->num_free].dirty = dirty;
    s->num_free += 1;
}

static uint32_t live_bytes(const mp_tlvstore_t *s) {
    uint32_t n = 0;
    for (int i = 0; i < s->num_entries; ++i) {
        n += MP_TLVSTORE_SLOT_HEADER_LEN + MP_TLVSTORE_RECORD_OVERHEAD + s->entries[i].len;
    }
    return n;
}

/******************************************************************************/
// Encoding.

static void encode_main_header(uint8_t *p, uint32_t generation) {
    memcpy(p, main_magic, 8);
    put16(p + 8, MP_TLVSTORE_VERSION);
    put16(p + 10, MP_TLVSTORE_HEADER_LEN);
    put32(p + 12, generation);
    put32(p + 16, 0);
    put32(p + 20, mp_tlvstore_crc32(0, p, 20));
}

static void encode_slot_header(uint8_t *p, uint16_t cap) {
    p[0] = SLOT_MARKER;
    p[1] = 0;
    put16(p + 2, cap);
    put32(p + 4, mp_tlvstore_crc32(0, p, 4));
}

static bool slot_header_valid(const uint8_t *p) {
    if (p[0] != SLOT_MARKER || p[1] != 0) {
        return false;
    }
    uint16_t cap = get16(p + 2);
    if (cap < SLOT_CAP_MIN || cap > SLOT_CAP_MAX) {
        return false;
    }
    return get32(p + 4) == mp_tlvstore_crc32(0, p, 4);
}

// Returns the record length (16 + value length).
static uint32_t encode_record(uint8_t *p, uint32_t tag, uint32_t seq, const uint8_t *data, uint16_t len) {
    p[0] = REC_TYPE_TLV;
    p[1] = 0;
    put16(p + 2, len);
    put32(p + 4, tag);
    put32(p + 8, seq);
    memcpy(p + REC_HEADER_LEN, data, len);
    put32(p + REC_HEADER_LEN + len, mp_tlvstore_crc32(0, p, REC_HEADER_LEN + len));
    return MP_TLVSTORE_RECORD_OVERHEAD + len;
}

/******************************************************************************/
// Compaction image.  Piece 0 is the main header, piece i (1..n) is the slot of
// entry i-1 with sequence number i.  Pieces are regenerated from RAM whenever
// needed so no image-sized buffer is required.

static uint32_t image_piece(mp_tlvstore_t *s, int piece, uint32_t generation) {
    if (piece == 0) {
        encode_main_header(s->scratch, generation);
        return MP_TLVSTORE_HEADER_LEN;
    }
    const mp_tlvstore_entry_t *e = &s->entries[piece - 1];
    uint16_t cap = MP_TLVSTORE_RECORD_OVERHEAD + e->len;
    encode_slot_header(s->scratch, cap);
    return MP_TLVSTORE_SLOT_HEADER_LEN + encode_record(s->scratch + MP_TLVSTORE_SLOT_HEADER_LEN,
        e->tag, (uint32_t)piece, s->cache + e->val_off, e->len);
}

// Write pieces [first, n] starting at file offset base + offset of `first`.
static int write_pieces(mp_tlvstore_t *s, void *fh, uint32_t base, int first, uint32_t generation) {
    uint32_t off = 0;
    for (int i = 0; i <= s->num_entries; ++i) {
        uint32_t n = image_piece(s, i, generation);
        if (i >= first) {
            int r = io_write(s, fh, base + off, s->scratch, n);
            if (r < 0) {
                return r;
            }
        }
        off += n;
    }
    return 0;
}

// Stream-check a side file: header, then CRC of the image.  Returns 1 and
// fills *gen/*len if valid, 0 if invalid, <0 on read error.
static int side_check(mp_tlvstore_t *s, void *fh, uint32_t *gen, uint32_t *len) {
    uint8_t *p = s->scratch;
    int r = io_read(s, fh, 0, p, MP_TLVSTORE_SIDE_HEADER_LEN);
    if (r < 0) {
        return r;
    }
    if (r < MP_TLVSTORE_SIDE_HEADER_LEN || memcmp(p, side_magic, 8) != 0
        || get16(p + 8) != MP_TLVSTORE_VERSION || get16(p + 10) != MP_TLVSTORE_SIDE_HEADER_LEN
        || get32(p + 28) != mp_tlvstore_crc32(0, p, 28)) {
        return 0;
    }
    uint32_t g = get32(p + 12);
    uint32_t image_len = get32(p + 16);
    uint32_t image_crc = get32(p + 20);
    if (image_len < MP_TLVSTORE_HEADER_LEN) {
        return 0;
    }
    uint32_t crc = 0;
    uint32_t off = 0;
    while (off < image_len) {
        uint32_t n = image_len - off;
        if (n > sizeof(s->scratch)) {
            n = sizeof(s->scratch);
        }
        r = io_read(s, fh, MP_TLVSTORE_SIDE_HEADER_LEN + off, p, n);
        if (r < 0) {
            return r;
        }
        if ((uint32_t)r != n) {
            return 0;
        }
        if (off == 0) {
            // The embedded main header must be valid and carry the same
            // generation, otherwise replaying could never settle.
            if (memcmp(p, main_magic, 8) != 0 || get32(p + 12) != g
                || get32(p + 20) != mp_tlvstore_crc32(0, p, 20)) {
                return 0;
            }
        }
        crc = mp_tlvstore_crc32(crc, p, n);
        off += n;
    }
    if (crc != image_crc) {
        return 0;
    }
    *gen = g;
    *len = image_len;
    return 1;
}

static void reset_layout(mp_tlvstore_t *s, uint32_t generation) {
    uint32_t off = MP_TLVSTORE_HEADER_LEN;
    for (int i = 0; i < s->num_entries; ++i) {
        mp_tlvstore_entry_t *e = &s->entries[i];
        e->slot = off;
        e->cap = MP_TLVSTORE_RECORD_OVERHEAD + e->len;
        e->seq = (uint32_t)i + 1;
        off += MP_TLVSTORE_SLOT_HEADER_LEN + e->cap;
    }
    s->file_end = off;
    s->generation = generation;
    s->next_seq = (uint32_t)s->num_entries + 1;
    s->num_free = 0;
    s->need_compact = 0;
}

// Rewrite the files so they contain exactly the RAM cache.  Safe against
// power loss at any point: until the main header with the new generation is
// synced, a load replays the verified side file.  On failure *main_intact
// tells whether the main file (and so the RAM slot map) is still valid.
static int compact(mp_tlvstore_t *s, bool *main_intact) {
    *main_intact = true;
    if (s->mode == MP_TLVSTORE_MODE_PROTECTED) {
        return MP_TLVSTORE_ERR_RAM_ONLY;
    }
    uint32_t gen = s->generation + 1;
    if (gen == 0) {
        gen = 1;
    }
    uint32_t image_len = 0;
    uint32_t image_crc = 0;
    for (int i = 0; i <= s->num_entries; ++i) {
        uint32_t n = image_piece(s, i, gen);
        image_crc = mp_tlvstore_crc32(image_crc, s->scratch, n);
        image_len += n;
    }

    // 1. Side file: header + image, synced.
    void *fh;
    int r = io_open(s, MP_TLVSTORE_FILE_SIDE, MP_TLVSTORE_OPEN_CREATE, &fh);
    if (r < 0) {
        return r;
    }
    uint8_t *p = s->scratch;
    memcpy(p, side_magic, 8);
    put16(p + 8, MP_TLVSTORE_VERSION);
    put16(p + 10, MP_TLVSTORE_SIDE_HEADER_LEN);
    put32(p + 12, gen);
    put32(p + 16, image_len);
    put32(p + 20, image_crc);
    put32(p + 24, 0);
    put32(p + 28, mp_tlvstore_crc32(0, p, 28));
    r = io_write(s, fh, 0, p, MP_TLVSTORE_SIDE_HEADER_LEN);
    if (r == 0) {
        r = write_pieces(s, fh, MP_TLVSTORE_SIDE_HEADER_LEN, 0, gen);
    }
    if (r == 0) {
        r = io_sync(s, fh);
    }
    io_close(s, fh);
    if (r < 0) {
        goto side_failed;
    }

    // 2. Verify by reading it back: never destroy the main file on the
    // strength of a snapshot we cannot read.
    r = io_open(s, MP_TLVSTORE_FILE_SIDE, MP_TLVSTORE_OPEN_READ, &fh);
    if (r < 0) {
        goto side_failed;
    }
    uint32_t vgen = 0, vlen = 0;
    r = side_check(s, fh, &vgen, &vlen);
    io_close(s, fh);
    if (r == 0 || (r > 0 && (vgen != gen || vlen != image_len))) {
        r = MP_TLVSTORE_ERR_IO;
    }
    if (r < 0) {
        goto side_failed;
    }

    // 3. Rewrite the main file: body first, header last, with a sync in
    // between so a valid new header implies a complete body.
    *main_intact = false;
    r = io_open(s, MP_TLVSTORE_FILE_MAIN, MP_TLVSTORE_OPEN_CREATE, &fh);
    if (r < 0) {
        return r;
    }
    r = io_zero(s, fh, 0, MP_TLVSTORE_HEADER_LEN);
    if (r == 0) {
        r = write_pieces(s, fh, 0, 1, gen);
    }
    if (r == 0) {
        r = io_sync(s, fh);
    }
    if (r == 0) {
        image_piece(s, 0, gen);
        r = io_write(s, fh, 0, s->scratch, MP_TLVSTORE_HEADER_LEN);
    }
    if (r == 0) {
        r = io_sync(s, fh);
    }
    io_close(s, fh);
    if (r < 0) {
        return r;
    }
    reset_layout(s, gen);
    s->compactions += 1;

    // 4. Drop the side file.  If this fails it is stale (its generation is not
    // newer than the main header) and a later load removes it, but it still
    // holds values, so report the failure to get another compaction attempt.
    r = s->io->remove(s->io_ctx, MP_TLVSTORE_FILE_SIDE);
    return r < 0 ? r : 0;

side_failed:
    // The main file is untouched; don't leave a partial snapshot around.
    s->io->remove(s->io_ctx, MP_TLVSTORE_FILE_SIDE);
    return r;
}

/******************************************************************************/
// Loading.

typedef struct _load_ctx_t {
    mp_tlvstore_load_result_t *res;
    bool torn_tail;
} load_ctx_t;

static void load_record(mp_tlvstore_t *s, load_ctx_t *lc, uint32_t slot, uint16_t cap) {
    const uint8_t *r = s->scratch + MP_TLVSTORE_SLOT_HEADER_LEN;
    uint16_t len = get16(r + 2);
    bool valid = r[0] == REC_TYPE_TLV && r[1] == 0 && MP_TLVSTORE_RECORD_OVERHEAD + len <= cap
        && get32(r + REC_HEADER_LEN + len) == mp_tlvstore_crc32(0, r, REC_HEADER_LEN + len);
    if (!valid) {
        if (all_zero(r, cap)) {
            add_free(s, slot, cap, false);
        } else {
            // Torn write into this slot: its bytes must be scrubbed.
            lc->res->bad_records += 1;
            add_free(s, slot, cap, true);
        }
        return;
    }
    uint32_t rec_len = MP_TLVSTORE_RECORD_OVERHEAD + len;
    if (!all_zero(r + rec_len, cap - rec_len)) {
        // Valid record but stale bytes behind it: rewrite the file.
        s->need_compact = 1;
    }
    uint32_t tag = get32(r + 4);
    uint32_t seq = get32(r + 8);
    if (seq + 1 == 0) {
        // Sequence space exhausted: compaction renumbers from 1.
        s->need_compact = 1;
    }
    if (seq + 1 > s->next_seq) {
        s->next_seq = seq + 1;
    }
    int idx = find_entry(s, tag);
    if (idx >= 0) {
        mp_tlvstore_entry_t *e = &s->entries[idx];
        lc->res->superseded += 1;
        if (seq <= e->seq) {
            // An interrupted replace left the older copy here.
            add_free(s, slot, cap, true);
            return;
        }
        add_free(s, e->slot, e->cap, true);
    }
    if (len > MP_TLVSTORE_MAX_VALUE || !cache_fits(s, idx, len)) {
        // Never drop what we cannot hold: protect the file instead.
        lc->res->overflow += 1;
        lc->res->flags |= MP_TLVSTORE_LOAD_OVERFLOW;
        if (idx >= 0) {
            // The old copy is now marked free, so forget it too.
            cache_remove(s, idx);
        }
        return;
    }
    idx = cache_set(s, idx, tag, r + REC_HEADER_LEN, len);
    s->entries[idx].seq = seq;
    s->entries[idx].slot = slot;
    s->entries[idx].cap = cap;
}

// Find the next valid slot header at or after `from`; returns its offset or
// 0 if none before EOF (offset 0 is never a slot).
static int resync(mp_tlvstore_t *s, void *fh, uint32_t from, uint32_t *found) {
    *found = 0;
    for (;;) {
        int r = io_read(s, fh, from, s->scratch, sizeof(s->scratch));
        if (r < 0) {
            return r;
        }
        for (int i = 0; i + MP_TLVSTORE_SLOT_HEADER_LEN <= r; ++i) {
            if (slot_header_valid(s->scratch + i)) {
                *found = from + (uint32_t)i;
                return 0;
            }
        }
        if ((uint32_t)r < sizeof(s->scratch)) {
            return 0;
        }
        from += (uint32_t)r - (MP_TLVSTORE_SLOT_HEADER_LEN - 1);
    }
}

// Walk the slots of an image that starts at `base` in an open file.
static int load_slots(mp_tlvstore_t *s, void *fh, uint32_t base, load_ctx_t *lc) {
    uint32_t p = MP_TLVSTORE_HEADER_LEN;
    for (;;) {
        uint8_t *h = s->scratch;
        int r = io_read(s, fh, base + p, h, MP_TLVSTORE_SLOT_HEADER_LEN);
        if (r < 0) {
            return r;
        }
        if (r == 0) {
            break;
        }
        uint32_t got = (uint32_t)r;
        if (r == MP_TLVSTORE_SLOT_HEADER_LEN && slot_header_valid(h)) {
            uint16_t cap = get16(h + 2);
            r = io_read(s, fh, base + p + MP_TLVSTORE_SLOT_HEADER_LEN, h + MP_TLVSTORE_SLOT_HEADER_LEN, cap);
            if (r < 0) {
                return r;
            }
            if (r == cap) {
                load_record(s, lc, p, cap);
                p += MP_TLVSTORE_SLOT_HEADER_LEN + cap;
                continue;
            }
            got += (uint32_t)r;
        } else if (r == MP_TLVSTORE_SLOT_HEADER_LEN) {
            uint32_t next;
            r = resync(s, fh, base + p + 1, &next);
            if (r < 0) {
                return r;
            }
            if (next != 0) {
                // Corruption not explained by power loss; skip it and let
                // compaction rewrite a clean file.
                lc->res->flags |= MP_TLVSTORE_LOAD_CORRUPT_MIDDLE;
                lc->res->junk_bytes += next - base - p;
                s->need_compact = 1;
                p = next - base;
                continue;
            }
        }
        // Torn tail: count the bytes up to EOF and stop here.
        for (;;) {
            r = io_read(s, fh, base + p + got, s->scratch, sizeof(s->scratch));
            if (r < 0) {
                return r;
            }
            if (r == 0) {
                break;
            }
            got += (uint32_t)r;
        }
        lc->torn_tail = true;
        lc->res->flags |= MP_TLVSTORE_LOAD_TORN_TAIL;
        lc->res->tail_bytes += got;
        break;
    }
    s->file_end = p;
    return 0;
}

// Replay a verified side image into the main file (compaction step 3).
static int replay_side(mp_tlvstore_t *s, void *side, uint32_t gen, uint32_t image_len) {
    void *fh;
    int r = io_open(s, MP_TLVSTORE_FILE_MAIN, MP_TLVSTORE_OPEN_CREATE, &fh);
    if (r < 0) {
        return r;
    }
    r = io_zero(s, fh, 0, MP_TLVSTORE_HEADER_LEN);
    for (uint32_t off = MP_TLVSTORE_HEADER_LEN; r == 0 && off < image_len;) {
        uint32_t n = image_len - off;
        if (n > sizeof(s->scratch)) {
            n = sizeof(s->scratch);
        }
        r = io_read(s, side, MP_TLVSTORE_SIDE_HEADER_LEN + off, s->scratch, n);
        if (r >= 0) {
            r = (uint32_t)r == n ? io_write(s, fh, off, s->scratch, n) : MP_TLVSTORE_ERR_IO;
        }
        off += n;
    }
    if (r == 0) {
        r = io_sync(s, fh);
    }
    if (r == 0) {
        r = io_read(s, side, MP_TLVSTORE_SIDE_HEADER_LEN, s->scratch, MP_TLVSTORE_HEADER_LEN);
        if (r >= 0) {
            r = r == MP_TLVSTORE_HEADER_LEN ? io_write(s, fh, 0, s->scratch, MP_TLVSTORE_HEADER_LEN) : MP_TLVSTORE_ERR_IO;
        }
    }
    if (r == 0) {
        r = io_sync(s, fh);
    }
    io_close(s, fh);
    (void)gen;
    return r;
}

// Write the cheap repairs found by the loader: cut the torn tail, zero dirty
// free slots.  Anything else goes through compaction.
static int repair_in_place(mp_tlvstore_t *s, bool truncate) {
    void *fh;
    int r = io_open(s, MP_TLVSTORE_FILE_MAIN, MP_TLVSTORE_OPEN_RDWR, &fh);
    if (r < 0) {
        return r;
    }
    if (truncate) {
        r = s->io->truncate(s->io_ctx, fh, s->file_end);
        r = r < 0 ? r : 0;
    }
    for (int i = 0; r == 0 && i < s->num_free; ++i) {
        mp_tlvstore_free_t *f = &s->free_slots[i];
        if (f->dirty) {
            r = io_zero(s, fh, f->slot + MP_TLVSTORE_SLOT_HEADER_LEN, f->cap);
        }
    }
    if (r == 0) {
        r = io_sync(s, fh);
    }
    io_close(s, fh);
    if (r == 0) {
        for (int i = 0; i < s->num_free; ++i) {
            s->free_slots[i].dirty = 0;
        }
    }
    return r;
}

static int discard_side_file(mp_tlvstore_t *s, mp_tlvstore_load_result_t *res) {
    res->flags |= MP_TLVSTORE_LOAD_SIDE_DISCARDED;
    int r = s->io->remove(s->io_ctx, MP_TLVSTORE_FILE_SIDE);
    if (r < 0) {
        res->flags |= MP_TLVSTORE_LOAD_REPAIR_FAILED;
    }
    return r < 0 ? r : 0;
}

static bool over_threshold(const mp_tlvstore_t *s) {
    return s->file_end > MP_TLVSTORE_HEADER_LEN + 2 * live_bytes(s);
}

static int finish_load(mp_tlvstore_t *s, mp_tlvstore_load_result_t *res, int err) {
    res->entries = s->num_entries;
    res->file_size = s->file_end;
    res->generation = s->generation;
    if (err < 0 && s->mode == MP_TLVSTORE_MODE_OK) {
        s->mode = MP_TLVSTORE_MODE_DEGRADED;
    }
    if (s->mode != MP_TLVSTORE_MODE_OK && err >= 0) {
        err = MP_TLVSTORE_ERR_RAM_ONLY;
    }
    return err;
}

int mp_tlvstore_load(mp_tlvstore_t *s, mp_tlvstore_load_result_t *result) {
    mp_tlvstore_load_result_t dummy;
    mp_tlvstore_load_result_t *res = result != NULL ? result : &dummy;
    memset(res, 0, sizeof(*res));
    s->file_end = 0;
    s->generation = 0;
    s->next_seq = 1;
    s->num_entries = 0;
    s->num_free = 0;
    s->cache_used = 0;
    s->need_compact = 0;
    s->mode = MP_TLVSTORE_MODE_OK;
    load_ctx_t lc = {res, false};

    // Main header first: a file from a newer format must not be touched.
    void *mfh = NULL;
    bool main_exists = false;
    bool header_ok = false;
    int r = io_open(s, MP_TLVSTORE_FILE_MAIN, MP_TLVSTORE_OPEN_READ, &mfh);
    if (r == 0) {
        main_exists = true;
        uint8_t *h = s->scratch;
        r = io_read(s, mfh, 0, h, MP_TLVSTORE_HEADER_LEN);
        if (r >= 0) {
            if (r == MP_TLVSTORE_HEADER_LEN && memcmp(h, main_magic, 8) == 0
                && get32(h + 20) == mp_tlvstore_crc32(0, h, 20)) {
                if (get16(h + 8) != MP_TLVSTORE_VERSION) {
                    io_close(s, mfh);
                    res->flags |= MP_TLVSTORE_LOAD_VERSION;
                    s->mode = MP_TLVSTORE_MODE_PROTECTED;
                    return finish_load(s, res, MP_TLVSTORE_ERR_VERSION);
                }
                header_ok = true;
                s->generation = get32(h + 12);
            }
            r = 0;
        }
        if (r < 0) {
            io_close(s, mfh);
            mfh = NULL;
        }
    }
    if (r < 0 && r != MP_TLVSTORE_ERR_NOENT) {
        // Can't read what is there: serve from RAM and never overwrite it.
        res->flags |= MP_TLVSTORE_LOAD_READ_ERROR;
        s->mode = MP_TLVSTORE_MODE_PROTECTED;
        return finish_load(s, res, r);
    }

    // Side file: replay it if it is a complete snapshot newer than main.
    bool discard_side = false;
    void *sfh;
    r = io_open(s, MP_TLVSTORE_FILE_SIDE, MP_TLVSTORE_OPEN_READ, &sfh);
    if (r == 0) {
        uint32_t sgen = 0, slen = 0;
        int v = side_check(s, sfh, &sgen, &slen);
        if (v > 0 && (!header_ok || (int32_t)(sgen - s->generation) > 0)) {
            if (mfh != NULL) {
                io_close(s, mfh);
                mfh = NULL;
            }
            res->flags |= MP_TLVSTORE_LOAD_SIDE_REPLAYED;
            r = replay_side(s, sfh, sgen, slen);
            if (r < 0) {
                // Serve the snapshot from the side file itself; the next
                // mutation retries a full compaction.
                res->flags |= MP_TLVSTORE_LOAD_REPAIR_FAILED;
                s->generation = sgen;
                r = load_slots(s, sfh, MP_TLVSTORE_SIDE_HEADER_LEN, &lc);
                io_close(s, sfh);
                if (r < 0) {
                    res->flags |= MP_TLVSTORE_LOAD_READ_ERROR;
                    s->mode = MP_TLVSTORE_MODE_PROTECTED;
                    return finish_load(s, res, r);
                }
                s->mode = MP_TLVSTORE_MODE_DEGRADED;
                return finish_load(s, res, MP_TLVSTORE_ERR_RAM_ONLY);
            }
            io_close(s, sfh);
            main_exists = true;
            header_ok = true;
            s->generation = sgen;
            // Now stale; it must go before values it holds are deleted.
            if (s->io->remove(s->io_ctx, MP_TLVSTORE_FILE_SIDE) < 0) {
                res->flags |= MP_TLVSTORE_LOAD_REPAIR_FAILED;
                s->mode = MP_TLVSTORE_MODE_DEGRADED;
            }
            r = io_open(s, MP_TLVSTORE_FILE_MAIN, MP_TLVSTORE_OPEN_READ, &mfh);
            if (r < 0) {
                res->flags |= MP_TLVSTORE_LOAD_READ_ERROR;
                s->mode = MP_TLVSTORE_MODE_PROTECTED;
                return finish_load(s, res, r);
            }
        } else {
            io_close(s, sfh);
            if (v < 0) {
                res->flags |= MP_TLVSTORE_LOAD_READ_ERROR;
            }
            // A stale/torn snapshot may hold old values: remove it, but
            // only once we know the main file is ours to modify.
            discard_side = true;
        }
    } else if (r != MP_TLVSTORE_ERR_NOENT) {
        // Unreadable side file: it may be the only complete copy.
        if (mfh != NULL) {
            io_close(s, mfh);
        }
        res->flags |= MP_TLVSTORE_LOAD_READ_ERROR;
        s->mode = MP_TLVSTORE_MODE_PROTECTED;
        return finish_load(s, res, r);
    }

    if (!main_exists) {
        res->flags |= MP_TLVSTORE_LOAD_NO_FILE;
        return finish_load(s, res, discard_side ? discard_side_file(s, res) : 0);
    }

    if (!header_ok) {
        // Still salvage any intact slots behind a damaged header.
        res->flags |= MP_TLVSTORE_LOAD_HEADER_BAD;
        s->need_compact = 1;
    }
    r = load_slots(s, mfh, 0, &lc);
    io_close(s, mfh);
    if (r < 0) {
        res->flags |= MP_TLVSTORE_LOAD_READ_ERROR;
        s->mode = MP_TLVSTORE_MODE_PROTECTED;
        return finish_load(s, res, r);
    }
    if (res->flags & MP_TLVSTORE_LOAD_OVERFLOW) {
        s->mode = MP_TLVSTORE_MODE_PROTECTED;
        return finish_load(s, res, MP_TLVSTORE_ERR_FULL);
    }
    if (s->mode != MP_TLVSTORE_MODE_OK) {
        return finish_load(s, res, MP_TLVSTORE_ERR_RAM_ONLY);
    }
    if (discard_side) {
        r = discard_side_file(s, res);
        if (r < 0) {
            return finish_load(s, res, r);
        }
    }

    bool dirty = false;
    for (int i = 0; i < s->num_free; ++i) {
        dirty |= s->free_slots[i].dirty != 0;
    }
    bool main_intact;
    if (s->need_compact || (lc.torn_tail && s->io->truncate == NULL)) {
        // Incremental writes are unsafe until the file is rewritten.
        r = compact(s, &main_intact);
        res->flags |= r < 0 ? MP_TLVSTORE_LOAD_REPAIR_FAILED
            : (MP_TLVSTORE_LOAD_COMPACTED | MP_TLVSTORE_LOAD_REPAIRED);
        return finish_load(s, res, r);
    }
    if (lc.torn_tail || dirty) {
        r = repair_in_place(s, lc.torn_tail);
        if (r < 0) {
            res->flags |= MP_TLVSTORE_LOAD_REPAIR_FAILED;
            return finish_load(s, res, r);
        }
        res->flags |= MP_TLVSTORE_LOAD_REPAIRED;
    }
    if (over_threshold(s)) {
        // Only an earlier compaction failed (e.g. full filesystem); the file
        // is consistent, so stay fully operational if it fails again.
        r = compact(s, &main_intact);
        if (r == 0) {
            res->flags |= MP_TLVSTORE_LOAD_COMPACTED;
        } else if (main_intact) {
            r = 0;
        }
    }
    return finish_load(s, res, r);
}

/******************************************************************************/
// Public API.

void mp_tlvstore_init(mp_tlvstore_t *s, const mp_tlvstore_io_t *io, void *io_ctx) {
    memset(s, 0, sizeof(*s));
    s->io = io;
    s->io_ctx = io_ctx;
    s->mode = MP_TLVSTORE_MODE_UNLOADED;
}

int mp_tlvstore_get(const mp_tlvstore_t *s, uint32_t tag, uint8_t *buf, size_t size) {
    int idx = find_entry(s, tag);
    if (idx < 0) {
        return MP_TLVSTORE_ERR_NOT_FOUND;
    }
    const mp_tlvstore_entry_t *e = &s->entries[idx];
    if (buf != NULL) {
        memcpy(buf, s->cache + e->val_off, size < e->len ? size : e->len);
    }
    return e->len;
}

// Degraded: the RAM cache is the truth; try to make it durable in one go.
static int heal(mp_tlvstore_t *s) {
    if (s->mode == MP_TLVSTORE_MODE_PROTECTED) {
        return MP_TLVSTORE_ERR_RAM_ONLY;
    }
    bool main_intact;
    int r = compact(s, &main_intact);
    if (r < 0) {
        s->mode = MP_TLVSTORE_MODE_DEGRADED;
        return r;
    }
    s->mode = MP_TLVSTORE_MODE_OK;
    return 0;
}

// After a durable incremental update: compact if the file got too sparse.
// A failed compaction doesn't undo the update, so this still returns 0; if
// it failed before touching the main file (e.g. no room for the side file)
// incremental updates can go on and compaction is retried next time.
static int maybe_compact(mp_tlvstore_t *s) {
    if (s->need_compact || over_threshold(s) || s->next_seq == 0) {
        bool main_intact;
        if (compact(s, &main_intact) < 0 && (!main_intact || s->need_compact)) {
            s->mode = MP_TLVSTORE_MODE_DEGRADED;
        }
    }
    return 0;
}

static int open_main_for_update(mp_tlvstore_t *s, void **fh) {
    if (s->file_end != 0) {
        return io_open(s, MP_TLVSTORE_FILE_MAIN, MP_TLVSTORE_OPEN_RDWR, fh);
    }
    // First write ever: create the file with just a header.  A torn creation
    // loads as an empty store (header bad, no slots).
    int r = io_open(s, MP_TLVSTORE_FILE_MAIN, MP_TLVSTORE_OPEN_CREATE, fh);
    if (r < 0) {
        return r;
    }
    uint32_t gen = s->generation + 1;
    encode_main_header(s->scratch, gen);
    r = io_write(s, *fh, 0, s->scratch, MP_TLVSTORE_HEADER_LEN);
    if (r == 0) {
        r = io_sync(s, *fh);
    }
    if (r < 0) {
        io_close(s, *fh);
        return r;
    }
    s->generation = gen;
    s->file_end = MP_TLVSTORE_HEADER_LEN;
    return 0;
}

int mp_tlvstore_store(mp_tlvstore_t *s, uint32_t tag, const uint8_t *data, size_t len) {
    if (s->mode == MP_TLVSTORE_MODE_UNLOADED || (data == NULL && len != 0)) {
        return MP_TLVSTORE_ERR_INVAL;
    }
    if (len > MP_TLVSTORE_MAX_VALUE) {
        return MP_TLVSTORE_ERR_TOO_BIG;
    }
    uintptr_t d = (uintptr_t)data;
    if (len != 0 && d < (uintptr_t)(s + 1) && d + len > (uintptr_t)s) {
        // The source must not alias the store (the cache moves values).
        return MP_TLVSTORE_ERR_INVAL;
    }
    int idx = find_entry(s, tag);
    if (idx >= 0 && s->entries[idx].len == len && memcmp(s->cache + s->entries[idx].val_off, data, len) == 0) {
        // BTstack rewrites unchanged entries; don't wear the flash for that.
        return s->mode == MP_TLVSTORE_MODE_OK ? 0 : MP_TLVSTORE_ERR_RAM_ONLY;
    }
    if (!cache_fits(s, idx, len)) {
        return MP_TLVSTORE_ERR_FULL;
    }
    static const uint8_t empty[1] = {0};
    if (data == NULL) {
        data = empty;
    }
    if (s->mode != MP_TLVSTORE_MODE_OK) {
        cache_set(s, idx, tag, data, (uint16_t)len);
        return heal(s);
    }

    // Pick the smallest free slot that fits, else append a new slot.
    uint16_t rec_len = (uint16_t)(MP_TLVSTORE_RECORD_OVERHEAD + len);
    int fi = -1;
    for (int i = 0; i < s->num_free; ++i) {
        if (s->free_slots[i].cap >= rec_len && (fi < 0 || s->free_slots[i].cap < s->free_slots[fi].cap)) {
            fi = i;
        }
    }
    void *fh;
    int r = open_main_for_update(s, &fh);
    uint32_t seq = s->next_seq;
    uint32_t slot = 0;
    uint16_t cap = 0;
    if (r == 0) {
        uint8_t *p = s->scratch;
        if (fi >= 0) {
            slot = s->free_slots[fi].slot;
            cap = s->free_slots[fi].cap;
            uint32_t n = encode_record(p, tag, seq, data, (uint16_t)len);
            if (s->free_slots[fi].dirty) {
                // Also clear whatever garbage follows the record.
                memset(p + n, 0, cap - n);
                n = cap;
            }
            r = io_write(s, fh, slot + MP_TLVSTORE_SLOT_HEADER_LEN, p, n);
        } else {
            slot = s->file_end;
            cap = rec_len;
            encode_slot_header(p, cap);
            uint32_t n = encode_record(p + MP_TLVSTORE_SLOT_HEADER_LEN, tag, seq, data, (uint16_t)len);
            r = io_write(s, fh, slot, p, MP_TLVSTORE_SLOT_HEADER_LEN + n);
        }
        // The new record must be durable before the old one is destroyed.
        if (r == 0) {
            r = io_sync(s, fh);
        }
        if (r == 0) {
            if (fi >= 0) {
                s->free_slots[fi] = s->free_slots[--s->num_free];
            } else {
                s->file_end = slot + MP_TLVSTORE_SLOT_HEADER_LEN + cap;
            }
            s->next_seq += 1;
        }
        if (r == 0 && idx >= 0) {
            mp_tlvstore_entry_t *old = &s->entries[idx];
            r = io_zero(s, fh, old->slot + MP_TLVSTORE_SLOT_HEADER_LEN, MP_TLVSTORE_RECORD_OVERHEAD + old->len);
            if (r == 0) {
                r = io_sync(s, fh);
            }
            if (r == 0) {
                add_free(s, old->slot, old->cap, false);
            }
        }
        io_close(s, fh);
    }
    idx = cache_set(s, idx, tag, data, (uint16_t)len);
    if (r < 0) {
        // What is on disk is now "before or after"; RAM holds "after".
        s->mode = MP_TLVSTORE_MODE_DEGRADED;
        return r;
    }
    s->entries[idx].slot = slot;
    s->entries[idx].cap = cap;
    s->entries[idx].seq = seq;
    return maybe_compact(s);
}

int mp_tlvstore_delete(mp_tlvstore_t *s, uint32_t tag) {
    if (s->mode == MP_TLVSTORE_MODE_UNLOADED) {
        return MP_TLVSTORE_ERR_INVAL;
    }
    int idx = find_entry(s, tag);
    if (idx < 0) {
        return 0;
    }
    if (s->mode != MP_TLVSTORE_MODE_OK) {
        cache_remove(s, idx);
        return heal(s);
    }
    mp_tlvstore_entry_t *e = &s->entries[idx];
    void *fh;
    int r = io_open(s, MP_TLVSTORE_FILE_MAIN, MP_TLVSTORE_OPEN_RDWR, &fh);
    if (r == 0) {
        // Zeroing breaks the CRC at the first changed byte, so a torn scrub
        // already counts as deleted.
        r = io_zero(s, fh, e->slot + MP_TLVSTORE_SLOT_HEADER_LEN, MP_TLVSTORE_RECORD_OVERHEAD + e->len);
        if (r == 0) {
            r = io_sync(s, fh);
        }
        io_close(s, fh);
    }
    if (r == 0) {
        add_free(s, e->slot, e->cap, false);
    }
    cache_remove(s, idx);
    if (r < 0) {
        s->mode = MP_TLVSTORE_MODE_DEGRADED;
        return r;
    }
    return maybe_compact(s);
}

int mp_tlvstore_clear(mp_tlvstore_t *s) {
    if (s->mode == MP_TLVSTORE_MODE_UNLOADED) {
        return MP_TLVSTORE_ERR_INVAL;
    }
    bool had_file = s->file_end != 0;
    s->num_entries = 0;
    s->cache_used = 0;
    if (s->mode == MP_TLVSTORE_MODE_OK && !had_file) {
        return 0;
    }
    // One compaction to an empty image: all-or-nothing, unlike deleting
    // entries one at a time.
    return heal(s);
}

int mp_tlvstore_compact(mp_tlvstore_t *s) {
    if (s->mode == MP_TLVSTORE_MODE_UNLOADED) {
        return MP_TLVSTORE_ERR_INVAL;
    }
    return heal(s);
}

size_t mp_tlvstore_count(const mp_tlvstore_t *s) {
    return s->num_entries;
}

int mp_tlvstore_mode(const mp_tlvstore_t *s) {
    return s->mode;
}

void mp_tlvstore_iter_init(mp_tlvstore_iter_t *iter) {
    iter->index = 0;
}

bool mp_tlvstore_iter_next(const mp_tlvstore_t *s, mp_tlvstore_iter_t *iter,
    uint32_t *tag, const uint8_t **value, size_t *len) {
    if (iter->index >= s->num_entries) {
        return false;
    }
    const mp_tlvstore_entry_t *e = &s->entries[iter->index++];
    if (tag != NULL) {
        *tag = e->tag;
    }
    if (value != NULL) {
        *value = s->cache + e->val_off;
    }
    if (len != NULL) {
        *len = e->len;
    }
    return true;
}
