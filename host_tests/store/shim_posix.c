// Host test shim: POSIX file implementation of mp_tlvstore_io_t, i.e. what
// the MicroPython VFS adapter does on a real filesystem.  Files are
// "<base>" (main) and "<base>.new" (side).

#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "shim.h"

static char paths[2][4096];

int shim_posix_set_base(const char *path) {
    if (strlen(path) + 5 >= sizeof(paths[0])) {
        return -1;
    }
    snprintf(paths[0], sizeof(paths[0]), "%s", path);
    snprintf(paths[1], sizeof(paths[1]), "%s.new", path);
    return 0;
}

static int map_errno(int e) {
    switch (e) {
        case ENOENT:
            return MP_TLVSTORE_ERR_NOENT;
        case ENOSPC:
            return MP_TLVSTORE_ERR_NOSPC;
        case EROFS:
        case EACCES:
        case EPERM:
            return MP_TLVSTORE_ERR_ROFS;
        default:
            return MP_TLVSTORE_ERR_IO;
    }
}

static int fd_of(void *fh) {
    return (int)(intptr_t)fh - 1;
}

static int p_open(void *ctx, int file, int mode, void **fh) {
    (void)ctx;
    int flags = mode == MP_TLVSTORE_OPEN_READ ? O_RDONLY
        : mode == MP_TLVSTORE_OPEN_RDWR ? O_RDWR : (O_RDWR | O_CREAT | O_TRUNC);
    int fd = open(paths[file], flags, 0644);
    if (fd < 0) {
        return map_errno(errno);
    }
    *fh = (void *)(intptr_t)(fd + 1);
    return 0;
}

static int p_read(void *ctx, void *fh, uint32_t offset, uint8_t *buf, uint32_t len) {
    (void)ctx;
    ssize_t n = pread(fd_of(fh), buf, len, (off_t)offset);
    return n < 0 ? map_errno(errno) : (int)n;
}

static int p_write(void *ctx, void *fh, uint32_t offset, const uint8_t *buf, uint32_t len) {
    (void)ctx;
    while (len > 0) {
        ssize_t n = pwrite(fd_of(fh), buf, len, (off_t)offset);
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            return map_errno(errno);
        }
        buf += n;
        offset += (uint32_t)n;
        len -= (uint32_t)n;
    }
    return 0;
}

static int p_sync(void *ctx, void *fh) {
    (void)ctx;
    return fsync(fd_of(fh)) < 0 ? map_errno(errno) : 0;
}

static int p_close(void *ctx, void *fh) {
    (void)ctx;
    return close(fd_of(fh)) < 0 ? map_errno(errno) : 0;
}

static int p_remove(void *ctx, int file) {
    (void)ctx;
    if (unlink(paths[file]) < 0 && errno != ENOENT) {
        return map_errno(errno);
    }
    return 0;
}

static int p_truncate(void *ctx, void *fh, uint32_t len) {
    (void)ctx;
    return ftruncate(fd_of(fh), (off_t)len) < 0 ? map_errno(errno) : 0;
}

const mp_tlvstore_io_t shim_posix_io = {
    p_open, p_read, p_write, p_sync, p_close, p_remove, p_truncate,
};

const mp_tlvstore_io_t shim_posix_io_notrunc = {
    p_open, p_read, p_write, p_sync, p_close, p_remove, NULL,
};

uint32_t shim_store_size(void) {
    return (uint32_t)sizeof(mp_tlvstore_t);
}

uint32_t shim_load_result_size(void) {
    return (uint32_t)sizeof(mp_tlvstore_load_result_t);
}
