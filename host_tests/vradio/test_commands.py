"""Raw HCI command behaviour of the fixed controller (no bumble host involved)."""

from __future__ import annotations

import struct

from bumble import hci
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from vradio.radio import VirtualRadio
from vradio_testlib import RawHost, Runner

VENDOR_OPCODE = 0xFC09  # BTstack's first command (a Broadcom/Cypress vendor command)
LE_ENCRYPT_OPCODE = 0x2017

# FIPS-197 Appendix C.1 (AES-128), in FIPS notation (most significant octet first).
FIPS_KEY = bytes.fromhex("000102030405060708090a0b0c0d0e0f")
FIPS_PLAINTEXT = bytes.fromhex("00112233445566778899aabbccddeeff")
FIPS_CIPHERTEXT = bytes.fromhex("69c4e0d86a7b0430d8cdb78070b4c55a")


def command_bytes(opcode: int, parameters: bytes = b"") -> bytes:
    return struct.pack("<BHB", hci.HCI_COMMAND_PACKET, opcode, len(parameters)) + parameters


def complete_params(event: hci.HCI_Packet, opcode: int) -> bytes:
    """Raw return parameters of a Command Complete for ``opcode``."""
    assert isinstance(event, hci.HCI_Command_Complete_Event), event
    assert event.command_opcode == opcode
    return bytes(event)[6:]  # type, code, length, num packets, opcode(2)


async def raw_host(public_address: str | None = None) -> tuple[VirtualRadio, RawHost]:
    radio = VirtualRadio()
    return radio, RawHost(radio.add_controller("hci0", public_address))


def test_vendor_and_unknown_commands_get_unknown_command_status(run: Runner) -> None:
    async def scenario() -> None:
        radio, host = await raw_host()
        async with radio:
            for opcode in (VENDOR_OPCODE, 0xFFFF, 0x0C7F):
                for parameters in (b"", b"\x01\x02"):
                    event = await host.command(command_bytes(opcode, parameters))
                    assert complete_params(event, opcode) == bytes([0x01])

    run(scenario())


def test_le_encrypt_matches_fips197_with_hci_byte_order(run: Runner) -> None:
    # HCI sends key, plaintext and result least significant octet first, i.e.
    # reversed with respect to FIPS-197 notation (Core Vol 4, Part E, 7.8.22).
    reference = Cipher(algorithms.AES(FIPS_KEY), modes.ECB()).encryptor().update(FIPS_PLAINTEXT)
    assert reference == FIPS_CIPHERTEXT

    async def scenario() -> None:
        radio, host = await raw_host()
        async with radio:
            event = await host.command(
                command_bytes(LE_ENCRYPT_OPCODE, FIPS_KEY[::-1] + FIPS_PLAINTEXT[::-1])
            )
            params = complete_params(event, LE_ENCRYPT_OPCODE)
            assert params[0] == 0
            assert params[1:] == FIPS_CIPHERTEXT[::-1]
            bad = await host.command(command_bytes(LE_ENCRYPT_OPCODE, b"\x00" * 5))
            assert complete_params(bad, LE_ENCRYPT_OPCODE)[0] == 0x12

    run(scenario())


def test_malformed_command_gets_invalid_parameters(run: Runner) -> None:
    async def scenario() -> None:
        radio, host = await raw_host()
        async with radio:
            # LE Set Random Address needs 6 parameter bytes.
            event = await host.command(
                command_bytes(hci.HCI_LE_SET_RANDOM_ADDRESS_COMMAND, b"\x01")
            )
            assert complete_params(event, hci.HCI_LE_SET_RANDOM_ADDRESS_COMMAND) == b"\x12"

    run(scenario())


def test_le_rand_returns_8_random_bytes(run: Runner) -> None:
    async def scenario() -> None:
        radio, host = await raw_host()
        async with radio:
            values = []
            for _ in range(2):
                params = complete_params(
                    await host.command(hci.HCI_LE_Rand_Command()), hci.HCI_LE_RAND_COMMAND
                )
                assert params[0] == 0 and len(params) == 9
                values.append(params[1:])
            assert values[0] != values[1]

    run(scenario())


def test_read_bd_addr_in_both_address_modes(run: Runner) -> None:
    async def scenario() -> None:
        for public, expected in ((None, "00:00:00:00:00:00"), ("28:CD:C1:00:00:01",) * 2):
            radio, host = await raw_host(public)
            async with radio:
                event = await host.command(hci.HCI_Read_BD_ADDR_Command())
                assert isinstance(event, hci.HCI_Command_Complete_Event)
                assert event.return_parameters.status == 0
                assert event.return_parameters.bd_addr.to_string(False) == expected

    run(scenario())


def test_create_connection_cancel_completes_with_unknown_connection_id(run: Runner) -> None:
    async def scenario() -> None:
        radio, host = await raw_host()
        async with radio:
            not_pending = await host.command(hci.HCI_LE_Create_Connection_Cancel_Command())
            assert (
                not_pending.return_parameters.status == hci.HCI_ErrorCode.COMMAND_DISALLOWED_ERROR
            )

            status = await host.command(
                hci.HCI_LE_Create_Connection_Command(
                    le_scan_interval=16,
                    le_scan_window=16,
                    initiator_filter_policy=0,
                    peer_address_type=1,
                    peer_address=hci.Address("C0:00:00:00:00:99"),
                    own_address_type=0,
                    connection_interval_min=24,
                    connection_interval_max=40,
                    max_latency=0,
                    supervision_timeout=400,
                    min_ce_length=0,
                    max_ce_length=0,
                )
            )
            assert isinstance(status, hci.HCI_Command_Status_Event)
            assert status.status == hci.HCI_COMMAND_STATUS_PENDING
            complete = await host.command(hci.HCI_LE_Create_Connection_Cancel_Command())
            assert complete.return_parameters.status == 0
            event = await host.next_event()
            assert isinstance(event, hci.HCI_LE_Connection_Complete_Event)
            assert event.status == hci.HCI_ErrorCode.UNKNOWN_CONNECTION_IDENTIFIER_ERROR

    run(scenario())


def test_disconnect_unknown_handle_is_rejected(run: Runner) -> None:
    async def scenario() -> None:
        radio, host = await raw_host()
        async with radio:
            event = await host.command(
                hci.HCI_Disconnect_Command(connection_handle=0x0042, reason=0x13)
            )
            assert isinstance(event, hci.HCI_Command_Status_Event)
            assert event.status == hci.HCI_ErrorCode.UNKNOWN_CONNECTION_IDENTIFIER_ERROR

    run(scenario())
