"""Radio timing: when things happen on the virtual air, deterministically.

Bumble's ``LocalLink`` is instantaneous: a pending LE Create Connection
completes in the same event-loop turn in which the advertiser's host enables
advertising, and ACL data reaches the peer's host microseconds after it was
sent.  Real hosts never see that, and upstream tests rely (knowingly or not) on
the time a real radio gives them, e.g. a peripheral calling ``l2cap_listen()``
only after its connect IRQ, while the central sends its L2CAP request right
after its own.  The model below gives hosts that time, with fixed rules and no
randomness, so a test sees the same ordering on every run:

Advertising events
    An advertiser's first advertising event happens
    ``min(advertising interval, MAX_FIRST_ADVERTISING_EVENT_DELAY_S)`` after
    LE Set Advertising Enable, then one every advertising interval (the
    configured minimum, at least 20 ms).  Every advertising PDU, and hence
    every advertising report and every connection, happens at an advertising
    event: a pending initiator connects at the first advertising event it hears,
    never inside the advertiser's HCI command, and the advertiser's host always
    has its Command Complete (and at least 20 ms) before the LE Connection
    Complete.  (Real controllers start advertising a few ms after the enable,
    but an initiator's scan duty cycle makes connecting in the very first event
    the exception; one interval is a typical, not a worst, case.)

Connection events
    A connection's events are at ``t0 + k * I`` for ``k >= 1``, where ``t0`` is
    when the connection was created (both ends report LE Connection Complete at
    ``t0``) and ``I`` is the connection interval the central chose, clamped to
    [``MIN_CONNECTION_INTERVAL_S``, ``MAX_CONNECTION_EVENT_INTERVAL_S``] so that
    tests with long intervals stay quick.  Everything a link layer sends over
    the connection (L2CAP PDUs from its host, LL control PDUs such as
    LL_ENC_REQ or LL_TERMINATE_IND) is queued and transmitted at the next
    connection event, in order, per direction; the first data therefore
    arrives no earlier than one interval after the connection, and latency is
    at most one interval.  Any number of PDUs fit in one event (no throughput
    model).  A connection-parameter update re-anchors the grid on the last
    event with the new interval.

Number Of Completed Packets
    An HCI ACL packet from the host counts as completed when it has been
    transmitted, i.e. at the event that carries it; one event reports all
    packets it carried.  After Disconnection Complete nothing more is reported
    for that connection (the host has already reclaimed those buffers, and the
    handle may be reused).
"""

from __future__ import annotations

import asyncio
import collections
import math
from collections.abc import Callable

# Connection interval: 1.25 ms units, 7.5 ms minimum (Core Vol 4, Part E, 7.8.12).
CONNECTION_INTERVAL_UNIT_S = 0.00125
MIN_CONNECTION_INTERVAL_S = 0.0075
# Longer intervals are modelled as this, so that tests stay quick.  Hosts'
# defaults are within it: NimBLE 30-50 ms, BTstack 10-30 ms.
MAX_CONNECTION_EVENT_INTERVAL_S = 0.050
# Cap on the delay from advertising enable to the first advertising event.
MAX_FIRST_ADVERTISING_EVENT_DELAY_S = 0.100


def connection_event_interval_s(interval: int) -> float:
    """Modelled time between connection events for an interval in 1.25 ms units."""
    seconds = interval * CONNECTION_INTERVAL_UNIT_S
    return min(max(seconds, MIN_CONNECTION_INTERVAL_S), MAX_CONNECTION_EVENT_INTERVAL_S)


def first_advertising_event_delay_s(advertising_interval_s: float) -> float:
    """Delay from advertising enable to the first advertising event."""
    return min(advertising_interval_s, MAX_FIRST_ADVERTISING_EVENT_DELAY_S)


class ConnectionEvents:
    """One direction of a connection: a FIFO transmitted at connection events.

    ``submit`` queues an action (typically "deliver this PDU to the peer");
    at the next connection event all queued actions run in submission order,
    then ``after_event`` runs (used to report Number Of Completed Packets).
    """

    def __init__(self, interval: int, after_event: Callable[[], None] | None = None) -> None:
        self._loop = asyncio.get_running_loop()
        self.anchor = self._loop.time()
        self.interval_s = connection_event_interval_s(interval)
        self._after_event = after_event
        self._queue: collections.deque[Callable[[], None]] = collections.deque()
        self._timer: asyncio.TimerHandle | None = None
        self._closed = False

    def next_event_time(self, now: float) -> float:
        """First connection event strictly after ``now`` (never the anchor itself)."""
        elapsed = max(now - self.anchor, 0.0)
        return self.anchor + (math.floor(elapsed / self.interval_s) + 1) * self.interval_s

    def set_interval(self, interval: int) -> None:
        """Switch to a new interval, keeping the most recent event as the anchor."""
        now = self._loop.time()
        elapsed = max(now - self.anchor, 0.0)
        self.anchor += math.floor(elapsed / self.interval_s) * self.interval_s
        self.interval_s = connection_event_interval_s(interval)
        if self._timer is not None:
            # Already-queued PDUs go out at the first event of the new grid.
            self._timer.cancel()
            self._timer = self._loop.call_at(self.next_event_time(now), self._on_event)

    @property
    def pending(self) -> int:
        return len(self._queue)

    @property
    def scheduled_at(self) -> float | None:
        """Loop time of the event that will carry what is queued (None: nothing queued)."""
        return self._timer.when() if self._timer is not None else None

    def submit(self, action: Callable[[], None]) -> None:
        if self._closed:
            return
        self._queue.append(action)
        if self._timer is None:
            self._timer = self._loop.call_at(
                self.next_event_time(self._loop.time()), self._on_event
            )

    def _on_event(self) -> None:
        self._timer = None
        # Only what was queued before this event; actions do not queue here
        # synchronously, but be safe against it.
        for _ in range(len(self._queue)):
            if not self._queue:  # an action closed us
                break
            self._queue.popleft()()
        if self._after_event is not None:
            self._after_event()
        if self._queue and self._timer is None and not self._closed:
            self._timer = self._loop.call_at(
                self.next_event_time(self._loop.time()), self._on_event
            )

    def close(self, flush: bool = False) -> None:
        """Accept nothing more; drop what is queued unless ``flush`` (send it anyway)."""
        self._closed = True
        if not flush:
            self._queue.clear()
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
