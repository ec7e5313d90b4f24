"""Bad input gets a clear 4xx with the error envelope and harms no one: bodies over the limit are
413, NUL bytes anywhere in a request 422, amounts past 10^9 cents and dates outside 1900–2100
422 (a `paid_at` in year 1 used to break statements and PDFs; past int64 it was a 500)."""

import json

import pytest

from tests.integration.payments.conftest import new_id, staff

pytestmark = pytest.mark.integration


def payment(**fields: object) -> dict[str, object]:
    return {"client_id": new_id("client"), "method": "cash", "amount_cents": 1000, **fields}


def error(r) -> str:
    assert set(r.json()) == {"error"} and set(r.json()["error"]) == {"code", "message"}, r.text
    return r.json()["error"]["code"]


async def test_a_body_over_the_limit_is_413(svc, http) -> None:
    big = payment(notes="x" * (svc.settings.http_max_body_bytes + 1))
    r = await http.post("/v1/payments", json=big, headers=staff(new_id("p")))
    assert r.status_code == 413 and error(r) == "payload_too_large"

    async def chunks():  # no Content-Length: counted as it streams
        yield b'{"notes": "'
        for _ in range(svc.settings.http_max_body_bytes // 65536 + 1):
            yield b"y" * 65536
        yield b'"}'

    r = await http.post("/v1/payments", content=chunks(), headers=staff(new_id("p")))
    assert r.status_code == 413 and error(r) == "payload_too_large"


@pytest.mark.parametrize(
    "request_",
    [
        ("POST", "/v1/payments", {"json": payment(notes="before\u0000after")}),
        ("POST", "/v1/payments", {"content": b'{"client_id": "c\\u0000", "method": "cash", "amount_cents": 1}'}),
        ("GET", "/v1/payments", {"params": {"client_id": "c\u0000"}}),
        ("GET", "/v1/payments/pay%00ment", {}),
    ],
)
async def test_nul_bytes_are_422(http, request_) -> None:
    method, path, kw = request_
    r = await http.request(method, path, headers={**staff(new_id("p")), "content-type": "application/json"}, **kw)
    assert r.status_code == 422 and error(r) == "validation_error" and "NUL" in r.text


async def test_an_escaped_backslash_before_u0000_is_not_a_nul(http) -> None:
    body = json.dumps(payment(notes="C:\\u0000dir", amount_cents=-1)).encode()  # the text \u0000, no NUL
    r = await http.post(
        "/v1/payments", content=body, headers={**staff(new_id("p")), "content-type": "application/json"}
    )
    assert r.status_code == 422 and "NUL" not in r.text and "amount_cents" in r.text


@pytest.mark.parametrize(
    "fields",
    [
        {"amount_cents": 1_000_000_001},
        {"amount_cents": 2**63},
        {"allocations": [{"bill_id": "b1", "amount_cents": 10**12}]},
        {"paid_at": "0001-01-01T00:00:00Z"},
        {"paid_at": "2101-01-01T00:00:00+00:00"},
        {"notes": "n" * 2001},
        {"client_id": "c" * 201},
    ],
)
async def test_out_of_range_values_are_422_not_500(http, fields) -> None:
    r = await http.post("/v1/payments", json=payment(**fields), headers=staff(new_id("p")))
    assert r.status_code == 422 and error(r) == "validation_error", r.text
