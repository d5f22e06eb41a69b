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
#ifndef MICROPY_INCLUDED_UNIX_MPBTHCIPORT_H
#define MICROPY_INCLUDED_UNIX_MPBTHCIPORT_H

#include <stdbool.h>

// Ask for the stack to be run as soon as possible, rather than waiting for
// the next tick of the HCI polling thread.  Used by the BTstack H4 transport
// after a synchronous UART write, to tell the stack the send completed.
void mp_bluetooth_hci_poll_now(void);

// Must be provided by the stack bindings (e.g. mpnimbleport.c or
// mpbtstackport_common.c).  Runs the stack; returns false once it has stopped.
bool mp_bluetooth_hci_poll(void);

#endif // MICROPY_INCLUDED_UNIX_MPBTHCIPORT_H
