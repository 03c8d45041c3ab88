"""The command line, settings errors, `check` against loopback servers, and webhook mode end to end."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from cryptography.fernet import Fernet

from bot.check import run_checks
from bot.config import ConfigError, load_settings
from bot.store import Store
from tests.support.bot import fast_client, running_webhook_bot

CLEAN_ENV = {
    k: v for k, v in os.environ.items() if not k.startswith(("TELEGRAM_", "BMW_", "BOT_", "WEBHOOK_"))
}


def _bot(args: list[str], cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bot", *args],
        cwd=cwd,
        env={**CLEAN_ENV, "PYTHONPATH": str(Path(__file__).parents[1]), **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_help_lists_the_sub_commands(tmp_path):
    result = _bot(["--help"], tmp_path)
    assert result.returncode == 0
    for command in ("run", "simulator", "demo", "check", "health", "genkey", "rotate-key"):
        assert command in result.stdout


def test_missing_setting_is_one_clear_line(tmp_path):
    result = _bot([], tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip() == "configuration error: TELEGRAM_BOT_TOKEN is required but not set"


def test_invalid_secret_key_names_the_variable_and_the_fix(tmp_path):
    (tmp_path / ".env").write_text("TELEGRAM_BOT_TOKEN=1:x\nBOT_SECRET_KEY=not-a-key\n")
    result = _bot(["run"], tmp_path)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "BOT_SECRET_KEY" in lines[0] and "genkey" in lines[0]
    assert "Traceback" not in result.stderr


def test_empty_values_in_env_file_mean_defaults(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for name in list(os.environ):
        if name.startswith(("TELEGRAM_", "BMW_", "WEBHOOK_", "BOT_")):
            monkeypatch.delenv(name)
    (tmp_path / ".env").write_text((Path(__file__).parents[1] / ".env.example").read_text())
    settings = load_settings()
    assert settings.webhook_url is None and settings.bmw_api_url is None
    assert settings.charge_poll_seconds == 60 and settings.allowed_telegram_ids == frozenset()


def test_check_passes_against_reachable_servers(bot_settings, tiles):
    settings = bot_settings.model_copy(update={"map_tile_url": tiles.template})
    findings = run_checks(settings)
    assert all(f.ok for f in findings), [f.text for f in findings if not f.ok]


def test_check_names_what_is_wrong(bot_settings):
    settings = bot_settings.model_copy(
        update={"telegram_bot_token": "999:refused", "bmw_api_url": "http://127.0.0.1:9", "bmw_api_key": None}
    )
    problems = [f.text for f in run_checks(settings) if not f.ok]
    assert "BMW_API_KEY is required but not set" in problems
    assert any("refused (401)" in p for p in problems)
    assert any("127.0.0.1:9 is not reachable" in p for p in problems)
    assert not any("999:refused" in p for p in problems)


async def test_webhook_mode_handles_signed_updates_and_refuses_others(
    bot_settings, simulator_url, sandbox, bot_api
):
    async with running_webhook_bot(
        bot_settings, fast_client(simulator_url), secret_token="s3cret-token"
    ) as application:
        alice = sandbox.user(401, "Alice")
        alice.send("/start")
        await alice.wait_for_bot_message("Hi Alice")
        assert bot_api.calls_to("setWebhook")

        forged = {
            "update_id": 999,
            "message": {
                "message_id": 1,
                "date": 0,
                "text": "/start",
                "chat": {"id": 402, "type": "private"},
                "from": {"id": 402, "is_bot": False, "first_name": "M"},
            },
        }
        url = application.bot_data.settings.webhook_url
        async with httpx.AsyncClient() as http:
            unsigned = await http.post(url, json=forged)
            wrong = await http.post(url, json=forged, headers={"X-Telegram-Bot-Api-Secret-Token": "guess"})
        assert unsigned.status_code == 403 and wrong.status_code == 403
        assert not bot_api.calls_to("sendMessage") or all(
            call.params.get("chat_id") != "402" for call in bot_api.calls_to("sendMessage")
        )


def test_genkey_prints_a_usable_key(tmp_path):
    key = _bot(["genkey"], tmp_path).stdout.strip()
    Fernet(key)


def test_check_accepts_a_tile_template_with_subdomains(bot_settings, tiles):
    settings = bot_settings.model_copy(update={"map_tile_url": tiles.subdomain_template})
    findings = run_checks(settings)
    assert all(f.ok for f in findings), [f.text for f in findings if not f.ok]
    assert tiles.subdomains == ["a"]  # tile 0/0/0


def test_tile_template_with_an_unknown_placeholder_is_one_clear_line(tmp_path):
    env = {"TELEGRAM_BOT_TOKEN": "1:x", "MAP_TILE_URL": "https://tiles.example/{z}/{x}/{y}{r}.png"}
    result = _bot(["check"], tmp_path, **env)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines() == [
        "configuration error: MAP_TILE_URL is invalid: "
        "a tile URL may contain only {z}, {x}, {y} and {s} in braces"
    ]


def test_wrong_secret_key_stops_run_and_check_with_one_line(tmp_path, bot_env):
    """A database written with one key, the bot started with another: no traceback, the variable named."""
    database = Path(bot_env["DATABASE_PATH"])
    with Store(database, [Fernet.generate_key().decode()]) as store:
        store.upsert_user(1, "Alice")
        store.save_account(1, region="rest_of_world", username="alice@example.com", password="pw-alice")
    run = subprocess.run(
        [sys.executable, "-m", "bot", "run"],
        cwd=tmp_path,
        env=bot_env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 2 and "Traceback" not in run.stderr
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and "BOT_SECRET_KEY cannot decrypt" in lines[0], run.stderr

    check = subprocess.run(
        [sys.executable, "-m", "bot", "check"],
        cwd=tmp_path,
        env=bot_env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert check.returncode == 1 and "Traceback" not in check.stdout + check.stderr
    assert f"✘ BOT_SECRET_KEY cannot decrypt {database}: the key has changed" in check.stdout.splitlines()


# Passwords (BMW_API_URL), the bot token (TELEGRAM_API_URL, in every request's path), client ids and tokens
# (CARDATA_*) travel on these.
@pytest.mark.parametrize("name", ["CARDATA_AUTH_URL", "CARDATA_API_URL", "BMW_API_URL", "TELEGRAM_API_URL"])
@pytest.mark.parametrize(
    ("url", "accepted"),
    [
        ("https://api-cardata.bmwgroup.com", True),
        ("http://127.0.0.1:8080", True),
        ("http://localhost:8080/gcdm/oauth", True),
        ("http://[::1]:8080", True),
        ("http://api-cardata.bmwgroup.com", False),  # tokens and client ids would cross the net bare
        ("http://10.0.0.5:8080", False),
        ("ftp://127.0.0.1", False),
        ("api-cardata.bmwgroup.com", False),
    ],
)
def test_service_urls_need_https_except_on_loopback(name: str, url: str, accepted: bool) -> None:
    if accepted:
        assert getattr(load_settings(**{name.lower(): url}), name.lower()) == url
    else:
        with pytest.raises(ConfigError, match=f"^{name} is invalid: .*https"):
            load_settings(**{name.lower(): url})


def test_a_plain_http_cardata_url_stops_the_bot_with_one_line(tmp_path):
    env = {"TELEGRAM_BOT_TOKEN": "1:x", "CARDATA_API_URL": "http://api-cardata.bmwgroup.com"}
    result = _bot(["run"], tmp_path, **env)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines() == [
        "configuration error: CARDATA_API_URL is invalid: expected https://host (or http:// on loopback)"
    ]


@pytest.mark.parametrize(
    ("backend", "announces"), [("iremote", "BMW_API_URL=http://"), ("cardata", "CARDATA_API_URL=http://")]
)
def test_a_simulator_answers_as_soon_as_it_prints_its_address(tmp_path, backend, announces):
    """A script (or a test) may connect the moment the address is printed: the port listens before that."""
    port = _free_port()
    args = ["simulator", "--backend", backend, "--port", str(port)]
    if backend == "cardata":
        args += ["--mqtt-port", str(_free_port())]
    process = subprocess.Popen(
        [sys.executable, "-m", "bot", *args],
        cwd=tmp_path,
        env={**CLEAN_ENV, "PYTHONPATH": str(Path(__file__).parents[1]), "LOG_LEVEL": "WARNING"},
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        for line in process.stdout:  # bounded: the process prints a few lines, then serves (or dies: EOF)
            if announces in line:
                break
        else:
            raise AssertionError("the simulator never printed its address")
        with socket.create_connection(("127.0.0.1", port), timeout=5):
            pass  # refused here when the address was printed before the port listened
    finally:
        process.terminate()
        process.wait(10)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
