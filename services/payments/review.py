"""`python -m services.payments.review`: the operator's tool for online payments held for review
(Stripe reported a charge whose amount or currency differs from ours: nothing was applied, and
the payment still holds what it was meant to pay on its bills).

    python -m services.payments.review list [--practice ID]
    python -m services.payments.review resolve PAYMENT_ID --recheck
    python -m services.payments.review resolve PAYMENT_ID --fail --reason "refunded in Stripe"

`--recheck` asks Stripe about the intent again and settles the payment by the same rules as the
webhook and the reconciler (succeeded if Stripe now reports our amount and currency, failed if
the intent failed or Stripe does not know it, held again otherwise). `--fail` fails it: its hold
on the bills is released and PaymentFailed goes out through the outbox (the running service's
relay publishes it). Refunding whatever Stripe took stays a step in Stripe's dashboard.
Direct database access as the payments role, like `services.payments.check`; no HTTP route, so
the contract is unchanged."""

import argparse
import asyncio
import json
import logging
import sys
from typing import Any

from sqlalchemy import select, update

from services.payments.app import create_service
from services.payments.db import payments
from services.payments.recording import fail_payment, settle_intent_in
from services.payments.service import Payments
from services.payments.stripe_gateway import MISSING, StripeDeclined
from shared import audit
from shared.settings import Settings, get_settings

log = logging.getLogger(__name__)
REVIEW = "review"


class NotHeld(Exception):
    """The payment is not (or no longer) held for review."""


async def held(ctx: Payments, practice_id: str | None = None) -> list[dict[str, Any]]:
    """Payments held for review, oldest first."""
    query = select(payments).where(payments.c.status == REVIEW).order_by(payments.c.created_at)
    if practice_id:
        query = query.where(payments.c.practice_id == practice_id)
    async with ctx.svc.db.transaction() as session:
        rows = (await session.execute(query)).all()
    fields = ("id", "practice_id", "client_id", "amount_cents", "currency", "stripe_payment_intent_id")
    return [
        {**{f: getattr(r, f) for f in fields}, "reason": r.failure_reason, "created_at": r.created_at.isoformat()}
        for r in rows
    ]


async def recheck(ctx: Payments, payment_id: str) -> str:
    """Settle a held payment by what Stripe says about its intent now; returns its status."""
    async with ctx.svc.db.transaction() as session:
        row = await _locked_held(session, payment_id)
        intent_id = row.stripe_payment_intent_id
    result, declined = None, None
    try:
        result = await ctx.stripe.retrieve_intent(intent_id)
    except StripeDeclined as exc:
        if exc.code != MISSING:
            raise
        declined = StripeDeclined(MISSING, f"Stripe has no payment intent {intent_id}: nothing was charged")
    async with ctx.svc.db.transaction() as session:
        await _locked_held(session, payment_id)
        # back to pending under the lock, then the one settling rule decides (and holds it again
        # if Stripe's amount or currency still differ)
        await session.execute(update(payments).where(payments.c.id == payment_id).values(status="pending"))
        await settle_intent_in(ctx, session, payment_id, result, declined=declined)
        return str(await session.scalar(select(payments.c.status).where(payments.c.id == payment_id)))


async def fail(ctx: Payments, payment_id: str, reason: str) -> None:
    """Fail a held payment: its hold on the bills released, PaymentFailed staged."""
    async with ctx.svc.db.transaction() as session:
        row = await _locked_held(session, payment_id)
        await fail_payment(ctx, session, row, f"resolved by an operator: {reason}", None)
        await audit.record_effect(session, ctx.svc.outbox, "payments", practice_id=row.practice_id,
                                  action="fail_payment", kind="payment", resource_id=payment_id,
                                  client_id=row.client_id)  # fmt: skip
    log.warning("payment %s held for review failed by an operator", payment_id)


async def _locked_held(session: Any, payment_id: str) -> Any:
    row = (await session.execute(select(payments).where(payments.c.id == payment_id).with_for_update())).one_or_none()
    if row is None or row.status != REVIEW:
        raise NotHeld(f"payment {payment_id} is {'unknown' if row is None else row.status}, not held for review")
    return row


def parse(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m services.payments.review", description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="command", required=True)
    ls = sub.add_parser("list", help="payments held for review, as JSON lines")
    ls.add_argument("--practice")
    res = sub.add_parser("resolve", help="recheck with Stripe, or fail, one held payment")
    res.add_argument("payment_id")
    how = res.add_mutually_exclusive_group(required=True)
    how.add_argument("--recheck", action="store_true")
    how.add_argument("--fail", action="store_true")
    res.add_argument("--reason", help="why it is failed (with --fail)")
    args = p.parse_args(argv)
    if args.command == "resolve" and args.fail and not args.reason:
        p.error("--fail needs --reason")
    return args


async def run(args: argparse.Namespace, settings: Settings) -> int:
    svc = create_service(settings)
    ctx = svc.payments
    try:
        with audit.acting_as("operator", "staff"):  # the audit log names the operator's tool
            return await _command(ctx, args)
    except NotHeld as exc:
        print(str(exc), file=sys.stderr)
        return 2
    finally:
        await svc.db.dispose()


async def _command(ctx: Payments, args: argparse.Namespace) -> int:
    if args.command == "list":
        for item in await held(ctx, args.practice):
            print(json.dumps(item))
        return 0
    if args.recheck:
        print(json.dumps({"id": args.payment_id, "status": await recheck(ctx, args.payment_id)}))
    else:
        await fail(ctx, args.payment_id, args.reason)
        print(json.dumps({"id": args.payment_id, "status": "failed"}))
    return 0


def main() -> None:
    sys.exit(asyncio.run(run(parse(sys.argv[1:]), get_settings())))


if __name__ == "__main__":
    main()
