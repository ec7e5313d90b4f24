"""A private Kafka broker with a SASL_SSL listener (SCRAM-SHA-512, a CA made for the run) and
ACLs from shared.kafka_acls, started once per test session by stack/kafka-sasl.sh on free ports
(the shared broker on 9092 is left alone)."""

import asyncio
import os
import socket
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from pydantic import SecretStr

from shared import admin, kafka_acls, topics
from shared.kafka_acls import acl_plan
from shared.settings import Settings

ROOT = Path(__file__).resolve().parents[3]
SCRIPT = ROOT / "stack" / "kafka-sasl.sh"
ADMIN_PASSWORD = "admin-" + uuid.uuid4().hex


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class SecureKafka:
    bootstrap: str
    ca_file: Path
    passwords: dict[str, str]
    base: Settings

    def settings(self, user: str, password: str | None = None, **overrides: object) -> Settings:
        """Settings of a client logging in as `user` over TLS."""
        return self.base.model_copy(
            update={
                "kafka_bootstrap_servers": self.bootstrap,
                "kafka_security_protocol": "SASL_SSL",
                "kafka_sasl_mechanism": "SCRAM-SHA-512",
                "kafka_sasl_username": user,
                "kafka_sasl_password": SecretStr(password if password is not None else self.passwords[user]),
                "kafka_ssl_cafile": str(self.ca_file),
                **overrides,
            }
        )


async def wait_port(port: int, proc: asyncio.subprocess.Process, seconds: float = 120) -> None:
    deadline = asyncio.get_running_loop().time() + seconds
    while asyncio.get_running_loop().time() < deadline:
        assert proc.returncode is None, "the SASL_SSL broker exited; see its log in the test's tmp dir"
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.close()
            return
        except OSError:
            await asyncio.sleep(0.25)
    raise AssertionError(f"SASL_SSL broker not listening on {port} after {seconds}s")


@pytest.fixture(scope="session")
async def secure_kafka(test_settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[SecureKafka]:
    workdir = tmp_path_factory.mktemp("kafka-sasl")
    port, controller_port = free_port(), free_port()
    env = {**os.environ, "KAFKA_ADMIN_PASSWORD": ADMIN_PASSWORD}
    with (workdir / "broker.log").open("wb") as log:
        proc = await asyncio.create_subprocess_exec(
            str(SCRIPT), "start", str(workdir), str(port), str(controller_port), stdout=log, stderr=log, env=env
        )
    try:
        await wait_port(port, proc)
        passwords = {user: uuid.uuid4().hex for user in topics.WRITES}
        passwords["admin"] = ADMIN_PASSWORD
        secure = SecureKafka(f"127.0.0.1:{port}", workdir / "ca.pem", passwords, test_settings)
        users = {u: p for u, p in passwords.items() if u != "admin"}
        spec = kafka_acls.spec(test_settings, users)
        applied = await asyncio.create_subprocess_exec(
            str(SCRIPT), "apply", secure.bootstrap, str(workdir), env=env,
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        )  # fmt: skip
        out, _ = await applied.communicate(spec.encode())
        assert applied.returncode == 0, out.decode()
        assert f"{len(acl_plan(test_settings))} ACLs" in out.decode()
        await admin.ensure_topics(secure.settings("admin"))
        yield secure
    finally:
        proc.terminate()
        try:
            await asyncio.wait_for(proc.wait(), 30)
        except TimeoutError:
            proc.kill()
