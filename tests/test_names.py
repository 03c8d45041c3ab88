"""Names a reader can trust: one class name means one thing, comments point at files that exist, and no
module-level name in bot/ is left unused (issue 18, point 6)."""

from __future__ import annotations

import ast
import re
from collections import Counter, defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BOT = ROOT / "bot"
# Test doubles of BMW and Telegram: they model the services' own objects, not the bot's.
DOUBLES = ("bot/bmw/simulator/", "bot/cardata/simulator/", "bot/sandbox/")
# Each backend words its failures alike (each has a BadResponse, a VehicleNotFound); the package says whose.
ERROR_FAMILIES = {"bot/bmw/errors.py", "bot/cardata/errors.py"}
# Unused today; the backend seam (issue 18, point 2) makes it the real thing or deletes it.
AWAITING_THE_SEAM = {"bot/backends.py:BACKENDS"}


def _modules() -> dict[str, ast.Module]:
    return {
        path.relative_to(ROOT).as_posix(): ast.parse(path.read_text()) for path in sorted(BOT.rglob("*.py"))
    }


def _classes() -> dict[str, set[str]]:
    """Each class name (lower case) defined at a module's top level -> the modules defining it."""
    found: dict[str, set[str]] = defaultdict(set)
    for module, tree in _modules().items():
        for node in tree.body:
            if isinstance(node, ast.ClassDef):
                found[node.name.lower()].add(f"{module}:{node.name}")
    return found


def test_a_class_name_of_the_bot_means_one_thing() -> None:
    clashes = {}
    for name, where in _classes().items():
        modules = {w.split(":")[0] for w in where if not w.startswith(DOUBLES)}
        if len(modules) > 1 and not modules <= ERROR_FAMILIES:
            clashes[name] = sorted(where)
    assert not clashes


def test_no_two_class_names_differ_only_in_case() -> None:
    clashes = {
        name: sorted(where) for name, where in _classes().items() if len({w.split(":")[1] for w in where}) > 1
    }
    assert not clashes


def test_paths_named_in_code_and_docs_exist() -> None:
    texts = [
        *BOT.rglob("*.py"),
        *(ROOT / "tests").rglob("*.py"),
        *(ROOT / "docs").rglob("*.md"),
        ROOT / "README.md",
    ]
    missing = {
        f"{path.relative_to(ROOT)}: {named}"
        for path in texts
        for named in re.findall(r"\b(?:bot|tests|docs|benchmarks)/[\w/.-]+\.(?:py|md)\b", path.read_text())
        if not (ROOT / named).exists()
    }
    assert not missing


def _top_level_names(node: ast.stmt) -> list[str]:
    if isinstance(node, ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
        return [node.name]
    if isinstance(node, ast.Assign):
        return [target.id for target in node.targets if isinstance(target, ast.Name)]
    if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
        return [node.target.id]
    return []


def test_every_name_of_the_bot_is_used() -> None:
    """A module-level name, or a public method of a class of our own (no base: a library's hooks are called
    by the library), that no other line of bot/, tests/ or benchmarks/ mentions."""
    sources = [*BOT.rglob("*.py"), *(ROOT / "tests").rglob("*.py"), *(ROOT / "benchmarks").rglob("*.py")]
    words = Counter(re.findall(r"\w+", "\n".join(path.read_text() for path in sources)))
    unused = set()
    for module, tree in _modules().items():
        for node in tree.body:
            unused |= {f"{module}:{name}" for name in _top_level_names(node) if not name.startswith("__")}
            if isinstance(node, ast.ClassDef) and not node.bases:
                unused |= {
                    f"{module}:{node.name}.{method.name}"
                    for method in node.body
                    if isinstance(method, ast.FunctionDef | ast.AsyncFunctionDef)
                    and not method.name.startswith("_")
                }
    assert {
        where for where in unused if words[where.rsplit(":", 1)[1].rsplit(".", 1)[-1]] < 2
    } <= AWAITING_THE_SEAM


def test_no_module_level_name_is_assigned_twice() -> None:
    twice = {
        f"{module}:{name}"
        for module, tree in _modules().items()
        for name, count in Counter(
            name for node in tree.body if isinstance(node, ast.Assign) for name in _top_level_names(node)
        ).items()
        if count > 1
    }
    assert not twice


ROOM_LINES = 600  # issue 18, point 5: rooms a reader can hold


def test_no_module_of_the_bot_is_longer_than_a_reader_can_hold() -> None:
    long = {
        f"{path.relative_to(ROOT)}: {lines}"
        for path in BOT.rglob("*.py")
        if (lines := len(path.read_text().splitlines())) > ROOM_LINES
    }
    assert not long
