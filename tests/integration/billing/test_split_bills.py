"""Split bills through the real Kafka and Postgres: one bill per party (own number, access code,
addressee), lines divided exactly, sessions back on Unbilled only when the whole group is
cancelled, the client profile's default split used by manual and automatic bills."""

import uuid

import pytest

from tests.conftest import eventually
from tests.integration.billing.conftest import Practice

pytestmark = pytest.mark.integration

MOTHER = {"id": "g-grace", "name": "Grace Park", "email": "grace.park@example.com", "relationship": "mother",
          "is_billing_contact": True}  # fmt: skip
FATHER = {
    "name": "Daniel Park",
    "email": "daniel.park@example.com",
    "relationship": "father",
    "is_billing_contact": False,
}  # fmt: skip  (no id: named by email)


def uid(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


async def minor_with_sessions(practice: Practice, n: int = 2) -> tuple[str, list[str]]:
    cid = uid("client")
    await practice.client(cid, minor=True, guardians=[MOTHER, FATHER])
    sids = [uid("sess") for _ in range(n)]
    for i, sid in enumerate(sids):
        await practice.session(sid, cid, date_of_service=f"2026-11-0{i + 2}")
    await eventually(lambda: _has(practice, cid, sids))
    return cid, sids


SPLIT = [{"party": "guardian:g-grace", "percent": "60"}, {"party": "guardian:daniel.park@example.com", "percent": 40}]


async def test_a_split_makes_one_bill_per_party_adding_up_exactly(practice: Practice) -> None:
    cid, sids = await minor_with_sessions(practice)
    body = {"client_id": cid, "session_ids": sids, "split": SPLIT,
            "lines": [{"session_id": sids[0], "code": "90837", "amount_cents": 10001}]}  # fmt: skip
    r = await practice.post("/v1/bills", body)
    assert r.status_code == 201, r.text
    mother, father = r.json()["items"]
    assert mother["split_group_id"] == father["split_group_id"] is not None
    assert (float(mother["split_percent"]), float(father["split_percent"])) == (60, 40)
    assert (mother["party"], father["party"]) == ("guardian:g-grace", "guardian:daniel.park@example.com")
    assert mother["number"] != father["number"] and mother["access_code"] and father["access_code"]
    assert (mother["bill_to"]["name"], father["bill_to"]["name"]) == ("Grace Park", "Daniel Park")
    assert father["bill_to"]["email"] == "daniel.park@example.com"
    assert mother["patient"]["name"] == father["patient"]["name"] == "Noah Park"
    # 10001 * 40% = 4000.4 → 4000 for the father; the first party takes the rest: 6001.
    assert [ln["amount_cents"] for ln in mother["lines"]] == [6001, 9600]
    assert [ln["amount_cents"] for ln in father["lines"]] == [4000, 6400]
    assert mother["total_cents"] + father["total_cents"] == 10001 + 16000
    assert mother["balance_cents"] == mother["client_owes_cents"] == 15601
    assert await practice.unbilled_ids(cid) == []

    r = await practice.post(f"/v1/bills/{mother['id']}/cancel", {})
    assert r.status_code == 200, r.text
    assert await practice.unbilled_ids(cid) == [], "the father's bill still stands"
    r = await practice.post("/v1/bills", {"client_id": cid, "session_ids": sids[:1]})
    assert r.status_code == 409 and r.json()["error"]["code"] == "session_already_billed"
    r = await practice.post(f"/v1/bills/{father['id']}/cancel", {})
    assert r.status_code == 200, r.text
    assert sorted(await practice.unbilled_ids(cid)) == sorted(sids), "every bill of the group is cancelled"


async def test_split_requests_that_cannot_be_right_are_refused(practice: Practice) -> None:
    cid, sids = await minor_with_sessions(practice, 1)
    for split, code in (
        ([{"party": "client", "percent": 50}, {"party": "guardian:g-grace", "percent": 40}], "invalid_split"),
        ([{"party": "client", "percent": 100}], "invalid_split"),
        ([{"party": "client", "percent": 50}, {"party": "guardian:nobody", "percent": 50}], "unknown_party"),
    ):
        r = await practice.post("/v1/bills", {"client_id": cid, "session_ids": sids, "split": split})
        assert r.status_code == 422 and r.json()["error"]["code"] == code, (split, r.text)
    r = await practice.post("/v1/bills", {"client_id": cid, "session_ids": sids, "split": SPLIT,
                                          "responsibility": "insurance"})  # fmt: skip
    assert r.status_code == 422 and r.json()["error"]["code"] == "split_needs_client_responsibility"
    r = await practice.post(
        "/v1/bills", {"client_id": cid, "session_ids": sids, "split": [{"party": "x", "percent": 1}]}
    )
    assert r.status_code == 422
    assert await practice.unbilled_ids(cid) == sids, "nothing was billed"


async def test_the_profile_split_is_used_by_manual_and_automatic_bills(practice: Practice) -> None:
    cid, sids = await minor_with_sessions(practice, 2)
    bad = [{"party": "client", "percent": 50}, {"party": "guardian:g-grace", "percent": 60}]
    r = await practice.put(f"/v1/clients/{cid}/billing-profile", {"split": bad})
    assert r.status_code == 422, "a profile split must add up to 100"
    r = await practice.put(f"/v1/clients/{cid}/billing-profile", {"split": SPLIT})
    assert r.status_code == 200, r.text
    r = await practice.post("/v1/bills", {"client_id": cid, "session_ids": sids[:1]})
    assert r.status_code == 201, r.text
    assert [b["party"] for b in r.json()["items"]] == ["guardian:g-grace", "guardian:daniel.park@example.com"]
    r = await practice.post("/v1/bills", {"client_id": cid, "session_ids": sids[1:], "split": []})
    assert r.status_code == 201 and r.json()["party"] is None, "split: [] bills one payer"
    r = await practice.post(f"/v1/bills/{r.json()['id']}/cancel", {})

    await practice.put("/v1/settings", {"bill_creation": "monthly"})
    r = await practice.post("/v1/automation/run", {"job": "bill_creation", "as_of": "2026-12-01T15:00:00Z"})
    assert r.status_code == 200, r.text
    made = r.json()["bills"]
    assert len(made) == 2 and {m["client_id"] for m in made} == {cid}
    group = [await practice.bill(m["bill_id"]) for m in made]
    assert {b["bill_to"]["name"] for b in group} == {"Grace Park", "Daniel Park"}
    assert sum(b["total_cents"] for b in group) == 16000 and group[0]["split_group_id"] == group[1]["split_group_id"]


async def test_each_party_is_sent_its_own_bill(practice: Practice) -> None:
    cid, sids = await minor_with_sessions(practice, 1)
    r = await practice.post("/v1/bills", {"client_id": cid, "session_ids": sids, "split": SPLIT})
    for bill in r.json()["items"]:
        assert (await practice.post(f"/v1/bills/{bill['id']}/share", {})).status_code == 200
    ids = {b["id"] for b in r.json()["items"]}
    events = await practice.events(lambda es: sum(e["event_type"] == "BillShared" and e["data"]["bill"]["id"] in ids
                                                  for e in es) == 2)  # fmt: skip
    shared = {e["data"]["bill"]["party"]: e["data"]["share"]["recipient"]["email"] for e in events
              if e["event_type"] == "BillShared" and e["data"]["bill"]["id"] in ids}  # fmt: skip
    assert shared == {"guardian:g-grace": "grace.park@example.com",
                      "guardian:daniel.park@example.com": "daniel.park@example.com"}  # fmt: skip


async def _has(practice: Practice, cid: str, sids: list[str]) -> bool:
    return set(sids) <= set(await practice.unbilled_ids(cid))
