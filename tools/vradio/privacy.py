"""Controller-based privacy: the resolving list and the local RPAs it makes.

A host that leaves privacy to the controller (NimBLE's own-address types
"RPA, else public/random") puts its IRK in the controller's resolving list
(LE Add Device To Resolving List, Core Vol 4, Part E, 7.8.38) and enables
address resolution (7.8.44); the controller then advertises with a
resolvable private address made from that local IRK (Vol 6, Part B, 1.3.2.2
and 6.2).  Stock bumble accepts the commands but keeps nothing, so such a
host advertised with its identity address.  Resolving *peers'* RPAs is left
to the hosts, as all the hosts here do it themselves.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from bumble import hci

# A peer identity as the resolving list keys it: (address type, address bytes).
Identity = tuple[int, bytes]


@dataclass
class ResolvingList:
    entries: dict[Identity, tuple[bytes, bytes]] = field(default_factory=dict)  # peer, local IRK
    enabled: bool = False
    _rpas: dict[bytes, hci.Address] = field(default_factory=dict)  # by local IRK

    def add(self, peer: Identity, peer_irk: bytes, local_irk: bytes) -> None:
        self.entries[peer] = (peer_irk, local_irk)

    def remove(self, peer: Identity) -> bool:
        return self.entries.pop(peer, None) is not None

    def clear(self) -> None:
        self.entries.clear()
        self._rpas.clear()

    def made(self, address: hci.Address) -> bool:
        """Whether ``address`` is one of the local RPAs this list made."""
        return address in self._rpas.values()

    def local_rpa(self, peer: Identity) -> hci.Address | None:
        """Our RPA towards ``peer`` (all-zero for undirected advertising), or None.

        One RPA per local IRK, kept until the list is cleared (the controller's
        RPA timeout, 15 minutes by default, is longer than any test).
        """
        entry = self.entries.get(peer)
        if not self.enabled or entry is None or not any(entry[1]):
            return None
        local_irk = entry[1]
        if local_irk not in self._rpas:
            self._rpas[local_irk] = hci.Address.generate_private_address(local_irk)
        return self._rpas[local_irk]
