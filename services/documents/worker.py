"""The render worker: claims pending versions, renders them in the process pool (no DB
transaction open meanwhile), then in one transaction stores the PDF (or the failure) and
stages DocumentRendered / DocumentFailed. Any number of replicas share the queue."""

import asyncio
import logging
from typing import cast

from services.documents import repository
from services.documents.db import RENDER_SIGNAL
from services.documents.domain import Kind, SourceProblem, prepare
from services.documents.metrics import RENDER_SECONDS, RENDERED
from services.documents.rendering import RenderedPdf, Renderer, RendererCrashed, RenderError
from shared import topics
from shared.db import Database
from shared.events import DocumentFailed, DocumentRendered, new_envelope
from shared.runtime import Service

log = logging.getLogger(__name__)


def pdf_url(documents_url: str, document_id: object) -> str:
    return f"{documents_url.rstrip('/')}/v1/documents/{document_id}/pdf"


class RenderWorker:
    def __init__(self, svc: Service, renderer: Renderer, *, poll_seconds: float = 1.0) -> None:
        self.svc = svc
        self.renderer = renderer
        self.poll_seconds = poll_seconds
        self.lease_seconds = svc.settings.documents_render_lease_seconds
        self.max_attempts = svc.settings.documents_render_max_attempts
        # one job queued behind each one rendering, so no process idles while the next is claimed
        self._slots = asyncio.Semaphore(2 * renderer.workers)
        self._wake = asyncio.Event()
        svc.db.on_commit(RENDER_SIGNAL, self._wake.set)
        self._tasks: set[asyncio.Task[None]] = set()

    async def run(self) -> None:
        """Keep every render process busy: claim a job whenever a slot is free."""
        try:
            while True:
                await self._slots.acquire()
                self._wake.clear()  # before claiming: a job committed meanwhile wakes the next wait
                try:
                    job = await self._claim()
                except Exception:
                    log.exception("claiming a render job failed")
                    job = None
                if job is None:
                    self._slots.release()
                    await self._idle()
                    continue
                task = asyncio.create_task(self._work(job))
                self._tasks.add(task)
                task.add_done_callback(self._done)
        finally:
            for task in self._tasks:
                task.cancel()

    def _done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        self._slots.release()

    async def _idle(self) -> None:
        try:
            await asyncio.wait_for(self._wake.wait(), timeout=self.poll_seconds)
        except TimeoutError:
            pass

    async def _claim(self) -> repository.Job | None:
        async with self.svc.db.transaction() as session:
            return await repository.claim_job(session, self.lease_seconds)

    async def _work(self, job: repository.Job | None) -> None:
        """Render jobs one after another in this slot: storing a PDF claims the next job in the
        same transaction (one transaction per PDF, not two); anything else ends the run."""
        while job is not None:
            job = await self._process(job)

    async def _process(self, job: repository.Job) -> repository.Job | None:
        """Render `job`; the next job if its PDF was stored with one claimed."""
        try:
            with RENDER_SECONDS.labels(job.kind).time():
                rendered = await self.renderer.render(prepare(cast(Kind, job.kind), job.source))
        except (SourceProblem, RenderError) as exc:
            await self._fail(job, str(exc))
            return None
        except RendererCrashed as exc:
            if job.attempts >= self.max_attempts:
                await self._fail(job, f"rendering crashed {job.attempts} times: {exc}")
            else:
                await self._release(job)
            return None
        except Exception:
            # unexpected (e.g. the database went away): the lease brings the job back
            log.exception("render job %s failed unexpectedly; it will be retried", job.id)
            return None
        return await self._store(job, rendered)

    async def _store(self, job: repository.Job, rendered: RenderedPdf) -> repository.Job | None:
        """Store the PDF and stage DocumentRendered (unless a replica whose lease ran out did so
        first), and claim the next job."""
        async with self.svc.db.transaction() as session:
            stored = await repository.mark_rendered(
                session, job.id, pdf=rendered.pdf, pages=rendered.pages, sha256=rendered.sha256
            )
            if stored:
                event = DocumentRendered(
                    document_id=str(job.id), kind=cast(Kind, job.kind), source_id=job.source_id,
                    client_id=job.client_id, version=job.version, pages=rendered.pages, sha256=rendered.sha256,
                    url=pdf_url(self.svc.settings.documents_url, job.id),
                )  # fmt: skip
                await self.svc.outbox.stage(
                    session, topics.DOCUMENTS, [(job.client_id, new_envelope(job.practice_id, event))]
                )
            following = await repository.claim_job(session, self.lease_seconds)
        if stored:
            RENDERED.labels(job.kind, "rendered").inc()
        return following

    async def _fail(self, job: repository.Job, reason: str) -> None:
        log.warning("document %s (%s %s v%d) failed: %s", job.id, job.kind, job.source_id, job.version, reason[:300])
        async with self.svc.db.transaction() as session:
            if not await repository.mark_failed(session, job.id, reason):
                return
            event = DocumentFailed(
                kind=cast(Kind, job.kind), source_id=job.source_id, client_id=job.client_id, version=job.version,
                reason=reason, document_id=str(job.id),
            )  # fmt: skip
            await self.svc.outbox.stage(
                session, topics.DOCUMENTS, [(job.client_id, new_envelope(job.practice_id, event))]
            )
        RENDERED.labels(job.kind, "failed").inc()

    async def _release(self, job: repository.Job) -> None:
        async with self.svc.db.transaction() as session:
            await repository.release_job(session, job.id)
            Database.signal(session, RENDER_SIGNAL)
