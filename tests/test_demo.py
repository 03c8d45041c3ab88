"""The demo in a real browser: `python -m bot demo` as a subprocess, its chat page in headless Chromium.

Debian's Chromium driven by Playwright for Python (nothing downloaded). The browser tests skip when
/usr/bin/chromium is absent; .ci/run installs it. `demo --telegram` is run against the sandbox as "Telegram".
"""

from __future__ import annotations

import os
import selectors
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import expect, sync_playwright

from bot.bmw.simulator import DEFAULT_PASSWORD, DEFAULT_USERNAME
from bot.cardata.models import keys as cd
from bot.cardata.simulator import DEFAULT_BEV_VIN as CARDATA_BEV_VIN
from bot.cardata.simulator import DEFAULT_CLIENT_ID as CARDATA_CLIENT_ID
from bot.charts import DRIVE_COLOUR
from bot.demo import CARDATA_CHARGE_MINUTES, demo_cardata_simulator
from bot.sandbox import BotApiServer, Sandbox
from bot.servers import BackgroundServer
from tests.support.bot import link
from tests.support.charts import ink_height_below_the_bars
from tests.test_history import _pixels

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
THIS_TREE = {"PYTHONPATH": str(Path(__file__).resolve().parents[1])}  # not the bot the venv has installed
STARTUP_GUARD = 60.0  # seconds: a hang guard for the demo's start, not a speed assertion
WAIT_MS = 30_000  # Playwright's per-step hang guard

expect.set_options(timeout=WAIT_MS)


# Per test: sync Playwright keeps an event loop in this thread while it runs, which async tests cannot share.
@pytest.fixture
def browser() -> Iterator[object]:
    if not CHROMIUM.exists():
        if os.environ.get("CI"):  # .ci/run installs it: there, a missing browser is a failure, not a skip
            pytest.fail(f"{CHROMIUM} is absent although .ci/run installs it")
        pytest.skip(f"{CHROMIUM} is absent (apt-get install chromium)")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser):  # type: ignore[no-untyped-def]
    context = browser.new_context(viewport={"width": 720, "height": 1000})
    context.set_default_timeout(WAIT_MS)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    yield page
    context.close()
    assert errors == [], f"JavaScript errors on the page: {errors}"


class DemoProcess:
    """`python -m bot demo ...` in its own temp dir; the banner's lines are read as they come. `one_stream`
    sends its log lines to stdout too, in the order a terminal shows them."""

    def __init__(
        self, tmp_path: Path, *args: str, env: dict[str, str] | None = None, one_stream: bool = False
    ) -> None:
        self.tmp = tmp_path / "tmp"
        self.tmp.mkdir()
        self.stderr = tmp_path / "demo.stderr"
        environment = {
            **os.environ,
            "TMPDIR": str(self.tmp),
            "PYTHONUNBUFFERED": "1",
            **THIS_TREE,
            **(env or {}),
        }
        with self.stderr.open("wb") as stderr:
            # cwd outside the repository: no .env is read, the demo runs on its embedded defaults.
            self.process = subprocess.Popen(
                [sys.executable, "-m", "bot", "demo", *args],
                cwd=tmp_path,
                env=environment,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT if one_stream else stderr,
            )
        self.banner = self._read_banner()

    def _read_banner(self) -> str:
        assert self.process.stdout is not None
        out = b""
        selector = selectors.DefaultSelector()
        selector.register(self.process.stdout, selectors.EVENT_READ)
        deadline = time.monotonic() + STARTUP_GUARD
        while b"Ctrl-C" not in out:
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"the demo did not start:\n{out.decode()}\n{self.stderr.read_text()}")
            if selector.select(timeout=0.5):
                out += os.read(self.process.stdout.fileno(), 65536)
        return out.decode()

    def url(self) -> str:
        return next(word for word in self.banner.split() if word.startswith("http://"))

    def interrupt(self) -> int:
        """Ctrl-C, then the exit code (a hang guard kills it)."""
        self.process.send_signal(signal.SIGINT)
        try:
            return self.process.wait(STARTUP_GUARD)
        finally:
            if self.process.poll() is None:
                self.process.kill()

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()


@pytest.fixture
def demo(tmp_path: Path) -> Iterator[DemoProcess]:
    process = DemoProcess(tmp_path, "--port", "0")
    yield process
    process.close()


def _bubble(page, text: str):  # type: ignore[no-untyped-def]
    return page.locator(".msg.bot", has_text=text).last


def _send(page, text: str) -> None:  # type: ignore[no-untyped-def]
    page.fill("#text", text)
    page.press("#text", "Enter")


def _link_i_remote(page) -> None:  # type: ignore[no-untyped-def]
    """/link with the i Remote API and the demo account, as the banner says, until "Linked!"."""
    _send(page, "/link")
    _bubble(page, "How should I reach your BMW?").get_by_role("button", name="i Remote API").click()
    _bubble(page, "Where is your ConnectedDrive account registered").get_by_role(
        "button", name="Europe"
    ).click()
    expect(_bubble(page, "e-mail address")).to_be_visible()
    _send(page, DEFAULT_USERNAME)
    expect(_bubble(page, "password")).to_be_visible()
    _send(page, DEFAULT_PASSWORD)
    expect(_bubble(page, "Linked!")).to_be_visible()


def test_demo_links_shows_status_locks_and_draws_the_range_map(demo: DemoProcess, page) -> None:  # type: ignore[no-untyped-def]
    url = demo.url()
    assert url.startswith("http://127.0.0.1:")
    assert DEFAULT_USERNAME in demo.banner and DEFAULT_PASSWORD in demo.banner
    page.goto(url)
    expect(page.locator("#bot-name")).to_have_text("BMW i3 (demo)")

    _link_i_remote(page)
    # The bot deletes the message with the password: it disappears from the page.
    expect(page.locator(".msg.user", has_text=DEFAULT_PASSWORD)).to_have_count(0)
    expect(page.locator(".msg.user", has_text=DEFAULT_USERNAME)).to_have_count(1)

    _send(page, "/status")
    status = _bubble(page, "updated")
    expect(status).to_contain_text("%")
    status.get_by_role("button", name="🔒 Lock").click()
    progress = _bubble(page, "Lock —")
    expect(progress).to_be_visible()
    progress_id = progress.get_attribute("data-message-id")
    done = _bubble(page, "is locked")
    expect(done).to_be_visible()
    # One message edited in place from the progress to the result.
    assert done.get_attribute("data-message-id") == progress_id
    expect(done.locator(".edited")).to_have_count(1)

    _bubble(page, "updated").get_by_role("button", name="Range map").click()
    expect(page.locator(".toast", has_text="Drawing the range map")).to_be_visible()
    photo = page.locator(".msg.bot .photo").last
    expect(photo).to_be_visible()
    page.wait_for_function(
        "() => { const i = document.querySelector('.msg.bot .photo'); "
        "return i && i.complete && i.naturalWidth > 0; }"
    )
    assert photo.evaluate("image => image.naturalWidth") == 800
    map_message = page.locator(".msg.bot", has=page.locator(".photo")).last
    expect(map_message).to_contain_text("Range of")
    # The demo's own tiles were used: no "could not be loaded" fallback note.
    expect(map_message).not_to_contain_text("could not be loaded")
    page.locator("#messages").evaluate("list => { list.scrollTop = list.scrollHeight; }")
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "demo-chat.png"))

    assert demo.interrupt() == 0
    assert list(demo.tmp.iterdir()) == [], "the demo left temporary files behind"
    assert DEFAULT_PASSWORD not in demo.stderr.read_text()


def test_demo_links_with_cardata_by_device_flow(demo: DemoProcess, page) -> None:  # type: ignore[no-untyped-def]
    assert CARDATA_CLIENT_ID in demo.banner
    page.goto(demo.url())
    _send(page, "/link")
    _bubble(page, "How should I reach your BMW?").get_by_role("button", name="BMW CarData").click()
    expect(_bubble(page, "Send me the client")).to_be_visible()
    _send(page, CARDATA_CLIENT_ID)
    flow = _bubble(page, "confirm the code")
    expect(flow.get_by_role("link", name="Open the BMW login")).to_be_visible()
    expect(flow.get_by_role("button", name="Copy the code")).to_be_visible()
    # The demo's BMW approves the code by itself after a few seconds; the same message says so.
    linked = _bubble(page, "Linked with BMW CarData")
    expect(linked).to_contain_text(f"…{CARDATA_BEV_VIN[-4:]}")
    expect(page.locator(".msg.user", has_text=CARDATA_CLIENT_ID)).to_have_count(0)

    _send(page, "/status")
    status = _bubble(page, "🕒")
    expect(status).to_contain_text("⚡ charging")  # the demo's BEV, from the snapshot taken at linking
    expect(status.get_by_role("button", name="Range (estimate)")).to_be_visible()
    expect(status.get_by_role("button", name="Lock")).to_have_count(0)
    status.get_by_role("button", name="Range (estimate)").click()
    expect(page.locator(".msg.bot", has=page.locator(".photo")).last).to_contain_text("Estimated range")

    assert demo.interrupt() == 0
    assert list(demo.tmp.iterdir()) == [], "the demo left temporary files behind"


@pytest.fixture
def page_server() -> Iterator[tuple[BotApiServer, str]]:
    server = BotApiServer()
    server.add_bot("4242:page-test-token-0123456789abcdef", username="page_bot", first_name="Page Bot")
    with BackgroundServer(server.app) as http:
        yield server, http.url


def test_chat_page_renders_bot_html_safely_and_behaves_like_telegram(page_server, page) -> None:  # type: ignore[no-untyped-def]
    server, url = page_server
    token = server.token
    sandbox = Sandbox(server, token)
    api = httpx.Client(base_url=f"{url}/bot{token}")

    def bot_call(method: str, **params: object) -> dict:  # type: ignore[type-arg]
        answer = api.post(f"/{method}", json=params).json()
        assert answer["ok"], answer
        return answer["result"]

    dana = sandbox.user(77, "Dana")
    dana.send("/start")  # opens the chat, so the bot can write
    hostile = (
        '<b>bold</b> <i>it</i> <code>x=1</code> <a href="https://example.org/">site</a> '
        '<a href="javascript:alert(1)">js</a> '
        "&lt;img src=x onerror=alert(1)&gt; &lt;script&gt;boom()&lt;/script&gt;"
    )
    rich = bot_call("sendMessage", chat_id=77, text=hostile, parse_mode="HTML")
    plain = bot_call("sendMessage", chat_id=77, text="<b>not bold</b> in plain text")
    keyboard = {"inline_keyboard": [[{"text": "Press me", "callback_data": "p:1"}]]}
    menu = bot_call("sendMessage", chat_id=77, text="version 1", reply_markup=keyboard)
    doomed = bot_call("sendMessage", chat_id=77, text="soon deleted")
    bot_call("sendLocation", chat_id=77, latitude=48.1775, longitude=11.55635)

    page.goto(f"{url}/_sandbox/{token}/chat?user=77&name=Dana")
    rich_bubble = page.locator(f'.msg[data-message-id="{rich["message_id"]}"] .text')
    expect(rich_bubble.locator("b")).to_have_text("bold")
    expect(rich_bubble.locator("i")).to_have_text("it")
    expect(rich_bubble.locator("code")).to_have_text("x=1")
    expect(rich_bubble.locator("a")).to_have_count(1)  # the javascript: link stays plain text
    expect(rich_bubble.locator("a")).to_have_attribute("href", "https://example.org/")
    expect(rich_bubble).to_contain_text("<img src=x onerror=alert(1)> <script>boom()</script>")
    assert page.locator(".msg img:not(.photo), .msg script").count() == 0
    plain_bubble = page.locator(f'.msg[data-message-id="{plain["message_id"]}"] .text')
    expect(plain_bubble).to_have_text("<b>not bold</b> in plain text")
    expect(page.locator(".msg.bot", has_text="📍 48.17750, 11.55635")).to_be_visible()

    # Edits replace the message in place; deletions remove it.
    bot_call(
        "editMessageText", chat_id=77, message_id=menu["message_id"], text="version 2", reply_markup=keyboard
    )
    bot_call("deleteMessage", chat_id=77, message_id=doomed["message_id"])
    edited = page.locator(f'.msg[data-message-id="{menu["message_id"]}"]')
    expect(edited).to_contain_text("version 2")
    expect(edited.locator(".edited")).to_have_count(1)
    expect(page.locator(".msg", has_text="version 1")).to_have_count(0)
    expect(page.locator(".msg", has_text="soon deleted")).to_have_count(0)

    # A press reaches the bot as a callback query; its answer shows as a toast.
    edited.get_by_role("button", name="Press me").click()
    expect(edited.locator(".key.pending")).to_have_count(1)
    queries: list[dict] = []  # type: ignore[type-arg]
    offset = 0
    for _ in range(6):  # long polls of 5 s each: a hang guard
        updates = bot_call("getUpdates", offset=offset, timeout=5)
        offset = max([offset] + [u["update_id"] + 1 for u in updates])
        queries += [u["callback_query"] for u in updates if "callback_query" in u]
        if queries:
            break
    [query] = queries
    assert query["data"] == "p:1" and query["message"]["message_id"] == menu["message_id"]
    bot_call("answerCallbackQuery", callback_query_id=query["id"], text="Pressed!")
    expect(page.locator(".toast", has_text="Pressed!")).to_be_visible()
    expect(edited.locator(".key.pending")).to_have_count(0)

    # Typing and the location form send as the page's user.
    page.fill("#text", "hello bot")
    page.press("#text", "Enter")
    page.click("#location-button")
    page.fill("#lat", "48.2")
    page.fill("#lon", "11.6")
    page.click("#location-form button[type=submit]")
    expect(page.locator(".msg.user", has_text="📍 48.20000, 11.60000")).to_be_visible()
    sent = [m for m in dana.messages if not m.from_bot]
    assert sent[-2].text == "hello bot" and sent[-1].location == (48.2, 11.6)
    api.close()


def test_chat_page_routes(page_server) -> None:  # type: ignore[no-untyped-def]
    server, url = page_server
    with httpx.Client(base_url=url) as client:
        home = client.get("/")
        assert home.status_code == 307 and home.headers["location"] == f"/_sandbox/{server.token}/chat"
        page = client.get(home.headers["location"])
        assert page.status_code == 200 and "script-src 'self'" in page.headers["content-security-policy"]
        assert client.get("/_sandbox/no-such-token/chat").status_code == 404
        assert client.get("/_sandbox/web/chat.js").status_code == 200
        # Only JSON acts as a user: a plain form POST from another web page is refused.
        form = client.post(f"/_sandbox/{server.token}/users/5/messages", data={"text": "/start"})
        assert form.status_code == 415
        assert client.post(f"/_sandbox/{server.token}/users/5/messages", json=["x"]).status_code == 400
    assert Sandbox(server, server.token).user(5).messages == []


async def test_demo_on_telegram_runs_the_bot_against_the_simulator(tmp_path: Path, page_server) -> None:  # type: ignore[no-untyped-def]
    server, url = page_server
    telegram = {"TELEGRAM_BOT_TOKEN": server.token, "TELEGRAM_API_URL": url}
    demo = DemoProcess(tmp_path, "--telegram", env=telegram)
    try:
        assert "http://" not in demo.banner  # no chat page: the chat is in Telegram
        assert DEFAULT_USERNAME in demo.banner and DEFAULT_PASSWORD in demo.banner
        eve = Sandbox(server, server.token).user(88, "Eve")
        await link(eve, both_backends=True)
        eve.send("/status")
        status = await eve.wait_for_bot_message("updated", timeout=WAIT_MS / 1000)
        assert "charging" in status.text  # the demo's BEV is on charge
        assert demo.interrupt() == 0
    finally:
        demo.close()
    assert list(demo.tmp.iterdir()) == []
    assert server.token not in demo.stderr.read_text()


def test_the_demos_cardata_i3_reports_like_a_real_one_and_the_banner_says_when(demo: DemoProcess) -> None:
    says = "Like a real i3, each car reports only when it is switched off and when a charge reaches 100 %"
    assert says in demo.banner
    # The report at 100 % is pushed (tests/cardata/test_quiet.py), and the banner promises it.
    promise = (
        f"reports at 100 %, about {CARDATA_CHARGE_MINUTES} minutes after the start: the bot tells you when"
    )
    assert promise in demo.banner
    sim = demo_cardata_simulator()
    assert sim.car(CARDATA_BEV_VIN).kind == "quiet" and sim.value(CARDATA_BEV_VIN, cd.SOC_HEADER) == "80"
    assert sim.drain_messages() == []  # charging: silent
    sim.advance(CARDATA_CHARGE_MINUTES * 60)
    reported = {m.key: m.value for m in sim.drain_messages() if m.vin == CARDATA_BEV_VIN}
    assert reported[cd.SOC_HEADER] == "100" and reported[cd.HVPM_FINISH_REASON] == "CHARGING_GOAL_REACHED"


def test_the_demos_banner_is_the_first_thing_printed(tmp_path: Path) -> None:
    """Libraries' INFO lines (amqtt, transitions) would bury it in a terminal, where stdout and stderr mix."""
    demo = DemoProcess(tmp_path, "--port", "0", env={"LOG_LEVEL": "INFO"}, one_stream=True)
    try:
        assert demo.banner.startswith("BMW i3 bot demo:"), demo.banner[:2000]
    finally:
        demo.close()


def test_ctrl_c_right_after_the_banner_stops_the_demo_cleanly(tmp_path: Path) -> None:
    """The banner offers Ctrl-C to stop the demo: right after it, the demo exits 0 and leaves no files."""
    demo = DemoProcess(tmp_path, "--port", "0")
    try:
        assert demo.interrupt() == 0, demo.stderr.read_text()[-2000:]
    finally:
        demo.close()
    assert list(demo.tmp.iterdir()) == [], "the demo left temporary files behind"
    assert "Traceback" not in demo.stderr.read_text()


def test_demo_on_telegram_needs_a_token(tmp_path: Path) -> None:
    env = {**{k: v for k, v in os.environ.items() if k != "TELEGRAM_BOT_TOKEN"}, **THIS_TREE}
    result = subprocess.run(
        [sys.executable, "-m", "bot", "demo", "--telegram"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=STARTUP_GUARD,
    )
    assert result.returncode == 2
    assert "TELEGRAM_BOT_TOKEN is required" in result.stderr


def _cut_labels(message) -> list[str]:  # type: ignore[no-untyped-def]
    """The message's button labels the page cuts short ("Range …"): wider than their button."""
    keys = message.locator(".key")
    expect(keys.first).to_be_visible()
    widths = keys.evaluate_all("keys => keys.map(k => [k.textContent, k.scrollWidth, k.clientWidth])")
    return [label for label, needed, shown in widths if needed > shown]


def test_on_a_phone_no_label_of_an_i_remote_cars_status_buttons_is_cut(demo: DemoProcess, browser) -> None:  # type: ignore[no-untyped-def]
    """Its /status has the most buttons: every remote command, the range map, and the other car."""
    context = browser.new_context(viewport={"width": 400, "height": 860})
    context.set_default_timeout(WAIT_MS)
    page = context.new_page()
    page.goto(demo.url())
    _link_i_remote(page)
    _send(page, "/status")
    status = _bubble(page, "updated")
    expect(status.get_by_role("button", name="Other car")).to_be_visible()
    assert _cut_labels(status) == []
    context.close()


def test_an_owner_on_a_phone_reads_status_history_map_alerts_and_settings(demo: DemoProcess, browser) -> None:  # type: ignore[no-untyped-def]
    """The demo's chat page 400 px wide, as a phone shows Telegram: a screenshot of each answer (paths
    printed), and the chart's words at least as tall as the message text there."""
    context = browser.new_context(viewport={"width": 400, "height": 860})
    context.set_default_timeout(WAIT_MS)
    page = context.new_page()
    shots = demo.tmp.parent / "phone"
    shots.mkdir()
    page.goto(demo.url())
    _send(page, "/link")
    _bubble(page, "How should I reach your BMW?").get_by_role("button", name="BMW CarData").click()
    expect(_bubble(page, "Send me the client")).to_be_visible()
    _send(page, CARDATA_CLIENT_ID)
    expect(_bubble(page, "Linked with BMW CarData")).to_be_visible()
    # The demo seeds its CarData i3's past week once it is linked, in a job each second: on a loaded machine
    # that can come after the first command, so /trips is asked until it shows the week (bounded).
    week = page.locator(".msg.bot", has_text="Last 7 days")
    for _ in range(20):
        _send(page, "/trips")
        try:
            expect(week.first).to_be_visible(timeout=1500)
            break
        except AssertionError:
            continue
    expect(week.first).to_be_visible()

    def shot(name: str) -> None:
        page.locator("#messages").evaluate("list => { list.scrollTop = list.scrollHeight; }")
        path = shots / f"{name}.png"
        page.screenshot(path=str(path))
        print(f"screenshot: {path}")

    _send(page, "/status")
    expect(_bubble(page, "🕒")).to_be_visible()
    assert _cut_labels(_bubble(page, "🕒")) == []
    shot("status")
    _send(page, "/history")
    chart = page.locator(".msg.bot", has=page.locator(".photo"), has_text="last 30 days").last
    expect(chart).to_be_visible()
    image = chart.locator(".photo")
    page.wait_for_function(
        "() => [...document.querySelectorAll('.msg.bot .photo')].every(i => i.complete && i.naturalWidth > 0)"
    )
    shot("history")
    # The chart's words as the phone shows them: the date labels' glyph height in the PNG (rows of dark
    # pixels under the bars), scaled by the width the page shows the picture at, against the font size the
    # page computes for a message's text.
    png = httpx.get(image.evaluate("img => img.src"), timeout=10).content
    shown_width = image.evaluate("img => img.getBoundingClientRect().width")
    natural_width = image.evaluate("img => img.naturalWidth")
    text_px = float(chart.locator(".text").evaluate("t => getComputedStyle(t).fontSize").removesuffix("px"))
    glyphs_px = ink_height_below_the_bars(png) * shown_width / natural_width
    print(
        f"chart: {natural_width} px shown {shown_width:.0f} px wide, "
        f"glyphs {glyphs_px:.1f} px, text {text_px} px"
    )
    assert glyphs_px >= text_px
    # The demo's CarData i3 lived a week before it was linked: its km per day beside the kWh, and /trips.
    assert _pixels(png, DRIVE_COLOUR) > 100
    expect(chart).to_contain_text("driven in")
    _send(page, "/trips")
    expect(_bubble(page, "Drives of")).to_contain_text("Last 7 days")
    shot("trips")
    _send(page, "/map")
    expect(
        page.locator(".msg.bot", has=page.locator(".photo"), has_text="Estimated range").last
    ).to_be_visible()
    shot("map")
    _send(page, "/alerts")
    expect(_bubble(page, "Alerts about your cars")).to_be_visible()
    shot("alerts")
    assert _cut_labels(_bubble(page, "Alerts about your cars")) == []
    _send(page, "/settings")
    expect(_bubble(page, "Time zone")).to_be_visible()
    shot("settings")
    _bubble(page, "Time zone").get_by_role("button", name="Deutsch").click()
    _send(page, "/alerts")
    expect(_bubble(page, "Hinweise zu deinen Autos")).to_be_visible()
    shot("alerts-de")
    assert _cut_labels(_bubble(page, "Hinweise zu deinen Autos")) == []
    context.close()
