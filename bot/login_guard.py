"""No password guessing through the bot, and no flood of login codes.

After LOGIN_ATTEMPTS failed logins of one Telegram user, or of one e-mail whoever tries it, linking waits out
a cool-down that grows with each further failure (stored, so a restart does not reset it). A user may ask BMW
for DEVICE_CODES_PER_WINDOW new CarData login codes within the window, whatever BMW answered.
"""

from __future__ import annotations

import asyncio
import time
import weakref
from collections import deque
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from bot.bmw.errors import AuthenticationError
from bot.garage_errors import LoginCoolDown, TooManyLoginCodes
from bot.store import LoginAttempts, Store

LOGIN_ATTEMPTS = 3  # failed logins before the first cool-down
# The cool-down after the 3rd failure in a row, the 4th, the 5th, and every later one.
LOGIN_COOL_DOWNS = (15 * 60.0, 60 * 60.0, 4 * 60 * 60.0, 24 * 60 * 60.0)
LOGIN_FORGET_SECONDS = 24 * 60 * 60.0  # failures are forgotten a day after the last one (or its cool-down)
# New CarData login codes (POST /device/code at BMW) one Telegram user may ask for within the window.
DEVICE_CODES_PER_WINDOW = 5
DEVICE_CODE_WINDOW_SECONDS = 10 * 60.0


class RateLimit:
    """At most `limit` uses per user within any `window` seconds (in memory: a restart forgets them)."""

    def __init__(self, limit: int, window: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.limit, self.window = limit, window
        self._clock = clock
        self._recent: dict[int, deque[float]] = {}

    def take(self, tg_id: int) -> float | None:
        """One use of this user: None when taken, else the seconds until the oldest use leaves the window."""
        now = self._clock()
        recent = self._recent.setdefault(tg_id, deque())
        while recent and now - recent[0] >= self.window:
            recent.popleft()
        if len(recent) >= self.limit:
            return self.window - (now - recent[0])
        recent.append(now)
        return None

    def forget(self, tg_id: int) -> None:
        self._recent.pop(tg_id, None)


class LoginGuard:
    def __init__(
        self,
        store: Store,
        *,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self._wall_clock = wall_clock  # cool-downs are stored, so they are in Unix time
        # Logins of one subject (user, e-mail) run one at a time, so parallel tries cannot all pass the check
        # before the first failure counts. Weak values: a lock lives only while a login holds or awaits it.
        self._locks: weakref.WeakValueDictionary[str, asyncio.Lock] = weakref.WeakValueDictionary()
        # Not forgotten at /unlink: unlinking must not reset it.
        self._codes = RateLimit(DEVICE_CODES_PER_WINDOW, DEVICE_CODE_WINDOW_SECONDS, clock)

    @asynccontextmanager
    async def login(self, tg_id: int, username: str) -> AsyncIterator[None]:
        """Around one login of this user with this e-mail: LoginCoolDown, before anything reaches BMW, while
        either is cooling down, and instead of the AuthenticationError of the failure that begins one."""
        subjects = self.store.login_subjects(tg_id, username)
        user_lock, email_lock = (self._lock(subject) for subject in subjects)
        async with user_lock, email_lock:
            self.check(tg_id, username)
            try:
                yield
            except AuthenticationError:
                self._failed(subjects)
                self.check(tg_id, username)  # LoginCoolDown when this failure began one
                raise
            self.store.forget_login_attempts(subjects)

    def check(self, tg_id: int, username: str | None = None) -> None:
        """LoginCoolDown while this user, or (when given) this e-mail, may not try to log in."""
        now = self._wall_clock()
        subjects = self.store.login_subjects(tg_id, username)
        until = max(self.store.login_attempts(subject, now).blocked_until or now for subject in subjects)
        if until > now:
            raise LoginCoolDown(until - now)

    def take_login_code(self, tg_id: int) -> None:
        """TooManyLoginCodes once this user had DEVICE_CODES_PER_WINDOW codes within the window."""
        wait = self._codes.take(tg_id)
        if wait is not None:
            raise TooManyLoginCodes(wait)

    def _lock(self, subject: str) -> asyncio.Lock:
        lock = self._locks.get(subject)
        if lock is None:
            lock = self._locks[subject] = asyncio.Lock()
        return lock

    def _failed(self, subjects: list[str]) -> None:
        now = self._wall_clock()
        for subject in subjects:
            failures = self.store.login_attempts(subject, now).failures + 1
            blocked_until = None
            if failures >= LOGIN_ATTEMPTS:
                step = min(failures - LOGIN_ATTEMPTS, len(LOGIN_COOL_DOWNS) - 1)
                blocked_until = now + LOGIN_COOL_DOWNS[step]
            forget_at = (blocked_until or now) + LOGIN_FORGET_SECONDS
            self.store.save_login_attempts(subject, LoginAttempts(failures, blocked_until, forget_at), now)
