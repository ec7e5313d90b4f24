"""Billing's data migration f8a0b2c4d6e8 run for real (one step down, then up again): for shares
made before documents kept its own list, it stages one SharesRecorded per client naming exactly what
staff had shared (not what was only created), which documents turns into client visibility."""

import asyncio
import uuid

import pytest
from alembic import command

from shared.migrations import alembic_config
from tests.conftest import eventually
from tests.integration.billing.conftest import Practice

pytestmark = pytest.mark.integration


async def test_the_backfill_migration_names_what_each_client_was_shown(practice: Practice, billing_app) -> None:
    svc, _ = billing_app
    cid, s1, s2 = (f"{p}-{uuid.uuid4().hex[:8]}" for p in ("client", "s", "s"))
    await practice.client(cid)
    await practice.session(s1, cid, date_of_service="2026-11-02")
    await practice.session(s2, cid, date_of_service="2026-11-03")
    shared = await practice.billed(cid, [s1])
    await practice.billed(cid, [s2])  # created, never shared
    assert (await practice.post(f"/v1/bills/{shared['id']}/share", {})).status_code == 200
    r = await practice.post("/v1/statements", {"client_id": cid, "start_date": "2026-11-01", "end_date": "2026-11-30"})
    assert r.status_code == 201, r.text
    statement = r.json()
    assert (await practice.post(f"/v1/statements/{statement['id']}/share", {})).status_code == 200
    await eventually(lambda: _shared(practice, f"/v1/statements/{statement['id']}"))

    cfg = alembic_config("billing", svc.settings.database_url("billing"), svc.settings)
    await asyncio.to_thread(command.downgrade, cfg, "e7f9a1b3c5d7")
    await asyncio.to_thread(command.upgrade, cfg, "head")

    def recorded(events: list[dict]) -> list[dict]:
        return [e for e in events if e["event_type"] == "SharesRecorded" and e["data"]["client_id"] == cid]

    [event] = recorded(await practice.events(lambda es: bool(recorded(es)), timeout=30))
    assert sorted((s["kind"], s["id"]) for s in event["data"]["sources"]) == sorted(
        [("bill", shared["id"]), ("statement", statement["id"])]
    )


async def _shared(practice: Practice, path: str) -> bool:
    return bool((await practice.get(path)).json()["shared"])
