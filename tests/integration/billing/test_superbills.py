"""Superbills with their CMS-1500 fields checked, through the real service."""

import uuid

import pytest

from services.documents.sources import SuperbillBody
from shared import topics
from tests.conftest import eventually, example_event

pytestmark = pytest.mark.integration

PRACTICE_INFO = {
    "name": "Rivers Edge Counseling",
    "address": {"line1": "1 River Rd", "city": "Portland", "state": "OR", "postal_code": "97201"},
    "phone": "+1-503-555-0100",
    "tax_id": "93-1234567",
    "npi": "1234567893",
}


def uid(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


async def _when(coro, predicate):
    value = await coro
    return value if predicate(value) else None


async def test_superbill_from_a_date_range_with_client_payments(practice) -> None:
    cid, sid, other = uid("client"), uid("sess"), uid("sess")
    await practice.send(topics.SCHEDULING, example_event("ClinicianUpserted"), key="clin")
    await practice.client(cid)
    await practice.session(sid, cid, example="insurance-telehealth", date_of_service="2026-11-03")
    await practice.session(other, cid, example="insurance-telehealth", date_of_service="2026-12-03")
    bill = await practice.billed(cid, [sid])
    await practice.payment(cid, [(bill["id"], 5000)])
    await eventually(lambda: _when(practice.bill(bill["id"]), lambda b: b["paid_cents"] == 5000))

    body = {"client_id": cid, "start_date": "2026-11-01", "end_date": "2026-11-30"}
    r = await practice.post("/v1/superbills", body)
    assert r.status_code == 409 and r.json()["error"]["code"] == "superbill_incomplete"
    assert "practice.npi is required" in r.json()["error"]["message"]
    assert "practice.tax_id is required" in r.json()["error"]["message"]

    await practice.put("/v1/settings", PRACTICE_INFO)
    r = await practice.post("/v1/superbills", body)
    assert r.status_code == 201, r.text
    sb = r.json()
    assert sb["number"] == 1 and sb["session_ids"] == [sid]
    [line] = sb["lines"]
    assert (line["code"], line["fee_cents"], line["paid_cents"]) == ("90834", 13000, 5000)
    assert line["diagnosis_codes"] == ["F33.1", "F41.1"] and line["place_of_service"] == "10"
    assert line["provider"]["npi"] == "1234567893" and line["provider"]["credentials"] == "PhD, LP"
    assert sb["insurance"]["member_id"] == "W123456789"
    assert sb["total_fee_cents"] == 13000 and sb["total_paid_cents"] == 5000

    r = await practice.post(f"/v1/superbills/{sb['id']}/share", {})
    assert r.status_code == 200 and r.json()["shared"] is True
    events = await practice.events(lambda es: any(e["event_type"] == "SuperbillShared" for e in es))
    [created] = [e for e in events if e["event_type"] == "SuperbillCreated"]
    assert created["data"]["superbill"]["kind"] == "superbill"
    assert created["data"]["superbill"]["body"]["lines"][0]["session_id"] == sid
    assert SuperbillBody.model_validate(created["data"]["superbill"]["body"]).total_paid_cents == 5000

    r = await practice.get(f"/v1/clients/{cid}/documents")
    assert [(d["kind"], d["total_cents"]) for d in r.json()["items"]] == [("superbill", 13000), ("bill", 13000)]
    r = await practice.get(f"/v1/superbills/{sb['id']}", role="client", client_id="someone-else")
    assert r.status_code == 404


async def test_superbill_refuses_a_session_without_a_diagnosis(practice) -> None:
    cid, sid = uid("client"), uid("sess")
    await practice.put("/v1/settings", PRACTICE_INFO)
    await practice.send(topics.SCHEDULING, example_event("ClinicianUpserted"), key="clin")
    await practice.client(cid)
    await practice.session(sid, cid, diagnosis_codes=[])
    await eventually(lambda: practice.unbilled_ids(cid))
    r = await practice.post("/v1/superbills", {"client_id": cid, "session_ids": [sid]})
    assert r.status_code == 409
    assert "lines[0].diagnosis_codes is required" in r.json()["error"]["message"]
    r = await practice.post("/v1/superbills", {"client_id": cid})
    assert r.status_code == 422
    r = await practice.post("/v1/superbills", {"client_id": cid, "session_ids": ["nope"]})
    assert r.status_code == 404
