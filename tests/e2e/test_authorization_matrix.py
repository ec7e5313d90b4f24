"""The authorization matrix, generated from each running service's OpenAPI document: every route ×
(no token, expired, wrong signature, another practice's staff, a client on another client's
record, a client on a staff route, a service token of either scope) → no leak, with the status CONTRACT.md
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
from shared.auth import DOCUMENTS_READ, PRACTICE_READ, issue_service_token, issue_token
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
        "settings_reader": {
            "Authorization": f"Bearer {issue_service_token(a.practice_id, 'web', PRACTICE_READ, stack.settings)}"
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
    if who == "settings_reader":  # the web's token for the practice's name, currency and timezone
        return None if (method, route) == ("GET", "/v1/settings") else {403}
    if who == "other_client" and staff_only:
        return {403}
    if "{" in route and route.rsplit("/", 1)[-1].startswith("{") and method == "GET":
        return {404}  # a record of A by its id
    return None


async def test_no_route_leaks_to_anyone_outside_its_owner(stack: Stack, practice_a: PracticeA) -> None:
    a = practice_a
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
                    who_headers = attackers(a, stack)  # fresh each route: service tokens live 5 minutes
                    for who, headers in who_headers.items():
                        r = await http.request(method, url, headers=headers, params=params, json=body)
                        checked += 1
                        allowed = expected(who, method, route)
                        # c1 reading their own records and the service token reading documents are no leak
                        outsider = who in ("other_practice_staff", "other_client")
                        leaked = [m for m in a.markers() if m in r.text] if r.is_success and outsider else []
                        if slow_dependency(r):
                            continue
                        if (allowed is not None and r.status_code not in allowed) or leaked or r.status_code >= 500:
                            leaks.append(f"{who}: {method} {route} → {r.status_code} {r.text[:160]}")
                        if not r.is_success and r.status_code < 500:
                            assert set(r.json()) == {"error"}, f"{method} {route}: {r.text}"
        # the service token reads A's documents (notifications' PDF fetch) and nothing else
        who_headers = attackers(a, stack)
        pdf = f"{stack.url('documents')}/v1/documents/{a.ids['document_id']}/pdf"
        assert (await http.get(pdf, headers=who_headers["service_token"])).status_code == 200
        settings = f"{stack.url('billing')}/v1/settings"
        assert (await http.get(settings, headers=who_headers["settings_reader"])).status_code == 200
        await unchanged(http, stack, a)
    assert checked > 250  # every route of the services, eight ways
    assert not leaks, f"{len(leaks)} of {checked} requests leaked or answered wrongly:\n" + "\n".join(leaks)


async def unchanged(http: httpx.AsyncClient, stack: Stack, a: PracticeA) -> None:
    """Whatever the attackers' writes answered, A's records are as A left them: the bill open,
    shared and paid 1000, the cash payment standing unrefunded, no card, autopay or plan for c1."""
    staff = token(a.practice_id)
    bill = (await http.get(f"{stack.url('billing')}/v1/bills/{a.ids['bill_id']}", headers=staff)).json()
    assert bill["status"] == "open" and bill["shared"] and bill["paid_cents"] == 1000 and not bill["adjustments"], bill
    payments = stack.url("payments")
    payment = (await http.get(f"{payments}/v1/payments/{a.ids['payment_id']}", headers=staff)).json()
    assert payment["status"] == "succeeded" and not payment.get("refunds"), payment
    for path in (f"/v1/clients/{a.c1}/cards", f"/v1/clients/{a.c1}/payment-plans"):
        assert (await http.get(f"{payments}{path}", headers=staff)).json()["items"] == [], path
    assert not (await http.get(f"{payments}/v1/clients/{a.c1}/autopay", headers=staff)).json()["enabled"]


# The web service (staff console and client portal): HTML pages behind the session cookie, forms
# behind a CSRF token. Its routes come from its own OpenAPI document like the services' above.
WEB_PUBLIC = {("GET", "/healthz"), ("GET", "/readyz"), ("GET", "/metrics"), ("GET", "/sign-in"),
              ("POST", "/sign-out")}  # fmt: skip
WEB_SKIP_PREFIXES = ("/dev/", "/_localstripe")  # the local sign-in picker (off here) and localstripe's stand-ins


RECORD_IDS = ("bill_id", "payment_id", "document_id", "statement_id", "email_id")
# Pages for anyone signed in, staff or client (Download PDF links); c1 downloading its own shared bill is no leak.
WEB_ANY_SIGNED_IN = {("GET", "/documents/{document_id}/pdf")}
# A Stripe or upstream call that timed out is answered 503 (`stripe_unavailable`, or the web's "did not
# answer"), as documented: the dependency's state on a loaded machine, not a leak nor a fault of the route.
SLOW_DEPENDENCY = ("stripe_unavailable", "did not answer")


def slow_dependency(r: httpx.Response) -> bool:
    return r.status_code == 503 and any(sign in r.text for sign in SLOW_DEPENDENCY)


def cookie_header(cookies: dict[str, str]) -> dict[str, str]:
    """The Cookie header a browser would send (set per request: the client keeps no jar between callers)."""
    return {"cookie": "; ".join(f"{k}={v}" for k, v in cookies.items())}


def web_callers(a: PracticeA, stack: Stack) -> dict[str, tuple[str | None, str]]:
    """Each caller's session token (None: no cookie) and the pages it attacks: staff, portal or all."""
    now = dt.datetime.now(dt.UTC)
    expired = {"practice_id": a.practice_id, "role": "staff", "iat": now - dt.timedelta(hours=2),
               "exp": now - dt.timedelta(hours=1)}  # fmt: skip
    return {
        "no_session": (None, "all"),
        "expired": (jwt.encode(expired, stack.settings.auth_secret), "all"),
        "wrong_signature": (issue_token(a.practice_id, "staff", secret="not-the-secret-not-the-secret-000000"), "all"),
        "other_practice_staff": (issue_token(f"other-{a.practice_id}", "staff"), "all"),
        "other_client": (issue_token(a.practice_id, "client", a.c2), "all"),
        "client_on_staff_page": (issue_token(a.practice_id, "client", a.c1), "staff"),
        "staff_on_portal": (issue_token(a.practice_id, "staff"), "portal"),
    }


def web_expected(who: str, method: str, route: str) -> set[int] | None:
    """Statuses allowed (None: any status, as long as nothing of A leaks and nothing is a 5xx)."""
    if (method, route) in WEB_ANY_SIGNED_IN:  # the documents service decides: 404 unless it is theirs
        return {303} if who in ("no_session", "expired", "wrong_signature") else {404}
    portal = route.startswith("/portal")
    if who in ("no_session", "expired", "wrong_signature"):
        return {303}  # to /sign-in
    if who in ("client_on_staff_page", "staff_on_portal"):
        return {403}
    if (who == "other_practice_staff" and portal) or (who == "other_client" and not portal):
        return {403}
    if method == "GET" and any("{" + name + "}" in route for name in RECORD_IDS):
        return {404}  # a record of A by its id (a page about client c1 may answer an empty page)
    return None


async def test_no_web_page_leaks_to_anyone_outside_its_owner(stack: Stack, practice_a: PracticeA, web: str) -> None:
    """Every staff page refuses no session, a forged or expired one, another practice's staff and a
    client; every portal page refuses staff and another client; nothing of A shows to an outsider;
    and every form without its CSRF token is refused before it runs."""
    a = practice_a
    leaks: list[str] = []
    checked = 0
    async with httpx.AsyncClient(timeout=30) as http:
        spec = (await http.get(f"{web}/openapi.json")).json()
        csrf = (await http.get(f"{web}/sign-in")).cookies["csrftoken"]  # a valid signed token, as a browser gets
        routes = [
            (method.upper(), route, op)
            for route, methods in spec["paths"].items()
            for method, op in methods.items()
            if (method.upper(), route) not in WEB_PUBLIC and not route.startswith(WEB_SKIP_PREFIXES)
        ]
        assert {r for _, r, _ in routes} >= {"/billing", "/bills/{bill_id}", "/portal", "/portal/bills/{bill_id}/pay"}
        for method, route, op in routes:
            url = f"{web}{fill(route, a)}"
            params = {"client_id": a.c1} if "client_id" in str(op.get("parameters")) else {}
            for who, (value, attacks) in web_callers(a, stack).items():
                portal = route.startswith("/portal")
                if who == "client_on_staff_page" and (method, route) in WEB_ANY_SIGNED_IN:
                    continue  # c1 on its own document
                if (attacks == "staff" and portal) or (attacks == "portal" and not portal):
                    continue
                cookies = {"tb_session": value, "csrftoken": csrf} if value else {"csrftoken": csrf}
                http.cookies.clear()
                headers = {**cookie_header(cookies), "x-csrftoken": csrf}
                checked += 1
                try:
                    r = await http.request(method, url, params=params, headers=headers, data={"note": "x"})
                except httpx.TransportError as exc:  # the page crashed the connection: a 5xx by another name
                    leaks.append(f"{who}: {method} {route} → {type(exc).__name__}")
                    continue
                if slow_dependency(r):
                    continue
                allowed = web_expected(who, method, route)
                outsider = who in ("other_practice_staff", "other_client")
                leaked = [m for m in a.markers() if m in r.text] if r.is_success and outsider else []
                wrong = allowed is not None and r.status_code not in allowed
                if allowed == {303} and r.headers.get("location") != "/sign-in":
                    wrong = True
                if wrong or leaked or r.status_code >= 500:
                    leaks.append(f"{who}: {method} {route} → {r.status_code} {r.text[:160]!r} {leaked}")

        # Forms without their CSRF token, as A's own staff and client c1: refused before they run.
        staff, client = issue_token(a.practice_id, "staff"), issue_token(a.practice_id, "client", a.c1)
        forged = "forged-token"
        for method, route, _ in routes:
            if method != "POST":
                continue
            owner = client if route.startswith("/portal") else staff
            url = f"{web}{fill(route, a)}"
            attempts = {
                "no token": ({"tb_session": owner, "csrftoken": csrf}, {}, {"note": "x"}),
                "wrong field": ({"tb_session": owner, "csrftoken": csrf}, {}, {"csrftoken": "x" + csrf}),
                "wrong header": ({"tb_session": owner, "csrftoken": csrf}, {"x-csrftoken": "x" + csrf}, {"note": "x"}),
                "no cookie": ({"tb_session": owner}, {"x-csrftoken": csrf}, {"csrftoken": csrf}),
                "unsigned pair": ({"tb_session": owner, "csrftoken": forged}, {"x-csrftoken": forged},
                                  {"csrftoken": forged}),
            }  # fmt: skip
            for attempt, (cookies, headers, form) in attempts.items():
                http.cookies.clear()
                r = await http.post(url, headers={**cookie_header(cookies), **headers}, data=form)
                checked += 1
                if r.status_code != 403 or "form expired" not in r.text:
                    leaks.append(f"CSRF {attempt}: POST {route} → {r.status_code} {r.text[:160]!r}")

        # A body over the limit, a NUL byte, an id that would reach another upstream route: refused.
        http.cookies.clear()
        cookies = cookie_header({"tb_session": staff, "csrftoken": csrf})
        big = {**cookies, "x-csrftoken": csrf, "content-type": "application/x-www-form-urlencoded"}
        r = await http.post(f"{web}/bills/new", headers=big, content=b"a=" + b"x" * 2_000_000)
        checked += 1
        if r.status_code != 413:
            leaks.append(f"an oversized form → {r.status_code}")
        for path in ("/billing?client_id=%00", f"/bills/{a.ids['bill_id']}%00", "/bills/%3Fstatus=open"):
            r = await http.get(f"{web}{path}", headers=cookies)
            checked += 1
            if r.status_code not in (404, 422) or a.ids["bill_id"] in r.text:
                leaks.append(f"GET {path} → {r.status_code} {r.text[:160]!r}")

        await unchanged(http, stack, a)  # nothing an attacker sent changed A's records
    assert checked > 200
    assert not leaks, f"{len(leaks)} of {checked} web requests leaked or answered wrongly:\n" + "\n".join(leaks)
