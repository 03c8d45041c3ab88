"""/share end to end in `python -m bot demo` (issue 19, "Done when"): the chat page switches between the two
people of a household, the owner invites, the other one opens the link and sees the car."""

from __future__ import annotations

import re

from playwright.sync_api import expect

from tests.test_demo import (  # noqa: F401 (browser, demo and page are fixtures)
    ARTIFACTS,
    DemoProcess,
    _bubble,
    _link_i_remote,
    _send,
    browser,
    demo,
    page,
)


def test_the_demo_page_shares_a_car_between_two_people(demo: DemoProcess, page) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    page.goto(demo.url())
    expect(page.locator("#me")).to_have_text("you: Alex (1001)")
    _link_i_remote(page)

    _send(page, "/share")
    _bubble(page, "with your household").get_by_role("button", name=re.compile("Invite to")).first.click()
    sent = _bubble(page, "Send this link")
    expect(sent).to_be_visible()
    found = re.search(r"https://t\.me/\S+", sent.inner_text())
    assert found is not None and found.group().startswith("https://t.me/bmw_i3_demo_bot?start=share-")

    page.locator("#switch").click()  # now the other person of the household, in their own chat
    expect(page.locator("#me")).to_have_text("you: Sam (1002)")
    expect(page.locator(".msg")).to_have_count(0)
    _send(page, found.group())  # a t.me link of the bot opens it, as Telegram does: /start <payload>
    expect(page.locator(".msg.user", has_text="/start share-")).to_have_count(1)
    _bubble(page, "Alex invites you").get_by_role("button", name="Accept").click()
    expect(_bubble(page, "You now see")).to_be_visible()
    _send(page, "/status")
    expect(_bubble(page, "updated")).to_contain_text("%")
    page.locator("#messages").evaluate("list => { list.scrollTop = list.scrollHeight; }")
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "demo-share.png"))

    page.locator("#switch").click()
    expect(page.locator("#me")).to_have_text("you: Alex (1001)")
    expect(_bubble(page, "Sam now sees")).to_be_visible()
    assert demo.interrupt() == 0
