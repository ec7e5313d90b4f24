"""A client token sees client-facing fields only: no bill, statement or Documents-tab entry
before staff shared it, and no cancel reason or share plan on a shared bill."""

import datetime as dt
import uuid

import pytest

from shared.auth import DOCUMENTS_READ, PRACTICE_READ, issue_service_token
from tests.conftest import eventually
from tests.integration.billing.conftest import Practice

pytestmark = pytest.mark.integration


async def test_a_client_sees_only_shared_bills_without_staff_fields(practice: Practice) -> None:
    cid, s1, s2 = f"c-{uuid.uuid4().hex[:6]}", f"s-{uuid.uuid4().hex[:6]}", f"s-{uuid.uuid4().hex[:6]}"
    await practice.client(cid)
    await practice.session(s1, cid)
    await practice.session(s2, cid)
    shared = await practice.billed(cid, [s1])
    unshared = await practice.billed(cid, [s2])
    assert (await practice.post(f"/v1/bills/{shared['id']}/share", {})).status_code == 200
    r = await practice.post(f"/v1/bills/{unshared['id']}/cancel", {"reason": "staff note: wrong client"})
    assert r.status_code == 200, r.text

    as_client = {"role": "client", "client_id": cid}
    assert (await practice.get(f"/v1/bills/{unshared['id']}", **as_client)).status_code == 404
    listed = (await practice.get("/v1/bills", **as_client)).json()["items"]
    assert [b["id"] for b in listed] == [shared["id"]]
    tab = (await practice.get(f"/v1/clients/{cid}/documents", **as_client)).json()["items"]
    assert [d["id"] for d in tab] == [shared["id"]]
    seen = (await practice.get(f"/v1/bills/{shared['id']}", **as_client)).json()
    assert seen["id"] == shared["id"] and seen["shared"] is True
    assert "cancel_reason" not in seen and "share_scheduled_at" not in seen

    staff_view = (await practice.get(f"/v1/bills/{unshared['id']}")).json()
    assert staff_view["cancel_reason"] == "staff note: wrong client"
    assert len((await practice.get(f"/v1/clients/{cid}/documents")).json()["items"]) == 2


async def test_a_client_sees_a_statement_only_once_shared(practice: Practice) -> None:
    cid = f"c-{uuid.uuid4().hex[:6]}"
    await practice.client(cid)
    today = dt.datetime.now(dt.UTC).date()
    body = {"client_id": cid, "start_date": (today - dt.timedelta(days=30)).isoformat(), "end_date": today.isoformat()}

    async def created() -> dict | None:  # once the client has reached billing
        r = await practice.post("/v1/statements", body)
        return r.json() if r.status_code == 201 else None

    statement = await eventually(created)
    path = f"/v1/statements/{statement['id']}"
    assert (await practice.get(path, role="client", client_id=cid)).status_code == 404
    assert (await practice.post(f"{path}/share", {})).status_code == 200
    assert (await practice.get(path, role="client", client_id=cid)).status_code == 200


async def test_the_webs_settings_token_reads_the_settings_and_nothing_else(practice: Practice) -> None:
    """The web reads a practice's name, currency and timezone with a service token scoped
    `practice:read`; it cannot write them or read anything else, and a client cannot read them."""
    saved = await practice.put("/v1/settings", {"name": "Rivers Edge", "timezone": "America/Chicago"})
    assert saved.status_code == 200, saved.text
    settings = practice.svc.settings

    def bearer(scope: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {issue_service_token(practice.id, 'web', scope, settings)}"}

    r = await practice.http.get("/v1/settings", headers=bearer(PRACTICE_READ))
    assert r.status_code == 200 and (r.json()["name"], r.json()["timezone"]) == ("Rivers Edge", "America/Chicago")
    write = await practice.http.put("/v1/settings", json={"name": "x"}, headers=bearer(PRACTICE_READ))
    assert write.status_code == 403
    for path in ("/v1/bills", "/v1/unbilled-sessions", "/v1/clients"):
        assert (await practice.http.get(path, headers=bearer(PRACTICE_READ))).status_code == 403, path
    assert (await practice.http.get("/v1/settings", headers=bearer(DOCUMENTS_READ))).status_code == 403
    assert (await practice.get("/v1/settings", role="client", client_id="c1")).status_code == 403
