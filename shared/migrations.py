"""Alembic per service: scripts in services/<name>/migrations, version table in the service's
own schema, run with the service's own role. Services upgrade on start; operators can run
`python -m shared.migrations upgrade <service>` or `revision <service> -m "message"`."""

import asyncio
import sys
from importlib import import_module
from pathlib import Path

from alembic import command, context
from alembic.config import Config
from sqlalchemy import MetaData, pool
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

from shared.settings import get_settings

ROOT = Path(__file__).resolve().parent.parent


def alembic_config(service: str, url: str | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(ROOT / "services" / service / "migrations"))
    cfg.set_main_option("sqlalchemy.url", url or get_settings().database_url(service))
    cfg.attributes["service"] = service
    return cfg


def upgrade(service: str, url: str | None = None) -> None:
    command.upgrade(alembic_config(service, url), "head")


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
