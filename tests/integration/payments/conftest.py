"""The payments service in-process against the real Kafka, Postgres and localstripe; billing
is played by publishing its events."""

import datetime as dt
import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import stripe
from fastapi import FastAPI

from services.payments.app import build
from shared import topics
from shared.auth import issue_token
from shared.events import BillCreated, BillSnapshot, new_envelope
from shared.runtime import Service
from shared.settings import Settings
from tests.conftest import isolated_topics, read_topic

VISA = "4242424242424242"
DECLINES = "4000000000000341"


@pytest.fixture(scope="package")
async def payments_service(test_settings: Settings) -> AsyncIterator[tuple[Service, FastAPI, httpx.AsyncClient]]:
    settings = (await isolated_topics(test_settings)).model_copy(
        update={"payments_bill_wait_ms": 1500, "payments_reconcile_interval_s": 0.5, "autopay_interval_s": 0}
    )
    svc, app = build(settings)
    await svc.start()
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://payments") as http:
        yield svc, app, http
    await svc.stop()


@pytest.fixture
def svc(payments_service: tuple[Service, FastAPI, httpx.AsyncClient]) -> Service:
    return payments_service[0]


@pytest.fixture
def app(payments_service: tuple[Service, FastAPI, httpx.AsyncClient]) -> FastAPI:
    return payments_service[1]


@pytest.fixture
def http(payments_service: tuple[Service, FastAPI, httpx.AsyncClient]) -> httpx.AsyncClient:
    return payments_service[2]


def new_id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def staff(practice_id: str, key: str | None = None) -> dict[str, str]:
    headers = {"Authorization": f"Bearer {issue_token(practice_id, 'staff')}"}
    if key:
        headers["Idempotency-Key"] = key
    return headers


def as_client(practice_id: str, client_id: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {issue_token(practice_id, 'client', client_id)}"}


def snapshot(
    bill_id: str,
    client_id: str,
    *,
    client_owes: int,
    insurance_owes: int = 0,
    number: int = 1,
    status: str = "open",
    version: int = 1,
    access_code: str = "123456",
    session_ids: tuple[str, ...] = ("s1",),
) -> dict[str, Any]:
    total = client_owes + insurance_owes
    lines = [
        {
            "session_id": sid,
            "date_of_service": "2026-11-02",
            "code": "90837",
            "amount_cents": total // len(session_ids),
            "client_owes_cents": client_owes // len(session_ids),
            "insurance_owes_cents": insurance_owes // len(session_ids),
        }
        for sid in session_ids
    ]
    return {
        "id": bill_id,
        "number": number,
        "client_id": client_id,
        "status": status,
        "responsibility": "client",
        "lines": lines,
        "total_cents": total,
        "client_owes_cents": client_owes,
        "insurance_owes_cents": insurance_owes,
        "paid_cents": 0,
        "balance_cents": client_owes,
        "issued_on": "2026-11-02",
        "due_date": "2026-11-30",
        "access_code": access_code,
        "pay_url": f"http://localhost:8002/pay?bill={number}",
        "bill_to": {"name": "Client"},
        "patient": {"name": "Client"},
        "practice": {"name": "Practice"},
        "version": version,
    }


def bill_event(event_type: str, practice_id: str, bill: dict[str, Any], **extra: Any) -> dict[str, Any]:
    """A billing.events envelope as billing publishes it."""
    env = new_envelope(practice_id, BillCreated(bill=BillSnapshot.model_validate(bill)))
    body = json.loads(env.model_dump_json())
    body["event_type"] = event_type
    body["data"].update(extra)
    return body


def envelope(event_type: str, practice_id: str, data: dict[str, Any]) -> dict[str, Any]:
    return {
        "event_id": str(uuid.uuid4()),
        "event_type": event_type,
        "occurred_at": dt.datetime.now(dt.UTC).isoformat(),
        "practice_id": practice_id,
        "schema_version": 1,
        "data": data,
    }


async def payment_events(settings: Settings, client_id: str, until: Any, timeout: float = 10) -> list[dict[str, Any]]:
    """The payments.events envelopes about one client, once `until(envelopes)` holds."""

    def mine(records: list[Any]) -> list[dict[str, Any]]:
        out = [json.loads(r.value) for r in records if r.key == client_id.encode()]
        return [e for e in out if e["event_type"] != "AuditRecorded"]  # those: tests of the audit trail

    records = await read_topic(settings, topics.PAYMENTS, until=lambda rs: until(mine(rs)), timeout=timeout)
    return mine(records)


def stripe_client(settings) -> stripe.StripeClient:
    return stripe.StripeClient(
        settings.stripe_api_key, base_addresses={"api": settings.stripe_api_base}, http_client=stripe.HTTPXClient()
    )


async def payment_method(settings, number: str = VISA) -> str:
    pm = await stripe_client(settings).v1.payment_methods.create_async(
        {"type": "card", "card": {"number": number, "exp_month": 12, "exp_year": 2031, "cvc": "123"}}
    )
    return pm.id
