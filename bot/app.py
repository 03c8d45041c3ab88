"""Builds the python-telegram-bot Application: wires store, BMW client, garage, handlers and jobs."""

from __future__ import annotations

import asyncio
import functools
import gc
import logging
import signal
import time
import warnings
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from urllib.parse import urlparse

from telegram import BotCommand, Update
from telegram.ext import Application, ApplicationBuilder
from telegram.warnings import PTBUserWarning

from bot.bmw.client import BMWClient
from bot.capabilities import BackendName
from bot.cardata.client import CarDataClient
from bot.cardata_backend import CarDataBackend
from bot.chat import (
    alerts,
    basics,
    history,
    keyboards,
    link,
    link_cardata,
    maps,
    monthly,
    notify,
    poi,
    prefs,
    remote,
    schedule,
    share,
    status,
    texts,
    trips,
)
from bot.chat import settings as user_settings  # `settings` is the bot's configuration here
from bot.chat.common import CONTEXT_TYPES, BotContext, BotData, Services, commands_end_prompts, job_queue
from bot.chat.i18n import tr
from bot.chat.rate_limit import RateLimiter
from bot.config import Settings
from bot.garage import Garage
from bot.iremote import CarApi
from bot.rangemap import RangeMapRenderer
from bot.store import Store, exclusive_use
from bot.updates import ChatOrderedProcessor
from bot.watcher import Push, Watcher
from bot.webhook import WebhookServer, new_secret_token, webhook_app

log = logging.getLogger(__name__)
HEARTBEAT_SECONDS = 60.0
HEARTBEAT_MAX_AGE = 180.0  # three missed beats: the bot is stuck or gone
TICK_SECONDS = 10.0  # how often the watcher looks for due cars; each car has its own poll interval
POLL_TIMEOUT = 10  # s a getUpdates waits for updates in production (PTB's run_polling default)
STOP_STEP_FLOOR = 5.0  # s each step of stopping may take even with a shorter SHUTDOWN_GRACE_SECONDS

# Our conversations mix message and button states on purpose (per chat, not per message); PTB warns
# about exactly that combination.
warnings.filterwarnings("ignore", message=".*per_message.*", category=PTBUserWarning)


def heartbeat_path(settings: Settings) -> Path:
    return settings.database_path.with_name(settings.database_path.name + ".heartbeat")


def heartbeat_age(settings: Settings) -> float | None:
    """Seconds since the running bot's last heartbeat; None when there is none."""
    try:
        return time.time() - heartbeat_path(settings).stat().st_mtime
    except FileNotFoundError:
        return None


def build_application(settings: Settings, *, car_api: CarApi | None = None) -> Application:
    """The whole bot, not yet started. `car_api` replaces the BMW client (tests, other backends)."""
    settings.require("telegram_bot_token", "bot_secret_key")
    token = settings.telegram_bot_token
    assert token is not None  # required just above
    store = Store(settings.database_path, settings.bot_secret_key)
    api = car_api or BMWClient(
        api_key=settings.bmw_api_key or "",
        api_secret=settings.bmw_api_secret or "",
        base_url=settings.bmw_api_url,
        service_deadline=settings.bmw_service_timeout,
    )
    garage = Garage(
        store,
        api,
        cardata=_cardata_backend(settings, store) if BackendName.CARDATA in settings.car_backends else None,
        zone_of=lambda tg_id: prefs.stored(store.user_settings(tg_id)).zone,
        commands_per_minute=settings.remote_commands_per_minute,
    )
    root = settings.telegram_api_url.rstrip("/")
    application = (
        ApplicationBuilder()
        .token(token)
        .context_types(CONTEXT_TYPES)
        .base_url(f"{root}/bot")
        .base_file_url(f"{root}/file/bot")
        .rate_limiter(RateLimiter())
        # Each chat's updates in order, chats side by side (a remote command's minutes run in their own task).
        .concurrent_updates(ChatOrderedProcessor())
        .post_init(_post_init)
        .post_shutdown(_post_shutdown)
        .build()
    )
    renderer = RangeMapRenderer(
        tile_url=settings.map_tile_url,
        cache_dir=settings.map_tile_cache_dir,
        cache_max_bytes=settings.map_tile_cache_mb * 1024 * 1024,
        user_agent=settings.map_user_agent,
        attribution=settings.map_attribution,
    )
    data: BotData = application.bot_data
    data.services = Services(garage=garage, refs=keyboards.CarRefs(store.secrets), renderer=renderer)
    data.settings = settings
    # The sender's units, language and time zone for everything that answers the update (bot/chat/prefs.py).
    application.add_handler(user_settings.locale_handler(), group=-3)
    application.add_handler(commands_end_prompts(), group=-4)  # first: before the locale (-3)
    application.add_handlers(basics.private_chats_only(), group=-2)
    if settings.allowed_telegram_ids:
        application.add_handler(basics.allow_list(settings.allowed_telegram_ids), group=-1)
    for handler in (
        basics.first_handlers()
        + link.handlers()
        + remote.handlers()
        + status.handlers()
        + maps.handlers()
        + notify.handlers()
        + alerts.handlers()
        + user_settings.handlers()
        + schedule.handlers()
        + trips.handlers()
        + history.handlers()
        + monthly.handlers()
        + share.handlers()
        + poi.handlers()
        + basics.last_handlers()
    ):
        application.add_handler(handler)
    application.add_error_handler(basics.on_error)
    return application


def _cardata_backend(settings: Settings, store: Store) -> CarDataBackend:
    client = CarDataClient(
        store,
        api_url=settings.cardata_api_url,
        auth_url=settings.cardata_auth_url,
        daily_calls=settings.cardata_daily_calls,
    )
    return CarDataBackend(
        store,
        client,
        mqtt_url=settings.cardata_mqtt_url,
        ca_file=settings.cardata_ca_file,
        debounce_seconds=settings.cardata_charge_debounce_seconds,
        stream_retry_seconds=settings.cardata_stream_retry_seconds,
        connects_per_minute=settings.cardata_connects_per_minute,
    )


async def _give_commands_their_grace(application: Application) -> None:
    data: BotData = application.bot_data
    await link_cardata.end_all_waits(application)
    cancelled = await data.services.garage.commands.drain(data.settings.shutdown_grace_seconds)
    if cancelled:
        log.warning("stopped with %d remote command(s) unfinished; their users were told", cancelled)


async def _post_init(application: Application) -> None:
    await _set_commands(application)
    data: BotData = application.bot_data
    # One push path for every backend: the watcher's polls and the CarData streams' events.
    push = notify.pusher(application)
    data.services.garage.notify = push
    _start_watcher(application, push)
    await data.services.garage.start()
    # Commands a stopped process left under way; the JobQueue starts after post_init, hence no misfire limit.
    job_queue(application).run_once(
        remote.finish_commands, 0, name="finish-commands", job_kwargs={"misfire_grace_time": None}
    )
    # The first beat now, directly: the JobQueue only starts after post_init, and a repeating job whose
    # first run is already past when it starts waits a whole interval (the health check would fail meanwhile).
    path = heartbeat_path(data.settings)
    await asyncio.to_thread(_touch, path)
    job_queue(application).run_repeating(_heartbeat, HEARTBEAT_SECONDS, name="heartbeat", data=path)
    # What the start loaded (libraries, handlers, the catalogue, the stored links) lives as long as the
    # process: kept out of the collector's generations, a full collection walks only what came since; at
    # 1,000 owners full collections of 100-360 ms were the event loop's longest stalls (benchmarks/README.md).
    # Garbage first: frozen, a cycle is never collected (an Application started again in one process froze
    # its predecessor's: +10 % RSS in the soak's restart).
    gc.collect()
    gc.freeze()


def _start_watcher(application: Application, push: Push) -> Watcher:
    """The charge watcher of polled cars (kept in services.watcher), its ticks on the JobQueue."""
    data: BotData = application.bot_data
    settings = data.settings
    watcher = Watcher(
        data.services.garage,
        push,
        charge_poll_seconds=settings.charge_poll_seconds,
        idle_poll_seconds=settings.idle_poll_seconds,
        concurrency=settings.watcher_concurrency,
    )
    data.services.watcher = watcher
    tick = min(TICK_SECONDS, settings.charge_poll_seconds)
    queue = job_queue(application)

    async def run(context: BotContext) -> None:
        try:
            await watcher.cycle()
        finally:
            # The next tick is booked when this cycle ends, so a long cycle never overlaps the next one.
            queue.run_once(run, tick, name="charge-watcher")

    queue.run_once(run, tick, name="charge-watcher")
    return watcher


async def _set_commands(application: Application) -> None:
    """Telegram's command menu: English for everyone, and each other language's for users whose Telegram app
    speaks it."""
    for language in prefs.LANGUAGES:
        with prefs.using(prefs.Prefs(language=language, locale=language)):
            commands = [BotCommand(name, tr(text)) for name, text in texts.COMMANDS]
        code = None if language == prefs.LANGUAGES[0] else language
        await application.bot.set_my_commands(commands, language_code=code)


async def _heartbeat(context: BotContext) -> None:
    job = context.job
    assert job is not None and isinstance(job.data, Path)  # booked by _post_init with the heartbeat's path
    await asyncio.to_thread(_touch, job.data)


def _touch(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch()


class StopTimedOut(RuntimeError):
    """A step of stopping the bot did not end within its bound; the message names it."""


async def _within_grace(application: Application, what: str, step: Callable[[], Awaitable[object]]) -> None:
    """One step of stopping, cancelled after the stop grace (at least STOP_STEP_FLOOR s): a task that never
    ends must not hold the process until the service manager kills it, nor a test run forever."""
    data: BotData = application.bot_data
    seconds = max(data.settings.shutdown_grace_seconds, STOP_STEP_FLOOR)
    try:
        async with asyncio.timeout(seconds):
            await step()
    except TimeoutError:
        raise StopTimedOut(f"stopping the bot: {what} did not end within {seconds:g} s") from None


async def _stop(application: Application, *first: tuple[str, Callable[[], Awaitable[object]]]) -> None:
    """`first`'s steps, then Application.stop() and post_shutdown, each within the grace; one that hangs
    does not keep the others from running, and is named once they have run."""
    stuck: list[StopTimedOut] = []
    steps: list[tuple[str, Callable[[], Awaitable[object]]]] = [
        *first,
        # Application.stop waits for its tasks: a login waiting for BMW's approval would hold it for minutes.
        ("the waiting logins' end", functools.partial(link_cardata.end_all_waits, application)),
        ("Application.stop()", application.stop),
    ]
    for what, step in steps:
        try:
            await _within_grace(application, what, step)
        except StopTimedOut as exc:
            stuck.append(exc)
    try:
        if application.post_shutdown:
            await application.post_shutdown(application)  # bounds itself: run_polling calls it too
    except StopTimedOut as exc:
        stuck.append(exc)
    if stuck:
        raise StopTimedOut("; ".join(str(exc) for exc in stuck))


async def _post_shutdown(application: Application) -> None:
    services = application.bot_data.services
    try:
        # The streams, pushes and alerts under way: bounded, so the store below is closed whatever hangs.
        await _within_grace(application, "the garage's close", services.garage.aclose)
    finally:
        services.renderer.close()
        services.garage.store.close()


@asynccontextmanager
async def polling(application: Application, *, poll_timeout: int = 1) -> AsyncIterator[Application]:
    """Long polling as `run_polling` does it (post_init and post_shutdown included), but in the caller's
    event loop and without signal handling (`run_bot` adds it). Each getUpdates waits up to `poll_timeout`
    s for updates: short for tests and benchmarks, whose stops then come sooner."""
    async with application:
        if application.post_init:
            await application.post_init(application)
        updater = application.updater
        assert updater is not None  # built with an Updater: ApplicationBuilder's default
        await updater.start_polling(poll_interval=0.0, timeout=poll_timeout, allowed_updates=Update.ALL_TYPES)
        await application.start()
        try:
            yield application
        finally:
            await _stop(application, ("Updater.stop()", updater.stop))


@asynccontextmanager
async def webhook(application: Application, settings: Settings) -> AsyncIterator[str]:
    """Webhook mode, started as `polling` starts long polling: our server (bot/webhook.py) on
    WEBHOOK_LISTEN:WEBHOOK_PORT, registered with setWebhook. Yields the secret token in use: the configured
    one, else a random one made for this run."""
    assert settings.webhook_url is not None  # webhook mode is chosen by setting it
    secret_token = settings.webhook_secret_token or new_secret_token()
    app = webhook_app(
        application,
        path=urlparse(settings.webhook_url).path or "/",
        secret_token=secret_token,
        heartbeat_age=lambda: heartbeat_age(settings),
        max_age=HEARTBEAT_MAX_AGE,
    )
    server = WebhookServer(app, settings.webhook_listen, settings.webhook_port)
    async with application:
        if application.post_init:
            await application.post_init(application)
        await application.start()
        try:
            await server.start()
            await application.bot.set_webhook(
                settings.webhook_url, secret_token=secret_token, allowed_updates=Update.ALL_TYPES
            )
            yield secret_token
        finally:
            # The server first: no update may arrive once the Application stops taking them.
            await _stop(application, ("the webhook server's stop", server.stop))


async def _serve(application: Application, settings: Settings) -> None:
    """The bot until SIGINT or SIGTERM, then running car commands get their grace period (PTB's own stop would
    wait for them as long as BMW's deadline, past any container's stop timeout) and it stops. The signals are
    heard from before anything starts: one that comes while the bot starts stops it once started (PTB's
    run_polling looked for a stop only after post_init: later in the start, the bot ran on)."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    serving: AbstractAsyncContextManager[object]
    if settings.webhook_url:
        log.info("starting in webhook mode on %s:%s", settings.webhook_listen, settings.webhook_port)
        serving = webhook(application, settings)
    else:
        log.info("starting with long polling")
        serving = polling(application, poll_timeout=POLL_TIMEOUT)
    async with serving:
        await stop.wait()
        await _give_commands_their_grace(application)


def run_bot(settings: Settings, application: Application | None = None) -> None:
    """Long polling, or a webhook when WEBHOOK_URL is set; Ctrl-C / SIGTERM stop it cleanly, giving running
    car commands SHUTDOWN_GRACE_SECONDS. `application` defaults to `build_application(settings)`.
    Holds the database for itself while it runs (DatabaseInUse when a bot or rotate-key already does)."""
    with exclusive_use(settings.database_path):
        asyncio.run(_serve(application or build_application(settings), settings))
