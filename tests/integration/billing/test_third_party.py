"""Sessions a third-party platform pays (THIRD_PARTY_PAYERS: headway, alma) are expected payouts,
never client bills: off Unbilled, refused on a bill, skipped by automatic bills, listed in the
client's Documents tab as paid by the platform; a payer change moves a session in or out."""

import uuid

import pytest

from tests.conftest import eventually
from tests.integration.billing.conftest import Practice

pytestmark = pytest.mark.integration


def uid(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


async def sessions_of(practice: Practice, cid: str) -> dict[str, str]:
    """A client with a headway, an alma, a self-pay and an insurance session (ids by payer)."""
    await practice.client(cid)
    ids = {payer: uid(payer) for payer in ("headway", "alma", "self_pay", "insurance")}
    for payer, sid in ids.items():
        await practice.session(sid, cid, payer=payer, date_of_service="2026-11-03")
    return ids


async def test_platform_sessions_stay_off_unbilled_and_off_client_bills(practice: Practice) -> None:
    cid = uid("client")
    ids = await sessions_of(practice, cid)
    await eventually(lambda: _has(practice, cid, ids["self_pay"], ids["insurance"]))
    assert sorted(await practice.unbilled_ids(cid)) == sorted([ids["self_pay"], ids["insurance"]])
    assert not {ids["headway"], ids["alma"]} & set(await practice.unbilled_ids())

    for platform in ("headway", "alma"):
        r = await practice.post("/v1/bills", {"client_id": cid, "session_ids": [ids["self_pay"], ids[platform]]})
        assert r.status_code == 409, r.text
        assert r.json()["error"]["code"] == "session_paid_by_third_party"
        assert platform in r.json()["error"]["message"]
    assert sorted(await practice.unbilled_ids(cid)) == sorted([ids["self_pay"], ids["insurance"]]), "nothing billed"

    r = await practice.get(f"/v1/clients/{cid}/documents")
    assert r.status_code == 200, r.text
    paid_by_platform = {i["id"]: i for i in r.json()["items"] if i["kind"] == "third_party_session"}
    assert set(paid_by_platform) == {ids["headway"], ids["alma"]}
    assert paid_by_platform[ids["headway"]]["payer"] == "headway"
    assert paid_by_platform[ids["headway"]]["status"] == "paid_by_payer"
    assert paid_by_platform[ids["headway"]]["total_cents"] == 16000
    r = await practice.get(f"/v1/clients/{cid}/documents", role="client", client_id=cid)
    assert {i["id"] for i in r.json()["items"]} == {ids["headway"], ids["alma"]}, "the client sees them too"


async def test_automatic_bill_creation_skips_platform_sessions(practice: Practice) -> None:
    cid = uid("client")
    ids = await sessions_of(practice, cid)
    await eventually(lambda: _has(practice, cid, ids["self_pay"], ids["insurance"]))
    await practice.put("/v1/settings", {"bill_creation": "weekly"})
    r = await practice.post("/v1/automation/run", {"job": "bill_creation", "as_of": "2026-11-11T15:00:00Z"})
    assert r.status_code == 200, r.text
    [made] = r.json()["bills"]
    assert sorted(made["session_ids"]) == sorted([ids["self_pay"], ids["insurance"]])
    assert r.json()["skipped"] == []
    bill = await practice.bill(made["bill_id"])
    assert {ln["session_id"] for ln in bill["lines"]} == {ids["self_pay"], ids["insurance"]}
    docs = (await practice.get(f"/v1/clients/{cid}/documents")).json()["items"]
    assert sorted(i["id"] for i in docs if i["kind"] == "third_party_session") == sorted([ids["headway"], ids["alma"]])


async def test_a_payer_change_moves_a_session_in_or_out_unless_it_is_on_a_bill(practice: Practice) -> None:
    cid = uid("client")
    ids = await sessions_of(practice, cid)
    await eventually(lambda: _has(practice, cid, ids["self_pay"], ids["insurance"]))
    bill = await practice.billed(cid, [ids["insurance"]])

    await practice.session(ids["self_pay"], cid, payer="alma", date_of_service="2026-11-03")
    await practice.session(ids["insurance"], cid, payer="headway", date_of_service="2026-11-03")
    await practice.session(ids["headway"], cid, payer="self_pay", date_of_service="2026-11-03")
    # All three events have one key (the client), so once the last one shows, the others are in.
    await eventually(lambda: _has(practice, cid, ids["headway"]))
    assert await practice.unbilled_ids(cid) == [ids["headway"]], "self-pay → alma left Unbilled"
    assert (await practice.bill(bill["id"]))["status"] == "open", "a billed session stays on its bill"
    docs = (await practice.get(f"/v1/clients/{cid}/documents")).json()["items"]
    platform = {i["id"]: i["payer"] for i in docs if i["kind"] == "third_party_session"}
    assert platform == {ids["self_pay"]: "alma", ids["alma"]: "alma"}, "the billed one is listed as its bill"

    r = await practice.post(f"/v1/bills/{bill['id']}/cancel", {})
    assert r.status_code == 200, r.text
    assert await practice.unbilled_ids(cid) == [ids["headway"]], "cancelled: its session is headway's now"
    docs = (await practice.get(f"/v1/clients/{cid}/documents")).json()["items"]
    assert ids["insurance"] in {i["id"] for i in docs if i["kind"] == "third_party_session"}


async def _has(practice: Practice, cid: str, *session_ids: str) -> bool:
    return set(session_ids) <= set(await practice.unbilled_ids(cid))
