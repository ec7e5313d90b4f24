"""Configuration from environment variables, one documented list (see README, Configuration)."""

from functools import lru_cache
from typing import Literal

from pydantic import SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

LOOPBACK = {"127.0.0.1", "localhost", "::1"}
DEV_AUTH_SECRET = "dev-secret-change-me-dev-secret-change-me"
DEFAULT_PORTS = {
    "billing": 8001,
    "payments": 8002,
    "documents": 8003,
    "notifications": 8004,
    "reports": 8005,
    "web": 8000,
}


class Settings(BaseSettings):
    """Every setting any service reads. Service-specific database URLs fall back to a
    role named after the service (password = name) on the local cluster."""

    model_config = SettingsConfigDict(env_prefix="", extra="ignore")

    # production refuses default or weak secrets and serves docs/metrics only on the admin port
    # (shared/production.py, SECURITY.md)
    app_env: Literal["development", "production"] = "development"
    admin_host: str = "127.0.0.1"
    admin_port_offset: int = 1000  # production: ops listener at the service's port + this; 0 = none
    kafka_bootstrap_servers: str = "127.0.0.1:9092"
    # How every Kafka client connects: SASL_SSL with SCRAM-SHA-512 and one user per service in
    # production (stack/kafka-sasl.sh, README "Kafka security"); the CA file is what the broker's
    # certificate is checked against (system CAs when unset).
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    kafka_sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] = "SCRAM-SHA-512"
    kafka_sasl_username: str | None = None
    kafka_sasl_password: SecretStr = SecretStr("")
    kafka_ssl_cafile: str | None = None
    # an outbox row larger than this (value + key + headers) is parked, not published: one
    # oversize event must not stop a service's relay for every tenant (Kafka's default limit is 1 MiB)
    kafka_max_message_bytes: int = 1_000_000
    # consumer groups: a replica's stable id (a StatefulSet pod name, `billing-0`) makes its
    # membership static (KIP-345): restarted after a crash it takes its partitions back at once,
    # without waiting for the session timeout or moving anyone else's; unset = dynamic members.
    # The session timeout is how long a dead member (kill -9, no LeaveGroup) holds its
    # partitions; the heartbeat is how soon the others hear of a rebalance.
    kafka_group_instance_id: str | None = None
    kafka_session_timeout_ms: int = 10_000
    kafka_heartbeat_interval_ms: int = 1_000
    # how long every Kafka client waits before it tries an unreachable broker again: while the
    # broker is down, a process's clients (each consumer's fetcher and coordinator, the producer,
    # metadata) retry in a loop at this pace, on the cores the broker needs for its own restart
    kafka_retry_backoff_ms: int = 500
    topic_prefix: str = ""
    topic_partitions: int = 6
    # a directory is Postgres' Unix socket on this host (e.g. /var/run/postgresql, as ./dev sets
    # it): a round trip costs a third less CPU than over TCP loopback
    pg_host: str = "127.0.0.1"
    pg_port: int = 5432
    # The most Postgres connections a service process holds: opened as needed, then kept.
    pg_pool_size: int = 20
    pg_database: str = "therapy_billing"
    pg_admin_url: str = "postgresql://tb_admin:tb_admin@127.0.0.1:5432/postgres"
    billing_database_url: str | None = None
    payments_database_url: str | None = None
    documents_database_url: str | None = None
    notifications_database_url: str | None = None
    reports_database_url: str | None = None
    auth_secret: str = DEV_AUTH_SECRET
    # bearer tokens: `aud` and `iss` checked when set; exp - iat (or exp - now) at most this
    jwt_audience: str | None = None
    jwt_issuer: str | None = None
    jwt_max_lifetime_s: int = 86400
    http_max_body_bytes: int = 1_048_576  # larger request bodies are refused with 413
    http_host: str = "127.0.0.1"
    billing_port: int = DEFAULT_PORTS["billing"]
    payments_port: int = DEFAULT_PORTS["payments"]
    documents_port: int = DEFAULT_PORTS["documents"]
    notifications_port: int = DEFAULT_PORTS["notifications"]
    # web: the staff console and client portal, a backend-for-frontend over the services' HTTP APIs
    # (each reached at <SERVICE>_URL, else on this host at its port); WEB_DEV_SIGN_IN adds the local
    # /dev/sign-in practice/role/client picker (./dev turns it on; never in production).
    web_port: int = DEFAULT_PORTS["web"]
    web_dev_sign_in: bool = False
    billing_url: str | None = None
    payments_url: str | None = None
    notifications_url: str | None = None
    reports_url: str | None = None
    reports_port: int = DEFAULT_PORTS["reports"]
    public_base_url: str = "http://localhost:8002"
    documents_url: str = "http://127.0.0.1:8003"
    # retention of the topics that feed the reports read model (-1 = keep forever, so
    # `python -m services.reports rebuild` can replay them)
    topic_retention_ms: int = -1
    documents_render_workers: int = 0  # render processes per documents replica; 0 = one per CPU
    documents_render_nice: int = 10  # render processes yield the CPU to consuming and HTTP when it is short
    documents_render_lease_seconds: int = 120  # a claimed render job is retried by any replica after this
    documents_render_max_attempts: int = 3  # render crashes before a document is marked failed
    stripe_api_key: str = "sk_test_local"
    stripe_api_base: str | None = "http://127.0.0.1:8420"
    stripe_webhook_secret: str = "whsec_local"
    # payments: Stripe call timeout (s); "View in Stripe" link base; how long a payment waits
    # for a just-created bill to reach its projection (ms); reconciler period for pending
    # Stripe payments (s); pay page lockout after N wrong codes within a window (s);
    # third-party platforms and their expected amount per service code, as JSON
    # ({"headway": {"90837": 12000}}; a code without a rate expects the session fee);
    # the pay page loads Stripe.js from stripe_js_url with the publishable key.
    stripe_timeout_seconds: float = 10.0
    stripe_dashboard_url: str = "https://dashboard.stripe.com/test"
    payments_bill_wait_ms: int = 3000
    payments_reconcile_interval_s: float = 30.0
    pay_page_max_failures: int = 5
    pay_page_window_s: int = 900
    # pay page: wrong codes per client IP; payment attempts (PaymentIntents) per bill and per
    # IP in the window (card testing); an unconfirmed pay-page intent is cancelled after ttl;
    # proxies (addresses / CIDRs) whose X-Forwarded-For is believed for the client IP
    pay_page_max_failures_per_ip: int = 20
    pay_page_max_payment_attempts: int = 5
    pay_page_max_payment_attempts_per_ip: int = 10
    pay_page_intent_ttl_s: int = 1800
    trusted_proxies: str = ""
    third_party_payers: str = "headway,alma"
    payer_fee_schedule: dict[str, dict[str, int]] = {}
    stripe_publishable_key: str = "pk_test_local"
    stripe_js_url: str = "http://127.0.0.1:8420/js.stripe.com/v3/"
    # payments checks this often whether a practice's nightly autopay run (at its autopay_time,
    # in its timezone) is due (0 = only on request, POST /v1/autopay/run)
    autopay_interval_s: float = 60.0
    # billing checks this often whether a practice's automatic bill / superbill run is due
    # (0 = only on request, POST /v1/automation/run)
    billing_automation_interval_s: float = 60.0
    smtp_host: str = "127.0.0.1"
    smtp_port: int = 1025
    smtp_username: str | None = None
    smtp_password: str | None = None
    smtp_tls: bool = False
    smtp_starttls: bool = False
    smtp_allow_plaintext: bool = False  # production: allow SMTP without TLS (a relay on the same host)
    smtp_sender: str = "billing@localhost"
    smtp_timeout_seconds: float = 30
    email_max_attempts: int = 8
    email_retry_base_ms: int = 5000
    email_retry_max_ms: int = 900_000
    email_pdf_wait_seconds: int = 600
    email_send_lease_seconds: int = 300
    notifications_poll_ms: int = 200
    card_expiry_notice_days: int = 30
    card_expiry_scan_seconds: int = 3600
    # an idle consumer's wait for records (it ends as soon as one arrives: not a latency)
    consumer_poll_ms: int = 1000
    consumer_fetch_max_wait_ms: int = 50
    # on the ingest topic (scheduling.events) the broker answers a fetch once it has this many
    # bytes or has waited this long: batches of many sessions under load, at most this wait added
    ingest_fetch_min_bytes: int = 65536
    ingest_fetch_max_wait_ms: int = 40
    # offsets of applied batches are committed at most this often (and this long after the last)
    consumer_commit_interval_ms: int = 200
    consumer_max_retries: int = 3
    consumer_retry_backoff_ms: int = 200
    outbox_poll_ms: int = 1000
    log_level: str = "INFO"

    def database_url(self, service: str) -> str:
        """asyncpg URL of `service`'s own role; only that schema is usable with it."""
        explicit = getattr(self, f"{service}_database_url")
        if explicit:
            return explicit
        role = f"postgresql+asyncpg://{service}:{service}"
        if self.pg_host.startswith("/"):
            return f"{role}@/{self.pg_database}?host={self.pg_host}&port={self.pg_port}"
        url = f"{role}@{self.pg_host}:{self.pg_port}/{self.pg_database}"
        # TLS to a database on this host only costs CPU; a remote one is given explicitly.
        return f"{url}?ssl=disable" if self.pg_host in LOOPBACK else url

    def platforms(self) -> frozenset[str]:
        """`third_party_payers` as a set: session payers that pay the practice themselves."""
        return frozenset(p.strip() for p in self.third_party_payers.split(",") if p.strip())

    def http_port(self, service: str) -> int:
        return int(getattr(self, f"{service}_port"))

    def service_url(self, service: str) -> str:
        """Base URL another service is called at: `<SERVICE>_URL` if set, else this host at its port."""
        explicit = getattr(self, f"{service}_url", None)
        return str(explicit).rstrip("/") if explicit else f"http://127.0.0.1:{self.http_port(service)}"

    def topic(self, name: str) -> str:
        """Physical topic name; a prefix isolates parallel test runs on one broker."""
        return f"{self.topic_prefix}{name}"


@lru_cache
def get_settings() -> Settings:
    return Settings()
