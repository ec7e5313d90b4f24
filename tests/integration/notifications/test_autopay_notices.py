"""Autopay turned off after failed nights: the client is emailed and sees it in the portal."""

import pytest

from shared import topics
from shared.events import AutopayDisabled
from tests.conftest import eventually
from tests.integration.notifications.conftest import Running
from tests.integration.notifications.test_emails import adult_client
from tests.unit.notifications import samples

pytestmark = pytest.mark.integration


async def test_autopay_disabled_is_emailed_to_the_client(notifications: Running, publish) -> None:
    n = notifications
    client_id, address = await adult_client(n, publish)

    disabled = AutopayDisabled(client_id=client_id, card_id="card-1", reason="failed 3 nights", failed_nights=3)
    await publish(topics.PAYMENTS, samples.envelope(disabled), key=client_id, settings=n.settings)
    [message] = await eventually(lambda: n.inbox.to(address) or None)
    assert message["Subject"].startswith("Automatic payments to ") and message["Subject"].endswith("are turned off")
    assert "3 nights in a row" in message.get_body(("plain",)).get_content()
    feed = await eventually(lambda: n.feed(client_id))
    assert [f["kind"] for f in feed] == ["autopay_disabled"]
