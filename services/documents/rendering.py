"""HTML (Jinja2) → PDF (WeasyPrint), in a process pool so the event loop keeps consuming
and answering health checks while CPU-bound rendering runs."""

import asyncio
import hashlib
import logging
import multiprocessing
import os
import urllib.parse
import urllib.request
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import jinja2
from weasyprint import HTML
from weasyprint.urls import URLFetcher, URLFetcherResponse

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


class OwnAssetsOnly(URLFetcher):
    """WeasyPrint may load the service's own static assets (files under the templates folder)
    and `data:` URLs, nothing else: a field or template naming an external URL or another file
    (`file:///etc/...`) is not fetched. WeasyPrint logs the refusal and renders without it."""

    def fetch(self, url: str, headers: dict[str, str] | None = None) -> URLFetcherResponse:
        parts = urllib.parse.urlsplit(url)
        if parts.scheme == "data":
            return super().fetch(url, headers)
        if parts.scheme == "file" and parts.netloc in ("", "localhost"):
            path = Path(urllib.request.url2pathname(parts.path)).resolve()
            if path.is_relative_to(TEMPLATES) and path.is_file():
                return super().fetch(url, headers)
        raise ValueError(f"not fetched: {parts.scheme}: URLs other than the service's own assets are refused")


def html_to_pdf(html: str) -> tuple[bytes, int]:
    document = HTML(string=html, base_url=str(TEMPLATES), url_fetcher=OwnAssetsOnly(timeout=5)).render()
    return document.write_pdf(), len(document.pages)


def render_pdf(request: RenderRequest) -> RenderedPdf:
    """Runs in a worker process; any failure comes back as a picklable RenderError."""
    try:
        pdf, pages = html_to_pdf(render_html(request))
    except Exception as exc:
        raise RenderError(f"{type(exc).__name__}: {exc}") from None
    return RenderedPdf(pdf=pdf, pages=pages, sha256=hashlib.sha256(pdf).hexdigest())


def warm_up() -> None:
    """Load fonts and templates once per worker process, not on its first real job."""
    environment().get_template("layout.html")
    html_to_pdf("<p style='font-family: DejaVu Sans'>warm-up</p>")


class Renderer:
    """A pool of render processes. `spawn`, not fork: the parent runs threads (asyncpg,
    Kafka) that a forked child must not inherit."""

    def __init__(self, workers: int = 0) -> None:
        self.workers = workers or os.cpu_count() or 1
        self._pool: ProcessPoolExecutor | None = None

    def start(self) -> None:
        if self._pool is None:
            self._pool = ProcessPoolExecutor(
                max_workers=self.workers,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=warm_up,
                max_tasks_per_child=TASKS_PER_PROCESS,
            )

    def stop(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None

    async def render(self, request: RenderRequest) -> RenderedPdf:
        self.start()
        assert self._pool is not None
        try:
            return await asyncio.get_running_loop().run_in_executor(self._pool, render_pdf, request)
        except BrokenProcessPool as exc:
            log.error("render process died; starting a new pool")
            self.stop()
            raise RendererCrashed(str(exc) or "render process died") from exc
