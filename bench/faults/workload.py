"""A seeded practice month through the contract, and what it must have led to (the model).

Clients come in three kinds: `desk` (cash and check at the front desk, refunds, cancelled
bills), `card` (a card on file charged online through Stripe, refunds through Stripe, refunds
made in the Stripe dashboard reported by webhook) and `autopay` (charged by the nightly run).
Every inbound event type is sent with duplicates and out of order. Every write carries an
Idempotency-Key and is retried until it gets a real answer, so the model knows exactly what
each bill's paid amount must end up as."""

import asyncio
import datetime as dt
import random
import uuid
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import stripe

from bench.faults.client import Api, Upstream, envelope, webhook_payload

MONTH = dt.date(2026, 10, 1)
CODES = [
    ("90837", "Psychotherapy, 60 minutes", 16000),
    ("90834", "Psychotherapy, 45 minutes", 13000),
    ("90832", "Psychotherapy, 30 minutes", 9000),
    ("90791", "Diagnostic evaluation", 22000),
]
CLINICIANS = [
    {
        "id": "clin-morgan",
        "first_name": "Dana",
        "last_name": "Morgan",
        "credentials": "PhD",
        "npi": "1234567893",
        "license_number": "PSY-1",
        "taxonomy_code": "103T00000X",
    },
    {
        "id": "clin-okafor",
        "first_name": "Chidi",
        "last_name": "Okafor",
        "credentials": "LCSW",
        "npi": "1245319599",
        "license_number": "CSW-1",
        "taxonomy_code": "1041C0700X",
    },
]


@dataclass
class ExpectedBill:
    id: str
    client_id: str
    total_cents: int
    paid_cents: int = 0
    cancelled: bool = False
    shared: bool = False
    autopay: bool = False
    number: int = 0


@dataclass(eq=False)
class Client:
    id: str
    kind: str  # desk | card | autopay | canary
    email: str
    card_id: str | None = None
    sessions: int = 0


@dataclass
class Model:
    bills: dict[str, ExpectedBill] = field(default_factory=dict)
    # payment id → (bill id, amount, refunded so far, online)
    payments: dict[str, list[Any]] = field(default_factory=dict)
    voided: set[str] = field(default_factory=set)
    billed_sessions: set[str] = field(default_factory=set)
    statements: list[str] = field(default_factory=list)
    poison: int = 0
    ops: Counter = field(default_factory=Counter)


def client_event(practice_id: str, c: Client) -> dict[str, Any]:
    first = c.id.split("-")[1].title()
    return envelope(
        practice_id,
        "ClientUpserted",
        {
            "client": {
                "id": c.id,
                "first_name": first,
                "last_name": "Fault",
                "email": c.email,
                "phone": None,
                "date_of_birth": "1985-04-02",
                "is_minor": False,
                "guardians": [],
                "address": {"line1": "1 Main St", "city": "Portland", "state": "OR", "postal_code": "97209"},
            }
        },
    )


def session_event(
    practice_id: str, session_id: str, client_id: str, day: dt.date, rng: random.Random
) -> dict[str, Any]:
    code, description, fee = rng.choice(CODES)
    return envelope(
        practice_id,
        "SessionCompleted",
        {
            "session": {
                "id": session_id,
                "client_id": client_id,
                "clinician_id": rng.choice(CLINICIANS)["id"],
                "supervisor_clinician_id": None,
                "date_of_service": day.isoformat(),
                "starts_at": f"{day.isoformat()}T10:00:00-07:00",
                "duration_minutes": 53,
                "place_of_service": "11",
                "diagnosis_codes": ["F41.1"],
                "payer": "self_pay",
                "attendance": "attended",
                "services": [
                    {
                        "code": code,
                        "description": description,
                        "modifiers": [],
                        "units": 1,
                        "fee_cents": fee,
                        "billable": True,
                    }
                ],
            }
        },
    )


@dataclass
class Workload:
    api: Api
    upstream: Upstream
    rng: random.Random
    stripe_direct: stripe.StripeClient
    webhook_secret: str
    model: Model = field(default_factory=Model)
    clients: list[Client] = field(default_factory=list)

    @property
    def practice(self) -> str:
        return self.api.practice_id

    async def setup(self, per_kind: int = 3) -> None:
        r = await self.api.put(
            "billing",
            "/v1/settings",
            {
                "name": "Fault Tolerant Counseling",
                "tax_id": "93-1234567",
                "npi": "1234567893",
                "timezone": "America/Los_Angeles",
                "currency": "USD",
                "default_due_days": 30,
                "address": {"line1": "1 SE Morrison St", "city": "Portland", "state": "OR", "postal_code": "97214"},
            },
        )
        r.raise_for_status()
        run = uuid.uuid4().hex[:6]
        for kind in ("desk", "card", "autopay"):
            for n in range(per_kind):
                self.clients.append(Client(f"client-{kind}{n}-{run}", kind, f"{kind}{n}.{run}@example.com"))
        # Reordered on purpose: sessions may arrive before their client and clinician.
        for c in CLINICIANS:
            await self.upstream.send(envelope(self.practice, "ClinicianUpserted", {"clinician": c}), c["id"])
        for c in self.clients:
            await self.upstream.send(client_event(self.practice, c), c.id)
        for c in self.clients:
            if c.kind in ("card", "autopay"):
                c.card_id = await self.store_card(c)
            if c.kind == "autopay":
                r = await self.api.put(
                    "payments", f"/v1/clients/{c.id}/autopay", {"enabled": True, "card_id": c.card_id}
                )
                assert r.status_code == 200, r.text

    async def store_card(self, c: Client) -> str:
        pm = await self.stripe_direct.v1.payment_methods.create_async(
            {"type": "card", "card": {"number": "4242424242424242", "exp_month": 12, "exp_year": 2031, "cvc": "123"}}
        )
        r = await self.api.post(
            "payments",
            f"/v1/clients/{c.id}/cards",
            {
                "stripe_payment_method_id": pm.id,
                "make_default": True,
                "authorization": {
                    "signed_by": c.id,
                    "signed_at": dt.datetime.now(dt.UTC).isoformat(),
                    "method": "portal",
                },
            },
            key=f"card-{c.id}",
        )
        assert r.status_code == 201, r.text
        self.model.ops["card stored"] += 1
        return r.json()["id"]

    # --- one day of the month ---------------------------------------------------------------
    async def day(self, n: int) -> None:
        day = MONTH + dt.timedelta(days=n % 28)
        todays = await self.sessions(n, day)
        await asyncio.gather(*(self.client_day(c, ids, n) for c, ids in todays.items()))
        if n % 3 == 2:
            await self.autopay_night(day)
        if n % 7 == 6:
            for c in self.rng.sample(self.clients, 2):
                await self.statement(c, day)

    async def sessions(self, n: int, day: dt.date) -> dict[Client, list[str]]:
        """The day's sessions, with duplicates, a re-sent client, a voided one, all shuffled."""
        events: list[tuple[dict[str, Any] | bytes, str]] = []
        todays: dict[Client, list[str]] = {}
        for c in self.rng.sample(self.clients, 3):
            c.sessions += 1
            sid = f"sess-{c.id}-{c.sessions}"
            ev = session_event(self.practice, sid, c.id, day, self.rng)
            events.append((ev, c.id))
            if self.rng.random() < 0.3:
                events.append((ev, c.id))  # redelivered as is
            if self.rng.random() < 0.2:
                events.append((client_event(self.practice, c), c.id))  # upstream re-sends the client
            if self.rng.random() < 0.1:
                self.model.voided.add(sid)
                events.append(
                    (envelope(self.practice, "SessionVoided", {"session_id": sid, "reason": "entered in error"}), c.id)
                )
            else:
                todays.setdefault(c, []).append(sid)
        if self.rng.random() < 0.3:
            clinician = self.rng.choice(CLINICIANS)
            events.append((envelope(self.practice, "ClinicianUpserted", {"clinician": clinician}), clinician["id"]))
        if self.rng.random() < 0.15:
            self.model.poison += 1
            events.append((b'{"event_type": "SessionCompleted", "broken', f"poison-{n}"))
        self.rng.shuffle(events)
        for event, key in events:
            await self.upstream.send(event, key)
            self.model.ops["event published"] += 1
        return todays

    async def client_day(self, c: Client, session_ids: list[str], n: int) -> None:
        await self.wait_unbilled(c, session_ids)
        r = await self.api.post(
            "billing",
            "/v1/bills",
            {"client_id": c.id, "session_ids": session_ids, "responsibility": "client"},
            key=f"bill-{c.id}-{n}",
        )
        assert r.status_code == 201, r.text
        bill = r.json()
        self.model.billed_sessions.update(session_ids)
        expected = ExpectedBill(
            bill["id"], c.id, bill["client_owes_cents"], autopay=c.kind == "autopay", number=bill["number"]
        )
        self.model.bills[bill["id"]] = expected
        self.model.ops["bill created"] += 1
        if c.kind == "desk" and self.rng.random() < 0.1:
            r = await self.api.post("billing", f"/v1/bills/{bill['id']}/cancel", {}, key=f"cancel-{bill['id']}")
            assert r.status_code == 200, r.text
            expected.cancelled = True
            self.model.billed_sessions.difference_update(session_ids)  # back on Unbilled
            self.model.ops["bill cancelled"] += 1
            return
        if self.rng.random() < 0.7:
            r = await self.api.post("billing", f"/v1/bills/{bill['id']}/share", {}, key=f"share-{bill['id']}")
            assert r.status_code in (200, 202), r.text
            expected.shared = True
            self.model.ops["bill shared"] += 1
        if c.kind == "desk":
            await self.desk_payments(c, expected)
        elif c.kind == "card":
            await self.card_payments(c, expected)

    async def wait_unbilled(self, c: Client, session_ids: list[str], seconds: float = 240, poll: float = 0.3) -> None:
        deadline = asyncio.get_running_loop().time() + seconds
        while True:
            items = await self.api.all_items("billing", "/v1/unbilled-sessions", client_id=c.id)
            if set(session_ids) <= {i["session_id"] for i in items}:
                return
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"sessions {session_ids} never became unbilled")
            await asyncio.sleep(poll)

    async def pay(self, c: Client, bill: ExpectedBill, amount: int, method: str, online: bool = False) -> str | None:
        body: dict[str, Any] = {
            "client_id": c.id,
            "bill_id": bill.id,
            "payer": "client",
            "method": method,
            "amount_cents": amount,
        }
        if online:
            body |= {"online": True, "card_id": c.card_id}
        if method == "check":
            body["reference"] = f"check {self.rng.randint(1000, 9999)}"
        key = f"pay-{uuid.UUID(int=self.rng.getrandbits(128))}"
        r = await self.api.post("payments", "/v1/payments", body, key=key)
        for _ in range(1200):  # a bill created a moment ago reaches payments eventually (broker down...)
            if r.status_code != 404:
                break
            await asyncio.sleep(0.2)  # after payments' own wait for the bill (PAYMENTS_BILL_WAIT_MS)
            r = await self.api.post("payments", "/v1/payments", body, key=key)
        assert r.status_code == 201, r.text
        payment = r.json()
        bill.paid_cents += amount
        self.model.payments[payment["id"]] = [bill.id, amount, 0, online]
        self.model.ops[f"{'online card' if online else method} payment"] += 1
        return payment["id"]

    async def refund(self, payment_id: str, amount: int) -> None:
        r = await self.api.post(
            "payments",
            f"/v1/payments/{payment_id}/refunds",
            {"amount_cents": amount, "reason": "fault workload"},
            key=f"refund-{payment_id}-{amount}",
        )
        assert r.status_code == 201, r.text
        entry = self.model.payments[payment_id]
        entry[2] += amount
        self.model.bills[entry[0]].paid_cents -= amount
        self.model.ops["refund"] += 1

    async def desk_payments(self, c: Client, bill: ExpectedBill) -> None:
        if self.rng.random() < 0.3:
            return
        full = self.rng.random() < 0.6
        amount = bill.total_cents if full else self.rng.randint(1, bill.total_cents // 100) * 100
        payment_id = await self.pay(c, bill, amount, self.rng.choice(["cash", "check"]))
        if payment_id and self.rng.random() < 0.25:
            await self.refund(payment_id, self.rng.randint(1, amount // 100) * 100)

    async def card_payments(self, c: Client, bill: ExpectedBill) -> None:
        payment_id = await self.pay(c, bill, bill.total_cents, "card", online=True)
        if payment_id is None:
            return
        roll = self.rng.random()
        if roll < 0.2:
            if await self.settled(payment_id):
                await self.refund(payment_id, self.rng.randint(1, bill.total_cents // 100) * 100)
        elif roll < 0.35:
            await self.dashboard_refund(payment_id, bill)

    async def settled(self, payment_id: str, seconds: float = 120) -> bool:
        deadline = asyncio.get_running_loop().time() + seconds
        while asyncio.get_running_loop().time() < deadline:
            status = (await self.api.get("payments", f"/v1/payments/{payment_id}"))["status"]
            if status != "pending":
                return status == "succeeded"
            await asyncio.sleep(0.5)
        return False

    async def dashboard_refund(self, payment_id: str, bill: ExpectedBill) -> None:
        """A refund made in the Stripe dashboard: Stripe refunds, then sends `charge.refunded`
        (localstripe sends no refund webhooks, so the workload sends it, signed, twice)."""
        if not await self.settled(payment_id):
            return
        payment = await self.api.get("payments", f"/v1/payments/{payment_id}")
        amount = self.rng.randint(1, bill.total_cents // 100) * 100
        await self.stripe_direct.v1.refunds.create_async(
            {"payment_intent": payment["stripe_payment_intent_id"], "amount": amount}
        )
        intent = await self.stripe_direct.v1.payment_intents.retrieve_async(payment["stripe_payment_intent_id"])
        latest = intent["latest_charge"] if "latest_charge" in intent else None
        charge_id = (
            latest if isinstance(latest, str) else latest["id"] if latest else intent["charges"]["data"][-1]["id"]
        )
        charge = await self.stripe_direct.v1.charges.retrieve_async(charge_id)
        payload = webhook_payload("charge.refunded", charge.to_dict())
        for _ in range(2):  # Stripe delivers at least once
            r = await self.api.signed(payload, self.webhook_secret)
            assert r.status_code == 200, r.text
        entry = self.model.payments[payment_id]
        entry[2] += amount
        bill.paid_cents -= amount
        self.model.ops["Stripe dashboard refund (webhook)"] += 1

    async def autopay_night(self, day: dt.date) -> None:
        """The nightly run, as of 00:30 the next morning; a night run twice charges nothing twice."""
        as_of = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(0, 30), dt.timezone(dt.timedelta(hours=-7)))
        for _ in range(1 + (self.rng.random() < 0.3)):
            r = await self.api.post("payments", "/v1/autopay/run", {"as_of": as_of.isoformat()})
            assert r.status_code == 200, r.text
        self.model.ops["autopay night"] += 1

    async def statement(self, c: Client, day: dt.date) -> None:
        r = await self.api.post(
            "billing",
            "/v1/statements",
            {"client_id": c.id, "start_date": MONTH.isoformat(), "end_date": day.isoformat()},
            key=f"stmt-{c.id}-{day}",
        )
        assert r.status_code == 201, r.text
        sid = r.json()["id"]
        r = await self.api.post("billing", f"/v1/statements/{sid}/share", {}, key=f"share-{sid}")
        assert r.status_code in (200, 202), r.text
        self.model.statements.append(sid)
        self.model.ops["statement shared"] += 1

    async def settle_autopay(self) -> None:
        """After the run: autopay clients' bills are paid in full by the last night."""
        for bill in self.model.bills.values():
            if bill.autopay and not bill.cancelled:
                bill.paid_cents = bill.total_cents
