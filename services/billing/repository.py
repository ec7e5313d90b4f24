"""SQL for billing's tables (SQLAlchemy Core), always scoped to one practice."""

import datetime as dt
import uuid
from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import Row, Table, and_, case, func, literal, or_, select, tuple_, update
from sqlalchemy.dialects import postgresql
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.billing import domain
from services.billing.db import (
    bill_adjustments,
    bill_lines,
    bill_payments,
    bills,
    client_profiles,
    clients,
    counters,
    practice_settings,
    sessions,
)
from services.billing.practice import BillingProfile, PracticeSettings
from shared.events import Client, Clinician, Session
from shared.http import ApiError, decode_cursor, encode_cursor
from shared.tenancy import refuse_foreign

# ---- practice settings, numbering ------------------------------------------------------


async def load_settings(db: AsyncSession, practice_id: str, *, lock: bool = False) -> PracticeSettings:
    query = select(practice_settings.c.data).where(practice_settings.c.practice_id == practice_id)
    data = await db.scalar(query.with_for_update() if lock else query)
    return PracticeSettings.model_validate(data) if data else PracticeSettings()


async def has_settings(db: AsyncSession, practice_id: str) -> bool:
    query = select(practice_settings.c.practice_id).where(practice_settings.c.practice_id == practice_id)
    return await db.scalar(query) is not None


async def save_settings(db: AsyncSession, practice_id: str, settings: PracticeSettings) -> None:
    values = {
        "data": settings.model_dump(mode="json"),
        "no_show_fee_cents": settings.no_show_fee_cents,
        "late_cancel_fee_cents": settings.late_cancel_fee_cents,
        "updated_at": func.now(),
    }
    stmt = insert(practice_settings).values(practice_id=practice_id, **values)
    await db.execute(stmt.on_conflict_do_update(index_elements=[practice_settings.c.practice_id], set_=values))


async def next_number(db: AsyncSession, practice_id: str, kind: str) -> int:
    """The next number of `kind` for the practice: sequential, never reused (the counter row
    is locked until the caller commits, so concurrent creations queue up)."""
    stmt = insert(counters).values(practice_id=practice_id, kind=kind, last_value=1)
    stmt = stmt.on_conflict_do_update(
        index_elements=[counters.c.practice_id, counters.c.kind], set_={"last_value": counters.c.last_value + 1}
    ).returning(counters.c.last_value)
    return int(await db.scalar(stmt))


async def load_profile(db: AsyncSession, practice_id: str, client_id: str) -> BillingProfile:
    data = await db.scalar(
        select(client_profiles.c.data).where(
            client_profiles.c.practice_id == practice_id, client_profiles.c.client_id == client_id
        )
    )
    return BillingProfile.model_validate(data) if data else BillingProfile()


# ---- scheduling projection ---------------------------------------------------------------


def newest(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per (practice_id, id): the newest by `as_of` (the later one on a tie), since one
    upsert statement may not touch a row twice."""
    kept: dict[tuple[str, str], dict[str, Any]] = {}
    for row in rows:
        key = (row["practice_id"], row["id"])
        if key not in kept or kept[key]["as_of"] <= row["as_of"]:
            kept[key] = row
    return list(kept.values())


async def upsert_newest(db: AsyncSession, table: Any, rows: Sequence[dict[str, Any]]) -> None:
    """Bulk upsert of projection rows in one round trip (`INSERT ... SELECT FROM unnest(...)`,
    one array per column); an older event delivered late changes nothing. JSONB values are
    given as JSON text."""
    rows = newest(rows)
    if not rows:
        return
    names = list(rows[0])
    dialect = postgresql.dialect()
    arrays = ", ".join(f"${i}::{table.c[n].type.compile(dialect=dialect)}[]" for i, n in enumerate(names, 1))
    updates = ", ".join(f"{n} = EXCLUDED.{n}" for n in names if n not in ("practice_id", "id"))
    sql = (
        f"INSERT INTO {table.fullname} ({', '.join(names)}) SELECT * FROM unnest({arrays}) "
        f"ON CONFLICT (practice_id, id) DO UPDATE SET {updates} "
        f"WHERE {table.name}.as_of IS NULL OR {table.name}.as_of <= EXCLUDED.as_of"
    )
    connection = await (await db.connection()).get_raw_connection()
    await connection.driver_connection.execute(sql, *([row[n] for row in rows] for n in names))


def client_row(practice_id: str, client: Client, as_of: dt.datetime) -> dict[str, Any]:
    return {
        "practice_id": practice_id,
        "id": client.id,
        "first_name": client.first_name,
        "last_name": client.last_name,
        "data": client.model_dump_json(),
        "as_of": as_of,
    }


def clinician_row(practice_id: str, clinician: Clinician, as_of: dt.datetime) -> dict[str, Any]:
    return {"practice_id": practice_id, "id": clinician.id, "data": clinician.model_dump_json(), "as_of": as_of}


def session_row(practice_id: str, session: Session, as_of: dt.datetime) -> dict[str, Any]:
    """`voided` and `bill_id` are not in the row, so an upsert never touches them: a void that
    arrived first stays, and a billed session stays on its bill."""
    return {
        "practice_id": practice_id,
        "id": session.id,
        "client_id": session.client_id,
        "clinician_id": session.clinician_id,
        "date_of_service": session.date_of_service,
        "attendance": session.attendance,
        "data": session.model_dump_json(),
        "services_cents": domain.services_cents(session.services),
        "as_of": as_of,
    }


async def get_client(db: AsyncSession, practice_id: str, client_id: str) -> Client:
    """The client as scheduling last described it; 404 while billing has not heard of them."""
    data = await db.scalar(
        select(clients.c.data).where(clients.c.practice_id == practice_id, clients.c.id == client_id)
    )
    if not data:
        raise domain.RuleViolation("not_found", "client not found", status=404)
    return Client.model_validate(data)


async def session_bill(db: AsyncSession, practice_id: str, session_id: str) -> uuid.UUID | None:
    return await db.scalar(
        select(sessions.c.bill_id).where(sessions.c.practice_id == practice_id, sessions.c.id == session_id)
    )


async def void_session(db: AsyncSession, practice_id: str, session_id: str, reason: str) -> uuid.UUID | None:
    """Mark the session voided (a tombstone if it is not known yet); returns its bill, if any."""
    stmt = insert(sessions).values(practice_id=practice_id, id=session_id, voided=True, void_reason=reason)
    stmt = stmt.on_conflict_do_update(
        index_elements=[sessions.c.practice_id, sessions.c.id], set_={"voided": True, "void_reason": reason}
    ).returning(sessions.c.bill_id)
    return await db.scalar(stmt)


def _missed_fee() -> Any:
    ps = practice_settings
    return case(
        (sessions.c.attendance == "no_show", func.coalesce(ps.c.no_show_fee_cents, 0)),
        (sessions.c.attendance == "late_cancel", func.coalesce(ps.c.late_cancel_fee_cents, 0)),
        else_=literal(0),
    )


def client_billed(platforms: frozenset[str]) -> Any:
    """SQL condition: the session's payer is not a third-party platform."""
    return sessions.c.data["payer"].astext.not_in(sorted(platforms)) if platforms else literal(True)


async def unbilled_sessions(
    db: AsyncSession,
    practice_id: str,
    client_id: str | None,
    limit: int,
    cursor: str | None,
    *,
    platforms: frozenset[str],
) -> tuple[Sequence[Row[Any]], str | None]:
    """Sessions of known clients, not voided, with no live bill, something to bill and a payer
    that is not a third-party platform: newest date of service first."""
    s, c, ps = sessions, clients, practice_settings
    billable = case((s.c.attendance == "attended", s.c.services_cents), else_=_missed_fee())
    query = (
        select(
            s.c.id,
            s.c.client_id,
            s.c.clinician_id,
            s.c.date_of_service,
            s.c.attendance,
            s.c.data,
            c.c.first_name,
            c.c.last_name,
            func.coalesce(ps.c.no_show_fee_cents, 0).label("no_show_fee_cents"),
            func.coalesce(ps.c.late_cancel_fee_cents, 0).label("late_cancel_fee_cents"),
        )
        .join(c, and_(c.c.practice_id == s.c.practice_id, c.c.id == s.c.client_id))
        .outerjoin(ps, ps.c.practice_id == s.c.practice_id)
        .where(s.c.practice_id == practice_id, s.c.bill_id.is_(None), ~s.c.voided, s.c.data.is_not(None), billable > 0)
        .where(client_billed(platforms))
        .order_by(s.c.date_of_service.desc(), s.c.id.desc())
        .limit(limit + 1)
    )
    if client_id:
        query = query.where(s.c.client_id == client_id)
    if cursor:
        day, sid = cursor_key(cursor, dt.date.fromisoformat, str)
        query = query.where(tuple_(s.c.date_of_service, s.c.id) < (day, sid))
    rows = (await db.execute(query)).all()
    return page(rows, limit, lambda r: (r.date_of_service, r.id))


def cursor_key(cursor: str, *parsers: Callable[[Any], Any]) -> tuple[Any, ...]:
    """Decode a list cursor into typed key parts; 422 for a cursor this API did not make."""
    parts = decode_cursor(cursor)
    try:
        if len(parts) != len(parsers):
            raise ValueError(cursor)
        return tuple(parse(part) for parse, part in zip(parsers, parts, strict=True))
    except (TypeError, ValueError) as exc:
        raise ApiError(422, "invalid_cursor", "cursor is not one this API returned") from exc


def page(rows: Sequence[Row[Any]], limit: int, key: Any) -> tuple[Sequence[Row[Any]], str | None]:
    if len(rows) <= limit:
        return rows, None
    return rows[:limit], encode_cursor(*key(rows[limit - 1]))


async def lock_sessions(db: AsyncSession, practice_id: str, session_ids: Sequence[str]) -> list[Row[Any]]:
    """Lock the sessions (in id order, so two requests never deadlock) for bill creation."""
    query = (
        select(sessions)
        .where(sessions.c.practice_id == practice_id, sessions.c.id.in_(list(session_ids)))
        .order_by(sessions.c.id)
        .with_for_update()
    )
    return list((await db.execute(query)).all())


async def attach_sessions(db: AsyncSession, practice_id: str, session_ids: Sequence[str], bill_id: uuid.UUID) -> None:
    await db.execute(
        update(sessions)
        .where(sessions.c.practice_id == practice_id, sessions.c.id.in_(list(session_ids)))
        .values(bill_id=bill_id)
    )


async def release_sessions(db: AsyncSession, practice_id: str, bill_id: uuid.UUID) -> None:
    """A cancelled bill's sessions return to Unbilled."""
    await db.execute(
        update(sessions)
        .where(sessions.c.practice_id == practice_id, sessions.c.bill_id == bill_id)
        .values(bill_id=None)
    )


async def live_group_bills(db: AsyncSession, group_id: uuid.UUID) -> list[uuid.UUID]:
    """The bills of a split group not cancelled, oldest number first."""
    query = select(bills.c.id).where(bills.c.split_group_id == group_id, bills.c.status != "cancelled")
    return list((await db.scalars(query.order_by(bills.c.number))).all())


async def move_sessions(db: AsyncSession, practice_id: str, from_bill: uuid.UUID, to_bill: uuid.UUID) -> None:
    """A split bill cancelled while others of its group live: its sessions stay billed, on another."""
    await db.execute(
        update(sessions)
        .where(sessions.c.practice_id == practice_id, sessions.c.bill_id == from_bill)
        .values(bill_id=to_bill)
    )


# ---- bills ---------------------------------------------------------------------------------


async def insert_bill(db: AsyncSession, values: dict[str, Any], lines: Sequence[domain.Line]) -> None:
    await db.execute(bills.insert().values(**values))
    await db.execute(
        bill_lines.insert(),
        [
            {
                "bill_id": values["id"],
                "position": i,
                "session_id": line.session_id,
                "date_of_service": line.date_of_service,
                "code": line.code,
                "description": line.description,
                "modifiers": list(line.modifiers),
                "units": line.units,
                "amount_cents": line.amount_cents,
                "client_owes_cents": line.client_owes_cents,
                "insurance_owes_cents": line.insurance_owes_cents,
            }
            for i, line in enumerate(lines)
        ],
    )


def parse_id(value: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(value)
    except ValueError:
        return None


async def refuse_foreign_bill(db: AsyncSession, practice_id: str, bill_id: str) -> None:
    """A payment fact naming another practice's bill is refused (dead-lettered), not ignored."""
    bid = parse_id(bill_id)
    if bid is not None:
        await refuse_foreign(db, bills.c.id, bills.c.practice_id, practice_id, [bid], "bill")


async def get_bill(
    db: AsyncSession, practice_id: str, bill_id: str | uuid.UUID, *, lock: bool = False
) -> Row[Any] | None:
    bid = bill_id if isinstance(bill_id, uuid.UUID) else parse_id(bill_id)
    if bid is None:
        return None
    query = select(bills).where(bills.c.id == bid, bills.c.practice_id == practice_id)
    if lock:
        query = query.with_for_update()
    return (await db.execute(query)).first()


async def lines_of_bills(db: AsyncSession, bill_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, list[domain.Line]]:
    """Each bill's lines in position order, for any number of bills in one query."""
    query = (
        select(bill_lines)
        .where(bill_lines.c.bill_id.in_(list(bill_ids)))
        .order_by(bill_lines.c.bill_id, bill_lines.c.position)
    )
    by_bill: dict[uuid.UUID, list[domain.Line]] = {}
    for r in (await db.execute(query)).all():
        by_bill.setdefault(r.bill_id, []).append(
            domain.Line(
                r.session_id,
                r.date_of_service,
                r.code,
                r.description,
                tuple(r.modifiers),
                r.units,
                r.amount_cents,
                r.client_owes_cents,
                r.insurance_owes_cents,
                r.voided,
            )
        )
    return by_bill


async def bill_facts(db: AsyncSession, bill_id: uuid.UUID) -> list[Row[Any]]:
    query = select(bill_payments).where(bill_payments.c.bill_id == bill_id).order_by(bill_payments.c.id)
    return list((await db.execute(query)).all())


async def facts_of_bills(db: AsyncSession, bill_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, list[Row[Any]]]:
    """Each bill's payment facts in id order (as `bill_facts`), for any number of bills in one query."""
    query = select(bill_payments).where(bill_payments.c.bill_id.in_(list(bill_ids))).order_by(bill_payments.c.id)
    by_bill: dict[uuid.UUID, list[Row[Any]]] = {}
    for r in (await db.execute(query)).all():
        by_bill.setdefault(r.bill_id, []).append(r)
    return by_bill


async def adjustments_of_bills(db: AsyncSession, bill_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, list[Row[Any]]]:
    """Each bill's adjustments (standing and reversed) oldest first, for any number of bills."""
    t = bill_adjustments
    query = select(t).where(t.c.bill_id.in_(list(bill_ids))).order_by(t.c.created_at, t.c.id)
    by_bill: dict[uuid.UUID, list[Row[Any]]] = {}
    for r in (await db.execute(query)).all():
        by_bill.setdefault(r.bill_id, []).append(r)
    return by_bill


def standing_adjustments(rows: Sequence[Row[Any]]) -> list[domain.Adjustment]:
    return [domain.Adjustment(r.payer, r.amount_cents) for r in rows if r.reversed_at is None]


async def add_adjustment(db: AsyncSession, **values: Any) -> Row[Any]:
    return (await db.execute(bill_adjustments.insert().values(**values).returning(*bill_adjustments.c))).one()


async def get_adjustment(db: AsyncSession, bill_id: uuid.UUID, adjustment_id: str) -> Row[Any] | None:
    aid = parse_id(adjustment_id)
    if aid is None:
        return None
    t = bill_adjustments
    return (await db.execute(select(t).where(t.c.id == aid, t.c.bill_id == bill_id))).first()


async def reverse_adjustment(
    db: AsyncSession, adjustment_id: uuid.UUID, at: dt.datetime, reason: str | None
) -> Row[Any]:
    t = bill_adjustments
    stmt = update(t).where(t.c.id == adjustment_id).values(reversed_at=at, reverse_reason=reason).returning(*t.c)
    return (await db.execute(stmt)).one()


def as_facts(rows: Sequence[Row[Any]]) -> list[domain.Fact]:
    return [domain.Fact(r.payment_id, r.kind, r.payer, r.amount_cents) for r in rows]


async def has_fact(db: AsyncSession, bill_id: uuid.UUID, fact: dict[str, Any]) -> bool:
    """Whether this payment or refund is already recorded on the bill (a redelivery)."""
    t = bill_payments
    query = select(t.c.id).where(t.c.bill_id == bill_id, t.c.kind == fact["kind"], t.c.fact_id == fact["fact_id"])
    return await db.scalar(query) is not None


async def add_fact(db: AsyncSession, bill_id: uuid.UUID, **values: Any) -> bool:
    """Record a payment or refund on a bill; False if it was already recorded."""
    stmt = (
        insert(bill_payments).values(bill_id=bill_id, **values).on_conflict_do_nothing().returning(bill_payments.c.id)
    )
    return await db.scalar(stmt) is not None


async def update_bill(db: AsyncSession, bill_id: uuid.UUID, **values: Any) -> Row[Any]:
    stmt = update(bills).where(bills.c.id == bill_id).values(**values).returning(*bills.c)
    return (await db.execute(stmt)).one()


async def void_lines(db: AsyncSession, bill_id: uuid.UUID, session_id: str) -> None:
    await db.execute(
        update(bill_lines)
        .where(bill_lines.c.bill_id == bill_id, bill_lines.c.session_id == session_id)
        .values(voided=True)
    )


async def list_bills(
    db: AsyncSession,
    practice_id: str,
    *,
    client_id: str | None,
    status: str | None,
    limit: int,
    cursor: str | None,
    shared_only: bool = False,
) -> tuple[Sequence[Row[Any]], str | None]:
    query = (
        select(bills).where(bills.c.practice_id == practice_id).order_by(bills.c.created_at.desc(), bills.c.id.desc())
    )
    if shared_only:
        query = query.where(bills.c.shared)
    if client_id:
        query = query.where(bills.c.client_id == client_id)
    if status:
        query = query.where(bills.c.status == status)
    if cursor:
        key = cursor_key(cursor, dt.datetime.fromisoformat, uuid.UUID)
        query = query.where(tuple_(bills.c.created_at, bills.c.id) < key)
    rows = (await db.execute(query.limit(limit + 1))).all()
    return page(rows, limit, lambda r: (r.created_at, r.id))


async def record_document(
    db: AsyncSession, table: Any, practice_id: str, source_id: str, document_id: str, version: int
) -> None:
    """Keep the document of the newest rendered version (renders may finish out of order)."""
    sid = parse_id(source_id)
    if sid is None:
        return
    await db.execute(
        update(table)
        .where(
            table.c.id == sid,
            table.c.practice_id == practice_id,
            or_(table.c.document_version.is_(None), table.c.document_version <= version),
        )
        .values(document_id=document_id, document_version=version)
    )


async def due_for_share(
    db: AsyncSession, table: Table, now: dt.datetime, *, practice_id: str | None = None, limit: int = 100
) -> list[Row[Any]]:
    """Rows of `table` (bills, statements, superbills) whose scheduled share has come, locked
    with SKIP LOCKED so that replicas share different rows and each once."""
    query = (
        select(table)
        .where(table.c.share_scheduled_at <= now)
        .order_by(table.c.share_scheduled_at)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    if practice_id is not None:
        query = query.where(table.c.practice_id == practice_id)
    return list((await db.execute(query)).all())
