"""Where a cash `POST /v1/payments` spends its time: the services as processes on the real stack,
bills made ready, then cash payments one after another while py-spy samples the payments process.

Run: .venv/bin/python -m bench.profile_payment [payments] [out-dir]   (needs ./dev infra and py-spy)
Writes out-dir/payments.txt (py-spy's collapsed stacks of the payments process, on-CPU samples)
and prints the POST's own p50/p99. On a loaded machine read the shares, not the milliseconds
(README "Where a cash payment spends its time").
"""

import asyncio
import datetime as dt
import signal
import statistics
import sys
import time
from pathlib import Path

import httpx
from aiokafka import AIOKafkaProducer

from bench.bench_latency import Run
from bench.common import PRACTICE, isolated_settings
from shared.auth import issue_token
from shared.kafka import client_options
from tests.processes import running_services, smtp_server

PY_SPY = str(Path(sys.executable).parent / "py-spy")  # installed beside this Python (the dev extra)


async def main(count: int, out: Path) -> int:
    headers = {"Authorization": f"Bearer {issue_token(PRACTICE, 'staff', ttl=dt.timedelta(hours=2))}"}
    async with isolated_settings() as base:
        with smtp_server() as (inbox, port):
            async with running_services(base, inbox, port) as stack:
                producer = AIOKafkaProducer(**client_options(base), linger_ms=1)
                await producer.start()
                try:
                    async with httpx.AsyncClient(timeout=30, headers=headers) as http:
                        run = Run(stack, producer, http)
                        bills = [await run.bill() for _ in range(count)]
                        await asyncio.sleep(5)  # the bills reach payments, their PDFs render
                        spy = await asyncio.create_subprocess_exec(
                            PY_SPY, "record", "--pid", str(stack.processes["payments"].pid), "--format", "raw",
                            "--rate", "50", "--nonblocking", "-o", str(out / "payments.txt"),
                            stderr=asyncio.subprocess.DEVNULL,
                        )  # fmt: skip
                        await asyncio.sleep(1)
                        times = []
                        for bill in bills:
                            start = time.perf_counter()
                            r = await http.post(run.url("payments", "/v1/payments"), json={
                                "client_id": bill["client_id"], "bill_id": bill["id"], "payer": "client",
                                "method": "cash", "amount_cents": bill["balance_cents"]})  # fmt: skip
                            r.raise_for_status()
                            times.append((time.perf_counter() - start) * 1000)
                        spy.send_signal(signal.SIGINT)
                        await spy.wait()
                finally:
                    await producer.stop()
    times.sort()
    print(f"POST /v1/payments (cash) x{len(times)}: p50 {statistics.median(times):.1f} ms "
          f"p99 {times[int(len(times) * 0.99) - 1]:.1f} ms")  # fmt: skip
    return 0


if __name__ == "__main__":
    args = sys.argv[1:]
    target = Path(args[1] if len(args) > 1 else ".stack/profile")
    target.mkdir(parents=True, exist_ok=True)
    sys.exit(asyncio.run(main(int(args[0]) if args else 100, target)))
