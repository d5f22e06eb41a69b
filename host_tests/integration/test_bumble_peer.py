"""An independent Bumble host bonds with our firmware, which then loses power.

The peer is an in-process bumble Device with its own SMP and its own key
store (a JSON file), on the same virtual radio as the unix BTstack or NimBLE
firmware
(``bumble_peer/agent.py``, one process per boot, bonds in ``$HOME``).  Each
case pairs once, kills the firmware (a power cut) and boots it again with the
same HOME, then checks what a phone would see: the device comes back with the
same identity and the bond works from both sides without a new pairing; and,
when the peer has forgotten the bond, the firmware fails cleanly, pairs again
and replaces its entry instead of leaking a second one.

Every case runs for both stacks, for our firmware as peripheral (Bumble
connects) and as central (it connects to Bumble), with legacy pairing and LE
Secure Connections, and with public addresses or, with controllers that have
none, random static ones.
"""

from __future__ import annotations

import asyncio
import errno
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

import pytest
from ble_agent import AgentError, BleAgent, bond_entries
from bumble import hci
from bumble_peer_rig import (
    BOND_SECRETS,
    BOND_STORED,
    CASE_TIMEOUT_S,
    REFUSED_KEYS,
    STACKS,
    Link,
    check_bond_entry,
    check_peer_keys,
    expected_irk,
    ltks,
    rig,
)
from integration_support import NO_TREE_REASON, upstream_available
from vradio.peer import (
    advertised_name,
    connect,
    next_advertisement,
    resolve,
    wait_disconnected,
)

pytestmark = pytest.mark.skipif(not upstream_available(), reason=NO_TREE_REASON)

ROLES = ["peripheral", "central"]  # our firmware's role
SECURITY = {"legacy": False, "secure-connections": True}
ADDRESSES = {"public": True, "random-static": False}


def cases() -> Any:
    return pytest.mark.parametrize(
        ("stack", "role", "sc", "public"),
        [
            pytest.param(stack, role, sc, public, id=f"{stack}-{role}-{sec}-{addr}")
            for stack in STACKS
            for role in ROLES
            for sec, sc in SECURITY.items()
            for addr, public in ADDRESSES.items()
        ],
    )


def new_bond_secrets(agent: BleAgent) -> list[tuple[int, bytes]]:
    """What the agent's handler was given to store (not deletes), as BOND_SECRETS lists it."""
    return [
        (t, key[:3] if t == 32 else b"") for t, key, n in agent.secret_writes() if n is not None
    ]


def run(scenario: Coroutine[Any, Any, None]) -> None:
    asyncio.run(asyncio.wait_for(scenario, CASE_TIMEOUT_S))


@cases()
def test_bond_survives_power_cut(
    built_tree: Path, tmp_path: Path, stack: str, role: str, sc: bool, public: bool
) -> None:
    """Power cut while connected; after the boot the peer's keys still work, no pairing."""

    async def scenario() -> None:
        async with rig(tmp_path, role, sc, public, stack) as r:
            first = await r.boot()
            ours = await first.activate(sc)
            assert ours.is_public == public and (public or ours.is_static)
            link = await r.link(first, ours)
            await r.secure(first, link, bonded=False)
            encryption = await first.wait_encryption()
            assert (encryption.encrypted, encryption.bonded) == (True, True)
            assert link.connection.is_encrypted
            [bond] = await first.bonds()
            assert (bond.address, bond.secure) == (r.peer_address, sc)
            entry = check_bond_entry(r.home, stack, r.peer_address, sc)
            keys = check_peer_keys(await r.peer_keys(ours), sc)
            assert keys.irk is not None and keys.irk.value == expected_irk(r.home, stack)
            assert r.security.pairing_starts == 1

            await first.power_cut()  # still connected
            second = await r.boot()
            assert await second.activate(sc) == ours
            # Our controller lost the link with the power; the peer notices
            # (here when the new boot resets the controller).
            reason = await wait_disconnected(link.peer)
            assert reason == hci.HCI_ErrorCode.CONNECTION_TIMEOUT_ERROR
            link = await r.link(second, ours)
            await r.secure(second, link, bonded=True)
            encryption = await second.wait_encryption()
            assert (encryption.encrypted, encryption.bonded) == (True, True)
            await link.peer.wait_event("encryption_change")
            assert link.connection.is_encrypted

            # Neither side paired again and nothing new was stored.
            assert r.security.pairing_starts == 1
            assert r.security.pairing_failures == []
            assert second.secret_writes() == []
            assert len(second.encryption_updates()) == 1
            assert await second.bonds() == [bond]
            assert check_bond_entry(r.home, stack, r.peer_address, sc) == entry
            await r.unlink(second, link)

    run(scenario())


@cases()
def test_peer_forgets_bond(
    built_tree: Path, tmp_path: Path, stack: str, role: str, sc: bool, public: bool
) -> None:
    """The peer forgets us after our power cut: a clean failure, a new pairing, one entry."""

    async def scenario() -> None:
        async with rig(tmp_path, role, sc, public, stack) as r:
            first = await r.boot()
            ours = await first.activate(sc)
            link = await r.link(first, ours)
            await r.secure(first, link, bonded=False)
            assert (await first.wait_encryption()).bonded
            old_entry = check_bond_entry(r.home, stack, r.peer_address, sc)
            [old_tag] = bond_entries(r.home, stack)
            old_keys = check_peer_keys(await r.peer_keys(ours), sc)
            await r.unlink(first, link)
            await first.power_cut()

            second = await r.boot()
            assert await second.activate(sc) == ours
            await r.keystore.delete(str(ours))  # "forget this device" on the phone
            await r.peer.refresh_resolving_list()
            link = await r.link(second, ours)
            mark = len(r.hci.packets)
            if role == "central":
                # We still hold the bond and re-encrypt with it; the peer has
                # no key (LTK negative reply): the controller reports PIN or
                # Key Missing, the update says "not encrypted" and the link
                # stays up for a new pairing.
                await r.secure(second, link, bonded=True)
                failure = await second.wait_encryption()
                refused = (failure.encrypted, failure.authenticated, failure.bonded)
                assert refused == REFUSED_KEYS[stack]
                [change] = r.hci.events(hci.HCI_Encryption_Change_Event, since=mark)
                assert (change.connection_handle, change.encryption_enabled) == (link.handle, 0)
                assert change.status == hci.HCI_ErrorCode.PIN_OR_KEY_MISSING_ERROR
                assert r.security.pairing_starts == 1
                # Asking again pairs anew (BTstack: SM_GENERAL_REENCRYPTION_FAILED).
                await r.secure(second, link, bonded=False)
            else:
                # The peer pairs as a new device; we accept and replace the
                # bond, with no failure to report on our side at all.
                await r.secure(second, link, bonded=False)
            assert r.security.pairing_starts == 2
            assert r.security.pairing_failures == []
            # The new keys are stored (BTstack: one device DB entry written;
            # NimBLE: our and the peer's security records, after deleting
            # the old ones), then the link is reported encrypted and bonded.
            await second.instance.expect(BOND_STORED[stack])
            encryption = await second.wait_encryption()
            assert (encryption.encrypted, encryption.bonded) == (True, True)
            assert new_bond_secrets(second) == BOND_SECRETS[stack]
            assert link.connection.is_encrypted
            changes = r.hci.events(hci.HCI_Encryption_Change_Event, since=mark)
            assert changes[-1].status == hci.HCI_ErrorCode.SUCCESS
            # Neither the failure nor the new pairing cost the link.
            assert r.hci.events(hci.HCI_Disconnection_Complete_Event, since=mark) == []
            assert "disconnection" not in link.peer.names()

            # Replaced in place: one bond, the same DB slot, new keys.
            [bond] = await second.bonds()
            assert (bond.address, bond.secure) == (r.peer_address, sc)
            new_entry = check_bond_entry(r.home, stack, r.peer_address, sc)
            assert list(bond_entries(r.home, stack)) == [old_tag]
            assert new_entry != old_entry
            new_keys = check_peer_keys(await r.peer_keys(ours), sc)
            assert ltks(new_keys) != ltks(old_keys)
            # Our IRK did not change with the power cut: it (BTstack: the IR) was kept.
            assert new_keys.irk is not None and old_keys.irk is not None
            assert new_keys.irk.value == old_keys.irk.value == expected_irk(r.home, stack)
            await r.unlink(second, link)

            # The replacement is the bond both sides use from now on.
            link = await r.link(second, ours)
            await r.secure(second, link, bonded=True)
            assert (await second.wait_encryption()).encrypted
            await link.peer.wait_event("encryption_change")
            assert r.security.pairing_starts == 2
            await r.unlink(second, link)

    run(scenario())


# Found with this suite (fixed in patch 0006): a new pairing with a peer we
# already had a bond with reported _IRQ_ENCRYPTION_UPDATE twice, once before
# the new keys were stored.
@pytest.mark.parametrize("stack", STACKS)
@pytest.mark.parametrize("role", ROLES)
def test_new_pairing_with_a_bonded_peer_reports_encryption_once(
    built_tree: Path, tmp_path: Path, stack: str, role: str
) -> None:
    async def scenario() -> None:
        async with rig(tmp_path, role, sc=False, public=True, stack=stack) as r:
            agent = await r.boot()
            ours = await agent.activate(sc=False)
            link = await r.link(agent, ours)
            await r.secure(agent, link, bonded=False)
            await agent.wait_encryption()
            await r.unlink(agent, link)
            await r.keystore.delete(str(ours))
            await r.peer.refresh_resolving_list()

            link = await r.link(agent, ours)
            if role == "central":
                await r.secure(agent, link, bonded=True)
                assert not (await agent.wait_encryption()).encrypted
            start = len(agent.instance.lines)
            await r.secure(agent, link, bonded=False)
            stored = await agent.instance.expect(BOND_STORED[stack])
            final = await agent.wait_encryption()
            assert final.encrypted and final.bonded
            # One update, once the new bond is complete (as for a first pairing).
            updates = agent.instance.seen(r"(?:ENC|SET_SECRET) .*", since=start)
            order = [m[0].split()[0] for m in updates]
            assert order[-1] == "ENC" and "ENC" not in order[:-1], (
                stored.string,
                [m[0] for m in updates],
            )
            await r.unlink(agent, link)

    run(scenario())


def test_rpa_needs_a_public_identity_address(built_tree: Path, tmp_path: Path) -> None:
    """Without a public address, addr_mode=2 is refused (EINVAL): BTstack's SM
    would give peers the (absent) public address as the identity (patch 0020)."""

    async def scenario() -> None:
        async with rig(tmp_path, "peripheral", sc=True, public=False) as r:
            agent = await r.boot()
            await agent.activate(sc=True)
            with pytest.raises(AgentError) as error:
                await agent.config(addr_mode=2)
            assert (error.value.exception, error.value.values) == ("OSError", [str(errno.EINVAL)])

    run(scenario())


@pytest.mark.parametrize("stack", STACKS)
def test_rpa_resolves_to_the_bond_after_power_cut(
    built_tree: Path, tmp_path: Path, stack: str
) -> None:
    """addr_mode=2: after a power cut we advertise a new RPA that the peer resolves
    with the IRK it stored (so our IRK survived), then it re-encrypts."""

    async def scenario() -> None:
        async with rig(tmp_path, "peripheral", sc=True, public=True, stack=stack) as r:

            async def advertised(agent: BleAgent) -> hci.Address:
                await agent.advertise()
                advert = await next_advertisement(r.peer, lambda a: advertised_name(a) == "mpy")
                return advert.address

            first = await r.boot()
            identity = await first.activate(sc=True)
            await first.config(addr_mode=2)
            rpa = await advertised(first)
            assert rpa.is_resolvable and rpa != identity
            connection = await connect(r.peer, rpa, public=r.public)
            handle, _ = await first.wait_connection("CENTRAL_CONNECT")
            link = Link(handle, r.security.of(connection))
            await r.secure(first, link, bonded=False)
            assert (await first.wait_encryption()).bonded
            keys = check_peer_keys(await r.peer_keys(identity), sc=True)
            assert keys.irk is not None and keys.irk.value == expected_irk(r.home, stack)
            await r.unlink(first, link)
            await first.power_cut()

            second = await r.boot()
            assert await second.activate(sc=True) == identity
            await second.config(addr_mode=2)
            rpa = await advertised(second)
            assert rpa.is_resolvable and rpa != identity
            assert await resolve(r.keystore, rpa) == identity
            connection = await connect(r.peer, rpa, public=r.public)
            handle, _ = await second.wait_connection("CENTRAL_CONNECT")
            link = Link(handle, r.security.of(connection))
            await r.secure(second, link, bonded=True)
            encryption = await second.wait_encryption()
            assert (encryption.encrypted, encryption.bonded) == (True, True)
            assert r.security.pairing_starts == 1
            assert second.secret_writes() == []
            await r.unlink(second, link)

    run(scenario())
