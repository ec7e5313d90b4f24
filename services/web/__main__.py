"""`python -m services.web`: run the web console (default port 8000)."""

import uvicorn

from services.web.app import build
from shared import production
from shared.settings import get_settings

settings = get_settings()
try:
    production.check(settings, "web")
except production.ProductionConfigError as exc:
    raise SystemExit(str(exc)) from None
uvicorn.run(
    build(settings),
    host=settings.http_host,
    port=settings.web_port,
    log_level=settings.log_level.lower(),
    access_log=False,
)
