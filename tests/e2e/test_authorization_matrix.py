"""The authorization matrix, generated from each running service's OpenAPI document: every route ×
(no token, expired, wrong signature, another practice's staff, a client on another client's
record, a client on a staff route, a service token) → no leak, with the status CONTRACT.md
gives: 401 without a valid token, 404 for another practice's or client's record, 403 for a role
the route is not for. Path ids are real records of practice A, so a 404 means "refused", not
"does not exist"; a list answer may be 200 but must not carry any of A's records."""

import datetime as dt
import json
import re
import uuid
from dataclasses import dataclass
from typing import Any

import httpx
import jwt
import pytest
from aiokafka import AIOKafkaProducer

from shared import topics
from shared.admin import SERVICES
from shared.auth import DOCUMENTS_READ, issue_service_token, issue_token
from tests.conftest import eventually, example_event
from tests.processes import Stack

pytestmark = pytest.mark.e2e

PUBLIC = {("GET", "/healthz"), ("GET", "/readyz"), ("GET", "/metrics"), ("GET", "/asyncapi.json"),
          ("GET", "/pay"), ("POST", "/v1/public/pay"), ("POST", "/v1/stripe/webhook")}  # fmt: skip
# Routes for practice staff only (CONTRACT.md: a client reads their own records and pays their bills;
# the portal also lets a client turn their own autopay on or off).
STAFF_ONLY = {
    ("GET", "/v1/unbilled-sessions"), ("POST", "/v1/bills"), ("POST", "/v1/bills/{bill_id}/share"),
    ("POST", "/v1/bills/{bill_id}/cancel"), ("GET", "/v1/settings"), ("PUT", "/v1/settings"),
    ("POST", "/v1/statements"), ("POST", "/v1/statements/{statement_id}/share"), ("POST", "/v1/superbills"),
    ("POST", "/v1/superbills/{superbill_id}/share"), ("GET", "/v1/checks/balances"),
    ("GET", "/v1/clients/{client_id}/billing-profile"), ("PUT", "/v1/clients/{client_id}/billing-profile"),
    ("POST", "/v1/automation/run"), ("PATCH", "/v1/payments/{payment_id}"),
    ("POST", "/v1/payments/{payment_id}/refunds"), ("POST", "/v1/clients/{client_id}/credit-adjustments"),
    ("POST", "/v1/autopay/run"), ("POST", "/v1/payer-remittances"),
    ("GET", "/v1/payer-reconciliation"), ("GET", "/v1/emails"), ("GET", "/v1/emails/{email_id}"),
    ("POST", "/v1/emails/{email_id}/retry"), ("POST", "/v1/bills/{bill_id}/adjustments"),
    ("POST", "/v1/bills/{bill_id}/adjustments/{adjustment_id}/reverse"), ("GET", "/v1/clinicians"),
}  # fmt: skip
PUBLIC_PREFIXES = ("/pay", "/v1/public/")  # the pay page: number + access code, no login
STAFF_PREFIXES = ("/v1/reports", "/v1/journal", "/v1/audit")
SERVICE_READS = {("GET", "/v1/documents"), ("GET", "/v1/documents/{document_id}"),
                 ("GET", "/v1/documents/{document_id}/pdf")}  # fmt: skip


@dataclass
class PracticeA:
    """The records the attackers aim at: client c1's bill, payment, document, statement, email."""

    practice_id: str
    c1: str
    c2: str
    last_name: str
    ids: dict[str, str]

    def markers(self) -> list[str]:
        """Strings that must not appear in an answer to anyone outside A or to client c2."""
        return [self.last_name, *self.ids.values()]


def token(practice_id: str, role: str = "staff", client_id: str | None = None, **kw: Any) -> dict[str, str]:
    return {"Authorization": f"Bearer {issue_token(practice_id, role, client_id, **kw)}"}  # type: ignore[arg-type]


async def ok(r: httpx.Response) -> dict[str, Any]:
    assert r.status_code in (200, 201, 202), r.text
    return r.json()


@pytest.fixture(scope="module")
async def practice_a(stack: Stack, kafka_producer: AIOKafkaProducer) -> PracticeA:
    async def publish(topic: str, event: dict[str, Any], key: str) -> None:
        headers = [("event-type", event["event_type"].encode()), ("event-id", event["event_id"].encode())]
        value = json.dumps(event).encode()
        await kafka_producer.send_and_wait(stack.settings.topic(topic), value, key=key.encode(), headers=headers)

    suffix = uuid.uuid4().hex[:8]
    pid, c1, c2, last = f"practice-sec-{suffix}", f"c1-{suffix}", f"c2-{suffix}", f"Quillfeather{suffix}"
    staff = token(pid)
    for client_id, name in ((c1, last), (c2, "Other")):
        event = example_event("ClientUpserted-adult")
        event["practice_id"] = pid
        event["data"]["client"].update(id=client_id, last_name=name, email=f"{client_id}@example.com")
        await publish(topics.SCHEDULING, event, key=client_id)
    clinician = example_event("ClinicianUpserted")
    clinician["practice_id"] = pid
    await publish(topics.SCHEDULING, clinician, key="clin")
    session = example_event("SessionCompleted-self-pay")
    session["practice_id"] = pid
    session["data"]["session"].update(id=f"sess-{suffix}", client_id=c1)
    await publish(topics.SCHEDULING, session, key=c1)
    async with httpx.AsyncClient(timeout=20) as http:
        billing, payments = stack.url("billing"), stack.url("payments")

        async def unbilled() -> list[Any]:
            r = await http.get(f"{billing}/v1/unbilled-sessions", params={"client_id": c1}, headers=staff)
            return (await ok(r))["items"]

        await eventually(unbilled, timeout=60)
        bill = await ok(
            await http.post(
                f"{billing}/v1/bills", json={"client_id": c1, "session_ids": [f"sess-{suffix}"]}, headers=staff
            )
        )

        async def document_id() -> str | None:
            return (await ok(await http.get(f"{billing}/v1/bills/{bill['id']}", headers=staff)))["document_id"]

        doc = await eventually(document_id, timeout=90)
        payment = await ok(
            await http.post(
                f"{payments}/v1/payments",
                json={"client_id": c1, "bill_id": bill["id"], "method": "cash", "amount_cents": 1000},
                headers=staff,
            )
        )
        today = dt.date.today().isoformat()
        statement = await ok(
            await http.post(
                f"{billing}/v1/statements",
                json={"client_id": c1, "start_date": today, "end_date": today},
                headers=staff,
            )
        )
        await ok(await http.post(f"{billing}/v1/bills/{bill['id']}/share", json={}, headers=staff))

        async def email_id() -> str | None:
            r = await http.get(f"{stack.url('notifications')}/v1/emails", params={"client_id": c1}, headers=staff)
            items = (await ok(r))["items"]
            return items[0]["id"] if items else None

        email = await eventually(email_id, timeout=90)
    ids = {"bill_id": bill["id"], "payment_id": payment["id"], "document_id": doc, "statement_id": statement["id"],
           "email_id": email}  # fmt: skip
    return PracticeA(pid, c1, c2, last, ids)


def attackers(a: PracticeA, stack: Stack) -> dict[str, dict[str, str]]:
    now = dt.datetime.now(dt.UTC)
    expired = {"practice_id": a.practice_id, "role": "staff", "iat": now - dt.timedelta(hours=2),
               "exp": now - dt.timedelta(hours=1)}  # fmt: skip
    forged = issue_token(a.practice_id, "staff", secret="not-the-secret-not-the-secret-000000")
    return {
        "no_token": {},
        "expired": {"Authorization": f"Bearer {jwt.encode(expired, stack.settings.auth_secret)}"},
        "wrong_signature": {"Authorization": f"Bearer {forged}"},
        "other_practice_staff": token(f"other-{a.practice_id}"),
        "other_client": token(a.practice_id, "client", a.c2),
        "client_on_staff_route": token(a.practice_id, "client", a.c1),
        "service_token": {
            "Authorization": f"Bearer {issue_service_token(a.practice_id, 'billing', DOCUMENTS_READ, stack.settings)}"
        },
    }


def fill(path: str, a: PracticeA) -> str:
    values = {**a.ids, "client_id": a.c1}
    for name, value in values.items():
        path = path.replace("{" + name + "}", value)
    return re.sub(r"\{[a-z_]+\}", lambda _: str(uuid.uuid4()), path)  # card_id, adjustment_id, ...


def expected(who: str, method: str, route: str) -> set[int] | None:
    """The statuses allowed, or None when any status is fine as long as nothing leaks."""
    staff_only = (method, route) in STAFF_ONLY or route.startswith(STAFF_PREFIXES)
    if who in ("no_token", "expired", "wrong_signature"):
        return {401}
    if who == "client_on_staff_route":
        return {403} if staff_only else None
    if who == "service_token":
        return None if (method, route) in SERVICE_READS else {403}
    if who == "other_client" and staff_only:
        return {403}
    if "{" in route and route.rsplit("/", 1)[-1].startswith("{") and method == "GET":
        return {404}  # a record of A by its id
    return None


async def test_no_route_leaks_to_anyone_outside_its_owner(stack: Stack, practice_a: PracticeA) -> None:
    a = practice_a
    who_headers = attackers(a, stack)
    leaks: list[str] = []
    checked = 0
    async with httpx.AsyncClient(timeout=20) as http:
        # the ids are real: A's own staff reads them
        staff = token(a.practice_id)
        assert (await http.get(f"{stack.url('billing')}/v1/bills/{a.ids['bill_id']}", headers=staff)).status_code == 200
        for service in SERVICES:
            spec = (await http.get(f"{stack.url(service)}/openapi.json")).json()
            for route, methods in spec["paths"].items():
                for method in methods:
                    method = method.upper()
                    if (method, route) in PUBLIC or route.startswith(PUBLIC_PREFIXES):
                        continue
                    url = f"{stack.url(service)}{fill(route, a)}"
                    params = (
                        {"client_id": a.c1} if "client_id" in str(methods[method.lower()].get("parameters")) else {}
                    )
                    body = {} if method in ("POST", "PUT", "PATCH") else None
                    for who, headers in who_headers.items():
                        r = await http.request(method, url, headers=headers, params=params, json=body)
                        checked += 1
                        allowed = expected(who, method, route)
                        # c1 reading their own records and the service token reading documents are no leak
                        outsider = who in ("other_practice_staff", "other_client")
                        leaked = [m for m in a.markers() if m in r.text] if r.is_success and outsider else []
                        if (allowed is not None and r.status_code not in allowed) or leaked or r.status_code >= 500:
                            leaks.append(f"{who}: {method} {route} → {r.status_code} {r.text[:160]}")
                        if not r.is_success and r.status_code < 500:
                            assert set(r.json()) == {"error"}, f"{method} {route}: {r.text}"
        # the service token reads A's documents (notifications' PDF fetch) and nothing else
        pdf = f"{stack.url('documents')}/v1/documents/{a.ids['document_id']}/pdf"
        assert (await http.get(pdf, headers=who_headers["service_token"])).status_code == 200
    assert checked > 250  # every route of the four services, seven ways
    assert not leaks, f"{len(leaks)} of {checked} requests leaked or answered wrongly:\n" + "\n".join(leaks)
