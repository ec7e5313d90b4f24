"""A session whose payer changes (a new SessionCompleted for the same id) moves in or out of the
third-party reconciliation, as billing moves it out of or into Unbilled."""

import pytest

from shared import topics
from tests.conftest import eventually
from tests.integration.payments.conftest import new_id, staff
from tests.integration.payments.test_payers import platform_session

pytestmark = pytest.mark.integration


async def test_a_payer_change_moves_the_session_in_and_out_of_reconciliation(svc, http, publish) -> None:
    practice = new_id("p")
    session_id, event = platform_session(practice, "alma", 14500)
    await publish(topics.SCHEDULING, event, key="client-ellis", settings=svc.settings)

    async def expected(payer: str) -> list[str]:
        r = await http.get("/v1/payer-reconciliation", params={"payer": payer}, headers=staff(practice))
        return [i["session_id"] for i in r.json()["items"]]

    assert await eventually(lambda: expected("alma")) == [session_id]
    event["data"]["session"]["payer"] = "self_pay"
    event["event_id"] = new_id("evt")
    await publish(topics.SCHEDULING, event, key="client-ellis", settings=svc.settings)
    marker_id, marker = platform_session(practice, "headway", 9000)  # same key: applied after the change
    await publish(topics.SCHEDULING, marker, key="client-ellis", settings=svc.settings)
    assert await eventually(lambda: expected("headway")) == [marker_id]
    assert await expected("alma") == [], "self-pay now: billed to the client, not expected from Alma"
