"""Event payloads for notifications tests, built with the contract models."""

import datetime as dt
import uuid
from typing import Any

from shared.events import (
    Address,
    BillLine,
    BillPaymentLine,
    BillShared,
    BillSnapshot,
    DocumentRendered,
    DocumentSource,
    Model,
    Party,
    PaymentInfo,
    PracticeInfo,
    ShareDelivery,
    new_envelope,
)

PRACTICE = "practice-rivers-edge"
NOW = dt.datetime(2026, 11, 2, 16, 0, tzinfo=dt.UTC)
PRACTICE_INFO = PracticeInfo(name="Rivers Edge Counseling", currency="USD")
ADDRESS = Address(line1="88 SE Alder St", city="Portland", state="OR", postal_code="97214")


def bill(client_id: str, *, number: int = 1042, version: int = 1, balance: int = 16000, **kw: Any) -> BillSnapshot:
    fields: dict[str, Any] = {
        "id": str(uuid.uuid4()),
        "number": number,
        "client_id": client_id,
        "status": "open",
        "responsibility": "client",
        "lines": [
            BillLine(
                session_id="sess-1",
                date_of_service=dt.date(2026, 11, 2),
                code="90837",
                description="Psychotherapy, 60 minutes",
                amount_cents=balance,
                client_owes_cents=balance,
                insurance_owes_cents=0,
            )
        ],
        "total_cents": balance,
        "client_owes_cents": balance,
        "insurance_owes_cents": 0,
        "paid_cents": 0,
        "balance_cents": balance,
        "issued_on": dt.date(2026, 11, 2),
        "due_date": dt.date(2026, 12, 2),
        "access_code": "483920",
        "pay_url": f"http://localhost:8002/pay?bill={number}",
        "bill_to": Party(name="Grace Park", email="grace.park@example.com", address=ADDRESS),
        "patient": Party(name="Noah Park"),
        "practice": PRACTICE_INFO,
        "version": version,
    }
    fields.update(kw)
    return BillSnapshot(**fields)


def paid(snapshot: BillSnapshot, payment_id: str, amount: int) -> BillSnapshot:
    """The snapshot billing publishes after a payment is applied."""
    line = BillPaymentLine(
        payment_id=payment_id, kind="payment", payer="client", method="card", amount_cents=amount, occurred_at=NOW
    )
    return snapshot.model_copy(
        update={
            "payments": [*snapshot.payments, line],
            "paid_cents": snapshot.paid_cents + amount,
            "balance_cents": snapshot.balance_cents - amount,
            "version": snapshot.version + 1,
        }
    )


def share(address: str | None = "grace.park@example.com", **kw: Any) -> ShareDelivery:
    return ShareDelivery(recipient=Party(name="Grace Park", email=address), **kw)


def bill_shared(snapshot: BillSnapshot, **share_kw: Any) -> BillShared:
    return BillShared(bill=snapshot, share=share(**share_kw))


def statement(client_id: str, **kw: Any) -> DocumentSource:
    fields: dict[str, Any] = {
        "id": str(uuid.uuid4()),
        "number": 7,
        "client_id": client_id,
        "kind": "statement",
        "issued_on": dt.date(2026, 11, 30),
        "bill_to": Party(name="Grace Park", email="grace.park@example.com"),
        "patient": Party(name="Noah Park"),
        "practice": PRACTICE_INFO,
        "body": {"start_date": "2026-11-01", "end_date": "2026-11-30", "closing_balance_cents": 4500},
    }
    fields.update(kw)
    return DocumentSource(**fields)


def rendered(kind: str, source_id: str, client_id: str, version: int = 1) -> DocumentRendered:
    document_id = str(uuid.uuid4())
    return DocumentRendered(
        document_id=document_id,
        kind=kind,  # type: ignore[arg-type]
        source_id=source_id,
        client_id=client_id,
        version=version,
        pages=1,
        sha256="0" * 64,
        url=f"/v1/documents/{document_id}/pdf",
    )


def card_payment(client_id: str, amount: int = 16000, **kw: Any) -> PaymentInfo:
    fields: dict[str, Any] = {
        "id": str(uuid.uuid4()),
        "client_id": client_id,
        "payer": "client",
        "method": "card",
        "amount_cents": amount,
        "status": "succeeded",
        "paid_at": NOW,
        "online": True,
        "card_brand": "visa",
        "card_last4": "4242",
    }
    fields.update(kw)
    return PaymentInfo(**fields)


def envelope(data: Model, practice_id: str = PRACTICE) -> dict[str, Any]:
    """A wire-format envelope (dict) as the publish fixture sends it."""
    return new_envelope(practice_id, data).model_dump(mode="json")
