"""What each user chose: charge notifications (/notify), /settings, and alerts with their memory per car."""

from __future__ import annotations

from bot.alerts import AlertPrefs, AlertState
from bot.store.connection import Connection, _booleans, _field_names, _params
from bot.store.records import NotifyPrefs, UserSettings

_PREF_COLUMNS = {name: f"notify_{name}" for name in _field_names(NotifyPrefs)}  # field -> users column
_ALERT_PREF_FIELDS = _field_names(AlertPrefs)
_ALERT_PREF_COLUMNS = ", ".join(_ALERT_PREF_FIELDS)
_ALERT_STATE_FIELDS = _field_names(AlertState)
_ALERT_STATE_COLUMNS = ", ".join(_ALERT_STATE_FIELDS)
_SETTINGS_FIELDS = _field_names(UserSettings)
_SETTINGS_QUERY = f"SELECT {', '.join(_SETTINGS_FIELDS)} FROM users WHERE tg_id = ?"
_CHOSEN_SETTINGS = _SETTINGS_FIELDS[1:]  # what /settings saves; language_code comes from Telegram


class PrefRows(Connection):
    # --- notification preferences ---------------------------------------------------------------------------

    def notify_prefs(self, tg_id: int) -> NotifyPrefs:
        rows = self._rows("SELECT * FROM users WHERE tg_id = ?", (tg_id,))
        if not rows:
            return NotifyPrefs()
        chosen = {name: rows[0][column] for name, column in _PREF_COLUMNS.items()}
        return NotifyPrefs(**{name: bool(value) for name, value in chosen.items() if value is not None})

    def save_notify_prefs(self, tg_id: int, prefs: NotifyPrefs) -> None:
        columns = _PREF_COLUMNS.values()
        with self._write() as db:
            db.execute(
                f"INSERT INTO users (tg_id, {', '.join(columns)})"
                f" VALUES (:tg_id, {_params(_PREF_COLUMNS)})"
                " ON CONFLICT (tg_id) DO UPDATE SET"
                f" {', '.join(f'{column} = excluded.{column}' for column in columns)}",
                {"tg_id": tg_id, **vars(prefs)},
            )

    # --- /settings ------------------------------------------------------------------------------------------

    def user_settings(self, tg_id: int) -> UserSettings | None:
        """The user's settings; None for a user the bot keeps no row of."""
        found = self._records(UserSettings, _SETTINGS_QUERY, (tg_id,))
        return found[0] if found else None

    def save_user_settings(self, tg_id: int, settings: UserSettings) -> None:
        """Store what the user chose (not language_code, which only Telegram sets)."""
        with self._write() as db:
            db.execute(
                f"INSERT INTO users (tg_id, {', '.join(_CHOSEN_SETTINGS)})"
                f" VALUES (:tg_id, {_params(_CHOSEN_SETTINGS)})"
                " ON CONFLICT (tg_id) DO UPDATE SET"
                f" {', '.join(f'{column} = excluded.{column}' for column in _CHOSEN_SETTINGS)}",
                {"tg_id": tg_id, **vars(settings)},
            )

    def save_language_code(self, tg_id: int, language_code: str | None) -> None:
        """Remember the language Telegram reports for a user we already know (no row for strangers)."""
        with self._write() as db:
            db.execute("UPDATE users SET language_code = ? WHERE tg_id = ?", (language_code, tg_id))

    # --- alerts (implements bot.alerts.AlertStore) ----------------------------------------------------------

    def alert_prefs(self, tg_id: int) -> AlertPrefs:
        sql = f"SELECT {_ALERT_PREF_COLUMNS} FROM alert_prefs WHERE tg_id = ?"
        found = self._records(AlertPrefs, sql, (tg_id,))
        return _booleans(found[0]) if found else AlertPrefs()

    def save_alert_prefs(self, tg_id: int, prefs: AlertPrefs) -> None:
        with self._write() as db:
            db.execute(
                f"INSERT OR REPLACE INTO alert_prefs (tg_id, {_ALERT_PREF_COLUMNS})"
                f" VALUES (:tg_id, {_params(_ALERT_PREF_FIELDS)})",
                {"tg_id": tg_id, **vars(prefs)},
            )

    def alert_state(self, tg_id: int, vin: str) -> AlertState:
        sql = f"SELECT {_ALERT_STATE_COLUMNS} FROM alert_states WHERE tg_id = ? AND vin = ?"
        found = self._records(AlertState, sql, (tg_id, vin))
        return _booleans(found[0]) if found else AlertState()

    def save_alert_state(self, tg_id: int, vin: str, state: AlertState) -> None:
        """Ignored when the car was unlinked meanwhile (no orphan)."""
        with self._write() as db:
            db.execute(
                f"INSERT OR REPLACE INTO alert_states (tg_id, vin, {_ALERT_STATE_COLUMNS})"
                f" SELECT :tg_id, :vin, {_params(_ALERT_STATE_FIELDS)}"
                " WHERE EXISTS (SELECT 1 FROM vehicles WHERE tg_id = :tg_id AND vin = :vin)"
                " OR EXISTS (SELECT 1 FROM shares WHERE tg_id = :tg_id AND vin = :vin)",
                {"tg_id": tg_id, "vin": vin, **vars(state)},
            )

    def alerts_due(self, now: float) -> tuple[dict[tuple[int, str], AlertState], dict[int, AlertPrefs]]:
        """The stored alert memory of the cars whose watch is due (`watches_due`), and their owners' prefs, in
        two queries for a whole watcher cycle; a car or user missing has the defaults."""
        due = "SELECT tg_id, vin FROM charge_watches WHERE next_poll_at <= ?"
        with self._lock:
            states = self._db.conn.execute(
                f"SELECT tg_id, vin, {_ALERT_STATE_COLUMNS} FROM alert_states WHERE (tg_id, vin) IN ({due})",
                (now,),
            ).fetchall()
            prefs = self._db.conn.execute(
                f"SELECT tg_id, {_ALERT_PREF_COLUMNS} FROM alert_prefs"
                f" WHERE tg_id IN (SELECT tg_id FROM ({due}))",
                (now,),
            ).fetchall()
        return (
            {(row[0], row[1]): _booleans(AlertState(*row[2:])) for row in states},
            {row[0]: _booleans(AlertPrefs(*row[1:])) for row in prefs},
        )
