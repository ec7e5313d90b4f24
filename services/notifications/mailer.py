"""SMTP: builds the multipart email (text + HTML, PDF attached) and sends it with aiosmtplib;
tells a temporary failure (retry) from a permanent one (record it)."""

import email.utils
from dataclasses import dataclass
from email.headerregistry import Address
from email.message import EmailMessage

import aiosmtplib

from services.notifications.domain import FailureKind, classify_smtp_code
from shared.logs import without_addresses
from shared.settings import Settings


@dataclass(frozen=True)
class Outgoing:
    delivery_id: str
    to_name: str
    to_address: str
    subject: str
    text: str
    html: str
    pdf: bytes | None = None
    pdf_filename: str = "document.pdf"


class SendError(Exception):
    def __init__(self, kind: FailureKind, reason: str) -> None:
        super().__init__(reason)
        self.kind = kind
        self.reason = reason


def message_id(delivery_id: str, sender: str) -> str:
    """Deterministic per delivery: a resend after a crash is recognisably the same email."""
    domain = email.utils.parseaddr(sender)[1].rpartition("@")[2] or "localhost"
    return f"<{delivery_id}@{domain}>"


def build_message(out: Outgoing, sender: str) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = sender
    local, _, domain = out.to_address.partition("@")
    msg["To"] = Address(display_name=out.to_name, username=local, domain=domain)
    msg["Subject"] = out.subject
    msg["Date"] = email.utils.formatdate(localtime=False, usegmt=True)
    msg["Message-ID"] = message_id(out.delivery_id, sender)
    msg.set_content(out.text)
    msg.add_alternative(out.html, subtype="html")
    if out.pdf is not None:
        msg.add_attachment(out.pdf, maintype="application", subtype="pdf", filename=out.pdf_filename)
    return msg


def classify(exc: Exception) -> SendError:
    """5xx replies are permanent; 4xx replies, refused connections and timeouts are retried.
    The reason never quotes an address (servers often echo the recipient): it is logged, stored
    and published."""
    error = _classify(exc)
    return SendError(error.kind, without_addresses(error.reason))


def _classify(exc: Exception) -> SendError:
    if isinstance(exc, aiosmtplib.SMTPRecipientsRefused):
        codes = [r.code for r in exc.recipients]
        kind: FailureKind = "permanent" if codes and all(c >= 500 for c in codes) else "transient"
        detail = "; ".join(f"{r.code} {r.message}" for r in exc.recipients)
        return SendError(kind, f"recipient refused: {detail}")
    if isinstance(exc, aiosmtplib.SMTPAuthenticationError):
        return SendError("transient", f"SMTP authentication failed ({exc.code}): check SMTP credentials")
    if isinstance(exc, aiosmtplib.SMTPResponseException):
        return SendError(classify_smtp_code(exc.code), f"SMTP {exc.code} {exc.message}")
    return SendError("transient", f"{type(exc).__name__}: {exc}")


class SmtpMailer:
    """Host, port, TLS, credentials and sender from settings (Mailpit locally, any provider)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    async def send(self, out: Outgoing) -> None:
        s = self.settings
        message = build_message(out, s.smtp_sender)
        try:
            await aiosmtplib.send(
                message,
                hostname=s.smtp_host,
                port=s.smtp_port,
                username=s.smtp_username,
                password=s.smtp_password,
                use_tls=s.smtp_tls,
                start_tls=s.smtp_starttls,
                timeout=s.smtp_timeout_seconds,
            )
        except Exception as exc:
            raise classify(exc) from exc
