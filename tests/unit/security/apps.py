"""Each service's HTTP app, built (not started) for reading its OpenAPI document."""

import importlib
from typing import Any

from fastapi import FastAPI

from shared.admin import SERVICES
from shared.settings import Settings

__all__ = ["SERVICES", "app", "openapi"]


def app(service: str, settings: Settings) -> FastAPI:
    build = importlib.import_module(f"services.{service}.app").build
    return build(settings)[1]


def openapi(service: str, settings: Settings) -> dict[str, Any]:
    return app(service, settings).openapi()
