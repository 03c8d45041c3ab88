"""Private chats only: in a group or channel the bot never asks for a secret, shows a car or acts on one."""

from __future__ import annotations

from bot.chat import keyboards, texts
from tests.support.bot import BEV_VIN, link

GROUP, CHANNEL = -100200300, -100400500
DEEP_LINK = f"https://t.me/bmw_i3_bot?start={keyboards.START_FROM_GROUP}"


def _deep_links(user) -> list:
    return [m for m in user.bot_messages if m.text == texts.PRIVATE_ONLY]


async def test_in_a_group_commands_get_one_line_leading_to_a_private_chat(bot, sandbox, simulator):
    alice = sandbox.user(901, "Alice")
    await link(alice)  # a linked owner: today /status in the group would show her car there
    in_group = alice.in_group(GROUP, "i3 owners")

    for count, command in enumerate(("/status", "/link", "/start", "/unlock@bmw_i3_bot"), 1):
        in_group.send(command)
        await in_group.wait_for(lambda u, n=count: len(_deep_links(u)) == n)
    in_group.send_location(48.1, 11.5)
    await in_group.wait_for(lambda u: len(_deep_links(u)) == 5)

    answers = in_group.bot_messages
    assert len(answers) == 5, in_group.transcript()  # one line per command, nothing else
    for answer in answers:
        [[button]] = answer.buttons
        assert button.url == DEEP_LINK and button.callback_data is None
    assert not simulator.requests_to("executeService", "POST")
    assert not [r for r in simulator.requests if BEV_VIN in r.path and "status" in r.path]


async def test_a_press_in_a_group_gets_a_neutral_answer_and_touches_no_car(bot, sandbox, simulator):
    alice = sandbox.user(902, "Alice")
    await link(alice)
    reads = len(simulator.requests)
    ref = bot.bot_data.services.refs.ref(alice.id, BEV_VIN)  # her own, valid car ref
    in_group = alice.in_group(GROUP)
    query_ids = [
        in_group.press_data(1, keyboards.data(action, ref))
        for action in (keyboards.REFRESH, keyboards.LOCATION)
    ]
    await in_group.wait_for(lambda u: {a.query_id for a in u.callback_answers()} >= set(query_ids))

    answers = [a.text for a in in_group.callback_answers() if a.query_id in query_ids]
    assert answers == [texts.STALE_BUTTON] * 2
    assert in_group.bot_messages == [] and len(simulator.requests) == reads


async def test_a_channel_post_gets_nothing(bot, sandbox, bot_api):
    sandbox.channel_post(CHANNEL, "/start")
    sandbox.channel_post(CHANNEL, "hello bot")
    # A private message sent after the posts, answered: the bot has taken the posts from the queue by then.
    bob = sandbox.user(903, "Bob")
    bob.send("/help")
    await bob.wait_for_bot_message("Here is what I can do")

    assert [m.from_bot for m in sandbox.chat(CHANNEL)] == [False, False]
    assert not [call for call in bot_api.calls if str(call.params.get("chat_id")) == str(CHANNEL)]
