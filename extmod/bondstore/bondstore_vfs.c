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
#include <stdlib.h>
#include <string.h>

#include "py/runtime.h"
#include "py/objstr.h"
#include "py/stream.h"
#include "py/mperrno.h"
#include "py/mphal.h"
#include "extmod/modbluetooth.h"
#include "extmod/vfs.h"

#if MICROPY_PY_BLUETOOTH_ENABLE_BOND_FILE

#include "extmod/bondstore/bondstore_vfs.h"

#if MICROPY_VFS_LFS1 || MICROPY_VFS_LFS2
#include "extmod/vfs_lfs.h"
#endif
#if MICROPY_VFS_LFS2
#include "lib/uzlib/uzlib.h"
#endif
#if MICROPY_VFS_POSIX
#include <sys/stat.h>
#endif

#define DEBUG_printf(...) // printf("bondstore_vfs: " __VA_ARGS__)

static const MP_DEFINE_STR_OBJ(mode_read_obj, "rb");
static const MP_DEFINE_STR_OBJ(mode_rdwr_obj, "r+b");
static const MP_DEFINE_STR_OBJ(mode_create_obj, "w+b");

static int error_from_errno(int err) {
    switch (err) {
        case MP_ENOENT:
            return MP_BONDSTORE_ERR_NOENT;
        case MP_ENOSPC:
            return MP_BONDSTORE_ERR_NOSPC;
        case MP_EROFS:
            return MP_BONDSTORE_ERR_ROFS;
        default:
            return MP_BONDSTORE_ERR_IO;
    }
}

// An OSError becomes a store error code; anything else is not ours to
// handle (Ctrl-C delivered while the filesystem ran pending events), so it is
// raised again at the next point where Python code runs.
static int error_from_exception(mp_obj_t exc) {
    if (mp_obj_is_subclass_fast(MP_OBJ_FROM_PTR(mp_obj_get_type(exc)), MP_OBJ_FROM_PTR(&mp_type_OSError))) {
        mp_obj_t errno_obj = mp_obj_exception_get_value(exc);
        return mp_obj_is_small_int(errno_obj) ? error_from_errno(MP_OBJ_SMALL_INT_VALUE(errno_obj)) : MP_BONDSTORE_ERR_IO;
    }
    mp_sched_exception(exc);
    return MP_BONDSTORE_ERR_IO;
}

static int vfs_open(void *ctx_in, int file, int mode, void **fh) {
    mp_bondstore_vfs_t *ctx = ctx_in;
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
        if (ret == MP_BONDSTORE_ERR_NOENT && mode == MP_BONDSTORE_OPEN_CREATE) {
            ret = MP_BONDSTORE_ERR_IO; // a missing directory is a write failure
        }
    }
    #if MICROPY_VFS_POSIX
    umask(old_mask);
    #endif
    DEBUG_printf("open(%d, %d) -> %d\n", file, mode, ret);
    return ret;
}

static int vfs_rw(void *fh, uint32_t offset, uint8_t *buf, uint32_t len, byte flags) {
    mp_obj_t f = MP_OBJ_FROM_PTR(fh);
    int ret, err = 0;
    nlr_buf_t nlr;
    if (nlr_push(&nlr) == 0) {
        mp_uint_t n = 0;
        if (mp_stream_seek(f, offset, MP_SEEK_SET, &err) != (mp_off_t)-1) {
            n = mp_stream_rw(f, buf, len, &err, flags);
        }
        if (err != 0) {
            ret = error_from_errno(err);
        } else if (flags & MP_STREAM_RW_WRITE) {
            ret = n == len ? 0 : MP_BONDSTORE_ERR_NOSPC; // a short write: full
        } else {
            ret = n;
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
        if (mp_get_stream(f)->ioctl(f, request, 0, &err) == MP_STREAM_ERROR) {
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
    // A durable sync on every VFS: fsync() in VfsPosix, lfs_file_sync() in
    // littlefs, f_sync() in FatFs.
    return vfs_ioctl(fh, MP_STREAM_FLUSH);
}

static int vfs_close(void *ctx, void *fh) {
    (void)ctx;
    return vfs_ioctl(fh, MP_STREAM_CLOSE);
}

static int vfs_remove(void *ctx_in, int file) {
    mp_bondstore_vfs_t *ctx = ctx_in;
    int ret = 0;
    nlr_buf_t nlr;
    if (nlr_push(&nlr) == 0) {
        mp_vfs_remove(ctx->path[file]);
        nlr_pop();
    } else {
        ret = error_from_exception(MP_OBJ_FROM_PTR(nlr.ret_val));
    }
    return ret;
}

#if MICROPY_VFS_LFS2
#define VFS_CRC uzlib_crc32 // the same CRC, already linked for littlefs
#else
#define VFS_CRC mp_bondstore_crc
#endif

static const mp_bondstore_io_t vfs_io[2] = {
    { vfs_open, vfs_read, vfs_write, vfs_sync, vfs_close, vfs_remove, VFS_CRC, 0 },
    { vfs_open, vfs_read, vfs_write, vfs_sync, vfs_close, vfs_remove, VFS_CRC, MP_BONDSTORE_IO_ATOMIC },
};

static int no_file_open(void *ctx, int file, int mode, void **fh) {
    (void)ctx;
    (void)file;
    (void)mode;
    (void)fh;
    return MP_BONDSTORE_ERR_NOENT;
}

// Only open() is called without a file; records carry their CRC in RAM too.
static const mp_bondstore_io_t no_file_io = {
    .open = no_file_open,
    .crc = VFS_CRC,
};

// littlefs makes a file's changes visible at sync, all at once.
static bool vfs_is_atomic(const char *path) {
    #if MICROPY_VFS_LFS1 || MICROPY_VFS_LFS2
    const char *path_out;
    mp_vfs_mount_t *vfs = mp_vfs_lookup_path(path, &path_out);
    if (vfs != MP_VFS_NONE && vfs != MP_VFS_ROOT) {
        const mp_obj_type_t *type = mp_obj_get_type(vfs->obj);
        #if MICROPY_VFS_LFS1
        if (type == &mp_type_vfs_lfs1) {
            return true;
        }
        #endif
        #if MICROPY_VFS_LFS2
        if (type == &mp_type_vfs_lfs2) {
            return true;
        }
        #endif
    }
    #endif
    (void)path;
    return false;
}

// The file access for the bond file at path: no_file_io if path is NULL or
// cannot be used (the error printed then).
static const mp_bondstore_io_t *vfs_init(mp_bondstore_vfs_t *ctx, const char *path) {
    static const char suffix[][5] = { "", ".new", ".rsv" };
    if (path == NULL) {
        return &no_file_io;
    }
    nlr_buf_t nlr;
    if (nlr_push(&nlr) == 0) {
        for (int i = 0; i < 3; ++i) {
            vstr_t vstr;
            vstr_init(&vstr, strlen(path) + 5);
            vstr_add_str(&vstr, path);
            vstr_add_str(&vstr, suffix[i]);
            ctx->path[i] = mp_obj_new_str_from_vstr(&vstr);
        }
        const mp_bondstore_io_t *io = &vfs_io[vfs_is_atomic(path)];
        nlr_pop();
        return io;
    } else {
        mp_obj_print_exception(MICROPY_ERROR_PRINTER, MP_OBJ_FROM_PTR(nlr.ret_val));
        return &no_file_io;
    }
}

// ble.config(bond_file=...): kept outside the heap so that it survives
// active(0)/active(1) and a soft reset cannot leave it dangling.
enum { BOND_FILE_DEFAULT, BOND_FILE_CUSTOM, BOND_FILE_DISABLED };
static uint8_t bond_file_mode;
static char bond_file_path[MICROPY_BLUETOOTH_BOND_FILE_MAX + 1];

// The configured path, NULL when persistence is disabled.  On unix a
// leading "~/" is taken from $HOME, and its directory is created.
static const char *bond_file(vstr_t *vstr) {
    const char *path = MICROPY_BLUETOOTH_BOND_FILE;
    if (bond_file_mode == BOND_FILE_DISABLED) {
        return NULL;
    } else if (bond_file_mode == BOND_FILE_CUSTOM) {
        path = bond_file_path;
    }
    #if MICROPY_VFS_POSIX
    if (path[0] == '~' && path[1] == '/') {
        const char *home = getenv("HOME");
        vstr_add_str(vstr, home ? home : ".");
        const char *dir_end = strrchr(path, '/');
        vstr_add_strn(vstr, path + 1, dir_end - path - 1);
        nlr_buf_t nlr;
        if (nlr_push(&nlr) == 0) {
            mp_vfs_mkdir(mp_obj_new_str(vstr_str(vstr), vstr_len(vstr)));
            nlr_pop();
        } else {
            // Most likely it exists already; opening the file will tell.
        }
        vstr_add_str(vstr, dir_end);
        return vstr_null_terminated_str(vstr);
    }
    #endif
    (void)vstr;
    return path;
}

// What load() found that the user should know, in one line: the first
// MP_BONDSTORE_LOAD_* flag set (they are in order of importance).
static void report_load(const mp_bondstore_t *store) {
    static const char *const findings[] = {
        "is not a bond store: left untouched",
        "has a newer format: left untouched",
        "holds too many bonds: left untouched",
        "cannot be read: left untouched",
        "was damaged: intact bonds kept",
        "was damaged: intact bonds kept",
        "converted from format version 1",
        "had torn or stale data: removed",
    };
    for (size_t i = 0; i < MP_ARRAY_SIZE(findings); ++i) {
        if (store->found & (1 << i)) {
            mp_printf(MICROPY_ERROR_PRINTER, "bluetooth: bond file %s%s\n", findings[i],
                store->mode == MP_BONDSTORE_MODE_PROTECTED ? ", bonds kept in RAM only" : "");
            return;
        }
    }
}

void mp_bondstore_vfs_load(mp_bondstore_vfs_t *ctx, mp_bondstore_t *store, uint8_t *records, size_t capacity) {
    vstr_t vstr;
    vstr_init(&vstr, 32);
    const char *path = bond_file(&vstr);
    // bond_file=None (or an unusable path): the store lives in RAM for the
    // session (and in an _IRQ_SET_SECRET handler, if the application has one).
    const mp_bondstore_io_t *io = vfs_init(ctx, path);
    ctx->persistent = io != &no_file_io;
    ctx->error_reported = false;
    mp_bondstore_init(store, io, ctx, records, capacity);
    mp_bondstore_load(store);
    DEBUG_printf("load %s: mode=%d found=%02x\n", path ? path : "(none)", store->mode, store->found);
    if (ctx->persistent) {
        report_load(store);
    }
    vstr_clear(&vstr);
}

bool mp_bondstore_vfs_commit_failed(mp_bondstore_vfs_t *ctx, int err) {
    if (err == 0) {
        ctx->error_reported = false;
        return false;
    } else if (err == MP_BONDSTORE_ERR_PROTECTED) {
        return false; // said at load: this file is not ours to write
    }
    if (!ctx->error_reported) {
        ctx->error_reported = true;
        mp_printf(MICROPY_ERROR_PRINTER, "bluetooth: bond store write failed (%d), bonds kept in RAM only for now\n", err);
    }
    return true;
}

bool mp_bondstore_vfs_random(uint8_t *buf, size_t len) {
    nlr_buf_t nlr;
    if (nlr_push(&nlr) == 0) {
        mp_hal_get_random(len, buf);
        nlr_pop();
        return true;
    }
    mp_obj_print_exception(MICROPY_ERROR_PRINTER, MP_OBJ_FROM_PTR(nlr.ret_val));
    return false;
}

bool mp_bondstore_vfs_static_address_valid(const uint8_t *addr) {
    // Two top bits 0b11; the remaining 46 bits neither all 0 nor all 1.
    if ((addr[0] & 0xc0) != 0xc0) {
        return false;
    }
    uint8_t all_or = addr[0] & 0x3f, all_and = addr[0] | 0xc0;
    for (int i = 1; i < 6; ++i) {
        all_or |= addr[i];
        all_and &= addr[i];
    }
    return all_or != 0 && all_and != 0xff;
}

bool mp_bondstore_vfs_new_static_address(uint8_t *addr) {
    do {
        if (!mp_bondstore_vfs_random(addr, 6)) {
            return false;
        }
        addr[0] |= 0xc0;
    } while (!mp_bondstore_vfs_static_address_valid(addr));
    return true;
}

bool mp_bondstore_vfs_key_valid(const uint8_t *key, size_t len) {
    for (size_t i = 0; i < len; ++i) {
        if (key[i]) {
            return true;
        }
    }
    return false;
}

bool mp_bondstore_vfs_new_key(uint8_t *key, size_t len) {
    do {
        if (!mp_bondstore_vfs_random(key, len)) {
            return false;
        }
    } while (!mp_bondstore_vfs_key_valid(key, len));
    return true;
}

mp_obj_t mp_bluetooth_get_bond_file(void) {
    switch (bond_file_mode) {
        case BOND_FILE_DISABLED:
            return mp_const_none;
        case BOND_FILE_CUSTOM:
            return mp_obj_new_str(bond_file_path, strlen(bond_file_path));
        default:
            return MP_OBJ_NEW_QSTR(qstr_from_str(MICROPY_BLUETOOTH_BOND_FILE));
    }
}

void mp_bluetooth_set_bond_file(mp_obj_t path_in) {
    if (path_in == mp_const_none) {
        bond_file_mode = BOND_FILE_DISABLED;
        return;
    }
    size_t len;
    const char *path = mp_obj_str_get_data(path_in, &len);
    // A relative path is taken from the current directory now, so that a
    // later chdir() cannot make a second store appear.
    bool relative = len > 0 && path[0] != '/' && !(path[0] == '~' && path[1] == '/');
    size_t cwd_len = 0;
    const char *cwd = "";
    if (relative) {
        cwd = mp_obj_str_get_data(mp_vfs_getcwd(), &cwd_len);
        cwd_len -= cwd_len > 0 && cwd[cwd_len - 1] == '/';
    }
    if (len == 0 || strlen(path) != len || (relative ? cwd_len + 1 : 0) + len > MICROPY_BLUETOOTH_BOND_FILE_MAX) {
        mp_raise_ValueError(MP_ERROR_TEXT("invalid bond_file"));
    }
    char *p = bond_file_path;
    if (relative) {
        memcpy(p, cwd, cwd_len);
        p[cwd_len] = '/';
        p += cwd_len + 1;
    }
    memcpy(p, path, len + 1);
    bond_file_mode = BOND_FILE_CUSTOM;
}

#endif // MICROPY_PY_BLUETOOTH_ENABLE_BOND_FILE
