"""Where the event loop stalls (the soak's `--stalls`): a daemon thread that notices when the loop has not
come back for more than THRESHOLD and then samples the loop thread's stack every INTERVAL until it does.

Each sample is charged with the time since the one before (and the loop thread's CPU time meanwhile) to a
place: the innermost frame in the bot's code (bot/) outside its store, then the store's method it called
(bot/store/), then the library frame below them when the innermost frame is a library's; a sample with no
bot frame is charged to its innermost frame outside asyncio. The garbage collector holds the GIL while it
runs, so the thread cannot sample it: its time (from gc.callbacks) is charged to "garbage collection".
"""

from __future__ import annotations

import asyncio
import gc
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

THRESHOLD = 0.04  # s the loop may stay away before it counts as a stall
INTERVAL = 0.003  # s between two samples of a stall
HEARTBEAT = 0.01  # s between the loop's beats
GC = "garbage collection"
ROOT = Path(__file__).resolve().parent.parent
BOT = str(ROOT / "bot") + "/"
STORE = BOT + "store/"
CONNECTION = STORE + "connection.py"
ASYNCIO = str(Path(asyncio.__file__).parent) + "/"


def _where(frame: FrameType) -> str:
    code = frame.f_code
    path = Path(code.co_filename)
    shown = path.relative_to(ROOT) if path.is_relative_to(ROOT) else Path(*path.parts[-2:])
    return f"{shown}:{frame.f_lineno} {code.co_name}"


def place(frame: FrameType) -> str:
    """The place a sample of the loop thread stood at (see the module's doc)."""
    innermost: FrameType | None = None  # the library's frame the bot called into, if the sample stood there
    store: FrameType | None = None  # the store's method (bot/store/, but its connection)
    caller: FrameType | None = None  # the innermost bot frame outside the store
    outside_asyncio: FrameType | None = None
    in_bot = False
    current: FrameType | None = frame
    while current is not None and caller is None:
        filename = current.f_code.co_filename
        if filename.startswith(BOT):
            in_bot = True
            if not filename.startswith(STORE):
                caller = current
            elif store is None and filename != CONNECTION:
                store = current
        elif not in_bot and innermost is None:
            innermost = current
        if outside_asyncio is None and not filename.startswith(ASYNCIO):
            outside_asyncio = current
        current = current.f_back
    parts = [where for where in (caller, store) if where is not None]
    if not parts:
        return _where(outside_asyncio or frame)
    below = f" > {_where(innermost)}" if innermost is not None else ""
    return " -> ".join(_where(where) for where in parts) + below


def entry(frame: FrameType) -> str:
    """The outermost bot frame of a sample (file and function): which of the bot's tasks held the loop."""
    outermost: FrameType | None = None
    current: FrameType | None = frame
    while current is not None:
        if current.f_code.co_filename.startswith(BOT):
            outermost = current
        current = current.f_back
    return (
        "(not the bot)"
        if outermost is None
        else _where(outermost).split(":")[0] + " " + outermost.f_code.co_name
    )


@dataclass
class Place:
    seconds: float = 0.0  # stalled there in all
    on_cpu: float = 0.0  # of which the loop's thread ran
    stalls: int = 0  # stalls that stood there
    longest: float = 0.0  # the most one stall stood there


@dataclass
class Stalls:
    """Start it on the running loop (`start`); `lines` prints the places since the last `clear`."""

    threshold: float = THRESHOLD
    places: dict[str, Place] = field(default_factory=dict)
    entries: dict[str, Place] = field(default_factory=dict)  # the same time by `entry`
    count: int = 0
    seconds: float = 0.0  # stalled in all
    on_cpu: float = 0.0  # of which the loop's thread ran (the rest: waiting for a core, or blocked)
    longest: float = 0.0
    # At each beat the loop's thread writes when the next is due, and the collector's and its own CPU time
    # then: a stall is found only once the sampler gets the GIL, after a collection that began it.
    _beat: tuple[float, float, float] = (0.0, 0.0, 0.0)
    _gc_seconds: float = 0.0  # the collector's time in all, written by the thread that collects
    _gc_started: float = 0.0
    _stop: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _beats_task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._beats_task = asyncio.create_task(self._beats(), name="soak-stall-beat")
        gc.callbacks.append(self._collected)
        loop_thread = threading.get_ident()
        threading.Thread(target=self._watch, args=(loop_thread,), name="soak-stalls", daemon=True).start()

    def stop(self) -> None:
        self._stop.set()
        if self._beats_task is not None:
            self._beats_task.cancel()
        if self._collected in gc.callbacks:
            gc.callbacks.remove(self._collected)

    async def _beats(self) -> None:
        while True:
            self._beat = (time.monotonic() + HEARTBEAT, self._gc_seconds, time.thread_time())
            await asyncio.sleep(HEARTBEAT)

    def _collected(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._gc_started = time.perf_counter()
        else:
            self._gc_seconds += time.perf_counter() - self._gc_started

    def _watch(self, loop_thread: int) -> None:
        cpu_clock = time.pthread_getcpuclockid(loop_thread)
        while not self._stop.is_set():
            beat = self._beat
            late = time.monotonic() - beat[0]
            if beat[0] == 0.0 or late <= self.threshold:
                time.sleep(max(self.threshold - late, 0.0) + INTERVAL)
                continue
            began, gc_seen, cpu_seen = beat
            cpu_began = cpu_seen
            here: dict[str, list[float]] = {}  # place: [seconds, on CPU]
            entries: dict[str, list[float]] = {}
            last = began
            while self._beat is beat and not self._stop.is_set():
                frame = sys._current_frames().get(loop_thread)
                now, gc_now, cpu_now = time.monotonic(), self._gc_seconds, time.clock_gettime(cpu_clock)
                collecting = min(gc_now - gc_seen, now - last)
                if collecting > 0:
                    _charge(here, GC, collecting, collecting)
                    _charge(entries, GC, collecting, collecting)
                if frame is not None:
                    took, ran = now - last - collecting, max(0.0, cpu_now - cpu_seen - collecting)
                    _charge(here, place(frame), took, ran)
                    _charge(entries, entry(frame), took, ran)
                del frame
                last, gc_seen, cpu_seen = now, gc_now, cpu_now
                time.sleep(INTERVAL)
            self._add(here, entries, last - began, cpu_seen - cpu_began)

    def _add(
        self, here: dict[str, list[float]], entries: dict[str, list[float]], took: float, cpu: float
    ) -> None:
        with self._lock:
            self.count += 1
            self.seconds += took
            self.on_cpu += min(cpu, took)
            self.longest = max(self.longest, took)
            for places, charged in ((self.places, here), (self.entries, entries)):
                for where, (seconds, on_cpu) in charged.items():
                    known = places.setdefault(where, Place())
                    known.seconds += seconds
                    known.on_cpu += on_cpu
                    known.stalls += 1
                    known.longest = max(known.longest, seconds)

    def lines(self, top: int = 10, top_entries: int = 6) -> list[str]:
        """The stalls, the `top` places by time stalled there, then the `top_entries` bot tasks."""
        with self._lock:
            head = (
                f"stalls over {self.threshold * 1000:.0f} ms: {self.count}, {self.seconds:.1f} s in all"
                f" ({self.on_cpu:.1f} s on CPU), longest {self.longest * 1000:.0f} ms"
            )
            return [
                head,
                *_ranked(self.places, top),
                "by the bot's outermost frame:",
                *_ranked(self.entries, top_entries),
            ]

    def clear(self) -> None:
        with self._lock:
            self.places.clear()
            self.entries.clear()
            self.count, self.seconds, self.on_cpu, self.longest = 0, 0.0, 0.0, 0.0


def _charge(here: dict[str, list[float]], where: str, seconds: float, on_cpu: float) -> None:
    known = here.setdefault(where, [0.0, 0.0])
    known[0] += seconds
    known[1] += min(on_cpu, seconds)


def _ranked(places: dict[str, Place], top: int) -> list[str]:
    ranked = sorted(places.items(), key=lambda item: -item[1].seconds)[:top]
    return [
        f"  {p.seconds:6.2f} s ({p.on_cpu:.2f} on CPU) {p.stalls:4d}x max {p.longest * 1000:4.0f} ms {where}"
        for where, p in ranked
    ]
