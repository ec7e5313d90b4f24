"""Wiring common to the four services: settings → database, broker, outbox relay, consumers,
HTTP app with ops endpoints, lifespan. A service's app.py only says what is specific to it."""

import asyncio
import contextlib
import gc
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Annotated, Any

import uvicorn
from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.openapi.docs import get_swagger_ui_html
from faststream.kafka import KafkaBroker
from faststream.specification import AsyncAPI
from sqlalchemy import MetaData, Table

from shared import production, topics
from shared.audit import AuditContext
from shared.consumer import BatchHandler, EventConsumer, Handler
from shared.db import Database
from shared.events import AuditRecorded, Envelope, Model
from shared.http import (
    BodyGuard,
    document_errors,
    install_error_handlers,
    install_metrics_middleware,
    metrics_route,
    ops_router,
)
from shared.kafka import KafkaPublisher, faststream_security
from shared.logs import configure_logging
from shared.migrations import upgrade
from shared.outbox import Outbox, OutboxRelay, Publisher
from shared.settings import Settings

log = logging.getLogger(__name__)

Hook = Callable[[], Awaitable[None]]


class Service:
    """One running service: its DB (own schema and role), Kafka consumers, outbox relay,
    background tasks and HTTP app. Stateless: run as many replicas as needed."""

    def __init__(
        self,
        name: str,
        settings: Settings,
        metadata: MetaData,
        *,
        publisher: Publisher | None = None,
        run_migrations: bool = True,
    ) -> None:
        self.name = name
        self.settings = settings
        self.metadata = metadata
        self.db = Database(settings.database_url(name), name, pool_size=settings.pg_pool_size)
        # FastStream's per-message "Received/Processed" lines at DEBUG: at INFO they cost CPU per batch.
        self.broker = KafkaBroker(
            settings.kafka_bootstrap_servers,
            security=faststream_security(settings),
            retry_backoff_ms=settings.kafka_retry_backoff_ms,
            logger=logging.getLogger(f"{name}.kafka"),
            log_level=logging.DEBUG,
        )
        self._kafka_publisher = None if publisher else KafkaPublisher(settings)
        self.publisher: Publisher = publisher or self._kafka_publisher  # type: ignore[assignment]
        self.outbox_table: Table = metadata.tables[f"{name}.outbox"]
        self.inbox_table: Table = metadata.tables[f"{name}.inbox"]
        self.idempotency_table: Table = metadata.tables[f"{name}.idempotency_keys"]
        self.outbox = Outbox(self.outbox_table, settings)
        poll = settings.outbox_poll_ms / 1000
        self.relay = OutboxRelay(
            self.db,
            self.outbox_table,
            self.publisher,
            poll_seconds=poll,
            max_message_bytes=settings.kafka_max_message_bytes,
        )
        self.consumers: list[EventConsumer] = []
        self.run_migrations = run_migrations
        self._startup: list[Hook] = []
        self._shutdown: list[Hook] = []
        self._tasks: list[Callable[[], Awaitable[None]]] = []
        self._running: list[asyncio.Task[None]] = []

    def consume(
        self,
        topic: str,
        handlers: dict[str, Handler],
        *,
        batch_handlers: dict[str, BatchHandler] | None = None,
        unclaimed: frozenset[str] = frozenset(),
        max_records: int = 500,
    ) -> EventConsumer:
        consumer = EventConsumer(
            service=self.name,
            topic=topic,
            db=self.db,
            inbox=self.inbox_table,
            handlers=handlers,
            dlq_publisher=self.publisher,
            settings=self.settings,
            max_retries=self.settings.consumer_max_retries,
            backoff_seconds=self.settings.consumer_retry_backoff_ms / 1000,
            batch_handlers=batch_handlers or {},
            unclaimed=unclaimed,
        )
        consumer.subscribe(self.broker, max_records=max_records)
        self.consumers.append(consumer)
        return consumer

    def publishes(self, topic: str, models: Sequence[type[Model]]) -> None:
        """Declare the events this service writes (through its outbox) for the AsyncAPI document;
        the outbox relay does the publishing."""
        for model in models:
            self.broker.publisher(
                self.settings.topic(topic),
                title=f"{topic}:{model.__name__}",
                description=(model.__doc__ or "").strip() or None,
                schema=Envelope[model],  # type: ignore[valid-type]
            )

    def on_startup(self, hook: Hook) -> None:
        self._startup.append(hook)

    def on_shutdown(self, hook: Hook) -> None:
        self._shutdown.append(hook)

    def background(self, loop: Callable[[], Awaitable[None]]) -> None:
        """A long-running coroutine (scheduler, worker) started with the service."""
        self._tasks.append(loop)

    async def start(self) -> None:
        production.check(self.settings, self.name)
        configure_logging(self.settings.log_level)
        if self.run_migrations:
            await asyncio.to_thread(upgrade, self.name, self.settings.database_url(self.name), self.settings)
        if self._kafka_publisher:
            await self._kafka_publisher.start()
        for hook in self._startup:
            await hook()
        self.relay.start()
        await self.broker.start()
        self._running = [asyncio.create_task(t()) for t in self._tasks]
        # Everything loaded at start-up lives for the whole process: keep it out of the garbage
        # collector's full passes, which otherwise stall the hot consume loop (~25% of ingest).
        gc.freeze()
        log.info("%s started", self.name)

    async def stop(self) -> None:
        for task in self._running:
            task.cancel()
        await asyncio.gather(*self._running, return_exceptions=True)
        for consumer in self.consumers:
            await consumer.commits.close()
        await self.broker.stop()
        await self.relay.stop()
        for hook in self._shutdown:
            await hook()
        if self._kafka_publisher:
            await self._kafka_publisher.stop()
        await self.db.dispose()

    async def readiness(self) -> dict[str, str]:
        checks: dict[str, str] = {}
        try:
            await self.db.ping()
            checks["database"] = "ok"
        except Exception as exc:
            checks["database"] = f"error: {type(exc).__name__}"
        try:
            checks["broker"] = "ok" if await self.broker.ping(timeout=2) else "error: no answer"
        except Exception as exc:
            checks["broker"] = f"error: {type(exc).__name__}"
        return checks

    def http_app(self, routers: Sequence[APIRouter], *, title: str, description: str = "") -> FastAPI:
        @asynccontextmanager
        async def lifespan(_: FastAPI) -> AsyncIterator[None]:
            await self.start()
            try:
                yield
            finally:
                await self.stop()

        if topics.WRITES.get(self.name):  # every service with a topic audits its writes there (shared.audit)
            self.publishes(topics.WRITES[self.name][0], [AuditRecorded])
        # In production the public port serves the API only: docs, OpenAPI, AsyncAPI and metrics
        # move to the admin listener (admin_app, on ADMIN_HOST at the port + ADMIN_PORT_OFFSET).
        public = self.settings.app_env != "production"
        docs = {} if public else {"docs_url": None, "redoc_url": None, "openapi_url": None}
        app = FastAPI(title=title, description=description, lifespan=lifespan, version="1", **docs)  # type: ignore[arg-type]
        app.state.service = self
        install_error_handlers(app)
        document_errors(app)
        app.add_middleware(AuditContext)
        install_metrics_middleware(app, self.name)
        app.add_middleware(BodyGuard, max_bytes=self.settings.http_max_body_bytes)
        app.include_router(ops_router(self.readiness, metrics=False))
        for router in routers:
            app.include_router(router)
        if public:
            app.include_router(self._introspection_router(title, description))
        return app

    def _introspection_router(self, title: str, description: str) -> APIRouter:
        """/metrics and /asyncapi.json: on the public port in development, else on the admin port."""
        router = APIRouter(tags=["ops"])
        router.add_api_route("/metrics", metrics_route, methods=["GET"], summary="Prometheus metrics")

        @router.get("/asyncapi.json", summary="AsyncAPI document of the events")
        async def asyncapi() -> Any:
            spec = AsyncAPI(self.broker, title=f"{title} events", version="1", description=description)
            return spec.to_specification().to_jsonable()

        return router

    def admin_app(self, app: FastAPI) -> FastAPI:
        """The operators' listener of production mode: metrics, AsyncAPI, and the OpenAPI
        document and docs of the public `app`."""
        admin = FastAPI(title=f"{app.title} (admin)", openapi_url=None, docs_url=None, redoc_url=None)
        admin.include_router(self._introspection_router(app.title, app.description))

        @admin.get("/openapi.json", include_in_schema=False)
        async def openapi() -> Any:
            return app.openapi()

        @admin.get("/docs", include_in_schema=False)
        async def docs() -> Any:
            return get_swagger_ui_html(openapi_url="/openapi.json", title=f"{app.title} API")

        return admin

    def run(self, app: FastAPI) -> None:
        """Serve `app` (and in production the admin listener); refuse unfit production settings."""
        try:
            production.check(self.settings, self.name)
        except production.ProductionConfigError as exc:
            raise SystemExit(str(exc)) from None
        configure_logging(self.settings.log_level)
        level = self.settings.log_level.lower()
        port = self.settings.http_port(self.name)
        main = uvicorn.Server(
            uvicorn.Config(
                app,
                host=self.settings.http_host,
                port=port,
                log_level=level,
                access_log=False,
                log_config=None,  # uvicorn's lines (and tracebacks) through the JSON formatter, addresses masked
            )
        )
        offset = self.settings.admin_port_offset
        if self.settings.app_env != "production" or not offset:
            main.run()
            return
        admin_config = uvicorn.Config(
            self.admin_app(app), host=self.settings.admin_host, port=port + offset, log_level=level,
            access_log=False, lifespan="off", log_config=None,
        )  # fmt: skip
        asyncio.run(_serve_with_admin(main, _AdminServer(admin_config)))


class _AdminServer(uvicorn.Server):
    """The admin listener leaves signals to the main server, which stops it on its way out."""

    def capture_signals(self) -> contextlib.AbstractContextManager[None]:
        return contextlib.nullcontext()


async def _serve_with_admin(main: uvicorn.Server, admin: uvicorn.Server) -> None:
    admin_task = asyncio.create_task(admin.serve())
    try:
        await main.serve()
    finally:
        admin.should_exit = True
        await admin_task


async def get_service(request: Request) -> Any:
    """Async on purpose: FastAPI runs a plain `def` dependency in a worker thread, a thread hop
    (and two event-loop wake-ups) on every request of every route."""
    return request.app.state.service


ServiceDep = Annotated[Any, Depends(get_service)]
