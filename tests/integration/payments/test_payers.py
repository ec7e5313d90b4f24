"""Third-party payers: Headway / Alma sessions are expected receivables; payouts reconcile
per session (ok, underpaid, missing, duplicate) with totals per payout."""

import json

import pytest

from services.payments.handlers import PaymentHandlers
from shared import topics
from shared.events import Envelope, parse_event
from tests.conftest import eventually, example_event
from tests.integration.payments.conftest import new_id, staff

pytestmark = pytest.mark.integration


def platform_session(practice: str, payer: str, fee: int, code: str = "90837") -> tuple[str, dict]:
    event = example_event("SessionCompleted-headway")
    event["practice_id"] = practice
    session = event["data"]["session"]
    session["id"] = new_id("sess")
    session["payer"] = payer
    session["services"][0].update(code=code, fee_cents=fee)
    return session["id"], event


async def test_payouts_reconcile_against_expected_sessions(svc, http, publish, monkeypatch) -> None:
    practice = new_id("p")
    monkeypatch.setattr(svc.settings, "payer_fee_schedule", {"headway": {"90837": 12000}})
    sessions = []
    for fee in (14500, 14500, 14500, 14500):
        session_id, event = platform_session(practice, "headway", fee)
        sessions.append(session_id)
        await publish(topics.SCHEDULING, event, key="client-ellis", settings=svc.settings)
    self_pay_id, self_pay = platform_session(practice, "self_pay", 9000)
    await publish(topics.SCHEDULING, self_pay, key="client-ellis", settings=svc.settings)

    async def expected():
        r = await http.get("/v1/payer-reconciliation", params={"payer": "headway"}, headers=staff(practice))
        return r.json() if len(r.json()["items"]) == 4 else None

    before = await eventually(expected, timeout=10)
    assert {i["flag"] for i in before["items"]} == {"missing"}
    assert {i["expected_cents"] for i in before["items"]} == {12000}

    ok, under, missing, twice = sessions
    first = {"payer": "headway", "reference": "HW-1", "received_at": "2026-11-20",
             "lines": [{"session_id": ok, "amount_cents": 12000}, {"session_id": under, "amount_cents": 10000},
                       {"session_id": twice, "amount_cents": 12000}]}  # fmt: skip
    r = await http.post("/v1/payer-remittances", json=first, headers=staff(practice, "hw-1"))
    assert r.status_code == 201 and r.json()["total_cents"] == 34000
    assert (await http.post("/v1/payer-remittances", json=first, headers=staff(practice, "hw-1"))).json()[
        "id"
    ] == r.json()["id"]
    dup = await http.post("/v1/payer-remittances", json=first, headers=staff(practice))
    assert dup.status_code == 409
    second = {"payer": "headway", "reference": "HW-2", "received_at": "2026-11-27T00:00:00Z",
              "lines": [{"session_id": twice, "amount_cents": 12000}]}  # fmt: skip
    assert (await http.post("/v1/payer-remittances", json=second, headers=staff(practice))).status_code == 201

    report = (await http.get("/v1/payer-reconciliation", params={"payer": "headway"}, headers=staff(practice))).json()
    flags = {i["session_id"]: (i["flag"], i["difference_cents"]) for i in report["items"]}
    assert flags == {
        ok: ("ok", 0),
        under: ("underpaid", -2000),
        missing: ("missing", -12000),
        twice: ("duplicate", 12000),
    }
    assert self_pay_id not in flags
    payouts = {
        p["reference"]: (p["total_cents"], p["expected_cents"], p["difference_cents"]) for p in report["payouts"]
    }
    assert payouts == {"HW-1": (34000, 36000, -2000), "HW-2": (12000, 12000, 0)}
    assert report["totals"] == {"expected_cents": 48000, "received_cents": 46000}


async def test_a_run_of_session_events_leaves_each_session_as_its_last_event_says(svc, http, monkeypatch) -> None:
    """The consumer applies a run of SessionCompleted in two statements: the last event of a
    session in the run decides, as if they were applied one by one."""
    practice = new_id("p")
    monkeypatch.setattr(svc.settings, "payer_fee_schedule", {"headway": {"90837": 12000, "90834": 9000}})
    handlers = PaymentHandlers(svc.payments)

    def envelope(event: dict) -> Envelope:
        return parse_event(json.dumps(event).encode(), event["event_type"])

    left_id, left_before = platform_session(practice, "headway", 14500)
    async with svc.db.transaction() as session:
        await handlers.sessions_completed(session, [envelope(left_before)])
    changed_id, changed = platform_session(practice, "headway", 14500)
    _, left = platform_session(practice, "self_pay", 14500)
    left["data"]["session"]["id"] = left_id
    _, changed_away = platform_session(practice, "self_pay", 14500)
    changed_away["data"]["session"]["id"] = changed_id
    kept_id, kept = platform_session(practice, "headway", 14500)
    _, kept_later = platform_session(practice, "headway", 9500, code="90834")
    kept_later["data"]["session"]["id"] = kept_id
    async with svc.db.transaction() as session:
        run = [envelope(e) for e in (changed, left, kept, changed_away, kept_later)]
        await handlers.sessions_completed(session, run)

    r = await http.get("/v1/payer-reconciliation", params={"payer": "headway"}, headers=staff(practice))
    assert [(i["session_id"], i["expected_cents"]) for i in r.json()["items"]] == [(kept_id, 9000)]
