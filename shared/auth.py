"""JWT auth as in CONTRACT.md: HS256 with AUTH_SECRET; claims practice_id, role, client_id, exp."""

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Annotated, Any, Literal

import jwt
from fastapi import Depends, Request

from shared import audit
from shared.http import ApiError
from shared.settings import get_settings

Role = Literal["staff", "client"]


@dataclass(frozen=True)
class Principal:
    practice_id: str
    role: Role
    client_id: str | None = None
    subject: str | None = None  # the token's `sub`: who acts (the audit log's actor)

    @property
    def is_staff(self) -> bool:
        return self.role == "staff"

    def can_see_client(self, client_id: str) -> bool:
        return self.is_staff or self.client_id == client_id

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
) -> str:
    """A signed token (tests, the demo, service-to-service calls)."""
    claims: dict[str, object] = {
        "practice_id": practice_id,
        "role": role,
        "exp": dt.datetime.now(dt.UTC) + ttl,
    }
    if client_id is not None:
        claims["client_id"] = client_id
    if subject is not None:
        claims["sub"] = subject
    return jwt.encode(claims, secret or get_settings().auth_secret, algorithm="HS256")


def decode_token(token: str, secret: str) -> Principal:
    try:
        claims = jwt.decode(token, secret, algorithms=["HS256"], options={"require": ["exp", "practice_id", "role"]})
    except jwt.ExpiredSignatureError as exc:
        raise ApiError(401, "token_expired", "the bearer token has expired") from exc
    except jwt.InvalidTokenError as exc:
        raise ApiError(401, "invalid_token", f"the bearer token is invalid: {exc}") from exc
    role = claims.get("role")
    if role not in ("staff", "client"):
        raise ApiError(401, "invalid_token", "role must be staff or client")
    if role == "client" and not claims.get("client_id"):
        raise ApiError(401, "invalid_token", "a client token needs client_id")
    return Principal(str(claims["practice_id"]), role, claims.get("client_id"), claims.get("sub"))


async def current_principal(request: Request) -> Principal:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise ApiError(401, "unauthorized", "send Authorization: Bearer <token>")
    return audit.acting(decode_token(token.strip(), get_settings().auth_secret))


async def staff_principal(principal: Annotated[Principal, Depends(current_principal)]) -> Principal:
    if not principal.is_staff:
        raise ApiError(403, "forbidden", "this action is for practice staff")
    return principal


CurrentPrincipal = Annotated[Principal, Depends(current_principal)]
StaffPrincipal = Annotated[Principal, Depends(staff_principal)]


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
