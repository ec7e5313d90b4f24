"""Good Faith Estimates through the real Kafka and Postgres: issue, the rules, billed_cents from
the client's bills in the period, GoodFaithEstimateExceeded and the bill warning once at
estimate + $400, share, the Documents tab and a client's access."""

import uuid
from typing import Any

import pytest

from shared import topics
from tests.conftest import eventually, example_event
from tests.integration.billing.conftest import Practice
from tests.integration.billing.test_superbills import PRACTICE_INFO

pytestmark = pytest.mark.integration

DOB = "1990-07-14"


def uid(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def estimate_body(cid: str, **kw: Any) -> dict[str, Any]:
    return {"client_id": cid, "clinician_id": "clin-morgan", "period_start": "2026-11-01",
            "period_end": "2027-04-30", "items": [{"code": "90837", "description": "Psychotherapy, 60 minutes",
                                                   "fee_cents": 16000, "quantity": 4}],
            "diagnosis_codes": ["F41.1"]} | kw  # fmt: skip


async def ready(practice: Practice) -> str:
    await practice.send(topics.SCHEDULING, example_event("ClinicianUpserted"), key="clin")
    cid = uid("client")
    await practice.client(cid)
    return cid


async def test_an_estimate_needs_what_the_rule_asks_and_a_period_of_at_most_a_year(practice: Practice) -> None:
    cid = await ready(practice)
    r = await issue(practice, estimate_body(cid))
    assert r.status_code == 409 and r.json()["error"]["code"] == "good_faith_estimate_incomplete"
    assert "practice npi" in r.json()["error"]["message"] and "practice tax_id" in r.json()["error"]["message"]
    await practice.put("/v1/settings", PRACTICE_INFO)
    for bad in ({"period_end": "2027-11-01"}, {"period_end": "2026-10-31"}, {"items": []},
                {"items": [{"code": "90837", "fee_cents": 100, "quantity": 0}]}):  # fmt: skip
        r = await practice.post("/v1/good-faith-estimates", estimate_body(cid, **bad))
        assert r.status_code == 422, bad
    r = await practice.post("/v1/good-faith-estimates", estimate_body(cid, clinician_id="nobody"))
    assert r.status_code == 404
    r = await practice.post("/v1/good-faith-estimates", estimate_body(cid, period_end="2027-10-31"))
    assert r.status_code == 201, "a full 12 months is allowed"


async def test_bills_in_the_period_count_and_crossing_estimate_plus_400_warns_once(practice: Practice) -> None:
    cid = await ready(practice)
    await practice.put("/v1/settings", PRACTICE_INFO)
    r = await issue(practice, estimate_body(cid))
    assert r.status_code == 201, r.text
    estimate = r.json()
    assert estimate["number"] == 1 and estimate["client_id"] == cid and estimate["status"] == "issued"
    assert (estimate["total_cents"], estimate["billed_cents"], estimate["exceeds_by_cents"]) == (64000, 0, 0)
    assert estimate["document_id"] is None and estimate["shared"] is False and estimate["shared_at"] is None

    s1, s2, s3, outside = uid("s"), uid("s"), uid("s"), uid("s")
    for sid, day in ((s1, "2026-11-02"), (s2, "2026-11-09"), (s3, "2026-11-16"), (outside, "2027-06-01")):
        await practice.session(sid, cid, date_of_service=day)
    first = await practice.billed(cid, [s1], lines=[{"session_id": s1, "code": "90837", "amount_cents": 60000}])
    assert first["warnings"] == []
    await practice.billed(cid, [outside])  # after the period: does not count
    assert (await practice.get(f"/v1/good-faith-estimates/{estimate['id']}")).json()["billed_cents"] == 60000
    crossing = await practice.billed(cid, [s2], lines=[{"session_id": s2, "code": "90837", "amount_cents": 44000}])
    [warning] = crossing["warnings"]
    assert warning["code"] == "good_faith_estimate_exceeded" and warning["estimate_id"] == estimate["id"]
    assert warning["exceeds_by_cents"] == 104000 - 64000
    after = (await practice.get(f"/v1/good-faith-estimates/{estimate['id']}")).json()
    assert (after["billed_cents"], after["exceeds_by_cents"]) == (104000, 40000) and after["exceeded_at"]
    third = await practice.billed(cid, [s3])
    assert third["warnings"] == [], "only the bill that crosses the line warns"
    events = await practice.events(lambda es: any(e["event_type"] == "BillCreated"
                                                  and e["data"]["bill"]["id"] == third["id"] for e in es))  # fmt: skip
    exceeded = [e["data"] for e in events if e["event_type"] == "GoodFaithEstimateExceeded"]
    assert exceeded == [{"estimate_id": estimate["id"], "client_id": cid, "number": 1, "total_cents": 64000,
                         "billed_cents": 104000, "exceeds_by_cents": 40000}]  # fmt: skip
    r = await practice.post(f"/v1/bills/{third['id']}/cancel", {})
    assert (await practice.get(f"/v1/good-faith-estimates/{estimate['id']}")).json()["billed_cents"] == 104000


async def test_share_documents_tab_lists_and_client_access(practice: Practice) -> None:
    cid = await ready(practice)
    await practice.put("/v1/settings", PRACTICE_INFO)
    estimate = (await issue(practice, estimate_body(cid))).json()
    unshared = await practice.get(f"/v1/good-faith-estimates/{estimate['id']}", role="client", client_id=cid)
    assert unshared.status_code == 404, "a client sees an estimate only once it is shared"
    assert (await practice.get("/v1/good-faith-estimates", role="client", client_id=cid)).json()["items"] == []
    r = await practice.post(f"/v1/good-faith-estimates/{estimate['id']}/share", {})
    assert r.status_code == 200 and r.json()["shared"] is True and r.json()["shared_at"]
    events = await practice.events(lambda es: any(e["event_type"] == "GoodFaithEstimateShared" for e in es))
    [created] = [e["data"]["estimate"] for e in events if e["event_type"] == "GoodFaithEstimateCreated"]
    [shared] = [e["data"] for e in events if e["event_type"] == "GoodFaithEstimateShared"]
    assert created["kind"] == "good_faith_estimate" and created["body"]["total_cents"] == 64000
    assert created["body"]["clinician"]["npi"] == "1234567893"
    assert created["body"]["patient_date_of_birth"] == DOB
    assert shared["share"]["recipient"]["email"] and shared["share"]["email"] is True

    docs = (await practice.get(f"/v1/clients/{cid}/documents")).json()["items"]
    assert [(d["kind"], d["id"], d["total_cents"]) for d in docs] == [("good_faith_estimate", estimate["id"], 64000)]
    listed = (await practice.get("/v1/good-faith-estimates", params={"client_id": cid})).json()["items"]
    assert [e["id"] for e in listed] == [estimate["id"]]
    mine = await practice.get(f"/v1/good-faith-estimates/{estimate['id']}", role="client", client_id=cid)
    assert mine.status_code == 200
    other = await practice.get(f"/v1/good-faith-estimates/{estimate['id']}", role="client", client_id="someone")
    assert other.status_code == 404
    theirs = await practice.get("/v1/good-faith-estimates", role="client", client_id="someone")
    assert theirs.json()["items"] == []


async def issue(practice: Practice, body: dict[str, Any]) -> Any:
    """POST an estimate once billing knows the client and clinician (404 until then)."""

    async def attempt() -> Any:
        r = await practice.post("/v1/good-faith-estimates", body)
        return r if r.status_code != 404 else None

    return await eventually(attempt)


async def test_a_yearly_estimate_is_renewed_once_when_its_period_ends(practice: Practice) -> None:
    cid = await ready(practice)
    await practice.put("/v1/settings", PRACTICE_INFO)
    body = estimate_body(cid, period_start="2026-01-01", period_end="2026-12-31", renew_yearly=True)
    first = (await issue(practice, body)).json()
    assert first["renew_yearly"] is True
    early = await practice.post("/v1/automation/run", {"job": "good_faith_estimate_renewal",
                                                       "as_of": "2026-12-31T20:00:00Z"})  # fmt: skip
    assert early.json()["renewed"] == [], "the period has not ended (practice time)"
    r = await practice.post("/v1/automation/run", {"job": "good_faith_estimate_renewal",
                                                   "as_of": "2027-01-01T15:00:00Z"})  # fmt: skip
    [renewal] = r.json()["renewed"]
    assert renewal["estimate_id"] == first["id"]
    new = (await practice.get(f"/v1/good-faith-estimates/{renewal['renewed_by']}")).json()
    assert (new["period_start"], new["period_end"], new["total_cents"]) == ("2027-01-01", "2027-12-31", 64000)
    assert new["shared"] is True and new["renew_yearly"] is True
    again = await practice.post("/v1/automation/run", {"job": "good_faith_estimate_renewal",
                                                       "as_of": "2027-01-02T15:00:00Z"})  # fmt: skip
    assert again.json()["renewed"] == [], "renewed once"
