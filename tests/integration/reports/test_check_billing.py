"""`python -m services.reports check` against the real billing service: billing in-process
(its consumers, outbox relay and HTTP API over a real port) and reports on the same topics of
Kafka and the same Postgres. What billing shows and what the journal holds agree; a drift in
the journal is reported per client and makes the check exit 1."""

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
import uvicorn
from sqlalchemy import text

from services.billing.app import build as build_billing
from services.reports.check import run_check
from shared.runtime import Service
from shared.settings import Settings
from tests.conftest import eventually
from tests.integration.billing.conftest import Practice
from tests.integration.reports.conftest import Reports
from tests.processes import free_port

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
async def billing(reports_settings: Settings) -> AsyncIterator[tuple[Service, Settings]]:
    """Billing on the reports tests' topics, its HTTP API on a port of its own (check calls it)."""
    port = free_port()
    settings = reports_settings.model_copy(
        update={"billing_automation_interval_s": 0, "billing_url": f"http://127.0.0.1:{port}"}
    )
    svc, app = build_billing(settings)
    await svc.start()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off"))
    task = asyncio.create_task(server.serve())
    await eventually(lambda: server.started, timeout=10, interval=0.02)
    yield svc, settings
    server.should_exit = True
    await task
    await svc.stop()


async def test_check_agrees_with_billing_and_reports_a_drift(
    billing: tuple[Service, Settings], reports: Reports, publish: Callable[..., Any], capsys: Any
) -> None:
    svc, settings = billing

    async def send(topic: str, event: dict[str, Any], key: str = "k") -> None:
        await publish(topic, event, key=key, settings=settings)

    http = httpx.AsyncClient(base_url=settings.billing_url)
    practice = Practice(f"practice-{uuid.uuid4().hex[:8]}", svc, http, send)
    ada, ben = f"ada-{uuid.uuid4().hex[:6]}", f"ben-{uuid.uuid4().hex[:6]}"
    for client in (ada, ben):
        await practice.client(client)
    await practice.session("s-ada", ada)
    await practice.session("s-ben-1", ben)
    await practice.session("s-ben-2", ben, date_of_service="2026-11-03")
    ada_bill = await practice.billed(ada, ["s-ada"])
    ben_bill = await practice.billed(ben, ["s-ben-1", "s-ben-2"])
    await practice.payment(ben, [(ben_bill["id"], 5000)])  # payments.events: billing and reports both read it

    async def billing_applied() -> bool:
        return (await practice.bill(ben_bill["id"]))["paid_cents"] == 5000

    await eventually(billing_applied, timeout=20)

    async def journal_booked() -> bool:  # two bills and the payment
        items = (await reports.get("/v1/journal", practice.id))["items"]
        return sorted(e["source"]["kind"] for e in items) == ["bill", "bill", "payment"]

    await eventually(journal_booked, timeout=20)
    owed = {ada: ada_bill["total_cents"], ben: ben_bill["total_cents"] - 5000}
    assert await run_check(settings, practice.id) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["practices"][practice.id] == {"clients_checked": 2, "differences": []}
    assert report["difference_count"] == 0

    # The read model drifts: the journal loses 10.00 of Ben's payment (as a lost or mangled event would).
    async with reports.svc.db.transaction() as session:
        await session.execute(
            text(
                "UPDATE journal_lines SET credit_cents = credit_cents - 1000 WHERE practice_id = :p "
                "AND client_id = :c AND account = 'accounts_receivable' AND credit_cents > 0"
            ),
            {"p": practice.id, "c": ben},
        )
    assert await run_check(settings, practice.id) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["practices"][practice.id]["differences"] == [
        {"client_id": ben, "journal_cents": owed[ben] + 1000, "billing_cents": owed[ben]}
    ]
    await http.aclose()
