"""Source snapshots as billing would publish them, for documents tests and the benchmark."""

import datetime as dt
from typing import Any

from shared.events import Address, BillSnapshot, DocumentSource, Party, PracticeInfo

PRACTICE = PracticeInfo(
    name="Rivers Edge Counseling",
    address=Address(line1="1200 NW Everett St", line2="Suite 300", city="Portland", state="OR", postal_code="97209"),
    phone="+1-503-555-0100",
    tax_id="93-1234567",
    npi="1234567893",
    timezone="America/Los_Angeles",
    footer_comment="Questions about this bill? Call us at 503-555-0100. Thank you for trusting us with your care.",
)
ELLIS = Party(
    name="Avery Ellis",
    email="avery.ellis@example.com",
    address=Address(line1="415 SE Main St", city="Portland", state="OR", postal_code="97214"),
)
GUARDIAN = Party(
    name="Grace Park",
    email="grace.park@example.com",
    address=Address(line1="88 SE Alder St", city="Portland", state="OR", postal_code="97214"),
)
NOAH = Party(name="Noah Park", address=GUARDIAN.address)


def bill(
    *,
    bill_id: str = "bill-1",
    client_id: str = "client-ellis",
    sessions: int = 2,
    responsibility: str = "client",
    version: int = 1,
    status: str = "open",
    payments: list[dict[str, Any]] | None = None,
    minor: bool = False,
) -> BillSnapshot:
    lines = []
    for i in range(sessions):
        amount = 15000
        insurance_part = 12000 if responsibility == "insurance" else 0
        lines.append(
            {
                "session_id": f"sess-{i + 1}",
                "date_of_service": (dt.date(2026, 9, 1) + dt.timedelta(days=i)).isoformat(),
                "code": "90837" if i % 2 == 0 else "90834",
                "description": "Psychotherapy, 60 minutes" if i % 2 == 0 else "Psychotherapy, 45 minutes",
                "modifiers": ["95"] if i % 3 == 2 else [],
                "units": 1,
                "amount_cents": amount,
                "client_owes_cents": amount - insurance_part,
                "insurance_owes_cents": insurance_part,
            }
        )
    payments = payments or []
    total = sum(line["amount_cents"] for line in lines)
    paid = sum(p["amount_cents"] * (1 if p["kind"] == "payment" else -1) for p in payments)
    insurance_owes = sum(line["insurance_owes_cents"] for line in lines)
    return BillSnapshot.model_validate(
        {
            "id": bill_id,
            "number": 1042,
            "client_id": client_id,
            "status": status,
            "responsibility": responsibility,
            "lines": lines,
            "total_cents": total,
            "client_owes_cents": total - insurance_owes,
            "insurance_owes_cents": insurance_owes,
            "paid_cents": paid,
            "balance_cents": total - paid,
            "issued_on": "2026-11-02",
            "due_date": "2026-11-16",
            "comments": "Thank you for coming in this month.",
            "access_code": "482913",
            "pay_url": "http://localhost:8002/pay",
            "bill_to": (GUARDIAN if minor else ELLIS).model_dump(),
            "patient": (NOAH if minor else ELLIS).model_dump(),
            "practice": PRACTICE.model_dump(),
            "payments": payments,
            "version": version,
        }
    )


def card_payment(amount_cents: int, payment_id: str = "pay-1", day: int = 5) -> dict[str, Any]:
    return {
        "payment_id": payment_id,
        "kind": "payment",
        "payer": "client",
        "method": "card",
        "amount_cents": amount_cents,
        "occurred_at": f"2026-11-{day:02d}T18:00:00Z",
    }


def refund(amount_cents: int, payment_id: str = "pay-1", day: int = 7) -> dict[str, Any]:
    return {**card_payment(amount_cents, payment_id, day), "kind": "refund"}


def statement(*, source_id: str = "stmt-1", version: int = 1, **body_overrides: Any) -> DocumentSource:
    body: dict[str, Any] = {
        "start_date": "2026-10-01",
        "end_date": "2026-10-31",
        "opening_balance_cents": 5000,
        "entries": [
            {"date": "2026-10-03", "kind": "charge", "description": "Psychotherapy, 60 minutes",
             "amount_cents": 15000, "bill_number": 1040, "balance_cents": 20000},
            {"date": "2026-10-10", "kind": "payment", "amount_cents": -10000, "bill_number": 1040},
            {"date": "2026-10-12", "kind": "refund", "description": "Refund of overpayment", "amount_cents": 2500},
            {"date": "2026-10-20", "kind": "credit", "description": "Sliding-scale discount", "amount_cents": -1500},
        ],
        "charges_cents": 15000,
        "closing_balance_cents": 11000,
        "aging": {"current": 6000, "days_1_30": 5000},
        "currency": "USD",
        "comments": "Payment plans are available.",
    }  # fmt: skip
    body.update(body_overrides)
    return DocumentSource(
        id=source_id,
        number=77,
        client_id="client-ellis",
        kind="statement",
        issued_on=dt.date(2026, 11, 1),
        bill_to=ELLIS,
        patient=ELLIS,
        practice=PRACTICE,
        body=body,
        version=version,
    )


PROVIDER = {"name": "Dana Morgan", "credentials": "PhD, LP", "npi": "1234567893", "license_number": "PSY-30412",
            "taxonomy_code": "103T00000X"}  # fmt: skip
ASSOCIATE = {"name": "Sam Lee", "credentials": "MA, LPC-Associate", "npi": "1245319599", "license_number": None}


def superbill_line(i: int = 0, **overrides: Any) -> dict[str, Any]:
    line = {
        "session_id": f"sess-{i + 1}",
        "date_of_service": (dt.date(2026, 10, 1) + dt.timedelta(days=7 * i)).isoformat(),
        "place_of_service": "10" if i % 2 else "11",
        "code": "90837",
        "modifiers": ["95"] if i % 2 else [],
        "description": "Psychotherapy, 60 minutes",
        "units": 1,
        "diagnosis_codes": ["F41.1", "F33.1"],
        "fee_cents": 16000,
        "paid_cents": 16000,
        "provider": PROVIDER,
        "supervisor": None,
    }
    line.update(overrides)
    return line


def superbill(
    *, source_id: str = "sb-1", version: int = 1, minor: bool = False, lines: list[dict[str, Any]] | None = None,
    **body_overrides: Any,
) -> DocumentSource:  # fmt: skip
    body: dict[str, Any] = {
        "patient_date_of_birth": "2012-03-09" if minor else "1988-04-12",
        "patient_is_minor": minor,
        "responsible_party": {"name": "Grace Park", "relationship": "mother", "phone": "+1-503-555-0199"}
        if minor
        else None,
        "insurance": {
            "payer_name": "Aetna",
            "payer_id": "60054",
            "member_id": "W123456789",
            "group_number": "GRP-889",
            "subscriber_name": "Grace Park" if minor else "Avery Ellis",
            "relationship_to_subscriber": "child" if minor else "self",
        },
        "start_date": "2026-10-01",
        "end_date": "2026-10-31",
        "lines": lines if lines is not None else [superbill_line(0), superbill_line(1)],
        "pay_to": "client",
    }
    body.update(body_overrides)
    patient = Party(name=NOAH.name, address=NOAH.address) if minor else ELLIS
    return DocumentSource(
        id=source_id,
        number=12,
        client_id="client-park-teen" if minor else "client-ellis",
        kind="superbill",
        issued_on=dt.date(2026, 11, 1),
        bill_to=GUARDIAN if minor else ELLIS,
        patient=patient,
        practice=PRACTICE,
        body=body,
        version=version,
    )
