"""A randomized run of sessions, bills, payments, refunds and cancels through billing's
use-cases against the real database; afterwards the check finds no drift and every session
is on at most one live bill (hypothesis)."""

import asyncio
import datetime as dt
import uuid
from collections import Counter
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from services.billing import bills, check, domain
from services.billing import repository as repo
from services.billing.db import bill_lines, clients, metadata, sessions
from services.billing.db import bills as bills_table
from shared.db import Database
from shared.events import Address, Client, Session, SessionService
from shared.outbox import Outbox
from shared.settings import Settings

pytestmark = pytest.mark.integration

NOW = dt.datetime(2026, 11, 20, 15, tzinfo=dt.UTC)

operation = st.one_of(
    st.tuples(
        st.just("bill"),
        st.lists(st.integers(0, 5), min_size=1, max_size=3, unique=True),
        st.sampled_from([("client", None, None), ("insurance", 2500, None), ("insurance", None, Decimal("20"))]),
    ),
    st.tuples(st.just("pay"), st.integers(0, 5), st.integers(1, 40_000), st.sampled_from(["client", "insurance"])),
    st.tuples(st.just("refund"), st.integers(0, 9), st.integers(1, 40_000)),
    st.tuples(st.just("cancel"), st.integers(0, 5)),
)


EXPECTED_REFUSALS = {
    "bill": {"session_already_billed", "session_not_billable", "bill_total_zero", "invalid_sessions"},
    "pay": {"bill_cancelled"},
    "refund": set(),
    "cancel": {"bill_cancelled", "bill_has_payments"},
}
"""What the rules may answer to a random operation; anything else is a bug, not noise."""


async def run_scenario(app_settings: Settings, fees: list[int], ops: list[tuple[Any, ...]], done: Counter[str]) -> None:
    db = Database(app_settings.database_url("billing"), "billing", pool_size=2)
    outbox = Outbox(metadata.tables["billing.outbox"], app_settings)
    practice, client_id = f"prop-{uuid.uuid4().hex[:8]}", "client-p"
    session_ids = [f"s{i}" for i in range(len(fees))]
    live_bills: list[uuid.UUID] = []
    payments: list[tuple[str, uuid.UUID, str]] = []  # (payment id, bill, payer)
    try:
        async with db.transaction() as s:
            await repo.upsert_newest(s, clients, [repo.client_row(practice, _client(client_id), NOW)])
            rows = [
                repo.session_row(practice, _session(sid, client_id, fee), NOW)
                for sid, fee in zip(session_ids, fees, strict=True)
            ]
            await repo.upsert_newest(s, sessions, rows)
        for op in ops:
            try:
                async with db.transaction() as s:
                    if await _apply(s, outbox, practice, client_id, session_ids, live_bills, payments, op):
                        done[op[0]] += 1
            except domain.RuleViolation as exc:
                assert exc.code in EXPECTED_REFUSALS[op[0]], (op, exc.code, exc.message)
        async with db.transaction() as s:
            checked, drift = await check.check_balances(s, practice)
            assert drift == [], drift
            assert checked == len(live_bills)
            on_live = (
                await s.execute(
                    select(bill_lines.c.session_id, func.count())
                    .join(bills_table, bills_table.c.id == bill_lines.c.bill_id)
                    .where(bills_table.c.practice_id == practice, bills_table.c.status != "cancelled")
                    .group_by(bill_lines.c.session_id)
                )
            ).all()
            assert all(n == 1 for _, n in on_live)
    finally:
        await db.dispose()


async def _apply(s, outbox, practice, client_id, session_ids, live_bills, payments, op) -> bool:
    """Apply one operation; False when there was nothing to apply it to."""
    kind = op[0]
    if kind == "bill":
        chosen = [session_ids[i] for i in op[1] if i < len(session_ids)]
        responsibility, copay, coinsurance = op[2]
        req = bills.BillRequest(
            client_id=client_id, session_ids=chosen, responsibility=responsibility, copay_cents=copay,
            coinsurance_percent=coinsurance,
        )  # fmt: skip
        [(bill, _)] = await bills.create_bill(
            s, outbox, practice, req, now=NOW, public_base_url="http://x", platforms=frozenset()
        )
        live_bills.append(bill.id)
        return True
    if kind == "pay" and live_bills:
        bill_id = live_bills[op[1] % len(live_bills)]
        pid = str(uuid.uuid4())
        fact = {"fact_id": pid, "payment_id": pid, "kind": "payment", "payer": op[3], "method": "cash",
                "amount_cents": op[2], "occurred_at": NOW}  # fmt: skip
        await bills.apply_payment(s, outbox, practice, bill_id=str(bill_id), fact=fact, client_id=client_id)
        payments.append((pid, bill_id, op[3]))
        return True
    if kind == "refund" and payments:
        pid, bill_id, payer = payments[op[1] % len(payments)]
        standing = domain.unrefunded_payments(repo.as_facts(await repo.bill_facts(s, bill_id)))
        amount = min(op[2], standing.get(pid, 0))
        if amount:
            fact = {"fact_id": str(uuid.uuid4()), "payment_id": pid, "kind": "refund", "payer": payer,
                    "method": "cash", "amount_cents": amount, "occurred_at": NOW}  # fmt: skip
            await bills.apply_refund(s, outbox, practice, bill_id=str(bill_id), fact=fact)
            return True
    if kind == "cancel" and live_bills:
        bill = await repo.get_bill(s, practice, live_bills[op[1] % len(live_bills)], lock=True)
        await bills.cancel_bill(s, outbox, bill, now=NOW, reason="test")
        return True
    return False


def _client(client_id: str) -> Client:
    address = Address(line1="1 Main", city="Portland", state="OR", postal_code="97209")
    return Client(id=client_id, first_name="P", last_name="Q", date_of_birth=dt.date(1990, 1, 1), address=address)


def _session(sid: str, client_id: str, fee: int) -> Session:
    return Session(
        id=sid, client_id=client_id, clinician_id="clin", date_of_service=dt.date(2026, 11, 2), starts_at=NOW,
        duration_minutes=50, place_of_service="11", payer="self_pay",
        services=[SessionService(code="90837", fee_cents=fee)],
    )  # fmt: skip


def test_random_run_leaves_no_drift(billing_app) -> None:
    svc, _ = billing_app
    done: Counter[str] = Counter()

    @settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(fees=st.lists(st.integers(0, 30_000), min_size=1, max_size=6), ops=st.lists(operation, max_size=14))
    @example(
        fees=[16000, 9000],
        ops=[
            ("bill", [0], ("client", None, None)),
            ("pay", 0, 4000, "client"),
            ("refund", 0, 4000),
            ("cancel", 0),
            ("bill", [0, 1], ("insurance", 2500, None)),
        ],
    )
    def run(fees: list[int], ops: list[tuple[Any, ...]]) -> None:
        asyncio.run(run_scenario(svc.settings, fees, ops, done))

    run()
    assert all(done[kind] for kind in EXPECTED_REFUSALS), f"every kind of operation went through at least once: {done}"
