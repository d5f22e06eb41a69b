"""Virtual BLE radio for host tests, built on bumble's controller emulation.

* :class:`vradio.radio.VirtualRadio` - N linked LE controllers; each can be
  served over H4 on a pty (for e.g. MicroPython's unix port with
  ``MICROPYBTUART=<pty>``) or driven by an in-process bumble ``Device``.
* :class:`vradio.controller.VirtualController` - bumble's ``Controller`` with
  the fixes real hosts need (see that module's docstring).
* :class:`vradio.link.VirtualLink` - bumble's ``LocalLink`` with LE fixes.
* :class:`vradio.pty_bridge.PtyHciBridge` - pty H4 bridge that survives host
  process restarts.
* ``python -m vradio`` - command line (see ``vradio.__main__``).

For tests with an independent peer:

* :mod:`vradio.instance` - a host under test as a child process, driven by
  lines over stdin/stdout; :mod:`vradio.micropython` runs the unix port that
  way on a pty, with its HOME as the device's flash.
* :mod:`vradio.peer` - a bumble Device as the peer: Just Works pairing,
  connect/advertise/scan, RPA resolution, a log of SMP and encryption events.
* :mod:`vradio.recorder` - a controller's HCI traffic kept for assertions.
"""

from vradio.controller import VirtualController
from vradio.link import VirtualLink
from vradio.radio import VirtualRadio

__all__ = ["VirtualController", "VirtualLink", "VirtualRadio"]
