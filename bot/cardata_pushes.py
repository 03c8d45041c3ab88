"""BMW CarData's pushes to its owners: what its charge detector decided, "link again", and a stream BMW
blocks, each turned into a neutral notice (bot/car_status.py) for the garage's push path, and each told once.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

from bot.car_status import ChargeNotice, Notice, NoticeKind, RelinkNotice, StreamBlocked
from bot.cardata.events import ChargeEvent, ChargeEventKind
from bot.cardata.models import StreamBlock
from bot.cardata_backend import CarDataBackend
from bot.store import Store

log = logging.getLogger(__name__)
_NOTICE_KINDS = {
    ChargeEventKind.STARTED: NoticeKind.STARTED,
    ChargeEventKind.COMPLETE: NoticeKind.FULL,
    ChargeEventKind.STOPPED: NoticeKind.EARLY,
}


class CarDataPushes:
    """The callbacks the garage binds to its `CarDataBackend`; `notify` raises when a push should be tried
    again later."""

    def __init__(
        self, store: Store, cardata: CarDataBackend, notify: Callable[[Notice], Awaitable[None]]
    ) -> None:
        self.store = store
        self.cardata = cardata
        self._notify = notify

    async def charge_event(self, event: ChargeEvent) -> None:
        """A charge event the CarData detector decided (already on disk): pushed if the owner wants it."""
        kind = _NOTICE_KINDS[event.kind]
        if not self.store.push_recipients(event.owner, event.vin, kind.preference):  # the owner's or shared
            return
        if self.store.vehicle(event.owner, event.vin) is None:  # unlinked since
            return
        # How long it ran: not known of a start, nor of a charge that ended unseen or was read late.
        charged = None
        if kind is not NoticeKind.STARTED and not event.unseen and event.read_at is None:
            # It ended when first seen stopped, a debounce before the decision.
            charged = max(0.0, event.at - self.cardata.debounce_seconds - event.session_start)
        status = self.cardata.status(event.owner, event.vin)
        read_at = None if event.read_at is None else datetime.fromtimestamp(event.read_at, UTC)
        notice = ChargeNotice(kind, event.owner, event.vin, status, event.soc_at_start, charged, read_at)
        await self._notify(notice)

    async def relink_needed(self, owner: int) -> None:
        """CarData refused the owner's refresh token: they left the stream until a new /link (co-owners of
        the account stream on); tell them once.
        Each start tries the stored link and is refused again, so the ask is stored (a new link clears it)."""
        if not self.store.mark_cardata_relink_asked(owner):
            return
        try:
            await self._notify(RelinkNotice(owner))
        except Exception as exc:  # the stream is stopped either way; the next start asks again
            self.store.mark_cardata_relink_asked(owner, asked=False)
            log.warning("cardata: re-link push to user %s failed (%s)", owner, type(exc).__name__)

    async def stream_blocked(self, owner: int, block: StreamBlock | None) -> None:
        """BMW lets nothing through the stream of the owner's account, for `block` (None: it flows again):
        told once per episode and reason; the mark is stored, so a restart during it does not tell again, and
        cleared when the stream is back."""
        if block is None:
            self.store.mark_cardata_stream_block_told(owner, None)
            return
        if not self.store.mark_cardata_stream_block_told(owner, block):
            return
        try:
            await self._notify(StreamBlocked(owner, block))
        except Exception as exc:  # told at the next refusal after a restart, or the next episode
            self.store.mark_cardata_stream_block_told(owner, None)
            log.warning("cardata: blocked-stream push to user %s failed (%s)", owner, type(exc).__name__)
