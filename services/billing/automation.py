"""Scheduled jobs of a practice: automatic bill creation (daily, weekly, monthly), monthly
automatic superbills, and auto-share. When a run is due comes from `schedule` (the practice's
timezone, DST-correct). Each run holds the practice's advisory lock, is one transaction, and is
recorded per practice, job and period (`automation_runs`), so N replicas, a retry, a rerun after
a crash or a manual `POST /v1/automation/run` for the same period create each bill once."""

import datetime as dt
import logging
from collections import defaultdict
from typing import Any, Literal

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlalchemy import and_, func, or_, select, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.billing import bills, domain, estimates, schedule, scheduler, superbills
from services.billing import repository as repo
from services.billing.api import IdempotencyKey, now, run_write
from services.billing.db import automation_runs, client_profiles, clients, practice_settings, sessions
from services.billing.db import bills as bill_table
from services.billing.db import superbills as superbill_table
from shared import audit
from shared.auth import StaffPrincipal
from shared.db import Database
from shared.outbox import Outbox
from shared.polling import every
from shared.runtime import ServiceDep
from shared.settings import Settings
from shared.superbill_rules import session_paid
from shared.validation import Moment, RequestModel

log = logging.getLogger(__name__)
router = APIRouter(prefix="/v1", tags=["automation"])


async def _claim_run(db: AsyncSession, practice_id: str, job: str, period: str) -> bool:
    stmt = insert(automation_runs).values(practice_id=practice_id, job=job, period=period, result={})
    return await db.scalar(stmt.on_conflict_do_nothing().returning(automation_runs.c.job)) is not None


async def practice_lock(db: AsyncSession, practice_id: str, *, wait: bool) -> bool:
    """The practice's automation advisory lock, held until the transaction ends: one run of a
    practice's jobs at a time across replicas. `wait=False` gives up at once when it is taken."""
    key = await db.scalar(select(func.hashtextextended(f"automation:{practice_id}", 0)))
    if wait:
        await db.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": key})
        return True
    return bool(await db.scalar(text("SELECT pg_try_advisory_xact_lock(:k)"), {"k": key}))


async def create_bills(
    db: AsyncSession,
    outbox: Outbox,
    practice_id: str,
    as_of: dt.datetime,
    public_base_url: str,
    platforms: frozenset[str],
) -> dict[str, Any]:
    """The bill-creation run due at `as_of` (schedule.bill_run): daily one bill per unbilled
    session of the days before, weekly or monthly one bill per client. Responsibility, copay or
    coinsurance come from each client's profile, the due date from the practice's settings. A
    bill a rule refuses is skipped and reported; the others are made. The whole run is one
    transaction, so a crash leaves nothing half done and the rerun makes every bill once."""
    settings = await repo.load_settings(db, practice_id)
    run = schedule.bill_run(settings.bill_creation, settings.today(as_of))
    if not await _claim_run(db, practice_id, "bill_creation", run.period):
        return {"job": "bill_creation", "period": run.period, "already_ran": True, "bills": []}
    fees = domain.MissedFees(settings.no_show_fee_cents, settings.late_cancel_fee_cents)
    rows = (
        await db.execute(
            select(
                sessions.c.id,
                sessions.c.client_id,
                sessions.c.date_of_service,
                sessions.c.attendance,
                sessions.c.services_cents,
            )
            .join(clients, and_(clients.c.practice_id == sessions.c.practice_id, clients.c.id == sessions.c.client_id))
            .where(
                sessions.c.practice_id == practice_id,
                sessions.c.bill_id.is_(None),
                ~sessions.c.voided,
                sessions.c.data.is_not(None),
                sessions.c.date_of_service < run.before,
                repo.client_billed(platforms),
            )
            .order_by(sessions.c.client_id, sessions.c.date_of_service, sessions.c.id)
        )
    ).all()
    groups: dict[tuple[str, str], list[str]] = defaultdict(list)
    for r in rows:
        billable = r.services_cents if r.attendance == "attended" else fees.for_attendance(r.attendance)
        if billable > 0:
            groups[(r.client_id, r.id if run.per_session else "")].append(r.id)
    created, skipped, warnings = [], [], []
    for (client_id, _), session_ids in groups.items():
        try:
            async with db.begin_nested():
                req = bills.BillRequest(client_id=client_id, session_ids=session_ids)
                made = await bills.create_bill(
                    db, outbox, practice_id, req, now=as_of, public_base_url=public_base_url, platforms=platforms
                )
                for bill, _snap in made:
                    await audit.automation(
                        db, outbox, "billing", practice_id, "create_bill", "bill", str(bill.id), client_id
                    )
            created.extend({"bill_id": str(bill.id), "number": bill.number, "client_id": client_id,
                            "session_ids": session_ids} for bill, _snap in made)  # fmt: skip
            warnings.extend(await estimates.check_exceeded(db, outbox, practice_id, client_id, now=as_of))
        except domain.RuleViolation as exc:
            skipped.append({"client_id": client_id, "session_ids": session_ids, "reason": exc.code})
    result = {"job": "bill_creation", "period": run.period, "already_ran": False, "bills": created, "skipped": skipped,
              "warnings": warnings}  # fmt: skip
    await _store_result(db, practice_id, "bill_creation", run.period, result)
    return result


async def create_superbills(db: AsyncSession, outbox: Outbox, practice_id: str, as_of: dt.datetime) -> dict[str, Any]:
    """From the practice's superbill day on (29-31: the last day of a shorter month), one
    superbill per client whose profile asks for them, covering the client's paid sessions up to
    the end of last month that are on no superbill yet. A client with none is left out; one
    whose superbill would be incomplete is skipped and reported."""
    settings = await repo.load_settings(db, practice_id)
    run = schedule.superbill_run(settings.today(as_of), settings.superbill_creation_day)
    if not run.due:
        return {"job": "superbill_creation", "period": run.period, "due": False, "superbills": []}
    if not await _claim_run(db, practice_id, "superbill_creation", run.period):
        return {"job": "superbill_creation", "period": run.period, "already_ran": True, "superbills": []}
    client_ids = (
        await db.scalars(
            select(client_profiles.c.client_id)
            .where(
                client_profiles.c.practice_id == practice_id,
                client_profiles.c.data["automatic_superbills"].as_boolean(),
            )
            .order_by(client_profiles.c.client_id)
        )
    ).all()
    created, skipped = [], []
    for client_id in client_ids:
        session_ids = await _paid_sessions_without_superbill(db, practice_id, client_id, run.covers_to)
        if not session_ids:
            continue
        try:
            async with db.begin_nested():
                row = await superbills.create_superbill(
                    db, outbox, practice_id, client_id=client_id, session_ids=session_ids, start=None,
                    end=None, pay_to="client", now=as_of,
                )  # fmt: skip
                await audit.automation(
                    db, outbox, "billing", practice_id, "create_superbill", "superbill", str(row.id), client_id
                )
            created.append({"superbill_id": str(row.id), "number": row.number, "client_id": client_id,
                            "session_ids": session_ids})  # fmt: skip
        except domain.RuleViolation as exc:
            skipped.append({"client_id": client_id, "reason": exc.code, "detail": exc.message})
    result = {"job": "superbill_creation", "period": run.period, "already_ran": False, "superbills": created,
              "skipped": skipped}  # fmt: skip
    await _store_result(db, practice_id, "superbill_creation", run.period, result)
    return result


async def _paid_sessions_without_superbill(
    db: AsyncSession, practice_id: str, client_id: str, up_to: dt.date
) -> list[str]:
    """The client's attended sessions up to `up_to` that are paid (every bill of a split group paid:
    `session_paid`) and that no superbill names yet, oldest first."""
    on_superbills = {
        sid
        for ids in await db.scalars(
            select(superbill_table.c.session_ids).where(
                superbill_table.c.practice_id == practice_id, superbill_table.c.client_id == client_id
            )
        )
        for sid in ids
    }
    group = bill_table.alias("group_bill")  # every bill of the session's split group (or the bill alone)
    same_group = and_(bill_table.c.split_group_id.is_not(None), group.c.split_group_id == bill_table.c.split_group_id)
    rows = await db.execute(
        select(sessions.c.id, group.c.status)
        .join(bill_table, bill_table.c.id == sessions.c.bill_id)
        .join(group, and_(group.c.practice_id == practice_id, or_(group.c.id == bill_table.c.id, same_group)))
        .where(
            sessions.c.practice_id == practice_id,
            sessions.c.client_id == client_id,
            sessions.c.attendance == "attended",
            ~sessions.c.voided,
            sessions.c.date_of_service <= up_to,
        )
        .order_by(sessions.c.date_of_service, sessions.c.id)
    )
    statuses: dict[str, list[str]] = defaultdict(list)  # in session order
    for sid, status in rows:
        statuses[sid].append(status)
    return [sid for sid, seen in statuses.items() if sid not in on_superbills and session_paid(seen)]


async def _store_result(db: AsyncSession, practice_id: str, job: str, period: str, result: dict[str, Any]) -> None:
    await db.execute(
        automation_runs.update()
        .where(
            automation_runs.c.practice_id == practice_id,
            automation_runs.c.job == job,
            automation_runs.c.period == period,
        )
        .values(result=result)
    )


class AutomationRun(RequestModel):
    job: Literal["bill_creation", "superbill_creation", "auto_share", "good_faith_estimate_renewal"]
    as_of: Moment | None = None


@router.post("/automation/run")
async def run_job(
    body: AutomationRun, request: Request, svc: ServiceDep, principal: StaffPrincipal, key: IdempotencyKey = None
) -> JSONResponse:
    """Run a scheduled job now, as it would have run at `as_of` (default now). Waits for a run
    of the same practice in progress elsewhere; a period already run answers `already_ran`."""
    as_of = body.as_of or now()

    async def work(db: AsyncSession) -> tuple[int, Any]:
        await practice_lock(db, principal.practice_id, wait=True)
        if body.job == "bill_creation":
            return 200, await create_bills(
                db, svc.outbox, principal.practice_id, as_of, svc.settings.public_base_url, svc.settings.platforms()
            )
        if body.job == "superbill_creation":
            return 200, await create_superbills(db, svc.outbox, principal.practice_id, as_of)
        if body.job == "good_faith_estimate_renewal":
            renewed = await estimates.renew_due(db, svc.outbox, principal.practice_id, now=as_of)
            return 200, {"job": "good_faith_estimate_renewal", "renewed": renewed}
        shared = await scheduler.share_due_in(db, svc.outbox, as_of, practice_id=principal.practice_id)
        return 200, {"job": "auto_share", "shared": shared}

    return await run_write(svc, request, principal, key, body.model_dump(mode="json"), work)


def automation_loop(db: Database, outbox: Outbox, settings: Settings):
    """Every practice gets its automatic bill and superbill runs once per period, checked every
    `billing_automation_interval_s` (0 = only on request); each practice's run under its advisory lock."""

    async def run() -> None:
        if settings.billing_automation_interval_s <= 0:
            return
        await every(
            settings.billing_automation_interval_s, lambda: _run_due(db, outbox, settings), log=log,
            failure="automation run failed; retrying",
        )  # fmt: skip

    return run


async def _run_due(db: Database, outbox: Outbox, settings: Settings) -> None:
    async with db.transaction() as session:
        practices = (
            await session.execute(
                select(practice_settings.c.practice_id, practice_settings.c.data["bill_creation"].astext.label("mode"))
            )
        ).all()
    for practice_id, mode in practices:
        try:
            async with db.transaction() as session:
                if not await practice_lock(session, practice_id, wait=False):
                    continue
                now_ = dt.datetime.now(dt.UTC)
                if mode != "manual":
                    await create_bills(
                        session, outbox, practice_id, now_, settings.public_base_url, settings.platforms()
                    )
                await create_superbills(session, outbox, practice_id, now_)
                await estimates.renew_due(session, outbox, practice_id, now=now_)
        except Exception:
            log.exception("automation run for practice %s failed; next tick retries", practice_id)
