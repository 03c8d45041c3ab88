"""What BMW CarData makes the bot say of its own: a link it no longer accepts, a blocked stream, the calls
left for Refresh."""

from __future__ import annotations

from datetime import datetime
from html import escape

from bot.cardata.models import StreamBlock
from bot.chat import prefs
from bot.chat.i18n import Msg

CARDATA_RELINK_PUSH = Msg(
    "🔑 BMW CarData no longer accepts the link to your car (unused for two weeks, or revoked), so I receive "
    "nothing from it and won't send charging messages. Please /link again."
)
# Why BMW lets nothing through an owner's stream: the push (told once, with "Try now") and /status's line.
CARDATA_STREAM_BLOCKED_PUSH = {
    StreamBlock.HELD: Msg(
        "📡 Another app holds your car's data stream at BMW (Home Assistant, evcc, ioBroker or a bridge, for "
        "example), and BMW allows only one, so nothing reaches me and I can't send charging messages. To get "
        "them here, stop that app's stream (or remove that app); I try again every few minutes by myself, or "
        "at once with the button."
    ),
    StreamBlock.NOT_CONFIGURED: Msg(
        "📡 BMW sends me nothing from your car: the data stream is not set up for it, so I can't send "
        "charging messages. In the MyBMW portal (your car → BMW CarData), open “Configure data stream” and "
        "tick the data to stream, and check that your CarData client is subscribed to “CarData Stream”. I "
        "try again every few minutes by myself, or at once with the button."
    ),
}
CARDATA_STREAM_BLOCKED_STATUS = {
    StreamBlock.HELD: Msg("📡 Another app holds this car's data stream at BMW: nothing new arrives."),
    StreamBlock.NOT_CONFIGURED: Msg(
        "📡 This car's data stream is not set up in the MyBMW portal: nothing new arrives."
    ),
}
CARDATA_TRY_NOW_BUTTON = Msg("🔄 Try now")
CARDATA_TRYING_NOW = Msg("Trying again now…")
CARDATA_STREAM_NOT_BLOCKED = Msg("Your car's stream is not waiting for BMW right now: nothing to try.")


SNAPSHOT_FAILED = Msg("⚠️ No fresh snapshot from BMW: {reason}")
FEW_CALLS_LEFT = 5  # from here on, a Refresh says how many of the day's BMW calls are left
CALLS_LEFT = Msg(
    "\n\n🔄 {calls} of today's BMW calls left for Refresh; the stream keeps this up to date meanwhile."
)


# BMW counts calls per account: co-owners (several Telegram users who linked the same one) share them.
NO_CALLS_LEFT = Msg("🔄 No BMW calls are left for your Refresh until {time}.")
CO_OWNERS_USED = Msg(
    "👥 The other owners linked to this BMW account used {calls} of today's calls: BMW counts calls per "
    "account, and each owner linked to it is kept an equal share."
)


def snapshot_failed(reason: str) -> str:
    return SNAPSHOT_FAILED.format(reason=escape(reason))


def co_owners_used(calls: int) -> str:
    """A line under a failed Refresh when co-owners' calls are why none are left, else nothing."""
    return f"\n{CO_OWNERS_USED.format(calls=calls)}" if calls else ""


def no_calls_left(retry_at: datetime, co_owner_calls: int) -> str:
    """Lines for the end of /status when co-owners' calls are why no Refresh is left today, else nothing."""
    if not co_owner_calls:
        return ""
    return f"\n\n{NO_CALLS_LEFT.format(time=prefs.date_time(retry_at))}{co_owners_used(co_owner_calls)}"


def calls_left(calls: int) -> str:
    """A line for the end of a refreshed status when few calls are left, else nothing."""
    return CALLS_LEFT.format(calls=calls) if calls <= FEW_CALLS_LEFT else ""
