"""Engines for SQLite (default, WAL) and PostgreSQL, and schema migration to the newest revision."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import make_url

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
# Any constant: serialises concurrent `alembic upgrade` runs of several processes on one PostgreSQL.
_MIGRATION_LOCK_KEY = 7_245_119_001


def create_store_engine(url: str) -> Engine:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(
            url, connect_args={"check_same_thread": False, "timeout": 60}, pool_size=sqlite_pool_size()
        )
        _configure_sqlite(engine)
        return engine
    return create_engine(url, pool_pre_ping=True)


def sqlite_pool_size() -> int:
    """As many connections as a web process has request threads (PAPERWIRE_WEB_THREADS), plus its index
    follower and mail worker: a connection past the pool is closed when returned, and a new one re-reads
    the schema and starts with an empty page cache."""
    from paperwire.config import web_threads

    return web_threads() + 2


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn, _record):  # noqa: ANN001
        # Let SQLAlchemy's "begin" event below decide how transactions start (pysqlite's own
        # implicit BEGIN is deferred, which makes two writers deadlock-retry instead of queueing).
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute("PRAGMA busy_timeout=60000")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA cache_size=-65536")
        cur.execute("PRAGMA temp_store=MEMORY")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn):  # noqa: ANN001
        # Writers ask for the write lock up front; readers stay deferred so they never block a writer.
        immediate = conn.get_execution_options().get("paperwire_write", False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


def write_engine(engine: Engine) -> Engine:
    """The same engine, but transactions started from it take SQLite's write lock at BEGIN."""
    return engine.execution_options(paperwire_write=True)


def migrate(engine: Engine) -> None:
    """Bring the schema to the newest Alembic revision (idempotent, safe with concurrent callers)."""
    from alembic import command
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    with write_engine(engine).begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _MIGRATION_LOCK_KEY})
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")


def current_revision(engine: Engine) -> str | None:
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()
