"""HTML (Jinja2) → PDF (WeasyPrint), in a process pool so the event loop keeps consuming
and answering health checks while CPU-bound rendering runs."""

import asyncio
import ctypes
import gc
import hashlib
import logging
import multiprocessing
import os
import signal
import sys
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import jinja2

from services.documents.domain import RenderRequest

TEMPLATES = Path(__file__).resolve().parent / "templates"
TASKS_PER_PROCESS = 500  # a fresh process now and then keeps WeasyPrint's caches from growing without end
log = logging.getLogger(__name__)


class RenderError(Exception):
    """The template or WeasyPrint failed on this input (permanent: DocumentFailed)."""


class RendererCrashed(Exception):
    """A render process died (out of memory, killed): the job is retried."""


@dataclass(frozen=True)
class RenderedPdf:
    pdf: bytes
    pages: int
    sha256: str


@lru_cache
def environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=jinja2.select_autoescape(["html"]),
        undefined=jinja2.StrictUndefined,
    )


def render_html(request: RenderRequest) -> str:
    return environment().get_template(request.template).render(request.context)


def render_pdf(request: RenderRequest) -> RenderedPdf:
    """Runs in a worker process; any failure comes back as a picklable RenderError."""
    from services.documents.pdf import html_to_pdf  # WeasyPrint: only render processes load it

    try:
        pdf, pages = html_to_pdf(render_html(request))
    except Exception as exc:
        raise RenderError(f"{type(exc).__name__}: {exc}") from None
    return RenderedPdf(pdf=pdf, pages=pages, sha256=hashlib.sha256(pdf).hexdigest())


PR_SET_PDEATHSIG = 1  # linux/prctl.h


def die_with_parent(parent_pid: int) -> None:
    """A render process must not outlive its service process: after a kill -9 of the parent
    nobody is left to stop the pool, and orphans would keep rendering and holding memory. Linux
    sends it SIGKILL when the thread that started it ends (the event loop's thread, or the pool's
    manager thread, which ends only with the pool)."""
    if not sys.platform.startswith("linux"):
        return
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")
    if os.getppid() != parent_pid:  # the parent died before the signal was armed
        os._exit(1)


def warm_up() -> None:
    """Load fonts and templates once per render process, not on its first real job."""
    from services.documents.pdf import html_to_pdf

    environment().get_template("layout.html")
    html_to_pdf("<p style='font-family: DejaVu Sans'>warm-up</p>")


def start_worker(parent_pid: int, nice: int) -> None:
    """Each render process: die with the parent, warm up, then step back `nice` in the CPU
    scheduler. Rendering is throughput work: it takes every idle cycle, but consuming, HTTP
    answers and health probes (of this service and any beside it) come first when the CPU is
    short. The warm-up is not: a restarted service's first PDF waits for it, and at nice 10 on
    a busy machine it took most of that wait.
    The warm process's heap (WeasyPrint, its fonts, the templates) lives as long as the process:
    frozen, the collector's full passes skip it (they took 13 ms of each 150 ms PDF, 6-7 after)."""
    die_with_parent(parent_pid)
    warm_up()
    gc.freeze()
    os.nice(nice)


class Renderer:
    """A pool of render processes. `spawn`, not fork: the parent runs threads (asyncpg,
    Kafka) that a forked child must not inherit."""

    def __init__(self, workers: int = 0, nice: int = 0) -> None:
        self.workers = workers or os.cpu_count() or 1
        self.nice = nice
        self._pool: ProcessPoolExecutor | None = None
        self._jobs = 0  # sent to the current pool

    def start(self) -> None:
        """Make the pool and start its processes now (they warm up while the service starts
        consuming), so the first job after a restart does not wait for a cold start."""
        if self._pool is None:
            self._pool = ProcessPoolExecutor(
                max_workers=self.workers,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=start_worker,
                initargs=(os.getpid(), self.nice),
            )
            self._jobs = 0
            for _ in range(self.workers):
                self._pool.submit(os.getpid)

    def pids(self) -> list[int]:
        """The render processes' ids (tests, diagnostics)."""
        return list(self._pool._processes) if self._pool is not None else []

    def stop(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None

    def _pool_for_next_job(self) -> ProcessPoolExecutor:
        """The current pool, or after TASKS_PER_PROCESS jobs per process a fresh one: its processes
        warm up while the old pool finishes the jobs it holds and then ends. Not the pool's own
        `max_tasks_per_child`: in Python 3.11 a process that reached it could exit with no successor
        while a job waited in the pool's queue, which then waited for its lease to run out."""
        if self._pool is not None and self._jobs >= TASKS_PER_PROCESS * self.workers:
            retired, self._pool = self._pool, None
            retired.shutdown(wait=False)
        self.start()
        assert self._pool is not None
        self._jobs += 1
        return self._pool

    async def render(self, request: RenderRequest) -> RenderedPdf:
        pool = self._pool_for_next_job()
        try:
            return await asyncio.get_running_loop().run_in_executor(pool, render_pdf, request)
        except BrokenProcessPool as exc:
            log.error("render process died; starting a new pool")
            if pool is self._pool:
                self.stop()
            raise RendererCrashed(str(exc) or "render process died") from exc
