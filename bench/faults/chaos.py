"""The fault injector. While the workload runs it injects faults at random moments, several at
once: SIGKILL of one replica, or of every replica of a service in the middle of the work it does
(a consumer batch, an outbox publish, a render, an SMTP send, a Stripe call), the Kafka broker
killed, Postgres stopped with `-m immediate`, Stripe unreachable or answering too late, the SMTP
sink down. After each restart a canary goes through the part of the chain the fault hit
(session → unbilled → bill → cash payment → bill paid, with the render pipeline and a receipt
email where the fault hit those); the time from the restart until it arrives is that fault's
recovery time."""

import asyncio
import random
import statistics
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import httpx

from bench.faults.client import Api, Upstream
from bench.faults.infra import SERVICES, PrivateStack, wait_port
from bench.faults.stripe_proxy import StripeProxy
from bench.faults.workload import MONTH, Client, ExpectedBill, Workload, client_event, session_event
from shared.money import format_money

ALONE = {
    "kill_during_batch",
    "kill_during_relay",
    "kill_during_render",
    "kill_during_smtp",
    "kill_during_stripe_call",
    "kill_kafka",
    "stop_postgres",
}
"""Faults that stop a flow for every canary: injected one at a time, nothing else in flight."""


def needs(fault: str) -> set[str]:
    """What must flow again after `fault`: the part of the chain the fault hit."""
    if "Kafka" in fault or "Postgres" in fault:
        return {"pdf", "email"}
    if "documents" in fault:
        return {"pdf"}
    if "notifications" in fault or "SMTP" in fault:
        return {"email"}
    return set()


@dataclass
class Recovery:
    fault: str
    seconds: float | None  # None: the canary never arrived
    stages: dict[str, float] = field(default_factory=dict)  # stage → seconds after the restart


@dataclass
class Chaos:
    stack: PrivateStack
    proxy: StripeProxy
    workload: Workload
    rng: random.Random
    injected: Counter = field(default_factory=Counter)
    recoveries: list[Recovery] = field(default_factory=list)
    canary_timeout: float = 300.0
    mean_interval: float = 1.5  # seconds between faults, on average (exponential)
    max_in_flight: int = 6
    _alone: bool = False
    _busy: set[str] = field(default_factory=set)
    _locks: dict[str, asyncio.Lock] = field(default_factory=dict)
    _stripe_hold: asyncio.Lock = field(default_factory=asyncio.Lock)
    _canary: Client | None = None
    _canary_card: Client | None = None
    _canary_payments: int = 0

    @property
    def api(self) -> Api:
        return self.workload.api

    @property
    def upstream(self) -> Upstream:
        return self.workload.upstream

    async def setup(self) -> None:
        run = uuid.uuid4().hex[:6]
        self._canary = Client(f"client-canary-{run}", "canary", f"canary.{run}@example.com")
        self._canary_card = Client(f"client-canarycard-{run}", "card", f"canarycard.{run}@example.com")
        for c in (self._canary, self._canary_card):
            await self.upstream.send(client_event(self.workload.practice, c), c.id)
        self._canary_card.card_id = await self.workload.store_card(self._canary_card)

    async def run(self, until: float) -> None:
        kinds = [
            (self.kill_one_replica, 100),
            (self.kill_during_batch, 8),
            (self.kill_during_relay, 8),
            (self.kill_during_render, 8),
            (self.kill_during_smtp, 8),
            (self.kill_during_stripe_call, 8),
            (self.kill_kafka, 6),
            (self.stop_postgres, 6),
            (self.stripe_down, 5),
            (self.stripe_answers_lost, 5),
            (self.smtp_down, 5),
        ]
        funcs, weights = zip(*kinds, strict=True)
        in_flight: set[asyncio.Task] = set()
        while time.monotonic() < until:
            await asyncio.sleep(self.rng.expovariate(1 / self.mean_interval))
            if len(in_flight) >= self.max_in_flight:
                continue
            if self._alone:
                continue
            fault = self.rng.choices(funcs, weights)[0]
            if fault.__name__ in ALONE:
                # A fault that stops a flow for everyone (the broker, the database, every replica
                # of a service) is injected alone: the faults in flight recover first and none
                # starts until its canary is through, else the others' canaries would time its
                # restart again under their own names.
                self._alone = True
                await asyncio.gather(*in_flight)
            if fault in (self.smtp_down, self.stripe_down) and fault.__name__ in self._busy:
                continue
            task = asyncio.create_task(self._inject(fault))
            in_flight.add(task)
            task.add_done_callback(in_flight.discard)
        await asyncio.gather(*in_flight)

    async def _inject(self, fault: Callable[[], Awaitable[tuple[str, float]]]) -> None:
        """One fault and then its recovery, measured by a canary that starts after the restart.
        Faults overlap (up to `max_in_flight`), as they would in a bad hour."""
        try:
            await self._inject_and_measure(fault)
        finally:
            if fault.__name__ in ALONE:
                self._alone = False

    async def _inject_and_measure(self, fault: Callable[[], Awaitable[tuple[str, float]]]) -> None:
        self._busy.add(fault.__name__)
        try:
            name, restarted = await fault()
        finally:
            self._busy.discard(fault.__name__)
        self.injected[name] += 1
        n = sum(self.injected.values())
        recovery = await self.canary(restarted, needs(name)) or Recovery(name, None)
        recovery.fault = name
        self.recoveries.append(recovery)
        took = f"{recovery.seconds:.1f} s" if recovery.seconds is not None else "NEVER"
        where = ", ".join(f"{stage} {t:.1f}" for stage, t in recovery.stages.items())
        print(f"  fault {n:3d}: {name}; events flowing again after {took} ({where})", flush=True)

    # --- faults: each returns its name and the monotonic time of the restart ---------------
    async def _kill_and_restart(self, names: list[str]) -> float:
        """Overlapping faults on one process take turns, so each kill is followed by exactly
        one start."""
        locks = [self._locks.setdefault(n, asyncio.Lock()) for n in sorted(names)]
        for lock in locks:
            await lock.acquire()
        try:
            for name in names:
                self.stack.kill(name)
            await asyncio.sleep(self.rng.uniform(0.0, 1.5))
            restarted = time.monotonic()
            for name in names:
                self.stack.start_service(name)
        finally:
            for lock in locks:
                lock.release()
        return restarted

    async def kill_one_replica(self) -> tuple[str, float]:
        service = self.rng.choice(SERVICES)
        name = f"{service}-{self.rng.randrange(self.stack.replicas)}"
        return f"kill -9 one {service} replica", await self._kill_and_restart([name])

    async def kill_during_batch(self) -> tuple[str, float]:
        """A burst of sessions, billing killed while it consumes them."""
        c = self._canary
        assert c is not None
        for _ in range(60):
            c.sessions += 1
            ev = session_event(self.workload.practice, f"sess-{c.id}-{c.sessions}", c.id, MONTH, self.rng)
            await self.upstream.send(ev, c.id)
        await asyncio.sleep(self.rng.uniform(0.0, 0.3))
        return "kill -9 billing mid-batch", await self._kill_and_restart(self.stack.replica_names("billing"))

    async def _bill_for_canary(
        self, *, share: bool = False, on_unbilled: Callable[[], None] | None = None
    ) -> ExpectedBill:
        c = self._canary
        assert c is not None
        c.sessions += 1
        sid = f"sess-{c.id}-{c.sessions}"
        await self.upstream.send(session_event(self.workload.practice, sid, c.id, MONTH, self.rng), c.id)
        await self.workload.wait_unbilled(c, [sid], poll=0.1)
        if on_unbilled:
            on_unbilled()
        r = await self.api.post(
            "billing",
            "/v1/bills",
            {"client_id": c.id, "session_ids": [sid], "responsibility": "client"},
            key=f"bill-{sid}",
        )
        assert r.status_code == 201, r.text
        bill = ExpectedBill(r.json()["id"], c.id, r.json()["client_owes_cents"], number=r.json()["number"])
        self.workload.model.bills[bill.id] = bill
        self.workload.model.ops["bill created"] += 1
        if share:
            r = await self.api.post("billing", f"/v1/bills/{bill.id}/share", {}, key=f"share-{bill.id}")
            assert r.status_code in (200, 202), r.text
            bill.shared = True
            self.workload.model.ops["bill shared"] += 1
        return bill

    async def kill_during_relay(self) -> tuple[str, float]:
        """Billing killed right after a bill's commit: its outbox rows are being published."""
        await self._bill_for_canary()
        await asyncio.sleep(self.rng.uniform(0.0, 0.15))
        return "kill -9 billing mid-relay", await self._kill_and_restart(self.stack.replica_names("billing"))

    async def kill_during_render(self) -> tuple[str, float]:
        await self._bill_for_canary()
        await asyncio.sleep(self.rng.uniform(0.05, 0.5))
        return "kill -9 documents mid-render", await self._kill_and_restart(self.stack.replica_names("documents"))

    async def kill_during_smtp(self) -> tuple[str, float]:
        await self._bill_for_canary(share=True)
        await asyncio.sleep(self.rng.uniform(0.3, 1.5))
        return "kill -9 notifications mid-send", await self._kill_and_restart(self.stack.replica_names("notifications"))

    async def kill_during_stripe_call(self) -> tuple[str, float]:
        """Payments killed while Stripe is executing its charge: the payment stays pending and
        the reconciler of the restarted service must settle it with the same key and params."""
        if self._stripe_hold.locked():
            return await self.kill_one_replica()
        async with self._stripe_hold:
            return await self._kill_during_stripe_call()

    async def _kill_during_stripe_call(self) -> tuple[str, float]:
        release = asyncio.Event()
        self.proxy.held.clear()
        self.proxy.hold = release
        pay = asyncio.create_task(self._pay_online())
        try:
            await asyncio.wait_for(self.proxy.held.wait(), 60)
        except TimeoutError:
            pass
        restarted = await self._kill_and_restart(self.stack.replica_names("payments"))
        self.proxy.hold = None
        release.set()
        await pay
        return "kill -9 payments mid-Stripe-call", restarted

    async def _pay_online(self) -> None:
        c = self._canary_card
        assert c is not None
        c.sessions += 1
        sid = f"sess-{c.id}-{c.sessions}"
        await self.upstream.send(session_event(self.workload.practice, sid, c.id, MONTH, self.rng), c.id)
        await self.workload.wait_unbilled(c, [sid])
        r = await self.api.post(
            "billing",
            "/v1/bills",
            {"client_id": c.id, "session_ids": [sid], "responsibility": "client"},
            key=f"bill-{sid}",
        )
        assert r.status_code == 201, r.text
        card_bill = ExpectedBill(r.json()["id"], c.id, r.json()["client_owes_cents"])
        self.workload.model.bills[card_bill.id] = card_bill
        await self.workload.pay(c, card_bill, card_bill.total_cents, "card", online=True)

    async def kill_kafka(self) -> tuple[str, float]:
        self.stack.kill("kafka")
        await asyncio.sleep(self.rng.uniform(0.0, 2.0))
        restarted = time.monotonic()
        self.stack.spawn("kafka")
        await wait_port(self.stack.ports.kafka, 300, "kafka")
        return "Kafka broker kill -9", restarted

    async def stop_postgres(self) -> tuple[str, float]:
        await asyncio.to_thread(self.stack.stop_postgres, "immediate")
        await asyncio.sleep(self.rng.uniform(0.0, 2.0))
        restarted = time.monotonic()
        await self.stack.start_postgres()
        return "Postgres stop -m immediate", restarted

    async def stripe_down(self) -> tuple[str, float]:
        await self.proxy.down()
        if self.rng.random() < 0.5:
            self.stack.kill("localstripe")
            await self.stack.start_localstripe()
        await asyncio.sleep(self.rng.uniform(2.0, 8.0))
        restarted = time.monotonic()
        await self.proxy.up()
        return "Stripe unreachable", restarted

    async def stripe_answers_lost(self) -> tuple[str, float]:
        self.proxy.lose_answers = self.rng.randint(1, 3)
        await asyncio.sleep(self.rng.uniform(2.0, 6.0))
        self.proxy.lose_answers = 0
        return "Stripe answers lost (timeout)", time.monotonic()

    async def smtp_down(self) -> tuple[str, float]:
        self.stack.kill("smtp")
        await asyncio.sleep(self.rng.uniform(2.0, 8.0))
        restarted = time.monotonic()
        await self.stack.start_smtp()
        return "SMTP sink down", restarted

    # --- recovery -----------------------------------------------------------------------------
    async def canary(self, restarted: float, parts: set[str]) -> Recovery | None:
        """Seconds from the restart until a canary started after it has come through, and
        where they went (each stage's end, from the restart)."""
        stages: dict[str, float] = {}
        try:
            await asyncio.wait_for(self._canary_flow(parts, restarted, stages), self.canary_timeout)
        except (TimeoutError, AssertionError) as exc:
            print(f"  canary did not come through: {type(exc).__name__} {str(exc)[:300]}", flush=True)
            return None
        return Recovery("", time.monotonic() - restarted, stages)

    async def _canary_flow(self, parts: set[str], restarted: float, stages: dict[str, float]) -> None:
        """A session to Unbilled (billing consumes), a bill, a cash payment of an amount no other
        canary pays, the bill's paid amount (payments consumes the bill, billing the payment);
        with "pdf": documents consumed the bill and has finished a render since the canary
        started (the render pipeline moves; a PDF queued behind a backlog waits its turn, which
        is throughput, not recovery); with "email": the receipt of that payment is sent
        (notifications consumes the payment, the SMTP server accepts it)."""
        c = self._canary
        assert c is not None

        def reached(stage: str) -> None:
            stages[stage] = time.monotonic() - restarted

        renders = await self._render_counts()
        bill = await self._bill_for_canary(on_unbilled=lambda: reached("unbilled"))
        reached("bill")
        self._canary_payments += 1
        amount = 100 + self._canary_payments  # $1.01, $1.02 …: its receipt is told apart by the amount
        await self.workload.pay(c, bill, amount, "cash")
        reached("payment")
        await self.wait(lambda b: b["paid_cents"] == amount, bill.id)
        reached("paid")
        if "pdf" in parts:
            while True:
                page = await self.api.get("documents", "/v1/documents", source_id=bill.id)
                if page["items"]:
                    break
                await asyncio.sleep(0.1)
            await self._rendered_since(renders)
            reached("render")
        if "email" in parts:
            receipt = f"payment of {format_money(amount)} "
            while True:
                emails = await self.api.all_items("notifications", "/v1/emails", client_id=c.id)
                if any(
                    e["kind"] == "payment_receipt" and e["status"] == "sent" and receipt in e["subject"] for e in emails
                ):
                    break
                await asyncio.sleep(0.1)
            reached("email")

    async def _render_counts(self) -> dict[str, tuple[int | None, float]]:
        """Per documents replica: its process id and how many documents it has finished."""
        counts = {}
        for replica, name in enumerate(self.stack.replica_names("documents")):
            proc = self.stack.procs.get(name)
            pid = proc.popen.pid if proc and proc.popen else None
            counts[name] = (pid, await self._rendered_total(replica))
        return counts

    async def _rendered_total(self, replica: int) -> float:
        try:
            r = await self.api.http.get(f"{self.stack.url('documents', replica)}/metrics", timeout=5)
        except httpx.HTTPError:
            return 0.0
        return sum(
            float(line.rsplit(" ", 1)[1])
            for line in r.text.splitlines()
            if line.startswith("documents_rendered_total{")
        )

    async def _rendered_since(self, before: dict[str, tuple[int | None, float]]) -> None:
        """Until some documents replica has finished a render since `before` (a restarted
        replica's counter starts again from zero)."""
        while True:
            for name, (pid, count) in (await self._render_counts()).items():
                old_pid, old_count = before[name]
                if count > (old_count if pid == old_pid else 0):
                    return
            await asyncio.sleep(0.2)

    async def wait(self, ok, bill_id: str) -> dict:
        while True:
            bill = await self.api.get("billing", f"/v1/bills/{bill_id}")
            if ok(bill):
                return bill
            await asyncio.sleep(0.1)

    def stage_medians(self, fault: str) -> dict[str, float]:
        """Where a fault's recoveries went: the median time after the restart each stage ended."""
        stages: dict[str, list[float]] = {}
        for r in self.recoveries:
            if r.fault == fault:
                for stage, t in r.stages.items():
                    stages.setdefault(stage, []).append(t)
        return {stage: statistics.median(ts) for stage, ts in stages.items()}

    def recovery_stats(self, fault: str | None = None) -> tuple[float | None, float | None, int]:
        mine = [r for r in self.recoveries if fault is None or r.fault == fault]
        done = [r.seconds for r in mine if r.seconds is not None]
        never = sum(1 for r in mine if r.seconds is None)
        if not done:
            return None, None, never
        return statistics.median(done), max(done), never
