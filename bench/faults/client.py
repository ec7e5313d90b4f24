"""How the workload talks to the private stack: HTTP to any replica (as a load balancer would),
retrying a write with the same Idempotency-Key until it gets a real answer; events published
the way upstream does (key = client id, headers repeat the envelope's)."""

import asyncio
import datetime as dt
import hashlib
import hmac
import json
import random
import time
import uuid
from dataclasses import dataclass
from typing import Any

import httpx
from aiokafka import AIOKafkaProducer

from bench.faults.infra import PrivateStack
from shared import topics
from shared.auth import issue_token

RETRYABLE_CODES = {"request_in_progress", "service_unavailable"}


class GaveUp(Exception):
    """No real answer within the deadline (the stack never came back)."""


def envelope(practice_id: str, event_type: str, data: dict[str, Any]) -> dict[str, Any]:
    return {
        "event_id": str(uuid.uuid4()),
        "event_type": event_type,
        "occurred_at": dt.datetime.now(dt.UTC).isoformat(),
        "practice_id": practice_id,
        "schema_version": 1,
        "data": data,
    }


@dataclass
class Api:
    stack: PrivateStack
    practice_id: str
    rng: random.Random
    http: httpx.AsyncClient
    deadline_s: float = 180.0

    @property
    def headers(self) -> dict[str, str]:
        token = issue_token(self.practice_id, "staff", ttl=dt.timedelta(days=1))
        return {"Authorization": f"Bearer {token}"}

    async def call(
        self,
        method: str,
        service: str,
        path: str,
        *,
        key: str | None = None,
        extra_headers: dict[str, str] | None = None,
        **kwargs: Any,
    ) -> httpx.Response:
        """Any replica; connection errors, 5xx and 'still running' are retried (same key) on
        any replica until a real answer or the deadline."""
        headers = {**self.headers, **({"Idempotency-Key": key} if key else {}), **(extra_headers or {})}
        give_up = time.monotonic() + self.deadline_s
        delay = 0.1
        while True:
            replica = self.rng.randrange(self.stack.replicas)
            try:
                r = await self.http.request(
                    method, f"{self.stack.url(service, replica)}{path}", headers=headers, **kwargs
                )
                if r.status_code < 500 and not _retryable(r):
                    return r
            except httpx.HTTPError:
                pass
            if time.monotonic() > give_up:
                raise GaveUp(f"{method} {service}{path}")
            await asyncio.sleep(delay)
            delay = min(delay * 2, 0.5)  # as a load balancer would: try again soon, any replica

    async def get(self, service: str, path: str, **params: Any) -> Any:
        r = await self.call("GET", service, path, params=params)
        r.raise_for_status()
        return r.json()

    async def post(self, service: str, path: str, body: Any, key: str | None = None) -> httpx.Response:
        return await self.call("POST", service, path, key=key, json=body)

    async def put(self, service: str, path: str, body: Any) -> httpx.Response:
        return await self.call("PUT", service, path, json=body)

    async def all_items(self, service: str, path: str, **params: Any) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        cursor = None
        while True:
            page = await self.get(service, path, limit=200, **params, **({"cursor": cursor} if cursor else {}))
            items += page["items"]
            cursor = page.get("next_cursor")
            if not cursor:
                return items

    async def signed(self, payload: str, secret: str) -> httpx.Response:
        """A Stripe webhook delivery, signed as Stripe signs it."""
        ts = int(time.time())
        sig = hmac.new(secret.encode(), f"{ts}.{payload}".encode(), hashlib.sha256).hexdigest()
        headers = {"Stripe-Signature": f"t={ts},v1={sig}", "Content-Type": "application/json"}
        return await self.call("POST", "payments", "/v1/stripe/webhook", content=payload, extra_headers=headers)


def webhook_payload(event_type: str, obj: dict[str, Any]) -> str:
    return json.dumps({"id": f"evt_{uuid.uuid4().hex[:24]}", "type": event_type, "data": {"object": obj}})


def _retryable(r: httpx.Response) -> bool:
    if r.status_code != 409 and r.status_code != 503:
        return False
    try:
        return r.status_code == 503 or r.json()["error"]["code"] in RETRYABLE_CODES
    except (ValueError, KeyError, TypeError):
        return False


@dataclass
class Upstream:
    """Publishes to the private broker; a send that fails while the broker is down is retried."""

    stack: PrivateStack
    producer: AIOKafkaProducer | None = None

    async def start(self) -> None:
        self.producer = AIOKafkaProducer(
            bootstrap_servers=self.stack.settings.kafka_bootstrap_servers,
            acks="all",
            enable_idempotence=True,
            request_timeout_ms=10000,
            retry_backoff_ms=200,
        )
        await self.producer.start()

    async def stop(self) -> None:
        if self.producer is not None:
            await self.producer.stop()

    async def send(self, event: dict[str, Any] | bytes, key: str, topic: str = topics.SCHEDULING) -> None:
        assert self.producer is not None
        value = event if isinstance(event, bytes) else json.dumps(event).encode()
        headers = []
        if isinstance(event, dict):
            headers = [("event-type", event["event_type"].encode()), ("event-id", event["event_id"].encode())]
        give_up = time.monotonic() + 300
        while True:
            try:
                await self.producer.send_and_wait(
                    self.stack.settings.topic(topic), value, key=key.encode(), headers=headers
                )
                return
            except Exception:
                if time.monotonic() > give_up:
                    raise
                await asyncio.sleep(0.5)
