"""A real SMTP server (aiosmtpd) that can refuse or defer, a documents HTTP stand-in serving
PDFs, and the notifications service running in-process against real Kafka and Postgres."""

import asyncio
import email
import email.policy
import socket
from collections.abc import AsyncIterator
from email.message import EmailMessage
from typing import Any

import httpx
import pytest
import uvicorn
from aiosmtpd.controller import Controller
from fastapi import FastAPI, Request, Response

from services.notifications.app import build
from shared.auth import DOCUMENTS_READ, decode_token, issue_token
from shared.runtime import Service
from shared.settings import Settings
from tests.conftest import eventually, isolated_topics
from tests.unit.notifications.samples import PRACTICE


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class SmtpInbox:
    """aiosmtpd handler: stores what it accepts; `defer` answers the next RCPTs with 4xx,
    `refuse` answers an address with 5xx."""

    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []
        self.defer: dict[str, list[str]] = {}
        self.refuse: dict[str, str] = {}

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: Any) -> str:
        if address in self.refuse:
            return self.refuse[address]
        if self.defer.get(address):
            return self.defer[address].pop(0)
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        self.messages.append(message)
        return "250 Message accepted for delivery"

    def to(self, address: str) -> list[EmailMessage]:
        return [m for m in self.messages if address in str(m["To"])]


class SmtpServer:
    def __init__(self) -> None:
        self.port = free_port()
        self.inbox = SmtpInbox()
        self._controller: Controller | None = None

    def start(self) -> None:
        self._controller = Controller(self.inbox, hostname="127.0.0.1", port=self.port)
        self._controller.start()

    def stop(self) -> None:
        if self._controller:
            self._controller.stop()
            self._controller = None


def pdf_bytes(document_id: str) -> bytes:
    return b"%PDF-1.4\n% test document " + document_id.encode() + b"\n%%EOF\n"


class DocumentsStandIn:
    """Serves `/v1/documents/{id}/pdf` over real HTTP, only to a service token reading documents."""

    def __init__(self, settings: Settings) -> None:
        self.port = free_port()
        self.requests: list[str] = []
        app = FastAPI()

        @app.get("/v1/documents/{document_id}/pdf")
        async def pdf(document_id: str, request: Request) -> Response:
            token = request.headers.get("authorization", "").removeprefix("Bearer ")
            principal = decode_token(token, settings.auth_secret, settings)
            if principal.role != "service" or DOCUMENTS_READ not in principal.scopes:
                return Response(status_code=403)
            self.requests.append(document_id)
            return Response(pdf_bytes(document_id), media_type="application/pdf")

        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning"))
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._task = asyncio.create_task(self.server.serve())
        await eventually(lambda: self.server.started, timeout=10, interval=0.02)

    async def stop(self) -> None:
        self.server.should_exit = True
        if self._task:
            await self._task


class Running:
    def __init__(self, svc: Service, http: httpx.AsyncClient, smtp: SmtpServer, documents: DocumentsStandIn) -> None:
        self.svc = svc
        self.settings = svc.settings
        self.http = http
        self.smtp = smtp
        self.inbox = smtp.inbox
        self.documents = documents

    def staff(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {issue_token(PRACTICE, 'staff', secret=self.settings.auth_secret)}"}

    def client(self, client_id: str) -> dict[str, str]:
        token = issue_token(PRACTICE, "client", client_id, secret=self.settings.auth_secret)
        return {"Authorization": f"Bearer {token}"}

    async def emails(self, client_id: str) -> list[dict[str, Any]]:
        response = await self.http.get("/v1/emails", params={"client_id": client_id}, headers=self.staff())
        assert response.status_code == 200, response.text
        return response.json()["items"]

    async def feed(self, client_id: str) -> list[dict[str, Any]]:
        response = await self.http.get(f"/v1/clients/{client_id}/notifications", headers=self.client(client_id))
        assert response.status_code == 200, response.text
        return response.json()["items"]


@pytest.fixture(scope="module")
async def notifications(test_settings: Settings) -> AsyncIterator[Running]:
    smtp = SmtpServer()
    smtp.start()
    base = await isolated_topics(test_settings)
    documents = DocumentsStandIn(base)
    await documents.start()
    settings = base.model_copy(
        update={
            "smtp_host": "127.0.0.1",
            "smtp_port": smtp.port,
            "smtp_sender": "billing@riversedge.example",
            "documents_url": f"http://127.0.0.1:{documents.port}",
            "email_retry_base_ms": 100,
            "email_retry_max_ms": 300,
            "email_max_attempts": 4,
            "email_pdf_wait_seconds": 8,
            "notifications_poll_ms": 50,
            "smtp_timeout_seconds": 5,
        }
    )
    svc, app = build(settings)
    await svc.start()
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://notifications") as http:
        yield Running(svc, http, smtp, documents)
    await svc.stop()
    await documents.stop()
    smtp.stop()
