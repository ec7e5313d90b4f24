"""Production mode (`APP_ENV=production`): a service refuses to start with a default or weak
secret or a development-only setting, and names the setting to fix (SECURITY.md)."""

from sqlalchemy.engine import make_url

from shared.settings import DEV_AUTH_SECRET, Settings

MIN_SECRET_BYTES = 32
DEFAULTS = Settings.model_fields


class ProductionConfigError(RuntimeError):
    """The settings are not fit for production; the message names each offending setting."""


def _database_problem(settings: Settings, service: str) -> str | None:
    name = f"{service}_database_url"
    if name not in DEFAULTS:
        return None  # a service without a database (web)
    url = make_url(settings.database_url(service).replace("+asyncpg", ""))
    if not url.password or url.password == url.username:
        return f"{name.upper()}: the database password must not be empty or equal the role name"
    return None


def problems(settings: Settings, service: str) -> list[str]:
    """What is wrong with `settings` for `service` in production (empty when fine)."""
    found: list[str] = []
    if settings.auth_secret == DEV_AUTH_SECRET or len(settings.auth_secret.encode()) < MIN_SECRET_BYTES:
        found.append(f"AUTH_SECRET: set a random secret of at least {MIN_SECRET_BYTES} bytes (not the dev default)")
    if settings.web_dev_sign_in:
        found.append("WEB_DEV_SIGN_IN: the dev sign-in page lets anyone pick a practice and role; turn it off")
    if problem := _database_problem(settings, service):
        found.append(problem)
    if service != "web":  # every other service is a Kafka client
        if settings.kafka_security_protocol in ("PLAINTEXT", "SASL_PLAINTEXT"):
            found.append("KAFKA_SECURITY_PROTOCOL: events would travel unencrypted; use SASL_SSL (or SSL)")
        if settings.kafka_security_protocol.startswith("SASL") and not settings.kafka_sasl_password.get_secret_value():
            found.append("KAFKA_SASL_PASSWORD: empty")
    if service == "payments":
        for name in ("stripe_api_key", "stripe_webhook_secret", "stripe_publishable_key", "stripe_js_url"):
            if getattr(settings, name) == DEFAULTS[name].default:
                found.append(f"{name.upper()}: still the local default; give the real Stripe value")
        base = settings.stripe_api_base
        if base is not None and not base.startswith("https://"):
            found.append("STRIPE_API_BASE: points at a local Stripe (localstripe); unset it for Stripe itself")
    if service == "notifications" and not (
        settings.smtp_tls or settings.smtp_starttls or settings.smtp_allow_plaintext
    ):
        found.append("SMTP_TLS / SMTP_STARTTLS: mail would go out unencrypted; turn one on (or SMTP_ALLOW_PLAINTEXT)")
    return found


def check(settings: Settings, service: str) -> None:
    """Raise ProductionConfigError naming every problem, in production mode only."""
    if settings.app_env != "production":
        return
    found = problems(settings, service)
    if found:
        raise ProductionConfigError(f"{service} refuses to start in production: " + "; ".join(found))
