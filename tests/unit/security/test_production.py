"""Production mode refuses default and weak settings, naming each; development accepts them."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from shared import production
from shared.settings import Settings

ROOT = Path(__file__).resolve().parents[3]
STRONG = "s" * 40
GOOD = {
    "app_env": "production",
    "auth_secret": STRONG,
    "billing_database_url": "postgresql+asyncpg://billing:Xk2-long-password@db/tb",
    "payments_database_url": "postgresql+asyncpg://payments:Yk2-long-password@db/tb",
    "documents_database_url": "postgresql+asyncpg://documents:Zk2-long-password@db/tb",
    "notifications_database_url": "postgresql+asyncpg://notifications:Wk2-long-password@db/tb",
    "stripe_api_key": "sk_live_real",
    "stripe_webhook_secret": "whsec_real",
    "stripe_publishable_key": "pk_live_real",
    "stripe_js_url": "https://js.stripe.com/v3/",
    "stripe_api_base": None,
    "smtp_starttls": True,
    "kafka_security_protocol": "SASL_SSL",
    "kafka_sasl_username": "svc",
    "kafka_sasl_password": "Kq-long-password",
    "reports_database_url": "postgresql+asyncpg://reports:Vk2-long-password@db/tb",
}


def refused(service: str, **changes: object) -> str:
    with pytest.raises(production.ProductionConfigError) as err:
        production.check(Settings(**{**GOOD, **changes}), service)
    return str(err.value)


@pytest.mark.parametrize("service", ["billing", "payments", "documents", "notifications", "reports", "web"])
def test_good_production_settings_start(service: str) -> None:
    production.check(Settings(**GOOD), service)


def test_development_accepts_the_local_defaults() -> None:
    for service in ("billing", "payments", "documents", "notifications"):
        production.check(Settings(), service)


@pytest.mark.parametrize(
    ("service", "changes", "named"),
    [
        ("billing", {"auth_secret": "dev-secret-change-me-dev-secret-change-me"}, "AUTH_SECRET"),
        ("documents", {"auth_secret": "short-secret"}, "AUTH_SECRET"),
        ("billing", {"billing_database_url": None}, "BILLING_DATABASE_URL"),
        ("documents", {"documents_database_url": "postgresql+asyncpg://documents:documents@db/tb"}, "DOCUMENTS_DATA"),
        ("payments", {"stripe_webhook_secret": "whsec_local"}, "STRIPE_WEBHOOK_SECRET"),
        ("payments", {"stripe_api_key": "sk_test_local"}, "STRIPE_API_KEY"),
        ("payments", {"stripe_api_base": "http://127.0.0.1:8420"}, "STRIPE_API_BASE"),
        ("notifications", {"smtp_starttls": False}, "SMTP_TLS"),
        ("billing", {"web_dev_sign_in": True}, "WEB_DEV_SIGN_IN"),
        ("web", {"web_dev_sign_in": True}, "WEB_DEV_SIGN_IN"),
        ("reports", {"kafka_security_protocol": "PLAINTEXT"}, "KAFKA_SECURITY_PROTOCOL"),
        ("billing", {"kafka_sasl_password": ""}, "KAFKA_SASL_PASSWORD"),
    ],
)
def test_each_weak_setting_is_refused_by_name(service: str, changes: dict, named: str) -> None:
    assert named in refused(service, **changes)


def test_plain_smtp_only_when_explicitly_allowed() -> None:
    production.check(Settings(**{**GOOD, "smtp_starttls": False, "smtp_allow_plaintext": True}), "notifications")


def test_every_problem_is_named_at_once() -> None:
    message = refused("payments", auth_secret="x", stripe_webhook_secret="whsec_local", payments_database_url=None)
    assert all(n in message for n in ("AUTH_SECRET", "STRIPE_WEBHOOK_SECRET", "PAYMENTS_DATABASE_URL"))


def test_a_service_process_refuses_to_start_and_names_the_setting() -> None:
    """Every service runs through Service.run, which checks before it binds a port."""
    service = "payments"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AUTH_", "STRIPE_", "SMTP_"))}
    env |= {"APP_ENV": "production", f"{service.upper()}_PORT": "1"}  # it must exit before binding anything
    done = subprocess.run(
        [sys.executable, "-m", f"services.{service}"], env=env, cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert done.returncode != 0
    assert "refuses to start in production" in done.stderr
    assert "AUTH_SECRET" in done.stderr and f"{service.upper()}_DATABASE_URL" in done.stderr
