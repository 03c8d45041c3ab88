"""The soak's world (benchmarks/soak.py): both BMW simulators, the CarData broker and the Bot API sandbox in a
process of their own, the owners' scripted days, the faults, and the ground truth the bot is judged by.

The bot's process steers it through a pipe, one simulated step at a time: "step" advances both simulators'
clocks to the step's end, does what the owners' scripts and the fault schedule say happens then (as
Telegram users through the sandbox, as drivers through the simulators), and answers with the simulated
time. Nothing here knows the bot's code: it sees only what BMW and Telegram would see. With `--kill` the
bot runs in processes of its own, each with its own connection here (a Unix socket): one killed mid-request
takes its half-read reply with it, and the next one starts on a clean connection.
"""

from __future__ import annotations

import math
import queue
import random
import re
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, Listener, wait
from pathlib import Path
from typing import Any

from babel.messages.pofile import read_po

from bot.bmw.simulator import Simulator, fleet
from bot.bmw.simulator.faults import Fault
from bot.cardata.simulator import CardataBroker, CardataSimulator, i3_bev
from bot.sandbox import BotApiServer, Sandbox
from bot.sandbox.driver import ChatMessage, SandboxUser
from bot.servers import BackgroundServer

BOT_TOKEN = "123456789:soak-token"
PASSWORD = "soak-password"
ANSWER = "Rex the dog"  # the security answer of the i Remote accounts that have one
DAY = 86_400
UNLIMITED = 1_000_000  # connections a minute: the broker's per-IP limit is off (see README)
# The bot's sentences as its English users read them (bot/chat/texts, copied: the world knows no bot code);
# the German ones are read from the catalogue. A charge's end (texts.CHARGE_HEADLINES "full", "early",
# "error", "interrupted"):
ENDS = (
    "🔋 {car} has finished charging.",
    "🔌 {car} stopped charging before it was full.",
    "⚠️ {car} stopped charging with an error.",
    "⚠️ Charging of {car} was interrupted.",
)
ALERTS = {  # texts.ALERT_TEXTS' pushes, by kind
    "level": "🔋 {car} has reached {soc} (your alert: {value} %).",
    "stall": "🔌 {car} is plugged in but has not been charging for {value} min.",
    "plug": "🔌 Plug in {car}? It is at {soc}, below your {value} %, and not plugged in.",
    "open": "⚠️ {car} has been parked for {value} min and is not closed up:",
}
RELINK = (  # texts.CARDATA_RELINK_PUSH
    "🔑 BMW CarData no longer accepts the link to your car (unused for two weeks, or revoked), so I receive "
    "nothing from it and won't send charging messages. Please /link again."
)
CATALOGUE = Path(__file__).resolve().parents[1] / "bot" / "locale" / "de" / "LC_MESSAGES" / "bot.po"
LANGUAGE_BUTTONS = {"en": "English", "de": "Deutsch"}  # /settings names each language in its own (Babel's)
MILES, KM = "miles", "km"  # /settings' unit buttons (texts.UNIT_BUTTONS)
# The owners' changes (point 1 of issue 20), each on a day drawn from the seed, in the afternoon (before the
# evening's charge): which owners, by their place in the list (co-owners never: their car is another's).
SETTINGS_EVERY = (10, 2)  # n % 10 == 2: German and miles, English and km again the next late morning
ALERTS_EVERY = (10, 4)  # the charge-level alert on, at a level their evening charge will cross
ALERTS_FAMILY = (40, 7)  # also the person their car is shared with (n % 20 == 7 share one)
UNLINKS = (
    (10, 6),
    (40, 18),
    (40, 27),
)  # /unlink, /link again 1-2 h later (18: a co-owner follows; 27: family)
AFTERNOON = (12 * 3600, 16 * 3600 + 1800)  # when they do it (seconds of the day)
# The level an owner sets is this far above the car's charge then: the bot sees a charge start at its first
# reading, which for i Remote is the watcher's next idle poll (15 min at the simulator's 1 %/min).
LEVEL_MARGIN = {"iremote": 20, "cardata": 2}
# An unlocked car is told "left open" 10 min after (AlertPrefs' default, on for everyone), seen at the
# watcher's next idle poll (15 min): locked again sooner, it may or may not be told.
IDLE_POLL = 15 * 60  # the watcher's poll of a car not charging (bot IDLE_POLL_SECONDS)
OPEN_SURE = (10 + 15 + 10) * 60
LEVEL_STEP, LEVEL_DEFAULT = 5, 80  # /alerts' ➖ ➕ of the charge level, and where it starts
LEVEL_BUTTON = "Charge level"  # texts.ALERT_TEXTS[LEVEL].name
# The /link and /unlink exchanges (texts/link.py, texts/link_cardata.py): what the bot says -> the answer.
UNLINK_ASK, UNLINK_YES, UNLINK_DONE = (
    "Remove your BMW account",
    "Yes, remove everything",
    "all its data are gone",
)
LINK_BACKEND = "How should I reach your BMW?"
BACKEND_BUTTONS = {"iremote": "i Remote API", "cardata": "BMW CarData"}
MENU_BUTTONS = {"settings": LANGUAGE_BUTTONS["de"], "alerts": LEVEL_BUTTON, "unlink": UNLINK_YES}  # its menu
LINKED = ("Linked! I found", "Linked with BMW CarData")
CODE_EXPIRED, TRY_AGAIN = "The code expired before it was confirmed", "Try again"


@dataclass
class Owner:
    tg_id: int
    backend: str  # "iremote" or "cardata"
    login: str  # i Remote user name, or CarData client id
    vin: str
    kind: str = "quiet"  # CarData cars: "quiet" (every i3) or "live"
    co_owner_of: int | None = None  # CarData: linked to that owner's BMW account and car
    member: int | None = None  # a person the car is shared with (store shares)
    security_answer: bool = False
    gcid: str | None = None  # CarData: the BMW account's

    def describe(self) -> dict[str, Any]:
        return self.__dict__.copy()


class Words:
    """The bot's sentences in either language: the English as written here, the German from the catalogue
    (a sentence it lacks is a LookupError: the soak would miscount it)."""

    def __init__(self) -> None:
        with CATALOGUE.open("rb") as catalogue:
            self._german = read_po(catalogue)
        sentences = [("end", end) for end in ENDS] + list(ALERTS.items()) + [("relink", RELINK)]
        self._patterns = {
            language: [(what, self.pattern(english, language)) for what, english in sentences]
            for language in ("en", "de")
        }

    def german(self, english: str) -> str:
        message = self._german.get(english)
        if message is None or not message.string:
            raise LookupError(f"no German for {english!r} in {CATALOGUE.name}")
        return str(message.string)

    def pattern(self, english: str, language: str) -> re.Pattern[str]:
        """A push's text that begins with this sentence, its {fields} anything."""
        words = english if language == "en" else self.german(english)
        return re.compile(".*?".join(re.escape(part) for part in re.split(r"\{\w+\}", words)), re.DOTALL)

    def kind(self, text: str) -> tuple[str, str] | None:
        """What a push is ("end", an alert's kind, "relink") and in which language, or None."""
        for language in ("en", "de"):
            for what, pattern in self._patterns[language]:
                if pattern.match(text):
                    return what, language
        return None


@dataclass
class Plan:
    """An owner's changes during the soak (absolute simulated times; None: not done)."""

    settings_at: float | None = None  # German and miles
    settings_back_at: float | None = None  # English and km
    alerts_at: float | None = None
    unlink_at: float | None = None
    relink_at: float | None = None


@dataclass
class Charge:
    """An i Remote charge as the world scripted it (CarData's are in the simulator's own history)."""

    start: float
    soc_start: int
    end: float | None = None
    soc_end: int | None = None


@dataclass
class Interaction:
    """One owner's chat exchange in progress (an unlock, a Refresh, /settings, /alerts, /unlink, /link): the
    next bot words it waits for."""

    user: SandboxUser
    kind: str
    stage: str
    since: int  # the step it started
    seen: int  # the bot's messages in that chat before it
    owner: Owner | None = None  # whose change it is
    message: ChatMessage | None = None  # the menu or flow message the bot edits as it goes
    target: Any = None  # what it sets: a language, an alert level


@dataclass
class Kill:
    """A bot process SIGKILLed: when (wall and simulated time), and the i Remote cars charging then."""

    wall: float
    simulated: float
    iremote_charging: set[str]


@dataclass
class World:
    owners: int
    seed: int
    steps: int  # scripted steps; then every car is parked
    step_seconds: int
    faults: bool
    rng: random.Random = field(init=False)
    people: list[Owner] = field(default_factory=list)
    interactions: list[Interaction] = field(default_factory=list)
    commands: int = 0  # remote commands the owners confirmed in the chat
    chats: Counter[str] = field(default_factory=Counter)  # chat exchanges by kind and outcome
    faults_done: list[str] = field(default_factory=list)
    executes: int = 0  # remote commands that reached BMW's i Remote API
    bmw_calls: Counter[str] = field(default_factory=Counter)  # since the last `calls`, by kind
    cardata_calls: Counter[str] = field(default_factory=Counter)
    cardata_per_account: Counter[str | None] = field(default_factory=Counter)
    cardata_429: int = 0
    # CarData cars whose account's tokens BMW revoked: their charges recorded by then (ends after it cannot
    # reach the bot until the owner links again, which the script does not do).
    revoked: dict[str, int] = field(default_factory=dict)
    kill: Kill | None = None
    plans: dict[int, Plan] = field(default_factory=dict)  # by owner
    charges: dict[str, list[Charge]] = field(default_factory=dict)  # i Remote VIN -> its charges
    # Chat -> when its owner's account was gone: [unlinked at, linked again at (inf until then)]
    unlinked: dict[int, list[float]] = field(default_factory=dict)
    german: dict[int, list[float]] = field(default_factory=dict)  # chat -> [German since, English again]
    alerts_on: dict[int, tuple[int, float]] = field(default_factory=dict)  # chat -> (level, since)
    unlocked: dict[str, float] = field(default_factory=dict)  # i Remote VIN -> left unlocked since
    opened: dict[str, list[tuple[float, float]]] = field(default_factory=dict)  # VIN -> (unlocked, locked)
    switched_off: dict[str, list[int]] = field(default_factory=dict)  # CarData VIN -> when (its bursts)
    acted: int | None = None  # the simulated minute (since the epoch) the last step's `act` came at

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)
        self.bmw = Simulator(service_seconds=6.0)
        # No linger of a closed stream (BMW's 5 s, simulated): the bot's retry after a CONNACK 5 is on the
        # wall clock, where 10 s stand for many simulated minutes here (see README).
        self.cardata = CardataSimulator(auto_approve_seconds=0, daily_quota=50, stream_linger=0.0)
        self.telegram = BotApiServer(flood_limit_per_second=30.0)
        self.telegram.add_bot(BOT_TOKEN)
        self.sandbox = Sandbox(self.telegram, BOT_TOKEN)
        self.history_before: dict[str, int] = {}
        self.broker: CardataBroker | None = None  # set by `serve`: its record of messages nobody heard
        self.running: dict[str, Charge] = {}  # i Remote VIN -> its charge running
        self.words = Words()
        self.start = 0.0  # the simulated time the soak began at
        self.step = 0
        self.stamps: list[tuple[float, float]] = []  # (wall, simulated) time at each step: when a push came

    # -- the owners --------------------------------------------------------------------------------------

    def populate(self) -> None:
        """Half i Remote (one i3 each, a few with a security answer), half CarData (quiet i3s, one in five
        a live car, one in ten a co-owner of the previous owner's account); one in twenty shares a car."""
        first = 100_000
        half = self.owners // 2
        for i in range(half):
            login, vin = f"soak{i}@example.com", f"WBY1Z21000V{i:06d}"
            answer = i % 5 == 0
            self.bmw.add_account(
                login,
                PASSWORD,
                vehicles=[fleet.i3_bev(vin, now=self.bmw.now())],
                security_answer=ANSWER if answer else None,
            )
            self.bmw.set_status(vin, chargingLevelHv=self.rng.randint(40, 80))
            self.people.append(Owner(first + i, "iremote", login, vin, security_answer=answer))
        for j in range(self.owners - half):
            tg_id = first + half + j
            previous = self.people[-1] if self.people else None
            if j % 10 == 9 and previous is not None and previous.backend == "cardata":
                self.people.append(
                    Owner(
                        tg_id,
                        "cardata",
                        previous.login,
                        previous.vin,
                        previous.kind,
                        previous.tg_id,
                        gcid=previous.gcid,
                    )
                )
                continue
            kind = "live" if j % 5 == 4 else "quiet"
            client_id, vin = f"soak-client-{j:05d}", f"WBY8P2C0{j:09d}"
            gcid, _ = self.cardata.add_account(client_id, cars=[i3_bev(vin, kind)])
            self.people.append(Owner(tg_id, "cardata", client_id, vin, kind, gcid=gcid))
        for n, person in enumerate(self.people):
            if n % 20 == 7 and person.co_owner_of is None:
                person.member = first + 500_000 + n
        for person in self.people:  # each has talked to the bot: their chats exist
            self.telegram.user_message(BOT_TOKEN, person.tg_id, text="/start")
            if person.member is not None:
                self.telegram.user_message(BOT_TOKEN, person.member, text="/start")
        self.history_before = {p.vin: len(self.cardata.car(p.vin).history) for p in self.cardata_cars()}

    def cardata_cars(self) -> list[Owner]:
        return [p for p in self.people if p.backend == "cardata" and p.co_owner_of is None]

    # -- a step ------------------------------------------------------------------------------------------

    def advance(self, step: int) -> float:
        """Both clocks to the end of step `step`."""
        if step == 0:
            self.start = self.cardata.now()
            self._plan()
        self.step = step
        self.bmw.advance(self.step_seconds)
        self.cardata.advance(self.step_seconds)
        self.stamps.append((time.time(), self.cardata.now()))
        self.count()
        return self.cardata.now()

    def act(self) -> int:
        """What happens at the end of the step: the owners' days, the chats, the faults. Answers with the
        number of cars charging then."""
        step, now = self.step, self.cardata.now()
        # The minutes of the day since the last step's: the simulators' clocks run on with the wall clock
        # between steps, so a step is a little longer than step_seconds (a fixed width skipped a minute
        # now and then, and what the owners' days or the faults had set for it).
        minute = int(now // 60)
        since = minute - self.step_seconds // 60 if self.acted is None else self.acted
        covered = {m % (DAY // 60) for m in range(since + 1, minute + 1)}
        self.acted = minute
        self._charged_full()
        if step < self.steps:
            busy = {it.user.id for it in self.interactions}
            for person in self.people:
                self._live(person, covered, busy)
                self._change(person, now)
        elif step == self.steps:
            self._park()
        self._interact()
        if self.faults:
            self._faults(covered)
        return sum(self._charging(p) for p in self.people if p.co_owner_of is None)

    def _live(self, p: Owner, now_in: set[int], busy: set[int]) -> None:
        """One owner's day, decided per owner and day from the seed: a drive in the morning, a charge in the
        evening (to 100 %, or stopped short around 80 %), /status now and then, an unlock about weekly; no
        chat of it while the owner is in another exchange (`busy`), unlinked, or reads German (the words it
        waits for are English)."""
        day = int(self.cardata.now() // DAY)
        plan = random.Random(hash((self.seed, p.tg_id, day)))
        drive_at = plan.randint(6 * 60, 10 * 60)
        plug_at = plan.randint(17 * 60, 21 * 60)
        short = plan.random() < 0.4
        status_at = {plan.randint(7 * 60, 23 * 60) for _ in range(plan.randint(1, 3))}
        unlock = plan.random() < 1 / 7
        unlock_at = plan.randint(9 * 60, 16 * 60)
        if p.co_owner_of is None:
            if drive_at in now_in:
                self._drive(p, plan.randint(10, 35))
            if plug_at in now_in:
                self._plug(p)
            if short and (plug_at + plan.randint(20, 40)) in now_in:
                self._unplug(p)  # stopped short
        if p.tg_id in busy or self._away(p.tg_id):
            return
        if any(m in now_in for m in status_at):
            user = self.sandbox.user(p.tg_id, f"Owner{p.tg_id}")
            seen = len(user.bot_messages)
            user.send("/status")
            self.chats["/status sent"] += 1
            if p.backend == "cardata" and plan.random() < 0.3:
                self.interactions.append(Interaction(user, "refresh", "status", self.step, seen))
        if unlock and p.backend == "iremote" and unlock_at in now_in:
            user = self.sandbox.user(p.tg_id, f"Owner{p.tg_id}")
            seen = len(user.bot_messages)
            user.send("/unlock")
            self.interactions.append(Interaction(user, "unlock", "ask", self.step, seen, p))

    def _park(self) -> None:
        """The soak's end: every car unplugged and switched off, so every charge has ended and reported."""
        for p in self.people:
            if p.co_owner_of is None:
                self._unplug(p)
                if p.backend == "cardata":
                    self._switch_off(p)

    def _drive(self, p: Owner, used: int) -> None:
        if p.backend == "iremote":
            if p.vin in self.running or self._bmw_plugged(p.vin):
                self._unplug(p)
            if p.vin in self.unlocked:  # the driver locks it when leaving again
                self.opened.setdefault(p.vin, []).append((self.unlocked.pop(p.vin), self.bmw.now()))
                self.bmw.set_status(p.vin, doorLockState="SECURED")
            soc = float(self.bmw.vehicle(p.vin).soc)
            self.bmw.set_status(p.vin, chargingLevelHv=max(5, int(soc) - used))
        else:
            car = self.cardata.car(p.vin)
            if car.plugged:
                self.cardata.unplug(p.vin)
            self.cardata.set_soc(p.vin, max(5.0, car.soc - used))
            self._switch_off(p)

    def _switch_off(self, p: Owner) -> None:
        """A CarData car switched off: the burst a quiet i3 sends then (its only report of a charge it stopped
        short, docs/cardata.md)."""
        self.cardata.switch_off(p.vin)
        self.switched_off.setdefault(p.vin, []).append(math.floor(self.cardata.now()))  # as its history

    def _plug(self, p: Owner) -> None:
        if p.backend == "iremote":
            self.bmw.plug_in(p.vin, charging=True)
            charge = Charge(self.bmw.now(), int(self.bmw.vehicle(p.vin).soc))
            self.running[p.vin] = charge  # it ends: full, or unplugged (every charge ends by the next drive)
            self.charges.setdefault(p.vin, []).append(charge)
        else:
            self.cardata.plug_in(p.vin, charging=True)

    def _unplug(self, p: Owner) -> None:
        if p.backend == "iremote":
            self._charge_over(p.vin)
            self.bmw.unplug(p.vin)
        else:
            self.cardata.unplug(p.vin)

    def _bmw_plugged(self, vin: str) -> bool:
        return self.bmw.vehicle(vin).status.get("connectionStatus") == "CONNECTED"

    def _charge_over(self, vin: str) -> None:
        """An i Remote charge ends (full, or unplugged): when, and at what level."""
        charge = self.running.pop(vin, None)
        if charge is not None:
            charge.end, charge.soc_end = self.bmw.now(), int(self.bmw.vehicle(vin).soc)

    def _charged_full(self) -> None:
        """The i Remote charges that ended full, and the cars an unlock left open (the simulator's record)."""
        for vin in [
            vin for vin in self.running if self.bmw.vehicle(vin).status.get("chargingStatus") != "CHARGING"
        ]:
            self._charge_over(vin)
        now = self.bmw.now()
        for p in self.people:
            if p.backend == "iremote" and self.bmw.vehicle(p.vin).status.get("doorLockState") == "UNLOCKED":
                self.unlocked.setdefault(p.vin, now)

    # -- the owners' changes -----------------------------------------------------------------------------

    def _plan(self) -> None:
        """Each owner's changes (`SETTINGS_EVERY`, `ALERTS_EVERY`, `UNLINKS`) on a day drawn from the seed,
        in its afternoon, among the days whose evening (its charge) the soak covers."""
        end = self.start + self.steps * self.step_seconds
        midnight = self.start - self.start % DAY
        afternoons = []
        for day in range(int((end - midnight) // DAY) + 1):
            at = midnight + day * DAY
            earliest = max(at + AFTERNOON[0], self.start + self.step_seconds)
            if earliest <= at + AFTERNOON[1] and at + 22 * 3600 <= end:
                afternoons.append((earliest, at + AFTERNOON[1]))
        if not afternoons:
            return
        for n, p in enumerate(self.people):
            if p.co_owner_of is not None:
                continue
            draw = random.Random(hash((self.seed, p.tg_id, 1)))
            at = draw.uniform(*draw.choice(afternoons))
            plan = Plan()
            if _every(n, SETTINGS_EVERY):
                plan.settings_at = at
                back = at - at % DAY + DAY + draw.uniform(11 * 3600, 12 * 3600)  # the next late morning
                plan.settings_back_at = back if back < end else None
            elif _every(n, ALERTS_EVERY) or (_every(n, ALERTS_FAMILY) and p.member is not None):
                if p.backend == "iremote" or p.kind == "live":  # a quiet car's level is not known exactly
                    plan.alerts_at = at
            elif any(_every(n, every) for every in UNLINKS) and p.vin not in self.revoked:
                plan.unlink_at, plan.relink_at = at, at + draw.uniform(3600, 7200)
            if plan != Plan():
                self.plans[p.tg_id] = plan

    def _change(self, p: Owner, now: float) -> None:
        plan = self.plans.get(p.tg_id)
        if plan is None:
            return

        def due(at: float | None) -> bool:
            return at is not None and now - self.step_seconds < at <= now

        if due(plan.settings_at):
            self._begin(p, p.tg_id, "settings", "de")
        if due(plan.settings_back_at):
            self._begin(p, p.tg_id, "settings", "en")
        if due(plan.alerts_at):
            level = self._level(p)
            for chat in (p.tg_id, p.member):
                if chat is not None:
                    self._begin(p, chat, "alerts", level)
        if due(plan.unlink_at) and p.vin not in self.revoked:
            self._begin(p, p.tg_id, "unlink")
        if due(plan.relink_at) and p.tg_id in self.unlinked:
            self._begin(p, p.tg_id, "link")

    def _begin(self, p: Owner, chat: int, kind: str, target: Any = None) -> None:
        user = self.sandbox.user(chat, f"Owner{chat}")
        seen = len(user.bot_messages)
        user.send(f"/{kind}")
        self.interactions.append(Interaction(user, kind, "menu", self.step, seen, p, target=target))

    def _level(self, p: Owner) -> int:
        """The charge-level alert an owner sets: a step of /alerts' 5 % above the car's charge now and the
        margin within which the bot may first see the charge, at most the level the charge stops at."""
        if p.backend == "iremote":
            soc, top = float(self.bmw.vehicle(p.vin).soc), 100
        else:
            car = self.cardata.car(p.vin)
            soc, top = car.soc, int(car.target)
        return min(top, LEVEL_STEP * math.ceil((soc + LEVEL_MARGIN[p.backend] + LEVEL_STEP) / LEVEL_STEP))

    def _away(self, chat: int) -> bool:
        """Unlinked, or reading German."""
        return any(
            chat in windows and windows[chat][1] == math.inf for windows in (self.unlinked, self.german)
        )

    def _interact(self) -> None:
        """Move each chat exchange on when the bot has answered (its words since the exchange began); one
        silent for 30 steps counts as unanswered."""
        going = []
        for it in self.interactions:
            said = it.user.bot_messages[it.seen :]
            last = said[-1] if said else None
            if it.kind in ("settings", "alerts", "unlink", "link") and self._exchange(it, said):
                continue
            if it.kind == "refresh" and last is not None and _has(last, "Refresh"):
                it.user.press(last, "Refresh")
                self.chats["refresh pressed"] += 1
                continue
            if it.kind == "unlock":
                if any("is unlocked" in (m.text or "") for m in said):
                    self.chats["unlock done"] += 1
                    continue
                asked = next((m for m in said if "Make sure" in (m.text or "")), None)
                if it.stage == "ask" and asked is not None:
                    it.user.press(asked, "Yes, unlock")
                    self.commands += 1
                    it.stage = "sent"
                elif it.stage == "sent" and any("security question" in (m.text or "") for m in said):
                    it.user.send(ANSWER)
                    it.stage = "answered"
                elif it.stage != "remembered" and (
                    remember := next((m for m in said if "Remember the security" in (m.text or "")), None)
                ):
                    it.user.press(remember, "No")
                    it.stage = "remembered"
            if self.step - it.since > 30:
                backend = "" if it.owner is None else f" ({it.owner.backend})"
                words = (last.text or "")[:50] if last is not None else "nothing"
                self.chats[f"{it.kind} unanswered at {it.stage}{backend}, last: {words!r}"] += 1
                continue
            going.append(it)
        self.interactions = going

    def _exchange(self, it: Interaction, said: list[ChatMessage]) -> bool:
        """One step of /settings, /alerts, /unlink or /link: whether it is over."""
        now, chat = self.cardata.now(), it.user.id
        if it.stage == "menu" and it.kind in ("settings", "alerts", "unlink"):
            menu = next((m for m in said if _has(m, MENU_BUTTONS[it.kind])), None)
            if menu is None:
                return False
            it.message, it.stage = menu, "pressed"
            if it.kind == "settings":  # units first: their label changes with the language
                it.user.press(menu, MILES if it.target == "de" else KM)
                it.user.press(menu, LANGUAGE_BUTTONS[it.target])
                # German no more (from about now); a switch to German the soak never saw confirmed (its
                # exchange given up on, under load or across a restart) left no window to close.
                if it.target == "en" and chat in self.german:
                    self.german[chat][1] = now
            elif it.kind == "alerts":
                it.user.press(menu, LEVEL_BUTTON)
                steps = (it.target - LEVEL_DEFAULT) // LEVEL_STEP
                for _ in range(abs(steps)):
                    it.user.press(menu, f"{'➕' if steps > 0 else '➖'} {LEVEL_STEP} %")
            else:
                it.user.press(menu, UNLINK_YES)
                self.unlinked[chat] = [now, math.inf]
            return False
        if it.kind == "link":
            return self._link(it, said, now)
        assert it.message is not None
        shown = it.user.now(it.message)
        buttons = {b.text for row in shown.buttons for b in row}
        if it.kind == "settings":
            unit = self.words.german(MILES) if it.target == "de" else KM
            if not {f"✅ {LANGUAGE_BUTTONS[it.target]}", f"✅ {unit}"} <= buttons:
                return False
            if it.target == "de":
                self.german[chat] = [now, math.inf]
        elif it.kind == "alerts":
            if f"✅ {LEVEL_BUTTON}: {it.target} %" not in buttons:
                return False
            self.alerts_on[chat] = (it.target, now)
        elif UNLINK_DONE not in (shown.text or ""):
            return False
        self.chats[{"settings": f"settings {it.target}", "alerts": "alert on"}.get(it.kind, "unlinked")] += 1
        return True

    def _link(self, it: Interaction, said: list[ChatMessage], now: float) -> bool:
        """/link again through the chat, as the owner did the first time: i Remote's region, e-mail and
        password; CarData's client id (the simulator approves the device flow's code at once)."""
        assert it.owner is not None
        answers = {
            "menu": (
                LINK_BACKEND,
                BACKEND_BUTTONS[it.owner.backend],
                "region" if it.owner.backend == "iremote" else "client",
            ),
            "region": ("Where is your ConnectedDrive account registered?", "Europe / Rest of World", "email"),
            "email": ("Your ConnectedDrive e-mail address?", None, "password"),
            "password": ("And your ConnectedDrive password?", None, "linking"),
            "client": ("Send me the client's", None, "linking"),
        }
        if it.stage == "linking":
            # A code expires after 5 simulated minutes, a step here: a flow that straddles one is told so, and
            # the owner tries again, as anyone would.
            expired = next((m for m in said if CODE_EXPIRED in (m.text or "") and _has(m, TRY_AGAIN)), None)
            if expired is not None and it.target != (expired.message_id, expired.edits):
                it.user.press(expired, TRY_AGAIN)
                it.target = (expired.message_id, expired.edits)
                self.chats["link: code expired, tried again"] += 1
                return False
            if not any(linked in (m.text or "") for m in said for linked in LINKED):
                return False
            self.unlinked[it.user.id][1] = now
            self.chats["linked again"] += 1
            return True
        words, button, then = answers[it.stage]
        asked = next((m for m in said if words in (m.text or "")), None)
        if asked is None:
            return False
        if button is not None:
            it.user.press(asked, button)
        else:
            it.user.send(it.owner.login if it.stage in ("email", "client") else PASSWORD)
        it.stage = then
        return False

    # -- faults ------------------------------------------------------------------------------------------

    def _faults(self, hit: set[int]) -> None:
        """The schedule, by the minute of the simulated day (point 2 of issue 20): BMW i Remote 500s at
        03:00, its tokens revoked for one account in twenty at 03:30 (the bot logs in again with the stored
        password), CarData's for one account in twenty-five at 04:00 (its owners must link again: told once),
        a hang at 11:00, the broker dropping everyone at 13:00, another app holding one account's stream in
        twenty from 15:00 to 16:00, Telegram answering 502 to 20 sendMessage calls at 19:30 (charge ends);
        `hit`: the minutes of the day the step covered."""
        if 3 * 60 in hit:
            self.bmw.add_fault(Fault(r"/status$", "error", status=500, times=50))
            self.faults_done.append("bmw 500 x50")
        if 3 * 60 + 30 in hit:
            logins = [p.login for p in self.people if p.backend == "iremote"][3::20]
            for login in logins:
                self.bmw.expire_tokens(login)
                self.bmw.revoke_refresh_tokens(login)
            self.faults_done.append(f"i Remote tokens revoked for {len(logins)} accounts")
        if 4 * 60 in hit and not self.revoked:
            cars = self.cardata_cars()[4::25]
            for p in cars:
                if p.gcid is not None:
                    self.cardata.revoke_refresh_tokens(p.gcid)
                    self.revoked[p.vin] = len(self.cardata.car(p.vin).history)
            self.faults_done.append(f"CarData tokens revoked for {len(self.revoked)} accounts")
        if 19 * 60 + 30 in hit:
            self.telegram.inject("sendMessage", "error", times=20, status=502)
            self.faults_done.append("telegram 502 x20")
        if 11 * 60 in hit:
            self.bmw.add_fault(Fault(r"/status$", "timeout", delay=20.0, times=5))
            self.faults_done.append("bmw hang x5")
        if 13 * 60 in hit:
            self.cardata.drop_connections()
            self.faults_done.append("broker drops everyone")
        held = [p.gcid for p in self.cardata_cars() if p.gcid is not None][::20]
        if 15 * 60 in hit:
            for gcid in held:
                self.cardata.hold_stream(gcid)
            self.faults_done.append(f"another app holds {len(held)} streams")
        if 16 * 60 in hit:
            for gcid in held:
                self.cardata.release_stream(gcid)

    # -- the ground truth --------------------------------------------------------------------------------

    def tally(self) -> dict[str, Any]:
        """Pushes expected per chat from the simulators' ended charges (each to its owners and the person it
        is shared with) and alert conditions (a charge that crossed a level an owner had set), against those
        delivered (the sandbox's accepted sendMessages), in English or German; commands sent to BMW vs
        confirmed in the chat. An end or a crossing the bot may or may not push (within two steps of an
        /unlink or a re-link, or of the level the bot may first see a charge at) is `maybe`: pushed or not,
        both are right."""
        self.count()
        ends = Expected()
        alerts_expected = {kind: Expected() for kind in ALERTS}  # stall and plug: none (see README)
        levels, opens = alerts_expected["level"], alerts_expected["open"]
        margin = 2 * self.step_seconds
        for p in self.people:
            gone = self.unlinked.get(p.tg_id)
            for told, _, presence in self._told(p):
                ends.add(told, presence)
            for unlocked, locked in self._opened(p):
                # "Left open" after 10 min, seen at the watcher's next poll (15 min); an /unlink forgets that
                # it was told: after the re-link it may be told again.
                until = locked if gone is None or gone[0] < unlocked else min(locked, gone[0])
                sure = until - unlocked > OPEN_SURE
                opens.add(p.tg_id, "yes" if sure else "maybe")
                if gone is not None and unlocked < gone[0] and gone[1] < locked:
                    opens.add(p.tg_id, "maybe")
                if p.member is not None:
                    member = _presence(None if gone is None else [gone[0], math.inf], unlocked, margin)
                    opens.add(p.member, "maybe" if member == "yes" and not sure else member)
            for chat in (p.tg_id, p.member):
                if chat in self.alerts_on:
                    level, since = self.alerts_on[chat]
                    for start, end, soc_start, soc_end in self._charges(p):
                        crossing = _crossing(soc_start, soc_end, level, LEVEL_MARGIN[p.backend])
                        if start > since:
                            levels.add(chat, crossing)
                        elif end > since and crossing != "no":  # switched on during it: told or not
                            levels.add(chat, "maybe")
        delivered: Counter[int] = Counter()
        alerts_delivered: dict[str, Counter[int]] = {kind: Counter() for kind in ALERTS}
        said: dict[int, list[str]] = {}  # the end and alert pushes per chat, with the step they came in
        alerts: Counter[str] = Counter()
        relinks: Counter[int] = Counter()
        german, wrong_language = 0, 0  # ends pushed while their owner had German chosen, and not in German
        for call in self.telegram.calls_to("sendMessage"):
            if not call.ok:
                continue
            text = str(call.params.get("text") or "")
            chat = int(call.params.get("chat_id") or 0)
            kind = self.words.kind(text)
            if kind is None:
                continue
            what, language = kind
            if what == "end":
                delivered[chat] += 1
                said.setdefault(chat, []).append(f"{_step_at(self.stamps, call.time)} {text[:160]!r}")
                window = self.german.get(chat)
                if window is not None and window[0] < _sim_at(self.stamps, call.time) < window[1]:
                    german += 1
                    wrong_language += language != "de"
            elif what == "relink":
                relinks[chat] += 1
            else:
                alerts[what] += 1
                alerts_delivered[what][chat] += 1
                said.setdefault(chat, []).append(f"{_step_at(self.stamps, call.time)} {text[:160]!r}")
        # Reports (bursts) the broker published while the car's account had no stream: QoS 0 lost them.
        bursts = {(m.vin, m.time) for m in (self.broker.unheard if self.broker is not None else [])}
        unheard = Counter(vin for vin, _ in bursts)
        vin_of = {p.tg_id: p.vin for p in self.people} | {p.member: p.vin for p in self.people if p.member}
        backend = {p.tg_id: p.backend + ("/" + p.kind if p.backend == "cardata" else "") for p in self.people}
        missed = ends.missed(delivered, backend)
        refused = Counter(c.error_code for c in self.telegram.calls if not c.ok)
        revoked = {p.tg_id for p in self.people if p.backend == "cardata" and p.vin in self.revoked}
        return {
            **ends.figures(delivered),
            "lost_unheard": sum(
                min(max(0, ends.must[c] - delivered[c]), unheard[vin_of.get(c, "")])
                for c in ends.chats(delivered)
            ),
            "alerts": {kind: alerts_expected[kind].figures(alerts_delivered[kind]) for kind in ALERTS},
            "alerts_by_kind": dict(alerts),
            # A chat told too much or too little, and what it was told (charge ends and alerts, when)
            "alerts_missed": {
                kind: [(*chat, said.get(chat[0], [])) for chat in off]
                for kind in ALERTS
                if (off := alerts_expected[kind].missed(alerts_delivered[kind], backend))
            },
            "alert_owners": len(self.alerts_on),
            "german_ends": german,
            "german_wrong": wrong_language,
            "german_owners": len(self.german),
            "unlinked": len(self.unlinked),
            "relinked": sum(window[1] < math.inf for window in self.unlinked.values()),
            "missed": missed[:20],
            # What a chat told too little or too much was told, and its car's charges: enough to tell a
            # harness miscount from a bot pushing one end twice or none.
            "missed_detail": {
                c: {"pushes": said.get(c, []), "charges": self._charges_told(vin_of[c], backend.get(c, ""))}
                for c, *_ in missed[:20]
            },
            "refusals": sorted({str(c.description)[:80] for c in self.telegram.calls if not c.ok})[:10],
            "relink_told_once": sum(relinks[c] == 1 for c in revoked),
            "relink_revoked": len(revoked),
            "relink_wrong": sum(n for c, n in relinks.items() if c not in revoked or n > 1),
            "commands_confirmed": self.commands,
            "commands_sent": self.executes,
            "kill": self._across_the_kill(backend),
            "telegram_refused": dict(refused),
            "chats": dict(self.chats),
            "faults": list(self.faults_done),
        }

    def killed(self, wall: float) -> dict[str, Any]:
        """A bot process was SIGKILLed at wall time `wall` (between two steps: the simulators' state is the
        last step's). Noted for `tally`; answers with the charge-end pushes Telegram had accepted by then."""
        self.kill = Kill(
            wall,
            self.cardata.now(),
            {p.vin for p in self.people if p.backend == "iremote" and self._charging(p)},
        )
        pushed = [t for t in self._end_pushes() if t <= wall]
        return {
            "at": hhmm(self.kill.simulated),
            "pushes": len(pushed),
            "last_second": sum(t > wall - 1 for t in pushed),
        }

    def _across_the_kill(self, backend: dict[int, str]) -> dict[str, Any] | None:
        """The charges running at the kill (i Remote: charging then; CarData: a session of the car's history
        that began before it and ended after): per chat told of them (owners, co-owners, family members),
        their ends after the kill, judged as the whole tally judges them (`_told`: a family member's share
        ended by an /unlink, a charge the bot may not see), against the end pushes Telegram accepted after
        it."""
        kill = self.kill
        if kill is None:
            return None
        expected = Expected()
        cars = 0
        for p in self.people:
            if p.backend == "iremote":
                running = p.vin in kill.iremote_charging
            else:
                running = any(s["startTime"] <= kill.simulated < s["endTime"] for s in self._history(p))
            if not running:
                continue
            cars += p.co_owner_of is None
            for chat, end, presence in self._told(p):
                if end > kill.simulated:
                    expected.add(chat, presence)
        chats = expected.chats(Counter())  # "no" too: a family member's share ended, told nothing
        told = {c for c in chats if expected.must[c] + expected.maybe[c] > 0}
        delivered: Counter[int] = Counter()
        for call in self.telegram.calls_to("sendMessage"):
            chat = int(call.params.get("chat_id") or 0)
            if (
                call.ok
                and call.time > kill.wall
                and chat in chats
                and self._is_end(str(call.params.get("text")))
            ):
                delivered[chat] += 1
        missed = expected.missed(delivered, backend)
        return {
            "cars": cars,
            "chats": len(told),
            **expected.figures(delivered),
            "exactly": len(told - {c for c, *_ in missed}),
            "missed": missed[:20],
        }

    def _end_pushes(self) -> list[float]:
        """When Telegram accepted each charge-end push so far (wall time)."""
        return [
            c.time
            for c in self.telegram.calls_to("sendMessage")
            if c.ok and self._is_end(str(c.params.get("text") or ""))
        ]

    def _is_end(self, text: str) -> bool:
        kind = self.words.kind(text)
        return kind is not None and kind[0] == "end"

    def _charging(self, p: Owner) -> bool:
        if p.backend == "iremote":
            return self.bmw.vehicle(p.vin).status.get("chargingStatus") == "CHARGING"
        return self.cardata.car(p.vin).session_start is not None

    def _told(self, p: Owner) -> list[tuple[int, float, str]]:
        """Each end of the owner's car as its chats should hear of it: (chat, when it ended, "yes", "no" or
        "maybe"), to the owner (not while unlinked) and to the person the car is shared with (an /unlink
        ends the share for good, README: /unlink)."""
        gone = self.unlinked.get(p.tg_id)
        margin = 2 * self.step_seconds
        told = []
        for end, seen in self._ends(p):
            told.append((p.tg_id, end, _surely(seen, _presence(gone, end, margin))))
            if p.member is not None:
                shared = _presence(None if gone is None else [gone[0], math.inf], end, margin)
                told.append((p.member, end, _surely(seen, shared)))
        return told

    def _ends(self, p: Owner) -> list[tuple[float, str]]:
        """When the charges of the owner's car ended (a CarData car's until BMW revoked its tokens), and
        whether the bot must see them: an i Remote charge shorter than the watcher's idle poll may fall
        between two polls, unseen (at the soak's end: plugged in at the last step, parked at the next); a
        CarData session that added nothing (a full car plugged in) may be told or not; so may a quiet car's
        stopped short and not switched off before its next charge began (no burst in between: the bot sees
        the two as one, ending with the second)."""
        if p.backend == "iremote":
            return [
                (c.end, "yes" if c.end - c.start > IDLE_POLL else "maybe")
                for c in self.charges.get(p.vin, [])
                if c.end is not None
            ]
        history = self._history(p)
        bursts = self.switched_off.get(p.vin, [])
        ends = []
        for i, h in enumerate(history):
            end = float(h["endTime"])
            following = float(history[i + 1]["startTime"]) if i + 1 < len(history) else math.inf
            reported = (
                p.kind == "live" or h["displayedSoc"] >= 100 or any(end <= t <= following for t in bursts)
            )
            ends.append((end, "yes" if reported and h["displayedSoc"] > h["displayedStartSoc"] else "maybe"))
        return ends

    def _charges(self, p: Owner) -> list[tuple[float, float, int, int]]:
        """The owner's car's ended charges: (start, end, level at its start, level at its end)."""
        if p.backend == "iremote":
            return [
                (c.start, c.end, c.soc_start, c.soc_end)
                for c in self.charges.get(p.vin, [])
                if c.soc_end is not None and c.end is not None
            ]
        return [
            (float(h["startTime"]), float(h["endTime"]), h["displayedStartSoc"], h["displayedSoc"])
            for h in self._history(p)
        ]

    def _charges_told(self, vin: str, backend: str) -> list[str]:
        if backend.startswith("cardata"):
            history = self.cardata.car(vin).history[self.history_before[vin] :]
            told = [
                (h["startTime"], h["endTime"], h["displayedStartSoc"], h["displayedSoc"]) for h in history
            ]
        else:
            told = [(c.start, c.end or 0.0, c.soc_start, c.soc_end) for c in self.charges.get(vin, [])]
        return [f"{hhmm(start)}-{hhmm(end)} {soc}-{soc_end} %" for start, end, soc, soc_end in told]

    def _opened(self, p: Owner) -> list[tuple[float, float]]:
        """When the owner's i Remote car was left unlocked after an unlock, until locked (inf: still open)."""
        if p.co_owner_of is not None:
            return []
        still = [(self.unlocked[p.vin], math.inf)] if p.vin in self.unlocked else []
        return self.opened.get(p.vin, []) + still

    def _history(self, p: Owner) -> list[dict[str, Any]]:
        history = self.cardata.car(p.vin).history
        return history[self.history_before[p.vin] : self.revoked.get(p.vin, len(history))]

    def count(self) -> None:
        """Move the simulators' request logs into the day's counts (their logs keep only the newest 10,000
        requests, fewer than a day of 500 cars)."""
        for r in self.bmw.requests:
            self.bmw_calls[_kind(r.path)] += 1
            # An unlock BMW refused for want of the security answer is sent again with it: not a re-send.
            self.executes += _kind(r.path) == "executeService" and 200 <= r.status < 300
        for r in self.cardata.requests:
            self.cardata_calls[_kind(r.path)] += 1
            self.cardata_429 += r.status == 429
            if not r.path.startswith(("/gcdm", "mqtt")):
                self.cardata_per_account[r.gcid] += 1
        self.bmw.requests.clear()
        self.cardata.requests.clear()

    def calls(self) -> dict[str, Any]:
        """BMW calls since the last look, by kind (i Remote; CarData REST, with the most any one account
        made), then forgotten."""
        self.count()
        answer = {
            "bmw": dict(self.bmw_calls),
            "cardata": dict(self.cardata_calls),
            "cardata_429": self.cardata_429,
            "cardata_most": max(self.cardata_per_account.values(), default=0),
        }
        self.bmw_calls, self.cardata_calls, self.cardata_per_account = Counter(), Counter(), Counter()
        self.cardata_429 = 0
        return answer


@dataclass
class Expected:
    """Pushes of one kind expected per chat: those that must come, and those that may (see `World.tally`)."""

    must: Counter[int] = field(default_factory=Counter)
    maybe: Counter[int] = field(default_factory=Counter)

    def add(self, chat: int, presence: str) -> None:
        self.must[chat] += presence == "yes"
        self.maybe[chat] += presence == "maybe"

    def chats(self, delivered: Counter[int]) -> set[int]:
        return set(self.must) | set(self.maybe) | set(delivered)

    def figures(self, delivered: Counter[int]) -> dict[str, int]:
        chats = self.chats(delivered)
        return {
            "expected": sum(self.must.values()),
            "maybe": sum(self.maybe.values()),
            "delivered": sum(min(delivered[c], self.must[c] + self.maybe[c]) for c in chats),
            "lost": sum(max(0, self.must[c] - delivered[c]) for c in chats),
            "doubled": sum(max(0, delivered[c] - self.must[c] - self.maybe[c]) for c in chats),
        }

    def missed(
        self, delivered: Counter[int], backend: dict[int, str]
    ) -> list[tuple[int, str, int, int, int]]:
        """(chat, backend, must, maybe, delivered) of each chat told too little or too much."""
        return [
            (c, backend.get(c, "member"), self.must[c], self.maybe[c], delivered[c])
            for c in sorted(self.chats(delivered))
            if not self.must[c] <= delivered[c] <= self.must[c] + self.maybe[c]
        ]


def _every(n: int, every: tuple[int, int]) -> bool:
    return n % every[0] == every[1]


def _presence(gone: list[float] | None, at: float, margin: float) -> str:
    """Whether a charge that ended at `at` is pushed to a chat whose link (or share) was gone from gone[0] to
    gone[1]: "yes", "no", or "maybe" within `margin` of either edge."""
    if gone is None or not gone[0] - margin <= at <= gone[1] + margin:
        return "yes"
    return "no" if gone[0] + margin < at < gone[1] - margin else "maybe"


def _surely(*presences: str) -> str:
    """ "no" if any says no, else "maybe" if any says maybe."""
    return "no" if "no" in presences else "maybe" if "maybe" in presences else "yes"


def _crossing(soc_start: int, soc_end: int, level: int, margin: int) -> str:
    """Whether a charge from `soc_start` to `soc_end` brings the alert at `level`: it must have begun below
    the level (the bot does not alert a charge it first saw above it), by more than `margin` to be sure."""
    if soc_start >= level or soc_end < level:
        return "no"
    return "yes" if soc_start + margin < level else "maybe"


def hhmm(simulated: float) -> str:
    """Simulated time as HH:MM UTC."""
    return time.strftime("%H:%M", time.gmtime(simulated))


def _sim_at(stamps: list[tuple[float, float]], wall: float) -> float:
    """The simulated time of the step that was running at wall time `wall`."""
    return next((sim for at, sim in reversed(stamps) if at <= wall), 0.0)


def _step_at(stamps: list[tuple[float, float]], wall: float) -> str:
    """The simulated time (HH:MM UTC) of the step that was running at wall time `wall`."""
    return hhmm(_sim_at(stamps, wall))


def _has(message: ChatMessage, button: str) -> bool:
    return any(button in b.text for row in message.buttons for b in row)


def _kind(path: str) -> str:
    ids = re.compile(r"WB.*|\d.*|[0-9a-f]{12,}")  # VINs, numbers, container ids: not a kind of call
    parts = [p for p in path.split("/") if p and not ids.fullmatch(p)]
    return parts[-1] if parts else path


def serve(
    conn: Connection,
    owners: int,
    steps: int,
    step_seconds: int,
    start_hour: int,
    faults: bool,
    seed: int,
    address: str | None = None,
) -> None:
    """Child process: the world, answering the soak's requests until "stop": through `conn`, and (`address`
    given) from each bot process that connects to that Unix socket, until its connection ends."""
    world = World(owners, seed, steps, step_seconds, faults)
    world.populate()
    # Start at the next midnight UTC (then `start_hour`): days of the soak are BMW's budget days.
    lead = DAY - world.cardata.now() % DAY + start_hour * 3600
    world.cardata.advance(lead)
    world.bmw.advance(world.cardata.now() - world.bmw.now())
    broker = world.broker = CardataBroker(world.cardata, tick=0.01, connects_per_minute=UNLIMITED)
    connected: queue.SimpleQueue[Connection] = queue.SimpleQueue()
    if address is not None:
        listener = Listener(address, family="AF_UNIX")
        threading.Thread(target=_accept, args=(listener, connected), daemon=True, name="world-accept").start()
    with (
        BackgroundServer(world.bmw.app) as bmw_http,
        BackgroundServer(world.cardata.app) as cardata_http,
        BackgroundServer(world.telegram.app) as telegram_http,
        broker,
    ):
        conn.send(
            {
                "bmw_url": bmw_http.url,
                "cardata_url": cardata_http.url,
                "mqtt_url": broker.url,
                "ca_file": str(broker.ca_file),
                "telegram_url": telegram_http.url,
                "offset": world.cardata.now() - time.time(),
                "owners": [p.describe() for p in world.people],
            }
        )
        talking = [conn]
        while True:
            while not connected.empty():
                talking.append(connected.get())
            for ready in wait(talking, timeout=0.1):
                assert isinstance(ready, Connection)
                try:
                    request = ready.recv()
                    if request == "stop":
                        return
                    ready.send(_answer(world, *request))
                except (EOFError, OSError):  # a bot process ended or was killed, mid-request or not
                    talking.remove(ready)
                    ready.close()


def _accept(listener: Listener, connected: queue.SimpleQueue[Connection]) -> None:
    while True:
        connected.put(listener.accept())


def _answer(world: World, kind: str, argument: Any) -> Any:
    if kind == "advance":
        return world.advance(argument)
    if kind == "act":
        return world.act()
    if kind == "calls":
        return world.calls()
    if kind == "tally":
        return world.tally()
    if kind == "now":
        return world.cardata.now()
    if kind == "killed":
        return world.killed(argument)
    return ValueError(f"unknown request {kind}")
