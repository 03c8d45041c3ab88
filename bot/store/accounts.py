"""Users, the linked account (i Remote, or which backend) with its encrypted secrets, and refused logins."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence

from bot.capabilities import BackendName
from bot.cardata.storage import CarDataLink
from bot.store.cardata import _CARDATA_LINK_TABLES, _CARDATA_SECRET_COLUMNS, CarDataRows
from bot.store.connection import _end_shares, _field_names, _params
from bot.store.records import LoginAttempts, StoredAccount, StoredToken, StoredVehicle
from bot.store.vehicles import VehicleRows

_SECRET_COLUMNS = (
    "username_enc",
    "password_enc",
    "access_token_enc",
    "refresh_token_enc",
    "security_answer_enc",
)
_USER_SUBJECT = "user:"
_REFUSALS_QUERY = (
    "SELECT password_refusals, relink_needed_at IS NOT NULL AS waiting FROM accounts WHERE tg_id = ?"
)
_LOGIN_FIELDS = _field_names(LoginAttempts)


class AccountRows(CarDataRows, VehicleRows):
    """Its bases: a CarData link (`use_cardata`) writes the link and the cars in its one transaction."""

    # --- users ----------------------------------------------------------------------------------------------

    def upsert_user(self, tg_id: int, first_name: str | None) -> None:
        with self._write() as db:
            db.execute(
                "INSERT INTO users (tg_id, first_name) VALUES (?, ?)"
                " ON CONFLICT (tg_id) DO UPDATE SET first_name = excluded.first_name",
                (tg_id, first_name),
            )

    def keeps_settings(self, tg_id: int) -> bool:
        """Whether the bot keeps choices of that user (/settings, /notify, /alerts), linked or not."""
        rows = self._rows(
            "SELECT 1 FROM users WHERE tg_id = ? UNION ALL SELECT 1 FROM alert_prefs WHERE tg_id = ? LIMIT 1",
            (tg_id, tg_id),
        )
        return bool(rows)

    def first_name(self, tg_id: int) -> str | None:
        rows = self._rows("SELECT first_name FROM users WHERE tg_id = ?", (tg_id,))
        return rows[0]["first_name"] if rows else None

    def user_ids(self) -> list[int]:
        return [row["tg_id"] for row in self._rows("SELECT tg_id FROM users ORDER BY tg_id")]

    def delete_user(self, tg_id: int) -> None:
        """Every row about that user, in one transaction."""
        with self._write() as db:
            for table in (
                "login_attempts",
                "commands_in_flight",
                "charge_watches",
                "vehicles",
                "accounts",
                "users",
                "cardata_accounts",
                "cardata_calls",
                "cardata_states",
                "cardata_tracks",
                "charge_sessions",
                "drives",
                "drive_marks",
                "mileage_marks",
                "alert_prefs",
                "alert_states",
                "shares",
                "share_invites",
                "tariffs",
                "charge_prices",
            ):
                db.execute(f"DELETE FROM {table} WHERE tg_id = ?", (tg_id,))
            _end_shares(db, "s.owner = ?", (tg_id,))  # the people who saw their cars
        self._forget_deleted()

    # --- account and secrets --------------------------------------------------------------------------------

    def save_account(self, tg_id: int, *, region: str, username: str, password: str) -> None:
        """Link a BMW account, replacing any previous one: its token, answer, cars, selection and watches."""
        row = (tg_id, region, self._secrets.encrypt(username), self._secrets.encrypt(password))
        with self._write() as db:
            replaced = any(
                db.execute(f"SELECT 1 FROM {table} WHERE tg_id = ?", (tg_id,)).fetchone()
                for table in ("accounts", *_CARDATA_LINK_TABLES)
            )
            db.execute("INSERT INTO users (tg_id) VALUES (?) ON CONFLICT (tg_id) DO NOTHING", (tg_id,))
            db.execute(
                "UPDATE users SET selected_vin = NULL, backend = ? WHERE tg_id = ?",
                (BackendName.IREMOTE, tg_id),
            )
            for table in _CARDATA_LINK_TABLES:  # a CarData link it replaces (the caller stopped its stream)
                db.execute(f"DELETE FROM {table} WHERE tg_id = ?", (tg_id,))
            db.execute("DELETE FROM charge_watches WHERE tg_id = ?", (tg_id,))
            db.execute("DELETE FROM alert_states WHERE tg_id = ?", (tg_id,))
            db.execute("DELETE FROM vehicles WHERE tg_id = ?", (tg_id,))
            db.execute(
                "INSERT OR REPLACE INTO accounts (tg_id, region, username_enc, password_enc)"
                " VALUES (?, ?, ?, ?)",
                row,
            )
        if replaced:  # a first link deletes no secret: no checkpoint to pay for
            self._forget_deleted()  # the replaced account's secrets

    def use_cardata(
        self, link: CarDataLink, first_name: str | None, vehicles: Sequence[StoredVehicle]
    ) -> None:
        """The user's account is now this CarData link with these cars, in one transaction, so a link fails
        or is made whole: an earlier CarData link it replaces (its car states and detector memory too when
        the gcid changed), or an i Remote account with its token, answer, watches; the cars and selection."""
        tg_id = link.owner
        with self._write() as db:
            replaced = any(
                db.execute(f"SELECT 1 FROM {table} WHERE tg_id = ?", (tg_id,)).fetchone()
                for table in ("accounts", "cardata_accounts")
            )
            self.save_cardata_link(link)  # a savepoint inside this transaction
            db.execute(
                "INSERT INTO users (tg_id, first_name, backend) VALUES (?, ?, ?)"
                " ON CONFLICT (tg_id) DO UPDATE"
                " SET first_name = excluded.first_name, backend = excluded.backend, selected_vin = NULL",
                (tg_id, first_name, BackendName.CARDATA),
            )
            for table in ("charge_watches", "vehicles", "accounts"):
                db.execute(f"DELETE FROM {table} WHERE tg_id = ?", (tg_id,))
            self.save_vehicles(tg_id, vehicles)
        if replaced:  # a first link deletes no secret: no checkpoint to pay for
            self._forget_deleted()  # the replaced link's or account's secrets

    def backend(self, tg_id: int) -> BackendName | None:
        """The backend of the user's linked account; None when nothing is linked."""
        rows = self._rows(
            "SELECT u.backend FROM users u WHERE u.tg_id = ? AND CASE u.backend"
            " WHEN ? THEN EXISTS (SELECT 1 FROM cardata_accounts c WHERE c.tg_id = u.tg_id)"
            " ELSE EXISTS (SELECT 1 FROM accounts a WHERE a.tg_id = u.tg_id) END",
            (tg_id, BackendName.CARDATA),
        )
        return BackendName(rows[0]["backend"]) if rows else None

    def account(self, tg_id: int) -> StoredAccount | None:
        rows = self._rows("SELECT * FROM accounts WHERE tg_id = ?", (tg_id,))
        if not rows:
            return None
        row, secrets = rows[0], self._secrets
        token = (
            None
            if row["access_token_enc"] is None
            else StoredToken(
                secrets.decrypt(row["access_token_enc"]),
                secrets.decrypt_opt(row["refresh_token_enc"]),
                float(row["token_expires_at"]),
            )
        )
        return StoredAccount(
            tg_id=tg_id,
            region=row["region"],
            username=secrets.decrypt(row["username_enc"]),
            password=secrets.decrypt(row["password_enc"]),
            token=token,
            security_answer=secrets.decrypt_opt(row["security_answer_enc"]),
        )

    def save_token(self, tg_id: int, token: StoredToken | None) -> None:
        """Replace (or with None, forget) the account's token; nothing happens when the account is gone."""
        if token is None:
            values: tuple[str | float | None, ...] = (None, None, None)
        else:
            values = (
                self._secrets.encrypt(token.access_token),
                self._secrets.encrypt_opt(token.refresh_token),
                token.expires_at,
            )
        with self._write() as db:
            db.execute(
                "UPDATE accounts SET access_token_enc = ?, refresh_token_enc = ?, token_expires_at = ?"
                " WHERE tg_id = ?",
                (*values, tg_id),
            )

    def save_security_answer(self, tg_id: int, answer: str | None) -> None:
        """Replace (or forget) the account's security answer; nothing happens when the account is gone."""
        with self._write() as db:
            db.execute(
                "UPDATE accounts SET security_answer_enc = ? WHERE tg_id = ?",
                (self._secrets.encrypt_opt(answer), tg_id),
            )
        self._forget_deleted()  # the previous answer

    def rotate(self) -> int:
        """Re-encrypt with the first key every secret under another key; returns how many it rewrote."""
        rewritten = 0
        with self._write() as db:
            for row in self._rows(f"SELECT tg_id, {', '.join(_SECRET_COLUMNS)} FROM accounts"):
                for column in _SECRET_COLUMNS:
                    token = row[column]
                    if token is None or self._secrets.is_primary(token):
                        continue
                    db.execute(
                        f"UPDATE accounts SET {column} = ? WHERE tg_id = ?",
                        (self._secrets.rotate(token), row["tg_id"]),
                    )
                    rewritten += 1
            cardata = f"SELECT tg_id, {', '.join(_CARDATA_SECRET_COLUMNS)} FROM cardata_accounts"
            for row in self._rows(cardata):
                for column in _CARDATA_SECRET_COLUMNS:
                    token = row[column]
                    if self._secrets.is_primary(token):
                        continue
                    db.execute(
                        f"UPDATE cardata_accounts SET {column} = ? WHERE tg_id = ?",
                        (self._secrets.rotate(token), row["tg_id"]),
                    )
                    rewritten += 1
        self._forget_deleted()  # the secrets under the old keys
        return rewritten

    # --- refused logins -------------------------------------------------------------------------------------

    def login_subjects(self, tg_id: int, email: str | None = None) -> list[str]:
        """What failed logins count against: the Telegram user and, when given, the e-mail, as a keyed hash of
        its case-folded form (so one e-mail is one subject whatever its case, and no e-mail is stored)."""
        subjects = [f"{_USER_SUBJECT}{tg_id}"]
        if email is not None:
            digest = hmac.new(self._subject_key, email.strip().casefold().encode(), hashlib.sha256)
            subjects.append(f"email:{digest.hexdigest()}")
        return subjects

    def login_attempts(self, subject: str, now: float) -> LoginAttempts:
        found = self._records(
            LoginAttempts, "SELECT * FROM login_attempts WHERE subject = ? AND forget_at > ?", (subject, now)
        )
        return found[0] if found else LoginAttempts()

    def save_login_attempts(self, subject: str, attempts: LoginAttempts, now: float) -> None:
        """Store the subject's record and drop every forgotten one, so the table stays small."""
        tg_id = int(subject.removeprefix(_USER_SUBJECT)) if subject.startswith(_USER_SUBJECT) else None
        with self._write() as db:
            db.execute("DELETE FROM login_attempts WHERE forget_at <= ?", (now,))
            db.execute(
                f"INSERT OR REPLACE INTO login_attempts (subject, tg_id, {', '.join(_LOGIN_FIELDS)})"
                f" VALUES (:subject, :tg_id, {_params(_LOGIN_FIELDS)})",
                {"subject": subject, "tg_id": tg_id, **vars(attempts)},
            )

    def forget_login_attempts(self, subjects: Sequence[str]) -> None:
        with self._write() as db:
            db.conn.executemany("DELETE FROM login_attempts WHERE subject = ?", [(s,) for s in subjects])

    def password_refusals(self, tg_id: int) -> tuple[int, bool]:
        """BMW's refusals of the account's stored password in a row, and whether it waits for a re-link."""
        rows = self._rows(_REFUSALS_QUERY, (tg_id,))
        return (int(rows[0]["password_refusals"]), bool(rows[0]["waiting"])) if rows else (0, False)

    def count_password_refusal(self, tg_id: int, relink_after: int) -> bool:
        """One more refusal of the stored password; the `relink_after`-th in a row marks the account as
        waiting for a re-link. True only for the refusal that set the mark, so exactly one caller tells."""
        with self._write() as db:
            before = self._rows(_REFUSALS_QUERY, (tg_id,))
            if not before:
                return False
            refusals, marked = int(before[0]["password_refusals"]) + 1, bool(before[0]["waiting"])
            mark = not marked and refusals >= relink_after
            db.execute(
                "UPDATE accounts SET password_refusals = ?,"
                " relink_needed_at = CASE WHEN ? THEN ? ELSE relink_needed_at END WHERE tg_id = ?",
                (refusals, mark, self._clock(), tg_id),
            )
        return mark

    def clear_password_refusals(self, tg_id: int) -> None:
        """BMW took the stored password again (a re-link replaces the whole row anyway)."""
        with self._write() as db:
            db.execute(
                "UPDATE accounts SET password_refusals = 0 WHERE tg_id = ? AND relink_needed_at IS NULL",
                (tg_id,),
            )
