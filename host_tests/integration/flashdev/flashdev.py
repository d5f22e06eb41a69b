# FlashDev: a NOR-flash-like block device over a host image file, for
# vfs.VfsLfs2 and vfs.VfsFat.  Runs inside the unix MicroPython firmware.
#
# The extended block protocol (readblocks/writeblocks with an offset, ioctl
# 1 init, 2 deinit, 3 sync, 4 count, 5 size, 6 erase), with the semantics of
# the rp2's flash as littlefs sees it:
#   - erase sets a whole block to 0xff; program is an AND (bits go 1 -> 0 only);
#   - writeblocks(n, buf) without an offset (FAT) is an erase and a program of
#     every block it covers;
#   - like ports/rp2/rp2_flash.c (mp_event_handle_nowait()), every call can run
#     pending scheduled work (``service_us``): a Python loop reaches the VM's
#     branch points, where the scheduler runs what is queued, such as the unix
#     port's BTstack poll;
#   - ``cut_at=N``: power is cut at the N-th program or erase of the process's
#     lifetime: only a prefix of it reaches the image (``cut_keep`` bytes; -1:
#     half), "FLASHDEV CUT <n>" is printed, and the process hangs without
#     running any more Python code until the host kills it.
# Counters (erases, programs, bytes programmed, reads, nesting) are in
# ``stats()``; ``write_stats(path)`` writes them as JSON for the host.

import json
import sys
import time

IOCTL_INIT = 1
IOCTL_DEINIT = 2
IOCTL_SYNC = 3
IOCTL_BLOCK_COUNT = 4
IOCTL_BLOCK_SIZE = 5
IOCTL_BLOCK_ERASE = 6

CUT_MARKER = "FLASHDEV CUT"
NESTED_RECORDS = 64  # nested programs/erases kept in detail


def _hang():
    # Stop without running any more bytecode (a Python loop would run the
    # scheduler, and with it BTstack): block in C until SIGKILL.
    try:
        import ffi

        pause = ffi.open("libc.so.6").func("i", "pause", "")
        while True:
            pause()
    except (ImportError, OSError):
        while True:
            pass


class FlashDev:
    def __init__(
        self,
        path,
        block_size=4096,
        cut_at=0,
        cut_keep=-1,
        service_us=-1,
    ):
        self.path = path
        self.f = open(path, "r+b")
        size = self.f.seek(0, 2)
        self.block_size = block_size
        self.block_count = size // block_size
        self.cut_at = cut_at
        self.cut_keep = cut_keep
        self.service_us = service_us
        self.dead = False
        self.depth = 0
        # Raise KeyboardInterrupt once this write completes (a Ctrl-C that
        # rp2's mp_event_handle_nowait() delivers after a flash program).
        self.kbint_at_write = 0
        self.counters = {
            "reads": 0,
            "bytes_read": 0,
            "erases": 0,
            "programs": 0,
            "bytes_programmed": 0,
            "ops": 0,  # programs + erases: what cut_at counts
            "bits_set": 0,  # programs that tried to turn a 0 bit into 1
            "calls": 0,
            "nested_calls": 0,  # calls made while another call was running
            "nested_programs": 0,
            "nested_erases": 0,
            "max_depth": 0,
            "serviced": 0,
        }
        self.nested = []  # [kind, op index, depth] of nested programs/erases

    # ------------------------------------------------------- block protocol
    def readblocks(self, block, buf, off=0):
        self._enter()
        try:
            self.f.seek(block * self.block_size + off)
            self.f.readinto(buf)
            self.counters["reads"] += 1
            self.counters["bytes_read"] += len(buf)
            self._service()
        finally:
            self.depth -= 1

    def writeblocks(self, block, buf, off=None):
        self._enter()
        try:
            if off is None:
                # FAT: each block is erased and programmed as a whole.
                mv = memoryview(buf)
                bs = self.block_size
                for i in range(len(buf) // bs):
                    self._erase(block + i)
                    self._program((block + i) * bs, mv[i * bs : (i + 1) * bs])
            else:
                self._program(block * self.block_size + off, buf)
            self._service()
            self.counters["writes"] = self.counters.get("writes", 0) + 1
            if self.counters["writes"] == self.kbint_at_write:
                raise KeyboardInterrupt
        finally:
            self.depth -= 1

    def ioctl(self, op, arg):
        if op == IOCTL_BLOCK_COUNT:
            return self.block_count
        if op == IOCTL_BLOCK_SIZE:
            return self.block_size
        if op == IOCTL_BLOCK_ERASE:
            self._enter()
            try:
                self._erase(arg)
                self._service()
            finally:
                self.depth -= 1
            return 0
        if op in (IOCTL_INIT, IOCTL_DEINIT, IOCTL_SYNC):
            return 0
        return None

    # -------------------------------------------------------------- counters
    def stats(self):
        d = dict(self.counters)
        d["nested"] = self.nested
        d["depth"] = self.depth
        return d

    def write_stats(self, path):
        with open(path, "w") as f:
            f.write(json.dumps(self.stats()))

    # ------------------------------------------------------------- internals
    def _enter(self):
        if self.dead:
            _hang()
        self.depth += 1
        c = self.counters
        c["calls"] += 1
        if self.depth > 1:
            c["nested_calls"] += 1
        if self.depth > c["max_depth"]:
            c["max_depth"] = self.depth

    def _service(self):
        # Run pending scheduled work, as rp2_flash.c does around flash access.
        us = self.service_us
        if us < 0:
            return
        self.counters["serviced"] += 1
        for _ in range(4):
            pass
        if us:
            t0 = time.ticks_us()
            while time.ticks_diff(time.ticks_us(), t0) < us:
                pass

    def _next_op(self, kind):
        c = self.counters
        c["ops"] += 1
        if self.depth > 1:
            c["nested_" + kind] += 1
            if len(self.nested) < NESTED_RECORDS:
                self.nested.append([kind, c["ops"], self.depth])
        return c["ops"] == self.cut_at

    def _keep(self, n):
        return n // 2 if self.cut_keep < 0 else min(self.cut_keep, n)

    def _erase(self, block):
        self.counters["erases"] += 1
        bs = self.block_size
        cut = self._next_op("erases")
        n = self._keep(bs) if cut else bs
        self.f.seek(block * bs)
        self.f.write(b"\xff" * n)
        if cut:
            self._cut()

    def _program(self, addr, data):
        c = self.counters
        c["programs"] += 1
        cut = self._next_op("programs")
        n = len(data)
        if cut:
            n = self._keep(n)
            data = data[:n]
        if n:
            self.f.seek(addr)
            old = self.f.read(n)
            if old == b"\xff" * n:
                new = data
            else:
                new = bytearray(old)
                set_bits = False
                for i in range(n):
                    if data[i] & ~old[i] & 0xFF:
                        set_bits = True
                    new[i] &= data[i]
                if set_bits:
                    c["bits_set"] += 1
            self.f.seek(addr)
            self.f.write(new)
            c["bytes_programmed"] += n
        if cut:
            self._cut()

    def _cut(self):
        self.dead = True
        print(CUT_MARKER, self.counters["ops"])
        try:
            sys.stdout.flush()
        except AttributeError:
            pass
        _hang()
