"""One error path for both backends: every refusal of a car service is a `CarServiceError` with a kind, and
the chat words each kind once, in the user's language (the end-to-end refusals are in test_faults.py,
chat/test_cardata.py and chat/test_i18n.py)."""

from __future__ import annotations

from zoneinfo import ZoneInfo

import pytest

from bot.bmw import errors as bmw
from bot.cardata import errors as cd
from bot.chat import common, prefs, texts

GERMAN = prefs.Prefs(language="de", locale="de", zone=ZoneInfo("Europe/Berlin"), zone_chosen=True)


@pytest.mark.parametrize(
    "error", [cd.CarDataUnavailable(), cd.NotYourCar(), cd.RelinkNeeded(), bmw.BMWUnavailable()]
)
def test_the_chat_words_a_refusal_of_either_backend_in_one_place(error: Exception) -> None:
    assert isinstance(error, common.REFUSALS)
    assert common.error_text(error) == f"⚠️ {texts.refusal(error)}"


def test_the_same_refusal_reads_the_same_whichever_backend() -> None:
    with prefs.using(GERMAN):
        assert texts.refusal(cd.CarDataUnavailable()) == texts.refusal(bmw.BMWUnavailable())
        assert texts.refusal(cd.VehicleNotFound()) == texts.refusal(bmw.VehicleNotFound())
        assert "nicht erreichbar" in texts.refusal(cd.CarDataUnavailable())


def test_an_error_s_own_message_is_for_logs_not_a_sentence_for_users() -> None:
    for module in (bmw, cd):
        for error in vars(module).values():
            if isinstance(error, type) and issubclass(error, Exception):
                assert not hasattr(error, "default_message"), error
