"""The request-latency histogram every service exports, by route template and status."""

import httpx
from fastapi import FastAPI, HTTPException
from prometheus_client import REGISTRY

from shared.http import install_metrics_middleware


def count(route: str, status: str, method: str = "GET") -> float:
    labels = {"service": "metrics-test", "method": method, "route": route, "status": status}
    return REGISTRY.get_sample_value("http_request_seconds_count", labels) or 0.0


async def test_each_request_is_counted_under_its_route_and_status() -> None:
    app = FastAPI()
    install_metrics_middleware(app, "metrics-test")

    @app.get("/bills/{bill_id}")
    async def bill(bill_id: str) -> dict[str, str]:
        if bill_id == "gone":
            raise HTTPException(404)
        return {"id": bill_id}

    before = count("/bills/{bill_id}", "200"), count("/bills/{bill_id}", "404"), count("unmatched", "404")
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as http:
        assert (await http.get("/bills/b1")).status_code == 200
        assert (await http.get("/bills/b2")).status_code == 200
        assert (await http.get("/bills/gone")).status_code == 404
        assert (await http.get("/nowhere")).status_code == 404
    after = count("/bills/{bill_id}", "200"), count("/bills/{bill_id}", "404"), count("unmatched", "404")
    assert [a - b for a, b in zip(after, before, strict=True)] == [2, 1, 1]
