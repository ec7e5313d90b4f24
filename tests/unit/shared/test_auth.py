"""JWT rules of CONTRACT.md."""

import datetime as dt

import jwt
import pytest

from shared.auth import Principal, decode_token, ensure_client_access, issue_token
from shared.http import ApiError

SECRET = "unit-test-secret-unit-test-secret-00"
LATER = dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)
EARLIER = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=5)


def test_staff_token_round_trips() -> None:
    p = decode_token(issue_token("p1", "staff", secret=SECRET), SECRET)
    assert p == Principal("p1", "staff", None)


def test_client_token_carries_client_id() -> None:
    p = decode_token(issue_token("p1", "client", "c1", secret=SECRET), SECRET)
    assert p.client_id == "c1" and not p.is_staff


@pytest.mark.parametrize(
    ("claims", "code"),
    [
        ({"practice_id": "p1", "role": "staff", "exp": EARLIER}, "token_expired"),
        ({"practice_id": "p1", "role": "admin", "exp": LATER}, "invalid_token"),
        ({"practice_id": "p1", "role": "client", "exp": LATER}, "invalid_token"),
        ({"role": "staff", "exp": LATER}, "invalid_token"),
    ],
)
def test_bad_tokens_are_401(claims: dict, code: str) -> None:
    with pytest.raises(ApiError) as err:
        decode_token(jwt.encode(claims, SECRET, algorithm="HS256"), SECRET)
    assert (err.value.status, err.value.code) == (401, code)


def test_wrong_secret_is_rejected() -> None:
    with pytest.raises(ApiError):
        decode_token(issue_token("p1", secret="another-secret-another-secret-0000"), SECRET)


def test_another_clients_record_is_not_found_not_forbidden() -> None:
    with pytest.raises(ApiError) as err:
        ensure_client_access(Principal("p1", "client", "c1"), "c2", "bill")
    assert err.value.status == 404
    ensure_client_access(Principal("p1", "client", "c1"), "c1")
    ensure_client_access(Principal("p1", "staff"), "c2")
