"""Events cannot steer notifications across practices or hosts: a bill another practice holds is
not overwritten (dead-lettered), and the PDF is fetched from our documents URL by id, whatever
URL the DocumentRendered event carries."""

import uuid

import pytest
from sqlalchemy import select

from services.notifications.db import bill_balances
from shared import topics
from tests.conftest import dead_letter, eventually
from tests.integration.notifications.conftest import DocumentsStandIn, Running, pdf_bytes
from tests.unit.notifications import samples

pytestmark = pytest.mark.integration


@pytest.mark.expect_dlq
@pytest.mark.expect_error_log
async def test_a_bill_event_of_another_practice_is_dead_lettered(notifications: Running, publish) -> None:
    n = notifications
    client_id = f"client-{uuid.uuid4().hex[:8]}"
    snapshot = samples.bill(client_id, balance=16000)
    await publish(topics.BILLING, samples.envelope(samples.bill_shared(snapshot)), key=client_id, settings=n.settings)

    async def rows():
        async with n.svc.db.transaction() as s:
            return (await s.execute(select(bill_balances).where(bill_balances.c.bill_id == snapshot.id))).all()

    await eventually(rows)
    forged_bill = samples.bill(client_id, balance=1, version=5).model_copy(update={"id": snapshot.id})
    forged = samples.envelope(samples.bill_shared(forged_bill), practice_id="practice-elsewhere")
    await publish(topics.BILLING, forged, key=client_id, settings=n.settings)

    headers = await dead_letter(n.settings, topics.BILLING, forged["event_id"])
    assert headers["error-type"] == "PracticeMismatch"
    assert f"bill {snapshot.id} belongs to another practice" in headers["error"]
    [kept] = await rows()
    assert (kept.practice_id, kept.balance_cents, kept.version) == (samples.PRACTICE, 16000, 1)


async def test_the_pdf_comes_from_our_documents_url_not_the_one_in_the_event(notifications: Running, publish) -> None:
    n = notifications
    elsewhere = DocumentsStandIn(n.settings)  # a host an attacker controls, recording what reaches it
    await elsewhere.start()
    try:
        client_id, address = f"client-{uuid.uuid4().hex[:8]}", f"ann.{uuid.uuid4().hex[:6]}@example.com"
        snapshot = samples.bill(client_id)
        shared = samples.envelope(samples.bill_shared(snapshot, address=address))
        await publish(topics.BILLING, shared, key=client_id, settings=n.settings)
        document = samples.rendered("bill", snapshot.id, client_id).model_copy(
            update={"url": f"http://127.0.0.1:{elsewhere.port}/v1/documents/stolen/pdf"}
        )
        await publish(topics.DOCUMENTS, samples.envelope(document), key=client_id, settings=n.settings)
        [message] = await eventually(lambda: n.inbox.to(address))
        [attachment] = list(message.iter_attachments())
        assert attachment.get_content() == pdf_bytes(document.document_id)
        assert document.document_id in n.documents.requests
        assert elsewhere.requests == []
    finally:
        await elsewhere.stop()
