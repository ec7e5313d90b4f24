"""Bare ceilings for the month-end stages, measured in the same run as the stage they judge:
the same work with everything of ours taken away. (The PDF ceiling is bench_pdf's bare
WeasyPrint loop.)"""

import asyncio
import time
from collections.abc import Awaitable, Callable
from email.message import Message
from typing import Any

import aiosmtplib
import asyncpg
import stripe

from tests.processes import smtp_server

SMTP_BATCH = 20  # notifications' sender claims and sends 20 at a time (services.notifications.sender.BATCH)


async def _workers(count: int, concurrency: int, job: Callable[[int], Awaitable[Any]]) -> float:
    """`count` jobs, `concurrency` at a time; jobs per second."""
    queue = iter(range(count))
    start = time.perf_counter()

    async def worker() -> None:
        for n in queue:
            await job(n)

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return count / (time.perf_counter() - start)


async def bare_bills(pool: asyncpg.Pool, like: str, concurrency: int) -> tuple[float, int]:
    """The rows billing wrote for the month's bills (bill, its lines, its sessions marked billed,
    the BillCreated outbox row) written again by bare asyncpg into copies of the same tables
    (`LIKE ... INCLUDING ALL`: same indexes and constraints), one transaction per practice as the
    automation does, `concurrency` practices at once: bills/s. Nothing is read, checked or
    computed, so this is what Postgres alone allows."""
    async with pool.acquire() as con:
        await con.execute("""
            DROP SCHEMA IF EXISTS ceiling CASCADE; CREATE SCHEMA ceiling;
            CREATE TABLE ceiling.bills (LIKE billing.bills INCLUDING ALL);
            CREATE TABLE ceiling.bill_lines (LIKE billing.bill_lines INCLUDING ALL);
            CREATE TABLE ceiling.sessions (LIKE billing.sessions INCLUDING ALL);
            CREATE TABLE ceiling.outbox (LIKE billing.outbox INCLUDING ALL);
        """)
        await con.execute("INSERT INTO ceiling.sessions SELECT * FROM billing.sessions WHERE practice_id LIKE $1", like)
        await con.execute("UPDATE ceiling.sessions SET bill_id = NULL")
        bills = await con.fetch("SELECT * FROM billing.bills WHERE practice_id LIKE $1 ORDER BY number", like)
        lines = await con.fetch(
            "SELECT l.* FROM billing.bill_lines l JOIN billing.bills b ON b.id = l.bill_id WHERE b.practice_id LIKE $1",
            like,
        )
        outbox = await con.fetch(
            "SELECT topic, key, event_type, payload FROM billing.outbox WHERE event_type = 'BillCreated' LIMIT 1"
        )
    by_bill: dict[Any, list[asyncpg.Record]] = {}
    for line in lines:
        by_bill.setdefault(line["bill_id"], []).append(line)
    by_practice: dict[str, list[asyncpg.Record]] = {}
    for bill in bills:
        by_practice.setdefault(bill["practice_id"], []).append(bill)
    practices = list(by_practice.values())
    bill_sql = _insert("ceiling.bills", list(bills[0].keys()))
    line_cols = list(lines[0].keys())
    line_sql = _insert("ceiling.bill_lines", line_cols)
    event = outbox[0]

    async def practice(n: int) -> None:
        async with pool.acquire() as con, con.transaction():
            for bill in practices[n]:
                await con.execute(bill_sql, *bill.values())
                mine = by_bill.get(bill["id"], [])
                await con.executemany(line_sql, [tuple(line.values()) for line in mine])
                await con.execute(
                    "UPDATE ceiling.sessions SET bill_id = $1 WHERE practice_id = $2 AND id = ANY($3::text[])",
                    bill["id"],
                    bill["practice_id"],
                    [line["session_id"] for line in mine],
                )
                await con.execute(
                    _insert("ceiling.outbox", ["event_id", "topic", "key", "event_type", "payload"]),
                    str(bill["id"]),
                    event["topic"],
                    bill["client_id"],
                    event["event_type"],
                    event["payload"],
                )

    rate = await _workers(len(practices), concurrency, practice) * len(bills) / len(practices)
    async with pool.acquire() as con:
        await con.execute("DROP SCHEMA ceiling CASCADE")
    return rate, len(bills)


def _insert(table: str, columns: list[str]) -> str:
    marks = ", ".join(f"${i + 1}" for i in range(len(columns)))
    return f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})"


async def bare_smtp(messages: list[Message]) -> float:
    """The emails the services sent, sent again by bare aiosmtplib to an aiosmtpd of their own,
    SMTP_BATCH at a time like the sender: messages/s."""
    with smtp_server() as (_inbox, port):

        async def send(n: int) -> None:
            msg = messages[n]
            await aiosmtplib.send(
                msg, hostname="127.0.0.1", port=port, sender="billing@localhost", recipients=[msg["X-Envelope-To"]]
            )

        return await _workers(len(messages), SMTP_BATCH, send)


async def bare_charges(stripe_base: str, count: int, concurrency: int) -> float:
    """PaymentIntents created and confirmed off-session on a card on file, straight through the
    stripe SDK against the same localstripe: charges/s."""
    client = stripe.StripeClient(
        "sk_test_local", base_addresses={"api": stripe_base}, http_client=stripe.HTTPXClient(), max_network_retries=0
    )
    customer = await client.v1.customers.create_async({"email": "ceiling@example.com"})
    pm = await client.v1.payment_methods.create_async(
        {"type": "card", "card": {"number": "4242424242424242", "exp_month": 12, "exp_year": 2031, "cvc": "123"}}
    )
    await client.v1.payment_methods.attach_async(pm.id, {"customer": customer.id})

    async def charge(n: int) -> None:
        await client.v1.payment_intents.create_async(
            {
                "amount": 16000,
                "currency": "usd",
                "payment_method": pm.id,
                "payment_method_types": ["card"],
                "customer": customer.id,
                "confirm": True,
                "off_session": True,
                "metadata": {"payment_id": f"ceiling-{n}"},
            },
            {"idempotency_key": f"ceiling-{n}"},
        )

    return await _workers(count, concurrency, charge)
