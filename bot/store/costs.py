"""The owners' home tariffs, each from a moment on (a later one never rewrites older charges' costs), and the
prices they gave single charges away from home (bot/costs.py)."""

from __future__ import annotations

from bot.costs import ChargePrice, Tariff
from bot.store.connection import Connection, _field_names, _params

_TARIFF_FIELDS = _field_names(Tariff)
_TARIFF_COLUMNS = ", ".join(_TARIFF_FIELDS)
_PRICE_FIELDS = _field_names(ChargePrice)
_PRICE_COLUMNS = ", ".join(_PRICE_FIELDS)


class CostRows(Connection):
    def tariffs(self, tg_id: int) -> list[Tariff]:
        """The owner's tariffs, oldest first."""
        query = f"SELECT {_TARIFF_COLUMNS} FROM tariffs WHERE tg_id = ? ORDER BY valid_from"
        return self._records(Tariff, query, (tg_id,))

    def save_tariff(self, tg_id: int, tariff: Tariff) -> None:
        """Add the owner's tariff from `tariff.valid_from` on (one cleared: a price of None)."""
        with self._write() as db:
            db.execute(
                f"INSERT OR REPLACE INTO tariffs (tg_id, {_TARIFF_COLUMNS})"
                f" VALUES (:tg_id, {_params(_TARIFF_FIELDS)})",
                {"tg_id": tg_id, **vars(tariff)},
            )

    def charge_prices(self, tg_id: int, vin: str) -> list[ChargePrice]:
        query = f"SELECT {_PRICE_COLUMNS} FROM charge_prices WHERE tg_id = ? AND vin = ?"
        return self._records(ChargePrice, query, (tg_id, vin))

    def save_charge_price(self, tg_id: int, vin: str, price: ChargePrice) -> None:
        """The price of one charge of the owner's car; ignored when the car is no longer theirs."""
        with self._write() as db:
            db.execute(
                f"INSERT OR REPLACE INTO charge_prices (tg_id, vin, {_PRICE_COLUMNS})"
                f" SELECT :tg_id, :vin, {_params(_PRICE_FIELDS)}"
                " WHERE EXISTS (SELECT 1 FROM vehicles WHERE tg_id = :tg_id AND vin = :vin)",
                {"tg_id": tg_id, "vin": vin, **vars(price)},
            )
