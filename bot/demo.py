"""`python -m bot demo`: the whole bot working on this machine in one command, without Telegram or BMW.

One process, everything on loopback: the BMW simulator with the demo account (one i3 charging, full a few
minutes after the start, so the charge-finished message comes while you watch), the BMW CarData simulator
beside it (its OAuth and REST over HTTP, its stream over TLS with a throw-away CA; device codes approved
by themselves a few seconds after they are shown; its BEV also charging, full a few minutes in), a tile
server for the range maps, the Telegram Bot API sandbox with its chat page, and the bot itself against them
with both backends, on a temporary database and a freshly generated secret key. Ctrl-C stops the bot, then
the servers, and removes the temporary files.

The CarData i3 comes with a week already lived: BMW's charging history holds its charges of the past week
(the simulator's), and as soon as an owner links it the demo records its drives of that week, two commutes
a day and a Sunday trip, through the same functions the bot records drives with (`drive_between`,
`save_drive_mark`), so /trips and /history show a week at once. Seeded, not played: the bot records a drive
only from reports of a linked car, and the owner links in the chat, so a played week would run after the
link, each quiet report waiting out the charge debounce (about 20 reports: minutes, not seconds).

`--telegram` keeps the simulator as the car but runs the bot on Telegram itself (TELEGRAM_BOT_TOKEN), for
trying it on a phone.

Range maps use the demo's own tile server, plain generated tiles (bot/tiles.py): the demo works offline
and sends nothing to the OpenStreetMap servers, and the map still has a base layer (the renderer's
no-tiles fallback would add a "could not be loaded" note to every map). An explicit MAP_TILE_URL is
honoured.
"""

from __future__ import annotations

import secrets
import tempfile
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from cryptography.fernet import Fernet
from starlette.applications import Starlette

from bot.app import build_application, run_bot
from bot.bmw.client import BMWClient
from bot.bmw.simulator import (
    DEFAULT_API_KEY,
    DEFAULT_API_SECRET,
    DEFAULT_BEV_VIN,
    DEFAULT_PASSWORD,
    DEFAULT_REX_VIN,
    DEFAULT_USERNAME,
    Simulator,
)
from bot.cardata.models import keys as cd
from bot.cardata.simulator import DEFAULT_BEV_VIN as CARDATA_BEV_VIN
from bot.cardata.simulator import DEFAULT_CLIENT_ID, CardataBroker, CardataSimulator
from bot.chat.common import Context, job_queue
from bot.config import CAR_BACKENDS, Settings
from bot.drives import Parked, drive_between
from bot.history import usable_kwh
from bot.sandbox import BotApiServer
from bot.servers import BackgroundServer
from bot.tiles import tile_app

DEFAULT_PORT = 8470  # the chat page's port; a free one is taken when it is in use
BOT_USERNAME = "bmw_i3_demo_bot"
# A few seconds per remote command, so the progress edits of one message can be watched.
SERVICE_SECONDS = 4.0
# The BEV charges from 85 % at 5 %/min: full about 3 minutes after the start.
CHARGE_PERCENT_PER_MINUTE = 5.0
CHARGE_MINUTES = 3
CHARGE_POLL_SECONDS = 5  # the smallest the settings allow: the push follows the end of the charge closely
IDLE_POLL_SECONDS = 30
# Remote commands are polled every 1-2 s instead of 2-10 s, matching the simulator's short service time.
SERVICE_POLL_INITIAL, SERVICE_POLL_MAX = 1.0, 2.0
# CarData: the code is approved by itself this long after it is shown (time to look at the message), the
# bot polls for it every 2 s (BMW: 5 s); the BEV, quiet like every real i3 (docs/cardata.md), charges to
# 100 % a few minutes after the start (a little later than the i Remote one: linking takes longer) and only
# then reports, which the bot pushes; a stop is a stop after 5 s.
CARDATA_APPROVE_SECONDS = 6.0
CARDATA_POLL_SECONDS = 2
CARDATA_CHARGE_MINUTES = 4
CARDATA_DEBOUNCE_SECONDS = 5.0

# The CarData i3's week: from home (where the simulator parks it) to the office and back each day, and on the
# last Sunday to Lake Starnberg and back; km by road, the level used at about 15 kWh/100 km.
WEEK_DAYS = 7
OFFICE = (48.1374, 11.5755)  # Marienplatz
LAKE = (47.9990, 11.3440)  # Starnberg
COMMUTE_KM, LAKE_KM = 8, 27
KWH_PER_KM = 0.15
SEED_EVERY_SECONDS = 1.0


def demo_simulator() -> Simulator:
    """The demo account (i3 BEV + i3 REX) with the BEV on charge, a few minutes from full."""
    simulator = Simulator(
        service_seconds=SERVICE_SECONDS, charge_percent_per_minute=CHARGE_PERCENT_PER_MINUTE
    )
    simulator.add_default_account()
    start = round(100 - CHARGE_PERCENT_PER_MINUTE * CHARGE_MINUTES)
    simulator.set_status(DEFAULT_BEV_VIN, chargingLevelHv=start)
    simulator.plug_in(DEFAULT_BEV_VIN, charging=True)
    return simulator


def demo_cardata_simulator() -> CardataSimulator:
    """The CarData demo account (DEFAULT_CLIENT_ID: an i3 BEV and an i3 REX, quiet as real i3s are), its BEV
    on charge, a few minutes from full."""
    simulator = CardataSimulator(
        charge_percent_per_minute=CHARGE_PERCENT_PER_MINUTE,
        auto_approve_seconds=CARDATA_APPROVE_SECONDS,
        poll_interval=CARDATA_POLL_SECONDS,
    )
    simulator.add_default_account()
    simulator.set_soc(CARDATA_BEV_VIN, 100 - CHARGE_PERCENT_PER_MINUTE * CARDATA_CHARGE_MINUTES)
    simulator.plug_in(CARDATA_BEV_VIN, charging=True)
    return simulator


def week_of_parking(
    now: datetime,
    mileage: int,
    home: tuple[float, float],
    capacity_kwh: float,
    charges: list[tuple[float, float]],
) -> list[tuple[Parked, bool]]:
    """Where the i3 was parked over the `WEEK_DAYS` days before today (local times), oldest first, the last
    at home with today's `mileage`, each with whether one of the `charges` (when it ended, the level it
    left) came since the stop before; the level falls with each drive."""
    legs: list[tuple[datetime, tuple[float, float], int]] = []  # (parked at, where, km driven to get there)
    midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
    for back in range(WEEK_DAYS, 0, -1):
        day = midnight - timedelta(days=back)
        if day.weekday() == 6:
            legs += [(day.replace(hour=11), LAKE, LAKE_KM), (day.replace(hour=17, minute=30), home, LAKE_KM)]
        else:
            legs += [
                (day.replace(hour=8, minute=30), OFFICE, COMMUTE_KM),
                (day.replace(hour=18), home, COMMUTE_KM),
            ]
    km, soc = mileage - sum(leg[2] for leg in legs), 70.0
    first = (midnight - timedelta(days=WEEK_DAYS + 1) + timedelta(hours=20)).timestamp()
    marks = [(Parked(first, km, soc, *home), False)]
    for parked, (lat, lon), driven in legs:
        at = parked.timestamp()
        charged = [level for ended, level in charges if marks[-1][0].at < ended <= at]
        soc = charged[-1] if charged else soc
        km += driven
        soc = max(5.0, soc - driven * KWH_PER_KM / capacity_kwh * 100)
        marks.append((Parked(at, km, round(soc), lat, lon), bool(charged)))
    return marks


@dataclass(frozen=True)
class DemoWeek:
    """`live_a_week`'s job data: the CarData simulator."""

    simulator: CardataSimulator


async def live_a_week(context: Context) -> None:
    """A JobQueue job: the drives of the CarData i3's past week (module docstring), for each owner who linked
    it and has no drive of it recorded (a link after an /unlink gets its week again), as the bot would have
    recorded them; a charge of BMW's history between two stops leaves the drive's level used unknown, as
    the bot's own would."""
    week = context.job.data if context.job else None
    assert isinstance(week, DemoWeek)
    store = context.bot_data.services.garage.store
    car = week.simulator.car(CARDATA_BEV_VIN)
    charges = [(float(entry["endTime"]), float(entry["displayedSoc"])) for entry in car.history]
    # The demo's BEV serves every one of these keys (its spec's value or the field table's sample).
    lat, lon, km = (float(car.values[key][0]) for key in (cd.LATITUDE, cd.LONGITUDE, cd.MILEAGE))
    home, mileage = (lat, lon), int(km)
    for link in store.cardata_links():
        owner = link.owner
        if CARDATA_BEV_VIN not in store.cardata_vins(owner) or store.drives(owner, CARDATA_BEV_VIN):
            continue
        capacity = usable_kwh(store.cardata_model(owner, CARDATA_BEV_VIN))
        before = None
        for mark, charged in week_of_parking(datetime.now().astimezone(), mileage, home, capacity, charges):
            drive = drive_between(
                owner, CARDATA_BEV_VIN, before, mark, charged=charged, capacity_kwh=capacity
            )
            store.save_drive_mark(owner, CARDATA_BEV_VIN, mark, drive)
            before = mark


def sandbox_token() -> str:
    """A fresh token of Telegram's shape (so the log redaction recognises it); it only opens the sandbox."""
    return f"{secrets.randbelow(9 * 10**9) + 10**9}:{secrets.token_urlsafe(26)}"


def demo_settings(
    settings: Settings,
    *,
    workdir: Path,
    simulator_url: str,
    cardata_url: str,
    cardata_broker: CardataBroker,
    tiles_url: str,
    token: str,
    telegram_api_url: str,
    sandbox: bool,
) -> Settings:
    """`settings` pointed at the demo's servers (both backends), a temporary database and a new secret key."""
    overrides: dict[str, object] = {
        "car_backends": CAR_BACKENDS,
        "cardata_auth_url": f"{cardata_url}/gcdm/oauth",
        "cardata_api_url": cardata_url,
        "cardata_mqtt_url": cardata_broker.url,
        "cardata_ca_file": cardata_broker.ca_file,
        "cardata_charge_debounce_seconds": CARDATA_DEBOUNCE_SECONDS,
        "telegram_bot_token": token,
        "telegram_api_url": telegram_api_url,
        "bmw_api_url": simulator_url,
        "bmw_api_key": DEFAULT_API_KEY,
        "bmw_api_secret": DEFAULT_API_SECRET,
        "database_path": workdir / "demo.sqlite3",
        "bot_secret_key": (Fernet.generate_key().decode(),),
        "map_tile_cache_dir": workdir / "tiles",
        "charge_poll_seconds": CHARGE_POLL_SECONDS,
        "idle_poll_seconds": IDLE_POLL_SECONDS,
        "webhook_url": None,  # the demo always polls: nothing outside can reach a loopback webhook
    }
    if sandbox:  # the page's users are made up: an allow-list meant for Telegram ids would lock them out
        overrides["allowed_telegram_ids"] = frozenset()
    if "map_tile_url" not in settings.model_fields_set:
        overrides["map_tile_url"] = tiles_url + "/{z}/{x}/{y}.png"
        overrides["map_attribution"] = ""  # our own made-up tiles: nobody to credit
    return Settings.model_validate({**settings.model_dump(), **overrides})


def _chat_server(app: Starlette, port: int) -> BackgroundServer:
    try:
        return BackgroundServer(app, port=port)
    except OSError:  # taken, e.g. by a second demo
        return BackgroundServer(app)


def _banner(chat_url: str | None) -> str:
    where = (
        f"  Open the chat:  {chat_url}\n\n"
        if chat_url
        else "  Open your bot in Telegram (it runs against the simulated car below).\n\n"
    )
    return (
        f"BMW i3 bot demo: the bot with a simulated BMW backend{'' if chat_url else ' on Telegram'}.\n\n"
        f"{where}"
        "  Link the demo account with /link, then either\n"
        f"  - i Remote API (full remote control): region Europe, e-mail {DEFAULT_USERNAME}, "
        f"password {DEFAULT_PASSWORD}\n"
        "    Then try /status, 🔒 Lock, 🗺 Range map, /cars for the second i3, and a location (📍) for the\n"
        "    car's navigation.\n"
        f"    The i3 …{DEFAULT_BEV_VIN[-4:]} is charging and will be full in about {CHARGE_MINUTES} minutes: "
        "the bot tells you when.\n"
        f"    (The i3 …{DEFAULT_REX_VIN[-4:]} is parked, locked.)\n"
        f"  - BMW CarData (official, read-only): client id {DEFAULT_CLIENT_ID}\n"
        f"    The simulated BMW login approves the code by itself after {CARDATA_APPROVE_SECONDS:g} s. Then "
        "/status shows what the car last reported.\n"
        "    Like a real i3, each car reports only when it is switched off and when a charge reaches 100 %:\n"
        f"    its i3 …{CARDATA_BEV_VIN[-4:]} is charging and reports at 100 %, about "
        f"{CARDATA_CHARGE_MINUTES} minutes after the start: the bot tells you when.\n\n"
        "Ctrl-C stops the demo and deletes its data."
    )


def run_demo(settings: Settings, *, telegram: bool = False, port: int | None = None) -> int:
    """Start everything, run the bot until Ctrl-C or SIGTERM, then stop it all and remove the temp files."""
    if telegram:
        settings.require("telegram_bot_token")
    simulator = demo_simulator()
    cardata = demo_cardata_simulator()
    # Exits run in reverse: the bot has stopped (run_polling returned), then the servers, then the files.
    with tempfile.TemporaryDirectory(prefix="bmw-bot-demo-") as workdir, ExitStack() as servers:
        car = servers.enter_context(BackgroundServer(simulator.app))
        cardata_http = servers.enter_context(BackgroundServer(cardata.app))
        tls = Path(workdir) / "cardata-tls"  # the stream's throw-away CA, trusted by this bot only
        tls.mkdir()
        cardata_broker = servers.enter_context(CardataBroker(cardata, cert_dir=tls))
        tiles = servers.enter_context(BackgroundServer(tile_app()))
        if telegram:
            token, api_url, chat_url = settings.telegram_bot_token or "", settings.telegram_api_url, None
        else:
            bot_api = BotApiServer()
            token = sandbox_token()
            bot_api.add_bot(token, username=BOT_USERNAME, first_name="BMW i3 (demo)")
            chat = servers.enter_context(_chat_server(bot_api.app, DEFAULT_PORT if port is None else port))
            api_url, chat_url = chat.url, chat.url + "/"
        bot_settings = demo_settings(
            settings,
            workdir=Path(workdir),
            simulator_url=car.url,
            cardata_url=cardata_http.url,
            cardata_broker=cardata_broker,
            tiles_url=tiles.url,
            token=token,
            telegram_api_url=api_url,
            sandbox=not telegram,
        )
        client = BMWClient(
            api_key=DEFAULT_API_KEY,
            api_secret=DEFAULT_API_SECRET,
            base_url=car.url,
            service_deadline=bot_settings.bmw_service_timeout,
            poll_initial=SERVICE_POLL_INITIAL,
            poll_max=SERVICE_POLL_MAX,
        )
        application = build_application(bot_settings, car_api=client)
        job_queue(application).run_repeating(live_a_week, SEED_EVERY_SECONDS, data=DemoWeek(cardata))
        try:
            print(_banner(chat_url), flush=True)
            run_bot(bot_settings, application)  # the demo always polls: demo_settings cleared WEBHOOK_URL
        except KeyboardInterrupt:
            # Ctrl-C before the bot has set up its own stop handling (bot/app.py): the banner offers Ctrl-C
            # as the way to stop, so it stops the demo the same way, servers and files removed below.
            pass
    return 0
