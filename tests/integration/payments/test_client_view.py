"""A client token sees client-facing fields only: a payment without staff notes, the payer's
name or Stripe's internals; a card without its Stripe id. Staff see everything."""

import pytest

from tests.integration.payments.conftest import as_client, new_id, staff
from tests.integration.payments.test_stripe import add_card

pytestmark = pytest.mark.integration

PAYMENT_STAFF_ONLY = {"notes", "payer_name", "stripe_payment_intent_id", "stripe_charge_id", "stripe_dashboard_url"}


async def test_a_client_sees_payments_and_cards_without_staff_fields(svc, http) -> None:
    practice, client = new_id("p"), new_id("c")
    body = {"client_id": client, "payer": "client", "method": "check", "amount_cents": 2500,
            "reference": "check 1042", "notes": "staff: client was upset at the desk"}  # fmt: skip
    r = await http.post("/v1/payments", json=body, headers=staff(practice, new_id("k")))
    assert r.status_code == 201, r.text
    payment_id = r.json()["id"]

    mine = (await http.get(f"/v1/payments/{payment_id}", headers=as_client(practice, client))).json()
    assert mine["id"] == payment_id and mine["amount_cents"] == 2500 and mine["reference"] == "check 1042"
    assert PAYMENT_STAFF_ONLY.isdisjoint(mine)
    [listed] = (await http.get("/v1/payments", headers=as_client(practice, client))).json()["items"]
    assert PAYMENT_STAFF_ONLY.isdisjoint(listed)
    full = (await http.get(f"/v1/payments/{payment_id}", headers=staff(practice))).json()
    assert full["notes"] == "staff: client was upset at the desk" and PAYMENT_STAFF_ONLY <= set(full)

    await add_card(svc, http, practice, client)
    [card] = (await http.get(f"/v1/clients/{client}/cards", headers=as_client(practice, client))).json()["items"]
    assert card["last4"] == "4242" and "stripe_payment_method_id" not in card
    [card] = (await http.get(f"/v1/clients/{client}/cards", headers=staff(practice))).json()["items"]
    assert card["stripe_payment_method_id"].startswith("pm_")
