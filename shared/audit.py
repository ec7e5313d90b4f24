"""The audit trail: every write in every service (by staff, a client, the pay page, automation)
and every PDF download stages an `AuditRecorded` event through the service's own outbox, in
the same transaction as the action; the reports service keeps them append-only.

HTTP writes are recorded without each route saying so: an ASGI middleware (installed by
`Service.http_app`) keeps the request's scope in a context variable, `current_principal`
notes who acts on it, and `shared.http` (the one place every write's
answer is stored, `idempotent_store`) calls `record_request` inside the write's transaction. Other writers (jobs,
the pay page, downloads) call `record` or `record_request` themselves. Writes made outside any
request by someone other than staff or a client (the payments reconciler, a Stripe webhook) run
under `acting_as(actor, role)`, and the shared code that makes them calls `record_effect`, which
records only under such an actor (a staff request's write is already recorded once, as the request)."""

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from shared import topics
from shared.events import AuditRecorded, AuditResource, new_envelope

_SCOPE: ContextVar[dict[str, Any] | None] = ContextVar("audit_scope", default=None)
_PRINCIPAL, _ROLE, _KIND, _DONE = "audit.principal", "audit.role", "audit.kind", "audit.recorded"
_ACTOR: ContextVar[tuple[str, str] | None] = ContextVar("audit_actor", default=None)


class AuditContext:
    """Pure ASGI middleware (same task as the route, so the context variable reaches it)."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        token = _SCOPE.set(scope)
        try:
            await self.app(scope, receive, send)
        finally:
            _SCOPE.reset(token)


def acting(principal: Any, role: str | None = None, kind: str | None = None) -> Any:
    """Note who acts in this request (called with the decoded token; the pay page names its
    own role and what it makes); returns the principal."""
    scope = _SCOPE.get()
    if scope is not None:
        scope[_PRINCIPAL] = principal
        scope[_ROLE] = role or principal.role
        scope[_KIND] = kind
    return principal


def actor_of(principal: Any) -> str:
    """The token's `sub`; a token without one is named by its role (and client)."""
    if principal.subject:
        return str(principal.subject)
    return f"client:{principal.client_id}" if principal.client_id else str(principal.role)


async def record(
    session: AsyncSession,
    outbox: Any,
    service: str,
    *,
    practice_id: str,
    actor: str,
    role: str,
    action: str,
    kind: str,
    resource_id: str | None,
    client_id: str | None = None,
    ip: str | None = None,
) -> None:
    """Stage one AuditRecorded on `service`'s own topic through its outbox, in the caller's transaction."""
    data = AuditRecorded(
        actor=actor,
        role=role,
        service=service,
        action=action,
        resource=AuditResource(kind=kind, id=resource_id),
        client_id=client_id,
        ip=ip,
    )
    topic = topics.WRITES[service][0]
    await outbox.stage(session, topic, [(client_id or practice_id, new_envelope(practice_id, data))])


def _singular(segment: str) -> str:
    return segment[:-1].replace("-", "_") if segment.endswith("s") else segment.replace("-", "_")


def _resource(scope: dict[str, Any], status: int, body: Any) -> tuple[str, str | None]:
    """What the request acted on: what it created (201 with an id), else the last id in its
    path (`/bills/{bill_id}/share` → bill), else the last word of its path."""
    path = getattr(scope.get("route"), "path", scope.get("path", ""))
    segments = [s for s in path.split("/") if s and s != "v1"]
    words = [s for s in segments if not s.startswith("{")]
    if status == 201 and isinstance(body, dict) and body.get("id"):
        return _singular(words[-1] if words else "resource"), str(body["id"])
    params = scope.get("path_params") or {}
    for i in range(len(segments) - 1, -1, -1):
        if segments[i].startswith("{"):
            name = segments[i][1:-1]
            return _singular(segments[i - 1] if i else name), str(params.get(name))
    return _singular(words[-1] if words else "resource"), None


async def record_request(
    session: AsyncSession, status: int, body: Any, *, action: str | None = None, kind: str | None = None
) -> None:
    """Record the current HTTP request as a write that answered `status` with `body`, once
    (nothing outside a request, nothing for a refused one)."""
    scope = _SCOPE.get()
    principal = scope.get(_PRINCIPAL) if scope else None
    if scope is None or principal is None or status >= 400 or scope.get(_DONE):
        return
    service = getattr(getattr(scope.get("app"), "state", None), "service", None)
    if service is None:
        return
    guessed_kind, resource_id = _resource(scope, status, body)
    params = scope.get("path_params") or {}
    client_id = params.get("client_id") or (body.get("client_id") if isinstance(body, dict) else None)
    client = scope.get("client")
    scope[_DONE] = True
    await record(
        session,
        service.outbox,
        service.name,
        practice_id=principal.practice_id,
        actor=actor_of(principal),
        role=scope.get(_ROLE, principal.role),
        action=action or getattr(scope.get("route"), "name", scope.get("method", "write")),
        kind=kind or scope.get(_KIND) or guessed_kind,
        resource_id=resource_id,
        client_id=client_id or principal.client_id,
        ip=client[0] if client else None,
    )


async def automation(
    session: AsyncSession, outbox: Any, service: str, practice_id: str, action: str, kind: str, rid: str, client_id: str
) -> None:
    """A write made by a scheduled job: automation is an actor too."""
    await record(session, outbox, service, practice_id=practice_id, actor="automation", role="automation",
                 action=action, kind=kind, resource_id=rid, client_id=client_id)  # fmt: skip


@contextmanager
def acting_as(actor: str, role: str) -> Iterator[None]:
    """Writes made inside this block are `actor`'s (e.g. `reconciler`/`automation`, `stripe`/`webhook`)."""
    token = _ACTOR.set((actor, role))
    try:
        yield
    finally:
        _ACTOR.reset(token)


async def record_effect(
    session: AsyncSession,
    outbox: Any,
    service: str,
    *,
    practice_id: str,
    action: str,
    kind: str,
    resource_id: str,
    client_id: str | None,
) -> None:
    """A write the actor of `acting_as` made, in its transaction; nothing outside such a block."""
    who = _ACTOR.get()
    if who is not None:
        await record(session, outbox, service, practice_id=practice_id, actor=who[0], role=who[1], action=action,
                     kind=kind, resource_id=resource_id, client_id=client_id)  # fmt: skip


async def record_download(db: Any, client_id: str) -> None:
    """A PDF handed out in the current request (a read, so a transaction of its own)."""
    async with db.transaction() as session:
        await record_request(session, 200, {"client_id": client_id}, action="download_pdf", kind="document")
