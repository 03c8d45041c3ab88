"""One-shot, expiring confirmations of a "Yes" button (unlock, unlink, leaving a share): the button carries a
nonce kept in the pressing user's data, so a forged, replayed, late or copied press finds nothing."""

from __future__ import annotations

import secrets
import time

from bot.chat.common import Context, user_data


def confirmation(context: Context, kind: str, value: str, seconds: float) -> str:
    """A one-shot nonce for a "Yes" button that stands for `value` for `seconds`. Kept per pressing user: a
    nonce copied into another user's press, or replayed, or pressed late, finds nothing (`confirmed`)."""
    nonce = secrets.token_urlsafe(9)
    pending: dict[str, tuple[str, float]] = user_data(context).setdefault(f"confirm:{kind}", {})
    now = time.monotonic()
    for old in [n for n, (_, expires) in pending.items() if expires < now]:
        del pending[old]
    pending[nonce] = (value, now + seconds)
    return nonce


def asked_here(context: Context, kind: str, nonce: str) -> bool:
    """Whether this process gave `nonce` and it is not yet taken: a press without it is forged, a second
    tap, or one Telegram delivers again to a process started after a kill (remote._expired)."""
    return nonce in user_data(context).get(f"confirm:{kind}", {})


def confirmed(context: Context, kind: str, nonce: str) -> str | None:
    """The value a live confirmation of `kind` stands for, once and only before it expires; else None."""
    entry = user_data(context).get(f"confirm:{kind}", {}).pop(nonce, None)
    if entry is None or entry[1] < time.monotonic():
        return None
    return entry[0]
