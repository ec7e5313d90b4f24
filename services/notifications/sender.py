"""The background sender: claims due deliveries (committing the claim), sends each without a
transaction open, then records the outcome with its events and portal notification.

Exactly once to the person: the claim moves a delivery to `sending`; only the sender holding
that claim can record the result. A sender that dies between SMTP and recording leaves the row
`sending`; after the lease it is sent again with the same Message-ID (the one window where a
duplicate is possible, as with any SMTP client)."""

import asyncio
import datetime as dt
import logging
from collections.abc import Awaitable, Callable

import httpx

from services.notifications import repository as repo
from services.notifications.db import EMAIL_SIGNAL
from services.notifications.domain import (
    FailureKind,
    after_failure,
    document_pdf_url,
    is_deliverable_address,
    notification_id,
    retry_delay,
)
from services.notifications.mailer import Outgoing, SendError, SmtpMailer
from services.notifications.metrics import EMAIL_ATTEMPTS, EMAIL_SEND_SECONDS
from shared import topics
from shared.auth import DOCUMENTS_READ, issue_service_token
from shared.consumer import is_transient
from shared.events import ClientNotification, EmailFailed, EmailSent, Recipient, new_envelope
from shared.logs import describe_error
from shared.polling import drain_then_wait
from shared.runtime import Service

log = logging.getLogger(__name__)

BATCH = 20


class DeliverySender:
    def __init__(
        self, svc: Service, mailer: SmtpMailer, http: httpx.AsyncClient, *, replica: str | None = None
    ) -> None:
        """`replica`: this replica's stable identity (KAFKA_GROUP_INSTANCE_ID), unique among the
        running replicas; its claims carry it, so that restarted it takes them back at once."""
        self.svc = svc
        self.settings = svc.settings
        self.mailer = mailer
        self.http = http
        self.replica = replica
        self._wake = asyncio.Event()
        self._trouble = False  # a send failed for a transient reason since the last success
        svc.db.on_commit(EMAIL_SIGNAL, self._wake.set)

    async def run(self) -> None:
        try:
            await self._with_db_retry(self.take_back_claims, what="the claims of this replica's previous run")
        except Exception:
            log.exception("the claims of this replica's previous run are left to the lease")
        poll = self.settings.notifications_poll_ms / 1000
        await drain_then_wait(self.send_due, self._wake, poll_seconds=poll, log=log, what="email sender")

    async def take_back_claims(self) -> None:
        """A replica that starts under its identity knows its previous run is dead (killed, maybe
        mid-send): what that run had claimed is due now, not after the lease
        (EMAIL_SEND_LEASE_SECONDS, 5 min). An email it had handed to the SMTP server goes again
        with the same Message-ID, as after the lease."""
        if self.replica is None:
            return
        async with self.svc.db.transaction() as session:
            released = await repo.release_claims(session, self.replica)
        if released:
            log.info("%d emails claimed by this replica's previous run are due again", released)
            self._wake.set()

    async def send_due(self) -> int:
        lease = dt.timedelta(seconds=self.settings.email_send_lease_seconds)
        async with self.svc.db.transaction() as session:
            claimed = await repo.claim_due(session, limit=BATCH, lease=lease, replica=self.replica)
        results = await asyncio.gather(*(self._deliver(c) for c in claimed), return_exceptions=True)
        for delivery, result in zip(claimed, results, strict=True):
            if isinstance(result, Exception):
                log.error("delivery %s left for the lease to retry: %s", delivery.id, describe_error(result))
        return len(claimed)

    async def _deliver(self, claimed: repo.Claimed) -> None:
        if claimed.channel == "portal":
            await self._record(claimed, "portal_only")
            return
        try:
            with EMAIL_SEND_SECONDS.time():
                await self._send(claimed)
        except SendError as exc:
            self._trouble = self._trouble or exc.kind == "transient"
            await self._record_failure(claimed, exc.kind, exc.reason)
            return
        except Exception as exc:  # a message that cannot be built: retried, then failed, never stuck
            log.exception("email %s could not be sent", claimed.id)
            await self._record_failure(claimed, "transient", describe_error(exc))
            return
        await self._record(claimed, "sent")
        if self._trouble:
            await self._resume_retries()

    async def _resume_retries(self) -> None:
        """A send went through after transient failures (the SMTP server, or documents, is back):
        the emails waiting out a backoff (up to EMAIL_RETRY_MAX_MS) go now, not when it ends."""
        self._trouble = False
        async with self.svc.db.transaction() as session:
            woken = await repo.retry_now(session)
        if woken:
            log.info("a send succeeded again: %d emails waiting to retry are due now", woken)
            self._wake.set()

    async def _send(self, claimed: repo.Claimed) -> None:
        to = claimed.to_address
        if not is_deliverable_address(to):
            raise SendError("permanent", "invalid email address")
        assert to is not None
        pdf = None
        if claimed.needs_pdf:
            if claimed.document_id is None:
                raise SendError("permanent", self._no_pdf_reason(claimed))
            pdf = await self._fetch_pdf(claimed)
        await self.mailer.send(
            Outgoing(
                delivery_id=claimed.id,
                to_name=claimed.recipient_name,
                to_address=to,
                subject=claimed.subject,
                text=claimed.body_text,
                html=claimed.body_html,
                pdf=pdf,
                pdf_filename=claimed.attachment_name or "document.pdf",
            )
        )

    def _no_pdf_reason(self, claimed: repo.Claimed) -> str:
        if claimed.last_error and claimed.last_error.startswith("document rendering failed"):
            return claimed.last_error
        return (
            f"PDF of {claimed.document_kind} {claimed.document_source_id} (version >= "
            f"{claimed.document_min_version}) was not rendered within {self.settings.email_pdf_wait_seconds}s"
        )

    async def _fetch_pdf(self, claimed: repo.Claimed) -> bytes:
        """From documents over HTTP, with a short-lived token that can only read the practice's documents."""
        assert claimed.document_id is not None
        token = issue_service_token(claimed.practice_id, "notifications", DOCUMENTS_READ, self.settings)
        url = document_pdf_url(self.settings.documents_url, claimed.document_id)
        if url is None:
            raise SendError("permanent", f"document id {claimed.document_id!r} is not a document id")
        try:
            response = await self.http.get(url, headers={"Authorization": f"Bearer {token}"})
        except httpx.HTTPError as exc:
            raise SendError("transient", f"could not fetch the PDF from documents: {exc!r}") from exc
        if response.status_code != 200:
            raise SendError("transient", f"could not fetch the PDF from documents: HTTP {response.status_code}")
        return response.content

    async def _record_failure(self, claimed: repo.Claimed, kind: FailureKind, reason: str) -> None:
        step = after_failure(claimed.attempts, self.settings.email_max_attempts, kind)
        EMAIL_ATTEMPTS.labels(claimed.kind, step).inc()
        if step == "failed":
            await self._record(claimed, "failed", reason)
            return
        delay = retry_delay(
            claimed.attempts,
            dt.timedelta(milliseconds=self.settings.email_retry_base_ms),
            dt.timedelta(milliseconds=self.settings.email_retry_max_ms),
        )
        log.warning("email %s attempt %d failed, retrying in %s: %s", claimed.id, claimed.attempts, delay, reason)
        await self._with_db_retry(
            lambda: self._finish_only(claimed, "queued", reason, delay), what=f"retry of {claimed.id}"
        )

    async def _finish_only(
        self, claimed: repo.Claimed, status: str, reason: str | None, delay: dt.timedelta | None
    ) -> None:
        async with self.svc.db.transaction() as session:
            await repo.finish(session, claimed, status=status, last_error=reason, next_attempt_in=delay)

    async def _record(self, claimed: repo.Claimed, status: str, reason: str | None = None) -> None:
        await self._with_db_retry(lambda: self._record_once(claimed, status, reason), what=f"outcome of {claimed.id}")

    async def _record_once(self, claimed: repo.Claimed, status: str, reason: str | None) -> None:
        """The final state, its event and the portal notification, in one transaction."""
        async with self.svc.db.transaction() as session:
            if not await repo.finish(session, claimed, status=status, last_error=reason):
                log.warning("delivery %s was re-claimed by another sender; not recording twice", claimed.id)
                return
            if status != "failed":
                EMAIL_ATTEMPTS.labels(claimed.kind, status).inc()
            events = []
            if status == "sent":
                assert claimed.to_address is not None
                events.append(
                    EmailSent(
                        email_id=claimed.id,
                        client_id=claimed.client_id,
                        kind=claimed.kind,
                        to=claimed.to_address,
                        subject=claimed.subject,
                    )
                )
            elif status == "failed":
                events.append(
                    EmailFailed(
                        email_id=claimed.id,
                        client_id=claimed.client_id,
                        kind=claimed.kind,
                        to=claimed.to_address,
                        subject=claimed.subject,
                        reason=reason or "unknown",
                    )
                )
            outbox = self.svc.outbox
            key = claimed.client_id
            await outbox.stage(
                session, topics.NOTIFICATIONS, [(key, new_envelope(claimed.practice_id, e)) for e in events]
            )
            nid = notification_id(claimed.id)
            if not await repo.add_notification(session, claimed, nid):
                return
            portal = ClientNotification(
                notification_id=nid,
                client_id=claimed.client_id,
                recipient=Recipient(name=claimed.recipient_name, email=claimed.to_address),
                kind=claimed.kind,
                subject=claimed.subject,
                body_text=claimed.summary,
                action_url=claimed.action_url,
                document_id=claimed.document_id,
            )
            await outbox.stage(session, topics.PORTAL, [(key, new_envelope(claimed.practice_id, portal))])

    async def _with_db_retry(self, op: Callable[[], Awaitable[None]], *, what: str) -> None:
        """Database hiccups while recording are retried: the email already left."""
        delay = 0.2
        for _ in range(8):
            try:
                await op()
                return
            except Exception as exc:
                if not is_transient(exc):
                    raise
                log.warning("recording %s failed, retrying: %s", what, describe_error(exc))
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5)
        log.error("could not record %s; the lease will hand it to a sender again", what)
