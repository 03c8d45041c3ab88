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

import queue
import random
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, Listener, wait
from typing import Any

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
# The words of a charge's end in a push (texts.CHARGE_HEADLINES "full", "early", "error", "interrupted").
ENDS = (
    "has finished charging",
    "stopped charging before it was full",
    "stopped charging with",
    "interrupted",
)
ALERT_WORDS = ("⚠️", "🔓", "🔌", "🪫")  # alert pushes start with one of these (texts.ALERT_TEXTS)
RELINK_WORDS = "no longer accepts the link"  # texts.CARDATA_RELINK_PUSH


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


@dataclass
class Interaction:
    """One owner's chat exchange in progress (an unlock, a Refresh): the next bot words it waits for."""

    user: SandboxUser
    kind: str
    stage: str
    since: int  # the step it started
    seen: int  # the bot's messages in that chat before it


@dataclass
class Kill:
    """A bot process SIGKILLed: when (wall and simulated time), the i Remote cars charging then, and the
    i Remote charges (plug-ins) begun by then per owner."""

    wall: float
    simulated: float
    iremote_charging: set[str]
    iremote_plugged: Counter[int]


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
    ends_iremote: Counter[int] = field(default_factory=Counter)  # charge ends per i Remote owner
    executes: int = 0  # remote commands that reached BMW's i Remote API
    bmw_calls: Counter[str] = field(default_factory=Counter)  # since the last `calls`, by kind
    cardata_calls: Counter[str] = field(default_factory=Counter)
    cardata_per_account: Counter[str | None] = field(default_factory=Counter)
    cardata_429: int = 0
    # CarData cars whose account's tokens BMW revoked: their charges recorded by then (ends after it cannot
    # reach the bot until the owner links again, which the script does not do).
    revoked: dict[str, int] = field(default_factory=dict)
    kill: Kill | None = None

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
        self.charging: dict[str, bool] = {}  # i Remote VIN -> a charge of it is running
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
        minute = int(now % DAY) // 60
        if step < self.steps:
            for person in self.people:
                self._live(person, minute)
        elif step == self.steps:
            self._park()
        self._interact()
        if self.faults:
            self._faults(now)
        return sum(self._charging(p) for p in self.people if p.co_owner_of is None)

    def _live(self, p: Owner, minute: int) -> None:
        """One owner's day, decided per owner and day from the seed: a drive in the morning, a charge in the
        evening (to 100 %, or stopped short around 80 %), /status now and then, an unlock about weekly."""
        day = int(self.cardata.now() // DAY)
        plan = random.Random(hash((self.seed, p.tg_id, day)))
        drive_at = plan.randint(6 * 60, 10 * 60)
        plug_at = plan.randint(17 * 60, 21 * 60)
        short = plan.random() < 0.4
        status_at = {plan.randint(7 * 60, 23 * 60) for _ in range(plan.randint(1, 3))}
        unlock = plan.random() < 1 / 7
        unlock_at = plan.randint(9 * 60, 16 * 60)
        now_in = range(minute - self.step_seconds // 60 + 1, minute + 1)  # the minutes this step covered
        if p.co_owner_of is None:
            if drive_at in now_in:
                self._drive(p, plan.randint(10, 35))
            if plug_at in now_in:
                self._plug(p)
            if short and (plug_at + plan.randint(20, 40)) in now_in:
                self._unplug(p)  # stopped short
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
            self.interactions.append(Interaction(user, "unlock", "ask", self.step, seen))

    def _park(self) -> None:
        """The soak's end: every car unplugged and switched off, so every charge has ended and reported."""
        for p in self.people:
            if p.co_owner_of is None:
                self._unplug(p)
                if p.backend == "cardata":
                    self.cardata.switch_off(p.vin)

    def _drive(self, p: Owner, used: int) -> None:
        if p.backend == "iremote":
            if self.charging.pop(p.vin, False) or self._bmw_plugged(p.vin):
                self._unplug(p)
            soc = float(self.bmw.vehicle(p.vin).soc)
            self.bmw.set_status(p.vin, chargingLevelHv=max(5, int(soc) - used))
        else:
            car = self.cardata.car(p.vin)
            if car.plugged:
                self.cardata.unplug(p.vin)
            self.cardata.set_soc(p.vin, max(5.0, car.soc - used))
            self.cardata.switch_off(p.vin)  # the burst a quiet i3 sends at switch-off

    def _plug(self, p: Owner) -> None:
        if p.backend == "iremote":
            self.bmw.plug_in(p.vin, charging=True)
            self.charging[p.vin] = True
            self.ends_iremote[p.tg_id] += (
                1  # it ends: full, or unplugged (every charge ends by the next drive)
            )
        else:
            self.cardata.plug_in(p.vin, charging=True)

    def _unplug(self, p: Owner) -> None:
        if p.backend == "iremote":
            self.charging.pop(p.vin, None)
            self.bmw.unplug(p.vin)
        else:
            self.cardata.unplug(p.vin)

    def _bmw_plugged(self, vin: str) -> bool:
        return self.bmw.vehicle(vin).status.get("connectionStatus") == "CONNECTED"

    def _interact(self) -> None:
        """Move each chat exchange on when the bot has answered (its words since the exchange began); one
        silent for 30 steps counts as unanswered."""
        going = []
        for it in self.interactions:
            said = it.user.bot_messages[it.seen :]
            last = said[-1] if said else None
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
                self.chats[f"{it.kind} unanswered at {it.stage}"] += 1
                continue
            going.append(it)
        self.interactions = going

    # -- faults ------------------------------------------------------------------------------------------

    def _faults(self, now: float) -> None:
        """The schedule, by the minute of the simulated day (point 2 of issue 20): BMW i Remote 500s at
        03:00, its tokens revoked for one account in twenty at 03:30 (the bot logs in again with the stored
        password), CarData's for one account in twenty-five at 04:00 (its owners must link again: told once),
        a hang at 11:00, the broker dropping everyone at 13:00, another app holding one account's stream in
        twenty from 15:00 to 16:00, Telegram answering 502 to 20 sendMessage calls at 19:30 (charge ends)."""
        minute = int(now % DAY) // 60
        hit = range(minute - self.step_seconds // 60 + 1, minute + 1)
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
        """Charge-end pushes expected per chat (the simulators' ended charges: each to its owners and the
        person it is shared with), delivered and doubled (the sandbox's accepted sendMessages), commands
        sent to BMW vs confirmed in the chat."""
        self.count()
        expected: Counter[int] = Counter()
        for p in self.people:
            if p.backend == "iremote":
                ends = self.ends_iremote[p.tg_id]
            else:
                recorded = self.revoked.get(p.vin, len(self.cardata.car(p.vin).history))
                ends = recorded - self.history_before[p.vin]
            expected[p.tg_id] += ends
            if p.member is not None:
                expected[p.member] += ends
        delivered: Counter[int] = Counter()
        said: dict[int, list[str]] = {}  # the end pushes per chat, with the simulated step they came in
        alerts: Counter[int] = Counter()
        relinks: Counter[int] = Counter()
        for call in self.telegram.calls_to("sendMessage"):
            if not call.ok:
                continue
            text = str(call.params.get("text") or "")
            chat = int(call.params.get("chat_id") or 0)
            if _is_end(text):
                delivered[chat] += 1
                said.setdefault(chat, []).append(f"{_step_at(self.stamps, call.time)} {text[:160]!r}")
            elif text.startswith(ALERT_WORDS):
                alerts[chat] += 1
            elif RELINK_WORDS in text:
                relinks[chat] += 1
        chats = set(expected) | set(delivered)
        # Reports (bursts) the broker published while the car's account had no stream: QoS 0 lost them.
        bursts = {(m.vin, m.time) for m in (self.broker.unheard if self.broker is not None else [])}
        unheard = Counter(vin for vin, _ in bursts)
        vin_of = {p.tg_id: p.vin for p in self.people} | {p.member: p.vin for p in self.people if p.member}
        backend = {p.tg_id: p.backend + ("/" + p.kind if p.backend == "cardata" else "") for p in self.people}
        missed = [
            (c, backend.get(c, "member"), expected[c], delivered[c])
            for c in sorted(chats)
            if expected[c] != delivered[c]
        ]
        refused = Counter(c.error_code for c in self.telegram.calls if not c.ok)
        revoked = {p.tg_id for p in self.people if p.backend == "cardata" and p.vin in self.revoked}
        return {
            "expected": sum(expected.values()),
            "delivered": sum(min(expected[c], delivered[c]) for c in chats),
            "lost": sum(max(0, expected[c] - delivered[c]) for c in chats),
            "lost_unheard": sum(
                min(max(0, expected[c] - delivered[c]), unheard[vin_of.get(c, "")]) for c in chats
            ),
            "doubled": sum(max(0, delivered[c] - expected[c]) for c in chats),
            "alerts": sum(alerts.values()),
            "missed": missed[:20],
            # What a doubled chat was told, and its car's charges: enough to tell a harness miscount from a
            # bot pushing one end twice.
            "doubled_detail": {
                c: {
                    "pushes": said.get(c, []),
                    "charges": [
                        f"{hhmm(h['startTime'])}-{hhmm(h['endTime'])}"
                        f" {h['displayedStartSoc']}-{h['displayedSoc']} %"
                        for h in self.cardata.car(vin_of[c]).history[self.history_before[vin_of[c]] :]
                    ]
                    if backend.get(c, "").startswith("cardata")
                    else [],
                }
                for c, _, e, d in missed
                if d > e
            },
            "refusals": sorted({str(c.description)[:80] for c in self.telegram.calls if not c.ok})[:10],
            "relink_told_once": sum(relinks[c] == 1 for c in revoked),
            "relink_revoked": len(revoked),
            "relink_wrong": sum(n for c, n in relinks.items() if c not in revoked or n > 1),
            "commands_confirmed": self.commands,
            "commands_sent": self.executes,
            "kill": self._across_the_kill(),
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
            Counter(self.ends_iremote),
        )
        pushed = [t for t in self._end_pushes() if t <= wall]
        return {
            "at": hhmm(self.kill.simulated),
            "pushes": len(pushed),
            "last_second": sum(t > wall - 1 for t in pushed),
        }

    def _across_the_kill(self) -> dict[str, int] | None:
        """The charges running at the kill (i Remote: charging then; CarData: a session of the car's history
        that began before it and ended after): per chat told of them (owners, family members), their ends
        expected after the kill against the end pushes Telegram accepted after it."""
        kill = self.kill
        if kill is None:
            return None
        expected: Counter[int] = Counter()
        cars = 0
        for p in self.people:
            if p.backend == "iremote":
                running = p.vin in kill.iremote_charging
                after = self.ends_iremote[p.tg_id] - kill.iremote_plugged[p.tg_id] + running
            else:
                history = self.cardata.car(p.vin).history
                sessions = history[self.history_before[p.vin] : self.revoked.get(p.vin, len(history))]
                running = any(s["startTime"] <= kill.simulated < s["endTime"] for s in sessions)
                after = sum(s["endTime"] > kill.simulated for s in sessions)
            if not running:
                continue
            cars += p.co_owner_of is None
            expected[p.tg_id] += after
            if p.member is not None:
                expected[p.member] += after
        delivered: Counter[int] = Counter()
        for call in self.telegram.calls_to("sendMessage"):
            chat = int(call.params.get("chat_id") or 0)
            if (
                call.ok
                and call.time > kill.wall
                and chat in expected
                and _is_end(str(call.params.get("text")))
            ):
                delivered[chat] += 1
        return {
            "cars": cars,
            "chats": len(expected),
            "expected": sum(expected.values()),
            "delivered": sum(delivered.values()),
            "exactly": sum(delivered[c] == n for c, n in expected.items()),
        }

    def _end_pushes(self) -> list[float]:
        """When Telegram accepted each charge-end push so far (wall time)."""
        return [
            c.time
            for c in self.telegram.calls_to("sendMessage")
            if c.ok and _is_end(str(c.params.get("text") or ""))
        ]

    def _charging(self, p: Owner) -> bool:
        if p.backend == "iremote":
            return self.bmw.vehicle(p.vin).status.get("chargingStatus") == "CHARGING"
        return self.cardata.car(p.vin).session_start is not None

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


def _is_end(text: str) -> bool:
    return any(end in text for end in ENDS)


def hhmm(simulated: float) -> str:
    """Simulated time as HH:MM UTC."""
    return time.strftime("%H:%M", time.gmtime(simulated))


def _step_at(stamps: list[tuple[float, float]], wall: float) -> str:
    """The simulated time (HH:MM UTC) of the step that was running at wall time `wall`."""
    return hhmm(next((sim for at, sim in reversed(stamps) if at <= wall), 0.0))


def _has(message: ChatMessage, button: str) -> bool:
    return any(button in b.text for row in message.buttons for b in row)


def _kind(path: str) -> str:
    parts = [p for p in path.split("/") if p and not p.startswith("WB") and not p[:1].isdigit()]
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
