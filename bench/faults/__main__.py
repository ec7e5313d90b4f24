"""`python -m bench.faults --minutes 10 --seed N`: a seeded practice month through the contract
on a private stack (own Postgres, Kafka, localstripe behind an idempotency-keeping proxy, SMTP
sink, two replicas of every service) while faults are injected; then the table of what was
lost, doubled or drifted and how fast the system recovered. Exit status 1 on any loss,
doubling or drift (or a fault after which events never flowed again)."""

import argparse
import asyncio
import datetime as dt
import logging
import os
import random
import signal
import sys
import time
from pathlib import Path

import httpx
import stripe

from bench.faults.chaos import Chaos
from bench.faults.checks import Report, caught_up, check, quiet
from bench.faults.client import Api, Upstream
from bench.faults.infra import ROOT, Ports, PrivateStack
from bench.faults.stripe_proxy import StripeProxy
from bench.faults.workload import Workload
from shared import topics

RECOVERY_GOAL_S = 15.0


def parse(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.faults", description=__doc__)
    p.add_argument("--minutes", type=float, default=10.0, help="how long faults are injected")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--replicas", type=int, default=2)
    p.add_argument("--pause", type=float, default=2.0, help="seconds between practice days")
    p.add_argument(
        "--base-port",
        type=int,
        default=int(os.environ.get("FAULTS_BASE_PORT", "19500")),
        help="first of the ports of the private stack (about 50 are used)",
    )
    p.add_argument(
        "--dir",
        type=Path,
        default=Path(os.environ.get("FAULTS_DIR", ROOT / ".stack" / "faults")),
        help="data and logs of the private stack (wiped at start)",
    )
    return p.parse_args(argv)


async def run(args: argparse.Namespace) -> int:
    # SIGTERM (CI timeouts, `kill`) stops the private stack like Ctrl-C does.
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, asyncio.current_task().cancel)  # type: ignore[union-attr]
    rng = random.Random(args.seed)
    stack = PrivateStack(args.dir.resolve(), Ports(args.base_port), replicas=args.replicas)
    proxy = StripeProxy(f"http://127.0.0.1:{stack.ports.localstripe}", stack.ports.stripe_proxy, lose_delay=5.0)
    t0 = time.monotonic()
    await proxy.start()
    try:
        await stack.start()
        print(f"private stack up in {time.monotonic() - t0:.0f} s ({args.dir})", flush=True)
        return await drive(args, rng, stack, proxy)
    finally:
        await proxy.close()
        stack.stop()


async def drive(args: argparse.Namespace, rng: random.Random, stack: PrivateStack, proxy: StripeProxy) -> int:
    settings = stack.settings
    direct = stripe.StripeClient(
        settings.stripe_api_key,
        http_client=stripe.HTTPXClient(),
        base_addresses={"api": f"http://127.0.0.1:{stack.ports.localstripe}"},
    )
    async with httpx.AsyncClient(timeout=30) as http:
        await http.post(
            f"http://127.0.0.1:{stack.ports.localstripe}/_config/webhooks/faults",
            data={"url": f"{stack.url('payments', 0)}/v1/stripe/webhook", "secret": settings.stripe_webhook_secret},
        )
        api = Api(stack, f"practice-faults-{args.seed}", rng, http)
        upstream = Upstream(stack)
        await upstream.start()
        try:
            workload = Workload(api, upstream, rng, direct, settings.stripe_webhook_secret)
            await workload.setup()
            chaos = Chaos(stack, proxy, workload, random.Random(args.seed + 1))
            await chaos.setup()
            until = time.monotonic() + args.minutes * 60
            faults = asyncio.create_task(chaos.run(until))
            day = 0
            try:
                while time.monotonic() < until:
                    await workload.day(day)
                    day += 1
                    await asyncio.sleep(args.pause)  # a practice's pace, not a load test
                await faults
            finally:
                faults.cancel()
            print(
                f"{day} practice days, {sum(chaos.injected.values())} faults; waiting for the system to be quiet",
                flush=True,
            )
            if not await caught_up(settings, "payments", topics.BILLING, seconds=240):
                print("payments has not consumed every bill event within 240 s; autopay runs anyway", flush=True)
            await workload.autopay_night(dt.date(2026, 11, 10))
            await workload.settle_autopay()
            calm = await quiet(api, workload.model)
            report = await check(api, stack, workload.model)
        finally:
            await upstream.stop()
    return print_table(args, chaos, workload, report, calm, proxy)


def print_table(args, chaos: Chaos, workload: Workload, report: Report, calm: bool, proxy: StripeProxy) -> int:
    p50, worst, never = chaos.recovery_stats()
    ops = workload.model.ops
    print(f"\nfault workload: seed {args.seed}, {args.minutes:g} min, {args.replicas} replicas per service")
    print(f"\nfaults injected: {sum(chaos.injected.values())}  (recovery: restart → events flowing, p50 / max)")
    for name, n in sorted(chaos.injected.items(), key=lambda x: -x[1]):
        f50, fmax, fnever = chaos.recovery_stats(name)
        rec = f"{f50:5.1f} / {fmax:5.1f} s" if f50 is not None else "  n/a"
        where = ", ".join(f"{stage} {t:.1f}" for stage, t in chaos.stage_medians(name).items())
        print(f"  {n:5d}  {name:40s} {rec}{f'  ({fnever} never)' if fnever else ''}  [{where}]")
    print(f"operations done: {sum(ops.values())}")
    for name, n in sorted(ops.items(), key=lambda x: -x[1]):
        print(f"  {n:5d}  {name}")
    print(f"\n{'check':48s} {'lost':>5s} {'doubled':>8s}  detail")
    for row in report.rows + report.notes:
        print(f"{row.what:48s} {row.lost:5d} {row.doubled:8d}  {row.detail}")
    retried = proxy.retries_with_other_params()
    print(f"{'Stripe retries with other parameters':48s} {len(retried):5d} {'':8s}  (real Stripe refuses them)")
    rec = f"p50 {p50:.1f} s, max {worst:.1f} s" if p50 is not None else "n/a"
    print(f"{'recovery: restart → events flowing':48s} {never:5d} {'':8s}  {rec} (goal < {RECOVERY_GOAL_S:g} s)")
    if not calm:
        print("the system did not become quiet within the wait")
    for line in report.examples[:30]:
        print(f"  - {line}")
    ok = report.ok and never == 0 and calm and not retried
    print(
        f"\nresult: {'0 lost, 0 doubled, 0 drift' if ok else 'FAILED'}; recovery goal "
        f"{'met' if worst is not None and worst < RECOVERY_GOAL_S else 'NOT met'}"
    )
    return 0 if ok else 1


def main() -> None:
    # The producer's reconnect chatter while the broker is down is expected here.
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)
    sys.exit(asyncio.run(run(parse(sys.argv[1:]))))


if __name__ == "__main__":
    main()
