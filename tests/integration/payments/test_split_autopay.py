"""Autopay on a split group: each party's bill is charged to that party's own authorized card
(localstripe), never the client's; a party without a card of its own is skipped, not charged."""

import pytest

from shared import topics
from tests.integration.payments.conftest import bill_event, new_id, snapshot
from tests.integration.payments.test_autopay import autopay_client, payments_of, run, setup_practice
from tests.integration.payments.test_stripe import add_card

pytestmark = pytest.mark.integration


async def test_each_party_pays_its_own_bill_with_its_own_card(svc, http, publish) -> None:
    practice = await setup_practice(svc, publish)
    client = new_id("c")
    group = new_id("group")
    ids = {}
    for number, (party, owes) in enumerate((("client", 6001), ("guardian:g-dad", 4000), ("guardian:g-aunt", 999)), 1):
        bill_id = new_id("bill")
        bill = snapshot(bill_id, client, client_owes=owes, number=number) | {"party": party, "split_group_id": group}
        await publish(topics.BILLING, bill_event("BillCreated", practice, bill), key=client, settings=svc.settings)
        ids[party] = bill_id
    await svc.payments.wait_for_bills(list(ids.values()))
    own = await autopay_client(svc, http, practice, client)
    dad = await add_card(svc, http, practice, client, holder="guardian:g-dad")

    night = await run(http, practice, "2026-11-05T06:00:00Z")
    outcomes = {i["bill_id"]: (i["outcome"], i.get("card_id"), i["reason"]) for i in night["items"]}
    assert outcomes[ids["client"]] == ("succeeded", own["id"], None)
    assert outcomes[ids["guardian:g-dad"]] == ("succeeded", dad["id"], None)
    assert outcomes[ids["guardian:g-aunt"]] == ("skipped", None, "no_card_for_party"), "never the client's card"
    assert [p["amount_cents"] for p in await payments_of(http, practice, ids["guardian:g-dad"])] == [4000]
    assert await payments_of(http, practice, ids["guardian:g-aunt"]) == []
