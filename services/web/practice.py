"""The practice's name, currency and timezone, which every page shows money and dates in.
Read from billing's settings with a short-lived service token of the web's own scoped to reading
them (a client's token may not read settings; the web never mints itself a staff token), and kept
for a little while: pages must not pay one more API call each."""

import time
from typing import Any

from services.web.client import Services
from shared.auth import PRACTICE_READ, issue_service_token
from shared.settings import Settings

TTL_SECONDS = 30.0


class Practices:
    def __init__(self, services: Services, settings: Settings) -> None:
        self.services = services
        self.settings = settings
        self._cache: dict[str, tuple[float, dict[str, Any]]] = {}

    async def get(self, practice_id: str) -> dict[str, Any]:
        cached = self._cache.get(practice_id)
        if cached and cached[0] > time.monotonic():
            return cached[1]
        api = self.services.bound(issue_service_token(practice_id, "web", PRACTICE_READ, self.settings))
        try:
            info = await api.get("billing", "/v1/settings")
        except Exception:
            return {"id": practice_id, "currency": "USD", "timezone": "UTC"}
        info["id"] = practice_id
        self._cache[practice_id] = (time.monotonic() + TTL_SECONDS, info)
        return info

    def forget(self, practice_id: str) -> None:
        """After the settings page saved: the next page reads them again."""
        self._cache.pop(practice_id, None)
