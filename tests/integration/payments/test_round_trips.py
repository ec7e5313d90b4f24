"""A cash payment's latency is its database round trips (README "Where a cash payment spends
its time"): this counts them, so a change that adds one is seen. Counts, not clocks."""

import asyncio
import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from fastapi.encoders import jsonable_encoder
from sqlalchemy import event, select
from sqlalchemy.sql.cache_key import HasCacheKey

from services.payments import repository as repo
from services.payments.recording import record_payment
from services.payments.schemas import PaymentIn
from shared.auth import Principal
from shared.runtime import Service
from tests.conftest import eventually
from tests.integration.payments.conftest import new_id, staff
from tests.integration.payments.test_recording import open_bill

MAX_STATEMENTS = 9
"""Idempotency claim, bill lock, balances, client lock, payment, applications, plans check,
outbox, idempotent answer: 9, inside one BEGIN ... COMMIT (there were 19 in two transactions,
plus the pool's pre-ping of 3 round trips per checkout). Through HTTP the audit record is one
more event, written in the same outbox INSERT."""


@contextmanager
def this_tasks_sql(svc: Service) -> Iterator[dict[str, list[str]]]:
    """Statements and transactions the current task runs (the relay, consumers and other
    background tasks share the engine and are left out)."""
    me = asyncio.current_task()
    seen: dict[str, list[str]] = {"statements": [], "transactions": []}
    engine = svc.db.engine.sync_engine

    def statement(conn: Any, cursor: Any, sql: str, *args: Any) -> None:
        if asyncio.current_task() is me:
            seen["statements"].append(sql.split("\n", 1)[0])

    def begin(conn: Any) -> None:
        if asyncio.current_task() is me:
            seen["transactions"].append("BEGIN")

    event.listen(engine, "before_cursor_execute", statement)
    event.listen(engine, "begin", begin)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", statement)
        event.remove(engine, "begin", begin)


@contextmanager
def this_tasks_cache_keys(monkeypatch: Any) -> Iterator[list[str]]:
    """The SQL statements whose compilation-cache key the current task computes. A statement
    built once (module level) computes it once, at its first execution; one built on every call
    computes it again each time."""
    me = asyncio.current_task()
    computed: list[str] = []
    compute = HasCacheKey._generate_cache_key

    def counting(self: Any) -> Any:
        if asyncio.current_task() is me:
            computed.append(type(self).__name__)
        return compute(self)

    monkeypatch.setattr(HasCacheKey, "_generate_cache_key", counting)
    yield computed


async def test_a_cash_payment_builds_no_statement(svc, publish, monkeypatch) -> None:
    """Its statements are built once and reused: building them and computing their cache key on
    every request was a third of the POST's CPU (README "Where a cash payment spends its time")."""
    practice, client = new_id("p"), new_id("c")
    first = await open_bill(svc, publish, practice, client, owes=16000)
    second = await open_bill(svc, publish, practice, client, owes=16000)

    async def in_projection() -> bool:
        async with svc.db.transaction() as session:
            return await repo.existing_bill_ids(session, [first, second]) == {first, second}

    await eventually(in_projection)
    principal = Principal(practice, "staff")
    with this_tasks_cache_keys(monkeypatch) as computed:
        for bill_id in (first, second):
            computed.clear()  # the first payment may be the statements' first use in this process
            req = PaymentIn(client_id=client, bill_id=bill_id, method="cash", amount_cents=16000)
            status, _ = await record_payment(svc.payments, principal, req, new_id("key"))
            assert status == 201
    assert computed == [], computed


async def projected_bill(svc, publish, practice: str, client: str) -> str:
    """An open bill of $160 that payments' projection already holds: a payment then finds it at
    the first try (no retry statements in what the test counts)."""
    bill_id = await open_bill(svc, publish, practice, client, owes=16000)

    async def in_projection() -> set[str]:
        async with svc.db.transaction() as session:
            return await repo.existing_bill_ids(session, [bill_id])

    await eventually(in_projection)
    return bill_id


async def test_a_cash_payment_is_one_transaction_of_few_statements(svc, http, publish) -> None:
    practice, client = new_id("p"), new_id("c")
    bill_id = await projected_bill(svc, publish, practice, client)
    req = PaymentIn(client_id=client, bill_id=bill_id, method="cash", amount_cents=16000)

    with this_tasks_sql(svc) as seen:
        status, body = await record_payment(svc.payments, Principal(practice, "staff"), req, new_id("key"))

    assert status == 201 and body["status"] == "succeeded" and body["allocations"][0]["amount_cents"] == 16000
    assert seen["transactions"] == ["BEGIN"], seen
    assert 0 < len(seen["statements"]) <= MAX_STATEMENTS, "\n".join(seen["statements"])
    # the answer built from what the transaction knew is the payment as read back later
    again = await http.get(f"/v1/payments/{body['id']}", headers=staff(practice))
    read_back, answered = again.json(), jsonable_encoder(body)
    for when in ("paid_at", "created_at"):  # the same instant, spelt "Z" or "+00:00"
        assert dt.datetime.fromisoformat(read_back.pop(when)) == dt.datetime.fromisoformat(answered.pop(when))
    assert read_back == answered


async def test_a_cash_payment_over_http_writes_its_events_in_one_insert(svc, http, publish) -> None:
    """PaymentRecorded and the request's audit record: one outbox INSERT (one round trip), both rows."""
    practice, client = new_id("p"), new_id("c")
    bill_id = await projected_bill(svc, publish, practice, client)
    body = {"client_id": client, "bill_id": bill_id, "payer": "client", "method": "cash", "amount_cents": 16000}
    with this_tasks_sql(svc) as seen:
        r = await http.post("/v1/payments", json=body, headers=staff(practice, new_id("key")))
    assert r.status_code == 201, r.text
    outbox_inserts = [s for s in seen["statements"] if s.startswith(f"INSERT INTO {svc.outbox_table.fullname} ")]
    assert len(outbox_inserts) == 1, seen["statements"]
    assert seen["transactions"] == ["BEGIN"] and len(seen["statements"]) <= MAX_STATEMENTS, seen["statements"]
    t = svc.outbox_table
    async with svc.db.transaction() as session:
        staged = (await session.scalars(select(t.c.event_type).where(t.c.key == client).order_by(t.c.id))).all()
    assert staged == ["PaymentRecorded", "AuditRecorded"]
