"""Setting the scene as upstream scheduling would: clients, a clinician and completed sessions
published on Kafka for the browser tier's practice."""

import copy
import uuid
from collections.abc import Callable
from typing import Any

from shared import topics
from tests.browser.conftest import PRACTICE, WebStack
from tests.conftest import eventually, example_event


class Scene:
    """`practice`: the browser tier's practice, or one of a test's own (whose totals or nightly
    runs the other tests' records would change)."""

    def __init__(self, publish: Callable[..., Any], web: WebStack, api: Any, practice: str = PRACTICE) -> None:
        self.publish = publish
        self.web = web
        self.api = api
        self.practice = practice

    async def send(self, name: str, key: str, **data: Any) -> None:
        event = example_event(name)
        event["practice_id"] = self.practice
        event["data"].update(copy.deepcopy(data))
        await self.publish(topics.SCHEDULING, event, key=key, settings=self.web.settings)

    async def client(self, first: str, last: str, *, insurance: bool = False) -> str:
        """A new client (with the example's insurance, or none) and the example clinician."""
        client_id = f"client-{uuid.uuid4().hex[:8]}"
        body = example_event("ClientUpserted-adult")["data"]["client"]
        body.update(id=client_id, first_name=first, last_name=last, email=f"{client_id}@example.com")
        if not insurance:
            body["insurance"] = None
        await self.send("ClientUpserted-adult", client_id, client=body)
        await self.send("ClinicianUpserted", client_id)
        return client_id

    async def session(
        self, client_id: str, *, date: str = "2026-11-02", fee_cents: int = 16000, payer: str = "self_pay"
    ) -> str:
        session = example_event("SessionCompleted-self-pay")["data"]["session"]
        session_id = f"sess-{uuid.uuid4().hex[:8]}"
        session.update(id=session_id, client_id=client_id, date_of_service=date, payer=payer)
        session["starts_at"] = f"{date}T15:00:00-08:00"
        session["services"][0]["fee_cents"] = fee_cents
        await self.send("SessionCompleted-self-pay", client_id, session=session)
        return session_id

    async def bill(self, client_id: str, session_id: str, **body: Any) -> dict[str, Any]:
        """A bill made through the API (for tests whose subject is what comes after)."""
        await self.unbilled(session_id)
        r = await self.api.post(
            f"{self.web.api('billing')}/v1/bills", json={"client_id": client_id, "session_ids": [session_id], **body}
        )
        assert r.status_code == 201, r.text
        return dict(r.json())

    async def cash(self, bill: dict[str, Any]) -> None:
        """Pay a bill in cash through the API (once payments knows the bill) and wait until
        billing shows it paid."""
        body = {"client_id": bill["client_id"], "bill_id": bill["id"], "method": "cash",
                "amount_cents": bill["balance_cents"], "idempotency_key": f"cash-{bill['id']}"}  # fmt: skip

        async def recorded() -> bool:
            r = await self.api.post(f"{self.web.api('payments')}/v1/payments", json=body)
            assert r.status_code in (201, 404), r.text
            return r.status_code == 201

        await eventually(recorded, timeout=60, interval=1)

        async def paid() -> bool:
            got = await self.api.get(f"{self.web.api('billing')}/v1/bills/{bill['id']}")
            return bool(got.json()["status"] == "paid")

        await eventually(paid, timeout=60)

    async def expected_payout(self, session_id: str) -> None:
        """Wait until payments expects the platform's payout for the session."""
        url = f"{self.web.api('payments')}/v1/payer-reconciliation"

        async def expected() -> bool:
            items = (await self.api.get(url)).json()["items"]
            return any(i["session_id"] == session_id for i in items)

        await eventually(expected, timeout=30)

    async def unbilled(self, session_id: str) -> dict[str, Any]:
        """Wait until billing lists the session under Unbilled."""
        url = f"{self.web.api('billing')}/v1/unbilled-sessions"

        async def listed() -> dict[str, Any] | None:
            items = (await self.api.get(url, params={"limit": 200})).json()["items"]
            return next((i for i in items if i["session_id"] == session_id), None)

        return await eventually(listed, timeout=30)
