"""ChatOrderedProcessor: one chat's updates in arrival order; a busy chat holds up no other chat."""

from __future__ import annotations

import asyncio

from telegram import Update
from telegram.ext import ApplicationBuilder, ContextTypes, MessageHandler, filters

from bot.updates import ChatOrderedProcessor


async def test_one_chat_in_order_while_a_flooding_chat_holds_up_nobody(bot_api_url, bot_token, sandbox):
    release = asyncio.Event()

    async def echo(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        assert update.message is not None and update.message.text is not None
        if update.message.text.startswith("slow"):
            await release.wait()
        await update.message.reply_text(f"got {update.message.text}")

    processor = ChatOrderedProcessor(max_concurrent_updates=2)
    application = (
        ApplicationBuilder()
        .token(bot_token)
        .base_url(f"{bot_api_url}/bot")
        .concurrent_updates(processor)
        .build()
    )
    application.add_handler(MessageHandler(filters.TEXT, echo))
    alice, bob = sandbox.user(31, "Alice"), sandbox.user(32, "Bob")
    async with application:
        await application.start()
        await application.updater.start_polling(poll_interval=0, timeout=1)
        try:
            with sandbox.together():
                for n in range(5):
                    alice.send(f"slow {n}")  # more than the two slots, all from one chat
                bob.send("hello")
            await bob.wait_for_bot_message("got hello")  # served while Alice's first update still waits
            # Bob's chat is idle once his reply is back at the bot (the sandbox shows it a moment before).
            await bob.wait_for(lambda _: processor.busy_chats == 1)
            assert alice.bot_messages == []
            release.set()
            await alice.wait_for(lambda u: len(u.bot_messages) == 5)
            assert [m.text for m in alice.bot_messages] == [f"got slow {n}" for n in range(5)]
            await alice.wait_for(lambda _: processor.busy_chats == 0)  # idle chats keep no queue
        finally:
            release.set()  # a failed check must not leave Alice's updates waiting: stop() waits for them
            await application.updater.stop()
            await application.stop()
