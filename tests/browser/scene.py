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
    def __init__(self, publish: Callable[..., Any], web: WebStack, api: Any) -> None:
        self.publish = publish
        self.web = web
        self.api = api

    async def send(self, name: str, key: str, **data: Any) -> None:
        event = example_event(name)
        event["practice_id"] = PRACTICE
        event["data"].update(copy.deepcopy(data))
        await self.publish(topics.SCHEDULING, event, key=key, settings=self.web.settings)

    async def client(self, first: str, last: str, *, insurance: bool = False) -> str:
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

    async def unbilled(self, session_id: str) -> dict[str, Any]:
        """Wait until billing lists the session under Unbilled."""
        url = f"{self.web.api('billing')}/v1/unbilled-sessions"

        async def listed() -> dict[str, Any] | None:
            items = (await self.api.get(url, params={"limit": 200})).json()["items"]
            return next((i for i in items if i["session_id"] == session_id), None)

        return await eventually(listed)
