"""The files in deploy/, read the way Docker, Compose and systemd read them, and checked against the bot.

An image is built only where a Docker engine answers, and the unit goes through `systemd-analyze verify`
where that tool is installed; everything else is parsing and needs neither.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path, PurePosixPath
from typing import Any

import pytest
import yaml
from cryptography.fernet import Fernet

from bot.config import Settings

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
UNIT = DEPLOY / "bmw-telegram-bot.service"
SETTING_NAMES = {name.upper() for name in Settings.model_fields}
WEBHOOK_PORT = Settings.model_fields["webhook_port"].default
RUN_COMMAND = ["python", "-m", "bot", "run"]
HEALTH_COMMAND = ["python", "-m", "bot", "health"]


# --- parsers -----------------------------------------------------------------------------------------


def dockerfile_instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs; as Docker does, comment and blank lines vanish even inside a
    backslash continuation."""
    instructions: list[tuple[str, str]] = []
    pending = ""
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        keyword, _, args = (pending + stripped).partition(" ")
        instructions.append((keyword.upper(), args.strip()))
        pending = ""
    assert not pending, "Dockerfile ends inside a line continuation"
    return instructions


def exec_form(args: str) -> list[str]:
    """The JSON-array form; shell form would put /bin/sh in front of python and swallow SIGTERM."""
    value = json.loads(args)
    assert isinstance(value, list) and all(isinstance(part, str) for part in value), args
    return value


def env_assignments(instructions: list[tuple[str, str]]) -> dict[str, str]:
    env: dict[str, str] = {}
    for keyword, args in instructions:
        if keyword == "ENV":
            for word in shlex.split(args):
                name, sep, value = word.partition("=")
                assert sep, f"ENV without '=': {args}"
                env[name] = value
    return env


def seconds(duration: str | int) -> float:
    """A systemd or Compose duration ("45s", "1min 30s", "2m", "90") in seconds."""
    units = {"ms": 0.001, "": 1, "s": 1, "sec": 1, "m": 60, "min": 60, "h": 3600}
    parts = re.findall(r"(\d+(?:\.\d+)?)\s*([a-z]*)", str(duration))
    assert parts, f"not a duration: {duration!r}"
    return sum(float(number) * units[unit] for number, unit in parts)


def unit_sections(text: str) -> dict[str, dict[str, list[str]]]:
    """Sections of a systemd unit, every value of a repeated key kept in order (configparser keeps one)."""
    sections: dict[str, dict[str, list[str]]] = {}
    current: dict[str, list[str]] | None = None
    for line in text.splitlines():
        line = line.strip()
        if not line or line[0] in "#;":
            continue
        if line.startswith("[") and line.endswith("]"):
            current = sections.setdefault(line[1:-1], {})
            continue
        key, sep, value = line.partition("=")
        assert sep and current is not None, f"not a key=value line inside a section: {line}"
        current.setdefault(key.strip(), []).append(value.strip())
    return sections


def dockerignore_rules(text: str) -> list[tuple[bool, re.Pattern[str]]]:
    """(is_exception, regex) per .dockerignore line, with Docker's `*`, `?`, `**` and `!` meanings."""
    rules = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        exception = line.startswith("!")
        pattern = str(PurePosixPath(line.removeprefix("!").lstrip("/")))
        regex = re.escape(pattern).replace(r"\*\*/", "(?:.*/)?").replace(r"\*\*", ".*")
        regex = regex.replace(r"\*", "[^/]*").replace(r"\?", "[^/]")
        rules.append((exception, re.compile(regex)))
    return rules


def docker_ignores(path: str, rules: list[tuple[bool, re.Pattern[str]]]) -> bool:
    """Whether Docker leaves `path` out of the build context: the last rule matching it or a parent wins."""
    parts = PurePosixPath(path).parts
    candidates = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    ignored = False
    for exception, regex in rules:
        if any(regex.fullmatch(candidate) for candidate in candidates):
            ignored = not exception
    return ignored


# --- fixtures ----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load((DEPLOY / "docker-compose.yml").read_text())


@pytest.fixture(scope="module")
def service(compose: dict[str, Any]) -> dict[str, Any]:
    services = compose["services"]
    assert list(services) == ["bot"]
    return services["bot"]


@pytest.fixture(scope="module")
def dockerfile() -> list[tuple[str, str]]:
    return dockerfile_instructions((DEPLOY / "Dockerfile").read_text())


@pytest.fixture(scope="module")
def final_stage(dockerfile: list[tuple[str, str]]) -> list[tuple[str, str]]:
    last_from = max(i for i, (keyword, _) in enumerate(dockerfile) if keyword == "FROM")
    return dockerfile[last_from:]


@pytest.fixture(scope="module")
def unit() -> dict[str, dict[str, list[str]]]:
    return unit_sections(UNIT.read_text())


def only(values: list[str]) -> str:
    assert len(values) == 1, values
    return values[0]


def instruction(stage: list[tuple[str, str]], keyword: str) -> str:
    """The arguments of the last `keyword` in the stage: the one that takes effect."""
    matches = [args for kw, args in stage if kw == keyword]
    assert matches, f"no {keyword} in the final stage"
    return matches[-1]


def healthcheck_options(args: str) -> tuple[dict[str, str], list[str]]:
    flags, sep, command = args.partition("CMD ")
    assert sep, f"HEALTHCHECK without CMD: {args}"
    options = dict(flag.removeprefix("--").split("=", 1) for flag in flags.split())
    return options, exec_form(command)


# --- docker-compose.yml ------------------------------------------------------------------------------


def test_compose_builds_the_repo_with_the_deploy_dockerfile(service: dict[str, Any]) -> None:
    context = (DEPLOY / service["build"]["context"]).resolve()
    assert context == ROOT
    assert (context / service["build"]["dockerfile"]).resolve() == DEPLOY / "Dockerfile"


def test_compose_reads_env_file_and_restarts_unless_stopped(service: dict[str, Any]) -> None:
    assert service["env_file"] in (".env", [".env"])
    assert service["restart"] == "unless-stopped"


def test_compose_mounts_a_named_volume_on_data(compose: dict[str, Any], service: dict[str, Any]) -> None:
    mounts = [volume.split(":") for volume in service["volumes"]]
    named = [source for source, target, *_ in mounts if target == "/data"]
    assert len(named) == 1
    assert not named[0].startswith((".", "/", "~")), "a host path, not a named volume"
    assert named[0] in compose["volumes"]


def test_compose_healthcheck_is_the_images(
    service: dict[str, Any], final_stage: list[tuple[str, str]]
) -> None:
    options, command = healthcheck_options(instruction(final_stage, "HEALTHCHECK"))
    check = service["healthcheck"]
    assert check["test"] == ["CMD", *command]
    assert seconds(check["interval"]) == seconds(options["interval"])
    assert seconds(check["timeout"]) == seconds(options["timeout"])
    assert seconds(check["start_period"]) == seconds(options["start-period"])
    assert check["retries"] == int(options["retries"])


def test_compose_commented_ports_publish_the_webhook_port_on_loopback(
    final_stage: list[tuple[str, str]],
) -> None:
    # The operator uncomments the block for webhook mode; it must then be valid and match EXPOSE.
    lines = (DEPLOY / "docker-compose.yml").read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if line.strip() == "# ports:")
    uncommented = lines[:]
    i = start
    while i < len(lines) and (i == start or lines[i].strip().startswith("#   - ")):
        uncommented[i] = lines[i].replace("# ", "", 1)
        i += 1
    ports = yaml.safe_load("\n".join(uncommented))["services"]["bot"]["ports"]
    assert [port.rsplit(":", 2) for port in ports] == [["127.0.0.1", str(WEBHOOK_PORT), str(WEBHOOK_PORT)]]
    assert instruction(final_stage, "EXPOSE").split() == [str(WEBHOOK_PORT)]


def test_compose_and_systemd_give_the_same_grace_for_shutdown(
    service: dict[str, Any], unit: dict[str, dict[str, list[str]]]
) -> None:
    grace = seconds(service["stop_grace_period"])
    # Docker's and systemd's 10 s default is shorter than one BMW read timeout (30 s).
    assert grace >= 30
    assert seconds(only(unit["Service"]["TimeoutStopSec"])) == grace


# --- Dockerfile --------------------------------------------------------------------------------------


def test_every_stage_is_a_slim_python_311_or_312(dockerfile: list[tuple[str, str]]) -> None:
    first_from = next(i for i, (keyword, _) in enumerate(dockerfile) if keyword == "FROM")
    defaults = dict(args.split("=", 1) for kw, args in dockerfile[:first_from] if kw == "ARG")
    bases = [args.split()[0] for keyword, args in dockerfile if keyword == "FROM"]
    resolved = [re.sub(r"\$\{(\w+)\}", lambda m: defaults[m.group(1)], base) for base in bases]
    assert resolved
    assert all(base in ("python:3.11-slim", "python:3.12-slim") for base in resolved), resolved


def test_image_runs_as_a_non_root_user(final_stage: list[tuple[str, str]]) -> None:
    user = instruction(final_stage, "USER").split(":")[0]
    assert user not in ("root", "0")


def test_image_keeps_database_and_tiles_in_the_data_volume(final_stage: list[tuple[str, str]]) -> None:
    volume = instruction(final_stage, "VOLUME")
    volumes = exec_form(volume) if volume.startswith("[") else volume.split()
    assert volumes == ["/data"]
    env = env_assignments(final_stage)
    assert env["DATABASE_PATH"] == "/data/bot.sqlite3"
    assert env["MAP_TILE_CACHE_DIR"] == "/data/tiles"
    # Docker discards changes to a volume's path made after VOLUME: /data must be prepared before it.
    keywords = [keyword for keyword, _ in final_stage]
    prepares = [i for i, (kw, args) in enumerate(final_stage) if kw == "RUN" and "/data" in args]
    assert prepares and max(prepares) < keywords.index("VOLUME")


def test_image_runs_the_bot_and_checks_its_health(final_stage: list[tuple[str, str]]) -> None:
    entrypoint = exec_form(instruction(final_stage, "ENTRYPOINT"))
    assert entrypoint + exec_form(instruction(final_stage, "CMD")) == RUN_COMMAND
    options, command = healthcheck_options(instruction(final_stage, "HEALTHCHECK"))
    assert command == HEALTH_COMMAND
    # The bot touches its heartbeat at least every 3 minutes; a check must not outlast its interval.
    assert seconds(options["timeout"]) < seconds(options["interval"]) <= 180


def test_image_has_the_charts_font_installed_lean(final_stage: list[tuple[str, str]]) -> None:
    """The slim base has no fonts: without DejaVu, Pillow's own font draws a box for a German chart's "ä"."""
    runs = [args for keyword, args in final_stage if keyword == "RUN"]
    installs = [args for args in runs if "apt-get install" in args]
    assert installs, "the final stage installs no Debian package"
    words = only(installs).split()
    assert "fonts-dejavu-core" in words and "--no-install-recommends" in words
    assert "rm -rf /var/lib/apt/lists/*" in only(installs), "apt's lists stay in the image"


def test_image_environment_names_are_settings_or_the_interpreters(final_stage: list[tuple[str, str]]) -> None:
    env = env_assignments(final_stage)
    ours = {name for name in env if name != "PATH" and not name.startswith(("PYTHON", "PIP_"))}
    assert ours <= SETTING_NAMES, ours - SETTING_NAMES
    assert env["WEBHOOK_PORT"] == str(WEBHOOK_PORT)
    assert env["PATH"].split(":")[0] == "/opt/venv/bin", "`python` must be the venv's"


def test_build_context_holds_the_package_and_no_secrets(dockerfile: list[tuple[str, str]]) -> None:
    rules = dockerignore_rules((ROOT / ".dockerignore").read_text())
    package = [
        path.relative_to(ROOT).as_posix()
        for path in (ROOT / "bot").rglob("*")
        if path.is_file() and "__pycache__" not in path.parts
    ]
    sent = ["pyproject.toml", *package]
    if (ROOT / "README.md").exists():  # pyproject's readme
        sent.append("README.md")
    assert [path for path in sent if docker_ignores(path, rules)] == []
    secret = [".env", "deploy/.env", "data/bot.sqlite3", ".venv/bin/python", ".git/config"]
    junk = ["bot/__pycache__/config.cpython-311.pyc", "bmw_telegram_bot.egg-info/PKG-INFO"]
    assert [path for path in secret + junk if not docker_ignores(path, rules)] == []
    for keyword, args in dockerfile:
        words = args.split()
        if keyword == "COPY" and not words[0].startswith("--from"):
            for source in words[:-1]:
                assert (ROOT / source).exists() and not docker_ignores(source, rules), source


# --- systemd unit ------------------------------------------------------------------------------------


def test_unit_runs_the_bot_from_a_venv_with_its_env_file(unit: dict[str, dict[str, list[str]]]) -> None:
    service = unit["Service"]
    program, *args = shlex.split(only(service["ExecStart"]))
    assert program.startswith("/") and program.endswith("/.venv/bin/bmw-telegram-bot")
    assert args == ["run"]
    assert only(service["EnvironmentFile"]) == "/etc/bmw-telegram-bot.env"
    assert only(unit["Install"]["WantedBy"]) == "multi-user.target"


def test_unit_keeps_its_data_in_the_state_directory(unit: dict[str, dict[str, list[str]]]) -> None:
    service = unit["Service"]
    assert only(service["DynamicUser"]) == "yes"
    state = "/var/lib/" + only(service["StateDirectory"])
    assert state == "/var/lib/bmw-telegram-bot"
    env = dict(value.split("=", 1) for value in service["Environment"])
    assert set(env) <= SETTING_NAMES
    paths = {name: PurePosixPath(value.replace("%S", "/var/lib")) for name, value in env.items()}
    assert paths["DATABASE_PATH"].parent == PurePosixPath(state)
    assert paths["MAP_TILE_CACHE_DIR"].is_relative_to(state)


def test_unit_is_hardened(unit: dict[str, dict[str, list[str]]]) -> None:
    service = unit["Service"]
    required = {
        "ProtectSystem": "strict",
        "ProtectHome": "yes",
        "PrivateTmp": "yes",
        "PrivateDevices": "yes",
        "NoNewPrivileges": "yes",
        "CapabilityBoundingSet": "",
        "Restart": "on-failure",
    }
    assert {key: only(service[key]) for key in required} == required
    assert set(only(service["RestrictAddressFamilies"]).split()) == {"AF_INET", "AF_INET6", "AF_UNIX"}
    # Later SystemCallFilter lines may only deny more (~) than the allow-list of the first.
    first, *more = service["SystemCallFilter"]
    assert first == "@system-service"
    assert all(line.startswith("~") for line in more)


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed")
def test_systemd_analyze_verifies_the_unit(tmp_path: Path) -> None:
    # verify insists that ExecStart's program exists: point it at this interpreter, keep all else.
    program = shlex.split(only(unit_sections(UNIT.read_text())["Service"]["ExecStart"]))[0]
    copy = tmp_path / UNIT.name
    copy.write_text(UNIT.read_text().replace(program, sys.executable))
    result = subprocess.run(
        ["systemd-analyze", "verify", str(copy)], capture_output=True, text=True, timeout=60, check=False
    )
    complaints = [line for line in result.stderr.splitlines() if UNIT.name in line]
    assert result.returncode == 0 and complaints == [], result.stderr


# --- README ------------------------------------------------------------------------------------------


def test_ci_runs_exactly_the_readme_test_command() -> None:
    readme = (ROOT / "README.md").read_text()
    block = re.search(r"\*\*Test it[^\n]*\n+```sh\n(.+?)\n```", readme, re.S)
    assert block, "README.md has no 'Test it' command"
    command = block.group(1).strip()
    assert "pytest" in command and "\n" not in command
    ci_lines = [line.strip() for line in (ROOT / ".ci" / "run").read_text().splitlines()]
    assert command in ci_lines, f".ci/run does not run {command!r}"


def test_readme_env_template_names_only_real_settings() -> None:
    readme = (DEPLOY / "README.md").read_text()
    blocks = re.findall(r"```dotenv\n(.*?)```", readme, flags=re.DOTALL)
    assert blocks, "README.md has no ```dotenv template"
    names = re.findall(r"^#?\s*([A-Z][A-Z0-9_]*)=", "".join(blocks), flags=re.MULTILINE)
    assert set(names) <= SETTING_NAMES, set(names) - SETTING_NAMES
    assert {"TELEGRAM_BOT_TOKEN", "BOT_SECRET_KEY", "WEBHOOK_URL", "LOG_FORMAT"} <= set(names)


# --- the sub-commands the deploy files run -------------------------------------------------------------

needs_cli = pytest.mark.skipif(
    importlib.util.find_spec("bot.__main__") is None, reason="bot/__main__.py (the CLI) is not written yet"
)


def run_bot(*args: str, cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    # A clean environment in an empty folder: no .env or host setting leaks in.
    clean = {"PATH": os.environ.get("PATH", ""), **env}
    return subprocess.run(
        [sys.executable, "-m", "bot", *args],
        cwd=cwd,
        env=clean,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@needs_cli
def test_health_passes_only_with_a_fresh_heartbeat(tmp_path: Path) -> None:
    database = tmp_path / "bot.sqlite3"
    heartbeat = tmp_path / "bot.sqlite3.heartbeat"

    def healthy() -> bool:
        result = run_bot("health", cwd=tmp_path, DATABASE_PATH=str(database))
        assert "Traceback" not in result.stderr, result.stderr  # unhealthy, not crashed
        return result.returncode == 0

    assert not healthy()
    heartbeat.touch()
    assert healthy()
    ten_minutes_ago = time.time() - 600
    os.utime(heartbeat, (ten_minutes_ago, ten_minutes_ago))
    assert not healthy()


@needs_cli
def test_genkey_prints_a_new_fernet_key(tmp_path: Path) -> None:
    results = [run_bot("genkey", cwd=tmp_path) for _ in range(2)]
    assert [result.returncode for result in results] == [0, 0], results[0].stderr
    keys = [result.stdout.strip() for result in results]
    for key in keys:
        Fernet(key)
    assert keys[0] != keys[1]


# --- a real image, where a Docker engine answers ----------------------------------------------------------


def docker_engine_problem() -> str | None:
    if shutil.which("docker") is None:
        return "no docker client"
    try:
        info = subprocess.run(["docker", "info"], capture_output=True, text=True, timeout=20, check=False)
    except subprocess.TimeoutExpired:
        return "`docker info` did not answer within 20 s"
    return None if info.returncode == 0 else "no Docker engine answers `docker info`"


CHART_FONT_LOADS = (
    "from PIL import ImageFont; from bot.charts import _SYSTEM_FONT; ImageFont.truetype(_SYSTEM_FONT, 16)"
)


@pytest.mark.timeout(1200)  # a cold `docker build` may take its whole 900 s
def test_image_builds_and_runs_as_configured() -> None:
    problem = docker_engine_problem()
    if problem:
        pytest.skip(problem)
    tag = f"bmw-telegram-bot:test-{os.getpid()}"
    subprocess.run(
        ["docker", "build", "-q", "-f", str(DEPLOY / "Dockerfile"), "-t", tag, str(ROOT)],
        check=True,
        capture_output=True,
        timeout=900,
    )
    try:
        config = json.loads(
            subprocess.run(
                ["docker", "image", "inspect", tag], check=True, capture_output=True, text=True
            ).stdout
        )[0]["Config"]
        assert config["Healthcheck"]["Test"] == ["CMD", *HEALTH_COMMAND]
        assert "/data" in config["Volumes"]
        uid = subprocess.run(
            ["docker", "run", "--rm", "--entrypoint", "id", tag, "-u"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        assert int(uid) != 0
        key = subprocess.run(
            ["docker", "run", "--rm", tag, "genkey"], check=True, capture_output=True, text=True
        ).stdout
        Fernet(key.strip())
        # The chart's font, as bot/charts.py loads it (Pillow's fallback has no umlauts).
        subprocess.run(
            ["docker", "run", "--rm", "--entrypoint", "python", tag, "-c", CHART_FONT_LOADS],
            check=True,
            capture_output=True,
        )
    finally:
        subprocess.run(["docker", "image", "rm", "-f", tag], capture_output=True, check=False)
