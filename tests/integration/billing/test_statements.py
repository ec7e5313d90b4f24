"""Statements, the client's Documents tab, settings and the balance check, through the real
service (HTTP, Kafka, Postgres)."""

import asyncio
import datetime as dt
import json
import os
import sys
import uuid

import pytest
from sqlalchemy import update

from services.billing.db import bills
from shared import topics
from tests.conftest import eventually

pytestmark = pytest.mark.integration


def uid(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


async def _when(coro, predicate):
    value = await coro
    return value if predicate(value) else None


async def test_statement_balances_and_aging(practice) -> None:
    cid, s1, s2 = uid("client"), uid("sess"), uid("sess")
    await practice.client(cid)
    await practice.session(s1, cid)
    await practice.session(s2, cid, example="insurance-telehealth")
    today = dt.datetime.now(dt.UTC).date()
    first = await practice.billed(cid, [s1], due_date=today.isoformat())
    second = await practice.billed(cid, [s2])
    await practice.payment(cid, [(first["id"], 6000)])
    await eventually(lambda: _when(practice.bill(first["id"]), lambda b: b["paid_cents"] == 6000))

    start, end = today - dt.timedelta(days=3), today + dt.timedelta(days=40)
    r = await practice.post(
        "/v1/statements", {"client_id": cid, "start_date": start.isoformat(), "end_date": end.isoformat()}
    )
    assert r.status_code == 201, r.text
    st = r.json()
    assert st["number"] == 1 and st["status"] == "issued" and st["client_id"] == cid
    assert st["opening_balance_cents"] == 0
    kinds = [(e["kind"], e["amount_cents"]) for e in st["entries"]]
    assert sorted(kinds) == sorted([("charge", 16000), ("charge", 13000), ("payment", -6000)])
    assert st["closing_balance_cents"] == 16000 + 13000 - 6000
    # At the end date the first bill is 40 days past due, the second 10 days (30-day default).
    assert st["aging"] == {"current": 0, "days_1_30": 13000, "days_31_60": 10000, "days_61_90": 0, "days_over_90": 0}

    later = await practice.post(
        "/v1/statements", {"client_id": cid, "start_date": (today + dt.timedelta(days=1)).isoformat(),
                           "end_date": (today + dt.timedelta(days=2)).isoformat()}
    )  # fmt: skip
    assert later.json()["opening_balance_cents"] == 23000 and later.json()["entries"] == []
    assert later.json()["number"] == 2

    r = await practice.post(f"/v1/statements/{st['id']}/share", {})
    assert r.status_code == 200 and r.json()["shared"] is True
    events = await practice.events(lambda es: any(e["event_type"] == "StatementShared" for e in es))
    created = [e for e in events if e["event_type"] == "StatementCreated"]
    assert len(created) == 2, [e["event_type"] for e in events]
    assert created[0]["data"]["statement"]["kind"] == "statement"
    assert created[0]["data"]["statement"]["body"]["closing_balance_cents"] == 23000
    [shared] = [e for e in events if e["event_type"] == "StatementShared"]
    assert shared["data"]["share"]["recipient"]["email"] == "jamie.ellis@example.com"

    r = await practice.get(f"/v1/statements/{st['id']}", role="client", client_id=cid)
    assert r.status_code == 200
    r = await practice.get(f"/v1/statements/{st['id']}", role="client", client_id="other")
    assert r.status_code == 404
    r = await practice.post("/v1/statements", {"client_id": cid, "start_date": "2026-02-01", "end_date": "2026-01-01"})
    assert r.status_code == 422

    # Documents tab: both bills and both statements, newest first, paged.
    r = await practice.get(f"/v1/clients/{cid}/documents", params={"limit": 3})
    page1 = r.json()
    assert [d["kind"] for d in page1["items"]] == ["statement", "statement", "bill"]
    r = await practice.get(f"/v1/clients/{cid}/documents", params={"limit": 3, "cursor": page1["next_cursor"]})
    page2 = r.json()
    assert [d["id"] for d in page2["items"]] == [first["id"]] and page2["next_cursor"] is None
    assert page1["items"][2]["id"] == second["id"] and page1["items"][2]["total_cents"] == 13000
    r = await practice.get(f"/v1/clients/{cid}/documents", role="client", client_id="other")
    assert r.status_code == 404


async def test_settings_defaults_update_and_validation(practice) -> None:
    r = await practice.get("/v1/settings")
    assert r.status_code == 200
    defaults = r.json()
    assert defaults["currency"] == "USD" and defaults["timezone"] == "America/New_York"
    assert defaults["default_due_days"] == 30 and defaults["attach_pdf"] is True
    assert defaults["bill_creation"] == "manual" and defaults["no_show_fee_cents"] == 0
    r = await practice.put("/v1/settings", {"name": "Rivers Edge", "tax_id": "12-3456789", "default_due_days": 60})
    assert r.status_code == 200
    r = await practice.put("/v1/settings", {"npi": "1234567893"})
    got = (await practice.get("/v1/settings")).json()
    assert (got["name"], got["npi"], got["default_due_days"]) == ("Rivers Edge", "1234567893", 60)
    for bad in ({"default_due_days": 17}, {"timezone": "Mars/Base"}, {"no_show_fee_cents": -1}, {"nope": 1}):
        r = await practice.put("/v1/settings", bad)
        assert r.status_code == 422, bad
    r = await practice.get("/v1/settings", role="client", client_id="c")
    assert r.status_code == 403


async def test_check_finds_planted_drift_and_none_otherwise(practice) -> None:
    cid, sid = uid("client"), uid("sess")
    await practice.client(cid)
    await practice.session(sid, cid)
    bill = await practice.billed(cid, [sid])
    await practice.payment(cid, [(bill["id"], 16000)])
    await eventually(lambda: _when(practice.bill(bill["id"]), lambda b: b["status"] == "paid"))
    r = await practice.get("/v1/checks/balances")
    assert r.json() == {"bills_checked": 1, "drift_count": 0, "drift": []}

    async with practice.svc.db.transaction() as db:
        await db.execute(update(bills).where(bills.c.id == uuid.UUID(bill["id"])).values(paid_cents=15000))
    report = (await practice.get("/v1/checks/balances")).json()
    assert report["drift_count"] == 1
    [d] = report["drift"]
    assert (d["bill_id"], d["field"], d["stored"], d["derived"]) == (bill["id"], "paid_cents", 15000, 16000)

    # The operator command says the same, with exit status 1.
    env = {**os.environ, "PG_DATABASE": practice.svc.settings.pg_database}
    cli = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "services.billing.check", practice.id, env=env, stdout=asyncio.subprocess.PIPE
    )
    out, _ = await cli.communicate()
    assert cli.returncode == 1
    assert json.loads(out)["drift"] == report["drift"]


async def test_redelivered_payment_is_applied_once(practice) -> None:
    cid, sid = uid("client"), uid("sess")
    await practice.client(cid)
    await practice.session(sid, cid)
    bill = await practice.billed(cid, [sid])
    _, event = await practice.payment(cid, [(bill["id"], 1000)])
    again = {**event, "event_id": str(uuid.uuid4())}  # same payment, new envelope
    await practice.publish(topics.PAYMENTS, again, key=cid)
    await eventually(lambda: _when(practice.bill(bill["id"]), lambda b: b["paid_cents"] == 1000))
    await practice.payment(cid, [(bill["id"], 1)])
    final = await eventually(lambda: _when(practice.bill(bill["id"]), lambda b: len(b["payments"]) == 2))
    assert final["paid_cents"] == 1001


async def test_billing_profile_sets_bill_defaults_and_delivery(practice) -> None:
    cid, sid = uid("client"), uid("sess")
    await practice.client(cid)
    await practice.session(sid, cid, example="insurance-telehealth")
    r = await practice.get(f"/v1/clients/{cid}/billing-profile")
    assert r.json() == {"default_responsibility": "client", "copay_cents": None, "coinsurance_percent": None,
                        "automatic_superbills": False, "delivery": "email", "split": None}  # fmt: skip
    bad = await practice.put(f"/v1/clients/{cid}/billing-profile", {"copay_cents": 1, "coinsurance_percent": 5})
    assert bad.status_code == 422
    profile = {"default_responsibility": "insurance", "copay_cents": 2500, "delivery": "portal_only"}
    assert (await practice.put(f"/v1/clients/{cid}/billing-profile", profile)).status_code == 200
    bill = await practice.billed(cid, [sid])
    assert bill["responsibility"] == "insurance"
    assert (bill["client_owes_cents"], bill["insurance_owes_cents"]) == (2500, 10500)
    await practice.post(f"/v1/bills/{bill['id']}/share", {})
    events = await practice.events(lambda es: any(e["event_type"] == "BillShared" for e in es))
    [shared] = [e for e in events if e["event_type"] == "BillShared"]
    assert shared["data"]["share"]["email"] is False, "portal only"


async def test_statement_lists_client_credit(practice) -> None:
    cid = uid("client")
    await practice.client(cid)
    today = dt.datetime.now(dt.UTC)
    for i, (amount, balance) in enumerate([(5000, 5000), (-2000, 3000)]):
        event = {
            "event_id": str(uuid.uuid4()), "event_type": "CreditChanged", "occurred_at": today.isoformat(),
            "practice_id": practice.id, "schema_version": 1,
            "data": {"client_id": cid, "entry_id": f"e{i}", "kind": "prepayment" if i == 0 else "applied",
                     "amount_cents": amount, "balance_cents": balance, "reason": None},
        }  # fmt: skip
        await practice.publish(topics.PAYMENTS, event, key=cid)
        await practice.publish(topics.PAYMENTS, event, key=cid)  # redelivered

    async def statement() -> dict | None:
        start, end = today.date() - dt.timedelta(days=1), today.date() + dt.timedelta(days=1)
        body = {"client_id": cid, "start_date": start.isoformat(), "end_date": end.isoformat()}
        r = await practice.post("/v1/statements", body)
        return r.json() if r.status_code == 201 and len(r.json()["credits"]) == 2 else None

    st = await eventually(statement)
    assert [c["amount_cents"] for c in st["credits"]] == [5000, -2000]
    assert st["credit_balance_cents"] == 3000
