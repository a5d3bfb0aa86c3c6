"""Engine and session setup, and the Alembic upgrade that `wsimg db upgrade` runs.

SQLite is the default: WAL so readers never block the writer, a busy timeout so concurrent
writers wait instead of failing, and ``BEGIN IMMEDIATE`` so a transaction takes the write lock
up front (a deferred transaction that reads and then writes can fail at once with
"database is locked" even with a busy timeout). PostgreSQL is the production database.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from importlib import resources
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError
from sqlmodel import Session


class DatabaseError(Exception):
    """The database named by DATABASE_URL cannot be used; ``user_message`` says why and what to
    do (never the password). Storage imports nothing from bot/, so the CLI turns this into its
    one-line error itself."""

    def __init__(self, user_message: str) -> None:
        super().__init__(user_message)
        self.user_message = user_message


SQLITE_BUSY_TIMEOUT_MS = 30_000
# Any fixed number: the PostgreSQL advisory lock that serialises concurrent upgrades.
_MIGRATION_LOCK_ID = 0x7773696D67


def make_engine(url: str) -> Engine:
    """The engine for a DATABASE_URL; a URL SQLAlchemy cannot use (no such dialect, its driver
    not installed) is a DatabaseError naming DATABASE_URL. Nothing is connected yet."""
    try:
        return _make_engine(url)
    except (ArgumentError, NoSuchModuleError, ImportError) as exc:
        raise DatabaseError(
            "Configuration error: DATABASE_URL cannot be used: "
            f"{_one_line(str(exc), url)}. Write it as sqlite:///path/to/wsimg.db or "
            "postgresql://user:password@host:5432/dbname (pip install 'wsimg[postgres]')."
        ) from exc


def _make_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        engine = create_engine(
            url,
            connect_args={"check_same_thread": False, "timeout": SQLITE_BUSY_TIMEOUT_MS / 1000},
        )

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection, _record):  # type: ignore[no-untyped-def]
            # Hand transaction control to SQLAlchemy's "begin" event below.
            dbapi_connection.isolation_level = None
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.close()

        @event.listens_for(engine, "begin")
        def _begin_immediate(conn):  # type: ignore[no-untyped-def]
            conn.exec_driver_sql("BEGIN IMMEDIATE")

        return engine
    if url.startswith("postgres://"):
        url = "postgresql://" + url.removeprefix("postgres://")
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
    return create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=10)


@contextmanager
def session_scope(engine: Engine) -> Iterator[Session]:
    """A session for reading: whatever it did is rolled back when the block ends."""
    with Session(engine, expire_on_commit=False) as session:
        yield session


@contextmanager
def unit_of_work(engine: Engine) -> Iterator[Session]:
    """One step of a use case: everything written in the block commits together when it ends,
    or, if the block raises, none of it does. The only place wsimg commits (storage.crud
    flushes and never commits), so a state change and its audit event are never apart."""
    with Session(engine, expire_on_commit=False) as session:
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise


def check_connection(engine: Engine) -> None:
    """Connect once; a database that cannot be reached or opened is a DatabaseError naming
    DATABASE_URL and saying what to check (the password is never shown)."""
    try:
        with engine.connect():
            pass
    except DBAPIError as exc:
        raise DatabaseError(_unreachable(engine, exc)) from exc


def _unreachable(engine: Engine, exc: DBAPIError) -> str:
    url = engine.url
    said = _one_line(str(exc.orig) if exc.orig is not None else str(exc), url)
    if url.get_backend_name() == "sqlite":
        database = url.database or ""
        folder = Path(database).expanduser().absolute().parent if database else None
        if folder is not None and database != ":memory:" and not folder.is_dir():
            return (
                f"Configuration error: DATABASE_URL names a SQLite file in {folder}, a folder "
                "that does not exist: create the folder, or point DATABASE_URL at a file in "
                "one that does."
            )
        return (
            f"Configuration error: DATABASE_URL: cannot open the SQLite database {database} "
            f"({said}): check that its folder is writable by this user, or point DATABASE_URL "
            "elsewhere."
        )
    where = url.render_as_string(hide_password=True)
    return (
        f"Configuration error: DATABASE_URL: cannot connect to {where} ({said}): check that "
        "the database server runs and accepts connections there, and the user, password and "
        "database name in DATABASE_URL."
    )


def _one_line(text: str, url: str | URL) -> str:
    """The first line of a driver's message, without the URL's password if it quotes it."""
    try:
        password = (make_url(url) if isinstance(url, str) else url).password
    except (ArgumentError, ValueError):
        password = None
    line = " ".join((text.strip().splitlines() or [""])[0].split()).rstrip(".")
    return line.replace(str(password), "***") if password else line


def _alembic_config() -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(resources.files("storage") / "migrations"))
    return cfg


def upgrade(engine: Engine) -> None:
    """Apply every migration; safe when several processes start at once."""
    check_connection(engine)
    cfg = _alembic_config()
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": _MIGRATION_LOCK_ID})
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")


def schema_status(engine: Engine) -> tuple[str | None, str]:
    """(current revision or None for an empty database, head revision)."""
    head = ScriptDirectory.from_config(_alembic_config()).get_current_head() or ""
    with engine.connect() as conn:
        current = MigrationContext.configure(conn).get_current_revision()
    return current, head


def ensure_schema(engine: Engine) -> None:
    """Migrate an empty database on first start; refuse to run on an outdated one."""
    check_connection(engine)
    current, head = schema_status(engine)
    if current == head:
        return
    if current is None:
        # Empty database. Another process may be migrating it right now: upgrade() waits for
        # its lock and then finds nothing left to do.
        upgrade(engine)
        return
    raise DatabaseError(
        f"The database schema is at {current}, this wsimg needs {head}: run `wsimg db upgrade`."
    )


def ping(engine: Engine) -> bool:
    with engine.connect() as conn:
        return conn.execute(text("SELECT 1")).scalar() == 1
