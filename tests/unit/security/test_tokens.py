"""JWT hardening: audience and issuer when configured, a maximum lifetime, and a service role
that no staff or client route accepts."""

import datetime as dt

import jwt
import pytest

from shared.auth import DOCUMENTS_READ, decode_token, issue_service_token, issue_token
from shared.http import ApiError
from shared.settings import Settings

SECRET = "unit-test-secret-unit-test-secret-00"
PLAIN = Settings(auth_secret=SECRET)
STRICT = Settings(auth_secret=SECRET, jwt_audience="therapy-billing", jwt_issuer="https://idp.example")


def code_of(token: str, settings: Settings) -> str:
    with pytest.raises(ApiError) as err:
        decode_token(token, SECRET, settings)
    assert err.value.status == 401
    return err.value.code


def claims(**extra: object) -> dict[str, object]:
    now = dt.datetime.now(dt.UTC)
    return {"practice_id": "p1", "role": "staff", "iat": now, "exp": now + dt.timedelta(hours=1), **extra}


def test_audience_and_issuer_are_checked_when_configured() -> None:
    assert decode_token(issue_token("p1", settings=STRICT), SECRET, STRICT).practice_id == "p1"
    assert code_of(jwt.encode(claims(), SECRET), STRICT) == "invalid_token"  # neither claim
    wrong_aud = claims(aud="another-app", iss="https://idp.example")
    assert code_of(jwt.encode(wrong_aud, SECRET), STRICT) == "invalid_token"
    wrong_iss = claims(aud="therapy-billing", iss="https://evil.example")
    assert code_of(jwt.encode(wrong_iss, SECRET), STRICT) == "invalid_token"
    assert decode_token(jwt.encode(claims(), SECRET), SECRET, PLAIN).role == "staff"  # not configured: not checked


def test_a_token_living_longer_than_the_maximum_is_refused() -> None:
    year = issue_token("p1", settings=PLAIN, ttl=dt.timedelta(days=365))
    assert code_of(year, PLAIN) == "invalid_token"
    assert decode_token(issue_token("p1", settings=PLAIN, ttl=dt.timedelta(hours=24)), SECRET, PLAIN)
    far = dt.datetime.now(dt.UTC) + dt.timedelta(days=30)
    no_iat = jwt.encode({"practice_id": "p1", "role": "staff", "exp": far}, SECRET)
    assert code_of(no_iat, PLAIN) == "invalid_token"  # without iat, measured from now


def test_service_token_is_narrow_and_short_lived() -> None:
    principal = decode_token(issue_service_token("p1", "notifications", DOCUMENTS_READ, PLAIN), SECRET, PLAIN)
    assert principal.role == "service" and principal.scopes == {DOCUMENTS_READ} and not principal.is_staff
    payload = jwt.decode(issue_service_token("p1", "notifications", DOCUMENTS_READ, PLAIN), SECRET, ["HS256"])
    assert payload["exp"] - payload["iat"] <= 300 and payload["sub"] == "notifications"
