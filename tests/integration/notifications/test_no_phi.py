"""An SMTP server that echoes the recipient in its refusal: the reason notifications logs,
stores and publishes carries no address."""

import logging
import uuid

import pytest

from shared import topics
from shared.logs import JsonFormatter
from tests.conftest import eventually
from tests.integration.notifications.conftest import Running
from tests.unit.notifications import samples

pytestmark = pytest.mark.integration


async def test_an_smtp_refusal_quoting_the_address_is_recorded_without_it(
    notifications: Running, publish, caplog: pytest.LogCaptureFixture
) -> None:
    n = notifications
    client_id, address = f"client-{uuid.uuid4().hex[:8]}", f"wilhelmina.{uuid.uuid4().hex[:6]}@phi-probe.example"
    n.inbox.refuse[address] = f"550 5.1.1 <{address}>: Recipient address rejected: no such user {address}"
    caplog.set_level(logging.DEBUG)
    shared = samples.bill_shared(samples.bill(client_id), address=address, attach_pdf=False)
    await publish(topics.BILLING, samples.envelope(shared), key=client_id, settings=n.settings)

    async def failed() -> dict | None:
        response = await n.http.get("/v1/emails", params={"client_id": client_id}, headers=n.staff())
        items = response.json()["items"]
        return items[0] if items and items[0]["status"] == "failed" else None

    email = await eventually(failed)
    assert (
        email["last_error"]
        == "recipient refused: 550 5.1.1 <<address>>: Recipient address rejected: no such user <address>"
    )
    lines = [JsonFormatter().format(r) for r in caplog.records]
    assert not [line for line in lines if address in line]
