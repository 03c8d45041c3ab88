"""The BMW CarData simulator: develop, test and demo the CarData backend without a car or a BMW account.

`CardataSimulator()` then `.add_default_account()` gives client id DEFAULT_CLIENT_ID of account
DEFAULT_GCID with an i3 BEV and an i3 REX; serve `.app` with `bot.servers.BackgroundServer` (OAuth at
`<url>/gcdm/oauth`, REST at `<url>`) and the stream with `CardataBroker(sim)`.
"""

from bot.cardata.simulator.app import CardataSimulator
from bot.cardata.simulator.broker import CardataBroker
from bot.cardata.simulator.fleet import (
    DEFAULT_BEV_VIN,
    DEFAULT_REX_VIN,
    DEFAULT_SECONDARY_VIN,
    CarSpec,
    default_fleet,
    i3_bev,
    i3_rex,
)
from bot.cardata.simulator.oauth import SCOPE, s256
from bot.cardata.simulator.rest import DAILY_QUOTA
from bot.cardata.simulator.state import DEFAULT_CLIENT_ID, DEFAULT_GCID
from bot.cardata.simulator.wire import OAuthError, RequestRecord, RestError, StreamMessage

__all__ = [
    "DAILY_QUOTA",
    "DEFAULT_BEV_VIN",
    "DEFAULT_CLIENT_ID",
    "DEFAULT_GCID",
    "DEFAULT_REX_VIN",
    "DEFAULT_SECONDARY_VIN",
    "SCOPE",
    "CarSpec",
    "CardataBroker",
    "CardataSimulator",
    "OAuthError",
    "RequestRecord",
    "RestError",
    "StreamMessage",
    "default_fleet",
    "i3_bev",
    "i3_rex",
    "s256",
]
