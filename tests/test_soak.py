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
import time
from multiprocessing.connection import Client
from pathlib import Path

import pytest

from benchmarks import soak
from benchmarks.soak_world import DAY, World, serve

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
        r"across the kill: (\d+) cars charging at it, (\d+) chats .* expected (\d+) .*, lost 0, doubled 0\n",
        out,
    )
    assert across is not None and int(across[1]) > 0 and int(across[3]) > 0, out
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


def a_world(owners: int, *, faults: bool = False) -> World:
    """The soak's world in this process, its simulators' clocks together (as `serve` sets them), unserved:
    its cars driven here, its tally read directly."""
    world = World(owners, seed=20, steps=96, step_seconds=300, faults=faults)
    world.populate()
    world.cardata.advance(DAY - world.cardata.now() % DAY)  # midnight, ahead of the i Remote clock
    world.bmw.advance(world.cardata.now() - world.bmw.now())
    return world


@pytest.mark.parametrize("switched_off", [True, False])
def test_a_quiet_cars_stop_short_is_expected_only_when_a_switch_off_reported_it(switched_off: bool) -> None:
    world = a_world(2)  # one i Remote owner, one quiet CarData car
    quiet = world.people[1]
    assert quiet.kind == "quiet"
    world.cardata.set_soc(quiet.vin, 70.0)
    world._plug(quiet)
    world.cardata.advance(600)
    world._unplug(quiet)  # stopped short: a quiet i3 says nothing of it until it is switched off
    world.cardata.advance(600)
    if switched_off:
        world._drive(quiet, 0)  # the burst at switch-off tells the bot of the end
    world._plug(quiet)
    world.cardata.advance(
        3600
    )  # full: its burst tells of this charge, and (not switched off) of one 70-100 %
    assert [h["displayedSoc"] for h in world._history(quiet)] == [80, 100]
    tally = world.tally()
    assert (tally["expected"], tally["maybe"]) == ((2, 0) if switched_off else (1, 1))


def test_across_the_kill_a_family_member_is_not_expected_to_hear_after_the_owners_unlink() -> None:
    world = a_world(16)
    owner = world.people[7]  # an i Remote owner whose car is shared with family (n % 20 == 7)
    assert owner.backend == "iremote" and owner.member is not None
    unlinked = world.cardata.now()
    world.unlinked[owner.tg_id] = [unlinked, unlinked + 3600]  # the /unlink ended the share for good
    world.cardata.advance(4 * 3600)
    world.bmw.advance(4 * 3600)
    world.bmw.set_status(owner.vin, chargingLevelHv=50)
    world._plug(owner)
    world.bmw.advance(600)
    world.cardata.advance(600)
    world.killed(time.time())  # mid-charge
    world.bmw.advance(3600)
    world.cardata.advance(3600)
    world._charged_full()
    assert world.tally()["expected"] == 1  # the owner's, the member's no more
    kill = world.tally()["kill"]
    assert kill is not None and (kill["cars"], kill["chats"], kill["expected"]) == (1, 1, 1)


def test_a_minute_the_wall_clock_carried_the_world_past_is_still_acted_on() -> None:
    world = a_world(2, faults=True)

    def wall(seconds: float) -> None:  # the simulators' clocks run on with the wall clock between steps
        world.cardata.advance(seconds)
        world.bmw.advance(seconds)

    world.advance(0)
    world.act()
    wall(2 * 3600 + 49 * 60 + 30)
    assert time.strftime("%H:%M", time.gmtime(world.advance(1))) == "02:59"
    world.act()
    wall(40)  # the step's wall time: the next step ends at 03:05, its five minutes 03:01-03:05
    world.advance(2)
    world.act()
    assert "bmw 500 x50" in world.faults_done  # scheduled at 03:00
