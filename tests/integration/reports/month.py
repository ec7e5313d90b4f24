"""A scripted month at one practice, as the events billing, payments and scheduling publish.
The expected figures in the tests are worked out by hand from this script (see each test)."""

import datetime as dt
import uuid
from typing import Any

from shared.events import (
    Address,
    Allocation,
    BillCancelled,
    BillCreated,
    BillLine,
    BillPaid,
    BillPaymentLine,
    BillSnapshot,
    BillUpdated,
    Client,
    ClientUpserted,
    Clinician,
    ClinicianUpserted,
    CreditChanged,
    Model,
    Party,
    PaymentInfo,
    PaymentRecorded,
    PaymentRefunded,
    PracticeAutomationChanged,
    PracticeInfo,
    RefundInfo,
    Session,
    SessionCompleted,
)
from shared.topics import BILLING, PAYMENTS, SCHEDULING

PRACTICE = "practice-month"
NY = "America/New_York"
INFO = PracticeInfo(name="Month Practice", timezone=NY, currency="USD")
ADDRESS = Address(line1="1 Main St", city="Albany", state="NY", postal_code="12207")


def at(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text)


def envelope(data: Model, occurred_at: dt.datetime, practice_id: str = PRACTICE) -> dict[str, Any]:
    return {
        "event_id": str(uuid.uuid4()),
        "event_type": type(data).__name__,
        "occurred_at": occurred_at.isoformat(),
        "practice_id": practice_id,
        "schema_version": 1,
        "data": data.model_dump(mode="json"),
    }


CLIENTS = {"c1": ("Ada", "Lovelace"), "c2": ("Ben", "Okri"), "c3": ("Cy", "Young")}
CLINICIANS = {"k1": ("Dana", "Reyes", "LCSW"), "k2": ("Eli", "Park", "PhD")}
# session: (client, clinician, code, fee, date of service)
SESSIONS = {
    "s1": ("c1", "k1", "90837", 15000, "2026-10-01"),
    "s2": ("c1", "k1", "90837", 15000, "2026-10-08"),
    "s3": ("c2", "k2", "90834", 12000, "2026-10-05"),
    "s4": ("c3", "k2", "90837", 20000, "2026-10-10"),
    "s5": ("c2", "k1", "90791", 18000, "2026-10-20"),
    "s7": ("c2", "k2", "90834", 9000, "2026-06-01"),
}


class BillBook:
    """Bill snapshots as billing would publish them, version after version."""

    def __init__(self) -> None:
        self.bills: dict[str, BillSnapshot] = {}

    def create(
        self, bill_id: str, number: int, session: str, issued: str, due: str, insurance: int = 0
    ) -> BillSnapshot:
        client, _, code, fee, dos = SESSIONS[session]
        line = BillLine(
            session_id=session,
            date_of_service=dt.date.fromisoformat(dos),
            code=code,
            amount_cents=fee,
            client_owes_cents=fee - insurance,
            insurance_owes_cents=insurance,
        )
        snap = BillSnapshot(
            id=bill_id,
            number=number,
            client_id=client,
            status="open",
            responsibility="insurance" if insurance else "client",
            lines=[line],
            total_cents=fee,
            client_owes_cents=fee - insurance,
            insurance_owes_cents=insurance,
            paid_cents=0,
            balance_cents=fee,
            issued_on=dt.date.fromisoformat(issued),
            due_date=dt.date.fromisoformat(due),
            access_code="123456",
            pay_url="http://pay",
            bill_to=Party(name="x"),
            patient=Party(name="x"),
            practice=INFO,
        )
        self.bills[bill_id] = snap
        return snap

    def apply(
        self, bill_id: str, payment_id: str, kind: str, payer: str, method: str, cents: int, when: str
    ) -> BillSnapshot:
        old = self.bills[bill_id]
        line = BillPaymentLine(
            payment_id=payment_id,
            kind=kind,
            payer=payer,
            method=method,  # type: ignore[arg-type]
            amount_cents=cents,
            occurred_at=at(when),
        )
        paid = old.paid_cents + (cents if kind == "payment" else -cents)
        snap = old.model_copy(
            update={
                "payments": [*old.payments, line],
                "paid_cents": paid,
                "balance_cents": old.total_cents - paid,
                "status": "paid" if old.total_cents - paid <= 0 else "open",
                "version": old.version + 1,
            }
        )
        self.bills[bill_id] = snap
        return snap

    def cancel(self, bill_id: str) -> BillSnapshot:
        snap = self.bills[bill_id].model_copy(
            update={"status": "cancelled", "version": self.bills[bill_id].version + 1}
        )
        self.bills[bill_id] = snap
        return snap


def payment(pid: str, client: str, method: str, cents: int, when: str, payer: str = "client") -> PaymentInfo:
    return PaymentInfo(
        id=pid,
        client_id=client,
        payer=payer,
        method=method,
        amount_cents=cents,  # type: ignore[arg-type]
        status="succeeded",
        paid_at=at(when),
    )


def script(practice_id: str = PRACTICE) -> list[tuple[str, str, dict[str, Any]]]:
    """(topic, key, envelope) in publishing order."""
    out: list[tuple[str, str, dict[str, Any]]] = []

    def emit(topic: str, key: str, data: Model, when: str) -> None:
        out.append((topic, key, envelope(data, at(when), practice_id)))

    emit(BILLING, practice_id, PracticeAutomationChanged(timezone=NY, currency="USD"), "2026-05-01T12:00:00+00:00")
    for cid, (first, last) in CLIENTS.items():
        client = Client(id=cid, first_name=first, last_name=last, date_of_birth=dt.date(1990, 1, 1), address=ADDRESS)
        emit(SCHEDULING, cid, ClientUpserted(client=client), "2026-05-01T12:00:00+00:00")
    for kid, (first, last, cred) in CLINICIANS.items():
        clinician = Clinician(id=kid, first_name=first, last_name=last, credentials=cred, npi="1234567893")
        emit(SCHEDULING, kid, ClinicianUpserted(clinician=clinician), "2026-05-01T12:00:00+00:00")
    for sid, (cid, kid, code, fee, dos) in SESSIONS.items():
        session = Session(
            id=sid,
            client_id=cid,
            clinician_id=kid,
            date_of_service=dt.date.fromisoformat(dos),
            starts_at=at(f"{dos}T14:00:00+00:00"),
            duration_minutes=53,
            place_of_service="11",
            payer="self_pay",
            services=[{"code": code, "units": 1, "fee_cents": fee}],  # type: ignore[list-item]
        )
        emit(SCHEDULING, cid, SessionCompleted(session=session), f"{dos}T15:00:00+00:00")

    book = BillBook()
    emit(
        BILLING,
        "c2",
        BillCreated(bill=book.create("b7", 6, "s7", "2026-06-01", "2026-06-15")),
        "2026-06-01T16:00:00+00:00",
    )
    emit(
        BILLING,
        "c1",
        BillCreated(bill=book.create("b1", 1, "s1", "2026-10-01", "2026-10-15")),
        "2026-10-01T16:00:00+00:00",
    )
    # P1: card 150.00 on B1 (paid)
    emit(
        PAYMENTS,
        "c1",
        PaymentRecorded(
            payment=payment("p1", "c1", "card", 15000, "2026-10-02T14:00:00+00:00"),
            allocations=[Allocation(bill_id="b1", amount_cents=15000)],
        ),
        "2026-10-02T14:00:01+00:00",
    )
    emit(
        BILLING,
        "c1",
        BillPaid(bill=book.apply("b1", "p1", "payment", "client", "card", 15000, "2026-10-02T14:00:00+00:00")),
        "2026-10-02T14:00:02+00:00",
    )
    emit(
        BILLING,
        "c2",
        BillCreated(bill=book.create("b3", 3, "s3", "2026-10-05", "2026-10-19")),
        "2026-10-05T16:00:00+00:00",
    )
    emit(
        BILLING,
        "c1",
        BillCreated(bill=book.create("b2", 2, "s2", "2026-10-08", "2026-10-22")),
        "2026-10-08T16:00:00+00:00",
    )
    emit(
        BILLING,
        "c3",
        BillCreated(bill=book.create("b4", 4, "s4", "2026-10-10", "2026-10-24", insurance=17000)),
        "2026-10-10T16:00:00+00:00",
    )
    # P2: cash 50.00 on B3 at 22:30 New York time on Oct 12 (already Oct 13 in UTC)
    emit(
        PAYMENTS,
        "c2",
        PaymentRecorded(
            payment=payment("p2", "c2", "cash", 5000, "2026-10-13T02:30:00+00:00"),
            allocations=[Allocation(bill_id="b3", amount_cents=5000)],
        ),
        "2026-10-13T02:30:01+00:00",
    )
    emit(
        BILLING,
        "c2",
        BillUpdated(bill=book.apply("b3", "p2", "payment", "client", "cash", 5000, "2026-10-13T02:30:00+00:00")),
        "2026-10-13T02:30:02+00:00",
    )
    # a 10.00 discount given as credit to c2
    emit(
        PAYMENTS,
        "c2",
        CreditChanged(client_id="c2", entry_id="ce1", kind="discount", amount_cents=1000, balance_cents=1000),
        "2026-10-15T15:00:00+00:00",
    )
    emit(
        BILLING,
        "c2",
        BillCreated(bill=book.create("b5", 5, "s5", "2026-10-20", "2026-11-03")),
        "2026-10-20T16:00:00+00:00",
    )
    # P4: check 200.00 from c1: 150.00 pays B2, 50.00 becomes credit
    emit(
        PAYMENTS,
        "c1",
        PaymentRecorded(
            payment=payment("p4", "c1", "check", 20000, "2026-10-23T15:00:00+00:00"),
            allocations=[Allocation(bill_id="b2", amount_cents=15000)],
            credit_cents=5000,
        ),
        "2026-10-23T15:00:01+00:00",
    )
    emit(
        PAYMENTS,
        "c1",
        CreditChanged(client_id="c1", entry_id="ce2", kind="overpayment", amount_cents=5000, balance_cents=5000),
        "2026-10-23T15:00:01+00:00",
    )
    emit(
        BILLING,
        "c1",
        BillPaid(bill=book.apply("b2", "p4", "payment", "client", "check", 15000, "2026-10-23T15:00:00+00:00")),
        "2026-10-23T15:00:02+00:00",
    )
    emit(BILLING, "c2", BillCancelled(bill=book.cancel("b5"), reason="entered twice"), "2026-10-25T15:00:00+00:00")
    # R1: 40.00 of P1 back to the card
    refund = RefundInfo(
        id="r1", payment_id="p1", client_id="c1", amount_cents=4000, refunded_at=at("2026-10-28T15:00:00+00:00")
    )
    emit(
        PAYMENTS,
        "c1",
        PaymentRefunded(
            refund=refund,
            payment=payment("p1", "c1", "card", 15000, "2026-10-02T14:00:00+00:00"),
            allocations=[Allocation(bill_id="b1", amount_cents=4000)],
        ),
        "2026-10-28T15:00:01+00:00",
    )
    emit(
        BILLING,
        "c1",
        BillUpdated(bill=book.apply("b1", "r1", "refund", "client", "card", 4000, "2026-10-28T15:00:00+00:00")),
        "2026-10-28T15:00:02+00:00",
    )
    # P3: the insurer pays its 170.00 of B4 by check
    emit(
        PAYMENTS,
        "c3",
        PaymentRecorded(
            payment=payment("p3", "c3", "check", 17000, "2026-10-30T15:00:00+00:00", payer="insurance"),
            allocations=[Allocation(bill_id="b4", amount_cents=17000)],
        ),
        "2026-10-30T15:00:01+00:00",
    )
    emit(
        BILLING,
        "c3",
        BillUpdated(bill=book.apply("b4", "p3", "payment", "insurance", "check", 17000, "2026-10-30T15:00:00+00:00")),
        "2026-10-30T15:00:02+00:00",
    )
    return out
