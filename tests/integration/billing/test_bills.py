"""The billing slice through real Kafka and Postgres: sessions in → Unbilled → bill → share →
payments → paid, cancel, and the concurrency and reorder cases."""

import asyncio
import datetime as dt
import json
import uuid

import pytest
from sqlalchemy import event, func, select

from services.billing import handlers
from services.billing import repository as repo
from shared import topics
from shared.events import parse_event
from tests.conftest import eventually, example_event

pytestmark = pytest.mark.integration


def uid(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


async def test_session_of_unknown_client_appears_once_the_client_arrives(practice) -> None:
    cid, sid = uid("client"), uid("sess")
    await practice.session(sid, cid)
    # A marker behind it on the same partition (same key): once it shows, the session was seen.
    other, marker = uid("other"), uid("sess")
    known = example_event("ClientUpserted-adult")
    known["data"]["client"]["id"] = other
    await practice.send(topics.SCHEDULING, known, key=cid)
    seen = example_event("SessionCompleted-self-pay")
    seen["data"]["session"].update(id=marker, client_id=other)
    await practice.send(topics.SCHEDULING, seen, key=cid)
    await eventually(lambda: _when(practice.unbilled_ids(), lambda ids: marker in ids))
    assert sid not in await practice.unbilled_ids()
    await practice.client(cid)
    [item] = await eventually(lambda: practice.unbilled(cid))
    assert item["session_id"] == sid
    assert item["amount_cents"] == 16000
    assert item["client_name"] == "Jamie Ellis"
    assert item["clinician_id"] == "clin-morgan"
    assert item["date_of_service"] == "2026-11-02"
    assert [s["code"] for s in item["services"]] == ["90837"]


async def test_zero_fee_non_billable_and_missed_sessions_stay_out_until_a_fee_is_set(practice) -> None:
    cid = uid("client")
    await practice.client(cid)
    free, nonbillable, no_show, real = uid("free"), uid("nb"), uid("ns"), uid("real")
    service = {"code": "90837", "modifiers": [], "units": 1, "billable": True}
    await practice.session(free, cid, services=[{**service, "fee_cents": 0}])
    await practice.session(nonbillable, cid, services=[{**service, "fee_cents": 9000, "billable": False}])
    await practice.session(no_show, cid, example="no-show")
    await practice.session(real, cid, example="insurance-telehealth")
    [item] = await eventually(lambda: practice.unbilled(cid))
    assert item["session_id"] == real
    assert item["amount_cents"] == 13000, "the $0 line does not count"
    assert [s["code"] for s in item["services"]] == ["90834"]

    r = await practice.put("/v1/settings", {"no_show_fee_cents": 7500})
    assert r.status_code == 200 and r.json()["no_show_fee_cents"] == 7500
    items = {i["session_id"]: i for i in await practice.unbilled(cid)}
    assert set(items) == {real, no_show}
    assert items[no_show]["amount_cents"] == 7500
    assert items[no_show]["services"][0]["code"] == "NO-SHOW"


async def test_bill_from_unbilled_sessions_snapshot_and_event(practice) -> None:
    cid, s1, s2 = uid("client"), uid("sess"), uid("sess")
    await practice.put("/v1/settings", {"name": "Rivers Edge Counseling", "default_due_days": 45})
    await practice.client(cid, minor=True)
    await practice.session(s1, cid, date_of_service="2026-11-02")
    await practice.session(s2, cid, date_of_service="2026-11-09")
    bill = await practice.billed(cid, [s1, s2], comments="Thank you")
    assert bill["status"] == "open"
    assert bill["number"] == 1
    assert len(bill["access_code"]) == 6 and bill["access_code"].isdigit()
    assert bill["total_cents"] == bill["balance_cents"] == bill["client_owes_cents"] == 32000
    assert bill["insurance_owes_cents"] == bill["paid_cents"] == 0
    assert [ln["session_id"] for ln in bill["lines"]] == [s1, s2]
    assert bill["bill_to"]["name"] == "Grace Park" and bill["bill_to"]["email"] == "grace.park@example.com"
    assert bill["patient"]["name"] == "Noah Park"
    assert bill["practice"]["name"] == "Rivers Edge Counseling"
    assert bill["pay_url"].endswith(f"/pay?practice={practice.id}&bill=1")
    issued = dt.date.fromisoformat(bill["issued_on"])
    assert dt.date.fromisoformat(bill["due_date"]) == issued + dt.timedelta(days=45)
    assert bill["shared"] is False and bill["document_id"] is None and bill["payments"] == []
    assert await practice.unbilled_ids(cid) == []

    events = await practice.events(lambda es: any(e["event_type"] == "BillCreated" for e in es))
    [created] = [e for e in events if e["event_type"] != "PracticeAutomationChanged"]  # that one: the settings PUT
    assert created["data"]["bill"]["id"] == bill["id"]
    assert created["data"]["bill"]["access_code"] == bill["access_code"]

    s3 = uid("sess")
    await practice.session(s3, cid)
    next_bill = await practice.billed(cid, [s3])
    assert next_bill["number"] == 2


async def test_bill_validation_and_rules(practice) -> None:
    cid, other, sid = uid("client"), uid("client"), uid("sess")
    await practice.client(cid)
    await practice.client(other)
    await practice.session(sid, cid)
    await eventually(lambda: practice.unbilled_ids(cid))
    r = await practice.post("/v1/bills", {"client_id": other, "session_ids": [sid], "responsibility": "client"})
    assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"
    r = await practice.post("/v1/bills", {"client_id": cid, "session_ids": [], "responsibility": "client"})
    assert r.status_code == 422
    r = await practice.post("/v1/bills", {"client_id": cid, "session_ids": [sid], "responsibility": "client",
                                          "copay_cents": 10.5})  # fmt: skip
    assert r.status_code == 422
    r = await practice.post("/v1/bills", {"client_id": cid, "session_ids": [sid], "copay_cents": 2000})
    assert r.status_code == 422 and r.json()["error"]["code"] == "copay_needs_insurance"
    r = await practice.get("/v1/bills/not-a-uuid")
    assert r.status_code == 404
    await practice.billed(cid, [sid])
    r = await practice.post("/v1/bills", {"client_id": cid, "session_ids": [sid]})
    assert r.status_code == 409 and r.json()["error"]["code"] == "session_already_billed"


async def test_two_concurrent_bills_for_one_session_make_one_bill(practice) -> None:
    cid, sid = uid("client"), uid("sess")
    await practice.client(cid)
    await practice.session(sid, cid)
    await eventually(lambda: practice.unbilled_ids(cid))
    body = {"client_id": cid, "session_ids": [sid], "responsibility": "client"}
    answers = await asyncio.gather(*(practice.post("/v1/bills", body) for _ in range(4)))
    codes = sorted(r.status_code for r in answers)
    assert codes == [201, 409, 409, 409], [r.text for r in answers]
    r = await practice.get("/v1/bills", params={"client_id": cid})
    assert len(r.json()["items"]) == 1


async def test_idempotency_key_returns_the_first_answer(practice) -> None:
    cid, sid = uid("client"), uid("sess")
    await practice.client(cid)
    await practice.session(sid, cid)
    await eventually(lambda: practice.unbilled_ids(cid))
    body = {"client_id": cid, "session_ids": [sid], "responsibility": "client"}
    first = await practice.post("/v1/bills", body, key="k-1")
    again = await practice.post("/v1/bills", body, key="k-1")
    assert first.status_code == again.status_code == 201
    assert first.json()["id"] == again.json()["id"]
    other = await practice.post("/v1/bills", {**body, "comments": "x"}, key="k-1")
    assert other.status_code == 422 and other.json()["error"]["code"] == "idempotency_key_reused"


async def test_insurance_bill_with_coinsurance_and_line_edits(practice) -> None:
    cid, sid = uid("client"), uid("sess")
    await practice.client(cid)
    await practice.session(sid, cid, example="insurance-telehealth")
    bill = await practice.billed(
        cid,
        [sid],
        responsibility="insurance",
        coinsurance_percent=20,
        lines=[{"session_id": sid, "code": "90834", "amount_cents": 12345, "description": "Therapy"}],
    )
    [line] = bill["lines"]
    assert line["amount_cents"] == 12345 and line["description"] == "Therapy" and line["modifiers"] == ["95"]
    assert line["client_owes_cents"] == 2469  # 2469.0 exactly; half-even only bites on .5
    assert line["insurance_owes_cents"] == 12345 - 2469
    assert bill["client_owes_cents"] + bill["insurance_owes_cents"] == bill["balance_cents"] == 12345


async def test_payment_pays_refund_reopens_and_the_events_follow(practice) -> None:
    cid, sid = uid("client"), uid("sess")
    await practice.client(cid)
    await practice.session(sid, cid)
    bill = await practice.billed(cid, [sid])
    pid, event = await practice.payment(cid, [(bill["id"], 6000)])
    await practice.publish(topics.PAYMENTS, event, key=cid)  # redelivered
    part = await eventually(lambda: _when(practice.bill(bill["id"]), lambda b: b["paid_cents"] > 0))
    assert part["paid_cents"] == 6000 and part["balance_cents"] == 10000 and part["status"] == "open"
    await practice.payment(cid, [(bill["id"], 10000)])
    paid = await eventually(lambda: _when(practice.bill(bill["id"]), lambda b: b["status"] == "paid"))
    assert paid["balance_cents"] == 0 and paid["paid_cents"] == 16000
    assert [p["kind"] for p in paid["payments"]] == ["payment", "payment"]

    await practice.refund(cid, pid, [(bill["id"], 6000)])
    reopened = await eventually(lambda: _when(practice.bill(bill["id"]), lambda b: b["status"] == "open"))
    assert reopened["paid_cents"] == 10000 and reopened["balance_cents"] == 6000

    events = await practice.events(lambda es: len(es) >= 4)
    assert [e["event_type"] for e in events] == ["BillCreated", "BillUpdated", "BillPaid", "BillUpdated"]
    assert [e["data"]["bill"]["version"] for e in events] == [1, 2, 3, 4]


async def test_cancel_is_refused_while_payments_stand_and_frees_the_sessions(practice) -> None:
    cid, sid = uid("client"), uid("sess")
    await practice.client(cid)
    await practice.session(sid, cid)
    bill = await practice.billed(cid, [sid])
    pid, _ = await practice.payment(cid, [(bill["id"], 5000)])
    await eventually(lambda: _when(practice.bill(bill["id"]), lambda b: b["paid_cents"] == 5000))
    r = await practice.post(f"/v1/bills/{bill['id']}/cancel", {"reason": "wrong client"})
    assert r.status_code == 409 and r.json()["error"]["code"] == "bill_has_payments"
    await practice.refund(cid, pid, [(bill["id"], 5000)])
    await eventually(lambda: _when(practice.bill(bill["id"]), lambda b: b["paid_cents"] == 0))
    r = await practice.post(f"/v1/bills/{bill['id']}/cancel", {"reason": "wrong client"})
    assert r.status_code == 200 and r.json()["status"] == "cancelled"
    assert await practice.unbilled_ids(cid) == [sid]
    r = await practice.post(f"/v1/bills/{bill['id']}/cancel", {})
    assert r.status_code == 409

    # A payment that reaches the cancelled bill is not lost: payments is told to make it credit.
    late, _ = await practice.payment(cid, [(bill["id"], 16000)])
    events = await practice.events(lambda es: any(e["event_type"] == "AllocationRejected" for e in es))
    [rejected] = [e for e in events if e["event_type"] == "AllocationRejected"]
    assert rejected["data"] == {
        "payment_id": late, "bill_id": bill["id"], "client_id": cid, "amount_cents": 16000, "reason": "bill_cancelled"
    }  # fmt: skip
    assert (await practice.bill(bill["id"]))["paid_cents"] == 0
    rebilled = await practice.billed(cid, [sid])
    assert rebilled["number"] == bill["number"] + 1, "numbers are never reused"


async def test_share_now_and_scheduled(practice) -> None:
    cid, s1, s2 = uid("client"), uid("sess"), uid("sess")
    await practice.put("/v1/settings", {"attach_pdf": False})
    await practice.client(cid, minor=True)
    await practice.session(s1, cid)
    await practice.session(s2, cid)
    bill = await practice.billed(cid, [s1])
    r = await practice.post(f"/v1/bills/{bill['id']}/share", {})
    assert r.status_code == 200, r.text
    assert r.json()["shared"] is True and r.json()["shared_at"]
    events = await practice.events(lambda es: any(e["event_type"] == "BillShared" for e in es))
    [shared] = [e for e in events if e["event_type"] == "BillShared"]
    share = shared["data"]["share"]
    assert share["recipient"]["name"] == "Grace Park"
    assert share["attach_pdf"] is False and share["email"] is True
    assert share["action_url"] == bill["pay_url"]

    later = await practice.billed(cid, [s2])
    when = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=1.5)
    r = await practice.post(f"/v1/bills/{later['id']}/share", {"scheduled_for": when.isoformat()})
    assert r.status_code == 202 and r.json()["share_scheduled_at"] and r.json()["shared"] is False
    done = await eventually(lambda: _when(practice.bill(later["id"]), lambda b: b["shared"]), timeout=10)
    assert done["share_scheduled_at"] is None


async def test_document_rendered_keeps_the_newest_version(practice) -> None:
    cid, sid = uid("client"), uid("sess")
    await practice.client(cid)
    await practice.session(sid, cid)
    bill = await practice.billed(cid, [sid])
    await practice.session(sid2 := uid("sess"), cid)
    other = await practice.billed(cid, [sid2])

    def rendered(doc: str, version: int) -> dict:
        return {
            "event_id": str(uuid.uuid4()), "event_type": "DocumentRendered", "occurred_at": "2026-11-10T12:00:00Z",
            "practice_id": practice.id, "schema_version": 1,
            "data": {"document_id": doc, "kind": "bill", "source_id": bill["id"], "client_id": cid,
                     "version": version, "pages": 1, "sha256": "x", "url": "/v1/documents/x/pdf"},
        }  # fmt: skip

    await practice.publish(topics.DOCUMENTS, rendered("doc-2", 2), key=cid)
    await practice.publish(topics.DOCUMENTS, rendered("doc-3", 3), key=cid)
    await eventually(lambda: _when(practice.bill(bill["id"]), lambda b: b["document_id"] == "doc-3"))
    await practice.publish(topics.DOCUMENTS, rendered("doc-1", 1), key=cid)  # an older version, last
    marker = rendered("doc-m", 1)
    marker["data"]["source_id"] = other["id"]
    await practice.publish(topics.DOCUMENTS, marker, key=cid)  # behind it on the same partition
    await eventually(lambda: _when(practice.bill(other["id"]), lambda b: b["document_id"] == "doc-m"))
    assert (await practice.bill(bill["id"]))["document_id"] == "doc-3", "version 1 after 3 changed nothing"


async def test_void_before_completion_and_void_of_a_billed_session(practice) -> None:
    cid, early, billed = uid("client"), uid("sess"), uid("sess")
    await practice.client(cid)
    void = example_event("SessionVoided", session_id=early)
    await practice.send(topics.SCHEDULING, void, key=cid)
    await practice.session(early, cid)  # arrives after its void (reordered)
    await practice.session(billed, cid)
    bill = await practice.billed(cid, [billed])
    assert early not in await practice.unbilled_ids(cid)
    await practice.send(topics.SCHEDULING, example_event("SessionVoided", session_id=billed), key=cid)
    flagged = await eventually(lambda: _when(practice.bill(bill["id"]), lambda b: b["lines"][0]["voided"]))
    assert flagged["total_cents"] == 16000, "flagged, nothing deleted"


async def test_a_redelivered_session_event_leaves_a_billed_or_voided_session_as_it_is(practice) -> None:
    """Session events are not claimed in the inbox (it would grow by every session ever): the
    projection's upsert is what makes a redelivery change nothing."""
    cid, billed, voided, marker = uid("client"), uid("sess"), uid("sess"), uid("sess")
    await practice.client(cid)
    billed_event = await practice.session(billed, cid)
    voided_event = await practice.session(voided, cid)
    bill = await practice.billed(cid, [billed])
    await practice.send(topics.SCHEDULING, example_event("SessionVoided", session_id=voided), key=cid)

    async def voided_gone() -> bool:
        return voided not in await practice.unbilled_ids(cid)

    await eventually(voided_gone)
    for again in (billed_event, voided_event):
        await practice.publish(topics.SCHEDULING, again, key=cid)
    await practice.session(marker, cid)  # same key, so after the redeliveries
    await eventually(lambda: _when(practice.unbilled_ids(cid), lambda ids: marker in ids))

    assert await practice.unbilled_ids(cid) == [marker]
    after = await practice.bill(bill["id"])
    assert (after["lines"], after["total_cents"], after["status"]) == (bill["lines"], bill["total_cents"], "open")
    inbox = practice.svc.inbox_table
    async with practice.svc.db.transaction() as db:
        claimed = await db.scalar(select(func.count()).where(inbox.c.event_id == billed_event["event_id"]))
    assert claimed == 0


async def test_a_bill_read_while_a_payment_lands_shows_one_moment(practice, monkeypatch) -> None:
    """GET /v1/bills/{id} reads the bill's row, then its payments: a payment committed between
    the two must not show the old status beside the new balance (a page waiting for the two to
    agree stopped waiting on 'Open, balance $0.00')."""
    cid, sid = uid("client"), uid("sess")
    await practice.client(cid)
    await practice.session(sid, cid)
    bill = await practice.billed(cid, [sid])
    _, event = practice.payment_event(cid, [(bill["id"], bill["balance_cents"])])
    apply_payment = handlers.payments_handlers(practice.svc.outbox)["PaymentRecorded"]
    facts_of_bills = repo.facts_of_bills

    async def payment_lands_meanwhile(db, bill_ids):
        async with practice.svc.db.transaction() as other:
            await apply_payment(other, parse_event(json.dumps(event).encode(), "PaymentRecorded"))
        monkeypatch.setattr(repo, "facts_of_bills", facts_of_bills)
        return await facts_of_bills(db, bill_ids)

    monkeypatch.setattr(repo, "facts_of_bills", payment_lands_meanwhile)
    during = await practice.bill(bill["id"])
    after = await practice.bill(bill["id"])
    assert (during["status"], during["balance_cents"]) == ("open", bill["balance_cents"])
    assert (after["status"], after["balance_cents"]) == ("paid", 0)


async def test_a_client_reads_only_their_own_bills(practice) -> None:
    cid, sid = uid("client"), uid("sess")
    await practice.client(cid)
    await practice.session(sid, cid)
    bill = await practice.billed(cid, [sid])
    assert (await practice.post(f"/v1/bills/{bill['id']}/share", {})).status_code == 200
    r = await practice.get(f"/v1/bills/{bill['id']}", role="client", client_id=cid)
    assert r.status_code == 200
    r = await practice.get(f"/v1/bills/{bill['id']}", role="client", client_id="someone-else")
    assert r.status_code == 404
    r = await practice.get("/v1/bills", role="client", client_id="someone-else")
    assert r.json()["items"] == []
    r = await practice.get("/v1/unbilled-sessions", role="client", client_id=cid)
    assert r.status_code == 403


async def _when(coro, predicate):
    value = await coro
    return value if predicate(value) else None


async def test_older_client_update_delivered_late_changes_nothing(practice) -> None:
    cid, sid = uid("client"), uid("sess")
    newer = example_event("ClientUpserted-adult")
    newer["data"]["client"].update(id=cid, last_name="Newer")
    newer["occurred_at"] = "2026-11-05T00:00:00Z"
    older = example_event("ClientUpserted-adult")
    older["data"]["client"].update(id=cid, last_name="Older")
    older["occurred_at"] = "2026-11-01T00:00:00Z"
    await practice.send(topics.SCHEDULING, newer, key=cid)
    await practice.send(topics.SCHEDULING, older, key=cid)
    await practice.session(sid, cid)
    [item] = await eventually(lambda: practice.unbilled(cid))
    assert item["client_name"] == "Jamie Newer"


async def test_lists_filter_and_page_newest_first(practice) -> None:
    cid = uid("client")
    await practice.client(cid)
    sids = [uid("sess") for _ in range(3)]
    for day, sid in zip(("2026-11-02", "2026-11-03", "2026-11-04"), sids, strict=True):
        await practice.session(sid, cid, date_of_service=day)
    await eventually(lambda: _when(practice.unbilled_ids(cid), lambda ids: len(ids) == 3))
    r = await practice.get("/v1/unbilled-sessions", params={"client_id": cid, "limit": 2})
    first = r.json()
    assert [i["session_id"] for i in first["items"]] == [sids[2], sids[1]]
    r = await practice.get(
        "/v1/unbilled-sessions", params={"client_id": cid, "limit": 2, "cursor": first["next_cursor"]}
    )
    assert [i["session_id"] for i in r.json()["items"]] == [sids[0]] and r.json()["next_cursor"] is None

    made = [await practice.billed(cid, [sid]) for sid in sids]
    await practice.post(f"/v1/bills/{made[0]['id']}/cancel", {})
    r = await practice.get("/v1/bills", params={"limit": 2})
    page1 = r.json()
    assert [b["id"] for b in page1["items"]] == [made[2]["id"], made[1]["id"]]
    r = await practice.get("/v1/bills", params={"limit": 2, "cursor": page1["next_cursor"]})
    assert [b["id"] for b in r.json()["items"]] == [made[0]["id"]]
    r = await practice.get("/v1/bills", params={"status": "cancelled", "client_id": cid})
    assert [b["id"] for b in r.json()["items"]] == [made[0]["id"]]
    r = await practice.get("/v1/bills", params={"status": "bogus"})
    assert r.status_code == 422
    r = await practice.get("/v1/bills", params={"cursor": "!!"})
    assert r.status_code == 422


async def test_bill_list_reads_all_lines_and_payments_in_one_query_each(practice) -> None:
    """GET /v1/bills snapshots its whole page with one query for lines and one for payment
    facts (no query per bill), and each item is what GET /v1/bills/{id} answers."""
    cid = uid("client")
    await practice.client(cid)
    sids = [uid("sess") for _ in range(3)]
    for sid in sids:
        await practice.session(sid, cid)
    made = [await practice.billed(cid, [sid]) for sid in sids]
    await practice.payment(cid, [(made[0]["id"], 1000)])
    await eventually(lambda: _when(practice.bill(made[0]["id"]), lambda b: b["paid_cents"] == 1000))

    seen: list[str] = []

    def record(conn, cursor, statement, parameters, context, executemany) -> None:
        if "bill_lines" in statement or "bill_payments" in statement:
            seen.append(statement)

    engine = practice.svc.db.engine.sync_engine
    event.listen(engine, "before_cursor_execute", record)
    try:
        r = await practice.get("/v1/bills", params={"client_id": cid})
    finally:
        event.remove(engine, "before_cursor_execute", record)
    assert r.status_code == 200, r.text
    items = r.json()["items"]
    assert [b["id"] for b in items] == [m["id"] for m in reversed(made)]
    assert len(seen) == 2, seen
    for item in items:
        assert item == await practice.bill(item["id"])
    assert items[-1]["paid_cents"] == 1000 and items[-1]["payments"][0]["amount_cents"] == 1000
