"""JWT auth as in CONTRACT.md: HS256 with AUTH_SECRET; claims practice_id, role, client_id, exp.
`aud` and `iss` are checked when JWT_AUDIENCE / JWT_ISSUER are set; a token may live at most
JWT_MAX_LIFETIME_S. Role `service` is for calls between services: it carries `scope` (e.g.
`documents:read`) and is refused by every route that does not ask for that scope."""

import datetime as dt
import time
from collections.abc import Callable, Coroutine, Iterable
from dataclasses import dataclass
from typing import Annotated, Any, Literal

import jwt
from fastapi import Depends, Request

from shared import audit
from shared.http import ApiError
from shared.settings import Settings, get_settings

Role = Literal["staff", "client", "service"]
DOCUMENTS_READ = "documents:read"
PRACTICE_READ = "practice:read"  # the web reads a practice's name, currency and timezone (billing settings)
SERVICE_TOKEN_TTL = dt.timedelta(minutes=5)


@dataclass(frozen=True)
class Principal:
    practice_id: str
    role: Role
    client_id: str | None = None
    subject: str | None = None  # the token's `sub`: who acts (the audit log's actor)
    scopes: frozenset[str] = frozenset()

    @property
    def is_staff(self) -> bool:
        return self.role == "staff"

    def can_see_client(self, client_id: str) -> bool:
        """Staff: their practice's clients; a client: themselves; a service reaches only the
        routes that accept its scope, and those read any client of the practice."""
        return self.role in ("staff", "service") or self.client_id == client_id

    def scoped_key(self, key: str | None) -> str | None:
        """An Idempotency-Key as stored: scoped to the caller (staff, or one client), so one
        caller's key can never replay another caller's answer within the practice."""
        return f"{self.role}:{self.client_id or ''}:{key}" if key else None


def issue_token(
    practice_id: str,
    role: Role = "staff",
    client_id: str | None = None,
    *,
    secret: str | None = None,
    ttl: dt.timedelta = dt.timedelta(hours=1),
    subject: str | None = None,
    settings: Settings | None = None,
    extra: dict[str, Any] | None = None,
) -> str:
    """A signed token (tests, the demo, service-to-service calls), with the configured aud/iss."""
    settings = settings or get_settings()
    now = dt.datetime.now(dt.UTC)
    claims: dict[str, object] = {"practice_id": practice_id, "role": role, "iat": now, "exp": now + ttl}
    if client_id is not None:
        claims["client_id"] = client_id
    if subject is not None:
        claims["sub"] = subject
    if settings.jwt_audience:
        claims["aud"] = settings.jwt_audience
    if settings.jwt_issuer:
        claims["iss"] = settings.jwt_issuer
    claims.update(extra or {})
    return jwt.encode(claims, secret or settings.auth_secret, algorithm="HS256")


def issue_service_token(practice_id: str, service: str, scope: str, settings: Settings) -> str:
    """A short-lived token for `service` that can do only `scope` in one practice."""
    return issue_token(
        practice_id, "service", ttl=SERVICE_TOKEN_TTL, subject=service, settings=settings, extra={"scope": scope}
    )


def decode_token(token: str, secret: str, settings: Settings | None = None) -> Principal:
    settings = settings or get_settings()
    try:
        claims = jwt.decode(
            token,
            secret,
            algorithms=["HS256"],
            audience=settings.jwt_audience,
            issuer=settings.jwt_issuer,
            options={"require": ["exp", "practice_id", "role"], "verify_aud": settings.jwt_audience is not None},
        )
    except jwt.ExpiredSignatureError as exc:
        raise ApiError(401, "token_expired", "the bearer token has expired") from exc
    except jwt.InvalidTokenError as exc:
        raise ApiError(401, "invalid_token", f"the bearer token is invalid: {exc}") from exc
    issued = claims.get("iat", time.time())
    if not isinstance(issued, int | float) or claims["exp"] - issued > settings.jwt_max_lifetime_s:
        raise ApiError(401, "invalid_token", f"the bearer token may live at most {settings.jwt_max_lifetime_s}s")
    role = claims.get("role")
    if role not in ("staff", "client", "service"):
        raise ApiError(401, "invalid_token", "role must be staff or client")
    if role == "client" and not claims.get("client_id"):
        raise ApiError(401, "invalid_token", "a client token needs client_id")
    scopes = frozenset(str(claims.get("scope", "")).split()) if role == "service" else frozenset()
    client_id = claims.get("client_id") if role == "client" else None
    return Principal(str(claims["practice_id"]), role, client_id, claims.get("sub"), scopes)


async def any_principal(request: Request) -> Principal:
    """The bearer token's principal, checked against the serving service's settings."""
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise ApiError(401, "unauthorized", "send Authorization: Bearer <token>")
    service = getattr(request.app.state, "service", None)
    settings = service.settings if service is not None else get_settings()
    return audit.acting(decode_token(token.strip(), settings.auth_secret, settings))


async def current_principal(principal: Annotated[Principal, Depends(any_principal)]) -> Principal:
    """Staff or a client; a service token is refused here (it may only use its scope's routes)."""
    if principal.role == "service":
        raise ApiError(403, "forbidden", "a service token cannot call this")
    return principal


def principal_or_service(scope: str) -> Callable[..., Coroutine[Any, Any, Principal]]:
    """Staff, a client, or a service token carrying `scope`."""

    async def dependency(principal: Annotated[Principal, Depends(any_principal)]) -> Principal:
        if principal.role == "service" and scope not in principal.scopes:
            raise ApiError(403, "forbidden", f"a service token needs scope {scope}")
        return principal

    return dependency


async def staff_principal(principal: Annotated[Principal, Depends(current_principal)]) -> Principal:
    if not principal.is_staff:
        raise ApiError(403, "forbidden", "this action is for practice staff")
    return principal


async def staff_or_practice_reader(principal: Annotated[Principal, Depends(any_principal)]) -> Principal:
    """Staff, or a service token scoped `practice:read`: the web reads the practice's settings
    with one instead of minting itself a staff token."""
    if principal.role == "service":
        if PRACTICE_READ not in principal.scopes:
            raise ApiError(403, "forbidden", f"a service token needs scope {PRACTICE_READ}")
        return principal
    if not principal.is_staff:
        raise ApiError(403, "forbidden", "this action is for practice staff")
    return principal


CurrentPrincipal = Annotated[Principal, Depends(current_principal)]
StaffPrincipal = Annotated[Principal, Depends(staff_principal)]
DocumentReader = Annotated[Principal, Depends(principal_or_service(DOCUMENTS_READ))]
PracticeReader = Annotated[Principal, Depends(staff_or_practice_reader)]


def ensure_client_access(principal: Principal, client_id: str, what: str = "record") -> None:
    """Another client's record is 404, never 403: do not reveal it exists."""
    if not principal.can_see_client(client_id):
        raise ApiError(404, "not_found", f"{what} not found")


def ensure_shared_with(principal: Principal, shared: bool, what: str) -> None:
    """A client sees a bill, statement or superbill only once staff shared it: before, it is
    404 to them like any record they may not see."""
    if not principal.is_staff and not shared:
        raise ApiError(404, "not_found", f"{what} not found")


def client_facing(principal: Principal, view: dict[str, Any], staff_only: Iterable[str]) -> dict[str, Any]:
    """Staff see the whole record; a client sees it without the `staff_only` fields (staff
    notes, payment processor internals, cancel reasons)."""
    if principal.is_staff:
        return view
    hidden = set(staff_only)
    return {k: v for k, v in view.items() if k not in hidden}
