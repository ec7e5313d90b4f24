"""A shared Good Faith Estimate: emailed through the real SMTP server with its PDF, and in the
client's portal feed, like a statement."""

import pytest

from shared import topics
from shared.events import GoodFaithEstimateShared
from tests.conftest import eventually
from tests.integration.notifications.conftest import Running, pdf_bytes
from tests.integration.notifications.test_emails import email_with_status, new_client
from tests.unit.notifications import samples

pytestmark = pytest.mark.integration


async def test_an_estimate_is_emailed_with_its_pdf_and_shown_in_the_portal(notifications: Running, publish):
    n = notifications
    client_id, address = new_client()
    source = samples.statement(
        client_id, kind="good_faith_estimate", number=12,
        body={"start_date": "2026-11-01", "end_date": "2027-04-30", "total_cents": 342000},
    )  # fmt: skip
    shared = GoodFaithEstimateShared(estimate=source, share=samples.share(address=address))
    await publish(topics.BILLING, samples.envelope(shared), key=client_id, settings=n.settings)
    await eventually(lambda: n.emails(client_id))
    document = samples.rendered("good_faith_estimate", source.id, client_id)
    await publish(topics.DOCUMENTS, samples.envelope(document), key=client_id, settings=n.settings)
    sent = await eventually(lambda: email_with_status(n, client_id, "sent"))
    [message] = n.inbox.to(address)
    assert message["Subject"] == "Your Good Faith Estimate #12 from Rivers Edge Counseling"
    text = message.get_body(("plain",)).get_content()
    assert "Good Faith Estimate of the expected charges" in text and "Estimated total: $3,420.00" in text
    assert "2026-11-01 to 2027-04-30" in text
    [attachment] = list(message.iter_attachments())
    assert attachment.get_filename() == "good-faith-estimate-12.pdf"
    assert attachment.get_content() == pdf_bytes(document.document_id)
    assert sent["kind"] == "good_faith_estimate_shared"
    [notification] = await n.feed(client_id)
    assert notification["kind"] == "good_faith_estimate_shared"
    assert notification["document_id"] == document.document_id
