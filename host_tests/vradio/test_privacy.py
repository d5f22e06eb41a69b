"""The resolving list's local RPAs (controller-based privacy)."""

from __future__ import annotations

from bumble import crypto, hci
from vradio.advertising import own_address
from vradio.privacy import ResolvingList
from vradio.radio import VirtualRadio
from vradio_testlib import RawHost, Runner

IRK = bytes(range(16))
ZERO = (0, bytes(6))
RPA_OR_PUBLIC = hci.OwnAddressType.RESOLVABLE_OR_PUBLIC


def resolves(address: hci.Address, irk: bytes) -> bool:
    raw = bytes(address)  # little-endian: hash (3 bytes), then prand (3 bytes)
    return address.is_resolvable and crypto.ah(irk, raw[3:]) == raw[:3]


def test_rpa_from_the_local_irk_once_enabled() -> None:
    rl = ResolvingList()
    rl.add(ZERO, bytes(16), IRK)
    assert rl.local_rpa(ZERO) is None  # address resolution still disabled
    rl.enabled = True
    rpa = rl.local_rpa(ZERO)
    assert rpa is not None and resolves(rpa, IRK)
    assert rl.local_rpa(ZERO) == rpa and rl.made(rpa)
    rl.clear()
    assert rl.local_rpa(ZERO) is None and not rl.made(rpa)


def test_no_rpa_without_a_local_irk_or_an_entry() -> None:
    rl = ResolvingList(enabled=True)
    rl.add(ZERO, IRK, bytes(16))  # a peer's IRK only
    assert rl.local_rpa(ZERO) is None
    assert rl.local_rpa((1, bytes(range(6)))) is None


def test_controller_keeps_the_resolving_list_of_hci_commands(run: Runner) -> None:
    async def scenario() -> None:
        radio = VirtualRadio()
        host = RawHost(radio.add_controller("hci0", "28:CD:C1:00:00:01"))
        controller = host.controller
        public = controller.public_address
        async with radio:
            assert own_address(controller, RPA_OR_PUBLIC, ZERO) == public
            for command in (
                hci.HCI_LE_Add_Device_To_Resolving_List_Command(
                    peer_identity_address_type=0,
                    peer_identity_address=hci.Address.ANY,
                    peer_irk=bytes(16),
                    local_irk=IRK,
                ),
                hci.HCI_LE_Set_Address_Resolution_Enable_Command(address_resolution_enable=1),
            ):
                event = await host.command(command)
                assert isinstance(event, hci.HCI_Command_Complete_Event)
                assert event.return_parameters.status == 0
            rpa = own_address(controller, RPA_OR_PUBLIC, ZERO)
            assert rpa != public and resolves(rpa, IRK)
            assert own_address(controller, hci.OwnAddressType.RESOLVABLE_OR_RANDOM, ZERO) == rpa
            assert own_address(controller, hci.OwnAddressType.PUBLIC, ZERO) == public
            # A reset forgets the list (and the RPA).
            await host.command(hci.HCI_Reset_Command())
            assert own_address(controller, RPA_OR_PUBLIC, ZERO) == public

    run(scenario())
