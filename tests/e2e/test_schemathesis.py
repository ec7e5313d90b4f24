"""Property-based requests (Schemathesis) from each running service's OpenAPI document, as staff of
a practice of their own (and, on the portal's pages, as one of its clients): no answer is a 5xx and
every answer matches its documented schema. The examples per operation are bounded
(SCHEMATHESIS_EXAMPLES) to keep the run to a few minutes.

Nothing is left out for being awkward: the card routes and the pay page run against localstripe.
Half of the generated card payment method ids are swapped for a real one (a 4242 card made in
localstripe for that request), and half of the pay page's bill number and access code for a real
bill's, so the success paths are judged as well as the refusals. The pay page's guesses come
through a trusted proxy from an address of their own (X-Forwarded-For; the stack trusts 127.0.0.1),
so its per-IP lockout never reaches the other tests' payments from 127.0.0.1."""

import json
import os
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import schemathesis
import stripe
from aiokafka import AIOKafkaProducer
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis.specs.openapi.checks import response_schema_conformance

from shared import topics
from shared.admin import SERVICES
from shared.auth import issue_token
from tests.conftest import eventually, example_event
from tests.processes import Stack

pytestmark = pytest.mark.e2e

EXAMPLES = int(os.environ.get("SCHEMATHESIS_EXAMPLES", "15"))
CHECKS = [response_schema_conformance]


def no_server_error(response: Any) -> None:
    """No 5xx, except the documented 503 `stripe_unavailable` of a Stripe call that timed out
    (localstripe on a machine shared by many test runs is slow at times): a fault of a dependency,
    answered as documented, not of our code."""
    if response.status_code == 503 and "stripe_unavailable" in response.text:
        return
    assert response.status_code < 500, f"{response.status_code}: {response.text[:500]}"


FUZZ_IP = "198.51.100.77"  # TEST-NET-2: the pay page's guesses come from here, behind the trusted proxy
PAY_ROUTES = ("/pay", "/v1/public/")
# The web service's local stand-ins for Stripe's servers (only mounted with localstripe) and its
# local sign-in picker (off in the e2e stack) are not the product's pages.
WEB_SKIP = ("/_localstripe", "/dev/")


@dataclass
class FuzzPractice:
    practice_id: str
    client_id: str
    bill: dict[str, Any]


@pytest.fixture(scope="module")
async def fuzz_practice(stack: Stack, kafka_producer: AIOKafkaProducer) -> FuzzPractice:
    """A practice of the fuzzer's own with a client and an open bill the pay page can open."""
    suffix = uuid.uuid4().hex[:8]
    pid, cid = f"practice-fuzz-{suffix}", f"client-fuzz-{suffix}"
    client = example_event("ClientUpserted-adult")
    client["practice_id"] = pid
    client["data"]["client"].update(id=cid, email=f"{cid}@example.com")
    session = example_event("SessionCompleted-self-pay")
    session["practice_id"] = pid
    session["data"]["session"].update(id=f"sess-{suffix}", client_id=cid)
    for event in (client, session):
        headers = [("event-type", event["event_type"].encode()), ("event-id", event["event_id"].encode())]
        topic = stack.settings.topic(topics.SCHEDULING)
        await kafka_producer.send_and_wait(topic, json.dumps(event).encode(), key=cid.encode(), headers=headers)
    headers = {"Authorization": f"Bearer {issue_token(pid, 'staff')}"}
    async with httpx.AsyncClient(timeout=20, headers=headers) as http:
        billing = stack.url("billing")

        async def unbilled() -> bool:
            r = await http.get(f"{billing}/v1/unbilled-sessions", params={"client_id": cid})
            return bool(r.json()["items"])

        await eventually(unbilled, timeout=60)
        r = await http.post(f"{billing}/v1/bills", json={"client_id": cid, "session_ids": [f"sess-{suffix}"]})
        assert r.status_code == 201, r.text
        bill = r.json()

        async def known_to_payments() -> bool:  # the pay page reads payments' copy of the bill
            body = {"practice_id": pid, "bill_number": bill["number"], "access_code": bill["access_code"]}
            return (await http.post(f"{stack.url('payments')}/v1/public/pay/lookup", json=body)).status_code == 200

        await eventually(known_to_payments, timeout=60)
    return FuzzPractice(pid, cid, bill)


def real_values(stack: Stack, fuzz: FuzzPractice) -> Callable[[schemathesis.Case], None]:
    """A case hook: in about half the cases, a real card (a payment method localstripe made from
    4242 4242 4242 4242) and the real bill's number and code in place of the generated ones."""
    client = stripe.StripeClient(stack.settings.stripe_api_key, base_addresses={"api": stack.settings.stripe_api_base})

    def swap(case: schemathesis.Case) -> None:
        body = case.body if isinstance(case.body, dict) else None
        seed = len(json.dumps(case.body, default=str)) + len(str(case.path_parameters)) + len(str(case.query))
        if seed % 2:
            return
        if body is not None and "stripe_payment_method_id" in body:
            card = {"number": "4242424242424242", "exp_month": 12, "exp_year": 2031, "cvc": "123"}
            body["stripe_payment_method_id"] = client.v1.payment_methods.create({"type": "card", "card": card}).id
        if body is not None and "access_code" in body:
            body.update(practice_id=fuzz.practice_id, bill_number=fuzz.bill["number"],
                        access_code=fuzz.bill["access_code"])  # fmt: skip
        if case.operation.path == "/pay" and isinstance(case.query, dict):
            case.query.update(practice=fuzz.practice_id, bill=str(fuzz.bill["number"]))
        if case.path_parameters and "client_id" in case.path_parameters:
            case.path_parameters["client_id"] = fuzz.client_id

    return swap


def exercise_all(
    schema: Any,
    headers_for: Callable[[str], dict[str, str]],
    prepare: Callable[[schemathesis.Case], None],
    skip: tuple[str, ...] = (),
) -> tuple[int, list[str]]:
    """Every operation of `schema` (but those under `skip`), EXAMPLES generated cases each."""
    failures: list[str] = []
    operations = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        if operation.path.startswith(skip):
            continue
        operations += 1

        @given(case=operation.as_strategy())
        @settings(
            max_examples=EXAMPLES, deadline=None, database=None, derandomize=True,
            suppress_health_check=list(HealthCheck), phases=[Phase.explicit, Phase.generate],
        )  # fmt: skip
        def exercise(case: schemathesis.Case) -> None:
            prepare(case)
            headers = headers_for(case.operation.path)
            response = case.call(headers=headers, timeout=30)
            no_server_error(response)
            case.validate_response(response, checks=CHECKS, headers=headers)

        try:
            exercise()
        except Exception as exc:  # collect every operation's failure, not only the first
            failures.append(f"{operation.method.upper()} {operation.path}: {exc}"[:1500])
    return operations, failures


@pytest.mark.parametrize("service", SERVICES)
def test_generated_requests_get_documented_answers(stack: Stack, fuzz_practice: FuzzPractice, service: str) -> None:
    schema = schemathesis.openapi.from_url(f"{stack.url(service)}/openapi.json")
    staff = {"Authorization": f"Bearer {issue_token(fuzz_practice.practice_id, 'staff')}"}

    def headers_for(path: str) -> dict[str, str]:
        return {**staff, "X-Forwarded-For": FUZZ_IP} if path.startswith(PAY_ROUTES) else staff

    operations, failures = exercise_all(schema, headers_for, real_values(stack, fuzz_practice))
    assert operations > 0
    assert not failures, f"{len(failures)} operations failed:\n\n" + "\n\n".join(failures)


def test_generated_web_requests_get_no_server_error(stack: Stack, web: str, fuzz_practice: FuzzPractice) -> None:
    """The staff console as the practice's staff and the portal as its client, each form with its
    CSRF token (a page's cookie and the header htmx sends), so the pages themselves are reached."""
    csrf = httpx.get(f"{web}/sign-in").cookies["csrftoken"]
    staff = issue_token(fuzz_practice.practice_id, "staff")
    client = issue_token(fuzz_practice.practice_id, "client", fuzz_practice.client_id)

    def headers_for(path: str) -> dict[str, str]:
        session = client if path.startswith("/portal") else staff
        return {"Cookie": f"tb_session={session}; csrftoken={csrf}", "x-csrftoken": csrf}

    schema = schemathesis.openapi.from_url(f"{web}/openapi.json")
    operations, failures = exercise_all(schema, headers_for, real_values(stack, fuzz_practice), skip=WEB_SKIP)
    assert operations > 30
    assert not failures, f"{len(failures)} web operations failed:\n\n" + "\n\n".join(failures)
