"""Workarounds for bumble *host* bugs that break tests of the virtual radio.

These are not controller issues; they are applied to in-process bumble Devices
created by :meth:`vradio.radio.VirtualRadio.add_device` so that those devices
behave as correct peers for hosts under test.
"""

from __future__ import annotations

from bumble.device import Device


def fix_legacy_ltk_lookup(device: Device) -> None:
    """Answer LE LTK requests by EDIV/Rand, not by the current connection role.

    Bumble 0.0.236 stores legacy-pairing LTKs by *pairing* role (``ltk_central``
    is always the key distributed by the pairing peripheral) but looks them up
    by *connection* role, so a bonded bumble peripheral answers a re-encryption
    request with the central's key: MIC failure (0x3D) on every reconnection
    after legacy pairing (known upstream: google/bumble PR #890).  The LL_ENC_REQ
    carries the EDIV/Rand the central holds, which identifies the right key;
    bumble gives every legacy key EDIV=0/Rand=0, so on a tie ``ltk_central``
    (the key both sides use while the pairing roles hold) wins.
    """
    original = device.get_long_term_key

    async def get_long_term_key(connection_handle: int, rand: bytes, ediv: int) -> bytes | None:
        connection = device.lookup_connection(connection_handle)
        if connection is None or device.keystore is None:
            return await original(connection_handle, rand, ediv)
        if (ltk := device.smp_manager.get_long_term_key(connection, rand, ediv)) is not None:
            return ltk
        keys = await device.keystore.get(str(connection.peer_address))
        if keys is not None and keys.ltk is None:
            for key in (keys.ltk_central, keys.ltk_peripheral):
                if (
                    key is not None
                    and key.value
                    and (key.rand or bytes(8)) == rand
                    and (key.ediv or 0) == ediv
                ):
                    return key.value
        return await original(connection_handle, rand, ediv)

    device.get_long_term_key = get_long_term_key  # type: ignore[method-assign]
    # The host captured the bound method when the Device was created.
    device.host.long_term_key_provider = get_long_term_key
