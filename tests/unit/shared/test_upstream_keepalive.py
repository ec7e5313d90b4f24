"""A client of our services drops an idle pooled connection before uvicorn closes it, so no
request is sent on a connection the server is closing at that moment."""

import httpx
import uvicorn

from services.web.client import Services
from shared.http import UPSTREAM_LIMITS
from shared.settings import Settings


def test_the_client_gives_up_idle_connections_before_the_server_does() -> None:
    server_keep_alive = uvicorn.Config(app=None).timeout_keep_alive  # what every service runs with
    assert UPSTREAM_LIMITS.keepalive_expiry is not None
    assert UPSTREAM_LIMITS.keepalive_expiry < server_keep_alive
    pool = Services(Settings()).http._transport._pool  # type: ignore[attr-defined]
    assert pool._keepalive_expiry == UPSTREAM_LIMITS.keepalive_expiry
    # only the keep-alive differs from an httpx client's defaults: the pool stays bounded
    default = httpx.AsyncClient()._transport._pool  # type: ignore[attr-defined]
    assert pool._max_connections == default._max_connections is not None
    assert pool._max_keepalive_connections == default._max_keepalive_connections is not None
