"""The watcher's charge watches of i Remote cars, and the charging history both backends write."""

from __future__ import annotations

from sqlite_utils import Database

from bot.history import ChargeSession
from bot.store.connection import Connection, _booleans, _field_names, _params
from bot.store.records import ChargeWatch

_WATCH_FIELDS = _field_names(ChargeWatch)
_WATCH_COLUMNS = ", ".join(_WATCH_FIELDS)
_SESSION_FIELDS = _field_names(ChargeSession)
_SESSION_COLUMNS = ", ".join(_SESSION_FIELDS)


class ChargingRows(Connection):
    # --- charge watches -------------------------------------------------------------------------------------

    def watches_due(self, now: float, limit: int | None = None) -> list[ChargeWatch]:
        """Watches whose next_poll_at <= now, most overdue first; none of an account waiting for a re-link."""
        due = self._records(
            ChargeWatch,
            f"SELECT {_WATCH_COLUMNS} FROM charge_watches w WHERE next_poll_at <= ?"
            " AND NOT EXISTS (SELECT 1 FROM accounts a"
            " WHERE a.tg_id = w.tg_id AND a.relink_needed_at IS NOT NULL)"
            " ORDER BY next_poll_at, tg_id, vin LIMIT ?",
            (now, -1 if limit is None else limit),
        )
        return [_booleans(watch) for watch in due]

    def watch(self, tg_id: int, vin: str) -> ChargeWatch | None:
        sql = f"SELECT {_WATCH_COLUMNS} FROM charge_watches WHERE tg_id = ? AND vin = ?"
        found = self._records(ChargeWatch, sql, (tg_id, vin))
        return _booleans(found[0]) if found else None

    def save_watch(self, watch: ChargeWatch, ended: ChargeSession | None = None) -> None:
        """Store the watcher's state of a car, and with it the charge that `ended` (once: a session already
        recorded stays as it is); ignored when the car was unlinked meanwhile (no orphan)."""
        with self._write() as db:
            db.execute(
                f"INSERT OR REPLACE INTO charge_watches ({_WATCH_COLUMNS})"
                f" SELECT {_params(_WATCH_FIELDS)}"
                " WHERE EXISTS (SELECT 1 FROM vehicles WHERE tg_id = :tg_id AND vin = :vin)"
                " OR EXISTS (SELECT 1 FROM shares WHERE tg_id = :tg_id AND vin = :vin)",
                vars(watch),
            )
            if ended is not None:
                self._record_session(db, ended, "SELECT 1 FROM vehicles WHERE tg_id = :tg_id AND vin = :vin")

    def watched_count(self) -> int:
        return int(self._rows("SELECT count(*) AS n FROM charge_watches")[0]["n"])

    # --- charging history (written with the watch or track that ends a charge) ------------------------------

    def _record_session(self, db: Database, session: ChargeSession, linked: str) -> None:
        """Add a session to the history, unless it is there already or `linked` (a query) finds nothing."""
        db.execute(
            f"INSERT OR IGNORE INTO charge_sessions ({_SESSION_COLUMNS})"
            f" SELECT {_params(_SESSION_FIELDS)} WHERE EXISTS ({linked})",
            vars(session),
        )

    def charge_sessions(self, tg_id: int, vin: str) -> list[ChargeSession]:
        """The car's recorded charge sessions, newest first."""
        return self._records(
            ChargeSession,
            f"SELECT {_SESSION_COLUMNS} FROM charge_sessions WHERE tg_id = ? AND vin = ?"
            " ORDER BY started_at DESC",
            (tg_id, vin),
        )
