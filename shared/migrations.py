"""Alembic per service: scripts in services/<name>/migrations, version table in the service's
own schema, run with the service's own role. Services upgrade on start; operators can run
`python -m shared.migrations upgrade <service>` or `revision <service> -m "message"`."""

import asyncio
import sys
from importlib import import_module
from pathlib import Path

import sqlalchemy as sa
from alembic import command, context, op
from alembic.config import Config
from sqlalchemy import MetaData, pool, text
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

from shared.settings import Settings, get_settings

ROOT = Path(__file__).resolve().parent.parent


def alembic_config(service: str, url: str | None = None, settings: Settings | None = None) -> Config:
    cfg = Config()
    settings = settings or get_settings()
    cfg.set_main_option("script_location", str(ROOT / "services" / service / "migrations"))
    cfg.set_main_option("sqlalchemy.url", url or settings.database_url(service))
    cfg.attributes["service"] = service
    cfg.attributes["settings"] = settings  # a data migration that stages events needs the topic prefix
    return cfg


def migration_settings() -> Settings:
    """Inside a migration: the settings of the service that runs it."""
    return context.config.attributes.get("settings") or get_settings()


def upgrade(service: str, url: str | None = None, settings: Settings | None = None) -> None:
    command.upgrade(alembic_config(service, url, settings), "head")


def _not_version_table(obj: object, name: str | None, type_: str, reflected: bool, compare_to: object) -> bool:
    """Autogenerate must not propose dropping Alembic's own version table."""
    return not (type_ == "table" and name == "alembic_version")


def run_env(metadata: MetaData) -> None:
    """Body of each service's migrations/env.py (online mode only: we always have a DB)."""
    schema = metadata.schema
    assert schema, "service metadata must name its schema"
    url = context.config.get_main_option("sqlalchemy.url")
    assert url

    def do_run(connection: Connection) -> None:
        context.configure(
            connection=connection,
            target_metadata=metadata,
            version_table_schema=schema,
            include_schemas=False,
            compare_type=True,
            include_object=_not_version_table,
        )
        with context.begin_transaction():
            # Replicas starting together would race to create the same tables: the first
            # migrates, the others wait here and then find the schema at head.
            connection.execute(text("SELECT pg_advisory_xact_lock(hashtext(:k))"), {"k": f"migrations:{schema}"})
            context.run_migrations()

    async def run() -> None:
        engine = create_async_engine(
            url, poolclass=pool.NullPool, connect_args={"server_settings": {"search_path": str(schema)}}
        )
        async with engine.connect() as conn:
            await conn.run_sync(do_run)
            await conn.commit()
        await engine.dispose()

    asyncio.run(run())


def main(argv: list[str]) -> int:
    if len(argv) >= 2 and argv[0] == "upgrade":
        upgrade(argv[1])
        return 0
    if len(argv) >= 4 and argv[0] == "revision" and argv[2] == "-m":
        import_module(f"services.{argv[1]}.db")
        command.revision(alembic_config(argv[1]), message=argv[3], autogenerate=True)
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))


def create_messaging_tables(schema: str) -> None:
    """The outbox, inbox and idempotency-key tables every service schema carries (their models
    are in `shared.db.service_metadata`): one definition, called by each service's initial
    migration. A change to them is a new migration per service calling a new helper here."""
    op.create_table(
        "idempotency_keys",
        sa.Column("practice_id", sa.String(), nullable=False),
        sa.Column("key", sa.String(), nullable=False),
        sa.Column("request_hash", sa.String(), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=True),
        sa.Column("response", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.PrimaryKeyConstraint("practice_id", "key", name=op.f("pk_idempotency_keys")),
        schema=schema,
    )
    op.create_table(
        "inbox",
        sa.Column("event_id", sa.String(), nullable=False),
        sa.Column("event_type", sa.String(), nullable=False),
        sa.Column("processed_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.PrimaryKeyConstraint("event_id", name=op.f("pk_inbox")),
        schema=schema,
    )
    op.create_table(
        "outbox",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("event_id", sa.String(), nullable=False),
        sa.Column("topic", sa.String(), nullable=False),
        sa.Column("key", sa.String(), nullable=False),
        sa.Column("event_type", sa.String(), nullable=False),
        sa.Column("payload", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outbox")),
        sa.UniqueConstraint("event_id", name=op.f("uq_outbox_event_id")),
        schema=schema,
    )
    op.create_index(
        "ix_outbox_unsent", "outbox", ["id"], unique=False, schema=schema, postgresql_where=sa.text("sent_at IS NULL")
    )


def drop_messaging_tables(schema: str) -> None:
    op.drop_index("ix_outbox_unsent", table_name="outbox", schema=schema, postgresql_where=sa.text("sent_at IS NULL"))
    op.drop_table("outbox", schema=schema)
    op.drop_table("inbox", schema=schema)
    op.drop_table("idempotency_keys", schema=schema)
