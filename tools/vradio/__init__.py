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
"""

from vradio.controller import VirtualController
from vradio.link import VirtualLink
from vradio.radio import VirtualRadio

__all__ = ["VirtualController", "VirtualLink", "VirtualRadio"]
