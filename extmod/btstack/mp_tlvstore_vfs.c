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

#include <string.h>

#include "py/runtime.h"
#include "py/objstr.h"
#include "py/stream.h"
#include "py/mperrno.h"
#include "extmod/vfs.h"

#if MICROPY_PY_BLUETOOTH && MICROPY_BLUETOOTH_BTSTACK && MICROPY_BLUETOOTH_BTSTACK_BOND_STORE

#include "extmod/btstack/mp_tlvstore_vfs.h"

#if MICROPY_VFS_POSIX
#include <sys/stat.h>
#endif

#define DEBUG_printf(...) // printf("tlvstore_vfs: " __VA_ARGS__)

static const MP_DEFINE_STR_OBJ(mode_read_obj, "rb");
static const MP_DEFINE_STR_OBJ(mode_rdwr_obj, "r+b");
static const MP_DEFINE_STR_OBJ(mode_create_obj, "w+b");

static int error_from_errno(int err) {
    switch (err) {
        case MP_ENOENT:
            return MP_TLVSTORE_ERR_NOENT;
        case MP_ENOSPC:
            return MP_TLVSTORE_ERR_NOSPC;
        case MP_EROFS:
            return MP_TLVSTORE_ERR_ROFS;
        default:
            return MP_TLVSTORE_ERR_IO;
    }
}

// Map an exception raised by the VFS to a store error code.
static int error_from_exception(mp_obj_t exc) {
    if (mp_obj_is_subclass_fast(MP_OBJ_FROM_PTR(mp_obj_get_type(exc)), MP_OBJ_FROM_PTR(&mp_type_OSError))) {
        mp_obj_t errno_obj = mp_obj_exception_get_value(exc);
        if (mp_obj_is_small_int(errno_obj)) {
            return error_from_errno(MP_OBJ_SMALL_INT_VALUE(errno_obj));
        }
    }
    return MP_TLVSTORE_ERR_IO;
}

static int vfs_open(void *ctx_in, int file, int mode, void **fh) {
    mp_tlvstore_vfs_t *ctx = ctx_in;
    static const mp_obj_str_t *const modes[] = { &mode_read_obj, &mode_rdwr_obj, &mode_create_obj };
    #if MICROPY_VFS_POSIX
    // Bond keys are secrets: a file the store creates is readable by its owner only.
    mode_t old_mask = umask(077);
    #endif
    int ret = 0;
    nlr_buf_t nlr;
    if (nlr_push(&nlr) == 0) {
        mp_obj_t args[2] = { ctx->path[file], MP_OBJ_FROM_PTR(modes[mode]) };
        *fh = MP_OBJ_TO_PTR(mp_vfs_open(2, args, (mp_map_t *)&mp_const_empty_map));
        nlr_pop();
    } else {
        ret = error_from_exception(MP_OBJ_FROM_PTR(nlr.ret_val));
        if (ret == MP_TLVSTORE_ERR_NOENT && mode == MP_TLVSTORE_OPEN_CREATE) {
            // A file that cannot be created (missing directory) is a write
            // failure, not an absent file.
            ret = MP_TLVSTORE_ERR_IO;
        }
    }
    #if MICROPY_VFS_POSIX
    umask(old_mask);
    #endif
    DEBUG_printf("open(%d, %d) -> %d\n", file, mode, ret);
    return ret;
}

static int vfs_seek(mp_obj_t f, uint32_t offset) {
    int err;
    if (mp_stream_seek(f, offset, MP_SEEK_SET, &err) == (mp_off_t)-1) {
        return error_from_errno(err);
    }
    return 0;
}

static int vfs_rw(void *fh, uint32_t offset, uint8_t *buf, uint32_t len, byte flags) {
    mp_obj_t f = MP_OBJ_FROM_PTR(fh);
    int ret;
    nlr_buf_t nlr;
    if (nlr_push(&nlr) == 0) {
        ret = vfs_seek(f, offset);
        if (ret == 0) {
            int err = 0;
            mp_uint_t n = mp_stream_rw(f, buf, len, &err, flags);
            if (err != 0) {
                ret = error_from_errno(err);
            } else if ((flags & MP_STREAM_RW_WRITE) && n != len) {
                // A short write with no error means the filesystem is full.
                ret = MP_TLVSTORE_ERR_NOSPC;
            } else {
                ret = (flags & MP_STREAM_RW_WRITE) ? 0 : (int)n;
            }
        }
        nlr_pop();
    } else {
        ret = error_from_exception(MP_OBJ_FROM_PTR(nlr.ret_val));
    }
    return ret;
}

static int vfs_read(void *ctx, void *fh, uint32_t offset, uint8_t *buf, uint32_t len) {
    (void)ctx;
    return vfs_rw(fh, offset, buf, len, MP_STREAM_RW_READ);
}

static int vfs_write(void *ctx, void *fh, uint32_t offset, const uint8_t *buf, uint32_t len) {
    (void)ctx;
    return vfs_rw(fh, offset, (uint8_t *)buf, len, MP_STREAM_RW_WRITE);
}

static int vfs_ioctl(void *fh, mp_uint_t request) {
    mp_obj_t f = MP_OBJ_FROM_PTR(fh);
    int ret = 0;
    nlr_buf_t nlr;
    if (nlr_push(&nlr) == 0) {
        int err;
        const mp_stream_p_t *stream = mp_get_stream(f);
        if (stream->ioctl(f, request, 0, &err) == MP_STREAM_ERROR) {
            ret = error_from_errno(err);
        }
        nlr_pop();
    } else {
        ret = error_from_exception(MP_OBJ_FROM_PTR(nlr.ret_val));
    }
    return ret;
}

static int vfs_sync(void *ctx, void *fh) {
    (void)ctx;
    // Flush is a durable sync on both VFSs we target: fsync() in VfsPosix,
    // lfs_file_sync() in littlefs.
    return vfs_ioctl(fh, MP_STREAM_FLUSH);
}

static int vfs_close(void *ctx, void *fh) {
    (void)ctx;
    return vfs_ioctl(fh, MP_STREAM_CLOSE);
}

static int vfs_remove(void *ctx_in, int file) {
    mp_tlvstore_vfs_t *ctx = ctx_in;
    int ret = 0;
    nlr_buf_t nlr;
    if (nlr_push(&nlr) == 0) {
        mp_vfs_remove(ctx->path[file]);
        nlr_pop();
    } else {
        ret = error_from_exception(MP_OBJ_FROM_PTR(nlr.ret_val));
        if (ret == MP_TLVSTORE_ERR_NOENT) {
            ret = 0;
        }
    }
    return ret;
}

const mp_tlvstore_io_t mp_tlvstore_vfs_io = {
    .open = vfs_open,
    .read = vfs_read,
    .write = vfs_write,
    .sync = vfs_sync,
    .close = vfs_close,
    .remove = vfs_remove,
    // The VFS has no truncate: the store compacts instead.
    .truncate = NULL,
};

bool mp_tlvstore_vfs_init(mp_tlvstore_vfs_t *ctx, const char *path) {
    size_t len = strlen(path);
    nlr_buf_t nlr;
    if (nlr_push(&nlr) == 0) {
        vstr_t side;
        vstr_init(&side, len + 5);
        vstr_add_strn(&side, path, len);
        vstr_add_str(&side, ".new");
        ctx->path[MP_TLVSTORE_FILE_MAIN] = mp_obj_new_str(path, len);
        ctx->path[MP_TLVSTORE_FILE_SIDE] = mp_obj_new_str_from_vstr(&side);
        nlr_pop();
        return true;
    } else {
        mp_obj_print_exception(MICROPY_ERROR_PRINTER, MP_OBJ_FROM_PTR(nlr.ret_val));
        return false;
    }
}

#endif // MICROPY_PY_BLUETOOTH && MICROPY_BLUETOOTH_BTSTACK && MICROPY_BLUETOOTH_BTSTACK_BOND_STORE
