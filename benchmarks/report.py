"""The one line format every benchmark prints for benchmarks/run's summary table, and its one parser."""

from __future__ import annotations

PREFIX = "RESULT "
Row = tuple[str, str, str, str, str]  # name | measured | baseline | ratio | target


def result(name: str, measured: str, baseline: str, ratio: float | None, target: str = "-") -> None:
    """Print one summary line; `ratio` is measured / baseline (None where there is no baseline)."""
    shown = "-" if ratio is None else f"{ratio:.2f}x"
    print(f"{PREFIX}{name} | {measured} | {baseline} | {shown} | {target}", flush=True)


def rows(output: str) -> list[Row]:
    """The summary lines in a benchmark's output."""
    found: list[Row] = []
    for line in output.splitlines():
        if line.startswith(PREFIX):
            parts = [part.strip() for part in line.removeprefix(PREFIX).split("|")]
            if len(parts) == 5:
                found.append((parts[0], parts[1], parts[2], parts[3], parts[4]))
    return found
