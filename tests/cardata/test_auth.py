"""The TokenKeeper under many owners at once (issue 20): every stream's id token coming due in the same
minute (a thousand owners linked together, as in the soak) asks BMW for a few renewals at a time, not all
of them at once: hundreds queued in one HTTP pool held the event loop in the pool's bookkeeping."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from pathlib import Path

from bot.cardata import auth
from bot.cardata.auth import TokenKeeper
from bot.cardata.models import Tokens
from bot.cardata.storage import CarDataLink
from bot.crypto import generate_secret_key
from bot.store import Store

NOW = 1_800_000_000.0
OWNERS = range(1, 41)


class CountingAuth:
    """BMW's token endpoint as the keeper sees it: how many refreshes are under way at once."""

    def __init__(self) -> None:
        self.under_way = 0
        self.most = 0
        self.refreshed: list[str] = []

    async def refresh(self, client_id: str, tokens: Tokens) -> Tokens:
        self.under_way += 1
        self.most = max(self.most, self.under_way)
        for _ in range(3):  # BMW answers later: the other owners' renewals run meanwhile
            await asyncio.sleep(0)
        self.under_way -= 1
        self.refreshed.append(client_id)
        return replace(tokens, access_token=f"new-{client_id}", expires_at=NOW + 3600)


async def test_owners_whose_tokens_come_due_together_are_renewed_a_few_at_a_time(tmp_path: Path) -> None:
    store = Store(tmp_path / "bot.sqlite3", [generate_secret_key()], clock=lambda: NOW)
    for owner in OWNERS:
        due = Tokens("access", "id", "refresh", f"gcid-{owner}", NOW + 60, NOW + 86400)
        store.save_cardata_link(CarDataLink(owner, f"client-{owner}", due))
    bmw = CountingAuth()
    keeper = TokenKeeper(bmw, store, clock=lambda: NOW)  # type: ignore[arg-type]
    renewed = await asyncio.gather(*(keeper.tokens(owner) for owner in OWNERS))
    assert [t.access_token for t in renewed] == [f"new-client-{owner}" for owner in OWNERS]
    assert sorted(bmw.refreshed) == sorted(f"client-{owner}" for owner in OWNERS)  # each once
    assert bmw.most <= auth.REFRESHES_AT_ONCE < len(OWNERS), bmw.most
    store.close()
