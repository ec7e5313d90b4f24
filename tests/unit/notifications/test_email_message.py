"""The email as it leaves: multipart text + HTML (escaped), PDF attached, stable Message-ID;
SMTP errors sorted into retry or give up."""

import email
import email.policy

import aiosmtplib

from services.notifications import domain
from services.notifications.compose import render
from services.notifications.mailer import Outgoing, build_message, classify, message_id
from tests.unit.notifications import samples


def test_bill_email_renders_text_and_escaped_html() -> None:
    bill = samples.bill("c1", comments="Thanks <b>& see you</b>")
    bodies = render(domain.bill_shared(bill, samples.share()))
    assert "Amount due:  $160.00" in bodies.text
    assert "Access code: 483920" in bodies.text
    assert "Thanks <b>& see you</b>" in bodies.text
    assert "Thanks &lt;b&gt;&amp; see you&lt;/b&gt;" in bodies.html
    assert 'href="http://localhost:8002/pay?bill=1042"' in bodies.html
    assert "for Noah Park" in bodies.text


def test_every_template_renders() -> None:
    payment = samples.card_payment("c1")
    drafts = [
        domain.bill_shared(samples.bill("c1"), samples.share()),
        domain.document_shared(samples.statement("c1"), samples.share()),
        domain.payment_receipt(payment, "P", "USD", "G", None),
        domain.payment_failed(payment, "declined", "P", "USD", "G", True),
    ]
    for draft in drafts:
        bodies = render(draft)
        assert bodies.text.strip() and "<html" in bodies.html


def test_message_is_multipart_with_the_pdf_and_a_stable_id() -> None:
    out = Outgoing(
        "d-1", "Grace Park", "grace@example.com", "Your bill", "text body", "<p>html</p>", b"%PDF-1.4", "bill-1.pdf"
    )
    raw = build_message(out, "billing@practice.example").as_bytes()
    parsed = email.message_from_bytes(raw, policy=email.policy.default)
    assert parsed["Message-ID"] == "<d-1@practice.example>" == message_id("d-1", "billing@practice.example")
    assert parsed["To"] == "Grace Park <grace@example.com>"
    assert parsed.get_body(("plain",)).get_content().strip() == "text body"
    assert parsed.get_body(("html",)).get_content().strip() == "<p>html</p>"
    [pdf] = list(parsed.iter_attachments())
    assert pdf.get_filename() == "bill-1.pdf" and pdf.get_content() == b"%PDF-1.4"


def test_without_pdf_the_message_has_no_attachment() -> None:
    out = Outgoing("d-2", "G", "g@example.com", "s", "t", "<p>h</p>")
    assert list(build_message(out, "b@x.example").iter_attachments()) == []


def test_smtp_failures_are_classified() -> None:
    assert classify(aiosmtplib.SMTPConnectError("refused")).kind == "transient"
    assert classify(ConnectionRefusedError(111, "refused")).kind == "transient"
    assert classify(aiosmtplib.SMTPServerDisconnected("gone")).kind == "transient"
    assert classify(aiosmtplib.SMTPResponseException(421, "busy")).kind == "transient"
    assert classify(aiosmtplib.SMTPDataError(552, "too big")).kind == "permanent"
    refused = aiosmtplib.SMTPRecipientsRefused([aiosmtplib.SMTPRecipientRefused(550, "no such user", "x@y.z")])
    error = classify(refused)
    assert error.kind == "permanent" and "550 no such user" in error.reason
    deferred = aiosmtplib.SMTPRecipientsRefused([aiosmtplib.SMTPRecipientRefused(450, "later", "x@y.z")])
    assert classify(deferred).kind == "transient"
    assert classify(aiosmtplib.SMTPAuthenticationError(535, "bad creds")).kind == "transient"
