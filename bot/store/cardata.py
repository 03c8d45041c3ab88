"""BMW CarData links (encrypted tokens), the calls counted per day, car states and charge detection."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from datetime import date, timedelta
from typing import Any

from bot.cardata.models import Tokens
from bot.cardata.storage import AccountCalls, CarDataLink, ChargeTrack, EndedCharge
from bot.store.charging import ChargingRows

# A CarData link's rows, the owner's own calls of the day among them; not cardata_account_calls: BMW's count
# of the account's calls goes on, whoever unlinks.
_CARDATA_LINK_TABLES = (
    "cardata_accounts",
    "cardata_calls",
    "cardata_states",
    "cardata_tracks",
    "drive_marks",
)
_CARDATA_SECRET_COLUMNS = ("client_id_enc", "access_token_enc", "id_token_enc", "refresh_token_enc")
_CARDATA_COLUMNS = (
    "tg_id, client_id_enc, gcid, access_token_enc, id_token_enc, refresh_token_enc, expires_at,"
    " refresh_expires_at, container_id"
)
_TRACK_COLUMNS = (
    "tg_id, vin, status, session_start, soc_at_start, deadline, pending, last_event, known_soc, known_reason,"
    " known_at, late_read_at"
)
_TRACK_SELECT = _TRACK_COLUMNS.replace("tg_id", "tg_id AS owner", 1)  # read by ChargeTrack's field names


class CarDataRows(ChargingRows):
    """Its base: a charge that ends goes into the charging history in the same transaction."""

    # --- BMW CarData (implements bot.cardata.storage.CarDataStore) ------------------------------------------

    def cardata_link(self, owner: int) -> CarDataLink | None:
        rows = self._rows("SELECT * FROM cardata_accounts WHERE tg_id = ?", (owner,))
        return self._cardata_link(rows[0]) if rows else None

    def cardata_links(self) -> list[CarDataLink]:
        return [self._cardata_link(row) for row in self._rows("SELECT * FROM cardata_accounts")]

    def _cardata_link(self, row: sqlite3.Row) -> CarDataLink:
        decrypt = self._secrets.decrypt
        tokens = Tokens(
            access_token=decrypt(row["access_token_enc"]),
            id_token=decrypt(row["id_token_enc"]),
            refresh_token=decrypt(row["refresh_token_enc"]),
            gcid=row["gcid"],
            expires_at=row["expires_at"],
            refresh_expires_at=row["refresh_expires_at"],
        )
        return CarDataLink(row["tg_id"], decrypt(row["client_id_enc"]), tokens, row["container_id"])

    def save_cardata_link(self, link: CarDataLink) -> None:
        """Link (or re-link) an owner's CarData account; another gcid's car states, detector memory and the
        owner's calls counted on it go.
        A new link has not been refused: its owner is asked again when it is (`mark_cardata_relink_asked`)."""
        t, encrypt = link.tokens, self._secrets.encrypt
        row = (
            link.owner,
            encrypt(link.client_id),
            t.gcid,
            encrypt(t.access_token),
            encrypt(t.id_token),
            encrypt(t.refresh_token),
            t.expires_at,
            t.refresh_expires_at,
            link.container_id,
        )
        with self._write() as db:
            old = db.execute("SELECT gcid FROM cardata_accounts WHERE tg_id = ?", (link.owner,)).fetchone()
            if old is not None and old[0] != t.gcid:
                for table in ("cardata_calls", "cardata_states", "cardata_tracks", "drive_marks"):
                    db.execute(f"DELETE FROM {table} WHERE tg_id = ?", (link.owner,))
            db.execute(
                f"INSERT OR REPLACE INTO cardata_accounts ({_CARDATA_COLUMNS})"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                row,
            )

    def replace_cardata_container(self, gcid: str, old: str, new: str) -> None:
        with self._write() as db:
            db.execute(
                "UPDATE cardata_accounts SET container_id = ? WHERE gcid = ? AND container_id = ?",
                (new, gcid, old),
            )

    def save_cardata_tokens(self, owner: int, tokens: Tokens, renewed: Tokens) -> bool:
        # The ciphertexts differ at each encryption: the expiry times tell the renewed tokens apart.
        with self._write() as db:
            cursor = db.execute(
                "UPDATE cardata_accounts SET gcid = ?, access_token_enc = ?, id_token_enc = ?,"
                " refresh_token_enc = ?, expires_at = ?, refresh_expires_at = ?"
                " WHERE tg_id = ? AND expires_at = ? AND refresh_expires_at = ?",
                (
                    tokens.gcid,
                    self._secrets.encrypt(tokens.access_token),
                    self._secrets.encrypt(tokens.id_token),
                    self._secrets.encrypt(tokens.refresh_token),
                    tokens.expires_at,
                    tokens.refresh_expires_at,
                    owner,
                    renewed.expires_at,
                    renewed.refresh_expires_at,
                ),
            )
            return cursor.rowcount == 1

    def mark_cardata_relink_asked(self, owner: int, asked: bool = True) -> bool:
        """Mark (or unmark) the owner as asked to link CarData again since their link was refused; whether
        this changed the mark (False when it was so already, or when the owner has no link)."""
        with self._write() as db:
            cursor = db.execute(
                "UPDATE cardata_accounts SET relink_asked_at = ?"
                " WHERE tg_id = ? AND (relink_asked_at IS NULL) = ?",
                (self._clock() if asked else None, owner, asked),
            )
            return cursor.rowcount == 1

    def mark_cardata_stream_block_told(self, owner: int, reason: str | None) -> bool:
        """Mark the owner as told why BMW lets nothing through their account's stream (`reason`; None: unmark,
        it flows); whether this changed the mark (False when it was so already, or when the owner has no
        link)."""
        with self._write() as db:
            cursor = db.execute(
                "UPDATE cardata_accounts SET stream_block_told = ?, stream_held_told_at = ?"
                " WHERE tg_id = ? AND stream_block_told IS NOT ?",
                (reason, None if reason is None else self._clock(), owner, reason),
            )
            return cursor.rowcount == 1

    def cardata_container_shared(self, owner: int) -> bool:
        """Whether another linked owner of the same BMW account (a co-owner) reads through this owner's
        container (found again by its name, so they share it)."""
        rows = self._rows(
            "SELECT 1 FROM cardata_accounts a JOIN cardata_accounts b"
            " ON b.gcid = a.gcid AND b.container_id = a.container_id AND b.tg_id != a.tg_id"
            " WHERE a.tg_id = ? LIMIT 1",
            (owner,),
        )
        return bool(rows)

    def forget_cardata_calls_unless_linked(self, owner: int) -> None:
        """After a first CarData link failed: its calls' count goes with it (nothing else of it was stored,
        and /unlink would not find it)."""
        with self._write() as db:
            db.execute(
                "DELETE FROM cardata_calls WHERE tg_id = ?"
                " AND NOT EXISTS (SELECT 1 FROM cardata_accounts WHERE tg_id = ?)",
                (owner, owner),
            )

    def spend_cardata_call(
        self, gcid: str, owner: int, day: str, allowed: Callable[[AccountCalls], bool], now: float
    ) -> bool:
        with self._write() as db:
            # Days before yesterday are over for everyone (yesterday's calls may count until 24 h after its
            # first): an account nobody links any more leaves no row behind.
            db.execute("DELETE FROM cardata_account_calls WHERE day < ?", (_day_before(day),))
            db.execute("DELETE FROM cardata_calls WHERE tg_id = ? AND day < ?", (owner, day))
            if not allowed(self.cardata_calls(gcid, owner, day)):
                return False
            db.execute(
                "INSERT INTO cardata_account_calls (gcid, day, calls, first_call_at) VALUES (?, ?, 1, ?)"
                " ON CONFLICT (gcid, day) DO UPDATE SET calls = calls + 1",
                (gcid, day, now),
            )
            db.execute(
                "INSERT INTO cardata_calls (tg_id, day, calls) VALUES (?, ?, 1)"
                " ON CONFLICT (tg_id, day) DO UPDATE SET calls = calls + 1",
                (owner, day),
            )
            return True

    def cardata_calls(self, gcid: str, owner: int, day: str) -> AccountCalls:
        query = "SELECT calls, first_call_at FROM cardata_account_calls WHERE gcid = ? AND day = ?"
        total = self._rows(query, (gcid, day))
        before = self._rows(query, (gcid, _day_before(day)))
        own = self._rows("SELECT calls FROM cardata_calls WHERE tg_id = ? AND day = ?", (owner, day))
        others = self._rows(
            "SELECT coalesce(c.calls, 0) AS calls FROM cardata_accounts a"
            " LEFT JOIN cardata_calls c ON c.tg_id = a.tg_id AND c.day = ?"
            " WHERE a.gcid = ? AND a.tg_id != ? ORDER BY a.tg_id",
            (day, gcid, owner),
        )
        return AccountCalls(
            total=total[0]["calls"] if total else 0,
            own=own[0]["calls"] if own else 0,
            others=tuple(row["calls"] for row in others),
            first_call_at=total[0]["first_call_at"] if total else None,
            day_before=before[0]["calls"] if before else 0,
            day_before_first_call_at=before[0]["first_call_at"] if before else None,
        )

    def exhaust_cardata_calls(self, gcid: str, day: str, calls: int) -> None:
        with self._write() as db:
            db.execute(
                "INSERT INTO cardata_account_calls (gcid, day, calls) VALUES (?, ?, ?)"
                " ON CONFLICT (gcid, day) DO UPDATE SET calls = max(calls, excluded.calls)",
                (gcid, day, calls),
            )

    def cardata_vins(self, owner: int) -> list[str]:
        return [row["vin"] for row in self._rows("SELECT vin FROM vehicles WHERE tg_id = ?", (owner,))]

    def cardata_states(self, owner: int) -> dict[str, Any]:
        rows = self._rows("SELECT vin, state FROM cardata_states WHERE tg_id = ? ORDER BY vin", (owner,))
        return {row["vin"]: json.loads(row["state"]) for row in rows}

    def save_cardata_state(self, owner: int, vin: str, values: dict[str, Any]) -> None:
        """Ignored when the owner is no longer linked (a late stream message must not leave an orphan)."""
        with self._write() as db:
            db.execute(
                "INSERT OR REPLACE INTO cardata_states (tg_id, vin, state) SELECT ?, ?, ?"
                " WHERE EXISTS (SELECT 1 FROM cardata_accounts WHERE tg_id = ?)",
                (owner, vin, json.dumps(values, separators=(",", ":")), owner),
            )

    def cardata_track(self, owner: int, vin: str) -> ChargeTrack | None:
        query = f"SELECT {_TRACK_SELECT} FROM cardata_tracks WHERE tg_id = ? AND vin = ?"
        tracks = self._records(ChargeTrack, query, (owner, vin))
        return tracks[0] if tracks else None

    def save_cardata_track(self, track: ChargeTrack) -> None:
        """Ignored when the owner is no longer linked."""
        with self._write() as db:
            db.execute(
                f"INSERT OR REPLACE INTO cardata_tracks ({_TRACK_COLUMNS})"
                " SELECT ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?"
                " WHERE EXISTS (SELECT 1 FROM cardata_accounts WHERE tg_id = ?)",
                (
                    track.owner,
                    track.vin,
                    track.status,
                    track.session_start,
                    track.soc_at_start,
                    track.deadline,
                    track.pending,
                    track.last_event,
                    track.known_soc,
                    track.known_reason,
                    track.known_at,
                    track.late_read_at,
                    track.owner,
                ),
            )

    def end_cardata_charge(self, track: ChargeTrack, ended: EndedCharge) -> None:
        with self._write() as db:  # one transaction: the inner write is a savepoint
            self.save_cardata_track(track)
            self._record_session(db, ended.session(), "SELECT 1 FROM cardata_accounts WHERE tg_id = :tg_id")

    def cardata_tracks_due(self, now: float) -> list[ChargeTrack]:
        return self._records(
            ChargeTrack,
            f"SELECT {_TRACK_SELECT} FROM cardata_tracks WHERE deadline <= ?"
            f" UNION SELECT {_TRACK_SELECT} FROM cardata_tracks WHERE pending IS NOT NULL",
            (now,),
        )

    def cardata_next_deadline(self, after: float) -> float | None:
        [row] = self._rows("SELECT MIN(deadline) FROM cardata_tracks WHERE deadline > ?", (after,))
        return None if row[0] is None else float(row[0])


def _day_before(day: str) -> str:
    return (date.fromisoformat(day) - timedelta(days=1)).isoformat()
