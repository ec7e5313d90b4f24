"""Events in → projections and journal entries, in the consumer's transaction (with the inbox).

Each topic has one batch handler: a fetched batch costs a fixed handful of bulk statements,
not a few per event (the consumer has to keep up with what billing and payments publish).
Topics are consumed independently, so nothing here assumes one topic's event arrived before
another's: a bill's journal entry needs only the bill, a payment's only the payment; a bill
line learns its session's clinician whichever of the two comes first."""

import datetime as dt
import uuid
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ARRAY, String, bindparam, insert, text
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.reports import domain
from services.reports.db import (
    audit_log,
    bill_lines,
    bill_payments,
    bills,
    journal_entries,
    journal_lines,
    money_facts,
    names,
    payment_slots,
    practices,
    revenue_months,
    sessions,
)
from shared.consumer import BatchHandler, Handler
from shared.events import (
    AllocationRejected,
    AuditRecorded,
    BillEvent,
    ClientUpserted,
    ClinicianUpserted,
    CreditChanged,
    Envelope,
    PaymentRecorded,
    PaymentRefunded,
    PracticeAutomationChanged,
    SessionCompleted,
)

ENTRY_NAMESPACE = uuid.UUID("5f0c7d1e-9a57-4c52-8d61-3b1f4a2e6c90")
LINES_LOCK = 0x52455031  # advisory lock class: a practice's bill lines and sessions


def entry_id(event_id: str) -> str:
    """Deterministic: a rebuild gives every entry the id it had."""
    return str(uuid.uuid5(ENTRY_NAMESPACE, event_id))


def _texts(*names_: str) -> list[Any]:
    return [bindparam(n, type_=ARRAY(String)) for n in names_]


# ---- the journal ---------------------------------------------------------------------------


class Journal:
    """Entries of one batch, written with two statements at the end."""

    def __init__(self) -> None:
        self.entries: list[dict[str, Any]] = []
        self.lines: list[dict[str, Any]] = []

    def book(
        self, env: Envelope[Any], client_id: str, je: domain.JournalEntry | None, at: Any, on_date: Any = None
    ) -> None:
        if je is None:
            return
        eid = entry_id(env.event_id)
        self.entries.append({"entry_id": eid, "practice_id": env.practice_id, "client_id": client_id, "at": at,
                             "on_date": on_date, "source_kind": je.source_kind, "source_id": je.source_id,
                             "memo": je.memo})  # fmt: skip
        self.lines.extend(
            {"entry_id": eid, "line_no": i, "practice_id": env.practice_id, "client_id": client_id,
             "account": line.account, "debit_cents": line.debit_cents, "credit_cents": line.credit_cents}
            for i, line in enumerate(je.lines)
        )  # fmt: skip

    async def write(self, session: AsyncSession) -> None:
        if self.entries:
            await session.execute(insert(journal_entries), self.entries)
            await session.execute(insert(journal_lines), self.lines)


# ---- revenue per month, clinician and code ---------------------------------------------------

Figures = list[int]  # billed, collected, adjusted, outstanding, lines
RevenueKey = tuple[str, dt.date, str, str]  # practice, month, clinician ('' unknown), code


def _month(day: dt.date) -> dt.date:
    return day.replace(day=1)


def _add(deltas: dict[RevenueKey, Figures], key: RevenueKey, figures: Iterable[int], sign: int) -> None:
    total = deltas.setdefault(key, [0, 0, 0, 0, 0])
    for i, cents in enumerate(figures):
        total[i] += sign * cents


_REVENUE_ADD = text(
    f"INSERT INTO {revenue_months.fullname} AS r SELECT * FROM unnest(CAST(:p AS text[]), CAST(:m AS date[]), "
    "CAST(:k AS text[]), CAST(:c AS text[]), CAST(:b AS bigint[]), CAST(:col AS bigint[]), CAST(:a AS bigint[]), "
    "CAST(:o AS bigint[]), CAST(:n AS integer[])) ON CONFLICT (practice_id, month, clinician_id, code) DO UPDATE SET "
    "billed_cents = r.billed_cents + EXCLUDED.billed_cents, collected_cents = r.collected_cents + "
    "EXCLUDED.collected_cents, adjusted_cents = r.adjusted_cents + EXCLUDED.adjusted_cents, "
    "outstanding_cents = r.outstanding_cents + EXCLUDED.outstanding_cents, "
    "line_count = r.line_count + EXCLUDED.line_count"
)


async def _revenue(session: AsyncSession, deltas: dict[RevenueKey, Figures]) -> None:
    moved = sorted((k, v) for k, v in deltas.items() if any(v))  # sorted: concurrent batches lock rows in order
    if moved:
        cols = list(zip(*(k for k, _ in moved), strict=True))
        sums = list(zip(*(v for _, v in moved), strict=True))
        await session.execute(
            _REVENUE_ADD,
            {"p": list(cols[0]), "m": list(cols[1]), "k": list(cols[2]), "c": list(cols[3]), "b": list(sums[0]),
             "col": list(sums[1]), "a": list(sums[2]), "o": list(sums[3]), "n": list(sums[4])},
        )  # fmt: skip


async def _lock_lines(session: AsyncSession, practice_ids: Iterable[str]) -> None:
    """Bill lines look up their session's clinician and sessions update the lines that name
    them: the two consumers take this lock per practice first, so neither misses the other's
    uncommitted rows."""
    await session.execute(
        text(f"SELECT pg_advisory_xact_lock({LINES_LOCK}, hashtext(p)) FROM unnest(CAST(:ps AS text[])) p"),
        {"ps": sorted(set(practice_ids))},
    )


# ---- bills ------------------------------------------------------------------------------------


@dataclass
class BillState:
    version: int
    booked: domain.Booked
    cancelled_at: dt.datetime | None
    existed: bool  # a version was stored before this batch
    latest: Envelope[BillEvent] | None = None


async def bills_changed(session: AsyncSession, envs: Sequence[Envelope[BillEvent]], journal: Journal) -> None:
    """Any bill event carries the whole bill: keep the newest version of each, book each
    version's difference from the one before (in order), then replace the bills' rows, lines
    and moves and move the revenue sums, in bulk."""
    keys = sorted({(e.practice_id, e.data.bill.id) for e in envs})
    await _lock_lines(session, (p for p, _ in keys))
    rows = await session.execute(
        text(
            f"SELECT practice_id, bill_id, version, booked, cancelled_at FROM {bills.fullname} "
            "WHERE (practice_id, bill_id) IN (SELECT * FROM unnest(CAST(:p AS text[]), CAST(:b AS text[]))) "
            "ORDER BY 1, 2 FOR UPDATE"
        ),
        {"p": [k[0] for k in keys], "b": [k[1] for k in keys]},
    )
    state = {(r.practice_id, r.bill_id): BillState(r.version, dict(r.booked), r.cancelled_at, True) for r in rows}
    for env in envs:
        snap = env.data.bill
        key = (env.practice_id, snap.id)
        now = state.get(key)
        if now is not None and now.version >= snap.version:
            continue
        insurance_share = sum(line.insurance_owes_cents for line in snap.lines)
        cancelled = snap.status == "cancelled"
        standing = [(a.payer, a.kind, a.amount_cents) for a in snap.adjustments if a.reversed_at is None]
        target = domain.bill_target(snap.status, snap.total_cents, insurance_share, standing)
        je = domain.bill_entry(snap.id, snap.number, now.booked if now else {}, target, cancelled=cancelled)
        journal.book(env, snap.client_id, je, env.occurred_at, None if now else snap.issued_on)
        cancelled_at = ((now.cancelled_at if now else None) or env.occurred_at) if cancelled else None
        state[key] = BillState(snap.version, target, cancelled_at, now.existed if now else False, env)
    changed = {k: s for k, s in state.items() if s.latest is not None}
    if changed:
        await _store_bills(session, changed)


def _moves(env: Envelope[BillEvent]) -> list[tuple[str, str, int, dt.datetime]]:
    """What lowered or raised the balance and when: payments, refunds, adjustments and their reversals."""
    snap = env.data.bill
    moves = [(p.kind, p.payer, p.amount_cents, p.occurred_at) for p in snap.payments]
    for a in snap.adjustments:
        moves.append(("adjustment", a.payer, a.amount_cents, a.created_at))
        if a.reversed_at is not None:
            moves.append(("adjustment_reversed", a.payer, a.amount_cents, a.reversed_at))
    return moves


async def _store_bills(session: AsyncSession, changed: dict[tuple[str, str], BillState]) -> None:
    bill_rows, line_rows, move_rows = [], [], []
    deltas: dict[RevenueKey, Figures] = {}
    new_practices: dict[str, Any] = {}
    for (practice_id, bill_id), st in changed.items():
        assert st.latest is not None
        snap = st.latest.data.bill
        moves = _moves(st.latest)
        insurance_share = sum(line.insurance_owes_cents for line in snap.lines)
        balance = domain.open_balance(snap.total_cents, insurance_share, ((k, p, c) for k, p, c, _ in moves))
        bill_rows.append({
            "practice_id": practice_id, "bill_id": bill_id, "client_id": snap.client_id, "number": snap.number,
            "version": snap.version, "status": snap.status, "responsibility": snap.responsibility,
            "issued_on": snap.issued_on, "due_date": snap.due_date, "cancelled_at": st.cancelled_at,
            "total_cents": snap.total_cents, "insurance_share_cents": insurance_share, "paid_cents": snap.paid_cents,
            "balance_cents": snap.balance_cents, "booked": st.booked,
            "moved_client_cents": balance.moved_client_cents, "moved_insurance_cents": balance.moved_insurance_cents,
            "open_cents": balance.open_cents, "open_insurance_cents": balance.open_insurance_cents,
        })  # fmt: skip
        if snap.lines and snap.status != "cancelled":  # a cancelled bill counts for nothing in revenue
            figures = domain.line_figures(
                [line.amount_cents for line in snap.lines], paid_cents=snap.paid_cents,
                balance_cents=snap.balance_cents,
            )  # fmt: skip
            line_rows.extend(
                {"practice_id": practice_id, "bill_id": bill_id, "line_no": i, "session_id": line.session_id,
                 "code": line.code, "issued_on": snap.issued_on, "billed_cents": f.billed_cents,
                 "collected_cents": f.collected_cents, "adjusted_cents": f.adjusted_cents,
                 "outstanding_cents": f.outstanding_cents, "clinician_id": ""}
                for i, (line, f) in enumerate(zip(snap.lines, figures, strict=True))
            )  # fmt: skip
        move_rows.extend(
            {"practice_id": practice_id, "bill_id": bill_id, "seq": i, "kind": kind, "payer": payer,
             "amount_cents": cents, "occurred_at": when}
            for i, (kind, payer, cents, when) in enumerate(moves)
        )  # fmt: skip
        if not st.existed:  # a bill carries the practice's settings as of its creation; PracticeAutomationChanged wins
            new_practices.setdefault(practice_id, snap.practice)
    stmt = pg_insert(bills)
    await session.execute(
        stmt.on_conflict_do_update(
            index_elements=[bills.c.practice_id, bills.c.bill_id],
            set_={c.name: stmt.excluded[c.name] for c in bills.columns if not c.primary_key},
        ),
        bill_rows,
    )
    # A new version replaces the lines and moves of the one before; the old lines leave the revenue sums.
    existed = [k for k, st in changed.items() if st.existed]
    if existed:
        params = {"p": [k[0] for k in existed], "b": [k[1] for k in existed]}
        in_keys = "(practice_id, bill_id) IN (SELECT * FROM unnest(CAST(:p AS text[]), CAST(:b AS text[])))"
        old = await session.execute(
            text(
                f"DELETE FROM {bill_lines.fullname} WHERE {in_keys} RETURNING practice_id, issued_on, clinician_id, "
                "code, billed_cents, collected_cents, adjusted_cents, outstanding_cents"
            ),
            params,
        )
        for r in old:
            key = (r.practice_id, _month(r.issued_on), r.clinician_id, r.code)
            _add(deltas, key, (r.billed_cents, r.collected_cents, r.adjusted_cents, r.outstanding_cents, 1), -1)
        await session.execute(text(f"DELETE FROM {bill_payments.fullname} WHERE {in_keys}"), params)
    if line_rows:
        clinicians = await _clinicians(session, {(r["practice_id"], r["session_id"]) for r in line_rows})
        for r in line_rows:
            r["clinician_id"] = clinicians.get((r["practice_id"], r["session_id"]), "")
            key = (r["practice_id"], _month(r["issued_on"]), r["clinician_id"], r["code"])
            figures = (r["billed_cents"], r["collected_cents"], r["adjusted_cents"], r["outstanding_cents"], 1)
            _add(deltas, key, figures, 1)
        await session.execute(insert(bill_lines), line_rows)
    if move_rows:
        await session.execute(insert(bill_payments), move_rows)
    await _revenue(session, deltas)
    if new_practices:
        await session.execute(
            pg_insert(practices)
            .values([{"practice_id": p, "timezone": info.timezone, "currency": info.currency}
                     for p, info in sorted(new_practices.items())])
            .on_conflict_do_nothing()
        )  # fmt: skip


async def _clinicians(session: AsyncSession, keys: set[tuple[str, str]]) -> dict[tuple[str, str], str]:
    ordered = sorted(keys)
    rows = await session.execute(
        text(
            f"SELECT practice_id, session_id, clinician_id FROM {sessions.fullname} WHERE (practice_id, session_id) IN "
            "(SELECT * FROM unnest(CAST(:p AS text[]), CAST(:s AS text[])))"
        ),
        {"p": [k[0] for k in ordered], "s": [k[1] for k in ordered]},
    )
    return {(r.practice_id, r.session_id): r.clinician_id for r in rows}


async def practices_changed(session: AsyncSession, envs: Sequence[Envelope[PracticeAutomationChanged]]) -> None:
    latest = {e.practice_id: e.data for e in envs}  # the latest event wins
    stmt = pg_insert(practices).values(
        [{"practice_id": p, "timezone": d.timezone, "currency": d.currency} for p, d in sorted(latest.items())]
    )
    await session.execute(
        stmt.on_conflict_do_update(
            index_elements=[practices.c.practice_id],
            set_={"timezone": stmt.excluded.timezone, "currency": stmt.excluded.currency},
        )
    )


async def allocations_rejected(
    session: AsyncSession, envs: Sequence[Envelope[AllocationRejected]], journal: Journal
) -> None:
    """A payment that reached a cancelled bill became credit (the payer from the payment's facts)."""
    wanted = sorted({(e.practice_id, e.data.payment_id) for e in envs})
    rows = await session.execute(
        text(
            f"SELECT DISTINCT ON (practice_id, payment_id) practice_id, payment_id, payer FROM {money_facts.fullname} "
            "WHERE (practice_id, payment_id) IN (SELECT * FROM unnest(CAST(:p AS text[]), CAST(:i AS text[])))"
        ),
        {"p": [k[0] for k in wanted], "i": [k[1] for k in wanted]},
    )
    payers = {(r.practice_id, r.payment_id): r.payer for r in rows}
    for env in envs:
        data = env.data
        payer = payers.get((env.practice_id, data.payment_id), "client")
        je = domain.rejected_entry(data.payment_id, data.bill_id, payer, data.amount_cents)
        journal.book(env, data.client_id, je, env.occurred_at)


# ---- payments --------------------------------------------------------------------------------

SLOT = dt.timedelta(minutes=15)
SLOT_ORIGIN = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)


def slot(at: dt.datetime) -> dt.datetime:
    """The quarter hour `at` falls in (every timezone's midnight starts one)."""
    return SLOT_ORIGIN + (at - SLOT_ORIGIN) // SLOT * SLOT


_SLOTS_ADD = text(
    f"INSERT INTO {payment_slots.fullname} AS s SELECT * FROM unnest(CAST(:p AS text[]), "
    "CAST(:t AS timestamptz[]), CAST(:m AS text[]), CAST(:pay AS bigint[]), CAST(:ref AS bigint[]), "
    "CAST(:n AS integer[])) ON CONFLICT (practice_id, slot, method) DO UPDATE SET "
    "payments_cents = s.payments_cents + EXCLUDED.payments_cents, "
    "refunds_cents = s.refunds_cents + EXCLUDED.refunds_cents, payment_count = s.payment_count + EXCLUDED.payment_count"
)


class MoneyFacts:
    """Payment and refund parts of one batch, and their quarter-hour sums."""

    def __init__(self) -> None:
        self.rows: list[dict[str, Any]] = []
        self.slots: dict[tuple[str, dt.datetime, str], list[int]] = {}

    def add(self, env: Envelope[Any], *, fact_id: str, kind: str, payment: Any,
            parts: Sequence[tuple[str | None, int]], at: dt.datetime) -> None:  # fmt: skip
        rows = [
            {"practice_id": env.practice_id, "fact_id": fact_id, "kind": kind, "payment_id": payment.id,
             "client_id": payment.client_id, "payer": payment.payer, "method": payment.method, "bill_id": bill_id,
             "amount_cents": cents, "at": at}
            for bill_id, cents in parts
            if cents
        ]  # fmt: skip
        if rows:
            self.rows.extend(rows)
            sums = self.slots.setdefault((env.practice_id, slot(at), payment.method), [0, 0, 0])
            cents = sum(r["amount_cents"] for r in rows)
            if kind == "payment":
                sums[0] += cents
                sums[2] += 1
            else:
                sums[1] += cents

    async def write(self, session: AsyncSession) -> None:
        if not self.rows:
            return
        await session.execute(insert(money_facts), self.rows)
        keys = sorted(self.slots)
        await session.execute(
            _SLOTS_ADD,
            {"p": [k[0] for k in keys], "t": [k[1] for k in keys], "m": [k[2] for k in keys],
             "pay": [self.slots[k][0] for k in keys], "ref": [self.slots[k][1] for k in keys],
             "n": [self.slots[k][2] for k in keys]},
        )  # fmt: skip


def payment_recorded(env: Envelope[PaymentRecorded], facts: MoneyFacts, journal: Journal) -> None:
    data, p = env.data, env.data.payment
    allocated = sum(a.amount_cents for a in data.allocations)
    je = domain.payment_entry(p.id, p.method, p.payer, p.amount_cents, allocated, data.credit_cents)
    parts = [(a.bill_id, a.amount_cents) for a in data.allocations] + [(None, data.credit_cents)]
    facts.add(env, fact_id=p.id, kind="payment", payment=p, parts=parts, at=p.paid_at)
    journal.book(env, p.client_id, je, p.paid_at)


def payment_refunded(env: Envelope[PaymentRefunded], facts: MoneyFacts, journal: Journal) -> None:
    data, p, r = env.data, env.data.payment, env.data.refund
    allocated = sum(a.amount_cents for a in data.allocations)
    je = domain.refund_entry(r.id, p.method, p.payer, r.amount_cents, allocated, data.credit_cents)
    parts = [(a.bill_id, a.amount_cents) for a in data.allocations]
    parts.append((None, r.amount_cents - allocated))
    facts.add(env, fact_id=r.id, kind="refund", payment=p, parts=parts, at=r.refunded_at)
    journal.book(env, p.client_id, je, r.refunded_at)


def credit_changed(env: Envelope[CreditChanged], journal: Journal) -> None:
    data = env.data
    if data.kind in domain.CREDIT_ADJUSTMENT_KINDS:
        je = domain.credit_adjustment_entry(data.entry_id, data.kind, data.amount_cents)
        journal.book(env, data.client_id, je, env.occurred_at)


# ---- names, sessions, audit ------------------------------------------------------------------


async def _name(session: AsyncSession, practice_id: str, kind: str, id_: str, name: str) -> None:
    stmt = pg_insert(names).values(practice_id=practice_id, kind=kind, id=id_, name=name)
    await session.execute(
        stmt.on_conflict_do_update(index_elements=[names.c.practice_id, names.c.kind, names.c.id], set_={"name": name})
    )


async def client_upserted(session: AsyncSession, env: Envelope[ClientUpserted]) -> None:
    c = env.data.client
    await _name(session, env.practice_id, "client", c.id, f"{c.first_name} {c.last_name}")


async def clinician_upserted(session: AsyncSession, env: Envelope[ClinicianUpserted]) -> None:
    c = env.data.clinician
    await _name(session, env.practice_id, "clinician", c.id, f"{c.first_name} {c.last_name}, {c.credentials}")


_SESSIONS_UPSERT = text(
    f"INSERT INTO {sessions.fullname} (practice_id, session_id, clinician_id) "
    "SELECT * FROM unnest(CAST(:p AS text[]), CAST(:s AS text[]), CAST(:c AS text[])) "
    "ON CONFLICT (practice_id, session_id) DO UPDATE SET clinician_id = EXCLUDED.clinician_id"
).bindparams(*_texts("p", "s", "c"))

# Lines billed before their session was known (or under another clinician) move to this one;
# `o` is the row as it was, so the revenue sums can move with it.
_LINES_CLINICIAN = text(
    f"UPDATE {bill_lines.fullname} l SET clinician_id = n.c "
    f"FROM unnest(CAST(:p AS text[]), CAST(:s AS text[]), CAST(:c AS text[])) n(p, s, c), {bill_lines.fullname} o "
    "WHERE l.practice_id = n.p AND l.session_id = n.s AND l.clinician_id <> n.c AND o.practice_id = l.practice_id "
    "AND o.bill_id = l.bill_id AND o.line_no = l.line_no RETURNING l.practice_id, l.issued_on, o.clinician_id AS old, "
    "n.c AS new, l.code, l.billed_cents, l.collected_cents, l.adjusted_cents, l.outstanding_cents"
).bindparams(*_texts("p", "s", "c"))


async def sessions_completed(session: AsyncSession, envs: Sequence[Envelope[SessionCompleted]]) -> None:
    """Which clinician saw each session (revenue and payments by clinician): two statements per run."""
    latest = {(e.practice_id, e.data.session.id): e.data.session.clinician_id for e in envs}
    keys = sorted(latest)
    params = {"p": [k[0] for k in keys], "s": [k[1] for k in keys], "c": [latest[k] for k in keys]}
    await _lock_lines(session, params["p"])
    await session.execute(_SESSIONS_UPSERT, params)
    deltas: dict[RevenueKey, Figures] = {}
    for r in await session.execute(_LINES_CLINICIAN, params):
        figures = (r.billed_cents, r.collected_cents, r.adjusted_cents, r.outstanding_cents, 1)
        _add(deltas, (r.practice_id, _month(r.issued_on), r.old, r.code), figures, -1)
        _add(deltas, (r.practice_id, _month(r.issued_on), r.new, r.code), figures, 1)
    await _revenue(session, deltas)


async def audit_recorded(session: AsyncSession, envs: Sequence[Envelope[AuditRecorded]]) -> None:
    """Append to the audit log (a redelivered event is already there: nothing changes)."""
    rows = [
        {"id": e.event_id, "practice_id": e.practice_id, "at": e.occurred_at, "actor": e.data.actor,
         "role": e.data.role, "service": e.data.service, "action": e.data.action,
         "resource_kind": e.data.resource.kind, "resource_id": e.data.resource.id, "client_id": e.data.client_id,
         "ip": e.data.ip}
        for e in envs
    ]  # fmt: skip
    await session.execute(pg_insert(audit_log).values(rows).on_conflict_do_nothing())


# ---- one batch handler per topic --------------------------------------------------------------

BILL_EVENTS = ("BillCreated", "BillUpdated", "BillPaid", "BillCancelled", "BillShared")


def _by_type(envs: Sequence[Envelope[Any]]) -> dict[str, list[Envelope[Any]]]:
    runs: dict[str, list[Envelope[Any]]] = defaultdict(list)
    for env in envs:
        runs["bill" if env.event_type in BILL_EVENTS else env.event_type].append(env)
    return runs


async def billing_events(session: AsyncSession, envs: Sequence[Envelope[Any]]) -> None:
    """A batch of billing.events: bills (in order, per bill), rejected allocations, practice
    settings (after the bills: the settings event wins over what a new bill carries), audit."""
    runs, journal = _by_type(envs), Journal()
    if runs["bill"]:
        await bills_changed(session, runs["bill"], journal)
    if runs["AllocationRejected"]:
        await allocations_rejected(session, runs["AllocationRejected"], journal)
    if runs["PracticeAutomationChanged"]:
        await practices_changed(session, runs["PracticeAutomationChanged"])
    if runs["AuditRecorded"]:
        await audit_recorded(session, runs["AuditRecorded"])
    await journal.write(session)


async def payments_events(session: AsyncSession, envs: Sequence[Envelope[Any]]) -> None:
    """A batch of payments.events: payment and refund facts with their entries, credit
    adjustments, audit."""
    facts, journal = MoneyFacts(), Journal()
    for env in envs:
        if env.event_type == "PaymentRecorded":
            payment_recorded(env, facts, journal)
        elif env.event_type == "PaymentRefunded":
            payment_refunded(env, facts, journal)
        elif env.event_type == "CreditChanged":
            credit_changed(env, journal)
    audit = [e for e in envs if e.event_type == "AuditRecorded"]
    if audit:
        await audit_recorded(session, audit)
    await facts.write(session)
    await journal.write(session)


AUDIT: dict[str, BatchHandler] = {"AuditRecorded": audit_recorded}  # type: ignore[dict-item]


def billing() -> dict[str, BatchHandler]:
    return dict.fromkeys((*BILL_EVENTS, "AllocationRejected", "PracticeAutomationChanged", "AuditRecorded"),
                         billing_events)  # fmt: skip


def payments() -> dict[str, BatchHandler]:
    return dict.fromkeys(("PaymentRecorded", "PaymentRefunded", "CreditChanged", "AuditRecorded"), payments_events)


def scheduling() -> tuple[dict[str, Handler], dict[str, BatchHandler]]:
    return (
        {"ClientUpserted": client_upserted, "ClinicianUpserted": clinician_upserted},  # type: ignore[dict-item]
        {"SessionCompleted": sessions_completed},  # type: ignore[dict-item]
    )
