"""Sign-in for the console and the portal: the bearer JWT lives in an HttpOnly, SameSite=Lax
session cookie and is forwarded to the services, which decide what it may do. An identity
provider's JWT arrives at `/sign-in?token=`; with WEB_DEV_SIGN_IN a local page mints one for
a chosen practice, role and client."""

import datetime as dt
from dataclasses import dataclass
from typing import Annotated, Literal

import jwt
from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from services.web.client import Api
from services.web.views import render
from shared.auth import Principal, decode_token, issue_token
from shared.http import ApiError

COOKIE = "tb_session"
DEV_TOKEN_TTL = dt.timedelta(hours=12)

router = APIRouter(tags=["sign-in"])


@dataclass
class Viewer:
    """The signed-in person and the upstream APIs as them."""

    principal: Principal
    api: Api

    @property
    def is_staff(self) -> bool:
        return self.principal.is_staff


class SignInRequired(Exception):
    """No valid session: send the person to sign in (an htmx request gets HX-Redirect)."""


class StaffOnly(Exception):
    """A client's session asked for a staff page."""


async def current_viewer(request: Request) -> Viewer:
    token = request.cookies.get(COOKIE)
    if not token:
        raise SignInRequired
    try:
        principal = decode_token(token, request.app.state.settings.auth_secret)
    except ApiError as exc:
        raise SignInRequired from exc
    viewer = Viewer(principal, request.app.state.services.bound(token))
    request.state.viewer = viewer
    request.state.practice = await request.app.state.practices.get(principal.practice_id)
    return viewer


async def staff_viewer(viewer: Annotated[Viewer, Depends(current_viewer)]) -> Viewer:
    if not viewer.is_staff:
        raise StaffOnly
    return viewer


CurrentViewer = Annotated[Viewer, Depends(current_viewer)]
StaffViewer = Annotated[Viewer, Depends(staff_viewer)]


def home_of(principal: Principal) -> str:
    return "/billing" if principal.is_staff else "/portal"


def signed_in(request: Request, token: str, principal: Principal) -> Response:
    """Redirect home with the session cookie set for as long as the token lives."""
    response = RedirectResponse(home_of(principal), status_code=303)
    exp = decode_exp(token, request.app.state.settings.auth_secret)
    max_age = max(0, int((exp - dt.datetime.now(dt.UTC)).total_seconds()))
    response.set_cookie(
        COOKIE,
        token,
        max_age=max_age,
        httponly=True,
        samesite="lax",
        secure=request.url.scheme == "https",
        path="/",
    )
    return response


def decode_exp(token: str, secret: str) -> dt.datetime:
    claims = jwt.decode(token, secret, algorithms=["HS256"])
    return dt.datetime.fromtimestamp(int(claims["exp"]), dt.UTC)


@router.get("/", include_in_schema=False)
async def home(request: Request) -> Response:
    try:
        viewer = await current_viewer(request)
    except SignInRequired:
        return RedirectResponse("/sign-in", status_code=303)
    return RedirectResponse(home_of(viewer.principal), status_code=303)


@router.get("/sign-in", response_class=HTMLResponse)
async def sign_in(request: Request, token: str | None = None) -> Response:
    """With `token` (a JWT from the practice's identity provider): start a session. Without:
    say how to sign in."""
    if token:
        try:
            principal = decode_token(token, request.app.state.settings.auth_secret)
        except ApiError as exc:
            return render(request, "auth/sign_in.html", status_code=401, error=exc.message)
        return signed_in(request, token, principal)
    return render(request, "auth/sign_in.html")


@router.post("/sign-out")
async def sign_out() -> Response:
    response = RedirectResponse("/sign-in", status_code=303)
    response.delete_cookie(COOKIE, path="/")
    return response


def dev_only(request: Request) -> None:
    if not request.app.state.settings.web_dev_sign_in:
        raise ApiError(404, "not_found", "not found")


dev = APIRouter(prefix="/dev", tags=["sign-in"], dependencies=[Depends(dev_only)])


async def practice_clients(request: Request, practice_id: str) -> list[dict[str, str]]:
    """The practice's clients, read with a short-lived staff token (the picker is local-only)."""
    token = issue_token(practice_id, "staff", secret=request.app.state.settings.auth_secret)
    api = request.app.state.services.bound(token)
    try:
        return list((await api.get("billing", "/v1/clients"))["items"])
    except Exception:
        return []


@dev.get("/sign-in", response_class=HTMLResponse)
async def dev_sign_in_page(request: Request, practice_id: str = "practice-rivers-edge") -> Response:
    clients = await practice_clients(request, practice_id)
    return render(request, "auth/dev_sign_in.html", practice_id=practice_id, clients=clients)


@dev.get("/sign-in/clients", response_class=HTMLResponse)
async def dev_client_options(request: Request, practice_id: str = "") -> Response:
    clients = await practice_clients(request, practice_id) if practice_id else []
    return render(request, "auth/client_options.html", clients=clients)


@dev.post("/sign-in")
async def dev_sign_in(
    request: Request,
    practice_id: Annotated[str, Form(min_length=1, max_length=200)],
    role: Annotated[Literal["staff", "client"], Form()],
    client_id: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    if role == "client" and not client_id:
        clients = await practice_clients(request, practice_id)
        return render(
            request,
            "auth/dev_sign_in.html",
            status_code=422,
            practice_id=practice_id,
            clients=clients,
            error="Choose the client to sign in as.",
        )
    secret = request.app.state.settings.auth_secret
    token = issue_token(practice_id, role, client_id if role == "client" else None, secret=secret, ttl=DEV_TOKEN_TTL)
    return signed_in(request, token, decode_token(token, secret))
