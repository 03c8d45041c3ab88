"""English and German: every sentence of bot/chat/texts/ has its German in the gettext catalogue, and a
user reads the bot in their language (Telegram's, or the one chosen in /settings), pushes and menus too."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import pytest

from bot.bmw import errors as bmw_errors
from bot.car_errors import ErrorKind
from bot.cardata import errors as cardata_errors
from bot.chat import i18n, prefs, texts
from bot.chat import settings as user_settings
from bot.chat.i18n import tr
from tests.support.bot import BEV_VIN, fast_client, link, running_bot
from tests.support.watcher import Cycles

GERMAN = prefs.Prefs(language="de", locale="de")


def test_every_sentence_has_a_german_translation_with_the_same_placeholders_and_tags():
    assert i18n.problems() == []


def test_the_check_names_what_a_new_sentence_still_needs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """What the lead sees after merging a branch with new sentences: an unmarked one, a missing translation
    and a broken one are named; `update` adds the missing one untranslated; its German makes it pass."""
    source = tmp_path / "texts"
    shutil.copytree(i18n.TEXTS, source)
    (source / "new.py").write_text(
        'NEW = Msg("🆕 A new sentence for <b>{car}</b>.")\nPLAIN = "Forgot to mark this one."\n',
        encoding="utf-8",
    )
    shutil.copytree(i18n.LOCALE_DIR, tmp_path / "locale")
    po = tmp_path / "locale" / "de" / "LC_MESSAGES" / "bot.po"
    po.write_text(
        po.read_text(encoding="utf-8").replace('msgstr "🔒 {car} ist verriegelt."', 'msgstr "🔒 {auto} zu."'),
        encoding="utf-8",
    )
    monkeypatch.setattr(i18n, "TEXTS", source)
    monkeypatch.setattr(i18n, "LOCALE_DIR", tmp_path / "locale")
    monkeypatch.setattr(i18n, "ROOT", tmp_path)

    found = i18n.problems()
    assert len(found) == 3, found
    assert "texts/new.py:2: 'Forgot to mark this one.' is not marked: wrap it in Msg(...)" in found[0]
    assert "locale/de/LC_MESSAGES/bot.po: placeholders or HTML tags differ: '🔒 {car} is locked.'" in found
    assert "locale/de/LC_MESSAGES/bot.po: missing: '🆕 A new sentence for <b>{car}</b>.'" in found

    i18n.update()
    assert (
        "locale/de/LC_MESSAGES/bot.po: not translated: '🆕 A new sentence for <b>{car}</b>.'"
        in i18n.problems()
    )
    text = po.read_text(encoding="utf-8")
    translated = text.replace(
        'msgid "🆕 A new sentence for <b>{car}</b>."\nmsgstr ""',
        'msgid "🆕 A new sentence for <b>{car}</b>."\nmsgstr "🆕 Ein neuer Satz für <b>{car}</b>."',
    ).replace('msgstr "🔒 {auto} zu."', 'msgstr "🔒 {car} ist verriegelt."')
    assert translated != text
    po.write_text(translated, encoding="utf-8")
    assert [p for p in i18n.problems() if "is not marked" not in p] == []
    i18n.translations.cache_clear()  # the copied catalogue must not stay in the cache


def test_moving_a_sentence_to_another_text_module_leaves_the_catalogue_as_it_is(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """The texts are one module per intent (bot/chat/texts/), all of them the catalogue's source: a sentence
    moved from one to another is still translated, and `update` leaves the .po byte for byte as it was."""
    source = tmp_path / "texts"
    shutil.copytree(i18n.TEXTS, source)
    basics, share = source / "basics.py", source / "share.py"
    moved = 'HELP = Msg("Here is what I can do:")\n'
    assert moved in basics.read_text(encoding="utf-8")
    basics.write_text(basics.read_text(encoding="utf-8").replace(moved, ""), encoding="utf-8")
    share.write_text(share.read_text(encoding="utf-8") + moved, encoding="utf-8")
    shutil.copytree(i18n.LOCALE_DIR, tmp_path / "locale")
    po = tmp_path / "locale" / "de" / "LC_MESSAGES" / "bot.po"
    monkeypatch.setattr(i18n, "LOCALE_DIR", tmp_path / "locale")
    monkeypatch.setattr(i18n, "ROOT", tmp_path)
    i18n.update()  # the catalogue as the repository's sources write it, before the move
    before = po.read_bytes()
    monkeypatch.setattr(i18n, "TEXTS", source)

    assert i18n.problems() == []
    assert "Here is what I can do:" in i18n.extracted()
    i18n.update()
    assert po.read_bytes() == before
    i18n.translations.cache_clear()  # the copied catalogue must not stay in the cache


def test_only_the_sentences_of_texts_are_translated_and_counts_take_the_right_form():
    with prefs.using(GERMAN):
        assert tr(texts.YES) == "Ja" and tr("Yes") == "Yes"  # a user's "Yes" stays theirs
        assert texts.CHARGES.format(1) == "1 Ladevorgang" and texts.CHARGES.format(3) == "3 Ladevorgänge"
        assert f"{texts.SWITCH_ON}" == "✅ an" and texts.plain(texts.YES_UNLOCK) == "🔓 Ja, entriegeln"
    assert tr(texts.YES) == "Yes"  # outside the block: English again
    assert texts.CHARGES.format(1) == "1 charge" and texts.CHARGES.format(3) == "3 charges"


# What each language's user must read, and what the other language's would (it must not show up).
SEEN = {
    "de": {
        "start": "Hallo Hans!",
        "help": "Das kann ich:",
        "help_line": "/lock — Türen verriegeln",
        "status": "aktualisiert",
        "electric": "km elektrisch",
        "buttons": ("🔄 Aktualisieren", "🔒 Verriegeln", "🔓 Entriegeln", "🗺 Reichweitenkarte"),
        "progress": "Verriegeln — ",
        "done": "ist verriegelt.",
        "push": "ist fertig geladen.",
        "push_buttons": ("🔄 Status", "🗺 Reichweitenkarte"),
    },
    "en": {
        "start": "Hi Hans!",
        "help": "Here is what I can do:",
        "help_line": "/lock — Lock the doors",
        "status": "updated",
        "electric": "km electric",
        "buttons": ("🔄 Refresh", "🔒 Lock", "🔓 Unlock", "🗺 Range map"),
        "progress": "Lock — ",
        "done": "is locked.",
        "push": "has finished charging.",
        "push_buttons": ("🔄 Status", "🗺 Range map"),
    },
}


@pytest.mark.parametrize(("language_code", "language"), [("de-DE", "de"), ("en", "en")])
async def test_a_user_reads_the_bot_in_their_telegram_language(
    bot, sandbox, simulator, language_code: str, language: str
):
    seen, other = SEEN[language], SEEN["en" if language == "de" else "de"]
    cycle = Cycles()
    simulator.set_status(BEV_VIN, doorLockState="UNLOCKED", chargingLevelHv=90)
    hans = sandbox.user(1301, "Hans", language_code=language_code)
    hans.send("/start")
    await hans.wait_for_bot_message(seen["start"])
    hans.send("/help")
    assert seen["help_line"] in (await hans.wait_for_bot_message(seen["help"])).text
    await link(hans, language=language)
    await cycle(bot)

    hans.send("/status")
    status = await hans.wait_for_bot_message(seen["status"])
    assert seen["electric"] in status.text and other["electric"] not in status.text
    labels = [button.text for row in status.buttons for button in row]
    assert all(label in labels for label in seen["buttons"]), labels

    hans.press(status, seen["buttons"][1])
    progress = await hans.wait_for_bot_message(seen["progress"])
    simulator.advance(60)
    done = await hans.wait_for_bot_message(seen["done"])
    assert done.message_id == progress.message_id

    simulator.plug_in(BEV_VIN, charging=True)
    await cycle(bot)
    simulator.advance(15 * 60)
    await cycle(bot)
    push = await hans.wait_for_bot_message(seen["push"])
    assert "90 % → 100 %" in push.text
    assert [button.text for row in push.buttons for button in row] == list(seen["push_buttons"])
    for message in hans.bot_messages:  # nothing in the other language on the way
        assert other["help"] not in (message.text or "") and other["done"] not in (message.text or "")


async def test_choosing_a_language_in_settings_changes_the_next_message_at_once(bot, sandbox):
    alice = sandbox.user(1302)  # Telegram says "en"
    alice.send("/settings")
    menu = await alice.wait_for_bot_message("Your settings")
    alice.press(menu, "Deutsch")
    await alice.wait_for(lambda u: "Deine Einstellungen" in u.now(menu).text)
    shown = alice.now(menu)
    assert "🗣 Sprache: Deutsch" in shown.text
    assert "✅ Deutsch" in [button.text for row in shown.buttons for button in row]
    alice.send("/help")
    await alice.wait_for_bot_message("Das kann ich:")
    alice.send("/nonsense")
    await alice.wait_for_bot_message("Diesen Befehl kenne ich nicht.")

    alice.press(menu, "English")
    await alice.wait_for(lambda u: "Your settings" in u.now(menu).text)
    alice.send("/help")
    await alice.wait_for_bot_message("Here is what I can do:")


async def test_the_command_menu_is_set_in_english_and_in_german(bot, bot_api, bot_api_url):
    english = bot_api.commands(bot_api.token)
    german = bot_api.commands(bot_api.token, language_code="de")
    assert {"command": "lock", "description": "Lock the doors"} in english
    assert {"command": "lock", "description": "Türen verriegeln"} in german
    assert [c["command"] for c in german] == [c["command"] for c in english]
    # The demo page's Menu shows the list of the language its user's Telegram app reports.
    async with httpx.AsyncClient(base_url=bot_api_url) as client:
        page_de = (
            await client.get(f"/_sandbox/{bot_api.token}/bot", params={"language_code": "de-AT"})
        ).json()
        page_en = (await client.get(f"/_sandbox/{bot_api.token}/bot", params={"language_code": "fr"})).json()
    assert page_de["commands"] == german and page_en["commands"] == english


async def test_a_conversation_that_times_out_says_so_in_the_users_language(
    bot_settings, sandbox, simulator_url, monkeypatch: pytest.MonkeyPatch
):
    """A timeout runs on the JobQueue, without the update's prefs: it takes the user's language itself."""
    monkeypatch.setattr(user_settings, "TYPED_WAIT_SECONDS", 0.5)
    hans = sandbox.user(1303, "Hans", language_code="de")
    async with running_bot(bot_settings, fast_client(simulator_url)):
        hans.send("/settings")
        menu = await hans.wait_for_bot_message("Deine Einstellungen")
        hans.press(menu, "🌍")
        await hans.wait_for(lambda u: "Welche Zeitzone?" in u.now(menu).text)
        hans.press(menu, "Namen eingeben")
        await hans.wait_for_bot_message("Schick mir den Namen deiner Zeitzone")
        await hans.wait_for_bot_message("Ich warte nicht mehr auf deine Antwort")


def test_the_check_names_a_refusal_that_would_reach_a_user_in_english(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """An error kind without its sentence, and a chat module showing a caught error's own English."""
    monkeypatch.delitem(texts.ERROR_SENTENCES, ErrorKind.KEYS_REFUSED)
    chat = tmp_path / "chat"
    chat.mkdir()
    (chat / "refresh.py").write_text(
        "from bot.cardata import errors\n"
        "\n"
        "\n"
        "async def refresh(say, fetch):\n"
        "    try:\n"
        "        await fetch()\n"
        "    except (TimeoutError, errors.BudgetSpent) as exc:\n"
        '        await say(f"No luck: {exc}")\n'
        "    except errors.CarDataError as exc:\n"
        "        await say(exc.message)\n",
        encoding="utf-8",
    )
    monkeypatch.setattr(i18n, "CHAT", chat)
    monkeypatch.setattr(i18n, "ROOT", tmp_path)

    assert i18n.problems() == [
        "ErrorKind.KEYS_REFUSED has no sentence in texts.ERROR_SENTENCES",
        "chat/refresh.py:8: the English of exc reaches the user: say texts.refusal(exc)",
        "chat/refresh.py:10: the English of exc reaches the user: say texts.refusal(exc)",
    ]


def test_a_refusal_is_said_in_the_users_language():
    spent = cardata_errors.BudgetSpent(datetime(2026, 3, 5, 23, 0, tzinfo=UTC))
    tokyo = prefs.Prefs(language="de", locale="de", zone=ZoneInfo("Asia/Tokyo"), zone_chosen=True)
    with prefs.using(tokyo):
        assert texts.refusal(spent) == (
            "Die BMW-CarData-Abrufe für heute sind aufgebraucht; weitere sind möglich ab 6. März 2026, 08:00."
        )
        assert texts.refusal(bmw_errors.BMWUnavailable("HTTP 503 from a server")) == (
            "Der BMW-Dienst ist gerade nicht erreichbar; bitte versuch es später noch einmal."
        )
