// Host test adapter: BTstack's btstack_tlv_t over the bond store core, with a
// minimal POSIX mp_bondstore_io_t (in place, not atomic: flags 0).  Every
// store_tag/delete_tag commits, so each one goes through the file, and a new
// instance on the same path sees exactly what load() reads back.

#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "bondstore_tlv.h"

static const char *const suffix[] = {
    [MP_BONDSTORE_FILE_MAIN] = "",
    [MP_BONDSTORE_FILE_V1_SIDE] = ".new",
    [MP_BONDSTORE_FILE_RESERVE] = ".rsv",
};

static void file_name(const char *path, int file, char *out, size_t size) {
    snprintf(out, size, "%s%s", path, suffix[file]);
}

static int from_errno(void) {
    switch (errno) {
        case ENOENT:
            return MP_BONDSTORE_ERR_NOENT;
        case ENOSPC:
            return MP_BONDSTORE_ERR_NOSPC;
        case EROFS:
            return MP_BONDSTORE_ERR_ROFS;
        default:
            return MP_BONDSTORE_ERR_IO;
    }
}

// ---- mp_bondstore_io_t on POSIX -----------------------------------------

static int io_open(void *ctx, int file, int mode, void **fh) {
    const bondstore_tlv_t *self = ctx;
    char name[sizeof(self->path)];
    file_name(self->path, file, name, sizeof(name));
    int flags = mode == MP_BONDSTORE_OPEN_READ ? O_RDONLY
        : mode == MP_BONDSTORE_OPEN_RDWR ? O_RDWR
        : O_RDWR | O_CREAT | O_TRUNC;
    int fd = open(name, flags, 0600);
    if (fd < 0) {
        return from_errno();
    }
    *fh = (void *)(intptr_t)fd;
    return 0;
}

static int io_read(void *ctx, void *fh, uint32_t offset, uint8_t *buf, uint32_t len) {
    (void)ctx;
    uint32_t done = 0;
    while (done < len) {
        ssize_t n = pread((int)(intptr_t)fh, buf + done, len - done, (off_t)offset + done);
        if (n < 0 && errno == EINTR) {
            continue;
        } else if (n < 0) {
            return from_errno();
        } else if (n == 0) {
            break;
        }
        done += (uint32_t)n;
    }
    return (int)done;
}

static int io_write(void *ctx, void *fh, uint32_t offset, const uint8_t *buf, uint32_t len) {
    (void)ctx;
    uint32_t done = 0;
    while (done < len) {
        ssize_t n = pwrite((int)(intptr_t)fh, buf + done, len - done, (off_t)offset + done);
        if (n < 0 && errno == EINTR) {
            continue;
        } else if (n <= 0) {
            return n < 0 ? from_errno() : MP_BONDSTORE_ERR_IO;
        }
        done += (uint32_t)n;
    }
    return 0;
}

static int io_sync(void *ctx, void *fh) {
    (void)ctx;
    return fsync((int)(intptr_t)fh) == 0 ? 0 : from_errno();
}

static int io_close(void *ctx, void *fh) {
    (void)ctx;
    return close((int)(intptr_t)fh) == 0 ? 0 : from_errno();
}

static int io_remove(void *ctx, int file) {
    const bondstore_tlv_t *self = ctx;
    char name[sizeof(self->path)];
    file_name(self->path, file, name, sizeof(name));
    return unlink(name) == 0 ? 0 : from_errno();
}

static const mp_bondstore_io_t posix_io = {
    .open = io_open,
    .read = io_read,
    .write = io_write,
    .sync = io_sync,
    .close = io_close,
    .remove = io_remove,
    .crc = mp_bondstore_crc,
    .flags = 0, // in place: POSIX files are not atomic
};

// ---- btstack_tlv_t --------------------------------------------------------

// Returns the value's full length (even if buffer_size is smaller), 0 if absent.
static int tlv_get_tag(void *context, uint32_t tag, uint8_t *buffer, uint32_t buffer_size) {
    bondstore_tlv_t *self = context;
    int len = mp_bondstore_get(&self->store, tag, buffer, buffer_size);
    return len < 0 ? 0 : len;
}

// Returns 0 once the value is in the file; else an MP_BONDSTORE_ERR_* code
// (values over 255 bytes, a full buffer, an I/O error, a protected file).
static int tlv_store_tag(void *context, uint32_t tag, const uint8_t *data, uint32_t data_size) {
    bondstore_tlv_t *self = context;
    int err = mp_bondstore_set(&self->store, tag, data, data_size);
    if (err == MP_BONDSTORE_OK) {
        err = mp_bondstore_commit(&self->store);
    }
    self->last_error = err;
    return err;
}

static void tlv_delete_tag(void *context, uint32_t tag) {
    bondstore_tlv_t *self = context;
    int err = mp_bondstore_set(&self->store, tag, NULL, 0);
    if (err == MP_BONDSTORE_OK) {
        err = mp_bondstore_commit(&self->store);
    }
    self->last_error = err;
    if (err != MP_BONDSTORE_OK) {
        fprintf(stderr, "bondstore_tlv: delete of tag %08lx failed (%d)\n", (unsigned long)tag, err);
    }
}

static const btstack_tlv_t bondstore_tlv = {
    .get_tag = tlv_get_tag,
    .store_tag = tlv_store_tag,
    .delete_tag = tlv_delete_tag,
};

const btstack_tlv_t *bondstore_tlv_init_instance(bondstore_tlv_t *self, const char *path) {
    memset(self, 0, sizeof(*self));
    snprintf(self->path, BONDSTORE_TLV_PATH_MAX + 1, "%s", path);
    mp_bondstore_init(&self->store, &posix_io, self, self->records, sizeof(self->records));
    self->load_result = mp_bondstore_load(&self->store);
    if (self->load_result != MP_BONDSTORE_OK) {
        fprintf(stderr, "bondstore_tlv: %s not loaded (%d, found 0x%x), RAM only\n", path,
            self->load_result, self->store.found);
    }
    return &bondstore_tlv;
}

void bondstore_tlv_remove_files(const char *path) {
    char name[BONDSTORE_TLV_PATH_MAX + 5];
    for (int file = MP_BONDSTORE_FILE_MAIN; file <= MP_BONDSTORE_FILE_RESERVE; ++file) {
        file_name(path, file, name, sizeof(name));
        unlink(name);
    }
}
