"""Command line: `python -m bot [run|demo|simulator|genkey|health|rotate-key|i18n]` (run is the default)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from bot.capabilities import BackendName
from bot.config import ConfigError, Settings, load_settings
from bot.crypto import SecretKeyMismatch, generate_secret_key
from bot.logs import setup_logging
from bot.store import StoreError


def _run(settings: Settings, _: argparse.Namespace) -> int:
    from bot.app import run_bot
    from bot.store import DatabaseInUse

    settings.require("telegram_bot_token", "bot_secret_key", "bmw_api_key", "bmw_api_secret")
    try:
        run_bot(settings)
    except DatabaseInUse as exc:
        print(f"not started: {exc}", file=sys.stderr)
        return 1
    return 0


def _demo(settings: Settings, args: argparse.Namespace) -> int:
    from bot.demo import run_demo

    return run_demo(settings, telegram=args.telegram, port=args.port)


def _simulator(settings: Settings, args: argparse.Namespace) -> int:
    from bot.servers import listening_socket, serve

    if args.backend == BackendName.CARDATA:
        return _cardata_simulator(settings, args)

    from bot.bmw.simulator import Simulator

    port = args.port or 8480
    sock = listening_socket(args.host, port)  # before the address is printed: a reader may connect at once
    sim = Simulator(api_key=args.api_key, api_secret=args.api_secret, service_seconds=args.service_seconds)
    vins = sim.add_account(args.username, args.password, security_answer=args.security_answer)
    hidden = {"command", "handler", "password", "security_answer", "backend", *CARDATA_SIMULATOR_OPTIONS}
    shown = {k: v for k, v in vars(args).items() if k not in hidden} | {"port": port}
    print("BMW i Remote API simulator:", ", ".join(f"{k}={v}" for k, v in shown.items()), flush=True)
    print(f"account {args.username} with vehicles {', '.join(vins)}", flush=True)
    print(f"point the bot at it with BMW_API_URL=http://{args.host}:{port}", flush=True)
    serve(sim.app, sock, log_level=settings.log_level.lower())
    return 0


CARDATA_SIMULATOR_OPTIONS = ("mqtt_port", "tls", "auto_approve", "mqtt_connects_per_minute")


def _cardata_simulator(settings: Settings, args: argparse.Namespace) -> int:
    """The CarData simulator: OAuth + REST over HTTP and the MQTT broker beside it, one clock."""
    from bot.cardata.simulator import DEFAULT_CLIENT_ID, DEFAULT_GCID, CardataBroker, CardataSimulator
    from bot.cardata.simulator.broker import CONNECTS_PER_IP_PER_MINUTE
    from bot.servers import listening_socket, serve

    port = args.port or 8490
    sock = listening_socket(args.host, port)  # before the address is printed: a reader may connect at once
    sim = CardataSimulator(auto_approve_seconds=args.auto_approve)
    vins = sim.add_default_account(args.car_kind)
    url = f"http://{args.host}:{port}"
    limit = args.mqtt_connects_per_minute or CONNECTS_PER_IP_PER_MINUTE
    with CardataBroker(sim, args.host, args.mqtt_port, tls=args.tls, connects_per_minute=limit) as broker:
        print(f"BMW CarData simulator on {url}, stream on {broker.url}", flush=True)
        print(f"the stream takes at most {limit} connection attempts per IP a minute", flush=True)
        print(
            f"account {DEFAULT_GCID} with {args.car_kind} vehicles {', '.join(vins)}; "
            f"client id {DEFAULT_CLIENT_ID}",
            flush=True,
        )
        approval = (
            f"approved after {args.auto_approve:g} s"
            if args.auto_approve is not None
            else f"approve with: curl -H 'Content-Type: application/json' -d '{{\"user_code\": \"...\"}}' "
            f"{url}/_sim/approve"
        )
        print(f"device codes are {approval}", flush=True)
        print("point the bot at it with:", flush=True)
        print(f"  CARDATA_AUTH_URL={url}/gcdm/oauth", flush=True)
        print(f"  CARDATA_API_URL={url}", flush=True)
        print(f"  CARDATA_MQTT_URL={broker.url}", flush=True)
        if broker.ca_file is not None:
            print(f"  CARDATA_CA_FILE={broker.ca_file}", flush=True)
        serve(sim.app, sock, log_level=settings.log_level.lower())
    return 0


def _check(settings: Settings, _: argparse.Namespace) -> int:
    from bot.check import main as check

    return check(settings)


def _genkey(_: Settings, __: argparse.Namespace) -> int:
    print(generate_secret_key())
    return 0


def _health(settings: Settings, _: argparse.Namespace) -> int:
    from bot.app import HEARTBEAT_MAX_AGE, heartbeat_age, heartbeat_path

    age = heartbeat_age(settings)
    if age is None:
        print(f"unhealthy: no heartbeat at {heartbeat_path(settings)}")
        return 1
    if age > HEARTBEAT_MAX_AGE:
        print(f"unhealthy: last heartbeat {age:.0f} s ago")
        return 1
    print(f"healthy: last heartbeat {age:.0f} s ago")
    return 0


def _rotate_key(settings: Settings, _: argparse.Namespace) -> int:
    from bot.store import DatabaseInUse, Store, exclusive_use

    settings.require("bot_secret_key")
    # Never under a running bot: it keeps the keys it started with, so it could not read what is rotated to a
    # key it lacks, and it would go on writing tokens with its own first key after the rotation.
    try:
        with (
            exclusive_use(settings.database_path),
            Store(settings.database_path, settings.bot_secret_key) as store,
        ):
            count = store.rotate()
    except DatabaseInUse:
        print(
            f"the bot is running on {settings.database_path}: stop it first, then run rotate-key again"
            " (nothing was changed)",
            file=sys.stderr,
        )
        return 1
    print(f"re-encrypted {count} secrets with the first key of BOT_SECRET_KEY; the others can now be removed")
    return 0


def _i18n(_: Settings, args: argparse.Namespace) -> int:
    from bot.chat import i18n

    if args.action == "update":
        for path in i18n.update():
            print(f"updated {path}")
    problems = i18n.problems()
    for problem in problems:
        print(problem)
    print(f"{len(problems)} to do" if problems else "every sentence has its translation")
    return 1 if problems else 0


def build_parser() -> argparse.ArgumentParser:
    from bot.bmw import simulator as sim_defaults

    parser = argparse.ArgumentParser(prog="python -m bot", description="Telegram bot for BMW i3 owners.")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.add_parser(
        "run", help="run the bot (default): long polling, or a webhook when WEBHOOK_URL is set"
    )
    demo = commands.add_parser(
        "demo", help="try the bot on this machine: simulated car, chat page in the browser, no Telegram"
    )
    demo.add_argument("--port", type=int, help="the chat page's port (default 8470; a free one when taken)")
    demo.add_argument(
        "--telegram", action="store_true", help="run the bot on Telegram (TELEGRAM_BOT_TOKEN) instead"
    )
    sim = commands.add_parser(
        "simulator", help="serve the BMW i Remote API simulator (or, with --backend cardata, BMW CarData's)"
    )
    sim.add_argument(
        "--backend", choices=list(BackendName), default=BackendName.IREMOTE, help="which BMW API to simulate"
    )
    sim.add_argument("--host", default="127.0.0.1")
    sim.add_argument("--port", type=int, help="HTTP port (default 8480; 8490 for cardata)")
    sim.add_argument("--mqtt-port", type=int, default=9000, help="cardata: the MQTT broker's port")
    sim.add_argument(
        "--tls", action=argparse.BooleanOptionalAction, default=True, help="cardata: MQTT over TLS (mqtts://)"
    )
    sim.add_argument(
        "--mqtt-connects-per-minute",
        type=int,
        metavar="N",
        help="cardata: connection attempts per client IP in any minute; more get CONNACK 3 "
        "(BMW publishes no number; the default is our assumption, docs/cardata.md)",
    )
    sim.add_argument(
        "--auto-approve", type=float, metavar="SECONDS", help="cardata: approve device codes after SECONDS"
    )
    sim.add_argument(
        "--car-kind",
        choices=["quiet", "live"],
        default="quiet",
        help="cardata: how the cars stream. quiet (iDrive 6, every i3; the default): a burst of all keys at "
        "switch-off and when a charge ends at 100 %%, nothing between, no charge target, the end reason in "
        "hvpmFinishReason; live (iDrive 7 and later): every change, the end reason in reasonChargingEnd. "
        'One car\'s kind: POST /_sim/vehicles/{vin}/kind {"kind": ...}',
    )
    sim.add_argument("--api-key", default=sim_defaults.DEFAULT_API_KEY)
    sim.add_argument("--api-secret", default=sim_defaults.DEFAULT_API_SECRET)
    sim.add_argument("--username", default=sim_defaults.DEFAULT_USERNAME)
    sim.add_argument("--password", default=sim_defaults.DEFAULT_PASSWORD)
    sim.add_argument("--security-answer", default=None, help="demand this answer for DOOR_UNLOCK")
    sim.add_argument("--service-seconds", type=float, default=6.0, help="how long a remote service takes")
    commands.add_parser("check", help="validate the settings and reach the configured servers")
    commands.add_parser("genkey", help="print a new BOT_SECRET_KEY")
    commands.add_parser("health", help="exit 0 when the running bot's heartbeat is fresh (container health)")
    commands.add_parser("rotate-key", help="re-encrypt stored secrets with the first key of BOT_SECRET_KEY")
    i18n = commands.add_parser("i18n", help="the translations of the bot's texts (bot/locale)")
    i18n.add_argument(
        "action",
        choices=["check", "update"],
        help="check: list what has no translation yet; update: add the texts' new sentences first",
    )
    return parser


HANDLERS = {
    "run": _run,
    "demo": _demo,
    "simulator": _simulator,
    "check": _check,
    "genkey": _genkey,
    "health": _health,
    "rotate-key": _rotate_key,
    "i18n": _i18n,
}


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    command = args.command or "run"
    try:
        settings = load_settings()
        setup_logging(settings.log_level, settings.log_format)
        return HANDLERS[command](settings, args)
    except ConfigError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return 2
    except (StoreError, SecretKeyMismatch) as exc:  # e.g. a BOT_SECRET_KEY that cannot decrypt the database
        print(f"database error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
