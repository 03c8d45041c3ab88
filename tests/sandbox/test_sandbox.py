"""The loopback Bot API server, driven by a real python-telegram-bot Application and by the user driver."""

from __future__ import annotations

import asyncio
import io
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import asynccontextmanager

import httpx
import pytest
from PIL import Image
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from telegram import Bot, BotCommand, CopyTextButton, InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.error import BadRequest, Conflict, InvalidToken, NetworkError, RetryAfter
from telegram.ext import (
    AIORateLimiter,
    Application,
    ApplicationBuilder,
    BaseHandler,
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
    MessageHandler,
    TypeHandler,
    filters,
)

from bot.sandbox import ApiCall, ApiError, BotApiServer, Sandbox, SandboxUser
from bot.sandbox.server import command_entities, html_visible_text
from bot.servers import BackgroundServer
from tests.support.waits import UNTIL_SECONDS, bounded

# PTB itself reads RetryAfter.retry_after (deprecated as int in v22) whenever a 429 arrives.
pytestmark = pytest.mark.filterwarnings("ignore:.*retry_after.*:telegram.warnings.PTBDeprecationWarning")

Handler = BaseHandler[Update, ContextTypes.DEFAULT_TYPE, object]


def build_app(url: str, token: str, *, rate_limiter: AIORateLimiter | None = None) -> Application:
    builder = ApplicationBuilder().token(token).base_url(f"{url}/bot").base_file_url(f"{url}/file/bot")
    if rate_limiter is not None:
        builder = builder.rate_limiter(rate_limiter)
    return builder.build()


@asynccontextmanager
async def polling(app: Application, handlers: Sequence[Handler] = ()) -> AsyncIterator[Application]:
    """The Application started and polling the sandbox, as the bot runs in production."""
    for handler in handlers:
        app.add_handler(handler)
    async with app:
        await app.start()
        await app.updater.start_polling(poll_interval=0, timeout=1)
        try:
            yield app
        finally:
            await app.updater.stop()
            await app.stop()


async def echo(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    assert update.message is not None and update.message.text is not None
    await update.message.reply_text(update.message.text.upper())


def png(width: int = 40, height: int = 30) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (0, 102, 177)).save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.fixture
async def tg_bot(bot_api_url: str, bot_token: str) -> AsyncIterator[Bot]:
    """A bare Bot on the sandbox, for calls outside handlers."""
    async with Bot(bot_token, base_url=f"{bot_api_url}/bot", base_file_url=f"{bot_api_url}/file/bot") as bot:
        yield bot


@pytest.fixture
def alice(sandbox: Sandbox) -> SandboxUser:
    return sandbox.user(1001, "Alice", "alice_i3")


# ----- conversations through a polling Application ---------------------------------------------------


async def test_echo_handler_answers_in_the_chat(bot_api_url: str, bot_token: str, alice: SandboxUser) -> None:
    handlers = [MessageHandler(filters.TEXT & ~filters.COMMAND, echo)]
    async with polling(build_app(bot_api_url, bot_token), handlers):
        sent = alice.send("hello i3")
        answer = await alice.wait_for_bot_message("HELLO I3")
    assert [m.message_id for m in alice.messages] == [sent.message_id, sent.message_id + 1]
    assert answer.from_bot and not sent.from_bot
    assert answer.text == "HELLO I3" and answer.edits == 0 and not answer.deleted


async def test_command_keyboard_press_answer_and_edit(
    bot_api: BotApiServer, bot_api_url: str, bot_token: str, alice: SandboxUser
) -> None:
    async def start(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        assert update.message is not None
        keyboard = [
            [
                InlineKeyboardButton("🔋 Status", callback_data="status:WBY1Z"),
                InlineKeyboardButton("Lock", callback_data="lock"),
            ],
            [InlineKeyboardButton("Manual", url="https://example.org/i3")],
        ]
        await update.message.reply_text(
            "<b>Your i3</b>", parse_mode="HTML", reply_markup=InlineKeyboardMarkup(keyboard)
        )

    async def pressed(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        query = update.callback_query
        assert query is not None and query.data is not None
        await query.answer(f"checking {query.data}", show_alert=True)
        await query.edit_message_text(f"Status of {query.data.split(':')[1]}: 80 %")

    handlers = [CommandHandler("start", start), CallbackQueryHandler(pressed)]
    async with polling(build_app(bot_api_url, bot_token), handlers):
        alice.send("/start@bmw_i3_bot")
        menu = await alice.wait_for_bot_message("Your i3")
        assert [[b.text for b in row] for row in menu.buttons] == [["🔋 Status", "Lock"], ["Manual"]]
        assert menu.text == "<b>Your i3</b>" and menu.parse_mode == "HTML"
        with pytest.raises(ValueError, match="sends no callback query"):
            alice.press(menu, "Manual")
        with pytest.raises(LookupError, match="no button 'Unlock'"):
            alice.press(menu, "Unlock")
        query_id = alice.press(menu, "Status")
        edited = await alice.wait_for_bot_message("Status of WBY1Z")

    assert edited.message_id == menu.message_id and edited.edits == 1 and edited.buttons == []
    assert [(a.query_id, a.text, a.show_alert) for a in alice.callback_answers()] == [
        (query_id, "checking status:WBY1Z", True)
    ]
    edit = bot_api.calls_to("editMessageText")[0]
    assert edit.ok and edit.params["message_id"] == str(menu.message_id)


async def test_user_updates_of_every_kind_reach_their_handlers(
    bot_api_url: str, bot_token: str, alice: SandboxUser
) -> None:
    async def describe(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        message = update.effective_message
        assert message is not None and update.effective_chat is not None
        if message.venue:
            seen = f"venue {message.venue.title}"
            await context.bot.send_venue(
                update.effective_chat.id, 48.18, 11.56, "BMW Welt", "Am Olympiapark 1"
            )
        elif message.location:
            seen = f"location {message.location.latitude},{message.location.longitude}"
            await context.bot.send_location(update.effective_chat.id, 48.1, 11.5)
        elif message.sticker:
            seen = f"sticker {message.sticker.emoji}"
        else:
            seen = f"edited to {message.text}" if update.edited_message else f"text {message.text}"
        await context.bot.send_message(update.effective_chat.id, f"seen {seen}")

    async with polling(build_app(bot_api_url, bot_token), [MessageHandler(filters.ALL, describe)]):
        original = alice.send("charge to 80")
        await alice.wait_for_bot_message("seen text charge to 80")
        alice.edit(original, "charge to 90")
        await alice.wait_for_bot_message("seen edited to charge to 90")
        alice.send_location(48.137, 11.575)
        await alice.wait_for_bot_message("seen location 48.137,11.575")
        alice.send_venue(48.2, 11.6, "Home", "Street 1")
        await alice.wait_for_bot_message("seen venue Home")
        alice.send_sticker()
        await alice.wait_for_bot_message("seen sticker 🚗")

    messages = alice.messages
    assert messages[0].text == "charge to 90" and messages[0].edits == 1
    assert any(m.from_bot and m.location == (48.1, 11.5) and m.venue is None for m in messages)
    assert any(
        m.from_bot and m.venue == {"title": "BMW Welt", "address": "Am Olympiapark 1"} for m in messages
    )
    assert "user: [sticker 🚗]" in alice.transcript()


async def test_delete_marks_the_message_deleted(
    bot_api: BotApiServer, bot_api_url: str, bot_token: str, tg_bot: Bot, alice: SandboxUser
) -> None:
    async def forget(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        assert update.message is not None
        note = await update.message.reply_text("working…")
        await note.delete()
        await update.message.delete()
        await update.message.reply_text("forgotten")

    async with polling(build_app(bot_api_url, bot_token), [CommandHandler("forget", forget)]):
        command = alice.send("/forget")
        await alice.wait_for_bot_message("forgotten")
        with pytest.raises(BadRequest, match="Message to delete not found"):
            await tg_bot.delete_message(alice.id, command.message_id)

    assert [(m.text, m.deleted) for m in alice.messages] == [
        ("/forget", True),
        ("working…", True),
        ("forgotten", False),
    ]
    assert [m.text for m in alice.bot_messages] == ["forgotten"]
    assert "#1 user: [removed] (deleted)" in alice.transcript() and "/forget" not in alice.transcript()
    assert bot_api.calls_to("deleteMessage")[-1].description == "Bad Request: message to delete not found"


async def test_group_messages_presses_and_channel_posts_carry_their_chat_and_sender(
    bot_api_url: str, bot_token: str, sandbox: Sandbox, alice: SandboxUser
) -> None:
    seen: list[str] = []

    async def describe(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        chat, user = update.effective_chat, update.effective_user
        assert chat is not None and update.effective_message is not None
        who = user.first_name if user else f"sender_chat {update.effective_message.sender_chat.title}"
        seen.append(f"{chat.type} {chat.id} {chat.title}: {who}")
        if update.callback_query:
            await update.callback_query.answer("pressed in the group")
        elif update.message:
            await update.message.reply_text(
                f"{who} wrote",
                reply_markup=InlineKeyboardMarkup([[InlineKeyboardButton("Go", callback_data="go")]]),
            )

    async with polling(build_app(bot_api_url, bot_token), [TypeHandler(Update, describe)]):
        in_group = alice.in_group(-100123, "i3 owners")
        in_group.send("/status")
        reply = await in_group.wait_for_bot_message("Alice wrote")
        in_group.press(reply, "Go")
        await in_group.wait_for(lambda u: [a.text for a in u.callback_answers()] == ["pressed in the group"])
        post = sandbox.channel_post(-100456, "news")
        await in_group.wait_for(lambda u: len(seen) == 3)

    assert seen == [
        "group -100123 i3 owners: Alice",
        "group -100123 i3 owners: Alice",
        "channel -100456 Channel: sender_chat Channel",
    ]
    assert alice.messages == [] and [m.text for m in sandbox.chat(-100456)] == [post.text]
    assert [m.text for m in in_group.messages] == ["/status", "Alice wrote"]


async def test_photo_upload_arrives_intact_and_downloads_through_get_file(
    bot_api_url: str, tg_bot: Bot, alice: SandboxUser
) -> None:
    image = png(64, 48)
    alice.send("/map")
    sent = await tg_bot.send_photo(alice.id, photo=image, filename="range.png", caption="Range 120 km")
    again = await tg_bot.send_photo(alice.id, photo=sent.photo[-1].file_id)

    size = sent.photo[-1]
    assert (size.width, size.height, size.file_size) == (64, 48, len(image))
    assert again.photo[-1].file_id == size.file_id
    downloaded = await (await tg_bot.get_file(size.file_id)).download_as_bytearray()
    assert bytes(downloaded) == image
    assert [(m.photo, m.caption) for m in alice.bot_messages] == [(image, "Range 120 km"), (image, None)]
    async with httpx.AsyncClient(base_url=bot_api_url) as client:
        assert (await client.get(f"/_sandbox/files/{size.file_id}")).content == image
    with pytest.raises(BadRequest, match="Image_process_failed"):
        await tg_bot.send_photo(alice.id, photo=b"not an image", filename="x.png")
    with pytest.raises(BadRequest, match="Wrong file identifier"):
        await tg_bot.send_photo(alice.id, photo="AgACnope")


async def test_document_upload_keeps_its_bytes_and_name_and_downloads_through_get_file(
    tg_bot: Bot, alice: SandboxUser
) -> None:
    data = b"started,kwh\n2026-05-01T18:00:00+02:00,3.76\n"
    alice.send("/history")
    sent = await tg_bot.send_document(alice.id, document=data, filename="history.csv", caption="<b>All</b>")
    assert sent.document is not None and sent.document.file_name == "history.csv"
    assert (sent.document.mime_type, sent.document.file_size) == ("text/csv", len(data))
    again = await tg_bot.send_document(alice.id, document=sent.document.file_id)
    assert again.document is not None and again.document.file_id == sent.document.file_id
    downloaded = await (await tg_bot.get_file(sent.document.file_id)).download_as_bytearray()
    assert bytes(downloaded) == data
    documents = [(m.document, m.document_name, m.caption) for m in alice.bot_messages]
    assert documents == [(data, "history.csv", "<b>All</b>"), (data, "history.csv", None)]
    assert "[document history.csv" in alice.transcript()
    with pytest.raises(BadRequest, match="File must be non-empty"):
        await tg_bot.send_document(alice.id, document=b"", filename="empty.csv")


async def test_copy_text_buttons_show_their_text_and_send_no_press(tg_bot: Bot, alice: SandboxUser) -> None:
    alice.send("/link")
    code = InlineKeyboardButton("📋 Copy the code", copy_text=CopyTextButton("BCDF-GHJK"))
    await tg_bot.send_message(alice.id, "Your code: BCDF-GHJK", reply_markup=InlineKeyboardMarkup([[code]]))

    shown = await alice.wait_for_bot_message("Your code")
    assert shown.button("Copy").copy_text == "BCDF-GHJK"
    with pytest.raises(ValueError, match="copies 'BCDF-GHJK'; it sends no callback query"):
        alice.press(shown, "Copy")
    empty = InlineKeyboardButton("📋", copy_text=CopyTextButton(""))
    with pytest.raises(BadRequest, match="Button_copy_text_invalid"):
        await tg_bot.send_message(alice.id, "No code", reply_markup=InlineKeyboardMarkup([[empty]]))


async def test_a_button_keeps_its_style(tg_bot: Bot, alice: SandboxUser) -> None:
    alice.send("/unlock")
    yes = InlineKeyboardButton("Yes, unlock", callback_data="uy", style="danger")
    no = InlineKeyboardButton("No", callback_data="un")
    await tg_bot.send_message(alice.id, "Unlock?", reply_markup=InlineKeyboardMarkup([[yes, no]]))

    shown = await alice.wait_for_bot_message("Unlock?")
    assert [(b.text, b.style) for b in shown.buttons[0]] == [("Yes, unlock", "danger"), ("No", None)]


async def test_commands_are_stored_per_scope(bot_api: BotApiServer, tg_bot: Bot) -> None:
    commands = [BotCommand("status", "State of charge and range"), BotCommand("link", "Link your car")]
    assert await tg_bot.set_my_commands(commands)
    assert await tg_bot.get_my_commands() == tuple(commands)
    assert bot_api.commands(bot_api.token) == [c.to_dict() for c in commands]
    assert await tg_bot.get_my_commands(language_code="de") == ()
    with pytest.raises(BadRequest, match="Bot_command_invalid"):
        await tg_bot.set_my_commands([BotCommand("Status!", "bad name")])
    assert await tg_bot.delete_my_commands()
    assert await tg_bot.get_my_commands() == ()


# ----- limits and faults ---------------------------------------------------------------------------------


@pytest.fixture
def limited_api(bot_token: str) -> Iterator[tuple[BotApiServer, str]]:
    server = BotApiServer(flood_limit_per_second=5, per_chat_limit_per_second=None)
    server.add_bot(bot_token)
    with BackgroundServer(server.app) as http:
        yield server, http.url


async def test_flood_limit_answers_429_and_the_rate_limiter_gets_through(
    limited_api: tuple[BotApiServer, str], bot_token: str
) -> None:
    server, url = limited_api
    alice = Sandbox(server, bot_token).user(7)
    alice.send("/start")

    def floods() -> list[ApiCall]:
        return [c for c in server.calls_to("sendMessage") if c.error_code == 429]

    async with build_app(url, bot_token, rate_limiter=AIORateLimiter(max_retries=3)) as app:
        await asyncio.gather(*(app.bot.send_message(alice.id, f"limited {n}") for n in range(8)))
    limited = [m.text for m in alice.bot_messages]
    assert sorted(limited) == [f"limited {n}" for n in range(8)]
    retried = len(floods())
    assert retried >= 3  # 8 at once against 5 a second: some were refused, then retried

    # Right after, the window is still full: without a rate limiter the bot sees the 429s.
    async with build_app(url, bot_token) as app:
        results = await asyncio.gather(
            *(app.bot.send_message(alice.id, f"plain {n}") for n in range(8)), return_exceptions=True
        )
    refused = [r for r in results if isinstance(r, RetryAfter)]
    assert len(results) - len(refused) <= 5 and len(refused) >= 3
    assert len(floods()) == retried + len(refused)
    assert all(c.description == "Too Many Requests: retry after 1" for c in floods())


async def test_per_chat_limit_counts_each_chat_apart(bot_token: str) -> None:
    server = BotApiServer(per_chat_limit_per_second=1)
    server.add_bot(bot_token)
    sandbox = Sandbox(server, bot_token)
    alice, bob = sandbox.user(1, "Alice"), sandbox.user(2, "Bob")
    alice.send("hi")
    bob.send("hi")
    with BackgroundServer(server.app) as http:
        async with httpx.AsyncClient(base_url=f"{http.url}/bot{bot_token}") as client:
            first = (await client.post("/sendMessage", data={"chat_id": "1", "text": "one"})).json()
            second = (await client.post("/sendMessage", data={"chat_id": "1", "text": "two"})).json()
            other = (await client.post("/sendMessage", data={"chat_id": "2", "text": "one"})).json()
    assert first["ok"] and other["ok"]
    assert second == {
        "ok": False,
        "error_code": 429,
        "description": "Too Many Requests: retry after 1",
        "parameters": {"retry_after": 1},
    }
    assert [m.text for m in alice.bot_messages] == ["one"]


async def test_failed_and_dropped_polls_neither_lose_nor_duplicate_updates(
    bot_api: BotApiServer, bot_api_url: str, bot_token: str, alice: SandboxUser
) -> None:
    seen: list[int] = []

    async def record(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        seen.append(update.update_id)
        await echo(update, context)

    # Pending before polling starts, so the failing polls are the ones that carry them.
    for text in ("one", "two", "three"):
        alice.send(text)
    bot_api.inject("getUpdates", "error", status=500)
    bot_api.inject("getUpdates", "drop")
    async with polling(build_app(bot_api_url, bot_token), [MessageHandler(filters.TEXT, record)]):
        await alice.wait_for(lambda user: len(user.bot_messages) == 3)

    assert [m.text for m in alice.bot_messages] == ["ONE", "TWO", "THREE"]
    assert len(seen) == len(set(seen)) == 3
    polls = bot_api.calls_to("getUpdates")
    assert [(c.ok, c.error_code) for c in polls[:2]] == [(False, 500), (False, None)]
    assert polls[1].description == "connection dropped"


async def test_injected_faults_reach_the_bot(bot_api: BotApiServer, tg_bot: Bot, alice: SandboxUser) -> None:
    alice.send("hi")
    bot_api.inject("sendMessage", "flood", retry_after=7)
    bot_api.inject("sendMessage", "error", status=502)
    with pytest.raises(RetryAfter, match="Retry in 7 seconds"):
        await tg_bot.send_message(alice.id, "a")
    with pytest.raises(NetworkError, match="Bad Gateway"):
        await tg_bot.send_message(alice.id, "b")
    assert (await tg_bot.send_message(alice.id, "c")).text == "c"
    with pytest.raises(ValueError, match="fault kind"):
        bot_api.inject("sendMessage", "explode")


# ----- webhook ---------------------------------------------------------------------------------------------


async def test_webhook_delivers_with_secret_header_and_retries(
    bot_api: BotApiServer, tg_bot: Bot, alice: SandboxUser
) -> None:
    received: list[tuple[str | None, dict[str, object]]] = []

    async def hook(request: Request) -> Response:
        received.append((request.headers.get("x-telegram-bot-api-secret-token"), await request.json()))
        # The first delivery fails: the server must send the same update again.
        return Response(status_code=500 if len(received) == 1 else 200)

    with BackgroundServer(Starlette(routes=[Route("/hook", hook, methods=["POST"])])) as receiver:
        assert await tg_bot.set_webhook(f"{receiver.url}/hook", secret_token="s3cret-hook")
        with pytest.raises(Conflict, match="webhook is active"):
            await tg_bot.get_updates()
        alice.send("/status")
        await alice.wait_for(lambda user: len(received) == 2)
        # The server takes the update off its queue once the hook's 200 is back, a moment after the hook.
        async with bounded("the delivered update leaving the queue", UNTIL_SECONDS):
            while (info := await tg_bot.get_webhook_info()).pending_update_count:  # noqa: ASYNC110 (the server's)
                await asyncio.sleep(0.02)
        assert await tg_bot.delete_webhook()

    assert [secret for secret, _ in received] == ["s3cret-hook", "s3cret-hook"]
    assert received[0][1] == received[1][1]
    update = Update.de_json(received[1][1], tg_bot)
    assert update.message is not None and update.message.text == "/status"
    assert update.message.entities[0].type == "bot_command"
    assert info.url == f"{receiver.url}/hook" and info.pending_update_count == 0
    assert info.last_error_message == "Wrong response from the webhook: 500 Internal Server Error"
    assert "s3cret-hook" not in repr([c.params for c in bot_api.calls])
    assert await tg_bot.get_updates() == ()


# ----- errors with Telegram's descriptions -----------------------------------------------------------------


async def test_errors_carry_telegrams_descriptions(
    bot_api: BotApiServer, tg_bot: Bot, alice: SandboxUser
) -> None:
    def last_error() -> str | None:
        return bot_api.calls[-1].description

    with pytest.raises(BadRequest, match="Chat not found"):
        await tg_bot.send_message(alice.id, "before the user wrote")
    alice.send("/start")
    sent = await tg_bot.send_message(alice.id, "State of charge: 80 %")
    with pytest.raises(BadRequest, match="Message is not modified"):
        await tg_bot.edit_message_text("State of charge: 80 %", alice.id, sent.message_id)
    assert last_error() == (
        "Bad Request: message is not modified: specified new message content and reply markup are exactly "
        "the same as a current content and reply markup of the message"
    )
    with pytest.raises(BadRequest):
        await tg_bot.send_message(alice.id, "x" * 4097)
    assert last_error() == "Bad Request: message is too long"
    assert (await tg_bot.send_message(alice.id, "<b>" + "x" * 4096 + "</b>", parse_mode="HTML")).text
    too_long_data = InlineKeyboardMarkup([[InlineKeyboardButton("Go", callback_data="d" * 65)]])
    with pytest.raises(BadRequest):
        await tg_bot.send_message(alice.id, "menu", reply_markup=too_long_data)
    assert last_error() == "Bad Request: BUTTON_DATA_INVALID"
    with pytest.raises(BadRequest):
        await tg_bot.edit_message_text("gone", alice.id, 999)
    assert last_error() == "Bad Request: message to edit not found"
    with pytest.raises(BadRequest):
        await tg_bot.send_message(alice.id, "range < 5 km", parse_mode="HTML")
    assert last_error() == "Bad Request: can't parse entities: Unclosed start tag at byte offset 6"
    # A forged press from someone who never wrote: it reaches the bot, on a message it cannot see.
    query_id = Sandbox(bot_api, bot_api.token).user(666, "Mallory").press_data(sent.message_id, "forged")
    forged = (await tg_bot.get_updates())[-1].callback_query
    assert forged is not None and forged.from_user.first_name == "Mallory" and forged.data == "forged"
    assert forged.message is not None and not forged.message.is_accessible
    assert await tg_bot.answer_callback_query(query_id)
    with pytest.raises(BadRequest):
        await tg_bot.answer_callback_query(query_id)
    assert last_error() == "Bad Request: query is too old and response timeout expired or query ID is invalid"


async def test_wire_formats_json_and_unknown_routes(
    bot_api_url: str, bot_token: str, alice: SandboxUser
) -> None:
    alice.send("hi")
    async with httpx.AsyncClient(base_url=bot_api_url) as client:
        as_json = await client.post(
            f"/bot{bot_token}/sendMessage", json={"chat_id": alice.id, "text": "json"}
        )
        by_query = await client.get(
            f"/bot{bot_token}/sendMessage", params={"chat_id": alice.id, "text": "query"}
        )
        unknown_method = await client.post(f"/bot{bot_token}/sendTelepathy")
        bad_token = await client.post("/bot1:wrong/getMe")
    assert as_json.json()["result"]["text"] == "json" and by_query.json()["result"]["text"] == "query"
    assert as_json.json()["result"]["from"]["username"] == "bmw_i3_bot"
    assert (unknown_method.status_code, unknown_method.json()["description"]) == (404, "Not Found")
    assert bad_token.status_code == 401 and bad_token.json() == {
        "ok": False,
        "error_code": 401,
        "description": "Unauthorized",
    }
    with pytest.raises(InvalidToken):
        async with Bot("1:wrong", base_url=f"{bot_api_url}/bot") as bot:
            await bot.get_me()


async def test_long_poll_returns_when_an_update_arrives_and_offset_confirms(
    bot_api: BotApiServer, tg_bot: Bot, alice: SandboxUser
) -> None:
    waiting = asyncio.create_task(tg_bot.get_updates(timeout=30, read_timeout=40))
    # Give the poll time to reach the server; were it late, the update would simply be pending already.
    await asyncio.sleep(0.3)
    alice.send("wake up")
    updates = await asyncio.wait_for(waiting, 10)
    assert [u.message.text for u in updates if u.message] == ["wake up"]
    assert await tg_bot.get_updates(offset=updates[-1].update_id + 1) == ()
    assert (await tg_bot.get_webhook_info()).pending_update_count == 0


# ----- the HTTP control surface (the demo page's side) ------------------------------------------------------


async def test_control_surface_mirrors_the_driver(
    bot_api_url: str, bot_token: str, tg_bot: Bot, sandbox: Sandbox
) -> None:
    async with httpx.AsyncClient(base_url=f"{bot_api_url}/_sandbox/{bot_token}/users/55") as client:
        sent = (await client.post("/messages", json={"text": "/start", "first_name": "Dana"})).json()
        menu = await tg_bot.send_message(
            55, "menu", reply_markup=InlineKeyboardMarkup([[InlineKeyboardButton("Go", callback_data="go")]])
        )
        pressed = (await client.post("/press", json={"message_id": menu.message_id, "data": "go"})).json()
        await client.post("/location", json={"lat": 48.1, "lon": 11.5})
        await tg_bot.delete_message(55, menu.message_id)
        chat = (await client.get("/chat")).json()
        missing = await client.post("/messages", json={})
    updates = await tg_bot.get_updates()
    assert [u.effective_user.first_name for u in updates if u.effective_user] == ["Dana"] * 3
    assert updates[1].callback_query is not None
    assert updates[1].callback_query.id == pressed["callback_query_id"]
    assert updates[2].message is not None and updates[2].message.location is not None
    assert sent["text"] == "/start" and not sent["from_bot"]
    assert chat["messages"][1] == {
        "message_id": menu.message_id,
        "from_bot": True,
        "date": menu.date.timestamp(),
        "deleted": True,
    }
    assert chat["messages"][2]["location"] == [48.1, 11.5]
    assert missing.status_code == 400
    assert [
        (m.text, m.buttons[0][0].text if m.buttons else None) for m in sandbox.user(55, "Dana").messages
    ] == [
        ("/start", None),
        ("menu", "Go"),
        (None, None),
    ]


# ----- pure helpers -----------------------------------------------------------------------------------------


def test_command_entities_count_utf16_units() -> None:
    assert command_entities("🚗 /status@bmw_i3_bot now, then /charge") == [
        {"type": "bot_command", "offset": 3, "length": 18},
        {"type": "bot_command", "offset": 32, "length": 7},
    ]
    assert command_entities("a/b and http://x/y") == []


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("<b>open", 'Can\'t find end tag corresponding to start tag "b"'),
        ("<b>x</i>", 'Unmatched end tag at byte offset 4, expected "</b>", found "</i>"'),
        ("<blink>x</blink>", 'Unsupported start tag "blink" at byte offset 0'),
        ("é <", "Unclosed start tag at byte offset 3"),
    ],
)
def test_html_errors_name_the_problem(text: str, problem: str) -> None:
    with pytest.raises(ApiError) as error:
        html_visible_text(text)
    assert error.value.description == f"Bad Request: can't parse entities: {problem}"


def test_html_visible_text_drops_tags_and_entities() -> None:
    assert html_visible_text('<b>80 %</b> &lt;5 km <a href="https://x.org">map</a>') == "80 % <5 km map"


@pytest.mark.parametrize("host", ["evil.example", "evil.example:8470", "127.0.0.1.evil.example", "10.0.0.5"])
def test_foreign_host_names_get_nothing(bot_api_url: str, bot_token: str, host: str) -> None:
    """DNS rebinding: a page on another name that resolves to 127.0.0.1 reaches the port with its own name
    in Host. It gets neither the redirect nor the chat page (both carry the token), nor the API."""
    with httpx.Client(base_url=bot_api_url, headers={"Host": host}) as client:
        for path in (
            "/",
            f"/_sandbox/{bot_token}/chat",
            f"/_sandbox/{bot_token}/bot",
            f"/bot{bot_token}/getMe",
        ):
            response = client.get(path, follow_redirects=False)
            assert response.status_code == 421, path
            assert bot_token not in response.text and bot_token not in response.headers.get("location", "")
        sent = client.post(f"/_sandbox/{bot_token}/users/77/messages", json={"text": "/start"})
        assert sent.status_code == 421


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost:8470", "LOCALHOST", "[::1]:8470", "[::1]"])
def test_loopback_host_names_are_served(bot_api_url: str, bot_token: str, host: str) -> None:
    with httpx.Client(base_url=bot_api_url, headers={"Host": host}) as client:
        assert client.get("/", follow_redirects=False).headers["location"] == f"/_sandbox/{bot_token}/chat"
        assert client.get(f"/bot{bot_token}/getMe").json()["ok"] is True


async def test_updates_made_together_arrive_in_one_batch(
    sandbox: Sandbox, tg_bot: Bot, alice: SandboxUser
) -> None:
    waiting = asyncio.create_task(tg_bot.get_updates(timeout=30, read_timeout=40))
    await asyncio.sleep(0.3)  # the poll is waiting at the server
    with sandbox.together():
        alice.send("first")
        await asyncio.sleep(0.3)  # time enough for a waiting poll to answer, were the first one let out
        alice.send("second")
    updates = await asyncio.wait_for(waiting, 10)
    assert [u.message.text for u in updates if u.message] == ["first", "second"]
