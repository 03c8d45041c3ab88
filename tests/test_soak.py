"""The soak (benchmarks/soak.py, issue 20) in small, so that it does not rot: ten owners on both backends
for six simulated hours of an evening (their charges) in 15-minute steps, against both simulators and the
Bot API sandbox on loopback; one switches to German and miles, one sets the charge-level alert, one
unlinks and links again."""

from __future__ import annotations

import re

import pytest

from benchmarks import soak


# About 50 s on a busy 2-core machine, the suite's slowest test: the limit is a hang guard, not a speed bar.
@pytest.mark.timeout(300)
def test_a_short_soak_runs_and_doubles_nothing(capsys: pytest.CaptureFixture[str]) -> None:
    soak.main(["--hours", "6", "--start-hour", "16", "--owners", "10", "--step", "15"])
    out = capsys.readouterr().out
    pushes = re.search(r"pushes: expected (\d+) \(and \d+ that may come\), delivered (\d+)", out)
    assert pushes is not None and int(pushes[1]) > 0 and int(pushes[2]) > 0, out  # charges ended, pushed
    assert "day 1: RSS" in out and "i Remote calls per car" in out, out
    targets = (
        "0 pushes lost",
        "0 pushes doubled",
        "0 alerts lost",
        "charge ends in the owner's language",
        "0 commands re-sent",
        "CarData calls never over budget",
    )
    for target in targets:
        assert re.search(rf"met +{target}", out), out
    # The owners' changes went through the chat: German and miles, the level alert, /unlink and /link again.
    for change in ("'settings de': 1", "'alert on': 1", "'unlinked': 1", "'linked again': 1"):
        assert change in out, out
    assert re.search(r"level: expected [1-9]", out), out  # the evening's charge crossed the owner's level
