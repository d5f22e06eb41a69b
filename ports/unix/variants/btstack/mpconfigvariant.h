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

// Same feature level as the standard variant, plus Bluetooth (enabled from
// mpconfigvariant.mk) talking to an H4 HCI controller.
#define MICROPY_CONFIG_ROM_LEVEL (MICROPY_CONFIG_ROM_LEVEL_EXTRA_FEATURES)

// As on rp2: C code can schedule work (the bond store's deferred commits).
#define MICROPY_SCHEDULER_STATIC_NODES (1)

// The HCI UART is polled (and the stack run) every 2 ms instead of every
// millisecond: each poll wakes the process, and the test suite runs many
// instances at once on few cores (an idle instance costs 0.6 times as much
// CPU).  Connection intervals are 7.5 ms or more, so no link event waits
// for more than a fraction of one.
#define MICROPY_BLUETOOTH_HCI_POLL_INTERVAL_US (2000)

// machine.idle() sleeps until the HCI UART's next poll instead of spinning
// in sched_yield(): a test waiting for an event then leaves the CPU to the
// other instance and to the controller, as a board sleeps until its next
// interrupt.
#include <unistd.h>
#define MICROPY_UNIX_MACHINE_IDLE usleep(MICROPY_BLUETOOTH_HCI_POLL_INTERVAL_US);

#include "../mpconfigvariant_common.h"
