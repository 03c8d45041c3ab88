"""Every sentence the bot says and every number format (HTML parse mode), one module per intent.

Callers keep `texts.NAME`: each module's names are re-exported here. Star imports on purpose: a name defined
but used nowhere stays visible to tests/test_names.py, as no import line names it. The catalogue is read from
every module of this package (bot/chat/i18n.py).
"""

from bot.chat.texts.alerts import *  # noqa: F403
from bot.chat.texts.basics import *  # noqa: F403
from bot.chat.texts.cardata import *  # noqa: F403
from bot.chat.texts.errors import *  # noqa: F403
from bot.chat.texts.formatting import *  # noqa: F403
from bot.chat.texts.history import *  # noqa: F403
from bot.chat.texts.link import *  # noqa: F403
from bot.chat.texts.link_cardata import *  # noqa: F403
from bot.chat.texts.maps import *  # noqa: F403
from bot.chat.texts.monthly import *  # noqa: F403
from bot.chat.texts.notify import *  # noqa: F403
from bot.chat.texts.poi import *  # noqa: F403
from bot.chat.texts.remote import *  # noqa: F403
from bot.chat.texts.remote_actions import *  # noqa: F403
from bot.chat.texts.schedule import *  # noqa: F403
from bot.chat.texts.settings import *  # noqa: F403
from bot.chat.texts.share import *  # noqa: F403
from bot.chat.texts.status import *  # noqa: F403
from bot.chat.texts.trips import *  # noqa: F403
