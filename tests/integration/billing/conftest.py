"""Billing run in-process against the real Kafka and Postgres: its real subscribers, outbox
relay and HTTP API. Each test works in a practice of its own, so tests never see each other."""

import datetime as dt
import json
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from services.billing.app import build
from shared import topics
from shared.auth import issue_token
from shared.runtime import Service
from shared.settings import Settings
from tests.conftest import eventually, example_event, read_topic


@pytest.fixture(scope="session")
async def billing_app(test_settings: Settings) -> AsyncIterator[tuple[Service, Any]]:
    svc, app = build(test_settings.model_copy(update={"billing_automation_interval_s": 0}))  # runs on request only
    await svc.start()
    yield svc, app
    await svc.stop()


@dataclass
class Practice:
    """One practice's view of the running service: HTTP as staff or a client, and upstream events."""

    id: str
    svc: Service
    http: httpx.AsyncClient
    publish: Callable[..., Any]
    since_ms: int = field(default_factory=lambda: int(time.time() * 1000) - 1000)  # its events come after

    def headers(self, role: str = "staff", client_id: str | None = None) -> dict[str, str]:
        token = issue_token(self.id, role, client_id, secret=self.svc.settings.auth_secret)  # type: ignore[arg-type]
        return {"Authorization": f"Bearer {token}"}

    async def get(self, path: str, *, role: str = "staff", client_id: str | None = None, **kw: Any) -> httpx.Response:
        return await self.http.get(path, headers=self.headers(role, client_id), **kw)

    async def post(self, path: str, body: Any = None, *, key: str | None = None, **kw: Any) -> httpx.Response:
        headers = self.headers()
        if key:
            headers["Idempotency-Key"] = key
        return await self.http.post(path, json=body if body is not None else {}, headers=headers, **kw)

    async def put(self, path: str, body: Any) -> httpx.Response:
        return await self.http.put(path, json=body, headers=self.headers())

    async def send(self, topic: str, event: dict[str, Any], key: str = "k") -> dict[str, Any]:
        event = {**event, "practice_id": self.id}
        await self.publish(topic, event, key=key)
        return event

    async def client(self, client_id: str, *, minor: bool = False, **fields: Any) -> dict[str, Any]:
        event = example_event("ClientUpserted-minor" if minor else "ClientUpserted-adult")
        event["data"]["client"].update(id=client_id, **fields)
        return await self.send(topics.SCHEDULING, event, key=client_id)

    async def session(self, session_id: str, client_id: str, *, example: str = "self-pay", **fields: Any) -> dict:
        event = example_event(f"SessionCompleted-{example}")
        event["data"]["session"].update(id=session_id, client_id=client_id, **fields)
        return await self.send(topics.SCHEDULING, event, key=client_id)

    async def unbilled(self, client_id: str | None = None) -> list[dict[str, Any]]:
        params = {"client_id": client_id} if client_id else {}
        r = await self.get("/v1/unbilled-sessions", params=params)
        assert r.status_code == 200, r.text
        return r.json()["items"]

    async def unbilled_ids(self, client_id: str | None = None) -> list[str]:
        return [i["session_id"] for i in await self.unbilled(client_id)]

    async def bill(self, bill_id: str) -> dict[str, Any]:
        r = await self.get(f"/v1/bills/{bill_id}")
        assert r.status_code == 200, r.text
        return r.json()

    async def billed(self, client_id: str, session_ids: list[str], **body: Any) -> dict[str, Any]:
        """Wait until the sessions are unbilled, then bill them."""
        await eventually(lambda: _all_in(self.unbilled_ids(client_id), session_ids))
        r = await self.post("/v1/bills", {"client_id": client_id, "session_ids": session_ids, **body})
        assert r.status_code == 201, r.text
        return r.json()

    async def events(
        self, until: Callable[[list[dict[str, Any]]], bool], timeout: float = 15, *, audit: bool = False
    ) -> list[dict]:
        """billing.events of this practice (envelopes, in order), read until `until` holds; the
        AuditRecorded ones only with `audit`."""

        def mine(records: list[Any]) -> list[dict[str, Any]]:
            out = [json.loads(r.value) for r in records]
            return [e for e in out if e["practice_id"] == self.id and (audit or e["event_type"] != "AuditRecorded")]

        records = await read_topic(
            self.svc.settings, topics.BILLING, until=lambda rs: until(mine(rs)), timeout=timeout, since_ms=self.since_ms
        )
        return mine(records)

    async def payment(self, client_id: str, allocations: list[tuple[str, int]], *, payer: str = "client", **kw: Any):
        payment_id, event = self.payment_event(client_id, allocations, payer=payer, **kw)
        await self.publish(topics.PAYMENTS, event, key=client_id)
        return payment_id, event

    def payment_event(
        self, client_id: str, allocations: list[tuple[str, int]], *, payer: str = "client", **kw: Any
    ) -> tuple[str, dict[str, Any]]:
        """PaymentRecorded as payments publishes it (`payment` publishes it)."""
        payment_id = kw.pop("payment_id", str(uuid.uuid4()))
        event = {
            "event_id": str(uuid.uuid4()),
            "event_type": "PaymentRecorded",
            "occurred_at": "2026-11-10T12:00:00Z",
            "practice_id": self.id,
            "schema_version": 1,
            "data": {
                "payment": _payment(payment_id, client_id, payer, sum(a for _, a in allocations)),
                "allocations": [{"bill_id": b, "amount_cents": a} for b, a in allocations],
            },
        }
        return payment_id, event

    async def refund(self, client_id: str, payment_id: str, allocations: list[tuple[str, int]], *, payer="client"):
        event = {
            "event_id": str(uuid.uuid4()),
            "event_type": "PaymentRefunded",
            "occurred_at": "2026-11-11T12:00:00Z",
            "practice_id": self.id,
            "schema_version": 1,
            "data": {
                "refund": {
                    "id": str(uuid.uuid4()),
                    "payment_id": payment_id,
                    "client_id": client_id,
                    "amount_cents": sum(a for _, a in allocations),
                    "refunded_at": dt.datetime.now(dt.UTC).isoformat(),
                },
                "payment": _payment(payment_id, client_id, payer, 0),
                "allocations": [{"bill_id": b, "amount_cents": a} for b, a in allocations],
            },
        }
        await self.publish(topics.PAYMENTS, event, key=client_id)
        return event


def _payment(payment_id: str, client_id: str, payer: str, amount: int) -> dict[str, Any]:
    return {
        "id": payment_id,
        "client_id": client_id,
        "payer": payer,
        "method": "cash",
        "amount_cents": amount,
        "status": "succeeded",
        "paid_at": dt.datetime.now(dt.UTC).isoformat(),
    }


async def _all_in(ids: Any, wanted: list[str]) -> bool:
    have = set(await ids)
    return all(w in have for w in wanted)


@pytest.fixture
async def practice(billing_app: tuple[Service, Any], publish: Callable[..., Any]) -> AsyncIterator[Practice]:
    svc, app = billing_app
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://billing") as http:
        yield Practice(f"practice-{uuid.uuid4().hex[:8]}", svc, http, publish)
