"""Render jobs against the real database and broker: replicas share them and each version is
rendered and announced once; a job a dead replica held comes back after its lease; a renderer
that keeps crashing ends in DocumentFailed, not in a loop; storing a PDF claims the next job."""

import asyncio
import datetime as dt
import json
import uuid
from typing import Any

import pytest
from sqlalchemy import func, select, update

from services.documents import repository
from services.documents.app import create_service
from services.documents.db import documents, metadata
from services.documents.domain import RenderRequest
from services.documents.rendering import RenderedPdf, Renderer, RendererCrashed
from services.documents.worker import RenderWorker
from shared import topics
from shared.events import BillCreated, new_envelope
from shared.runtime import Service
from shared.settings import Settings
from tests.conftest import eventually, isolated_topics, read_topic
from tests.unit.documents import samples

pytestmark = pytest.mark.integration

PRACTICE = "practice-jobs"


async def statuses(svc: Service, source_ids: list[str]) -> dict[str, str]:
    async with svc.db.transaction() as session:
        rows = await session.execute(
            select(documents.c.source_id, documents.c.status).where(documents.c.source_id.in_(source_ids))
        )
        return dict(rows.all())


async def all_rendered(svc: Service, source_ids: list[str]) -> bool:
    found = await statuses(svc, source_ids)
    return len(found) == len(source_ids) and set(found.values()) == {"rendered"}


async def test_two_replicas_share_the_work_and_announce_each_version_once(test_settings: Settings, publish) -> None:
    settings = (await isolated_topics(test_settings)).model_copy(update={"documents_render_workers": 1})
    replicas = [create_service(settings), create_service(settings)]
    renders = [0, 0]
    first_busy = asyncio.Event()
    for n, replica in enumerate(replicas):
        worker = next(t.__self__ for t in replica._tasks if isinstance(getattr(t, "__self__", None), RenderWorker))
        real_render = worker.renderer.render

        async def counted(request: RenderRequest, n: int = n, real_render: Any = real_render) -> RenderedPdf:
            renders[n] += 1  # counted as it starts: a second render of one version would show
            if n == 0:
                await first_busy.wait()  # replica 0 holds its jobs until replica 1 has rendered
            return await real_render(request)

        worker.renderer.render = counted
    for replica in replicas:  # one after the other: migrations are not meant to race
        await replica.start()
    try:
        bills = [samples.bill(bill_id=f"bill-{uuid.uuid4()}", client_id=f"client-{i}") for i in range(8)]
        for bill in bills:
            env = json.loads(new_envelope(PRACTICE, BillCreated(bill=bill)).model_dump_json())
            await publish(topics.BILLING, env, key=bill.client_id, settings=settings)
        ids = [b.id for b in bills]
        await eventually(lambda: renders[1] >= 1 and renders[0] >= 1, timeout=60)
        first_busy.set()
        await eventually(lambda: all_rendered(replicas[0], ids), timeout=90)
        assert sum(renders) == len(bills), f"each version rendered once, by either replica: {renders}"
        records = await read_topic(settings, topics.DOCUMENTS, until=lambda rs: len(rs) >= len(bills))
        announced = [json.loads(r.value)["data"]["source_id"] for r in records]
        assert sorted(announced) == sorted(ids), "each version rendered and announced exactly once"
        assert {r.key.decode() for r in records} == {b.client_id for b in bills}
    finally:
        first_busy.set()
        await asyncio.gather(*(r.stop() for r in replicas))


async def test_a_job_held_by_a_dead_replica_comes_back_after_its_lease(test_settings: Settings) -> None:
    settings = (await isolated_topics(test_settings)).model_copy(update={"documents_render_workers": 1})
    svc = create_service(settings)
    bill = samples.bill(bill_id=f"bill-{uuid.uuid4()}")
    await svc.start()
    try:
        async with svc.db.transaction() as session:
            job_id = await repository.add_version(
                session, practice_id=PRACTICE, client_id=bill.client_id, kind="bill", source_id=bill.id,
                version=1, source=bill.model_dump(mode="json"),
            )  # fmt: skip
            # claimed by a replica that then died: leased for another second, attempt 1 used
            await session.execute(
                update(documents)
                .where(documents.c.id == job_id)
                .values(claimed_until=func.now() + dt.timedelta(seconds=1), attempts=1)
            )
        async with svc.db.transaction() as session:
            taken = await repository.claim_job(session, settings.documents_render_lease_seconds)
        assert taken is None or taken.id != job_id, "not taken while the lease holds"
        assert (await statuses(svc, [bill.id]))[bill.id] == "pending"
        await eventually(lambda: all_rendered(svc, [bill.id]), timeout=15)
        async with svc.db.transaction() as session:
            attempts = await session.scalar(select(documents.c.attempts).where(documents.c.id == job_id))
        assert attempts == 2
    finally:
        await svc.stop()


async def test_storing_a_pdf_claims_the_next_job_so_one_slot_renders_the_queue(test_settings: Settings) -> None:
    """A slot goes from job to job without the claiming loop: the transaction that stores a PDF
    claims the next one (a transaction per PDF instead of two)."""
    settings = await isolated_topics(test_settings)
    svc = Service("documents", settings, metadata)
    renderer = Renderer(1)
    worker = RenderWorker(svc, renderer)
    bills = [samples.bill(bill_id=f"bill-{uuid.uuid4()}") for _ in range(3)]
    await svc.start()
    try:
        async with svc.db.transaction() as session:
            for bill in bills:
                await repository.add_version(
                    session, practice_id=PRACTICE, client_id=bill.client_id, kind="bill", source_id=bill.id,
                    version=1, source=bill.model_dump(mode="json"),
                )  # fmt: skip
        async with svc.db.transaction() as session:
            first = await repository.claim_job(session, settings.documents_render_lease_seconds)
        await worker._work(first)  # the claiming loop (`run`) is not running
        assert await all_rendered(svc, [b.id for b in bills])
        records = await read_topic(settings, topics.DOCUMENTS, until=lambda rs: len(rs) >= 3)
        assert sorted(json.loads(r.value)["data"]["source_id"] for r in records) == sorted(b.id for b in bills)
    finally:
        renderer.stop()
        await svc.stop()


class CrashingRenderer:
    """A render pool whose processes always die (e.g. killed for memory)."""

    workers = 1

    def __init__(self) -> None:
        self.calls = 0

    async def render(self, request: RenderRequest) -> RenderedPdf:
        self.calls += 1
        raise RendererCrashed("render process died")


async def test_a_renderer_that_keeps_crashing_ends_in_document_failed(test_settings: Settings) -> None:
    settings = (await isolated_topics(test_settings)).model_copy(update={"documents_render_max_attempts": 3})
    svc = Service("documents", settings, metadata)
    await svc.start()
    renderer = CrashingRenderer()
    worker = RenderWorker(svc, renderer, poll_seconds=0.05)  # type: ignore[arg-type]
    task = asyncio.create_task(worker.run())
    bill = samples.bill(bill_id=f"bill-{uuid.uuid4()}")
    try:
        async with svc.db.transaction() as session:
            await repository.add_version(
                session, practice_id=PRACTICE, client_id=bill.client_id, kind="bill", source_id=bill.id,
                version=1, source=bill.model_dump(mode="json"),
            )  # fmt: skip
        await eventually(lambda: _status_is(svc, bill.id, "failed"), timeout=15)
        assert renderer.calls == 3
        records = await read_topic(settings, topics.DOCUMENTS, until=lambda rs: len(rs) >= 1)
        [failed] = [json.loads(r.value) for r in records]
        assert failed["event_type"] == "DocumentFailed"
        assert "rendering crashed 3 times" in failed["data"]["reason"]
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await svc.stop()


async def _status_is(svc: Service, source_id: str, status: str) -> Any:
    return (await statuses(svc, [source_id])).get(source_id) == status
