"""A week at Rivers Edge Counseling, through the running system (./dev demo).

Upstream scheduling publishes clinicians, clients and a week of sessions to Kafka; the biller
turns unbilled sessions into bills, the PDFs render, the bills are emailed with pay links, and
payments come in at the desk. Everything goes through the public contract only.
"""

import asyncio
import datetime as dt
import json
import mailbox
import os
import sys
import uuid
from pathlib import Path
from typing import Any

import httpx
import stripe
from aiokafka import AIOKafkaProducer

from shared import topics
from shared.auth import issue_token
from shared.kafka import client_options
from shared.money import format_money
from shared.settings import get_settings

ROOT = Path(__file__).resolve().parent.parent
# Where the PDFs go and which practice the week happens at (the e2e test of the demo runs it at a
# practice of its own, into a temporary folder).
OUT = Path(os.environ.get("DEMO_OUT") or ROOT / ".stack" / "demo")
PRACTICE = os.environ.get("DEMO_PRACTICE") or "practice-rivers-edge"
MONDAY = dt.date(2026, 11, 16)
SPLIT_SESSION = 8  # the n-th session of the week, billed half to each of Noah Park's parents


def envelope(event_type: str, data: dict[str, Any]) -> dict[str, Any]:
    return {
        "event_id": str(uuid.uuid4()),
        "event_type": event_type,
        "occurred_at": dt.datetime.now(dt.UTC).isoformat(),
        "practice_id": PRACTICE,
        "schema_version": 1,
        "data": data,
    }


def practice_week(run: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]]:
    """Two clinicians, four clients (one a minor billed to her mother), a week of sessions."""
    clinicians = [
        {"id": "clin-morgan", "first_name": "Dana", "last_name": "Morgan", "credentials": "PhD, LP",
         "npi": "1234567893", "license_number": "PSY-30412", "taxonomy_code": "103T00000X"},
        {"id": "clin-okafor", "first_name": "Chidi", "last_name": "Okafor", "credentials": "LCSW",
         "npi": "1245319599", "license_number": "CSW-11873", "taxonomy_code": "1041C0700X"},
    ]  # fmt: skip
    address = {"line1": "415 NW Flanders St", "city": "Portland", "state": "OR", "postal_code": "97209"}

    def client(key: str, first: str, last: str, dob: str, **extra: Any) -> dict[str, Any]:
        return {"id": f"client-{key}-{run}", "first_name": first, "last_name": last,
                "email": f"{first.lower()}.{last.lower()}.{run}@example.com", "phone": None,
                "date_of_birth": dob, "address": address, "is_minor": False, "guardians": [], **extra}  # fmt: skip

    clients = [
        client("ellis", "Jamie", "Ellis", "1990-07-14"),
        client("reyes", "Marisol", "Reyes", "1984-02-03"),
        client("chen", "Wei", "Chen", "1978-11-21"),
        client("park", "Noah", "Park", "2012-03-09", email=None, is_minor=True, guardians=[
            {"id": "g-grace", "name": "Grace Park", "email": f"grace.park.{run}@example.com",
             "relationship": "mother", "is_billing_contact": True},
            {"id": "g-sam", "name": "Sam Park", "email": f"sam.park.{run}@example.com", "relationship": "father",
             "is_billing_contact": False}]),
    ]  # fmt: skip
    plan = [  # (client index, clinician, weekday, code, description, fee)
        (0, 0, 0, "90837", "Psychotherapy, 60 minutes", 16000),
        (1, 1, 0, "90834", "Psychotherapy, 45 minutes", 13000),
        (2, 0, 1, "90791", "Psychiatric diagnostic evaluation", 22000),
        (3, 1, 1, "90832", "Psychotherapy, 30 minutes", 9000),
        (0, 0, 3, "90837", "Psychotherapy, 60 minutes", 16000),
        (1, 1, 3, "90834", "Psychotherapy, 45 minutes", 13000),
        (3, 1, 4, "90832", "Psychotherapy, 30 minutes", 9000),
        (3, 1, 2, "90834", "Family psychotherapy, 45 minutes", 13001),  # split between the parents (SPLIT_SESSION)
    ]
    sessions = []
    for n, (ci, li, day, code, description, fee) in enumerate(plan, start=1):
        when = MONDAY + dt.timedelta(days=day)
        sessions.append({
            "id": f"sess-{run}-{n}", "client_id": clients[ci]["id"], "clinician_id": clinicians[li]["id"],
            "supervisor_clinician_id": None, "date_of_service": when.isoformat(),
            "starts_at": f"{when.isoformat()}T{9 + n % 6:02d}:00:00-08:00", "duration_minutes": 53,
            "place_of_service": "11", "diagnosis_codes": ["F41.1"], "payer": "self_pay", "attendance": "attended",
            "services": [{"code": code, "description": description, "modifiers": [], "units": 1,
                          "fee_cents": fee, "billable": True}],
        })  # fmt: skip
    return clinicians, clients, sessions


async def wait_for(check, what: str, seconds: float = 30) -> Any:
    """`DEMO_WAIT_SCALE` stretches every wait (bench.bench_web loads the demo on a busy machine)."""
    deadline = asyncio.get_running_loop().time() + seconds * float(os.environ.get("DEMO_WAIT_SCALE", "1"))
    while asyncio.get_running_loop().time() < deadline:
        result = await check()
        if result:
            return result
        await asyncio.sleep(0.25)
    raise SystemExit(f"demo: timed out waiting for {what}")


async def main() -> int:
    settings = get_settings()
    run = uuid.uuid4().hex[:6]
    billing = f"http://127.0.0.1:{settings.billing_port}"
    payments = f"http://127.0.0.1:{settings.payments_port}"
    documents = f"http://127.0.0.1:{settings.documents_port}"
    notifications = f"http://127.0.0.1:{settings.notifications_port}"
    staff = {"Authorization": f"Bearer {issue_token(PRACTICE, 'staff', ttl=dt.timedelta(days=1))}"}
    clinicians, clients, sessions = practice_week(run)

    async with httpx.AsyncClient(timeout=15, headers=staff) as http:
        r = await http.put(f"{billing}/v1/settings", json={
            "name": "Rivers Edge Counseling", "phone": "+1-503-555-0100", "tax_id": "93-1234567",
            "npi": "1234567893", "timezone": "America/Los_Angeles", "currency": "USD",
            "address": {"line1": "1200 SE Morrison St", "line2": "Suite 210", "city": "Portland",
                        "state": "OR", "postal_code": "97214"},
            "default_due_days": 30, "footer_comment": "Thank you. Questions? billing@riversedge.example",
        })  # fmt: skip
        r.raise_for_status()
        print(f"billing: practice settings saved for {r.json()['name']}")

        producer = AIOKafkaProducer(**client_options(settings), acks="all")
        await producer.start()
        try:

            async def send(event_type: str, key: str, data: dict[str, Any]) -> None:
                env = envelope(event_type, data)
                headers = [("event-type", event_type.encode()), ("event-id", env["event_id"].encode())]
                await producer.send_and_wait(settings.topic(topics.SCHEDULING), json.dumps(env).encode(),
                                             key=key.encode(), headers=headers)  # fmt: skip

            for c in clinicians:
                await send("ClinicianUpserted", c["id"], {"clinician": c})
            for c in clients:
                await send("ClientUpserted", c["id"], {"client": c})
            for s in sessions:
                await send("SessionCompleted", s["client_id"], {"session": s})
        finally:
            await producer.stop()
        print(f"scheduling: published {len(clinicians)} clinicians, {len(clients)} clients, "
              f"{len(sessions)} sessions (week of {MONDAY})")  # fmt: skip

        async def unbilled() -> list[dict[str, Any]]:
            items = (await http.get(f"{billing}/v1/unbilled-sessions")).json()["items"]
            mine = [i for i in items if i["session_id"].startswith(f"sess-{run}-")]
            return mine if len(mine) == len(sessions) else []

        items = await wait_for(unbilled, "sessions to show as unbilled")
        print(f"billing: {len(items)} unbilled sessions, {format_money(sum(i['amount_cents'] for i in items))}")

        bills = []
        for c in clients:
            split_session = f"sess-{run}-{SPLIT_SESSION}"
            ids = [i["session_id"] for i in items if i["client_id"] == c["id"] and i["session_id"] != split_session]
            r = await http.post(f"{billing}/v1/bills", json={"client_id": c["id"], "session_ids": ids,
                                                               "responsibility": "client"})  # fmt: skip
            r.raise_for_status()
            bill = r.json()
            bills.append(bill)
            print(f"  bill #{bill['number']} for {c['first_name']} {c['last_name']}: "
                  f"{format_money(bill['total_cents'])}, due {bill['due_date']}")  # fmt: skip

        for bill in bills:

            async def document_id(bill=bill) -> str | None:
                return (await http.get(f"{billing}/v1/bills/{bill['id']}")).json().get("document_id")

            bill["document_id"] = await wait_for(document_id, f"the PDF of bill #{bill['number']}")
            pdf = (await http.get(f"{documents}/v1/documents/{bill['document_id']}/pdf")).content
            path = OUT / f"bill-{bill['number']}.pdf"
            path.write_bytes(pdf)
        print(f"documents: {len(bills)} PDFs rendered, saved to {OUT}/bill-N.pdf "
              f"(or GET {documents}/v1/documents/<id>/pdf)")  # fmt: skip

        for bill in bills:
            (await http.post(f"{billing}/v1/bills/{bill['id']}/share", json={})).raise_for_status()

        async def emails_sent() -> list[dict[str, Any]]:
            emails = []
            for c in clients:
                r = await http.get(f"{notifications}/v1/emails", params={"client_id": c["id"]})
                emails += [e for e in r.json()["items"] if e["kind"] == "bill_shared"]
            failed = [e for e in emails if e["status"] == "failed"]
            if failed:
                raise SystemExit(f"demo: email to {failed[0]['to']} failed: {failed[0]['last_error']}")
            sent = [e for e in emails if e["status"] == "sent"]
            return sent if len(sent) >= len(bills) else []

        sent = await wait_for(emails_sent, "the bill emails")
        for e in sent:
            print(f"  emailed {e['to']}: {e['subject']}")
        maildir = ROOT / ".stack" / "mail"
        print(f"notifications: {len(sent)} emails accepted by SMTP, PDFs attached; read them in {maildir}/new "
              f"(Maildir; {len(mailbox.Maildir(maildir, create=False))} messages there)")  # fmt: skip

        first = bills[0]
        r = await http.post(f"{payments}/v1/payments", json={
            "client_id": first["client_id"], "bill_id": first["id"], "payer": "client", "method": "cash",
            "amount_cents": first["balance_cents"]},
            headers={**staff, "Idempotency-Key": f"demo-{run}-cash"})  # fmt: skip
        r.raise_for_status()
        second = bills[1]
        r = await http.post(f"{payments}/v1/payments", json={
            "client_id": second["client_id"], "bill_id": second["id"], "payer": "client", "method": "check",
            "reference": "check 1042", "amount_cents": 5000})  # fmt: skip
        r.raise_for_status()

        async def settled() -> dict[str, Any] | None:
            b1 = (await http.get(f"{billing}/v1/bills/{first['id']}")).json()
            b2 = (await http.get(f"{billing}/v1/bills/{second['id']}")).json()
            return {"first": b1, "second": b2} if b1["status"] == "paid" and b2["paid_cents"] == 5000 else None

        result = await wait_for(settled, "payments to reach the bills")
        b1, b2 = result["first"], result["second"]
        print(f"payments: cash {format_money(b1['paid_cents'])} on bill #{b1['number']} → {b1['status']}, "
              f"balance {format_money(b1['balance_cents'])}")  # fmt: skip
        print(f"          check {format_money(b2['paid_cents'])} on bill #{b2['number']} → {b2['status']}, "
              f"balance {format_money(b2['balance_cents'])}")  # fmt: skip
        await rest_of_the_month(http, settings, run, bills, clients, billing, payments)
        await second_round(http, run, bills, clients, billing, documents, notifications)
        await payment_plan(http, settings, bills, clients, billing, payments)
    web = f"http://localhost:{settings.web_port}"
    print(f"\nWeb console: {web}/ (staff billing console and client portal)")
    print(f"  sign in as the practice's biller: {web}/dev/sign-in?practice_id={PRACTICE} (local sign-in page)")
    print(f"  or directly: {web}/sign-in?token={issue_token(PRACTICE, 'staff', ttl=dt.timedelta(hours=12))}")
    print(f"APIs: billing {billing}/docs, payments {payments}/docs, documents {documents}/docs, "
          f"notifications {notifications}/docs. Stop everything with ./dev stop.")  # fmt: skip
    return 0


async def rest_of_the_month(
    http: httpx.AsyncClient,
    settings: Any,
    run: str,
    bills: list[dict[str, Any]],
    clients: list[dict[str, Any]],
    billing: str,
    payments: str,
) -> None:
    """A card on file charged through Stripe (localstripe here), a refund that reopens a bill,
    a statement and a superbill."""
    third, first = bills[2], bills[0]
    stripe_client = stripe.StripeClient(
        settings.stripe_api_key, base_addresses={"api": settings.stripe_api_base}, http_client=stripe.HTTPXClient()
    )
    method = await stripe_client.v1.payment_methods.create_async(
        {"type": "card", "card": {"number": "4242424242424242", "exp_month": 12, "exp_year": 2031, "cvc": "123"}}
    )
    r = await http.post(f"{payments}/v1/clients/{third['client_id']}/cards", json={
        "stripe_payment_method_id": method.id, "make_default": True,
        "authorization": {"signed_by": "Wei Chen", "signed_at": dt.datetime.now(dt.UTC).isoformat(),
                          "method": "portal", "consent_version": "v1"}})  # fmt: skip
    r.raise_for_status()
    card = r.json()
    r = await http.post(f"{payments}/v1/payments", json={
        "client_id": third["client_id"], "bill_id": third["id"], "payer": "client", "method": "card",
        "online": True, "card_id": card["id"], "amount_cents": third["balance_cents"]})  # fmt: skip
    r.raise_for_status()
    charge = r.json()
    print(f"payments: card {card.get('brand', '')} ••{card.get('last4', '')} charged through Stripe "
          f"({charge.get('stripe_payment_intent_id')}): {charge['status']}")  # fmt: skip

    payment = (await http.get(f"{payments}/v1/payments", params={"bill_id": first["id"]})).json()["items"][0]
    r = await http.post(f"{payments}/v1/payments/{payment['id']}/refunds",
                        json={"amount_cents": 2000, "reason": "session shortened"})  # fmt: skip
    r.raise_for_status()

    async def reopened() -> dict[str, Any] | None:
        bill = (await http.get(f"{billing}/v1/bills/{first['id']}")).json()
        return bill if bill["status"] == "open" and bill["balance_cents"] == 2000 else None

    bill = await wait_for(reopened, "the refund to reopen the bill")
    print(f"payments: refunded {format_money(2000)} of the cash payment → bill #{bill['number']} "
          f"{bill['status']} again, balance {format_money(bill['balance_cents'])}")  # fmt: skip

    r = await http.post(f"{billing}/v1/statements", json={
        "client_id": first["client_id"], "start_date": "2026-11-01", "end_date": "2026-11-30"})  # fmt: skip
    r.raise_for_status()
    statement = r.json()
    print(f"billing: statement #{statement['number']} for November: opening "
          f"{format_money(statement['opening_balance_cents'])}, closing "
          f"{format_money(statement['closing_balance_cents'])}")  # fmt: skip
    r = await http.post(f"{billing}/v1/superbills", json={
        "client_id": third["client_id"], "start_date": "2026-11-01", "end_date": "2026-11-30"})  # fmt: skip
    if r.status_code == 201:
        print(f"billing: superbill #{r.json()['number']} for {clients[2]['first_name']} {clients[2]['last_name']} "
              "(CMS-1500 fields checked) → documents renders it")  # fmt: skip
    else:
        print(f"billing: superbill refused: {r.json()['error']['message']}")


async def save_pdf(http: httpx.AsyncClient, billing: str, documents: str, path: str, name: str) -> Path:
    """Wait for the newest PDF of a billing record (GET `path` shows its document_id) and save it."""

    async def document_id() -> str | None:
        return (await http.get(f"{billing}{path}")).json().get("document_id")

    doc = await wait_for(document_id, f"the PDF of {name}")
    out = OUT / f"{name}.pdf"
    out.write_bytes((await http.get(f"{documents}/v1/documents/{doc}/pdf")).content)
    return out


async def second_round(
    http: httpx.AsyncClient, run: str, bills: list[dict[str, Any]], clients: list[dict[str, Any]], billing: str,
    documents: str, notifications: str,
) -> None:  # fmt: skip
    """A write-off, a session split between two parents, and a Good Faith Estimate."""
    second = bills[1]
    r = await http.post(f"{billing}/v1/bills/{second['id']}/adjustments",
                        json={"amount_cents": 3000, "kind": "write_off", "reason": "sliding-scale fee"})  # fmt: skip
    r.raise_for_status()
    bill = (await http.get(f"{billing}/v1/bills/{second['id']}")).json()
    print(f"billing: wrote off {format_money(3000)} on bill #{bill['number']} (sliding scale) → adjusted "
          f"{format_money(bill['adjusted_cents'])}, balance {format_money(bill['balance_cents'])}, "
          f"{bill['status']}")  # fmt: skip

    park = clients[3]
    split = [{"party": "guardian:g-grace", "percent": 50}, {"party": "guardian:g-sam", "percent": 50}]
    body = {"client_id": park["id"], "session_ids": [f"sess-{run}-{SPLIT_SESSION}"], "split": split}
    r = await http.post(f"{billing}/v1/bills", json=body)
    r.raise_for_status()
    parts = r.json()["items"]
    for part in parts:
        (await http.post(f"{billing}/v1/bills/{part['id']}/share", json={})).raise_for_status()
        path = await save_pdf(http, billing, documents, f"/v1/bills/{part['id']}", f"bill-{part['number']}")
        print(f"billing: split bill #{part['number']} to {part['bill_to']['name']} ({part['bill_to']['email']}) for "
              f"{part['patient']['name']}: {format_money(part['total_cents'])} of "
              f"{format_money(sum(p['total_cents'] for p in parts))}, code {part['access_code']} "
              f"→ {path.name}")  # fmt: skip

    async def split_emails() -> list[dict[str, Any]]:
        r = await http.get(f"{notifications}/v1/emails", params={"client_id": park["id"]})
        mine = [e for e in r.json()["items"] if any(f"#{p['number']}" in e["subject"] for p in parts)]
        failed = [e for e in mine if e["status"] == "failed"]
        if failed:
            raise SystemExit(f"demo: email to {failed[0]['to']} failed: {failed[0]['last_error']}")
        sent = [e for e in mine if e["status"] == "sent"]
        return sent if len(sent) >= len(parts) else []

    for e in await wait_for(split_emails, "the split bills' emails", 60):
        print(f"  emailed {e['to']}: {e['subject']} (their own pay link, access code and PDF)")

    chen = clients[2]
    r = await http.post(f"{billing}/v1/good-faith-estimates", json={
        "client_id": chen["id"], "clinician_id": "clin-morgan", "period_start": "2026-11-01",
        "period_end": "2027-04-30", "diagnosis_codes": ["F41.1"], "renew_yearly": True,
        "items": [{"code": "90791", "description": "Psychiatric diagnostic evaluation", "fee_cents": 22000,
                   "quantity": 1},
                  {"code": "90837", "description": "Psychotherapy, 60 minutes", "fee_cents": 16000, "quantity": 20}],
    })  # fmt: skip
    r.raise_for_status()
    estimate = r.json()
    (await http.post(f"{billing}/v1/good-faith-estimates/{estimate['id']}/share", json={})).raise_for_status()
    path = await save_pdf(http, billing, documents, f"/v1/good-faith-estimates/{estimate['id']}",
                          f"good-faith-estimate-{estimate['number']}")  # fmt: skip
    print(f"billing: Good Faith Estimate #{estimate['number']} for {chen['first_name']} {chen['last_name']}: "
          f"{format_money(estimate['total_cents'])} for {estimate['period_start']} to {estimate['period_end']}, "
          f"billed so far {format_money(estimate['billed_cents'])}; shared, PDF with the dispute notice "
          f"→ {path.name}")  # fmt: skip


async def payment_plan(
    http: httpx.AsyncClient, settings: Any, bills: list[dict[str, Any]], clients: list[dict[str, Any]], billing: str,
    payments: str,
) -> None:  # fmt: skip
    """The Parks' bill paid in three monthly installments on Grace's card; the first one charged."""
    park, bill = clients[3], bills[3]
    stripe_client = stripe.StripeClient(
        settings.stripe_api_key, base_addresses={"api": settings.stripe_api_base}, http_client=stripe.HTTPXClient()
    )
    method = await stripe_client.v1.payment_methods.create_async(
        {"type": "card", "card": {"number": "4242424242424242", "exp_month": 12, "exp_year": 2031, "cvc": "123"}}
    )
    r = await http.post(f"{payments}/v1/clients/{park['id']}/cards", json={
        "stripe_payment_method_id": method.id, "holder": "billing_contact",
        "authorization": {"signed_by": "Grace Park", "signed_at": dt.datetime.now(dt.UTC).isoformat(),
                          "method": "portal", "consent_version": "v1"}})  # fmt: skip
    r.raise_for_status()
    start = dt.datetime.now(dt.UTC).date()
    r = await http.post(f"{payments}/v1/clients/{park['id']}/payment-plans", json={
        "bill_ids": [bill["id"]], "installments": 3, "frequency": "monthly", "start_date": start.isoformat(),
        "card_id": r.json()["id"]})  # fmt: skip
    if r.status_code != 201:
        raise SystemExit(f"demo: payment plan refused: {r.json()['error']['message']}")
    plan = r.json()
    dates = ", ".join(f"{i['due_date']} {format_money(i['amount_cents'])}" for i in plan["schedule"])
    print(f"payments: payment plan for bill #{bill['number']} ({format_money(plan['total_cents'])}): {dates}; "
          "the schedule is emailed to Grace Park")  # fmt: skip
    # the nightly autopay run, as of noon (Pacific) on the first due date (payments' own nightly loop
    # may have charged it already: the installment is charged once either way)
    r = await http.post(f"{payments}/v1/autopay/run", json={"as_of": f"{start.isoformat()}T20:00:00Z"})
    r.raise_for_status()

    async def first_installment() -> dict[str, Any] | None:
        seen = (await http.get(f"{payments}/v1/payment-plans/{plan['id']}")).json()["schedule"][0]
        return seen if seen["status"] in ("paid", "failed", "skipped") else None

    first = await wait_for(first_installment, "the plan's first installment to be charged")
    if first["status"] != "paid":
        raise SystemExit(f"demo: the plan's first installment was not paid: {first}")
    print(f"payments: installment 1 of {len(plan['schedule'])} charged to Grace Park's card by the autopay run: "
          f"{format_money(first['amount_cents'])} ({first['status']}, payment {first['payment_id']})")  # fmt: skip

    async def first_paid() -> dict[str, Any] | None:
        seen = (await http.get(f"{billing}/v1/bills/{bill['id']}")).json()
        return seen if seen["paid_cents"] >= first["amount_cents"] else None

    seen = await wait_for(first_paid, "the first installment to reach the bill")
    print(f"billing: bill #{seen['number']} paid {format_money(seen['paid_cents'])}, "
          f"balance {format_money(seen['balance_cents'])}; the rest on the plan's next dates")  # fmt: skip


if __name__ == "__main__":
    OUT.mkdir(parents=True, exist_ok=True)
    sys.exit(asyncio.run(main()))
