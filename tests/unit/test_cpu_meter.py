"""bench.cpu.CpuMeter: a render process replaced during a stretch counts with the CPU it used in
that stretch only (the benchmarks' PDFs per CPU-second rests on it)."""

import multiprocessing
import os
import time
from concurrent.futures import ProcessPoolExecutor

from bench.cpu import CpuMeter


def burn(seconds: float) -> float:
    """Spin for about `seconds` of this process's CPU; the CPU seconds it took."""
    start = time.process_time()
    while time.process_time() - start < seconds:
        sum(range(1000))
    return time.process_time() - start


def test_a_render_process_that_ends_in_the_stretch_counts_only_its_cpu_of_the_stretch() -> None:
    meter = CpuMeter({"documents": os.getpid()})  # this process plays the service; its pool, the render process
    pool = ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn"))
    before = pool.submit(burn, 1.5).result()
    meter.start()
    began = time.monotonic()
    during = pool.submit(burn, 0.4).result()
    pool.shutdown(wait=True)  # the process ends and is reaped inside the stretch
    shares, _, _ = meter.stop()
    counted = shares["documents render processes"] * (time.monotonic() - began)
    assert abs(counted - during) < before / 3, (counted, during, before)
