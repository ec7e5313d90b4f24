"""After the faults: wait until the system is quiet, then compare what it did with what the
workload's model says it must have done, from the outside (HTTP, the SMTP sink's Maildir,
localstripe's own records, the DLQ topics) and with both drift check commands."""

import asyncio
import mailbox
import subprocess
import sys
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

import httpx
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from bench.faults.client import Api
from bench.faults.infra import ROOT, PrivateStack
from bench.faults.workload import Model
from shared import topics
from shared.consumer import consumer_group
from shared.kafka import client_options
from shared.settings import Settings


@dataclass
class Row:
    what: str
    lost: int = 0
    doubled: int = 0
    detail: str = ""

    @property
    def ok(self) -> bool:
        return self.lost == 0 and self.doubled == 0


@dataclass
class Report:
    rows: list[Row] = field(default_factory=list)
    notes: list[Row] = field(default_factory=list)  # shown, but not a loss or a doubling
    examples: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(r.ok for r in self.rows)


async def caught_up(settings: Settings, service: str, topic: str, seconds: float = 0) -> bool:
    """Whether `service` has committed every offset of `topic` (it has consumed all of it),
    asked again for up to `seconds`. The fault workload's last autopay night waits on it: run
    before payments has heard of the last bills, it would charge them on no night at all and
    the model, which says it did, would count them as lost. The e2e fault tests take it as
    "quiet on that topic"."""
    admin = AIOKafkaAdminClient(**client_options(settings))
    consumer = AIOKafkaConsumer(**client_options(settings), group_id=None)
    await admin.start()
    await consumer.start()
    try:
        parts = [TopicPartition(settings.topic(topic), p) for p in range(settings.topic_partitions)]
        deadline = time.monotonic() + seconds
        while True:
            ends = await consumer.end_offsets(parts)
            done = await admin.list_consumer_group_offsets(consumer_group(settings, service, topic))
            if all(end == 0 or (tp in done and done[tp].offset >= end) for tp, end in ends.items()):
                return True
            if time.monotonic() >= deadline:
                return False
            await asyncio.sleep(0.2)
    finally:
        await consumer.stop()
        await admin.close()


async def quiet(api: Api, model: Model, seconds: float = 240) -> bool:
    """Every bill as the model says, no payment pending, no email queued, no PDF pending."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            bills = {b["id"]: b for b in await api.all_items("billing", "/v1/bills")}
            pays = await api.all_items("payments", "/v1/payments")
            emails = await api.all_items("notifications", "/v1/emails")
            docs = await api.all_items("documents", "/v1/documents")
        except Exception:
            await asyncio.sleep(1)
            continue
        settled = all(_bill_matches(bills.get(b.id), b) for b in model.bills.values())
        if (
            settled
            and not any(p["status"] == "pending" for p in pays)
            and not any(e["status"] in ("queued", "sending") for e in emails)
            and not any(d["status"] == "pending" for d in docs)
        ):
            return True
        await asyncio.sleep(1)
    return False


def _bill_matches(actual: dict[str, Any] | None, expected: Any) -> bool:
    if actual is None:
        return False
    if expected.cancelled:
        return actual["status"] == "cancelled"
    return (
        actual["paid_cents"] == expected.paid_cents
        and actual["balance_cents"] == expected.total_cents - expected.paid_cents
    )


async def check(api: Api, stack: PrivateStack, model: Model) -> Report:
    report = Report()
    await check_bills(api, model, report)
    for service in ("billing", "payments"):
        report.rows.append(drift_check(stack, service, api.practice_id))
    await check_emails(api, stack, model, report)
    await check_stripe(api, stack, report)
    await check_documents(api, model, report)
    await check_dlq(stack, model, report)
    await check_sessions(api, model, report)
    return report


async def check_bills(api: Api, model: Model, report: Report) -> None:
    bills = {b["id"]: b for b in await api.all_items("billing", "/v1/bills")}
    row = Row("bills: paid/balance as expected", detail=f"{len(model.bills)} bills")
    for expected in model.bills.values():
        actual = bills.get(expected.id)
        if _bill_matches(actual, expected):
            continue
        paid = actual["paid_cents"] if actual else 0
        if paid > expected.paid_cents:
            row.doubled += 1
        else:
            row.lost += 1
        got = {k: actual[k] for k in ("status", "paid_cents", "balance_cents")} if actual else None
        cancelled = " (cancelled)" if expected.cancelled else ""
        report.examples.append(
            f"bill {expected.id}: expected paid {expected.paid_cents} of {expected.total_cents}{cancelled}, got {got}"
        )
    report.rows.append(row)


def drift_check(stack: PrivateStack, service: str, practice_id: str) -> Row:
    env = stack.service_env(service, 0)
    argv = [sys.executable, "-m", f"services.{service}.check"] + ([practice_id] if service == "billing" else [])
    result = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    row = Row(f"drift check: {service}", detail="exit 0")
    if result.returncode != 0:
        row.lost = 1
        row.detail = (result.stdout + result.stderr).strip()[-300:]
    return row


async def check_emails(api: Api, stack: PrivateStack, model: Model, report: Report) -> None:
    """Each email the log says was sent is at the sink exactly once (by Message-ID); each
    shared bill and statement had its email sent."""
    box = mailbox.Maildir(stack.maildir, create=False)
    at_sink = Counter(str(m["Message-ID"]).strip("<>").split("@")[0] for m in box)
    log = await api.all_items("notifications", "/v1/emails")
    sent = [e for e in log if e["status"] == "sent"]
    row = Row("emails at the SMTP sink exactly once", detail=f"{len(sent)} sent, {len(at_sink)} at the sink")
    # A sender killed after the SMTP server said 250 and before it recorded that sends again
    # after the lease, with the same Message-ID (receivers drop such duplicates): shown apart.
    resent = Row("  of which resent, same Message-ID", detail="crash between SMTP 250 and the commit")
    for e in sent:
        n = at_sink.get(e["id"], 0)
        if n == 0:
            row.lost += 1
            report.examples.append(f"email {e['id']} ({e['kind']}) logged sent, not at the sink")
        elif n > 1:
            resent.doubled += 1
            report.examples.append(f"email {e['id']} ({e['kind']}) at the sink {n} times (same Message-ID)")
    failed = [e for e in log if e["status"] == "failed"]
    row.lost += len(failed)
    report.examples += [f"email {e['id']} ({e['kind']}) failed: {e['last_error']}" for e in failed[:5]]
    shared_numbers = {b.number for b in model.bills.values() if b.shared}
    emailed = {int(e["subject"].split("#")[1].split()[0]) for e in sent if e["kind"] == "bill_shared"}
    missing = shared_numbers - emailed
    row.lost += len(missing)
    report.examples += [f"bill #{n} shared, no email sent" for n in sorted(missing)[:5]]
    unknown = set(at_sink) - {e["id"] for e in log}
    row.doubled += len(unknown)
    report.examples += [f"message {m} at the sink, not in the log" for m in sorted(unknown)[:5]]
    report.rows.append(row)
    report.notes.append(resent)


async def _stripe_list(base: str, path: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    after = None
    async with httpx.AsyncClient(timeout=60, auth=("sk_test_local", "")) as http:
        while True:
            params = {"limit": 100, **({"starting_after": after} if after else {})}
            page = (await http.get(f"{base}{path}", params=params)).json()
            items += page["data"]
            if not page.get("has_more") or not page["data"]:
                return items
            after = page["data"][-1]["id"]


async def check_stripe(api: Api, stack: PrivateStack, report: Report) -> None:
    """localstripe's own records: one succeeded PaymentIntent per succeeded online payment of
    ours and none without one; one Stripe refund per refund of ours."""
    base = f"http://127.0.0.1:{stack.ports.localstripe}"
    intents = await _stripe_list(base, "/v1/payment_intents")
    succeeded = Counter(i["metadata"].get("payment_id") for i in intents if i["status"] == "succeeded")
    pays = await api.all_items("payments", "/v1/payments")
    online = {p["id"] for p in pays if p.get("stripe_payment_intent_id") or p.get("online")}
    ours = {p["id"] for p in pays if p["id"] in online and p["status"] == "succeeded"}
    row = Row(
        "charges at Stripe exactly once", detail=f"{len(ours)} online payments, {sum(succeeded.values())} charges"
    )
    for pid in ours:
        n = succeeded.get(pid, 0)
        if n != 1:
            row.lost += n == 0
            row.doubled += n > 1
            report.examples.append(f"payment {pid}: {n} succeeded PaymentIntents at Stripe")
    for pid, n in succeeded.items():
        if pid not in ours:
            row.lost += n
            report.examples.append(f"Stripe charged {n}× for payment {pid}, which is not a succeeded payment of ours")
    report.rows.append(row)
    refunds = await _stripe_list(base, "/v1/refunds")
    per_refund = Counter(r["metadata"].get("refund_id") for r in refunds if r.get("metadata", {}).get("refund_id"))
    doubled = {k: n for k, n in per_refund.items() if n > 1}
    report.rows.append(
        Row("refunds at Stripe exactly once", doubled=len(doubled), detail=f"{sum(per_refund.values())} refunds")
    )
    report.examples += [f"refund {k} made {n}× at Stripe" for k, n in doubled.items()]


async def check_documents(api: Api, model: Model, report: Report) -> None:
    docs = await api.all_items("documents", "/v1/documents")
    by_source: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for d in docs:
        by_source[d["source_id"]].append(d)
    row = Row("PDFs rendered for every version", detail=f"{len(docs)} documents")
    for source in list(model.bills) + model.statements:
        versions = sorted(d["version"] for d in by_source.get(source, []))
        if not versions or versions != list(range(1, versions[-1] + 1)):
            row.lost += 1
            report.examples.append(f"{source}: versions {versions}")
    for d in docs:
        if d["status"] != "rendered":
            row.lost += 1
            report.examples.append(f"document {d['id']} of {d['source_id']} v{d['version']}: {d['status']}")
    report.rows.append(row)


async def check_dlq(stack: PrivateStack, model: Model, report: Report) -> None:
    names = [stack.settings.topic(topics.dlq(t)) for t in topics.ALL]
    consumer = AIOKafkaConsumer(
        bootstrap_servers=stack.settings.kafka_bootstrap_servers,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        group_id=None,
    )
    await consumer.start()
    records = []
    try:
        parts = [TopicPartition(t, p) for t in names for p in range(stack.settings.topic_partitions)]
        consumer.assign(parts)
        await consumer.seek_to_beginning(*parts)
        end = await consumer.end_offsets(parts)
        pending = {tp for tp in parts if end[tp] > 0}
        while pending:
            for rs in (await consumer.getmany(timeout_ms=500)).values():
                records.extend(rs)
            pending = {tp for tp in pending if await consumer.position(tp) < end[tp]}
    finally:
        await consumer.stop()
    poison = [r for r in records if (r.key or b"").startswith(b"poison-")]
    others = [r for r in records if not (r.key or b"").startswith(b"poison-")]
    # Every service consuming the topic dead-letters a poison message once (at least once: a
    # rebalance between the DLQ write and the offset commit repeats it, which is harmless).
    distinct = {
        dict(r.headers).get("original-offset", b"") + b"@" + dict(r.headers).get("original-partition", b"")
        for r in poison
    }
    row = Row(
        "DLQ: only the injected poison",
        lost=max(0, model.poison - len(distinct)),
        doubled=len(others),
        detail=f"{model.poison} poison injected, {len(distinct)} dead-lettered",
    )
    report.examples += [f"DLQ {r.topic}: {dict(r.headers).get('error', b'')[:200]!r}" for r in others[:5]]
    report.rows.append(row)


async def check_sessions(api: Api, model: Model, report: Report) -> None:
    items = await api.all_items("billing", "/v1/unbilled-sessions")
    ids = Counter(i["session_id"] for i in items)
    row = Row("sessions: voided/billed off Unbilled, none twice")
    row.doubled = sum(1 for n in ids.values() if n > 1) + len(set(ids) & (model.voided | model.billed_sessions))
    report.examples += [
        f"session {s} still unbilled" for s in sorted(set(ids) & (model.voided | model.billed_sessions))[:5]
    ]
    report.rows.append(row)
