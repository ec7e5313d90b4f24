"""The drift check over everything the other payments tests recorded (named to run last), and
a drift it must catch."""

import pytest

from services.payments.check import Drift, find_drift
from services.payments.db import bill_applications, bills
from tests.integration.payments.conftest import new_id

pytestmark = pytest.mark.integration


class Rollback(Exception):
    pass


async def test_ledgers_have_no_drift_and_an_over_applied_bill_is_caught(svc) -> None:
    async with svc.db.transaction() as session:
        assert await find_drift(session) == []
    bill_id = new_id("bill")
    with pytest.raises(Rollback):
        async with svc.db.transaction() as session:
            await session.execute(
                bills.insert().values(
                    id=bill_id, practice_id="p", client_id="c", number=1, status="open", client_owes_cents=100,
                    insurance_owes_cents=0, total_cents=100, access_code="000000", version=1,
                )
            )  # fmt: skip
            await session.execute(
                bill_applications.insert().values(
                    practice_id="p", bill_id=bill_id, client_id="c", payer="client", payment_id="x", kind="payment",
                    amount_cents=150,
                )
            )  # fmt: skip
            drift = await find_drift(session)
            raise Rollback
    assert drift == [Drift("bill", bill_id, "client applied 150 of 100 owed")]
