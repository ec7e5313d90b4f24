"""The reports as SQL over the read model, one practice at a time. Aggregation happens in
Postgres (a practice with 50,000 bills answers in tens of milliseconds); only the payments
report by clinician spreads each payment over its bill's lines in Python."""

import datetime as dt
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Literal
from zoneinfo import ZoneInfo

from sqlalchemy import text
from sqlalchemy.dialects.postgresql.asyncpg import dialect as postgresql_dialect
from sqlalchemy.ext.asyncio import AsyncSession

from services.reports import domain

PaymentsGroup = Literal["method", "day", "clinician"]
RevenueGroup = Literal["clinician", "service_code", "month"]


@dataclass(frozen=True)
class Practice:
    practice_id: str
    timezone: str
    currency: str

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def today(self) -> dt.date:
        return dt.datetime.now(self.tz).date()

    def bounds(self, start: dt.date | None, end: dt.date | None) -> tuple[dt.datetime, dt.datetime]:
        """[start 00:00, end+1 00:00) in the practice's timezone; open ends (and the first and last
        days a date can name, whose midnight elsewhere is out of range) are far away."""
        far_past, far_future = dt.datetime(1900, 1, 1, tzinfo=dt.UTC), dt.datetime(9999, 1, 1, tzinfo=dt.UTC)
        lo = dt.datetime.combine(start, dt.time(), self.tz) if start and far_past.date() < start else far_past
        hi = (
            dt.datetime.combine(end + dt.timedelta(days=1), dt.time(), self.tz)
            if end and end < far_future.date()
            else far_future
        )
        return lo, hi


async def practice(session: AsyncSession, practice_id: str) -> Practice:
    row = (
        await session.execute(
            text("SELECT timezone, currency FROM practices WHERE practice_id = :p"), {"p": practice_id}
        )
    ).one_or_none()
    return Practice(practice_id, row.timezone, row.currency) if row else Practice(practice_id, "UTC", "USD")


async def _names(session: AsyncSession, practice_id: str, kind: str) -> dict[str, str]:
    rows = await session.execute(
        text("SELECT id, name FROM names WHERE practice_id = :p AND kind = :k"), {"p": practice_id, "k": kind}
    )
    return {r.id: r.name for r in rows}


def _buckets() -> dict[str, int]:
    return dict.fromkeys(domain.BUCKETS, 0)


_AGING = text("""
WITH later AS (
  SELECT bill_id,
    sum(CASE WHEN payer = 'insurance' THEN 0 WHEN kind IN ('payment', 'adjustment') THEN amount_cents
        ELSE -amount_cents END)::bigint AS mc,
    sum(CASE WHEN payer <> 'insurance' THEN 0 WHEN kind IN ('payment', 'adjustment') THEN amount_cents
        ELSE -amount_cents END)::bigint AS mi
  FROM bill_payments WHERE practice_id = :p AND occurred_at >= :cutoff GROUP BY bill_id
), owed AS (
  SELECT client_id, due_date, open_cents AS balance, open_insurance_cents AS insurance
  FROM bills b
  WHERE practice_id = :p AND open_cents > 0 AND issued_on <= :as_of
    AND (cancelled_at IS NULL OR cancelled_at >= :cutoff)
    AND NOT EXISTS (SELECT FROM later WHERE later.bill_id = b.bill_id)
  UNION ALL
  SELECT client_id, due_date, balance, greatest(0, least(balance, insurance_left))
  FROM (
    SELECT b.client_id, b.due_date, b.open_cents + l.mc + l.mi AS balance,
      b.insurance_share_cents - b.moved_insurance_cents + l.mi AS insurance_left
    FROM later l JOIN bills b ON b.practice_id = :p AND b.bill_id = l.bill_id
    WHERE b.issued_on <= :as_of AND (b.cancelled_at IS NULL OR b.cancelled_at >= :cutoff)
  ) moved
)
SELECT client_id, width_bucket(CAST(:as_of AS date) - due_date, ARRAY[1, 31, 61, 91]) AS bucket,
  CAST(sum(balance - insurance) AS bigint) AS client, CAST(sum(insurance) AS bigint) AS insurance
FROM owed WHERE balance > 0 GROUP BY 1, 2
""")
"""Bills open at the end of `as_of`: those open now (the consumer keeps each bill's open balance;
a partial index holds only those) with no move since, and those with moves since, whose moves
after the cutoff are taken back (billing's rule, as domain.open_balance: each payer's moves go to
its own share first). Bucket 0 is not yet due, 1 is 1–30 days late, ... 4 over 90."""


async def aging(session: AsyncSession, practice_id: str, as_of: dt.date | None) -> dict[str, Any]:
    """Open balances at the end of `as_of`, by days past the due date; per client and by payer."""
    pr = await practice(session, practice_id)
    as_of = as_of or pr.today()
    # The end of `as_of` in the practice's timezone, compared as a timestamp (indexable, no per-row conversion).
    cutoff = pr.bounds(as_of, as_of)[1]
    rows = await session.execute(_AGING, {"p": practice_id, "cutoff": cutoff, "as_of": as_of})
    total, by_payer = _buckets(), {"client": _buckets(), "insurance": _buckets()}
    per_client: dict[str, dict[str, int]] = defaultdict(_buckets)
    for client_id, bucket, client_cents, insurance_cents in rows:
        name, c, i = domain.BUCKETS[bucket], client_cents, insurance_cents
        per_client[client_id][name] += c + i
        total[name] += c + i
        by_payer["client"][name] += c
        by_payer["insurance"][name] += i
    names = await _names(session, practice_id, "client")
    clients = [{"client_id": client_id, "client_name": names.get(client_id), "buckets": mine,
                "total_cents": sum(mine.values())} for client_id, mine in per_client.items()]  # fmt: skip
    clients.sort(key=lambda c: (-c["total_cents"], c["client_id"]))
    return {
        "as_of": as_of.isoformat(),
        "currency": pr.currency,
        "buckets": total,
        "clients": clients,
        "by_payer": by_payer,
    }


async def payments(
    session: AsyncSession, practice_id: str, start: dt.date | None, end: dt.date | None, group_by: PaymentsGroup
) -> dict[str, Any]:
    """Money in and back out by method, day or clinician. A payment from client credit is not
    money coming in (the prepayment was counted when it came), so it is left out. Totals, by
    method and by day read the quarter-hour sums the consumer keeps (a day in any timezone is
    whole quarter hours); by clinician spreads each fact over its bill's lines."""
    pr = await practice(session, practice_id)
    lo, hi = pr.bounds(start, end)
    params = {"p": practice_id, "tz": pr.timezone, "lo": lo, "hi": hi}
    slots = "FROM payment_slots WHERE practice_id = :p AND slot >= :lo AND slot < :hi AND method <> 'credit'"
    sums = "sum(payments_cents) AS payments, sum(refunds_cents) AS refunds, sum(payment_count) AS count"
    t = (await session.execute(text(f"SELECT {sums} {slots}"), params)).one()
    totals = _figures(int(t.payments or 0), int(t.refunds or 0), int(t.count or 0))
    if group_by == "clinician":
        rows = await _by_clinician(session, practice_id, params)
    else:
        key = "method" if group_by == "method" else "to_char((slot AT TIME ZONE :tz)::date, 'YYYY-MM-DD')"
        grouped = await session.execute(text(f"SELECT {key} AS key, {sums} {slots} GROUP BY 1 ORDER BY 1"), params)
        rows = [{"key": r.key} | _figures(int(r.payments), int(r.refunds), int(r.count)) for r in grouped]
    return {"from": _iso(start), "to": _iso(end), "group_by": group_by, "currency": pr.currency, "rows": rows,
            "totals": totals}  # fmt: skip


def _figures(payments: int, refunds: int, count: int) -> dict[str, int]:
    return {"payments_cents": payments, "refunds_cents": refunds, "net_cents": payments - refunds, "count": count}


async def _by_clinician(session: AsyncSession, practice_id: str, params: dict[str, Any]) -> list[dict[str, Any]]:
    """Each part of a payment that reached a bill spread over the bill's lines by amount, to
    the clinician of each line's session; what went to credit has no clinician (key null)."""
    facts = (
        await session.execute(
            text(
                "SELECT kind, payment_id, bill_id, amount_cents FROM money_facts WHERE practice_id = :p "
                "AND at >= :lo AND at < :hi AND method <> 'credit' ORDER BY id"
            ),
            params,
        )
    ).all()
    bill_ids = sorted({f.bill_id for f in facts if f.bill_id})
    lines: dict[str, list[tuple[str | None, int]]] = defaultdict(list)
    if bill_ids:
        rows = await session.execute(
            text(
                "SELECT bill_id, nullif(clinician_id, '') AS clinician_id, billed_cents FROM bill_lines "
                "WHERE practice_id = :p AND bill_id = ANY(:ids) ORDER BY bill_id, line_no"
            ),
            {"p": practice_id, "ids": bill_ids},
        )
        for r in rows:
            lines[r.bill_id].append((r.clinician_id, int(r.billed_cents)))
    cents: dict[str | None, list[int]] = defaultdict(lambda: [0, 0])
    counted: dict[str | None, set[str]] = defaultdict(set)
    for f in facts:
        bill_lines = lines.get(f.bill_id or "") or [(None, 1)]
        amount = int(f.amount_cents)
        parts = [amount] if len(bill_lines) == 1 else domain.split(amount, [w for _, w in bill_lines])
        for (clinician, _), part in zip(bill_lines, parts, strict=True):
            if part:
                cents[clinician][0 if f.kind == "payment" else 1] += part
                if f.kind == "payment":
                    counted[clinician].add(f.payment_id)
    names = await _names(session, practice_id, "clinician")
    return [
        {"key": k, "label": names.get(k) if k else None} | _figures(p, r, len(counted[k]))
        for k, (p, r) in sorted(cents.items(), key=lambda kv: (kv[0] is None, kv[0] or ""))
    ]


_REVENUE_KEYS = {
    "clinician": "nullif(clinician_id, '')",
    "service_code": "code",
    "month": "to_char(month, 'YYYY-MM')",
}

_REVENUE = """
SELECT {key} AS key, sum(billed_cents) AS billed, sum(collected_cents) AS collected,
  sum(adjusted_cents) AS adjusted, sum(outstanding_cents) AS outstanding
FROM (
  SELECT month, clinician_id, code, billed_cents, collected_cents, adjusted_cents, outstanding_cents, line_count
  FROM revenue_months WHERE practice_id = :p AND month >= :mlo AND month < :mhi
  UNION ALL
  SELECT CAST(date_trunc('month', issued_on) AS date), clinician_id, code, billed_cents, collected_cents,
    adjusted_cents, outstanding_cents, 1
  FROM bill_lines
  WHERE practice_id = :p AND ((issued_on >= :lo AND issued_on < :mlo) OR (issued_on >= :mhi AND issued_on <= :hi))
) r
GROUP BY 1 HAVING sum(line_count) > 0 ORDER BY 1 NULLS LAST
"""
"""Whole months from the sums the consumer keeps; the days of a part month from the lines."""


def whole_months(lo: dt.date, hi: dt.date) -> tuple[dt.date, dt.date]:
    """[first, last) of the whole months within [lo, hi] (empty: first = last = lo)."""
    first = lo if lo.day == 1 else (lo.replace(day=1) + dt.timedelta(days=32)).replace(day=1)
    last = (hi + dt.timedelta(days=1)).replace(day=1) if hi < dt.date.max else dt.date(9999, 12, 1)
    return (first, last) if first < last else (lo, lo)


async def revenue(
    session: AsyncSession, practice_id: str, start: dt.date | None, end: dt.date | None, group_by: RevenueGroup
) -> dict[str, Any]:
    """Bills issued in the range (cancelled ones count for nothing), by clinician, service code
    or month of issue: billed = collected + adjusted + outstanding, as of now."""
    pr = await practice(session, practice_id)
    lo, hi = start or dt.date.min, end or dt.date.max
    if lo >= dt.date(9999, 12, 1):  # no whole month fits (and the next month would not exist)
        mlo = mhi = lo
    else:
        mlo, mhi = whole_months(lo, hi)
    rows = (
        await session.execute(
            text(_REVENUE.format(key=_REVENUE_KEYS[group_by])),
            {"p": practice_id, "lo": lo, "hi": hi, "mlo": mlo, "mhi": mhi},
        )
    ).all()
    names = await _names(session, practice_id, "clinician") if group_by == "clinician" else {}
    out, totals = [], dict.fromkeys(("billed_cents", "collected_cents", "adjusted_cents", "outstanding_cents"), 0)
    for r in rows:
        row: dict[str, Any] = {
            "key": r.key,
            "billed_cents": int(r.billed),
            "collected_cents": int(r.collected),
            "adjusted_cents": int(r.adjusted),
            "outstanding_cents": int(r.outstanding),
        }
        if group_by == "clinician":
            row["label"] = names.get(r.key) if r.key else None
        for k in totals:
            totals[k] += row[k]
        out.append(row)
    return {
        "from": _iso(start),
        "to": _iso(end),
        "group_by": group_by,
        "currency": pr.currency,
        "rows": out,
        "totals": totals,
    }


def _iso(day: dt.date | None) -> str | None:
    return day.isoformat() if day else None


_ENTRIES = """
SELECT entry_id, at, on_date AS day, source_kind, source_id, memo FROM journal_entries
WHERE practice_id = :p AND on_date >= :lo AND on_date <= :hi
UNION ALL
SELECT entry_id, at, CAST(at AT TIME ZONE :tz AS date), source_kind, source_id, memo FROM journal_entries
WHERE practice_id = :p AND on_date IS NULL AND at >= :lo_at AND at < :hi_at
"""
"""The entries whose accounting date is in [lo, hi]: the date a bill names, or the day the fact
happened in the practice's timezone; two index ranges, no per-row date for the whole practice."""


def _entry_params(pr: Practice, start: dt.date | None, end: dt.date | None) -> dict[str, Any]:
    lo_at, hi_at = pr.bounds(start, end)
    return {"p": pr.practice_id, "tz": pr.timezone, "lo": start or dt.date.min, "hi": end or dt.date.max,
            "lo_at": lo_at, "hi_at": hi_at}  # fmt: skip


async def journal(
    session: AsyncSession,
    practice_id: str,
    start: dt.date | None,
    end: dt.date | None,
    *,
    after: tuple[str, str, str] | None = None,
    limit: int,
) -> tuple[Practice, list[dict[str, Any]]]:
    """A page of entries in date order (the accounting date in the practice's timezone), each with its lines."""
    pr = await practice(session, practice_id)
    keyset = "WHERE (e.day, e.at, e.entry_id) > (CAST(:ad AS date), CAST(:aat AS timestamptz), :aid)" if after else ""
    params = _entry_params(pr, start, end) | {"limit": limit}
    if after:
        params.update(ad=dt.date.fromisoformat(after[0]), aat=dt.datetime.fromisoformat(after[1]), aid=after[2])
    rows = (
        await session.execute(
            text(
                f"WITH e AS ({_ENTRIES}) SELECT e.*, l.account, l.debit_cents, l.credit_cents "
                f"FROM (SELECT * FROM e {keyset} ORDER BY e.day, e.at, e.entry_id LIMIT :limit) e "
                "JOIN journal_lines l ON l.entry_id = e.entry_id ORDER BY e.day, e.at, e.entry_id, l.line_no"
            ),
            params,
        )
    ).all()
    items: list[dict[str, Any]] = []
    for r in rows:
        if not items or items[-1]["entry_id"] != r.entry_id:
            items.append(
                {
                    "entry_id": r.entry_id,
                    "date": r.day.isoformat(),
                    "at": r.at,
                    "source": {"kind": r.source_kind, "id": r.source_id},
                    "memo": r.memo,
                    "lines": [],
                }
            )
        items[-1]["lines"].append(
            {"account": r.account, "debit_cents": int(r.debit_cents), "credit_cents": int(r.credit_cents)}
        )
    return pr, items


def _amount(column: str) -> str:
    """Minor units as the decimal an accounting package imports ("1234.50"); empty for zero."""
    return f"CASE WHEN {column} = 0 THEN NULL ELSE CAST(round({column} / :scale, :digits) AS text) END"


_JOURNAL_CSV = f"""
WITH e AS ({_ENTRIES}), n AS (SELECT e.*, dense_rank() OVER (ORDER BY day, at, entry_id) AS no FROM e)
SELECT n.no AS "JournalNo", to_char(n.day, 'YYYY-MM-DD') AS "JournalDate",
  coalesce((CAST(:names AS text[]))[array_position(CAST(:accounts AS text[]), CAST(l.account AS text))], l.account)
    AS "AccountName",
  {_amount("l.debit_cents")} AS "Debits", {_amount("l.credit_cents")} AS "Credits", n.memo AS "Description"
FROM n CROSS JOIN LATERAL (
  SELECT line_no, account, debit_cents, credit_cents FROM journal_lines WHERE entry_id = n.entry_id OFFSET 0
) l
ORDER BY n.no, l.line_no
"""
"""(`OFFSET 0` keeps the lines a lookup per entry by primary key: joined as a whole, the planner
hashes every line of the practice to find a month's.)"""


async def journal_csv(
    session: AsyncSession, pr: Practice, start: dt.date | None, end: dt.date | None, sink: Callable[[bytes], Any]
) -> None:
    """The whole range as the CSV QuickBooks Online and Xero import (JournalNo numbering the
    entries in order, amounts in the practice's currency), written by Postgres itself (COPY)
    in chunks to `sink` as it goes."""
    digits = domain.minor_digits(pr.currency)
    params = _entry_params(pr, start, end) | {
        "names": [domain.ACCOUNT_NAMES[a] for a in domain.ACCOUNTS],
        "accounts": list(domain.ACCOUNTS),
        "scale": Decimal(10**digits),
        "digits": digits,
    }
    compiled = text(_JOURNAL_CSV).compile(dialect=postgresql_dialect())
    query = str(compiled)
    args = [params[name] for name in compiled.positiontup or ()]
    connection = await session.connection()
    raw = (await connection.get_raw_connection()).driver_connection
    await raw.copy_from_query(query, *args, output=sink, format="csv", header=True)


async def receivables(session: AsyncSession, practice_id: str) -> dict[str, int]:
    """Per client, what the journal's receivable accounts hold (debits − credits)."""
    rows = await session.execute(
        text(
            "SELECT client_id, sum(debit_cents - credit_cents) AS cents FROM journal_lines "
            "WHERE practice_id = :p AND account IN ('accounts_receivable', 'insurance_receivable') GROUP BY client_id"
        ),
        {"p": practice_id},
    )
    return {r.client_id: int(r.cents) for r in rows}


async def practice_ids(session: AsyncSession) -> list[str]:
    rows = await session.execute(text("SELECT DISTINCT practice_id FROM journal_entries ORDER BY 1"))
    return list(rows.scalars().all())


async def audit(
    session: AsyncSession,
    practice_id: str,
    *,
    client_id: str | None,
    actor: str | None,
    start: dt.datetime | None,
    end: dt.datetime | None,
    after: tuple[dt.datetime, str] | None,
    limit: int,
) -> list[dict[str, Any]]:
    """The practice's audit log in the order things happened, filtered."""
    where = ["practice_id = :p"]
    params: dict[str, Any] = {"p": practice_id, "limit": limit}
    for clause, name, value in (
        ("client_id = :client_id", "client_id", client_id),
        ("actor = :actor", "actor", actor),
        ("at >= :start", "start", start),
        ("at < :end", "end", end),
    ):
        if value is not None:
            where.append(clause)
            params[name] = value
    if after:
        where.append("(at, id) > (:after_at, :after_id)")
        params.update(after_at=after[0], after_id=after[1])
    rows = await session.execute(
        text(f"SELECT * FROM audit_log WHERE {' AND '.join(where)} ORDER BY at, id LIMIT :limit"), params
    )
    return [
        {
            "id": r.id,
            "at": r.at.isoformat(),
            "actor": r.actor,
            "role": r.role,
            "service": r.service,
            "action": r.action,
            "resource": {"kind": r.resource_kind, "id": r.resource_id},
            "client_id": r.client_id,
            "ip": r.ip,
        }
        for r in rows
    ]
