"""Cars shared through /share: invitations, shares, and who gets a car's pushes."""

from __future__ import annotations

from bot.store.connection import _booleans, _end_shares
from bot.store.prefs import PrefRows
from bot.store.records import Share
from bot.store.vehicles import _SEEN

_SHARE_COLUMNS = "s.owner, s.vin, s.tg_id AS member, s.remote, s.since"  # Share's fields


class ShareRows(PrefRows):
    """Its base: a car's pushes go to whoever wants them by their own /notify."""

    # --- shares (/share) ------------------------------------------------------------------------------------

    def open_invite(self, token_hash: str, owner: int, vin: str, expires_at: float, limit: int) -> bool:
        """Store an invitation to that car; False (nothing stored) while `limit` of its invitations are open.
        Expired ones are dropped first."""
        with self._write() as db:
            db.execute("DELETE FROM share_invites WHERE expires_at <= ?", (self._clock(),))
            (open_now,) = db.execute(
                "SELECT count(*) FROM share_invites WHERE tg_id = ? AND vin = ?", (owner, vin)
            ).fetchone()
            if open_now >= limit:
                return False
            db.execute(
                "INSERT INTO share_invites (token_hash, tg_id, vin, expires_at) VALUES (?, ?, ?, ?)",
                (token_hash, owner, vin, expires_at),
            )
            return True

    def invite(self, token_hash: str) -> tuple[int, str] | None:
        """(owner, VIN) of an open, unexpired invitation of a car still linked; None for anything else."""
        rows = self._rows(
            "SELECT i.tg_id AS owner, i.vin FROM share_invites i"
            " JOIN vehicles v ON v.tg_id = i.tg_id AND v.vin = i.vin"
            " WHERE i.token_hash = ? AND i.expires_at > ?",
            (token_hash, self._clock()),
        )
        return (rows[0]["owner"], rows[0]["vin"]) if rows else None

    def take_invite(self, token_hash: str, member: int, first_name: str | None) -> Share | None:
        """Use the invitation up and share its car with `member`, in one transaction: None (and the invitation
        gone all the same when it was the owner's own) when it is not open, expired, the member's own car's or
        one they already see."""
        now = self._clock()
        with self._write() as db:
            found = db.execute(
                "DELETE FROM share_invites WHERE token_hash = ? RETURNING tg_id, vin, expires_at",
                (token_hash,),
            ).fetchone()
            if found is None or found[2] <= now or found[0] == member:
                return None
            owner, vin = found[0], found[1]
            linked = db.execute("SELECT 1 FROM vehicles WHERE tg_id = ? AND vin = ?", (owner, vin)).fetchone()
            seen = db.execute(
                f"SELECT 1 FROM ({_SEEN}) WHERE vin = :vin", {"me": member, "vin": vin}
            ).fetchone()
            if linked is None or seen is not None:
                return None
            db.execute(
                "INSERT INTO users (tg_id, first_name) VALUES (?, ?)"
                " ON CONFLICT (tg_id) DO UPDATE SET first_name = excluded.first_name",
                (member, first_name),
            )
            db.execute(
                "INSERT INTO shares (owner, vin, tg_id, remote, since) VALUES (?, ?, ?, 0, ?)",
                (owner, vin, member, now),
            )
        return Share(owner, vin, member, False, now)

    def shares(self, owner: int) -> list[Share]:
        """The owner's shares of cars still linked, by car and then in the order they began."""
        sql = (
            f"SELECT {_SHARE_COLUMNS} FROM shares s JOIN vehicles v ON v.tg_id = s.owner AND v.vin = s.vin"
            " WHERE s.owner = ? ORDER BY v.position, s.vin, s.since"
        )
        return [_booleans(share) for share in self._records(Share, sql, (owner,))]

    def members(self, owner: int, vin: str) -> list[Share]:
        """Who sees that car of the owner."""
        sql = f"SELECT {_SHARE_COLUMNS} FROM shares s WHERE s.owner = ? AND s.vin = ? ORDER BY s.since"
        return [_booleans(share) for share in self._records(Share, sql, (owner, vin))]

    def share(self, owner: int, vin: str, member: int) -> Share | None:
        sql = f"SELECT {_SHARE_COLUMNS} FROM shares s WHERE s.owner = ? AND s.vin = ? AND s.tg_id = ?"
        found = self._records(Share, sql, (owner, vin, member))
        return _booleans(found[0]) if found else None

    def memberships(self, member: int) -> list[Share]:
        """The cars shared with that user (of cars still linked)."""
        sql = (
            f"SELECT {_SHARE_COLUMNS} FROM shares s JOIN vehicles v ON v.tg_id = s.owner AND v.vin = s.vin"
            " WHERE s.tg_id = ? ORDER BY s.since"
        )
        return [_booleans(share) for share in self._records(Share, sql, (member,))]

    def end_share(self, owner: int, vin: str, member: int) -> bool:
        """False when there was no such share (revoked or left already)."""
        with self._write() as db:
            return _end_shares(db, "s.owner = ? AND s.vin = ? AND s.tg_id = ?", (owner, vin, member)) > 0

    def set_share_remote(self, owner: int, vin: str, member: int, remote: bool) -> bool:
        with self._write() as db:
            changed = db.execute(
                "UPDATE shares SET remote = ? WHERE owner = ? AND vin = ? AND tg_id = ?",
                (remote, owner, vin, member),
            )
            return changed.rowcount > 0

    def push_recipients(self, owner: int, vin: str, preference: str) -> list[int]:
        """Who wants that charge push (`preference`, a NotifyPrefs field) of the owner's car: the owner, then
        each person it is shared with, by their own /notify."""
        people = [owner, *(share.member for share in self.members(owner, vin))]
        return [tg_id for tg_id in people if getattr(self.notify_prefs(tg_id), preference)]

    def leave_shares(self, member: int) -> list[Share]:
        """End every share with that user; the ones that were ended (of cars still linked)."""
        left = self.memberships(member)
        with self._write() as db:
            _end_shares(db, "s.tg_id = ?", (member,))
        return left
