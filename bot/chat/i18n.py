"""The texts in the user's language: gettext catalogues, read and checked with Babel.

English is the source language. Every sentence in the modules of bot/chat/texts/ is a `Msg` (or a
`Plural`), its English the msgid; bot/locale/<language>/LC_MESSAGES/bot.po holds its translation. A Msg
translates itself into the current user's language (bot/chat/prefs.py) when it is formatted (`.format()`,
an f-string); one sent as it is goes through `tr` where texts leave the bot (say, edit, answer, buttons,
captions, pushes). Only a Msg is ever looked up: a formatted text, a name or a BMW string passes unchanged.

The catalogues are compiled in memory when first used: no binary file in the repository. A new sentence:
`python -m bot i18n update` adds its msgid to every catalogue, untranslated (a reworded one comes as a fuzzy
guess); fill in its msgstr; `python -m bot i18n check` (and tests/chat/test_i18n.py) lists what is still
missing.
"""

from __future__ import annotations

import ast
import gettext
import importlib
import io
import re
from collections.abc import Iterable
from functools import cache
from pathlib import Path
from string import Formatter
from typing import Any, TypeGuard

from babel import Locale
from babel.messages.catalog import Catalog, Message
from babel.messages.extract import extract
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po, write_po
from babel.support import Translations

from bot.car_errors import ErrorKind
from bot.chat import prefs

DOMAIN = "bot"
ROOT = Path(__file__).resolve().parents[2]
LOCALE_DIR = Path(__file__).resolve().parent.parent / "locale"
TEXTS = Path(__file__).resolve().with_name("texts")  # the package of sentences, one module per intent
CHAT = TEXTS.parent  # the modules that talk to users
# Where the errors of the car services live: a chat module must not show their own (English) messages.
ERROR_MODULES = ("bot.car_errors", "bot.bmw.errors", "bot.cardata.errors")
# Babel's extraction keywords: Msg("...") and Plural("... {n} ...", "... {n} ...").
KEYWORDS: dict[str, Any] = {"Msg": None, "Plural": (1, 2)}
_NULL = gettext.NullTranslations()


class Msg(str):
    """An English sentence of the texts, translated into the current user's language wherever it is formatted;
    as a `str` it is the English itself (the msgid)."""

    __slots__ = ()

    def translated(self) -> str:
        # A plain str: formatting it must not come back here.
        return str(translations(prefs.current().language).gettext(str(self)))

    def format(self, *args: object, **kwargs: object) -> str:
        return self.translated().format(*args, **kwargs)

    def __format__(self, spec: str) -> str:
        return format(self.translated(), spec)


class Plural:
    """A sentence with a count, "{n}" in both forms: the form the current language uses for n."""

    __slots__ = ("plural", "singular")

    def __init__(self, singular: str, plural: str) -> None:
        self.singular, self.plural = singular, plural

    def format(self, n: int, **kwargs: object) -> str:
        language = prefs.current().language
        return str(translations(language).ngettext(self.singular, self.plural, n)).format(n=n, **kwargs)


def tr(text: str) -> str:
    """`text` in the current user's language if it is one of the texts' sentences as it is, else unchanged."""
    return text.translated() if isinstance(text, Msg) else text


def po_path(language: str) -> Path:
    return LOCALE_DIR / language / "LC_MESSAGES" / f"{DOMAIN}.po"


@cache
def translations(language: str) -> gettext.NullTranslations:
    """The language's catalogue, compiled in memory (fuzzy entries left out: they await review); English,
    and a language without a catalogue, as the msgids."""
    path = po_path(language)
    if language == prefs.LANGUAGES[0] or not path.exists():
        return _NULL
    with path.open("rb") as po:
        catalog = read_po(po, locale=language, domain=DOMAIN)
    mo = io.BytesIO()
    write_mo(mo, catalog)
    mo.seek(0)
    return Translations(mo, domain=DOMAIN)


# Keeping the catalogues complete -------------------------------------------------------------------------


def sources() -> list[Path]:
    """The modules of the texts package, by name: the catalogue's source."""
    return sorted(TEXTS.glob("*.py"))


def extracted() -> Catalog:
    """Every msgid of the texts, module by module, in the order they appear there, as Babel extracts them."""
    template = Catalog(domain=DOMAIN, project="bmw-telegram-bot", charset="utf-8")
    for path in sources():
        with path.open("rb") as source:
            for line, message, comments, context in extract("python", source, KEYWORDS):
                template.add(
                    message, locations=[(_relative(path), line)], auto_comments=comments, context=context
                )
    return template


def _in_order_of(template: Catalog, catalog: Catalog) -> Catalog:
    """The template with the msgids the catalogue has in the catalogue's order, new ones after them: moving a
    sentence within or between the modules changes nothing in a .po."""
    known = {_key(message): index for index, message in enumerate(catalog) if message.id}
    ordered = Catalog(domain=DOMAIN, project="bmw-telegram-bot", charset="utf-8")
    for message in sorted(
        (message for message in template if message.id), key=lambda m: known.get(_key(m), len(known))
    ):
        ordered.add(
            message.id,
            locations=message.locations,
            auto_comments=message.auto_comments,
            context=message.context,
        )
    return ordered


def _key(message: Message) -> tuple[str, str | None]:
    return _forms(message.id)[0], message.context


def update() -> list[Path]:
    """Bring every catalogue in line with the texts: new msgids untranslated, reworded ones as fuzzy guesses,
    gone ones dropped. Returns the files written."""
    template = extracted()
    written = []
    for language in prefs.LANGUAGES[1:]:
        path = po_path(language)
        if path.exists():
            with path.open("rb") as po:
                catalog = read_po(po, locale=language, domain=DOMAIN)
        else:
            catalog = Catalog(
                locale=language,
                domain=DOMAIN,
                header_comment=f"# The bot's texts in {Locale(language).english_name}: see bot/chat/i18n.py.",
                project="bmw-telegram-bot",
                charset="utf-8",
                fuzzy=False,
            )
        catalog.update(_in_order_of(template, catalog), update_creation_date=False)
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("wb") as po:
            # Without locations, in the catalogue's own order: moving a sentence changes nothing here.
            write_po(po, catalog, width=110, no_location=True, ignore_obsolete=True, include_previous=True)
        written.append(path)
    translations.cache_clear()
    return written


def problems() -> list[str]:
    """What keeps a language from saying everything the texts say, one line each: sentences not marked as
    Msg, refusals that would reach a user in English (`english_refusals`), and per catalogue msgids missing,
    fuzzy, or with other placeholders or HTML tags than the English."""
    found = [
        f"{where}:{line}: {text!r} is not marked: wrap it in Msg(...)" for where, line, text in unmarked()
    ]
    found += english_refusals()
    template = extracted()
    for language in prefs.LANGUAGES[1:]:
        path = po_path(language)
        catalog = Catalog(locale=language)
        if path.exists():
            with path.open("rb") as po:
                catalog = read_po(po, locale=language, domain=DOMAIN)
        for message in template:
            if message.id:
                problem = _problem(message, catalog.get(message.id))
                if problem:
                    found.append(f"{_relative(path)}: {problem}: {_forms(message.id)[0]!r}")
    return found


def _problem(english: Message, translated: Message | None) -> str | None:
    if translated is None:
        return "missing"
    forms = _forms(translated.string)
    if not all(forms):
        return "not translated"
    if translated.fuzzy:
        return "fuzzy (check it, then remove the fuzzy flag)"
    if any(_shape(form) != _shape(_forms(english.id)[-1]) for form in forms):
        return "placeholders or HTML tags differ"
    return None


_TAG = re.compile(r"</?[a-zA-Z][^>]*>")


def _shape(text: str) -> tuple[list[str], list[str]]:
    """A text's {placeholders} (with their format specs) and HTML tags, sorted: a translation keeps both."""
    fields = sorted(f"{name}:{spec}" for _, name, spec, _ in Formatter().parse(text) if name is not None)
    return fields, sorted(_TAG.findall(text))


def _forms(text: str | Iterable[str] | None) -> list[str]:
    """A msgid or msgstr as its forms: one, or singular and plural (several in a translation)."""
    return [text] if isinstance(text, str) else list(text or [""])


def _relative(path: Path) -> str:
    """A path as the repository names it (bot/chat/texts/status.py)."""
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


# Words users read, as plain literals in the texts: a sentence needs letters and, to tell it from an API key
# ("doorDriverFront") or a code ("lock"), a space or a capital in front.
_SENTENCE = re.compile(r"[^\W\d_]{2}")
_PLACEHOLDERS_AND_TAGS = re.compile(r"\{[^}]*\}|<[^>]*>")


def unmarked() -> list[tuple[str, int, str]]:
    """String literals of the texts that read like a sentence but are no Msg or Plural, with their module
    and line: they would stay English. Docstrings, dict keys, RemoteAction's codes and format specs are no
    sentences."""
    return [(_relative(path), line, text) for path in sources() for line, text in _unmarked_in(path)]


def _unmarked_in(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    skip: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in KEYWORDS:
            skip.update(id(child) for child in ast.walk(node))
        elif isinstance(node, ast.Dict):
            skip.update(id(key) for key in node.keys if key is not None)
        elif isinstance(node, ast.FormattedValue) and node.format_spec is not None:
            skip.update(id(child) for child in ast.walk(node.format_spec))
        elif isinstance(node, ast.Call):
            skip.update(id(arg) for arg in _codes(node))
        elif isinstance(node, ast.Compare | ast.Raise):  # codes compared; errors for developers
            skip.update(id(child) for child in ast.walk(node))
        body = getattr(node, "body", None)
        if isinstance(body, list) and body and isinstance(body[0], ast.Expr):
            skip.add(id(body[0].value))  # a docstring
    return [
        (node.lineno, node.value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant)
        and isinstance(node.value, str)
        and id(node) not in skip
        and _SENTENCE.search(_PLACEHOLDERS_AND_TAGS.sub("", node.value))
        and not node.value.isupper()  # a name like "BMW" or "ECO PRO+"
        and (" " in node.value.strip() or node.value[:1].isupper())
    ]


_CODE_METHODS = frozenset({"get", "removeprefix", "replace", "startswith"})


def _codes(call: ast.Call) -> list[ast.expr]:
    """A call's literal arguments that are codes, not words: a RemoteAction row's service, capability,
    callback code and command, and what str methods take on API values."""
    if isinstance(call.func, ast.Name) and call.func.id == "RemoteAction":
        return [*call.args, *(kw.value for kw in call.keywords if kw.arg in ("code", "command"))]
    if isinstance(call.func, ast.Attribute) and call.func.attr in _CODE_METHODS:
        return [*call.args, *(kw.value for kw in call.keywords)]
    return []


# Refusals of BMW's clients: their messages are English, for logs --------------------------------------------


def english_refusals() -> list[str]:
    """Where a refusal of BMW would reach a user in English: an error kind without a sentence in
    texts.ERROR_SENTENCES, and a chat module showing a caught error's own message (say `texts.refusal`)."""
    from bot.chat import texts  # the texts import this module: only once both are loaded

    found = [
        f"ErrorKind.{kind.name} has no sentence in texts.ERROR_SENTENCES"
        for kind in ErrorKind
        if kind not in texts.ERROR_SENTENCES
    ]
    names = {
        name
        for module in map(importlib.import_module, ERROR_MODULES)
        for name, kind in vars(module).items()
        if isinstance(kind, type) and issubclass(kind, Exception) and kind.__module__ == module.__name__
    }
    for path in sorted(CHAT.glob("*.py")):
        for handler in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(handler, ast.ExceptHandler) and handler.name and _catches(handler, names):
                found += [
                    f"{_relative(path)}:{node.lineno}: the English of {handler.name} reaches the user:"
                    f" say texts.refusal({handler.name})"
                    for node in ast.walk(handler)
                    if _own_text(node, handler.name)
                ]
    return found


def _catches(handler: ast.ExceptHandler, names: set[str]) -> bool:
    caught = handler.type.elts if isinstance(handler.type, ast.Tuple) else [handler.type]
    return any(
        (isinstance(kind, ast.Name) and kind.id in names)
        or (isinstance(kind, ast.Attribute) and kind.attr in names)
        for kind in caught
    )


def _own_text(node: ast.AST, name: str) -> TypeGuard[ast.expr]:
    """`name.message`, `str(name)` or `f"{name}"`: the error's own (English) text."""
    if isinstance(node, ast.Attribute) and node.attr in ("message", "args"):
        return isinstance(node.value, ast.Name) and node.value.id == name
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in ("str", "repr"):
        return any(isinstance(arg, ast.Name) and arg.id == name for arg in node.args)
    return isinstance(node, ast.FormattedValue) and isinstance(node.value, ast.Name) and node.value.id == name
