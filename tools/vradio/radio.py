"""``VirtualRadio``: N linked virtual LE controllers, on ptys and/or in-process.

Example::

    async with VirtualRadio(trace_dir=tmp) as radio:
        c0 = radio.add_controller("hci0", public_address="28:CD:C1:00:00:01")
        print(radio.attach_pty(c0, link_path=tmp / "hci0"))   # for an H4 host
        c1 = radio.add_controller("hci1")                      # no public address
        peer = await radio.add_device(c1, address="C0:11:22:33:44:55")
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from types import TracebackType
from typing import BinaryIO

from bumble import hci
from bumble.device import Device, DeviceConfiguration
from bumble.host import Host
from bumble.keys import KeyStore
from bumble.snoop import BtSnooper
from bumble.transport.common import AsyncPipeSink

from vradio.controller import VirtualController
from vradio.host_fixes import fix_legacy_ltk_lookup
from vradio.link import VirtualLink
from vradio.pty_bridge import PtyHciBridge


class VirtualRadio:
    """Owns one shared link and the controllers, ptys and trace files on it.

    Must be created and used inside a running asyncio loop.  ``trace_dir``
    enables one btsnoop file per controller (``<trace_dir>/<name>.btsnoop``,
    readable by Wireshark), written unbuffered so it survives a crash.
    """

    def __init__(self, trace_dir: Path | str | None = None) -> None:
        self.link = VirtualLink()
        self.trace_dir = Path(trace_dir) if trace_dir is not None else None
        self.controllers: dict[str, VirtualController] = {}
        self.bridges: dict[str, PtyHciBridge] = {}
        self._symlinks: list[Path] = []
        self._trace_files: list[BinaryIO] = []

    async def __aenter__(self) -> VirtualRadio:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def add_controller(
        self, name: str, public_address: str | None = None, **options: bool
    ) -> VirtualController:
        """Add a controller; ``public_address=None`` means "no public address"."""
        if name in self.controllers:
            raise ValueError(f"duplicate controller name {name!r}")
        controller = VirtualController(name, self.link, public_address, **options)
        if self.trace_dir is not None:
            self.trace_dir.mkdir(parents=True, exist_ok=True)
            trace = open(self.trace_dir / f"{name}.btsnoop", "wb", buffering=0)  # noqa: SIM115
            self._trace_files.append(trace)
            controller.snooper = BtSnooper(trace)
        self.controllers[name] = controller
        return controller

    def attach_pty(
        self, controller: VirtualController, link_path: Path | str | None = None
    ) -> str:
        """Serve ``controller`` over H4 on a new pty; return the slave's path.

        With ``link_path``, a symlink to the pty is (re)created there and
        removed on :meth:`close`.
        """
        if controller.name in self.bridges:
            raise ValueError(f"{controller.name} already has a pty")
        bridge = PtyHciBridge(controller.on_packet, name=controller.name)
        controller.host = bridge
        self.bridges[controller.name] = bridge
        if link_path is not None:
            link = Path(link_path)
            with contextlib.suppress(FileNotFoundError):
                link.unlink()
            link.symlink_to(bridge.path)
            self._symlinks.append(link)
        return bridge.path

    async def add_device(
        self,
        controller: VirtualController,
        name: str = "bumble",
        address: str | None = None,
        keystore: KeyStore | None = None,
        config: DeviceConfiguration | None = None,
        power_on: bool = True,
    ) -> Device:
        """Attach an in-process bumble Host/Device to ``controller``.

        ``address`` is the random static address the device uses (bumble
        generates one if omitted); a public address comes from the controller.
        Bumble host bugs that would make it a wrong peer are patched
        (:mod:`vradio.host_fixes`).
        """
        if controller.name in self.bridges or controller.host is not None:
            raise ValueError(f"{controller.name} already has a host")
        config = config or DeviceConfiguration()
        config.name = name
        if address is not None:
            config.address = hci.Address(address, hci.Address.RANDOM_DEVICE_ADDRESS)
        host = Host(controller, AsyncPipeSink(controller))
        device = Device(config=config, host=host)
        fix_legacy_ltk_lookup(device)
        if keystore is not None:
            device.keystore = keystore
        if power_on:
            await device.power_on()
        return device

    def close(self) -> None:
        """Tear everything down; links to outside peers time out (reason 0x08)."""
        for bridge in self.bridges.values():
            bridge.close()
        self.bridges.clear()
        for controller in self.controllers.values():
            controller.close()
        self.controllers.clear()
        for link in self._symlinks:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(link)
        self._symlinks.clear()
        for trace in self._trace_files:
            trace.close()
        self._trace_files.clear()
