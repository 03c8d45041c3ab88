"""Sharing a car with a household (/share): one-time invitations, and who sees which owner's car.

An invitation is a random token in a t.me deep link; only its SHA-256 is stored, so the database cannot give
a link away. It is valid INVITE_SECONDS, works once, and a car has at most OPEN_INVITES open at a time. What
a shared person may do with the car is the garage's to check (bot/garage.py); this module knows nothing of
Telegram.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from collections.abc import Callable

from bot.alerts import Alerter, AlertPrefs, AlertPush, AlertReport, AlertState, Reading, ZoneOf
from bot.store import Share, Store

INVITE_SECONDS = 24 * 60 * 60.0
OPEN_INVITES = 5  # per car: enough for a household, too few to spray links around
TOKEN_BYTES = 24  # 32 URL-safe characters, within Telegram's 64 for a /start payload


class TooManyInvitations(Exception):
    """OPEN_INVITES invitations to that car are open: no new one until one is used or expires."""


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class Sharing:
    def __init__(self, store: Store, wall_clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self._wall_clock = wall_clock

    def invite(self, owner: int, vin: str) -> str:
        """A new invitation's token (for the deep link; kept nowhere); TooManyInvitations at the limit. The
        caller has checked that the car is the owner's own."""
        token = secrets.token_urlsafe(TOKEN_BYTES)
        expires_at = self._wall_clock() + INVITE_SECONDS
        if not self.store.open_invite(token_hash(token), owner, vin, expires_at, OPEN_INVITES):
            raise TooManyInvitations
        return token

    def invitation(self, token: str) -> tuple[int, str] | None:
        """(owner, VIN) of an open invitation, not using it up; None for a guessed, used or expired one."""
        return self.store.invite(token_hash(token))

    def accept(self, token: str, member: int, first_name: str | None) -> Share | None:
        """Use the invitation up: the new share, or None when it is no longer open (used, expired), is the
        member's own car's, or the member already sees that car."""
        return self.store.take_invite(token_hash(token), member, first_name)

    def shares(self, owner: int) -> list[Share]:
        return self.store.shares(owner)

    def memberships(self, member: int) -> list[Share]:
        return self.store.memberships(member)

    def members(self, owner: int, vin: str) -> list[Share]:
        return self.store.members(owner, vin)

    def push_recipients(self, owner: int, vin: str, preference: str) -> list[int]:
        """Who gets a charge push of that car: the owner, then its people, each if their /notify wants it."""
        return self.store.push_recipients(owner, vin, preference)

    def revoke(self, share: Share) -> bool:
        """End a share at once (its person no longer sees the car); False when it had ended already."""
        return self.store.end_share(share.owner, share.vin, share.member)

    def allow_remote(self, share: Share, allowed: bool) -> bool:
        return self.store.set_share_remote(share.owner, share.vin, share.member, allowed)

    def leave(self, member: int) -> list[Share]:
        """The member stops seeing every car shared with them: the shares that ended."""
        return self.store.leave_shares(member)

    def first_name(self, tg_id: int) -> str | None:
        """How the bot names a user to the other side of a share (their Telegram first name)."""
        return self.store.first_name(tg_id)


class SharedAlerter(Alerter):
    """The alerts of a car for its owner and for each person it is shared with, each by their own /alerts,
    zone and memory (exactly once per person): one Alerter for both backends' readings."""

    def __init__(self, store: Store, push: AlertPush, zone_of: ZoneOf | None = None) -> None:
        super().__init__(store, push, zone_of)
        self._shares = store

    async def observe(
        self,
        tg_id: int,
        vin: str,
        reading: Reading,
        now: float,
        *,
        state: AlertState | None = None,
        prefs: AlertPrefs | None = None,
    ) -> AlertReport:
        report = await super().observe(tg_id, vin, reading, now, state=state, prefs=prefs)
        for share in self._shares.members(tg_id, vin):
            theirs = await super().observe(share.member, vin, reading, now)
            report = AlertReport(report.pushed + theirs.pushed, report.failed + theirs.failed)
        return report
