"""The soak (benchmarks/soak.py, issue 20) in small, so that it does not rot: ten owners on both backends
for six simulated hours of an evening (their charges) in 15-minute steps, against both simulators and the
Bot API sandbox on loopback; one switches to German and miles, one sets the charge-level alert, one
unlinks and links again; once with the bot in the soak's process, once in processes of its own, the first
SIGKILLed mid-charge."""

from __future__ import annotations

import argparse
import multiprocessing
import os
import re
from multiprocessing.connection import Client
from pathlib import Path

import pytest

from benchmarks import soak
from benchmarks.soak_world import serve

SHORT = ["--hours", "6", "--start-hour", "16", "--owners", "10", "--step", "15"]
TARGETS = (
    "0 pushes lost",
    "0 pushes doubled",
    "0 alerts lost",
    "charge ends in the owner's language",
    "0 commands re-sent",
    "CarData calls never over budget",
)


# About 50 s on a busy 2-core machine, the suite's slowest test: the limit is a hang guard, not a speed bar.
@pytest.mark.timeout(300)
def test_a_short_soak_runs_and_doubles_nothing(capsys: pytest.CaptureFixture[str]) -> None:
    soak.main([*SHORT, "--stalls"])
    out = capsys.readouterr().out
    assert re.search(r"stalls over 40 ms: \d+, [\d.]+ s in all", out), out  # the sampler's day report
    pushes = re.search(r"pushes: expected (\d+) \(and \d+ that may come\), delivered (\d+)", out)
    assert pushes is not None and int(pushes[1]) > 0 and int(pushes[2]) > 0, out  # charges ended, pushed
    assert "day 1: RSS" in out and "i Remote calls per car" in out, out
    for target in TARGETS:
        assert re.search(rf"met +{target}", out), out
    # The owners' changes went through the chat: German and miles, the level alert, /unlink and /link again.
    for change in ("'settings de': 1", "'alert on': 1", "'unlinked': 1", "'linked again': 1"):
        assert change in out, out
    assert re.search(r"level: expected [1-9]", out), out  # the evening's charge crossed the owner's level


@pytest.mark.timeout(300)
def test_a_short_soak_with_the_bot_killed_mid_charge(capsys: pytest.CaptureFixture[str]) -> None:
    soak.main([*SHORT, "--kill"])
    out = capsys.readouterr().out
    killed = re.search(r"SIGKILL ([\d.]+) s after the checkpoint", out)
    assert killed is not None and 0.2 <= float(killed[1]) < 5, out  # within the window, bounded
    # The first process reported until the kill, the second on the same database to the end.
    assert re.search(r"day 1 until the kill at \d\d:\d\d: RSS", out) and "day 1: RSS" in out, out
    across = re.search(
        r"across the kill: (\d+) cars charging at it, (\d+) chats .* expected (\d+), delivered (\d+)", out
    )
    assert across is not None and int(across[1]) > 0 and int(across[3]) > 0, out
    assert across[3] == across[4], out
    for target in (
        *TARGETS,
        "the kill landed mid-charge",
        r"RSS after day 1 grows <= 10 %, per bot process life",
    ):
        assert re.search(rf"met +{target}", out), out


def test_a_bot_process_that_dies_fails_the_soak_with_its_exit_code() -> None:
    spawn = multiprocessing.get_context("spawn")
    receiving, sending = spawn.Pipe(duplex=False)
    process = spawn.Process(target=os._exit, args=(3,), name="soak-bot-1")
    process.start()
    sending.close()
    with pytest.raises(RuntimeError, match="soak-bot-1 died, exit code 3"):
        soak.follow(process, receiving, soak.Report(), "done")


def test_a_bot_process_that_fails_fails_the_soak_with_its_traceback(tmp_path: Path) -> None:
    spawn = multiprocessing.get_context("spawn")
    receiving, sending = spawn.Pipe(duplex=False)
    nowhere = str(tmp_path / "no-world.sock")  # no world listens there
    args = (argparse.Namespace(), nowhere, {}, tmp_path, "", soak.Progress(), 0.0, sending)
    process = spawn.Process(target=soak.bot_process, args=args, name="soak-bot-1")
    process.start()
    sending.close()
    with pytest.raises(RuntimeError, match=r"(?s)soak-bot-1 failed:\n.*Traceback.*FileNotFoundError"):
        soak.follow(process, receiving, soak.Report(), "done")
    process.join(30)
    assert process.exitcode == 1


def test_the_world_serves_the_next_bot_process_after_one_killed_mid_request(tmp_path: Path) -> None:
    spawn = multiprocessing.get_context("spawn")
    parent, child = spawn.Pipe()
    address = str(tmp_path / "world.sock")
    world = spawn.Process(target=serve, args=(child, 2, 4, 900, 16, False, 20, address), daemon=True)
    world.start()
    child.close()
    try:
        assert parent.poll(60), "the world did not come up"
        parent.recv()
        killed = Client(address, family="AF_UNIX")
        killed.send(("advance", 0))
        killed.close()  # gone before its answer came
        with Client(address, family="AF_UNIX") as next_one:
            next_one.send(("calls", None))
            assert next_one.poll(30), "the world no longer answers"
            assert set(next_one.recv()) >= {"bmw", "cardata"}  # its own answer, not the advance's
        parent.send(("now", None))  # the soak's own line still works too
        assert parent.poll(30) and isinstance(parent.recv(), float)
    finally:
        parent.send("stop")
        world.join(30)
    assert world.exitcode == 0
