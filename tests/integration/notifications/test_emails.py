"""Emails against a real SMTP server, driven by real events on Kafka: content, waiting for the
PDF, exactly once on redelivery, retries, permanent failures, portal-only clients."""

import asyncio
import datetime as dt
import json
import uuid
from typing import Any

import httpx
import pytest
from sqlalchemy import func, insert, select

from services.notifications import projections
from services.notifications.db import deliveries
from services.notifications.expiry import CardExpiryNotices
from services.notifications.mailer import SmtpMailer
from services.notifications.sender import DeliverySender
from shared import topics
from shared.events import (
    CardAuthorized,
    ClientUpserted,
    DocumentFailed,
    PaymentFailed,
    PaymentRecorded,
    PaymentRefunded,
    RefundInfo,
    StatementShared,
)
from tests.conftest import eventually, example_event, read_topic
from tests.integration.notifications.conftest import Running, pdf_bytes
from tests.unit.notifications import samples

pytestmark = pytest.mark.integration


def new_client() -> tuple[str, str]:
    tag = uuid.uuid4().hex[:8]
    return f"client-{tag}", f"grace.{tag}@example.com"


async def email_with_status(n: Running, client_id: str, status: str) -> dict[str, Any] | None:
    items = await n.emails(client_id)
    return items[0] if items and items[0]["status"] == status else None


async def test_bill_email_waits_for_its_pdf_then_arrives_once_with_everything(notifications: Running, publish):
    n = notifications
    client_id, address = new_client()
    snapshot = samples.bill(client_id, version=2)
    shared = samples.envelope(samples.bill_shared(snapshot, address=address))
    await publish(topics.BILLING, shared, key=client_id, settings=n.settings)
    await eventually(lambda: n.emails(client_id))
    # A marker: another client's bill waiting for its PDF, its events on the same partition (same key).
    marker_client, marker_address = new_client()
    marker = samples.bill(marker_client, number=1043)
    await publish(topics.BILLING, samples.envelope(samples.bill_shared(marker, address=marker_address)),
                  key=client_id, settings=n.settings)  # fmt: skip
    await publish(topics.DOCUMENTS, samples.envelope(samples.rendered("bill", snapshot.id, client_id, version=1)),
                  key=client_id, settings=n.settings)  # fmt: skip
    await publish(topics.DOCUMENTS, samples.envelope(samples.rendered("bill", marker.id, marker_client)),
                  key=client_id, settings=n.settings)  # fmt: skip
    await eventually(lambda: n.inbox.to(marker_address))
    assert n.inbox.to(address) == [], "sent with an outdated PDF"
    assert (await n.emails(client_id))[0]["status"] == "queued"

    document = samples.rendered("bill", snapshot.id, client_id, version=2)
    await publish(topics.DOCUMENTS, samples.envelope(document), key=client_id, settings=n.settings)
    sent = await eventually(lambda: email_with_status(n, client_id, "sent"))
    [message] = n.inbox.to(address)

    assert message["Subject"] == "Your bill #1042 from Rivers Edge Counseling"
    assert message["From"] == "billing@riversedge.example"
    assert message["Message-ID"] == f"<{sent['id']}@riversedge.example>"
    assert message.get_content_type() == "multipart/mixed"
    text = message.get_body(("plain",)).get_content()
    html = message.get_body(("html",)).get_content()
    for body in (text, html):
        assert "$160.00" in body
        assert "2026-12-02" in body
        assert "483920" in body
        assert "1042" in body
        assert "http://localhost:8002/pay?bill=1042" in body
    [attachment] = list(message.iter_attachments())
    assert attachment.get_content_type() == "application/pdf"
    assert attachment.get_filename() == "bill-1042.pdf"
    assert attachment.get_content() == pdf_bytes(document.document_id)

    assert sent["to"] == address and sent["kind"] == "bill_shared" and sent["attempts"] == 1
    assert sent["sent_at"] and sent["document_id"] == document.document_id
    [notification] = await n.feed(client_id)
    assert notification["kind"] == "bill_shared"
    assert notification["document_id"] == document.document_id
    assert notification["action_url"] == "http://localhost:8002/pay?bill=1042"
    assert "483920" in notification["body_text"]

    portal = await read_topic(n.settings, topics.PORTAL, until=lambda rs: _for_client(rs, client_id))
    [event] = _for_client(portal, client_id)
    assert event["data"]["notification_id"] == notification["notification_id"]
    assert event["data"]["recipient"] == {"name": "Grace Park", "email": address}
    sent_events = await read_topic(n.settings, topics.NOTIFICATIONS, until=lambda rs: _for_client(rs, client_id))
    assert [e["event_type"] for e in _for_client(sent_events, client_id)] == ["EmailSent"]

    # redelivery of the same event, then a marker on the same partition: nothing new goes out
    await publish(topics.BILLING, shared, key=client_id, settings=n.settings)
    marker = samples.envelope(samples.bill_shared(samples.bill(client_id), address=address, attach_pdf=False))
    await publish(topics.BILLING, marker, key=client_id, settings=n.settings)
    await eventually(lambda: len(n.inbox.to(address)) == 2)
    assert len(await n.emails(client_id)) == 2, "the redelivery, before the marker, queued nothing"
    assert len(await n.feed(client_id)) == 2


async def test_portal_feed_is_the_clients_own(notifications: Running):
    n = notifications
    other, _ = new_client()
    response = await n.http.get(f"/v1/clients/{other}/notifications", headers=n.client("client-someone-else"))
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"
    response = await n.http.get("/v1/emails", headers=n.client(other))
    assert response.status_code == 403


async def test_deferred_recipient_is_retried_with_backoff_until_accepted(notifications: Running, publish):
    n = notifications
    client_id, address = new_client()
    n.inbox.defer[address] = ["451 4.3.0 mailbox busy, try later", "452 4.2.2 over quota, try later"]
    snapshot = samples.bill(client_id)
    await publish(topics.BILLING, samples.envelope(samples.bill_shared(snapshot, address=address, attach_pdf=False)),
                  key=client_id, settings=n.settings)  # fmt: skip
    sent = await eventually(lambda: email_with_status(n, client_id, "sent"))
    assert sent["attempts"] == 3
    assert "452" in sent["last_error"]
    assert len(n.inbox.to(address)) == 1
    assert not list(n.inbox.to(address)[0].iter_attachments()), "portal-only PDF must not be attached"


async def test_smtp_server_down_is_retried_until_it_comes_back(notifications: Running, publish):
    n = notifications
    client_id, address = new_client()
    n.smtp.stop()
    try:
        snapshot = samples.bill(client_id)
        event = samples.envelope(samples.bill_shared(snapshot, address=address, attach_pdf=False))
        await publish(topics.BILLING, event, key=client_id, settings=n.settings)
        queued = await eventually(lambda: _attempted(n, client_id, 2))
        assert queued["status"] == "queued"
        assert "connect" in queued["last_error"].lower()
    finally:
        n.smtp.start()
    sent = await eventually(lambda: email_with_status(n, client_id, "sent"))
    assert sent["attempts"] >= 3
    assert len(n.inbox.to(address)) == 1


async def test_emails_waiting_out_a_backoff_go_once_the_smtp_server_is_back(
    notifications: Running, publish, monkeypatch
):
    """An email that failed while the SMTP server was down waits out its backoff (up to
    EMAIL_RETRY_MAX_MS, 15 minutes by default). Once a send goes through again, the waiting
    ones are sent at once, not when their backoff ends."""
    n = notifications
    monkeypatch.setattr(n.settings, "email_retry_base_ms", 600_000)
    monkeypatch.setattr(n.settings, "email_retry_max_ms", 900_000)
    waiting, waiting_address = new_client()
    n.smtp.stop()
    try:
        event = samples.envelope(samples.bill_shared(samples.bill(waiting), address=waiting_address, attach_pdf=False))
        await publish(topics.BILLING, event, key=waiting, settings=n.settings)
        queued = await eventually(lambda: _attempted(n, waiting, 1))
        assert queued["status"] == "queued"
    finally:
        n.smtp.start()
    fresh, fresh_address = new_client()  # the next email, sent as soon as it comes
    event = samples.envelope(samples.bill_shared(samples.bill(fresh), address=fresh_address, attach_pdf=False))
    await publish(topics.BILLING, event, key=fresh, settings=n.settings)
    await eventually(lambda: email_with_status(n, fresh, "sent"))
    sent = await eventually(lambda: email_with_status(n, waiting, "sent"))
    assert sent["attempts"] == 2
    assert len(n.inbox.to(waiting_address)) == 1


async def test_refused_address_is_a_recorded_failure_not_retried(notifications: Running, publish):
    n = notifications
    client_id, address = new_client()
    n.inbox.refuse[address] = "550 5.1.1 no such user"
    await publish(topics.BILLING, samples.envelope(samples.bill_shared(samples.bill(client_id), address=address,
                  attach_pdf=False)), key=client_id, settings=n.settings)  # fmt: skip
    failed = await eventually(lambda: email_with_status(n, client_id, "failed"))
    assert failed["attempts"] == 1
    assert "550" in failed["last_error"]
    events = await read_topic(n.settings, topics.NOTIFICATIONS, until=lambda rs: _for_client(rs, client_id))
    [event] = _for_client(events, client_id)
    assert event["event_type"] == "EmailFailed"
    assert "550" in event["data"]["reason"] and event["data"]["to"] == address
    assert len(await n.feed(client_id)) == 1, "the portal still shows the bill"

    # staff fix the mailbox and retry: sent once, the portal is not notified twice
    del n.inbox.refuse[address]
    retry = f"/v1/emails/{failed['id']}/retry"
    headers = {**n.staff(), "Idempotency-Key": f"retry-{failed['id']}"}
    first = await n.http.post(retry, headers=headers)
    assert first.status_code == 202 and first.json()["status"] == "queued" and first.json()["attempts"] == 0
    again = await n.http.post(retry, headers=headers)
    assert (again.status_code, again.json()) == (202, first.json())
    sent = await eventually(lambda: email_with_status(n, client_id, "sent"))
    assert sent["attempts"] == 1 and "550" in sent["last_error"]
    assert len(n.inbox.to(address)) == 1
    assert len(await n.feed(client_id)) == 1
    conflict = await n.http.post(retry, headers=n.staff())
    assert conflict.status_code == 409 and conflict.json()["error"]["code"] == "email_not_failed"
    unknown = await n.http.post(f"/v1/emails/{uuid.uuid4()}/retry", headers=n.staff())
    assert unknown.status_code == 404
    one = await n.http.get(f"/v1/emails/{failed['id']}", headers=n.staff())
    assert one.status_code == 200 and one.json()["status"] == "sent"
    assert (await n.http.get(f"/v1/emails/{uuid.uuid4()}", headers=n.staff())).status_code == 404


async def test_missing_pdf_fails_clearly_after_the_bounded_wait(notifications: Running, publish):
    n = notifications
    client_id, address = new_client()
    snapshot = samples.bill(client_id)
    await publish(topics.BILLING, samples.envelope(samples.bill_shared(snapshot, address=address)),
                  key=client_id, settings=n.settings)  # fmt: skip
    failed = await eventually(lambda: email_with_status(n, client_id, "failed"), timeout=20)
    assert "not rendered within 8s" in failed["last_error"]
    assert n.inbox.to(address) == []


async def test_document_failure_stops_the_wait(notifications: Running, publish):
    n = notifications
    client_id, address = new_client()
    snapshot = samples.bill(client_id)
    await publish(topics.BILLING, samples.envelope(samples.bill_shared(snapshot, address=address)),
                  key=client_id, settings=n.settings)  # fmt: skip
    await eventually(lambda: n.emails(client_id))
    failure = DocumentFailed(kind="bill", source_id=snapshot.id, client_id=client_id, version=1, reason="font missing")
    await publish(topics.DOCUMENTS, samples.envelope(failure), key=client_id, settings=n.settings)
    failed = await eventually(lambda: email_with_status(n, client_id, "failed"), timeout=1.5)
    assert failed["last_error"] == "document rendering failed: font missing"


async def test_no_email_address_gets_the_portal_notification_only(notifications: Running, publish):
    n = notifications
    client_id, _ = new_client()
    await publish(topics.BILLING, samples.envelope(samples.bill_shared(samples.bill(client_id), address=None)),
                  key=client_id, settings=n.settings)  # fmt: skip
    opted_out = samples.bill_shared(samples.bill(client_id, number=1043), address="x@example.com", email=False)
    await publish(topics.BILLING, samples.envelope(opted_out), key=client_id, settings=n.settings)
    feed = await eventually(lambda: _feed_len(n, client_id, 2))
    assert {f["recipient"]["email"] for f in feed} == {None}
    assert await n.emails(client_id) == []
    assert n.inbox.to("x@example.com") == []


async def test_statement_email_for_a_minor_and_payment_receipts(notifications: Running, publish):
    n = notifications
    minor = example_event("ClientUpserted-minor")
    client_id, address = new_client()
    minor["data"]["client"]["id"] = client_id
    minor["data"]["client"]["guardians"][0]["email"] = address
    ClientUpserted.model_validate(minor["data"])
    await publish(topics.SCHEDULING, minor, key=client_id, settings=n.settings)
    await eventually(lambda: contact_known(n, client_id))

    source = samples.statement(client_id)
    shared = StatementShared(statement=source, share=samples.share(address=address, attach_pdf=False,
                             action_url="http://portal.example/statements/7"))  # fmt: skip
    await publish(topics.BILLING, samples.envelope(shared), key=client_id, settings=n.settings)
    snapshot = samples.bill(client_id, balance=20000)
    payment = samples.card_payment(client_id, amount=5000)
    await publish(topics.BILLING, samples.envelope(samples.bill_shared(snapshot, address=None)),
                  key=client_id, settings=n.settings)  # fmt: skip
    await eventually(lambda: _feed_len(n, client_id, 2))  # the practice is known by now
    recorded = PaymentRecorded(payment=payment, allocations=[{"bill_id": snapshot.id, "amount_cents": 5000}])
    await publish(topics.PAYMENTS, samples.envelope(recorded), key=client_id, settings=n.settings)
    declined = PaymentFailed(payment=samples.card_payment(client_id, amount=15000, status="failed"),
                             reason="card declined", autopay=True)  # fmt: skip
    await publish(topics.PAYMENTS, samples.envelope(declined), key=client_id, settings=n.settings)

    await eventually(lambda: len(n.inbox.to(address)) == 3)
    by_subject = {m["Subject"]: m for m in n.inbox.to(address)}
    statement = by_subject["Your statement #7 from Rivers Edge Counseling"]
    assert "Grace Park" in str(statement["To"])
    assert "$45.00" in statement.get_body(("plain",)).get_content()
    assert "http://portal.example/statements/7" in statement.get_body(("html",)).get_content()
    receipt = by_subject["Receipt for your payment of $50.00 to Rivers Edge Counseling"]
    receipt_text = receipt.get_body(("plain",)).get_content()
    assert "Visa ending in 4242" in receipt_text
    assert "Remaining balance: $150.00" in receipt_text
    autopay = by_subject["Your automatic payment of $150.00 to Rivers Edge Counseling did not go through"]
    assert "card declined" in autopay.get_body(("plain",)).get_content()
    kinds = {f["kind"] for f in await eventually(lambda: _feed_len(n, client_id, 4))}
    assert kinds == {"statement_shared", "bill_shared", "payment_receipt", "autopay_failed"}


async def _attempted(n: Running, client_id: str, attempts: int) -> dict[str, Any] | None:
    items = await n.emails(client_id)
    return items[0] if items and items[0]["attempts"] >= attempts else None


async def _feed_len(n: Running, client_id: str, count: int) -> list[dict[str, Any]] | None:
    feed = await n.feed(client_id)
    return feed if len(feed) >= count else None


def _for_client(records: list[Any], client_id: str) -> list[dict[str, Any]]:
    out = [json.loads(r.value) for r in records if r.key == client_id.encode()]
    return [e for e in out if e["event_type"] != "AuditRecorded"]  # those: tests of the audit trail


async def adult_client(n: Running, publish) -> tuple[str, str]:
    """A known adult client (ClientUpserted applied) with an address of their own."""
    client_id, address = new_client()
    event = example_event("ClientUpserted-adult")
    event["data"]["client"].update(id=client_id, email=address)
    await publish(topics.SCHEDULING, event, key=client_id, settings=n.settings)
    await eventually(lambda: contact_known(n, client_id))
    return client_id, address


async def contact_known(n: Running, client_id: str) -> bool:
    """ClientUpserted applied (scheduling.events is not ordered with the other topics)."""
    async with n.svc.db.transaction() as session:
        return await projections.get_contact(session, samples.PRACTICE, client_id) is not None


async def test_refund_email(notifications: Running, publish):
    n = notifications
    client_id, address = await adult_client(n, publish)
    payment = samples.card_payment(client_id, amount=16000)
    refund = RefundInfo(
        id="re_1", payment_id=payment.id, client_id=client_id, amount_cents=6000, reason=None, refunded_at=samples.NOW
    )
    await publish(topics.PAYMENTS, samples.envelope(PaymentRefunded(refund=refund, payment=payment)),
                  key=client_id, settings=n.settings)  # fmt: skip
    await eventually(lambda: n.inbox.to(address))
    [message] = n.inbox.to(address)
    assert message["Subject"].startswith("Refund of $60.00 from")
    assert "refunded $60.00 of your payment of $160.00 to your Visa ending in 4242" in message.get_body(
        ("plain",)
    ).get_content().replace("\n", " ")
    feed = await eventually(lambda: _feed_len(n, client_id, 1))  # recorded just after SMTP accepted it
    assert [f["kind"] for f in feed] == ["refund_issued"]


async def test_card_expiring_notice_goes_once_per_card_and_expiry(notifications: Running, publish):
    n = notifications
    client_id, address = await adult_client(n, publish)
    today = dt.date(2026, 11, 20)
    card = CardAuthorized(client_id=client_id, card_id=f"card_{client_id}", brand="visa", last4="4242",
                          exp_month=11, exp_year=2026)  # fmt: skip
    later = CardAuthorized(client_id=client_id, card_id=f"card2_{client_id}", brand="visa", last4="1111",
                           exp_month=3, exp_year=2027)  # fmt: skip
    for c in (card, later):
        await publish(topics.PAYMENTS, samples.envelope(c), key=client_id, settings=n.settings)
    job = CardExpiryNotices(n.svc)
    await eventually(lambda: job.run_once(today))
    assert await job.run_once(today) == 0, "a second scan queues nothing new"
    await eventually(lambda: _when(n.emails(client_id), lambda es: es and all(e["status"] == "sent" for e in es)))
    [message] = n.inbox.to(address)
    assert "Visa ending in 4242" in message.get_body(("plain",)).get_content()
    assert "11/2026" in message.get_body(("html",)).get_content()


async def test_lists_are_paged_newest_first(notifications: Running, publish):
    n = notifications
    client_id, _ = new_client()
    for number in (1, 2, 3):
        bill = samples.bill(client_id, number=number)
        await publish(topics.BILLING, samples.envelope(samples.bill_shared(bill, address=None)),
                      key=client_id, settings=n.settings)  # fmt: skip
    await eventually(lambda: _feed_len(n, client_id, 3))
    url = f"/v1/clients/{client_id}/notifications"
    first = (await n.http.get(url, params={"limit": 2}, headers=n.client(client_id))).json()
    assert len(first["items"]) == 2 and first["next_cursor"]
    rest = (await n.http.get(url, params={"limit": 2, "cursor": first["next_cursor"]}, headers=n.staff())).json()
    assert len(rest["items"]) == 1 and rest["next_cursor"] is None
    items = first["items"] + rest["items"]
    assert {i["subject"] for i in items} == {f"Your bill #{k} from Rivers Edge Counseling" for k in (1, 2, 3)}
    stamps = [dt.datetime.fromisoformat(i["created_at"]) for i in items]
    assert stamps == sorted(stamps, reverse=True), "newest first"
    bad = await n.http.get(url, params={"cursor": "bm90LWEtY3Vyc29y"}, headers=n.staff())
    assert bad.status_code == 422 and bad.json()["error"]["code"] == "invalid_cursor"


async def test_competing_senders_send_each_email_once(notifications: Running, publish):
    """Three senders (as in three replicas) share the queue with SKIP LOCKED: no email twice."""
    n = notifications
    client_id, _ = new_client()
    addresses = [f"race.{uuid.uuid4().hex[:8]}@example.com" for _ in range(12)]
    async with httpx.AsyncClient() as http:
        replicas = [DeliverySender(n.svc, SmtpMailer(n.settings), http) for _ in range(2)]
        for address in addresses:
            event = samples.envelope(samples.bill_shared(samples.bill(client_id), address=address, attach_pdf=False))
            await publish(topics.BILLING, event, key=client_id, settings=n.settings)

        async def all_sent() -> bool:
            await asyncio.gather(*(r.send_due() for r in replicas))
            items = await n.emails(client_id)
            return len(items) == len(addresses) and all(i["status"] == "sent" for i in items)

        await eventually(all_sent, interval=0.01)
    assert sorted(a for a in addresses for _ in n.inbox.to(a)) == sorted(addresses)
    assert all(i["attempts"] == 1 for i in await n.emails(client_id))


async def test_a_client_who_chose_portal_only_gets_no_receipt_email_either(notifications: Running, publish):
    n = notifications
    client_id, address = await adult_client(n, publish)
    portal_only = samples.bill_shared(samples.bill(client_id), address=address, email=False)
    await publish(topics.BILLING, samples.envelope(portal_only), key=client_id, settings=n.settings)
    await eventually(lambda: _feed_len(n, client_id, 1))
    recorded = PaymentRecorded(payment=samples.card_payment(client_id, amount=2500))
    await publish(topics.PAYMENTS, samples.envelope(recorded), key=client_id, settings=n.settings)
    feed = await eventually(lambda: _feed_len(n, client_id, 2))
    assert {f["kind"] for f in feed} == {"bill_shared", "payment_receipt"}
    assert {f["recipient"]["email"] for f in feed} == {None}
    assert n.inbox.to(address) == [] and await n.emails(client_id) == []


async def _when(coro: Any, predicate: Any) -> Any:
    value = await coro
    return value if predicate(value) else None


async def claimed_delivery(n: Running, client_id: str, address: str, replica: str) -> None:
    """A receipt email as a replica's run leaves it when killed mid-send: `sending`, claimed now."""
    async with n.svc.db.transaction() as session:
        await session.execute(
            insert(deliveries).values(
                id=str(uuid.uuid4()), practice_id=samples.PRACTICE, client_id=client_id,
                cause_event_id=str(uuid.uuid4()), kind="payment_receipt", channel="email",
                recipient_name="Grace Park", to_address=address, subject="Payment received",
                summary="Payment received", body_text="Thank you.", body_html="<p>Thank you.</p>",
                status="sending", attempts=1, claimed_at=func.now(), claimed_by=replica, document_deadline=func.now(),
            )
        )  # fmt: skip


async def test_a_replica_restarted_under_its_identity_sends_what_it_had_claimed_at_once(notifications: Running):
    """Its previous run was killed mid-send: the claim is not left to the 5-minute lease. The
    other replica's claim (it may be sending right now) is left alone."""
    n, d = notifications, deliveries.c
    client_id, mine = new_client()
    theirs = mine.replace("grace.", "other.")
    await claimed_delivery(n, client_id, mine, "notifications-0")
    await claimed_delivery(n, client_id, theirs, "notifications-1")
    async with httpx.AsyncClient() as http:
        restarted = DeliverySender(n.svc, SmtpMailer(n.settings), http, replica="notifications-0")
        await restarted.take_back_claims()
        await eventually(lambda: _sent_to(n, client_id, mine))
    assert len(n.inbox.to(mine)) == 1 and n.inbox.to(theirs) == []
    async with n.svc.db.transaction() as session:
        claim = (await session.execute(select(d.status, d.claimed_by).where(d.to_address == theirs))).one()
    assert tuple(claim) == ("sending", "notifications-1")


async def _sent_to(n: Running, client_id: str, address: str) -> bool:
    return any(i["to"] == address and i["status"] == "sent" for i in await n.emails(client_id))
