"""/share: a car shared with the household."""

from __future__ import annotations

from bot.chat.i18n import Msg

# /share (bot/chat/share.py) ---------------------------------------------------------------------------------

SHARE_INTRO = Msg(
    "👪 <b>Share a car</b> with your household: whoever you invite sees its status, map and charging history "
    "and gets its charge messages, in their own language. They never see your BMW account or your other "
    "cars, and cannot link, unlink or change the car's schedule. Remote commands stay off for them until you "
    "switch them on."
)
SHARE_CAR = Msg("<b>{car}</b>")
SHARE_NOBODY = Msg("shared with nobody yet")
SHARE_PERSON = Msg("• {name}")
SHARE_PERSON_REMOTE = Msg("• {name} (remote commands on)")
SHARE_INVITE_BUTTON = Msg("➕ Invite to {car}")
SHARE_REVOKE_BUTTON = Msg("❌ Stop sharing with {name}")
SHARE_REMOTE_BUTTON = Msg("🔐 Remote commands for {name}: {state}")
SHARE_INVITE_LINK = Msg(
    "Send this link to the person you want to share {car} with. It works once, within 24 hours:\n{link}"
)
SHARE_COPY_BUTTON = Msg("📋 Copy the link")
SHARE_LINK_SENT = Msg("The link is in the chat below. For another person, tap again in a few seconds.")
SHARE_TOO_MANY = Msg(
    "{car} has {limit} open invitations already: wait until one is used or expires (after 24 hours)."
)
SHARE_NOTHING_TO_SHARE = Msg("Only a car's owner can share it: link your own BMW account with /link first.")
SHARE_INVALID = Msg(
    "This invitation is not valid: it was used already, it expired (after 24 hours), or it never existed. "
    "Ask the car's owner for a new one."
)
SHARE_OWN_CAR = Msg("That is an invitation to your own car: send it to the person you want to share it with.")
SHARE_ALREADY = Msg("You already see {car}: try /status.")
SHARE_ASK = Msg(
    "{owner} invites you to see {car}: its status, map and charging history, and its charge messages. Accept?"
)
SHARE_ACCEPT_BUTTON = Msg("✅ Accept")
SHARE_DECLINED = Msg("OK, not accepted.")
SHARE_DONE = Msg("✅ You now see {car}: try /status. /unlink stops it.")
SHARE_JOINED = Msg("👪 {name} now sees {car}. /share lists who sees your cars.")
SHARE_REVOKED = Msg("{name} no longer sees {car}.")
SHARE_ENDED = Msg("👪 {owner} no longer shares {car} with you.")
SHARE_LEFT = Msg("👪 {name} no longer sees {car}: they left.")
SHARE_LEAVE_ASK = Msg("Stop seeing the cars shared with you? Your own settings stay until you /unlink again.")
SHARE_LEAVE_BUTTON = Msg("Yes, stop")
SHARE_LEAVE_DONE = Msg("Done: you no longer see the cars shared with you.")
SHARE_OWNER_ONLY = Msg("Only the car's owner can do that.")
SHARE_REMOTE_NOT_ALLOWED = Msg(
    "Remote commands are off for you on this car: its owner can switch them on for you in their /share."
)
SHARE_OWNER_MUST_RELINK = Msg(
    "The car's owner has to link their BMW account again before I can reach the car."
)
SHARE_LOCKED_BY = Msg("🔒 {name} locked {car}.")
SHARE_UNLOCKED_BY = Msg("🔓 {name} unlocked {car}.")
