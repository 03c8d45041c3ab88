"""Shared fixtures: the BMW simulator and the loopback Bot API server, each from its own support module."""

pytest_plugins = [
    "tests.support.simulator",
    "tests.support.sandbox",
    "tests.support.bot",
    "tests.support.tiles",
    "tests.support.cardata",
]
