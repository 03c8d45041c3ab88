"""Logs: one line per event, JSON on request, bot tokens masked, PTB's update dumps kept out."""

from __future__ import annotations

import json
import logging

import pytest

from bot.logs import setup_logging

TOKEN = "123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw"


@pytest.fixture(autouse=True)
def _restore_logging():
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:], root.level = handlers, level


def test_json_lines_with_the_token_masked(capsys):
    setup_logging("INFO", "json")
    logging.getLogger("bot.test").info("calling https://api.telegram.org/bot%s/getMe", TOKEN)
    try:
        raise RuntimeError(f"failed at /bot{TOKEN}/sendMessage")
    except RuntimeError:
        logging.getLogger("bot.test").exception("boom")
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 2
    first, second = (json.loads(line) for line in lines)
    assert first["level"] == "INFO" and first["logger"] == "bot.test"
    assert "<bot-token>" in first["message"] and TOKEN not in lines[0]
    assert "RuntimeError" in second["exception"] and TOKEN not in lines[1]


def test_debug_never_reaches_telegrams_update_dumps(capsys):
    setup_logging("DEBUG", "text")
    logging.getLogger("telegram.ext.Application").debug("Processing update Update(text='my-password')")
    logging.getLogger("bot.test").debug("our own debug line")
    err = capsys.readouterr().err
    assert "my-password" not in err and "our own debug line" in err


def test_libraries_say_only_warnings_unless_debugging(capsys):
    setup_logging("INFO", "text")
    logging.getLogger("amqtt.broker").info("Starting session expiration monitor.")
    logging.getLogger("transitions.core").info("Finished processing state")
    logging.getLogger("amqtt.broker").warning("a library's warning")
    logging.getLogger("bot.app").info("starting with long polling")
    err = capsys.readouterr().err
    assert "Starting session" not in err and "Finished processing" not in err
    assert "a library's warning" in err and "starting with long polling" in err

    setup_logging("DEBUG", "text")
    logging.getLogger("amqtt.broker").debug("a library's detail")
    assert "a library's detail" in capsys.readouterr().err
