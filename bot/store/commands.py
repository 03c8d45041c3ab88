"""Remote commands in flight, kept so that a restart finishes their progress messages."""

from __future__ import annotations

from bot.store.connection import Connection, _field_names
from bot.store.records import CommandInFlight

_COMMAND_COLUMNS = ", ".join(_field_names(CommandInFlight))


class CommandRows(Connection):
    # --- remote commands in flight --------------------------------------------------------------------------

    def begin_command(self, tg_id: int, vin: str, service: str, chat_id: int, message_id: int) -> None:
        """Record a command about to be sent (started now), replacing an older record of that user and car."""
        with self._write() as db:
            db.execute(
                f"INSERT OR REPLACE INTO commands_in_flight ({_COMMAND_COLUMNS})"
                " VALUES (?, ?, ?, ?, ?, ?, NULL)",
                (tg_id, vin, service, chat_id, message_id, self._clock()),
            )

    def command_sent(self, tg_id: int, vin: str, event_id: str) -> None:
        """BMW answered the command's POST with this request id."""
        with self._write() as db:
            db.execute(
                "UPDATE commands_in_flight SET event_id = ? WHERE tg_id = ? AND vin = ?",
                (event_id, tg_id, vin),
            )

    def end_command(self, tg_id: int, vin: str) -> None:
        """The command's outcome was shown: nothing is left to finish."""
        with self._write() as db:
            db.execute("DELETE FROM commands_in_flight WHERE tg_id = ? AND vin = ?", (tg_id, vin))

    def commands_in_flight(self) -> list[CommandInFlight]:
        """Every recorded command, oldest first."""
        return self._records(
            CommandInFlight, "SELECT * FROM commands_in_flight ORDER BY started_at, tg_id, vin"
        )
