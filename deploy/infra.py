"""Local infrastructure for Casetrail: PostgreSQL, a single-node Kafka, and the five services.

No Docker: PostgreSQL comes from Debian's packages, Kafka from Maven Central (deploy/kafka/pom.xml),
and each service runs as a uvicorn subprocess from the project's .venv.

Everything a stack owns lives under one root directory (``.run/`` for ``make run``, a temporary
directory in tests)::

    root/
      ports.json        ports chosen on first start, reused later when still free
      secrets.json      PostgreSQL passwords (superuser and one per service), mode 0600
      pgdata/           PostgreSQL cluster (owned by the postgres OS user)
      pgsock/           PostgreSQL unix socket (owned by postgres)
      kafka/            Kafka: server.properties, data/ (log.dirs), server.log (log4j)
      pids/             pid files: kafka.pid, <service>.pid, stack.pid (the `up` CLI)
      logs/             postgres.log, kafka.log (JVM stdout/stderr), <service>.log
      services.json     URLs of the services started by the stack
      stack.env         KEY=value lines written by `up` (see Stack.env)

Importable (tests start a throw-away ``Stack(tmp, fast=True)``) and a CLI::

    python deploy/infra.py install           # Kafka jars + PostgreSQL packages
    python deploy/infra.py up [--root .run]  # start everything, stay in the foreground
    python deploy/infra.py down [--root .run]
    python deploy/infra.py status [--root .run]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import hashlib
import json
import os
import re
import secrets
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Coroutine, Iterable, Mapping
from pathlib import Path
from typing import Any, TypeVar

REPO_ROOT = Path(__file__).resolve().parent.parent
KAFKA_DIR = REPO_ROOT / "deploy" / "kafka"
KAFKA_POM = KAFKA_DIR / "pom.xml"
KAFKA_LIB = KAFKA_DIR / "lib"
KAFKA_LOG4J = KAFKA_DIR / "log4j2.properties"
DEFAULT_ROOT = REPO_ROOT / ".run"

# service name (= python module under casetrail.) -> environment variable prefix
SERVICES: dict[str, str] = {
    "intake": "INTAKE",
    "triage": "TRIAGE",
    "sla_timer": "SLA_TIMER",
    "refunds": "REFUNDS",
    "audit": "AUDIT",
}
ALL: tuple[str, ...] = tuple(SERVICES)
# Who may do what with the keyring's data keys (casetrail.runtime.keyring.GRANTS):
# intake mints and destroys them, triage seals survey answers, audit only opens.
KEYRING_USERS: dict[str, str] = {"intake": "eraser", "triage": "minter", "audit": "reader"}

KAFKA_READY_TIMEOUT = 60.0
SERVICE_READY_TIMEOUT = 90.0
STOP_TIMEOUT = 30.0

T = TypeVar("T")


class InfraError(RuntimeError):
    """Something in the local infrastructure could not be set up or started."""


# --------------------------------------------------------------------------------------------
# small helpers
# --------------------------------------------------------------------------------------------


def _log(msg: str) -> None:
    print(f"[infra] {msg}", file=sys.stderr, flush=True)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def port_is_free(port: int) -> bool:
    """True when a server could listen on 127.0.0.1:port now. SO_REUSEADDR like PostgreSQL
    and Kafka set it themselves: connections lingering in TIME_WAIT don't count as busy."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def port_open(port: int, host: str = "127.0.0.1", timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def _read_json(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        return {}


def _write_json(path: Path, data: Mapping[str, Any], mode: int = 0o644) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "w") as f:
        json.dump(data, f, indent=2, sort_keys=True)
        f.write("\n")
    os.chmod(tmp, mode)
    os.replace(tmp, path)


def _update_json(path: Path, mode: int = 0o644, **values: Any) -> dict[str, Any]:
    data = _read_json(path)
    data.update(values)
    _write_json(path, data, mode)
    return data


def _tail(path: Path, lines: int = 60) -> str:
    try:
        with path.open("rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - 64 * 1024))
            data = f.read().decode(errors="replace")
    except FileNotFoundError:
        return f"(no log at {path})"
    return "\n".join(data.splitlines()[-lines:])


def _pid_alive(pid: int, marker: str | None = None) -> bool:
    """True when pid is a live (non-zombie) process whose command line contains marker."""
    if pid <= 0:
        return False
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        cmdline = (
            Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        )
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return False
    state = stat.rsplit(")", 1)[-1].split()[0]
    if state in ("Z", "X"):
        return False
    return marker is None or marker in cmdline


def _read_pid(path: Path) -> int | None:
    try:
        return int(path.read_text().split()[0])
    except (FileNotFoundError, ValueError, IndexError):
        return None


def _signal_and_wait(
    pid: int,
    sig: int,
    marker: str | None,
    timeout: float,
    group: bool = True,
    proc: subprocess.Popen[Any] | None = None,
    send_first: bool = True,
) -> None:
    """Send sig (to the process group when group), wait up to timeout, then SIGKILL."""

    def send(s: int) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            if group:
                try:
                    os.killpg(pid, s)
                    return
                except (ProcessLookupError, PermissionError):
                    pass
            os.kill(pid, s)

    def alive() -> bool:
        if proc is not None:
            return proc.poll() is None
        return _pid_alive(pid, marker)

    if not alive():
        return
    if send_first:
        send(sig)
    deadline = time.monotonic() + timeout
    while alive() and time.monotonic() < deadline:
        time.sleep(0.05)
    if alive():
        _log(f"pid {pid} still alive {timeout:.0f}s after signal {sig}: SIGKILL")
        send(signal.SIGKILL)
        deadline = time.monotonic() + 10
        while alive() and time.monotonic() < deadline:
            time.sleep(0.05)
    if proc is not None:
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=1)


def _run_coro(factory: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run a coroutine to completion, also when called from inside a running event loop
    (pytest-asyncio fixtures): then it runs on a fresh loop in a helper thread."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(factory())
    result: list[T] = []
    error: list[BaseException] = []

    def target() -> None:
        try:
            result.append(asyncio.run(factory()))
        except BaseException as e:
            error.append(e)

    t = threading.Thread(target=target, name="infra-async")
    t.start()
    t.join()
    if error:
        raise error[0]
    return result[0]


def _is_root() -> bool:
    return os.geteuid() == 0


def _make_traversable(path: Path) -> None:
    """The postgres OS user must be able to reach root/pgdata: give o+x on root and on any
    of its ancestors that lack it (pytest's tmp dirs are 0700)."""
    if not _is_root():
        return
    for p in [path, *path.parents]:
        try:
            st = p.stat()
        except FileNotFoundError:
            continue
        if not st.st_mode & 0o001:
            os.chmod(p, st.st_mode | 0o001)


# --------------------------------------------------------------------------------------------
# PostgreSQL
# --------------------------------------------------------------------------------------------

_IDENT = re.compile(r"^[a-z_][a-z0-9_]{0,50}$")


def _pg_bindir() -> Path | None:
    found: list[tuple[tuple[int, ...], Path]] = []
    for initdb in Path("/usr/lib/postgresql").glob("*/bin/initdb"):
        ver = initdb.parent.parent.name
        try:
            key = tuple(int(x) for x in ver.split("."))
        except ValueError:
            continue
        found.append((key, initdb.parent))
    if not found:
        return None
    return max(found)[1]


class Postgres:
    """A project-local PostgreSQL cluster under root/pgdata, on 127.0.0.1:<free port>.

    Local (unix socket) connections are trusted and only used by this class, as the
    postgres superuser; TCP connections need a password (scram-sha-256).
    """

    def __init__(self, root: Path, fast: bool = False) -> None:
        self.root = Path(root).resolve()
        self.fast = fast
        self.pgdata = self.root / "pgdata"
        self.logfile = self.root / "logs" / "postgres.log"
        self.ports_file = self.root / "ports.json"
        self.secrets_file = self.root / "secrets.json"
        sock = self.root / "pgsock"
        # unix socket paths are limited to ~107 bytes: ".s.PGSQL.NNNNN" must fit
        if len(str(sock)) > 80:
            digest = hashlib.sha1(str(self.root).encode()).hexdigest()[:12]
            sock = Path("/tmp") / f"casetrail-pgsock-{digest}"
        self.sockdir = sock
        self._bindir: Path | None = None

    # -- installation -------------------------------------------------------------------

    @property
    def bindir(self) -> Path:
        if self._bindir is None:
            self._bindir = _pg_bindir()
            if self._bindir is None:
                raise InfraError("PostgreSQL is not installed: call Postgres.install() first")
        return self._bindir

    def install(self) -> None:
        """Install Debian's postgresql package when no /usr/lib/postgresql/*/bin/initdb exists."""
        if _pg_bindir() is not None:
            return
        if not _is_root():
            raise InfraError(
                "PostgreSQL is missing and installing it needs root: run "
                "`sudo apt-get update && sudo apt-get install -y postgresql`"
            )
        _log("installing PostgreSQL with apt-get (once)")
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run(["apt-get", "update"], check=True, env=env)
        subprocess.run(
            ["apt-get", "install", "-y", "postgresql"],
            check=True,
            env=env,
        )
        self._bindir = _pg_bindir()
        if self._bindir is None:
            raise InfraError("apt-get installed postgresql but no initdb was found")

    # -- state ------------------------------------------------------------------------------

    def _secrets(self) -> dict[str, Any]:
        data = _read_json(self.secrets_file)
        changed = False
        if "postgres" not in data:
            data["postgres"] = secrets.token_urlsafe(24)
            changed = True
        data.setdefault("services", {})
        if changed:
            _write_json(self.secrets_file, data, mode=0o600)
        return data

    def _service_password(self, service: str) -> str:
        data = self._secrets()
        pw = data["services"].get(service)
        if pw is None:
            pw = secrets.token_urlsafe(24)
            data["services"][service] = pw
            _write_json(self.secrets_file, data, mode=0o600)
        return str(pw)

    @property
    def port(self) -> int:
        port = _read_json(self.ports_file).get("postgres")
        if port is None:
            raise InfraError("PostgreSQL has never been started under " + str(self.root))
        return int(port)

    def _postmaster_pid(self) -> int | None:
        return _read_pid(self.pgdata / "postmaster.pid")

    def running(self) -> bool:
        pid = self._postmaster_pid()
        return pid is not None and _pid_alive(pid, "postgres")

    # -- commands ---------------------------------------------------------------------------

    def _as_postgres(self, argv: list[str]) -> list[str]:
        return ["runuser", "-u", "postgres", "--", *argv] if _is_root() else argv

    def _chown_pg(self, path: Path) -> None:
        if _is_root():
            shutil.chown(path, "postgres", "postgres")

    def _initdb(self) -> None:
        _log(f"initdb {self.pgdata}")
        self.pgdata.mkdir(parents=True, exist_ok=True)
        os.chmod(self.pgdata, 0o700)
        self._chown_pg(self.pgdata)
        pwfile = self.sockdir / "initdb.pw"
        pwfile.write_text(self._secrets()["postgres"] + "\n")
        os.chmod(pwfile, 0o600)
        self._chown_pg(pwfile)
        try:
            subprocess.run(
                self._as_postgres(
                    [
                        str(self.bindir / "initdb"),
                        "-D",
                        str(self.pgdata),
                        "-U",
                        "postgres",
                        "--auth-local=trust",
                        "--auth-host=scram-sha-256",
                        f"--pwfile={pwfile}",
                        "-E",
                        "UTF8",
                        "--locale=C.UTF-8",
                    ]
                ),
                check=True,
                stdout=subprocess.DEVNULL,
            )
        except BaseException:
            shutil.rmtree(self.pgdata, ignore_errors=True)
            raise
        finally:
            pwfile.unlink(missing_ok=True)

    def start(self) -> None:
        """Start the cluster (initdb on first start). Idempotent."""
        self.root.mkdir(parents=True, exist_ok=True)
        _make_traversable(self.root)
        (self.root / "logs").mkdir(exist_ok=True)
        self.sockdir.mkdir(parents=True, exist_ok=True)
        os.chmod(self.sockdir, 0o755)
        self._chown_pg(self.sockdir)
        if self.running():
            return
        if not (self.pgdata / "PG_VERSION").exists():
            if self.pgdata.exists() and any(self.pgdata.iterdir()):
                raise InfraError(f"{self.pgdata} exists but holds no PostgreSQL cluster")
            self._initdb()

        saved = _read_json(self.ports_file).get("postgres")
        port = int(saved) if saved and port_is_free(int(saved)) else free_port()
        if saved and port != saved:
            _log(f"PostgreSQL port {saved} is busy, using {port}")
        _update_json(self.ports_file, postgres=port)

        self.logfile.touch()
        self._chown_pg(self.logfile)
        opts = [
            "-p",
            str(port),
            "-k",
            str(self.sockdir),
            "-c",
            "listen_addresses=127.0.0.1",
            "-c",
            "max_connections=200",
        ]
        if self.fast:
            opts += [
                "-c",
                "fsync=off",
                "-c",
                "synchronous_commit=off",
                "-c",
                "full_page_writes=off",
            ]
        t0 = time.monotonic()
        proc = subprocess.run(
            self._as_postgres(
                [
                    str(self.bindir / "pg_ctl"),
                    "-D",
                    str(self.pgdata),
                    "-o",
                    shlex.join(opts),
                    "-l",
                    str(self.logfile),
                    "-w",
                    "-t",
                    "60",
                    "start",
                ]
            ),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,  # Ctrl-C on our terminal must not reach the postmaster
        )
        if proc.returncode != 0:
            raise InfraError(
                f"PostgreSQL did not start (pg_ctl exit {proc.returncode}):\n{proc.stdout}\n"
                f"--- {self.logfile} ---\n{_tail(self.logfile)}"
            )
        _log(f"PostgreSQL up on 127.0.0.1:{port} in {time.monotonic() - t0:.1f}s")
        # keep the superuser's password in step with secrets.json
        self.psql(f"ALTER ROLE postgres PASSWORD '{self._secrets()['postgres']}'")

    def stop(self) -> None:
        """Stop the cluster (fast shutdown). No-op when it is not running."""
        if not self.running():
            return
        proc = subprocess.run(
            self._as_postgres(
                [
                    str(self.bindir / "pg_ctl"),
                    "-D",
                    str(self.pgdata),
                    "-m",
                    "fast",
                    "-w",
                    "-t",
                    "60",
                    "stop",
                ]
            ),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        if proc.returncode != 0 and self.running():
            pid = self._postmaster_pid()
            _log(f"pg_ctl stop failed ({proc.stdout.strip()}): SIGQUIT to postmaster {pid}")
            if pid:
                _signal_and_wait(pid, signal.SIGQUIT, "postgres", 20, group=False)

    # -- SQL --------------------------------------------------------------------------------

    def psql(self, sql: str, dbname: str = "postgres") -> str:
        """Run SQL as the superuser over the unix socket; returns unaligned tuples output."""
        proc = subprocess.run(
            self._as_postgres(
                [
                    str(self.bindir / "psql"),
                    "-X",
                    "-q",
                    "-v",
                    "ON_ERROR_STOP=1",
                    "-h",
                    str(self.sockdir),
                    "-p",
                    str(self.port),
                    "-U",
                    "postgres",
                    "-d",
                    dbname,
                    "-tA",
                    "-c",
                    sql,
                ]
            ),
            capture_output=True,
            text=True,
            cwd="/",
        )
        if proc.returncode != 0:
            # don't echo passwords
            shown = re.sub(r"PASSWORD '[^']*'", "PASSWORD '***'", sql)
            raise InfraError(f"psql failed: {proc.stderr.strip()}\nSQL: {shown}")
        return proc.stdout.strip()

    def _ensure_role(self, role: str) -> str:
        password = self._service_password(role)
        exists = self.psql(f"SELECT 1 FROM pg_roles WHERE rolname = '{role}'")
        verb = "ALTER" if exists == "1" else "CREATE"
        self.psql(f"{verb} ROLE \"{role}\" LOGIN PASSWORD '{password}'")
        return password

    def ensure_service_database(self, service: str) -> str:
        """Idempotently creates the database casetrail_<service> and its two roles.

        `<service>_owner` owns the database and its tables: the service uses it only to
        set up its schema at start. `<service>` is what the service runs as: it may read
        and write rows (as each service's own schema setup narrows further, e.g. audit's
        store is INSERT and SELECT only) but create, alter or drop nothing. Both reach
        only their own database. Returns the runtime role's URL; see owner_url().
        """
        if not _IDENT.match(service) or len(service) > 40:
            raise ValueError(f"bad service name {service!r}")
        db, owner = f"casetrail_{service}", f"{service}_owner"
        password = self._ensure_role(service)
        self._ensure_role(owner)
        if self.psql(f"SELECT 1 FROM pg_database WHERE datname = '{db}'") != "1":
            self.psql(f'CREATE DATABASE "{db}" OWNER "{owner}"')
        self.psql(f'ALTER DATABASE "{db}" OWNER TO "{owner}"')
        self.psql(f'REVOKE CONNECT, TEMPORARY ON DATABASE "{db}" FROM PUBLIC')
        self.psql(f'GRANT CONNECT ON DATABASE "{db}" TO "{service}", "{owner}"')
        # the maintenance database is no service's business either
        self.psql('REVOKE CONNECT, TEMPORARY ON DATABASE "postgres" FROM PUBLIC')
        self.psql(
            # Data kept by an earlier layout, where the runtime role owned its tables.
            f'REASSIGN OWNED BY "{service}" TO "{owner}";'
            f'REVOKE CREATE ON SCHEMA public FROM PUBLIC, "{service}";'
            f'GRANT USAGE ON SCHEMA public TO "{service}";'
            f'ALTER DEFAULT PRIVILEGES FOR ROLE "{owner}" IN SCHEMA public '
            f'GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO "{service}";'
            f'ALTER DEFAULT PRIVILEGES FOR ROLE "{owner}" IN SCHEMA public '
            f'GRANT USAGE, SELECT ON SEQUENCES TO "{service}";'
            f'GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO "{service}";'
            f'GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO "{service}";',
            dbname=db,
        )
        return f"postgresql://{service}:{password}@127.0.0.1:{self.port}/{db}"

    def ensure_keyring_database(self) -> None:
        """Idempotently creates the keyring's database, owned by `keyring_owner`, with its
        tables; each service in KEYRING_USERS may connect, with only its kind of grant.
        The service roles must exist (ensure_service_database) first."""
        from casetrail.runtime.keyring import Keyring

        db, owner = "casetrail_keyring", "keyring_owner"
        password = self._ensure_role(owner)
        if self.psql(f"SELECT 1 FROM pg_database WHERE datname = '{db}'") != "1":
            self.psql(f'CREATE DATABASE "{db}" OWNER "{owner}"')
        self.psql(f'REVOKE CONNECT, TEMPORARY ON DATABASE "{db}" FROM PUBLIC')
        users = ", ".join(f'"{service}"' for service in KEYRING_USERS)
        self.psql(f'GRANT CONNECT ON DATABASE "{db}" TO "{owner}", {users}')
        self.psql(
            f"REVOKE CREATE ON SCHEMA public FROM PUBLIC; GRANT USAGE ON SCHEMA public TO {users}",
            dbname=db,
        )
        Keyring.install(
            f"postgresql://{owner}:{password}@127.0.0.1:{self.port}/{db}", KEYRING_USERS
        )

    def keyring_url(self, service: str) -> str:
        password = self._service_password(service)
        return f"postgresql://{service}:{password}@127.0.0.1:{self.port}/casetrail_keyring"

    def owner_url(self, service: str) -> str:
        """The URL of the role that owns the service's schema (for set-up, not for work)."""
        owner = f"{service}_owner"
        password = self._service_password(owner)
        return f"postgresql://{owner}:{password}@127.0.0.1:{self.port}/casetrail_{service}"

    def admin_url(self, dbname: str = "postgres") -> str:
        return f"postgresql://postgres:{self._secrets()['postgres']}@127.0.0.1:{self.port}/{dbname}"


# --------------------------------------------------------------------------------------------
# Kafka
# --------------------------------------------------------------------------------------------

_KAFKA_MARKER = "kafka.Kafka"


class Kafka:
    """A single-node KRaft Kafka (broker + controller) on 127.0.0.1."""

    REQUIRED_JARS = ("kafka_2.13-", "kafka-clients-", "log4j-core-", "log4j-slf4j-impl-")

    def __init__(self, root: Path, partitions: int = 6) -> None:
        self.root = Path(root).resolve()
        self.partitions = partitions
        self.dir = self.root / "kafka"
        self.datadir = self.dir / "data"
        self.properties = self.dir / "server.properties"
        self.pidfile = self.root / "pids" / "kafka.pid"
        self.logfile = self.root / "logs" / "kafka.log"
        self.ports_file = self.root / "ports.json"
        self._proc: subprocess.Popen[bytes] | None = None

    # -- installation -------------------------------------------------------------------

    @staticmethod
    def _stamp() -> str:
        return hashlib.sha256(KAFKA_POM.read_bytes()).hexdigest()

    def installed(self) -> bool:
        stamp = KAFKA_LIB / ".installed"
        if not stamp.exists() or stamp.read_text().strip() != self._stamp():
            return False
        names = [p.name for p in KAFKA_LIB.glob("*.jar")]
        return all(any(n.startswith(req) for n in names) for req in self.REQUIRED_JARS)

    def install(self) -> None:
        """Fetch the broker's jars with Maven into deploy/kafka/lib when missing/incomplete."""
        if self.installed():
            return
        if shutil.which("mvn") is None or shutil.which("java") is None:
            raise InfraError("Kafka needs java (17+) and mvn on PATH")
        _log("fetching Kafka jars with Maven into deploy/kafka/lib (once)")
        shutil.rmtree(KAFKA_LIB, ignore_errors=True)
        subprocess.run(
            [
                "mvn",
                "-B",
                "-q",
                "dependency:copy-dependencies",
                "-DincludeScope=runtime",
                "-DoutputDirectory=lib",
            ],
            cwd=KAFKA_DIR,
            check=True,
        )
        (KAFKA_LIB / ".installed").write_text(self._stamp() + "\n")
        if not self.installed():
            raise InfraError(f"Maven ran but {KAFKA_LIB} lacks some of {self.REQUIRED_JARS}")

    # -- state ------------------------------------------------------------------------------

    def _pid(self) -> int | None:
        return _read_pid(self.pidfile)

    def running(self) -> bool:
        if self._proc is not None:
            return self._proc.poll() is None
        pid = self._pid()
        return pid is not None and _pid_alive(pid, _KAFKA_MARKER)

    @property
    def port(self) -> int:
        port = _read_json(self.ports_file).get("kafka_broker")
        if port is None:
            raise InfraError("Kafka has never been started under " + str(self.root))
        return int(port)

    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def _formatted(self) -> bool:
        return (self.datadir / "meta.properties").exists()

    def _java(self, heap: str, main: str, *args: str) -> list[str]:
        return [
            "java",
            f"-Xms{heap}",
            f"-Xmx{heap}",
            "-XX:+UseG1GC",
            "-XX:MaxGCPauseMillis=20",
            "-Djava.awt.headless=true",
            f"-Dlog4j2.configurationFile=file:{KAFKA_LOG4J}",
            f"-Dkafka.logs.dir={self.dir}",
            "-cp",
            f"{KAFKA_LIB}/*",
            main,
            *args,
        ]

    # -- SASL/SCRAM over TLS ------------------------------------------------------------
    # Besides the plain listener the dev stack uses, the broker always offers SASL_SSL
    # (SCRAM-SHA-256) with a self-signed certificate for 127.0.0.1, so that the services'
    # secure client configuration is exercised against the real broker.

    SCRAM_USER = "casetrail"

    @property
    def tls_dir(self) -> Path:
        return self.dir / "tls"

    @property
    def ca_file(self) -> Path:
        return self.tls_dir / "ca.pem"

    def _secret(self, name: str) -> str:
        path = self.dir / "secrets.json"
        data = _read_json(path)
        if name not in data:
            data[name] = secrets.token_urlsafe(24)
            _write_json(path, data, mode=0o600)
        return str(data[name])

    def sasl_bootstrap(self) -> str:
        return f"127.0.0.1:{_read_json(self.ports_file)['kafka_sasl_ssl']}"

    def sasl_credentials(self) -> tuple[str, str]:
        return self.SCRAM_USER, self._secret("scram_password")

    def _ensure_tls(self) -> None:
        keystore = self.tls_dir / "broker.p12"
        if keystore.exists() and self.ca_file.exists():
            return
        self.tls_dir.mkdir(parents=True, exist_ok=True)
        password = self._secret("keystore_password")
        keystore.unlink(missing_ok=True)
        common = ["-keystore", str(keystore), "-storepass", password, "-alias", "broker"]
        subprocess.run(
            ["keytool", "-genkeypair", *common, "-keypass", password, "-storetype", "PKCS12",
             "-keyalg", "RSA", "-keysize", "2048", "-validity", "3650",
             "-dname", "CN=casetrail-dev-kafka", "-ext", "SAN=IP:127.0.0.1,DNS:localhost"],
            check=True, capture_output=True,
        )  # fmt: skip
        subprocess.run(
            ["keytool", "-exportcert", "-rfc", *common, "-file", str(self.ca_file)],
            check=True, capture_output=True,
        )  # fmt: skip

    def _ensure_scram_user(self) -> None:
        user, password = self.sasl_credentials()
        proc = subprocess.run(
            self._java(
                "128m", "kafka.admin.ConfigCommand", "--bootstrap-server", self.bootstrap(),
                "--alter", "--entity-type", "users", "--entity-name", user,
                "--add-config", f"SCRAM-SHA-256=[iterations=8192,password={password}]",
            ),
            capture_output=True, text=True, cwd=self.dir,
        )  # fmt: skip
        if proc.returncode != 0:
            raise InfraError(f"could not create the SCRAM user: {proc.stdout}{proc.stderr}")

    def _write_properties(self, broker_port: int, controller_port: int, secure_port: int) -> None:
        listeners = (
            f"PLAINTEXT://127.0.0.1:{broker_port},CONTROLLER://127.0.0.1:{controller_port},"
            f"SASL_SSL://127.0.0.1:{secure_port}"
        )
        props = {
            "process.roles": "broker,controller",
            "node.id": "1",
            "controller.quorum.bootstrap.servers": f"127.0.0.1:{controller_port}",
            "listeners": listeners,
            "advertised.listeners": listeners,
            "inter.broker.listener.name": "PLAINTEXT",
            "controller.listener.names": "CONTROLLER",
            "listener.security.protocol.map": (
                "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT,SASL_SSL:SASL_SSL"
            ),
            "sasl.enabled.mechanisms": "SCRAM-SHA-256",
            "listener.name.sasl_ssl.scram-sha-256.sasl.jaas.config": (
                "org.apache.kafka.common.security.scram.ScramLoginModule required;"
            ),
            "ssl.keystore.type": "PKCS12",
            "ssl.keystore.location": str(self.tls_dir / "broker.p12"),
            "ssl.keystore.password": self._secret("keystore_password"),
            "ssl.key.password": self._secret("keystore_password"),
            "log.dirs": str(self.datadir),
            "num.partitions": str(self.partitions),
            "default.replication.factor": "1",
            "min.insync.replicas": "1",
            "offsets.topic.replication.factor": "1",
            "offsets.topic.num.partitions": "1",
            "transaction.state.log.replication.factor": "1",
            "transaction.state.log.min.isr": "1",
            "transaction.state.log.num.partitions": "1",
            "share.coordinator.state.topic.replication.factor": "1",
            "share.coordinator.state.topic.min.isr": "1",
            "group.initial.rebalance.delay.ms": "0",
            "auto.create.topics.enable": "false",
            "delete.topic.enable": "true",
            "num.network.threads": "2",
            "num.io.threads": "4",
            "num.recovery.threads.per.data.dir": "1",
            "log.retention.hours": "-1",
        }
        self.dir.mkdir(parents=True, exist_ok=True)
        text = "# written by deploy/infra.py on every start\n" + "".join(
            f"{k}={v}\n" for k, v in props.items()
        )
        self.properties.write_text(text)

    def _format(self) -> None:
        raw = uuid.uuid4().bytes
        cluster_id = base64.urlsafe_b64encode(raw).decode().rstrip("=")
        _log(f"formatting Kafka storage {self.datadir} (cluster id {cluster_id})")
        proc = subprocess.run(
            self._java(
                "256m",
                "kafka.tools.StorageTool",
                "format",
                "--standalone",
                "--ignore-formatted",
                # "=" form: a base64url id may start with "-", which argparse reads as a flag.
                f"--cluster-id={cluster_id}",
                "-c",
                str(self.properties),
            ),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        if proc.returncode != 0:
            raise InfraError(f"Kafka storage format failed:\n{proc.stdout}")

    def _choose_ports(self) -> tuple[int, int, int]:
        saved = _read_json(self.ports_file)
        controller = saved.get("kafka_controller")
        if controller is not None and self._formatted():
            controller = int(controller)
            if not port_is_free(controller):
                raise InfraError(
                    f"Kafka's controller port 127.0.0.1:{controller} is taken by another "
                    f"process. The Kafka data under {self.datadir} is bound to that port "
                    f"(KRaft records it at format time). Free it (see `ss -ltnp "
                    f"'sport = :{controller}'`, stop that process) and start again, or "
                    f"delete {self.dir} to start Kafka from scratch (losing its data)."
                )
        else:
            controller = free_port()
        taken = {controller}
        broker = saved.get("kafka_broker")
        if broker is None or int(broker) in taken or not port_is_free(int(broker)):
            broker = free_port()
            while broker in taken:
                broker = free_port()
        taken.add(int(broker))
        secure = saved.get("kafka_sasl_ssl")
        if secure is None or int(secure) in taken or not port_is_free(int(secure)):
            secure = free_port()
            while secure in taken:
                secure = free_port()
        return int(broker), controller, int(secure)

    def start(self) -> None:
        """Start the broker (formatting its storage on first start) and wait until it answers
        a metadata request. Idempotent."""
        if self.running():
            self.wait_ready()
            return
        self.install()
        for d in (self.datadir, self.pidfile.parent, self.logfile.parent):
            d.mkdir(parents=True, exist_ok=True)
        broker, controller, secure = self._choose_ports()
        _update_json(
            self.ports_file, kafka_broker=broker, kafka_controller=controller, kafka_sasl_ssl=secure
        )
        self._ensure_tls()
        self._write_properties(broker, controller, secure)
        if not self._formatted():
            self._format()

        t0 = time.monotonic()
        with self.logfile.open("ab") as log:
            log.write(f"\n=== start {time.strftime('%Y-%m-%d %H:%M:%S')} ===\n".encode())
            log.flush()
            self._proc = subprocess.Popen(
                self._java("512m", "kafka.Kafka", str(self.properties)),
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                cwd=self.dir,
                start_new_session=True,
            )
        self.pidfile.write_text(f"{self._proc.pid}\n")
        try:
            self.wait_ready()
        except BaseException:
            self.stop()
            raise
        self._ensure_scram_user()
        _log(
            f"Kafka up on {self.bootstrap()} (SASL_SSL on {self.sasl_bootstrap()}) "
            f"in {time.monotonic() - t0:.1f}s"
        )

    def wait_ready(self, timeout: float = KAFKA_READY_TIMEOUT) -> None:
        deadline = time.monotonic() + timeout
        port = self.port
        while not port_open(port):
            self._check_alive()
            if time.monotonic() > deadline:
                raise InfraError(
                    f"Kafka did not open 127.0.0.1:{port} within {timeout:.0f}s\n"
                    f"{self._log_tails()}"
                )
            time.sleep(0.2)
        last: BaseException | None = None
        while time.monotonic() < deadline:
            self._check_alive()
            try:
                _run_coro(self._ametadata)
                return
            except Exception as e:
                last = e
                time.sleep(0.5)
        raise InfraError(
            f"Kafka on 127.0.0.1:{port} did not answer a metadata request within "
            f"{timeout:.0f}s ({last!r})\n{self._log_tails()}"
        )

    def _check_alive(self) -> None:
        if not self.running():
            raise InfraError(f"Kafka exited during startup\n{self._log_tails()}")

    def _log_tails(self) -> str:
        return (
            f"--- {self.logfile} ---\n{_tail(self.logfile)}\n"
            f"--- {self.dir / 'server.log'} ---\n{_tail(self.dir / 'server.log')}"
        )

    def _admin(self) -> Any:
        from aiokafka.admin import AIOKafkaAdminClient

        return AIOKafkaAdminClient(bootstrap_servers=self.bootstrap(), request_timeout_ms=10000)

    async def _ametadata(self) -> None:
        admin = self._admin()
        await admin.start()
        try:
            info = await admin.describe_cluster()
            if not info.get("brokers"):
                raise InfraError("no brokers in metadata yet")
            await admin.list_topics()
        finally:
            await admin.close()

    def stop(self) -> None:
        """SIGTERM the broker, wait (controlled shutdown), SIGKILL after 60 s."""
        pid = self._proc.pid if self._proc is not None else self._pid()
        if pid is not None:
            _signal_and_wait(pid, signal.SIGTERM, _KAFKA_MARKER, 60, proc=self._proc)
        self._proc = None
        self.pidfile.unlink(missing_ok=True)

    def restart(self) -> None:
        self.stop()
        self.start()

    # -- topics -----------------------------------------------------------------------------

    def create_topics(
        self,
        topics: Iterable[str] | None = None,
        config: Mapping[str, str] | None = None,
        partitions: int | None = None,
    ) -> list[str]:
        """Create (idempotently) casetrail.contracts.topics.ALL_TOPICS with TOPIC_CONFIG.
        Returns the names that were newly created."""
        return _run_coro(lambda: self.acreate_topics(topics, config, partitions))

    async def acreate_topics(
        self,
        topics: Iterable[str] | None = None,
        config: Mapping[str, str] | None = None,
        partitions: int | None = None,
    ) -> list[str]:
        from aiokafka.admin import NewTopic
        from aiokafka.errors import TopicAlreadyExistsError, for_code

        if topics is None or config is None:
            from casetrail.contracts import topics as contract

            topics = contract.ALL_TOPICS if topics is None else topics
            config = contract.TOPIC_CONFIG if config is None else config
        partitions = partitions or self.partitions
        admin = self._admin()
        await admin.start()
        try:
            existing = set(await admin.list_topics())
            wanted = [t for t in topics if t not in existing]
            if not wanted:
                await self._await_coordinators(admin)
                return []
            resp = await admin.create_topics(
                [
                    NewTopic(
                        name=t,
                        num_partitions=partitions,
                        replication_factor=1,
                        topic_configs=dict(config),
                    )
                    for t in wanted
                ],
                timeout_ms=30000,
            )
            created = []
            for item in resp.topic_errors:
                name, code = item[0], item[1]
                if code == 0:
                    created.append(name)
                    continue
                err = for_code(code)
                if err is TopicAlreadyExistsError:
                    continue
                msg = item[2] if len(item) > 2 else ""
                raise InfraError(f"creating topic {name} failed: {err.__name__} {msg}")
            # wait until the new topics show up with leaders in metadata
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                described = await admin.describe_topics(wanted)
                if all(
                    d.get("error_code", 0) == 0
                    and d.get("partitions")
                    and all(p.get("leader", -1) >= 0 for p in d["partitions"])
                    for d in described
                ):
                    break
                await asyncio.sleep(0.2)
            await self._await_coordinators(admin)
            return created
        finally:
            await admin.close()

    @staticmethod
    async def _await_coordinators(admin: Any, wait_s: float = 30.0) -> None:
        """The first FindCoordinator request makes the broker create __consumer_offsets and
        __transaction_state; do it here so the services' first start finds them ready."""
        from aiokafka.errors import KafkaError

        deadline = time.monotonic() + wait_s
        for coordinator_type in (0, 1):  # group, transaction
            while True:
                try:
                    await admin.find_coordinator("casetrail-infra-warmup", coordinator_type)
                    break
                except KafkaError as e:
                    if time.monotonic() > deadline:
                        _log(f"coordinator (type {coordinator_type}) not ready yet: {e!r}")
                        return
                    await asyncio.sleep(0.2)


# --------------------------------------------------------------------------------------------
# The stack
# --------------------------------------------------------------------------------------------


def _venv_python() -> str:
    candidate = REPO_ROOT / ".venv" / "bin" / "python"
    return str(candidate) if candidate.exists() else sys.executable


DEV_TOKEN_ISSUER = "casetrail-dev"
DEV_TOKEN_AUDIENCE = "casetrail"


class Stack:
    """PostgreSQL + Kafka + the five services, all under root."""

    def __init__(self, root: Path, fast: bool = False) -> None:
        self.root = Path(root).resolve()
        self.fast = fast
        partitions = int(os.environ.get("CASETRAIL_PARTITIONS", "6"))
        self.postgres = Postgres(self.root, fast=fast)
        self.kafka = Kafka(self.root, partitions=partitions)
        self.pids = self.root / "pids"
        self.logs = self.root / "logs"
        self.services_file = self.root / "services.json"
        self._procs: dict[str, subprocess.Popen[bytes]] = {}
        self._urls: dict[str, str] = {}
        self._db_urls: dict[str, str] = {}

    # -- lifecycle --------------------------------------------------------------------------

    def install(self) -> None:
        self.postgres.install()
        self.kafka.install()

    def up(self, services: Iterable[str] = ALL) -> None:
        """Install and start PostgreSQL and Kafka, create topics and databases, start the
        services and wait until each answers GET /readyz with 200."""
        services = list(services)
        for name in services:
            self._check_name(name)
        self.root.mkdir(parents=True, exist_ok=True)
        self.install()
        self._stop_stale_services()
        self.postgres.start()
        self.kafka.start()
        t0 = time.monotonic()
        created = self.kafka.create_topics()
        _log(f"topics ready ({len(created)} created) in {time.monotonic() - t0:.1f}s")
        for name in SERVICES:
            self._db_urls[name] = self.postgres.ensure_service_database(name)
        self.postgres.ensure_keyring_database()
        t0 = time.monotonic()
        for name in services:
            self.start_service(name, wait=False)
        for name in services:
            self.wait_service_ready(name)
        _log(f"services ready ({', '.join(services)}) in {time.monotonic() - t0:.1f}s")

    def down(self) -> None:
        """Stop the services, then Kafka, then PostgreSQL."""
        # SIGTERM all services first, then wait for each: their shutdowns overlap
        # (a second SIGTERM could make a service skip its graceful shutdown: send one only)
        signalled = []
        for name, proc in self._procs.items():
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(proc.pid, signal.SIGTERM)
                    signalled.append(name)
        for name in SERVICES:
            with contextlib.suppress(Exception):
                self.stop_service(name, signal.SIGTERM, _signalled=name in signalled)
        self._stop_stale_services()
        try:
            self.kafka.stop()
        finally:
            self.postgres.stop()

    # -- services ---------------------------------------------------------------------------

    @staticmethod
    def _check_name(name: str) -> None:
        if name not in SERVICES:
            raise ValueError(f"unknown service {name!r}; expected one of {', '.join(SERVICES)}")

    def _pidfile(self, name: str) -> Path:
        return self.pids / f"{name}.pid"

    def _marker(self, name: str) -> str:
        return f"casetrail.{name}.app:create_app"

    def _stop_stale_services(self) -> None:
        """Stop service processes a previous (crashed) run left behind, found by pid file."""
        for name in SERVICES:
            if name in self._procs:
                continue
            pidfile = self._pidfile(name)
            pid = _read_pid(pidfile)
            if pid is not None and _pid_alive(pid, self._marker(name)):
                _log(f"stopping {name} left over from a previous run (pid {pid})")
                _signal_and_wait(pid, signal.SIGTERM, self._marker(name), STOP_TIMEOUT)
            pidfile.unlink(missing_ok=True)

    def database_url(self, name: str) -> str:
        self._check_name(name)
        if name not in self._db_urls:
            self._db_urls[name] = self.postgres.ensure_service_database(name)
        return self._db_urls[name]

    def secure_kafka_env(self, name: str) -> dict[str, str]:
        """A service's settings for reaching Kafka with SASL/SCRAM over TLS."""
        prefix = SERVICES[name]
        user, password = self.kafka.sasl_credentials()
        return {
            f"{prefix}_KAFKA_BOOTSTRAP": self.kafka.sasl_bootstrap(),
            f"{prefix}_KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
            f"{prefix}_KAFKA_SASL_MECHANISM": "SCRAM-SHA-256",
            f"{prefix}_KAFKA_SASL_USERNAME": user,
            f"{prefix}_KAFKA_SASL_PASSWORD": password,
            f"{prefix}_KAFKA_CA_FILE": str(self.kafka.ca_file),
        }

    def service_env(self, name: str) -> dict[str, str]:
        prefix = SERVICES[name]
        secure = os.environ.get("CASETRAIL_KAFKA_SECURE", "") in ("1", "true", "yes")
        kafka = (
            self.secure_kafka_env(name)
            if secure
            else {f"{prefix}_KAFKA_BOOTSTRAP": self.kafka.bootstrap()}
        )
        return {
            f"{prefix}_DATABASE_URL": self.database_url(name),
            f"{prefix}_SCHEMA_DATABASE_URL": self.postgres.owner_url(name),
            **kafka,
            f"{prefix}_AUTH_SHARED_SECRET": self.auth_secret(),
            f"{prefix}_AUTH_ISSUER": DEV_TOKEN_ISSUER,
            f"{prefix}_AUTH_AUDIENCE": DEV_TOKEN_AUDIENCE,
            **(self.provider_env() if name == "intake" else {}),
            **(self.audit_env() if name == "audit" else {}),
            **(self.keyring_env(name) if name in KEYRING_USERS else {}),
        }

    def keyring_env(self, name: str) -> dict[str, str]:
        prefix = SERVICES[name]
        return {
            f"{prefix}_KEYRING_DATABASE_URL": self.postgres.keyring_url(name),
            f"{prefix}_KEYRING_MASTER_KEY_FILE": str(self.keyring_master_key()),
        }

    def keyring_master_key(self) -> Path:
        """The dev stack's keyring master key, made once and kept with its data. A real
        deployment keeps it in a KMS or an HSM, never beside the database."""
        from casetrail.runtime.keyring import new_master_key

        path = self.root / "keyring-master.key"
        if not path.exists():
            self.root.mkdir(parents=True, exist_ok=True)
            path.touch(mode=0o600)
            path.write_text(new_master_key() + "\n")
        return path

    def audit_env(self) -> dict[str, str]:
        return {"AUDIT_SIGNING_KEY_FILE": str(self.audit_signing_key())}

    def audit_signing_key(self) -> Path:
        """The dev stack's Ed25519 key for signed tree heads, made once and kept with its
        data; its public half sits beside it for `casetrail verify --key`."""
        from casetrail.evidence.tree_head import (
            load_private_key,
            new_private_key_pem,
            public_key_pem,
        )

        private = self.root / "audit-signing-key.pem"
        public = self.root / "audit-public-key.pem"
        if not private.exists():
            self.root.mkdir(parents=True, exist_ok=True)
            private.touch(mode=0o600)
            private.write_bytes(new_private_key_pem())
        if not public.exists():
            public.write_bytes(public_key_pem(load_private_key(private.read_bytes()).public_key()))
        return private

    def auth_secret(self) -> str:
        """The dev stack's token-signing secret, made once and kept with its data."""
        return self.dev_secret("auth_shared_secret")

    def dev_secret(self, name: str) -> str:
        """A secret of the dev stack (token key, provider webhook secrets), made once."""
        data = _read_json(self.postgres.secrets_file)
        if name not in data:
            data[name] = secrets.token_urlsafe(48)
            _write_json(self.postgres.secrets_file, data, mode=0o600)
        return data[name]

    def provider_env(self) -> dict[str, str]:
        """Intake's webhook secrets: what Twilio, Meta and SendGrid would be given."""
        return {
            "INTAKE_TWILIO_AUTH_TOKEN": self.dev_secret("twilio_auth_token"),
            "INTAKE_META_APP_SECRET": self.dev_secret("meta_app_secret"),
            "INTAKE_META_VERIFY_TOKEN": self.dev_secret("meta_verify_token"),
            "INTAKE_SENDGRID_INBOUND_USERNAME": "sendgrid",
            "INTAKE_SENDGRID_INBOUND_PASSWORD": self.dev_secret("sendgrid_inbound_password"),
        }

    def auth_headers(self, *roles: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token(*roles)}"}

    def token(self, *roles: str, subject: str | None = None) -> str:
        """A dev bearer token carrying the given roles (e.g. token("agent"))."""
        from casetrail.runtime.auth import mint_token

        return mint_token(
            self.auth_secret(),
            subject or f"dev-{'-'.join(roles) or 'nobody'}",
            roles,
            issuer=DEV_TOKEN_ISSUER,
            audience=DEV_TOKEN_AUDIENCE,
        )

    def start_service(
        self, name: str, extra_env: Mapping[str, str] | None = None, wait: bool = True
    ) -> str:
        """Start one service on a fresh free port; by default wait until /readyz is 200.
        Returns its base URL."""
        self._check_name(name)
        if self.service_running(name):
            raise InfraError(f"{name} is already running at {self._urls.get(name)}")
        self.pids.mkdir(parents=True, exist_ok=True)
        self.logs.mkdir(parents=True, exist_ok=True)
        port = free_port()
        env = {**os.environ, "PYTHONUNBUFFERED": "1", **self.service_env(name)}
        if extra_env:
            env.update({k: str(v) for k, v in extra_env.items()})
        logfile = self.logs / f"{name}.log"
        with logfile.open("ab") as log:
            log.write(
                f"\n=== start {time.strftime('%Y-%m-%d %H:%M:%S')} port {port} ===\n".encode()
            )
            log.flush()
            proc = subprocess.Popen(
                [
                    _venv_python(),
                    "-m",
                    "uvicorn",
                    self._marker(name),
                    "--factory",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(port),
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=env,
                cwd=self.root,
                start_new_session=True,
            )
        self._procs[name] = proc
        self._urls[name] = f"http://127.0.0.1:{port}"
        self._pidfile(name).write_text(f"{proc.pid}\n")
        _update_json(self.services_file, **{name: self._urls[name]})
        if wait:
            self.wait_service_ready(name)
        return self._urls[name]

    def wait_service_ready(self, name: str, timeout: float = SERVICE_READY_TIMEOUT) -> None:
        proc = self._procs[name]
        url = self._urls[name] + "/readyz"
        logfile = self.logs / f"{name}.log"
        deadline = time.monotonic() + timeout
        last = "no answer"
        while True:
            if proc.poll() is not None:
                raise InfraError(
                    f"{name} exited with code {proc.returncode} before it was ready\n"
                    f"--- {logfile} ---\n{_tail(logfile)}"
                )
            try:
                with urllib.request.urlopen(url, timeout=2) as resp:
                    if resp.status == 200:
                        return
                    last = f"HTTP {resp.status}"
            except urllib.error.HTTPError as e:
                last = f"HTTP {e.code}"
            except (urllib.error.URLError, OSError) as e:
                last = str(e)
            if time.monotonic() > deadline:
                tail = _tail(logfile)
                print(f"--- {logfile} (last lines) ---\n{tail}", file=sys.stderr, flush=True)
                raise InfraError(
                    f"{name} did not answer 200 on {url} within {timeout:.0f}s (last: {last})"
                )
            time.sleep(0.2)

    def service_running(self, name: str) -> bool:
        proc = self._procs.get(name)
        return proc is not None and proc.poll() is None

    def stop_service(
        self, name: str, sig: int = signal.SIGTERM, *, _signalled: bool = False
    ) -> None:
        """Send sig to the service and return once its process is gone (SIGKILL after 30 s)."""
        self._check_name(name)
        proc = self._procs.pop(name, None)
        if proc is not None:
            _signal_and_wait(
                proc.pid, sig, None, STOP_TIMEOUT, proc=proc, send_first=not _signalled
            )
        else:
            pid = _read_pid(self._pidfile(name))
            if pid is not None:
                _signal_and_wait(pid, sig, self._marker(name), STOP_TIMEOUT)
        self._pidfile(name).unlink(missing_ok=True)

    def kill_service(self, name: str) -> None:
        self.stop_service(name, signal.SIGKILL)

    def service_url(self, name: str) -> str:
        self._check_name(name)
        if name not in self._urls:
            raise InfraError(f"{name} has not been started by this stack")
        return self._urls[name]

    # -- environment ------------------------------------------------------------------------

    def env(self) -> dict[str, str]:
        out: dict[str, str] = {}
        for name, prefix in SERVICES.items():
            if name in self._urls:
                out[f"{prefix}_URL"] = self._urls[name]
        out["KAFKA_BOOTSTRAP"] = self.kafka.bootstrap()
        out["KAFKA_SASL_SSL_BOOTSTRAP"] = self.kafka.sasl_bootstrap()
        out["KAFKA_SASL_USERNAME"], out["KAFKA_SASL_PASSWORD"] = self.kafka.sasl_credentials()
        out["KAFKA_CA_FILE"] = str(self.kafka.ca_file)
        for name, prefix in SERVICES.items():
            out[f"{prefix}_DATABASE_URL"] = self.database_url(name)
        out["POSTGRES_ADMIN_URL"] = self.postgres.admin_url()
        from casetrail.contracts.access import Role

        for role in Role:
            out[f"TOKEN_{role.name}"] = self.token(role.value)
        out.update(self.provider_env())  # so a developer can sign test webhooks
        out.update(self.audit_env())  # so audit's commands run as the service does
        out.update(self.keyring_env("audit"))
        out["AUDIT_PUBLIC_KEY_FILE"] = str(
            self.audit_signing_key().with_name("audit-public-key.pem")
        )
        return out

    def write_env(self, path: Path) -> None:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            for k, v in self.env().items():
                f.write(f"{k}={v}\n")

    def status(self) -> dict[str, str]:
        out = {
            "postgres": (
                f"running on 127.0.0.1:{self.postgres.port}"
                if self.postgres.pgdata.exists() and self.postgres.running()
                else "stopped"
            ),
            "kafka": f"running on {self.kafka.bootstrap()}" if self.kafka.running() else "stopped",
        }
        urls = _read_json(self.services_file)
        for name in SERVICES:
            pid = _read_pid(self._pidfile(name))
            alive = pid is not None and _pid_alive(pid, self._marker(name))
            out[name] = f"running at {urls.get(name)} (pid {pid})" if alive else "stopped"
        return out


# --------------------------------------------------------------------------------------------
# CLI
# --------------------------------------------------------------------------------------------


def _cmd_install(args: argparse.Namespace) -> int:
    Stack(args.root).install()
    _log("Kafka jars and PostgreSQL are installed")
    return 0


def _cmd_up(args: argparse.Namespace) -> int:
    root: Path = args.root
    stack = Stack(root)
    stack_pid = root / "pids" / "stack.pid"
    other = _read_pid(stack_pid)
    if other is not None and other != os.getpid() and _pid_alive(other, "infra.py"):
        print(
            f"a stack is already running under {root} (pid {other}); `make stop` first",
            file=sys.stderr,
        )
        return 1
    stop = threading.Event()

    def on_signal(signum: int, _frame: Any) -> None:
        if stop.is_set():
            return
        stop.set()
        # interrupt a startup in progress; later the main loop just sees the event
        raise KeyboardInterrupt

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    stack_pid.parent.mkdir(parents=True, exist_ok=True)
    stack_pid.write_text(f"{os.getpid()}\n")
    code = 0
    try:
        services = args.services.split(",") if args.services else list(ALL)
        t0 = time.monotonic()
        stack.up(services)
        env_file = root / "stack.env"
        stack.write_env(env_file)
        print(f"\nCasetrail is up ({time.monotonic() - t0:.1f}s):", flush=True)
        for name in services:
            url = stack.service_url(name)
            print(f"  {name:<10} {url}   OpenAPI: {url}/docs")
        print(f"  {'kafka':<10} {stack.kafka.bootstrap()}")
        print(f"  {'postgres':<10} 127.0.0.1:{stack.postgres.port}")
        print(f"Environment written to {env_file}. Logs in {root / 'logs'}.")
        print("Ctrl-C (or `make stop`) stops everything.", flush=True)
        reported: set[str] = set()
        while not stop.is_set():
            stop.wait(1.0)
            for name in services:
                if name not in reported and not stack.service_running(name):
                    reported.add(name)
                    _log(f"{name} has exited; see {root / 'logs' / (name + '.log')}")
    except KeyboardInterrupt:
        pass
    except InfraError as e:
        print(f"error: {e}", file=sys.stderr)
        code = 1
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        print("\nstopping...", file=sys.stderr, flush=True)
        stack.down()
        stack_pid.unlink(missing_ok=True)
        print("stopped.", file=sys.stderr, flush=True)
    return code


def _cmd_down(args: argparse.Namespace) -> int:
    root: Path = args.root
    stack_pid = root / "pids" / "stack.pid"
    pid = _read_pid(stack_pid)
    if pid is not None and _pid_alive(pid, "infra.py"):
        _log(f"asking the running stack (pid {pid}) to stop")
        _signal_and_wait(pid, signal.SIGTERM, "infra.py", 120, group=False)
    stack_pid.unlink(missing_ok=True)
    # whatever is still around (a crashed `up`, a test run killed midway)
    stack = Stack(root)
    if stack.postgres.pgdata.exists() and _pg_bindir() is not None:
        stack.down()
    else:
        for name in SERVICES:
            stack.stop_service(name)
        stack.kafka.stop()
    _log("stopped")
    return 0


def _cmd_status(args: argparse.Namespace) -> int:
    stack = Stack(args.root)
    for name, state in stack.status().items():
        print(f"{name:<10} {state}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="infra.py", description=__doc__.split("\n")[0])
    parser.add_argument(
        "--root", type=Path, default=DEFAULT_ROOT, help="state directory (default: .run/)"
    )
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("install", help="fetch Kafka jars, install PostgreSQL").set_defaults(
        func=_cmd_install
    )
    p_up = sub.add_parser("up", help="start everything and stay in the foreground")
    p_up.add_argument("--services", default="", help="comma-separated subset (default: all)")
    p_up.set_defaults(func=_cmd_up)
    sub.add_parser("down", help="stop a stack left running").set_defaults(func=_cmd_down)
    sub.add_parser("status", help="show what is running").set_defaults(func=_cmd_status)
    args = parser.parse_args(argv)
    args.root = args.root.resolve()
    try:
        return int(args.func(args))
    except InfraError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
