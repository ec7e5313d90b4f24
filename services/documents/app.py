"""Wiring: documents consumes billing.events, renders in a process pool, serves the PDFs."""

from fastapi import FastAPI

from services.documents.api import router
from services.documents.db import metadata
from services.documents.handlers import BillingEvents
from services.documents.rendering import Renderer
from services.documents.worker import RenderWorker
from shared import topics
from shared.events import DocumentFailed, DocumentRendered
from shared.runtime import Service
from shared.settings import Settings


def create_service(settings: Settings) -> Service:
    svc = Service("documents", settings, metadata)
    renderer = Renderer(settings.documents_render_workers, settings.documents_render_nice)
    worker = RenderWorker(svc, renderer)
    svc.consume(topics.BILLING, BillingEvents().handlers)
    svc.publishes(topics.DOCUMENTS, [DocumentRendered, DocumentFailed])

    async def start_pool() -> None:
        renderer.start()

    async def stop_pool() -> None:
        renderer.stop()

    svc.on_startup(start_pool)
    svc.on_shutdown(stop_pool)
    svc.background(worker.run)
    return svc


def build(settings: Settings) -> tuple[Service, FastAPI]:
    svc = create_service(settings)
    app = svc.http_app(
        [router],
        title="documents",
        description="PDF bills, statements and superbills (WeasyPrint), every version kept.",
    )
    return svc, app
