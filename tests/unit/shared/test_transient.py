"""Which failures a consumer retries forever (infrastructure) and which count toward the DLQ
(the message): found by the fault workload, where a Postgres restart dead-lettered valid events."""

import pytest
from sqlalchemy.exc import DBAPIError

from shared.consumer import is_transient


class PgError(Exception):
    def __init__(self, sqlstate: str) -> None:
        super().__init__(sqlstate)
        self.sqlstate = sqlstate


@pytest.mark.parametrize(
    "sqlstate",
    ["57P03", "57P01", "57P02", "08006", "08001", "53300", "40001", "40P01"],
    ids=["starting up", "admin shutdown", "crash shutdown", "connection failure", "cannot connect",
         "too many connections", "serialization", "deadlock"],
)  # fmt: skip
def test_a_database_restarting_or_racing_is_transient(sqlstate: str) -> None:
    assert is_transient(DBAPIError("SELECT 1", {}, PgError(sqlstate)))


@pytest.mark.parametrize("sqlstate", ["23505", "22001", "42P01"])
def test_what_the_message_causes_is_not(sqlstate: str) -> None:
    assert not is_transient(DBAPIError("INSERT", {}, PgError(sqlstate)))
