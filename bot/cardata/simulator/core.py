"""The ground every room of the CarData simulator stands on: one lock, one clock, the accounts, faults and the
request log.

State is shared between the HTTP thread, the broker thread and the test thread: public methods hold the
one lock.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bot.bmw.simulator import Fault
from bot.bmw.simulator.faults import Faults, RequestLog
from bot.cardata.simulator.wire import RequestRecord

SECRET_FIELDS = {"code_verifier", "device_code", "refresh_token", "access_token", "id_token"}
FAULT_KINDS = ("error", "timeout", "slow")  # of the i Remote simulator's Fault kinds, those served here


@dataclass
class Account:
    gcid: str
    client_id: str
    vins: list[str]
    secondary: list[str]
    mapped_since: float
    quota_day: str = ""
    calls: int = 0


class Core:
    """The lock, the clock, the accounts by gcid and by client id, faults and the request log."""

    def __init__(self, *, clock: Callable[[], float] | None = None) -> None:
        self._clock = clock or time.time
        self._offset = 0.0
        self._lock = threading.RLock()
        self._accounts: dict[str, Account] = {}  # by gcid
        self._clients: dict[str, str] = {}  # client id -> gcid
        self._faults = Faults(self._lock)
        self._log = RequestLog(self._lock, self.now, make=RequestRecord, secret_fields=SECRET_FIELDS)
        # Called after anything that may change the stream (the broker wakes up on it); never under a
        # long operation, and it must not call back into the state.
        self.on_change: Callable[[], None] | None = None

    # -- clock ------------------------------------------------------------------------------------------

    def now(self) -> float:
        return self._clock() + self._offset

    def _changed(self) -> None:
        if self.on_change is not None:
            self.on_change()

    # -- faults ------------------------------------------------------------------------------------------

    def add_fault(self, fault: Fault) -> None:
        """Make matching OAuth or REST requests fail ("error": `status`; "timeout": 504 after `delay` s) or
        answer late ("slow"); the stream fails through drop_connections and expire_tokens instead."""
        if fault.kind not in FAULT_KINDS:
            raise ValueError(f"fault kind must be one of {', '.join(FAULT_KINDS)}")
        self._faults.add_fault(fault)

    def clear_faults(self) -> None:
        self._faults.clear_faults()

    def take_fault(self, method: str, path: str) -> Fault | None:
        """The first fault matching this request, used up by one."""
        return self._faults.take_fault(method, path)

    # -- the request log --------------------------------------------------------------------------------

    @property
    def requests(self) -> list[RequestRecord]:
        return self._log.requests

    def record(
        self,
        method: str,
        path: str,
        query: dict[str, str],
        form: dict[str, str],
        gcid: str | None,
        status: int,
    ) -> None:
        self._log.record(method, path, query, form, gcid, status)

    def requests_to(self, path_fragment: str, method: str | None = None) -> list[RequestRecord]:
        return self._log.requests_to(path_fragment, method)

    def requests_json(self) -> list[dict[str, Any]]:
        return self._log.requests_json()
