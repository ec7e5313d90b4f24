"""The reports as SQL over the read model, one practice at a time. Aggregation happens in
Postgres (a practice with 50,000 bills answers in tens of milliseconds); only the payments
report by clinician spreads each payment over its bill's lines in Python."""

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass
from typing import Any, Literal
from zoneinfo import ZoneInfo

from sqlalchemy import text
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
        """[start 00:00, end+1 00:00) in the practice's timezone; open ends are far away."""
        lo = dt.datetime.combine(start, dt.time(), self.tz) if start else dt.datetime(1900, 1, 1, tzinfo=dt.UTC)
        hi = (
            dt.datetime.combine(end + dt.timedelta(days=1), dt.time(), self.tz)
            if end
            else dt.datetime(9999, 1, 1, tzinfo=dt.UTC)
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
WITH paid AS (
  SELECT bill_id,
    sum(CASE WHEN payer = 'insurance' THEN 0 WHEN kind IN ('payment', 'adjustment') THEN amount_cents
        ELSE -amount_cents END) AS pc,
    sum(CASE WHEN payer <> 'insurance' THEN 0 WHEN kind IN ('payment', 'adjustment') THEN amount_cents
        ELSE -amount_cents END) AS pi
  FROM bill_payments
  WHERE practice_id = :p AND occurred_at < :cutoff
  GROUP BY bill_id
), owed AS (
  SELECT b.client_id, b.due_date,
    b.total_cents - coalesce(paid.pc, 0) - coalesce(paid.pi, 0) AS balance,
    b.insurance_share_cents - coalesce(paid.pi, 0) AS insurance_left
  FROM bills b LEFT JOIN paid ON paid.bill_id = b.bill_id
  WHERE b.practice_id = :p AND b.issued_on <= :as_of
    AND (b.cancelled_at IS NULL OR b.cancelled_at >= :cutoff)
), split AS (
  SELECT client_id, CAST(:as_of AS date) - due_date AS late, balance,
    greatest(0, least(balance, insurance_left)) AS insurance
  FROM owed WHERE balance > 0
)
SELECT client_id,
  coalesce(sum(balance - insurance) FILTER (WHERE late <= 0), 0) AS c_current,
  coalesce(sum(balance - insurance) FILTER (WHERE late BETWEEN 1 AND 30), 0) AS c_d1_30,
  coalesce(sum(balance - insurance) FILTER (WHERE late BETWEEN 31 AND 60), 0) AS c_d31_60,
  coalesce(sum(balance - insurance) FILTER (WHERE late BETWEEN 61 AND 90), 0) AS c_d61_90,
  coalesce(sum(balance - insurance) FILTER (WHERE late > 90), 0) AS c_d90_plus,
  coalesce(sum(insurance) FILTER (WHERE late <= 0), 0) AS i_current,
  coalesce(sum(insurance) FILTER (WHERE late BETWEEN 1 AND 30), 0) AS i_d1_30,
  coalesce(sum(insurance) FILTER (WHERE late BETWEEN 31 AND 60), 0) AS i_d31_60,
  coalesce(sum(insurance) FILTER (WHERE late BETWEEN 61 AND 90), 0) AS i_d61_90,
  coalesce(sum(insurance) FILTER (WHERE late > 90), 0) AS i_d90_plus
FROM split GROUP BY client_id
""")


async def aging(session: AsyncSession, practice_id: str, as_of: dt.date | None) -> dict[str, Any]:
    """Open balances at the end of `as_of`, by days past the due date; per client and by payer."""
    pr = await practice(session, practice_id)
    as_of = as_of or pr.today()
    # The end of `as_of` in the practice's timezone, compared as a timestamp (indexable, no per-row conversion).
    cutoff = pr.bounds(as_of, as_of)[1]
    rows = (await session.execute(_AGING, {"p": practice_id, "cutoff": cutoff, "as_of": as_of})).all()
    names = await _names(session, practice_id, "client")
    total, by_payer = _buckets(), {"client": _buckets(), "insurance": _buckets()}
    clients: list[dict[str, Any]] = []
    for r in rows:
        mine = _buckets()
        for b in domain.BUCKETS:
            c, i = int(getattr(r, f"c_{b}")), int(getattr(r, f"i_{b}"))
            mine[b] = c + i
            total[b] += c + i
            by_payer["client"][b] += c
            by_payer["insurance"][b] += i
        clients.append({"client_id": r.client_id, "client_name": names.get(r.client_id), "buckets": mine,
                        "total_cents": sum(mine.values())})  # fmt: skip
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
    money coming in (the prepayment was counted when it came), so it is left out."""
    pr = await practice(session, practice_id)
    lo, hi = pr.bounds(start, end)
    params = {"p": practice_id, "tz": pr.timezone, "lo": lo, "hi": hi}
    money_in = "FROM money_facts WHERE practice_id = :p AND at >= :lo AND at < :hi AND method <> 'credit'"
    sums = (
        "coalesce(sum(amount_cents) FILTER (WHERE kind = 'payment'), 0) AS payments, "
        "coalesce(sum(amount_cents) FILTER (WHERE kind = 'refund'), 0) AS refunds, "
        "count(DISTINCT payment_id) FILTER (WHERE kind = 'payment') AS count"
    )
    t = (await session.execute(text(f"SELECT {sums} {money_in}"), params)).one()
    totals = _figures(int(t.payments), int(t.refunds), int(t.count))
    if group_by == "clinician":
        rows = await _by_clinician(session, practice_id, money_in, params)
    else:
        key = "method" if group_by == "method" else "to_char((at AT TIME ZONE :tz)::date, 'YYYY-MM-DD')"
        grouped = await session.execute(text(f"SELECT {key} AS key, {sums} {money_in} GROUP BY 1 ORDER BY 1"), params)
        rows = [{"key": r.key} | _figures(int(r.payments), int(r.refunds), int(r.count)) for r in grouped]
    return {"from": _iso(start), "to": _iso(end), "group_by": group_by, "currency": pr.currency, "rows": rows,
            "totals": totals}  # fmt: skip


def _figures(payments: int, refunds: int, count: int) -> dict[str, int]:
    return {"payments_cents": payments, "refunds_cents": refunds, "net_cents": payments - refunds, "count": count}


async def _by_clinician(
    session: AsyncSession, practice_id: str, money_in: str, params: dict[str, Any]
) -> list[dict[str, Any]]:
    """Each part of a payment that reached a bill spread over the bill's lines by amount, to
    the clinician of each line's session; what went to credit has no clinician (key null)."""
    facts = (
        await session.execute(text(f"SELECT kind, payment_id, bill_id, amount_cents {money_in} ORDER BY id"), params)
    ).all()
    bill_ids = sorted({f.bill_id for f in facts if f.bill_id})
    lines: dict[str, list[tuple[str | None, int]]] = defaultdict(list)
    if bill_ids:
        rows = await session.execute(
            text(
                "SELECT l.bill_id, s.clinician_id, l.billed_cents FROM bill_lines l "
                "LEFT JOIN sessions s ON s.practice_id = l.practice_id AND s.session_id = l.session_id "
                "WHERE l.practice_id = :p AND l.bill_id = ANY(:ids) ORDER BY l.bill_id, l.line_no"
            ),
            {"p": practice_id, "ids": bill_ids},
        )
        for r in rows:
            lines[r.bill_id].append((r.clinician_id, int(r.billed_cents)))
    cents: dict[str | None, list[int]] = defaultdict(lambda: [0, 0])
    counted: dict[str | None, set[str]] = defaultdict(set)
    for f in facts:
        bill_lines = lines.get(f.bill_id or "") or [(None, 1)]
        for (clinician, _), part in zip(
            bill_lines, domain.split(int(f.amount_cents), [w for _, w in bill_lines]), strict=True
        ):
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
    "clinician": "s.clinician_id",
    "service_code": "l.code",
    "month": "to_char(l.issued_on, 'YYYY-MM')",
}


async def revenue(
    session: AsyncSession, practice_id: str, start: dt.date | None, end: dt.date | None, group_by: RevenueGroup
) -> dict[str, Any]:
    """Bills issued in the range (cancelled ones count for nothing), by clinician, service code
    or month of issue: billed = collected + adjusted + outstanding, as of now."""
    pr = await practice(session, practice_id)
    key = _REVENUE_KEYS[group_by]
    rows = (
        await session.execute(
            text(
                f"SELECT {key} AS key, sum(l.billed_cents) AS billed, sum(l.collected_cents) AS collected, "
                "sum(l.adjusted_cents) AS adjusted, sum(l.outstanding_cents) AS outstanding "
                "FROM bill_lines l LEFT JOIN sessions s "
                "ON s.practice_id = l.practice_id AND s.session_id = l.session_id "
                "WHERE l.practice_id = :p AND l.issued_on >= :lo AND l.issued_on <= :hi "
                "GROUP BY 1 ORDER BY 1 NULLS LAST"
            ),
            {"p": practice_id, "lo": start or dt.date.min, "hi": end or dt.date.max},
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


async def journal(
    session: AsyncSession,
    practice_id: str,
    start: dt.date | None,
    end: dt.date | None,
    *,
    after: tuple[str, str, str] | None = None,
    limit: int | None = None,
) -> tuple[Practice, list[dict[str, Any]]]:
    """Entries in date order (the accounting date in the practice's timezone), each with its lines."""
    pr = await practice(session, practice_id)
    keyset = "AND (e.day, e.at, e.entry_id) > (CAST(:ad AS date), CAST(:aat AS timestamptz), :aid)" if after else ""
    params: dict[str, Any] = {"p": practice_id, "tz": pr.timezone, "lo": start or dt.date.min, "hi": end or dt.date.max}
    if after:
        params.update(ad=dt.date.fromisoformat(after[0]), aat=dt.datetime.fromisoformat(after[1]), aid=after[2])
    rows = (
        await session.execute(
            text(
                "WITH e AS (SELECT entry_id, at, coalesce(on_date, (at AT TIME ZONE :tz)::date) AS day, "
                "source_kind, source_id, memo FROM journal_entries WHERE practice_id = :p) "
                "SELECT e.*, l.account, l.debit_cents, l.credit_cents FROM ("
                f"SELECT * FROM e WHERE e.day >= :lo AND e.day <= :hi {keyset} "
                f"ORDER BY e.day, e.at, e.entry_id {'LIMIT :limit' if limit else ''}) e "
                "JOIN journal_lines l ON l.entry_id = e.entry_id ORDER BY e.day, e.at, e.entry_id, l.line_no"
            ),
            params | ({"limit": limit} if limit else {}),
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
