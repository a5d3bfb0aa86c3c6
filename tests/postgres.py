"""A throwaway PostgreSQL server for the test session, started by the tests themselves.

The suite runs the storage and end-to-end tests on SQLite and on a real PostgreSQL, with no
setup by hand: ``PostgresServer.start()`` finds the server binaries (PATH, /usr/local/bin,
/usr/lib/postgresql/*/bin), runs ``initdb`` into a temporary directory and starts a server that
listens only on 127.0.0.1 (a free port) and on a Unix socket inside that directory. Durability
is switched off for speed. ``stop()`` stops it and removes the directory.

Under pytest-xdist each worker is a session of its own and starts its own server: its own
temporary directory, its own free port (tried again should another worker take it first).
Database names carry the worker's pid, so workers sharing a ``WSIMG_TEST_POSTGRES_URL``
server never meet either.

PostgreSQL refuses to run as root; as root (CI) ``initdb`` and ``pg_ctl`` run as the
``postgres`` system user when there is one, else as ``nobody``, and the directory is theirs.

``WSIMG_TEST_POSTGRES_URL`` (e.g. ``postgresql://postgres@127.0.0.1:5432/postgres``, a role
allowed to create databases) points the tests at an existing server instead.
"""

from __future__ import annotations

import atexit
import contextlib
import glob
import itertools
import os
import pwd
import shutil
import socket
import stat
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql
from sqlalchemy.engine import URL, make_url

URL_ENV = "WSIMG_TEST_POSTGRES_URL"
SUPERUSER = "postgres"
START_TIMEOUT_S = 60
_BINARIES = ("initdb", "pg_ctl", "postgres")
_INSTALL_HINT = (
    "The PostgreSQL tests start a throwaway server and need its binaries (initdb, pg_ctl, "
    "postgres) on PATH, in /usr/local/bin or in /usr/lib/postgresql/<version>/bin: install "
    "the PostgreSQL server package (Debian/Ubuntu: `apt-get install postgresql`), or set "
    f"{URL_ENV} to a server the tests may create databases on."
)
# Fast and disposable: nothing here has to survive a crash.
_SERVER_SETTINGS = {
    "listen_addresses": "'127.0.0.1'",
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "max_connections": "200",
    "shared_buffers": "32MB",
    "log_min_messages": "warning",
    "logging_collector": "off",
}


class PostgresUnavailable(RuntimeError):
    """No server binaries, or the server did not start: the message says what to do."""


def find_binaries() -> dict[str, Path]:
    """initdb, pg_ctl and postgres from one directory: PATH first, then the usual places."""
    candidates: list[Path] = []
    found = shutil.which("pg_ctl")
    if found:
        candidates.append(Path(found).parent)
    candidates.append(Path("/usr/local/bin"))
    versioned = glob.glob("/usr/lib/postgresql/*/bin")
    versioned.sort(key=lambda p: int(Path(p).parent.name) if Path(p).parent.name.isdigit() else 0)
    candidates += [Path(p) for p in reversed(versioned)]
    candidates = list(dict.fromkeys(candidates))
    for directory in candidates:
        paths = {name: directory / name for name in _BINARIES}
        if all(os.access(path, os.X_OK) for path in paths.values()):
            return paths
    raise PostgresUnavailable(
        f"No PostgreSQL server binaries found (looked in {', '.join(map(str, candidates))}). "
        + _INSTALL_HINT
    )


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _unprivileged_user() -> pwd.struct_passwd | None:
    """The account to run the server as: None when we are not root."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        with contextlib.suppress(KeyError):
            return pwd.getpwnam(name)
    raise PostgresUnavailable(
        "Running as root, and there is neither a `postgres` nor a `nobody` user to run "
        "PostgreSQL as (it refuses to run as root). " + _INSTALL_HINT
    )


def _world_traversable(path: Path) -> bool:
    return all(p.stat().st_mode & stat.S_IXOTH for p in [path, *path.parents])


def _temp_parent() -> Path:
    """A directory another user can reach: $TMPDIR may be private to root."""
    for candidate in (Path(tempfile.gettempdir()), Path("/tmp"), Path("/dev/shm")):
        if candidate.is_dir() and _world_traversable(candidate):
            return candidate
    return Path(tempfile.gettempdir())


def admin_url(url: str) -> URL:
    parsed = make_url(url)
    if parsed.drivername in ("postgres", "postgresql", "postgresql+psycopg"):
        return parsed.set(drivername="postgresql")
    raise PostgresUnavailable(f"{URL_ENV} must be a postgresql:// URL, not {parsed.drivername}")


@dataclass
class PostgresServer:
    """A running server (ours or the one ``WSIMG_TEST_POSTGRES_URL`` names)."""

    url: URL  # the maintenance database, as a superuser / role with CREATEDB
    directory: Path | None = None  # set when we started the server ourselves
    binaries: dict[str, Path] = field(default_factory=dict)
    run_as: pwd.struct_passwd | None = None
    _names: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    # ---- life cycle ----------------------------------------------------------------------

    @classmethod
    def from_environment(cls) -> PostgresServer:
        """The server named by ``WSIMG_TEST_POSTGRES_URL``, or a new throwaway one."""
        existing = os.environ.get(URL_ENV)
        if existing:
            return cls(url=admin_url(existing))
        return cls.start()

    @classmethod
    def start(cls) -> PostgresServer:
        binaries = find_binaries()
        run_as = _unprivileged_user()
        directory = Path(tempfile.mkdtemp(prefix="wsimg-pg-", dir=_temp_parent()))
        server = cls(URL.create("postgresql"), directory, binaries, run_as)
        atexit.register(server.stop)  # should the session end without its teardown
        try:
            server._initdb()
            server._start_listening()
        except BaseException:
            server.stop()
            raise
        return server

    def stop(self) -> None:
        """Stop our server and remove its directory; nothing to do for an external one."""
        if self.directory is None:
            return
        data = self.directory / "data"
        try:
            if (data / "postmaster.pid").exists():
                self._run(self.binaries["pg_ctl"], "stop", "-D", data, "-m", "immediate", "-w")
        finally:
            shutil.rmtree(self.directory, ignore_errors=True)
            self.directory = None

    def _run(self, *args: Any, timeout: float = START_TIMEOUT_S) -> subprocess.CompletedProcess:
        """Run a server tool as the unprivileged user (when root); failures raise with output."""
        kwargs: dict[str, Any] = {}
        if self.run_as is not None:
            kwargs = {
                "user": self.run_as.pw_uid,
                "group": self.run_as.pw_gid,
                "extra_groups": [],
            }
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        env.update(LC_ALL="C", LANG="C", HOME=str(self.directory))
        result = subprocess.run(  # noqa: S603 (our own arguments)
            [str(a) for a in args],
            capture_output=True,
            text=True,
            check=False,
            timeout=timeout,
            env=env,
            cwd=self.directory,
            **kwargs,
        )
        if result.returncode != 0:
            raise PostgresUnavailable(
                f"`{' '.join(map(str, args))}` failed ({result.returncode}):\n"
                f"{result.stdout}{result.stderr}{self._log_tail()}"
            )
        return result

    def _log_tail(self) -> str:
        log = self.directory / "server.log" if self.directory else None
        if log is None or not log.exists():
            return ""
        return "\nserver log:\n" + "\n".join(log.read_text(errors="replace").splitlines()[-30:])

    def _initdb(self) -> None:
        assert self.directory is not None
        (self.directory / "socket").mkdir()
        if self.run_as is not None:
            for path in (self.directory, self.directory / "socket"):
                os.chown(path, self.run_as.pw_uid, self.run_as.pw_gid)
        self._run(
            self.binaries["initdb"],
            "-D",
            self.directory / "data",
            "-U",
            SUPERUSER,
            "-A",
            "trust",
            "-E",
            "UTF8",
            "--locale=C",
            "--no-sync",
            "--no-instructions",
        )

    def _start_listening(self) -> None:
        assert self.directory is not None
        data = self.directory / "data"
        conf = data / "postgresql.conf"
        original = conf.read_text()
        for attempt in range(3):  # another process may take the free port first
            port = _free_port()
            settings = {
                **_SERVER_SETTINGS,
                "port": str(port),
                "unix_socket_directories": f"'{self.directory / 'socket'}'",
            }
            # Later lines win: appending to initdb's file is enough.
            conf.write_text(
                original
                + "\n# wsimg tests\n"
                + "".join(f"{k} = {v}\n" for k, v in settings.items())
            )
            try:
                self._run(
                    self.binaries["pg_ctl"],
                    "start",
                    "-D",
                    data,
                    "-l",
                    self.directory / "server.log",
                    "-w",
                    "-t",
                    str(START_TIMEOUT_S),
                    timeout=START_TIMEOUT_S + 10,
                )
            except PostgresUnavailable:
                if attempt == 2:
                    raise
                continue
            self.url = URL.create(
                "postgresql", username=SUPERUSER, host="127.0.0.1", port=port, database="postgres"
            )
            return

    # ---- databases -----------------------------------------------------------------------

    def _connect(self) -> psycopg.Connection:
        return psycopg.connect(
            self.url.render_as_string(hide_password=False), autocommit=True, connect_timeout=10
        )

    def create_database(self) -> str:
        """A new empty database; its SQLAlchemy-style postgresql:// URL."""
        name = f"wsimg_test_{os.getpid()}_{next(self._names)}"
        with self._connect() as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        return self.url.set(database=name).render_as_string(hide_password=False)

    def drop_database(self, url: str) -> None:
        """Drop it, ending whatever connections were left open first."""
        name = make_url(url).database
        assert name and name.startswith("wsimg_test_"), name
        with self._connect() as conn:
            conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE datname = %s AND pid <> pg_backend_pid()",
                (name,),
            )
            # WITH (FORCE) (PostgreSQL 13+) also ends a connection opened since the line above.
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )
