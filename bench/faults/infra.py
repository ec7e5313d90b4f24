"""A private copy of every moving part, on ports and in a directory of its own, so the fault
workload can kill and restart them without touching the shared infrastructure other runs use:
a Postgres cluster (initdb), a single-node Kafka broker (the jars `./dev` caches), localstripe
(state in a file of its own), an SMTP sink, and N replicas of every service."""

import asyncio
import datetime as dt
import hashlib
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from shared import admin
from shared.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
SERVICES = admin.SERVICES


def pg_bin() -> Path:
    """The newest installed PostgreSQL's binaries (Debian layout), or FAULTS_PG_BIN."""
    if os.environ.get("FAULTS_PG_BIN"):
        return Path(os.environ["FAULTS_PG_BIN"])
    versions = sorted(Path("/usr/lib/postgresql").iterdir(), key=lambda p: int(p.name))
    return versions[-1] / "bin"


def port_open(port: int) -> bool:
    import socket

    with socket.socket() as s:
        s.settimeout(0.2)
        return s.connect_ex(("127.0.0.1", port)) == 0


async def wait_port(port: int, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if port_open(port):
            return
        await asyncio.sleep(0.1)
    raise RuntimeError(f"{what} did not open port {port} within {seconds} s")


KAFKA_JVM = [
    "-Xms256m",
    "-Xmx512m",
    # Restarted often on two busy cores: the client compiler only and the serial collector leave
    # the CPU to start-up instead of JIT and GC threads.
    "-XX:TieredStopAtLevel=1",
    "-XX:+UseSerialGC",
]

FAULT_BROKER_PROPS = """\
# A broker killed with -9 cannot register again until its controller, restarted with it, has
# timed out the dead incarnation's session: 9 s by default, most of a quiet restart. 1.5 s here.
# (A broker that misses its heartbeats that long under load is fenced until its next one.)
broker.session.timeout.ms=1500
broker.heartbeat.interval.ms=300
# Consumer sessions may be as short as 3 s (Kafka's floor is 6 s): see KAFKA_SESSION_TIMEOUT_MS.
group.min.session.timeout.ms=3000
"""


def kafka_class_archive(libs: Path) -> Path:
    """The broker's class-data-sharing archive for this JVM, this class path (the folder as
    given: a checkout reached through another path, a worktree's symlink, is another class
    path to the JVM), these jars and KAFKA_JVM: a JVM maps it only if all match what it was
    dumped with."""
    java = shutil.which("java") or "java"
    jars = sorted(f"{p.name}:{p.stat().st_size}" for p in libs.glob("*.jar"))
    material = [os.path.realpath(java), str(libs), *KAFKA_JVM, *jars]
    key = hashlib.sha256("|".join(material).encode()).hexdigest()[:16]
    return ROOT / ".stack" / "kafka" / "cds" / f"kafka-{key}.jsa"


@dataclass
class Ports:
    """Every port derives from one base (FAULTS_BASE_PORT / --base-port)."""

    base: int

    @property
    def postgres(self) -> int:
        return self.base

    @property
    def kafka(self) -> int:
        return self.base + 1

    @property
    def controller(self) -> int:
        return self.base + 2

    @property
    def localstripe(self) -> int:
        return self.base + 3

    @property
    def stripe_proxy(self) -> int:
        return self.base + 4

    @property
    def smtp(self) -> int:
        return self.base + 5

    def service(self, name: str, replica: int) -> int:
        return self.base + 10 + SERVICES.index(name) * 10 + replica


@dataclass
class Proc:
    """One process of the private stack: how to start it, and the running one."""

    name: str
    argv: list[str]
    env: dict[str, str] | None = None
    popen: subprocess.Popen | None = None
    started_at: float = 0.0

    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None


@dataclass
class PrivateStack:
    directory: Path
    ports: Ports
    replicas: int = 2
    procs: dict[str, Proc] = field(default_factory=dict)

    # --- settings the services and the workload see ---------------------------------------
    @property
    def settings(self) -> Settings:
        return Settings(
            kafka_bootstrap_servers=f"127.0.0.1:{self.ports.kafka}",
            topic_prefix="",
            topic_partitions=6,
            pg_host="127.0.0.1",  # its own cluster, over TCP whatever PG_HOST the shell exports
            pg_port=self.ports.postgres,
            pg_database="faults",
            pg_admin_url=f"postgresql://tb_admin:tb_admin@127.0.0.1:{self.ports.postgres}/postgres",
            stripe_api_base=f"http://127.0.0.1:{self.ports.stripe_proxy}",
            smtp_port=self.ports.smtp,
        )

    def service_env(self, name: str, replica: int) -> dict[str, str]:
        s = self.settings
        first = {svc: self.ports.service(svc, 0) for svc in SERVICES}
        env = {
            **os.environ,
            "KAFKA_BOOTSTRAP_SERVERS": s.kafka_bootstrap_servers,
            "TOPIC_PREFIX": "",
            "PG_HOST": s.pg_host,
            "PG_PORT": str(s.pg_port),
            "PG_DATABASE": s.pg_database,
            "PG_ADMIN_URL": s.pg_admin_url,
            "STRIPE_API_BASE": s.stripe_api_base or "",
            "STRIPE_TIMEOUT_SECONDS": "3",
            "PAYMENTS_RECONCILE_INTERVAL_S": "3",
            "PAYMENTS_BILL_WAIT_MS": "5000",
            "SMTP_PORT": str(self.ports.smtp),
            "SMTP_TIMEOUT_SECONDS": "5",
            "EMAIL_MAX_ATTEMPTS": "1000",
            "EMAIL_RETRY_BASE_MS": "300",
            "EMAIL_RETRY_MAX_MS": "2000",
            "EMAIL_SEND_LEASE_SECONDS": "10",
            "NOTIFICATIONS_POLL_MS": "100",
            "DOCUMENTS_RENDER_WORKERS": "1",
            "DOCUMENTS_RENDER_LEASE_SECONDS": "10",
            "DOCUMENTS_URL": f"http://127.0.0.1:{first['documents']}",
            "PUBLIC_BASE_URL": f"http://localhost:{first['payments']}",
            "AUTOPAY_INTERVAL_S": "0",
            "BILLING_AUTOMATION_INTERVAL_S": "0",
            "CONSUMER_RETRY_BACKOFF_MS": "50",
            "LOG_LEVEL": "INFO",
            # each replica is a static group member under its own stable name, as a StatefulSet's
            # pods would be: restarted, it takes its partitions back without a rebalance
            "KAFKA_GROUP_INSTANCE_ID": f"{name}-{replica}",
            # a replica killed for good (or still starting) holds its partitions this long: when
            # several start at once on the two busy cores a start takes 5-10 s, and the other
            # replica takes their partitions over after 3 s instead of waiting for it
            "KAFKA_SESSION_TIMEOUT_MS": "3000",
            **{f"{svc.upper()}_PORT": str(self.ports.service(svc, replica)) for svc in SERVICES},
        }
        env.pop("PYTHONPATH", None)
        return env

    def url(self, name: str, replica: int) -> str:
        return f"http://127.0.0.1:{self.ports.service(name, replica)}"

    def replica_names(self, service: str) -> list[str]:
        return [f"{service}-{r}" for r in range(self.replicas)]

    # --- process plumbing ---------------------------------------------------------------
    def _log(self, name: str):
        (self.directory / "log").mkdir(parents=True, exist_ok=True)
        return open(self.directory / "log" / f"{name}.log", "ab")

    def spawn(self, name: str) -> None:
        proc = self.procs[name]
        log = self._log(name)
        # the moment of the (re)start in the process's own log: start-up time = its first line's ts - this
        stamp = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3]
        log.write(f'{{"ts": "{stamp}", "level": "INFO", "logger": "bench.faults", "msg": "spawned"}}\n'.encode())
        log.flush()
        proc.popen = subprocess.Popen(proc.argv, cwd=ROOT, env=proc.env, stdout=log, stderr=log, start_new_session=True)
        proc.started_at = time.monotonic()
        (self.directory / "run").mkdir(exist_ok=True)
        (self.directory / "run" / f"{name}.pid").write_text(str(proc.popen.pid))

    def _kill_leftovers(self) -> None:
        """Processes a previous run that died without cleaning up left behind (by pid file)."""
        for pidfile in (self.directory / "run").glob("*.pid") if (self.directory / "run").exists() else []:
            pid = int(pidfile.read_text())
            try:
                if Path(f"/proc/{pid}/cwd").resolve() == ROOT:
                    os.killpg(pid, signal.SIGKILL)
            except (OSError, ValueError):
                pass
        if (self.directory / "pg" / "postmaster.pid").exists():
            self.stop_postgres("immediate")

    def kill(self, name: str) -> None:
        """SIGKILL to the process and its children (documents' render pool), as a crash of its
        container would; the zombie is reaped."""
        proc = self.procs[name]
        if proc.popen is not None and proc.popen.poll() is None:
            try:
                os.killpg(proc.popen.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            proc.popen.wait(10)

    def terminate(self, name: str) -> None:
        proc = self.procs.get(name)
        if proc and proc.popen is not None and proc.popen.poll() is None:
            proc.popen.terminate()
            try:
                proc.popen.wait(20)
            except subprocess.TimeoutExpired:
                pass
        if proc and proc.popen is not None:
            try:
                os.killpg(proc.popen.pid, signal.SIGKILL)  # what is left of its process group
            except ProcessLookupError:
                pass
            proc.popen.wait(5)

    # --- Postgres --------------------------------------------------------------------------
    def _as_postgres(self, argv: list[str]) -> list[str]:
        return ["runuser", "-u", "postgres", "--", *argv] if os.geteuid() == 0 else argv

    def _pg_ctl(self, *args: str) -> subprocess.CompletedProcess:
        data = self.directory / "pg"
        argv = [str(pg_bin() / "pg_ctl"), "-D", str(data), *args]
        return subprocess.run(self._as_postgres(argv), capture_output=True, text=True, cwd="/")

    async def start_postgres(self) -> None:
        await asyncio.to_thread(self._start_postgres)

    def _start_postgres(self) -> None:
        data, sock = self.directory / "pg", self.directory / "pgsock"
        if not (data / "PG_VERSION").exists():
            data.mkdir(parents=True, exist_ok=True)
            sock.mkdir(parents=True, exist_ok=True)
            if os.geteuid() == 0:
                shutil.chown(data, "postgres", "postgres")
                shutil.chown(sock, "postgres", "postgres")
            argv = [str(pg_bin() / "initdb"), "-D", str(data), "-U", "tb_admin", "--auth=trust", "-E", "UTF8"]
            subprocess.run(self._as_postgres(argv), check=True, capture_output=True, cwd="/")
        opts = f"-p {self.ports.postgres} -k {sock} -c listen_addresses=127.0.0.1 -c max_connections=200"
        log = self.directory / "pg" / "server.log"
        result = self._pg_ctl("-l", str(log), "-o", opts, "-w", "-t", "60", "start")
        if result.returncode != 0 and "another server might be running" not in result.stderr:
            raise RuntimeError(f"postgres did not start: {result.stderr}")

    def stop_postgres(self, mode: str = "immediate") -> None:
        """`-m immediate`: no checkpoint, no clean shutdown; the next start does crash recovery."""
        self._pg_ctl("-m", mode, "-w", "stop")

    # --- Kafka --------------------------------------------------------------------------
    def _kafka_props(self) -> Path:
        data = self.directory / "kafka"
        data.mkdir(parents=True, exist_ok=True)
        text = (ROOT / "stack" / "kafka" / "server.properties").read_text()
        text = text.replace("9092", str(self.ports.kafka)).replace("9093", str(self.ports.controller))
        props = self.directory / "kafka.properties"
        props.write_text(f"{text}\nlog.dirs={data}\n{FAULT_BROKER_PROPS}")
        return props

    @staticmethod
    def _format_kafka(cp: str, props: Path) -> None:
        tool = ["java", "-Xmx256m", "-cp", cp, "kafka.tools.StorageTool"]
        cid = subprocess.run([*tool, "random-uuid"], capture_output=True, text=True).stdout.split()[-1]
        subprocess.run([*tool, "format", "--standalone", "-t", cid, "-c", str(props)], check=True, capture_output=True)

    async def start_kafka(self) -> None:
        libs = Path(os.environ.get("FAULTS_KAFKA_LIBS", str(ROOT / ".stack" / "kafka" / "libs")))
        cp = f"{libs}/*"
        props = self._kafka_props()
        if not (self.directory / "kafka" / "meta.properties").exists():
            await asyncio.to_thread(self._format_kafka, cp, props)
        log4j = f"-Dlog4j2.configurationFile={ROOT / 'stack' / 'kafka' / 'log4j2.properties'}"
        archive = kafka_class_archive(libs)
        if not archive.exists():
            await self._dump_kafka_classes(archive, [*KAFKA_JVM, log4j, "-cp", cp, "kafka.Kafka", str(props)])
        # a missing or mismatched archive only costs the JVM its sharing (it warns, then starts)
        sharing = [f"-XX:SharedArchiveFile={archive}"] if archive.exists() else []
        argv = ["java", *KAFKA_JVM, *sharing, log4j, "-cp", cp, "kafka.Kafka", str(props)]
        self.procs.setdefault("kafka", Proc("kafka", argv))
        self.spawn("kafka")
        await wait_port(self.ports.kafka, 180, "kafka")

    async def _dump_kafka_classes(self, archive: Path, args: list[str]) -> None:
        """Start the broker once with `-XX:ArchiveClassesAtExit` and stop it cleanly: the JVM
        writes the classes it loaded to `archive`, which every later start maps instead of
        loading and verifying ~1 s of classes again (the broker's JVM start, 1.8–3.9 s before
        its first line on a quiet machine, becomes ~0.9 s). Cached per JVM and jar set."""
        archive.parent.mkdir(parents=True, exist_ok=True)
        partial = archive.with_suffix(f".{os.getpid()}.tmp")
        with self._log("kafka-cds") as log:
            dump = await asyncio.create_subprocess_exec(
                "java", f"-XX:ArchiveClassesAtExit={partial}", *args, stdout=log, stderr=log, start_new_session=True
            )
            (self.directory / "run").mkdir(exist_ok=True)
            (self.directory / "run" / "kafka-cds.pid").write_text(str(dump.pid))  # for _kill_leftovers
            try:
                await wait_port(self.ports.kafka, 180, "kafka (class archive run)")
                dump.terminate()
                await asyncio.wait_for(dump.wait(), 120)
            finally:
                if dump.returncode is None:
                    os.killpg(dump.pid, signal.SIGKILL)
                    await dump.wait()
        if partial.exists():
            os.replace(partial, archive)
            for stale in archive.parent.glob("kafka-*.jsa"):  # dumped for another JVM or jar set
                if stale != archive:
                    stale.unlink(missing_ok=True)

    # --- localstripe and the SMTP sink ----------------------------------------------------
    async def start_localstripe(self, *, from_scratch: bool = False) -> None:
        argv = [
            sys.executable,
            "-m",
            "bench.faults.localstripe_server",
            "--port",
            str(self.ports.localstripe),
            "--state",
            str(self.directory / "localstripe.pickle"),
        ]
        self.procs["localstripe"] = Proc("localstripe", argv + (["--from-scratch"] if from_scratch else []))
        self.spawn("localstripe")
        await wait_port(self.ports.localstripe, 120, "localstripe")

    async def start_smtp(self) -> None:
        argv = [
            sys.executable,
            "-m",
            "bench.faults.sink",
            "--port",
            str(self.ports.smtp),
            "--maildir",
            str(self.maildir),
        ]
        self.procs.setdefault("smtp", Proc("smtp", argv))
        self.spawn("smtp")
        await wait_port(self.ports.smtp, 120, "smtp sink")

    @property
    def maildir(self) -> Path:
        return self.directory / "mail"

    # --- services -----------------------------------------------------------------------
    def start_service(self, name: str) -> None:
        """`name` is `<service>-<replica>`."""
        service, replica = name.rsplit("-", 1)
        if name not in self.procs:
            argv = [sys.executable, "-m", f"services.{service}"]
            self.procs[name] = Proc(name, argv, self.service_env(service, int(replica)))
        self.spawn(name)

    async def service_ready(self, name: str, seconds: float = 240) -> None:
        service, replica = name.rsplit("-", 1)
        settings = self.settings.model_copy(update={f"{service}_port": self.ports.service(service, int(replica))})
        if not await admin.wait_ready(service, seconds, settings):
            raise RuntimeError(f"{name} not ready; see {self.directory / 'log' / (name + '.log')}")

    async def start(self) -> None:
        if self.directory.exists():
            self._kill_leftovers()
            shutil.rmtree(self.directory, ignore_errors=True)
        self.directory.mkdir(parents=True)
        await asyncio.gather(self.start_postgres(), self.start_kafka(), self.start_smtp())
        await self.start_localstripe(from_scratch=True)
        await admin.ensure_database(self.settings)
        await admin.ensure_topics(self.settings)
        names = [n for s in SERVICES for n in self.replica_names(s)]
        for name in names:
            self.start_service(name)
        await asyncio.gather(*(self.service_ready(n) for n in names))

    def stop(self) -> None:
        for name in list(self.procs):
            if name != "kafka":
                self.terminate(name)
        self.terminate("kafka")
        self.stop_postgres("fast")
