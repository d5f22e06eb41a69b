// Host test shim: in-memory implementation of mp_bondstore_io_t with
// deterministic fault injection.  Host-only code (uses malloc).
//
// Fault model ("power cut at fault point K"): every byte written is one fault
// point, and open(CREATE) (truncation), sync and remove are one point each.
// When the budget K is reached the operation in progress is interrupted: a
// write lands only its first bytes and the rest of its range is left
// unchanged, filled with garbage or with zeros (shim_mem_fault.cut_mode);
// metadata operations do not happen.  Optionally every write not yet covered
// by a sync of its file is reverted (cut_lose_unsynced), modelling a cache
// that never reached the media.  After the cut the "device" is dead: every
// call fails until shim_mem_power_on().
//
// shim_mem_io_atomic models littlefs: a file's writes and its truncation by
// open(CREATE) become visible only at sync (a cut reverts them), removal and
// creation are immediate, and while a file has unsynced changes its old
// content still occupies space (copy on write).

#include <stdlib.h>
#include <string.h>

#include "shim.h"

#define NFILES 3

typedef struct {
    uint32_t off;
    uint32_t len;
    uint32_t old_size;
    uint8_t *old;  // previous bytes in [off, min(off+len, old_size))
} pending_t;

typedef struct {
    uint8_t *data;
    uint32_t size;
    uint32_t synced_size; // the length a cut leaves at most (see power_cut)
    uint32_t alloc;
    int exists;
    pending_t *pending;
    int npending;
    int apending;
} memfile_t;

static memfile_t files[NFILES];
shim_stats_t shim_mem_stats;
shim_fault_t shim_mem_fault;
static int dead;
static int atomic_fs;
static uint32_t rng_state;

static uint32_t rng(void) {
    rng_state = rng_state * 1103515245u + 12345u;
    return rng_state >> 8;
}

static void clear_pending(memfile_t *f) {
    for (int i = 0; i < f->npending; ++i) {
        free(f->pending[i].old);
    }
    f->npending = 0;
}

static void ensure(memfile_t *f, uint32_t size) {
    if (size > f->alloc) {
        uint32_t n = f->alloc ? f->alloc : 256;
        while (n < size) {
            n *= 2;
        }
        f->data = realloc(f->data, n);
        f->alloc = n;
    }
    if (size > f->size) {
        memset(f->data + f->size, 0, size - f->size);
        f->size = size;
    }
}

void shim_mem_reset(void) {
    for (int i = 0; i < NFILES; ++i) {
        clear_pending(&files[i]);
        free(files[i].pending);
        free(files[i].data);
        memset(&files[i], 0, sizeof(files[i]));
    }
    memset(&shim_mem_stats, 0, sizeof(shim_mem_stats));
    memset(&shim_mem_fault, 0, sizeof(shim_mem_fault));
    shim_mem_fault.cut_at = -1;
    shim_mem_fault.fail_sync_at = -1;
    shim_mem_fault.fail_read_at = -1;
    shim_mem_fault.space_limit = 0xffffffffu;
    dead = 0;
}

void shim_mem_power_on(void) {
    for (int i = 0; i < NFILES; ++i) {
        clear_pending(&files[i]);
    }
    shim_mem_fault.cut_at = -1;
    shim_mem_fault.fail_sync_at = -1;
    shim_mem_fault.fail_read_at = -1;
    dead = 0;
}

int shim_mem_is_dead(void) {
    return dead;
}

int shim_mem_get_file(int idx, uint8_t *buf, uint32_t size) {
    memfile_t *f = &files[idx];
    if (!f->exists) {
        return -1;
    }
    uint32_t n = size < f->size ? size : f->size;
    if (buf != NULL && n > 0) {
        memcpy(buf, f->data, n);
    }
    return (int)f->size;
}

void shim_mem_set_file(int idx, const uint8_t *buf, int size) {
    memfile_t *f = &files[idx];
    clear_pending(f);
    if (size < 0) {
        f->exists = 0;
        f->size = 0;
        return;
    }
    f->exists = 1;
    f->size = 0;
    ensure(f, (uint32_t)size);
    if (size > 0) {
        memcpy(f->data, buf, (size_t)size);
    }
    f->synced_size = f->size;
}

// Undo the file's changes since its last sync.
static void revert(memfile_t *f) {
    for (int j = f->npending - 1; j >= 0; --j) {
        pending_t *p = &f->pending[j];
        uint32_t n = p->old_size > p->off ? p->old_size - p->off : 0;
        if (n > p->len) {
            n = p->len;
        }
        if (n > 0) {
            memcpy(f->data + p->off, p->old, n);
        }
        f->size = p->old_size;
    }
    clear_pending(f);
}

// Filesystems record a file's new length no earlier than its data (FAT and
// littlefs at sync, ext4 in ordered mode), so a cut loses an unsynced
// extension: a new file never shows garbage it was not given.
static void power_cut(void) {
    dead = 1;
    for (int i = 0; i < NFILES; ++i) {
        if (shim_mem_fault.cut_lose_unsynced || atomic_fs) {
            revert(&files[i]);
        } else if (files[i].size > files[i].synced_size) {
            files[i].size = files[i].synced_size;
        }
    }
}

// Consume `n` fault points; returns how many may proceed (< n means cut).
static uint32_t consume(uint32_t n) {
    int64_t at = shim_mem_fault.cut_at;
    int64_t start = shim_mem_stats.points;
    if (at >= 0 && at < start + (int64_t)n) {
        uint32_t ok = at > start ? (uint32_t)(at - start) : 0;
        shim_mem_stats.points += ok;
        return ok;
    }
    shim_mem_stats.points += n;
    return n;
}

static int handle_file(void *fh) {
    return (int)((intptr_t)fh & 0xff) - 1;
}

static int handle_mode(void *fh) {
    return (int)(((intptr_t)fh >> 8) & 0xff);
}

static uint64_t total_size(void) {
    uint64_t n = 0;
    for (int i = 0; i < NFILES; ++i) {
        n += files[i].exists ? files[i].size : 0;
        if (atomic_fs && files[i].npending) {
            n += files[i].pending[0].old_size;
        }
    }
    return n;
}

static void raw_write(memfile_t *f, uint32_t offset, const uint8_t *buf, uint32_t len) {
    if (f->npending == f->apending) {
        f->apending = f->apending ? f->apending * 2 : 8;
        f->pending = realloc(f->pending, (size_t)f->apending * sizeof(pending_t));
    }
    pending_t *p = &f->pending[f->npending++];
    p->off = offset;
    p->len = len;
    p->old_size = f->size;
    p->old = malloc(len ? len : 1);
    uint32_t n = f->size > offset ? f->size - offset : 0;
    if (n > len) {
        n = len;
    }
    if (n > 0) {
        memcpy(p->old, f->data + offset, n);
    }
    ensure(f, offset + len);
    if (len > 0) {
        memcpy(f->data + offset, buf, len);
    }
}

static int m_open(void *ctx, int file, int mode, void **fh) {
    (void)ctx;
    if (dead) {
        return MP_BONDSTORE_ERR_IO;
    }
    memfile_t *f = &files[file];
    shim_mem_stats.opens += 1;
    if (mode != MP_BONDSTORE_OPEN_READ && shim_mem_fault.rofs) {
        return MP_BONDSTORE_ERR_ROFS;
    }
    if (mode == MP_BONDSTORE_OPEN_CREATE) {
        if (consume(1) < 1) {
            power_cut();
            return MP_BONDSTORE_ERR_IO;
        }
        if (f->exists && f->size > 0) {
            // Truncation: an undoable change like a write of the old bytes.
            uint8_t *old = malloc(f->size);
            memcpy(old, f->data, f->size);
            uint32_t n = f->size;
            raw_write(f, 0, old, n);
            free(old);
            f->pending[f->npending - 1].len = n;
        }
        f->exists = 1;
        f->size = 0;
        if (!atomic_fs) {
            f->synced_size = 0; // truncation is immediate
        }
        shim_mem_stats.creates += 1;
    } else if (!f->exists) {
        return MP_BONDSTORE_ERR_NOENT;
    }
    *fh = (void *)(intptr_t)((file + 1) | (mode << 8));
    return 0;
}

static int m_read(void *ctx, void *fh, uint32_t offset, uint8_t *buf, uint32_t len) {
    (void)ctx;
    if (dead) {
        return MP_BONDSTORE_ERR_IO;
    }
    if (shim_mem_fault.fail_read_at >= 0 && shim_mem_stats.reads == (uint64_t)shim_mem_fault.fail_read_at) {
        shim_mem_stats.reads += 1;
        return MP_BONDSTORE_ERR_IO;
    }
    shim_mem_stats.reads += 1;
    memfile_t *f = &files[handle_file(fh)];
    if (offset >= f->size) {
        return 0;
    }
    if (len > f->size - offset) {
        len = f->size - offset;
    }
    // Return short reads sometimes to exercise the caller's read loop.
    if (shim_mem_fault.short_reads && len > 1) {
        len = len / 2;
    }
    if (len > 0) {
        memcpy(buf, f->data + offset, len);
    }
    shim_mem_stats.bytes_read += len;
    return (int)len;
}

static int m_write(void *ctx, void *fh, uint32_t offset, const uint8_t *buf, uint32_t len) {
    (void)ctx;
    if (dead) {
        return MP_BONDSTORE_ERR_IO;
    }
    if (handle_mode(fh) == MP_BONDSTORE_OPEN_READ) {
        return MP_BONDSTORE_ERR_IO;
    }
    memfile_t *f = &files[handle_file(fh)];
    shim_mem_stats.writes += 1;
    // Filesystem full: only the bytes that fit land.
    uint64_t end = (uint64_t)offset + len;
    int nospc = 0;
    if (end > f->size && total_size() + (end - f->size) > shim_mem_fault.space_limit) {
        uint64_t room = shim_mem_fault.space_limit - total_size() + f->size;
        len = room > offset ? (uint32_t)(room - offset) : 0;
        nospc = 1;
    }
    uint32_t ok = consume(len);
    shim_mem_stats.bytes_written += ok;
    if (ok < len) {
        raw_write(f, offset, buf, ok);
        uint32_t rest = len - ok;
        if (shim_mem_fault.cut_mode != SHIM_CUT_UNCHANGED && rest > 0) {
            uint8_t *junk = malloc(rest);
            rng_state = (uint32_t)shim_mem_fault.cut_at * 2654435761u + 1;
            for (uint32_t i = 0; i < rest; ++i) {
                junk[i] = shim_mem_fault.cut_mode == SHIM_CUT_GARBAGE ? (uint8_t)rng() : 0;
            }
            raw_write(f, offset + ok, junk, rest);
            free(junk);
        }
        power_cut();
        return MP_BONDSTORE_ERR_IO;
    }
    raw_write(f, offset, buf, len);
    return nospc ? MP_BONDSTORE_ERR_NOSPC : 0;
}

static int m_sync(void *ctx, void *fh) {
    (void)ctx;
    if (dead) {
        return MP_BONDSTORE_ERR_IO;
    }
    if (consume(1) < 1) {
        power_cut();
        return MP_BONDSTORE_ERR_IO;
    }
    shim_mem_stats.syncs += 1;
    if (shim_mem_fault.fail_sync_at >= 0 && shim_mem_stats.syncs == (uint64_t)shim_mem_fault.fail_sync_at + 1) {
        return MP_BONDSTORE_ERR_IO;
    }
    clear_pending(&files[handle_file(fh)]);
    files[handle_file(fh)].synced_size = files[handle_file(fh)].size;
    return 0;
}

static int m_close(void *ctx, void *fh) {
    (void)ctx;
    if (atomic_fs && !dead) {
        // littlefs does not commit a file whose write failed (LFS_F_ERRED);
        // the store syncs before every successful close, so revert the rest.
        revert(&files[handle_file(fh)]);
    }
    shim_mem_stats.closes += 1;
    return dead ? MP_BONDSTORE_ERR_IO : 0;
}

static int m_remove(void *ctx, int file) {
    (void)ctx;
    if (dead) {
        return MP_BONDSTORE_ERR_IO;
    }
    if (shim_mem_fault.rofs) {
        return MP_BONDSTORE_ERR_ROFS;
    }
    if (consume(1) < 1) {
        power_cut();
        return MP_BONDSTORE_ERR_IO;
    }
    shim_mem_stats.removes += 1;
    memfile_t *f = &files[file];
    clear_pending(f);
    f->exists = 0;
    f->size = 0;
    f->synced_size = 0;
    return 0;
}

static int m_remove_file(void *ctx, int file) {
    int existed = files[file].exists;
    int err = m_remove(ctx, file);
    return err ? err : existed ? 0 : MP_BONDSTORE_ERR_NOENT;
}

const mp_bondstore_io_t shim_mem_io = {
    m_open, m_read, m_write, m_sync, m_close, m_remove_file, mp_bondstore_crc, 0,
};

const mp_bondstore_io_t shim_mem_io_atomic = {
    m_open, m_read, m_write, m_sync, m_close, m_remove_file, mp_bondstore_crc, MP_BONDSTORE_IO_ATOMIC,
};

void shim_mem_set_atomic(int on) {
    atomic_fs = on;
}
uint32_t shim_store_size(void) {
    return sizeof(mp_bondstore_t);
}

// The store's mode and load findings, for the ctypes harness.
int shim_store_mode(const mp_bondstore_t *store) {
    return store->mode;
}

int shim_store_found(const mp_bondstore_t *store) {
    return store->found;
}
