"""Shared fixtures: stores on SQLite and on a real PostgreSQL, recorded arXiv responses, settings."""

from __future__ import annotations

import os
import tempfile
import uuid
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from paperwire.config import normalize_database_url
from paperwire.store import Store
from tests.live_server import LiveServer, paperwire, start_server
from tests.recorded_server import RecordedServer
from tests.smtp_server import SmtpServer

FIXTURES = Path(__file__).parent / "fixtures"

# The re-scoring model (mpnet) embeds ~8x slower than MiniLM (the sample's 341 papers: a minute or more):
# every test and every process a test starts runs without it unless it asks (tests of re-scoring).
os.environ.setdefault("PAPERWIRE_RESCORE_MODEL", "none")


@pytest.fixture
def fixtures() -> Path:
    return FIXTURES


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A real PostgreSQL server: PAPERWIRE_TEST_DATABASE_URL when set, else one started with pgserver."""
    url = os.environ.get("PAPERWIRE_TEST_DATABASE_URL")
    if url:
        yield normalize_database_url(url)
        return
    with warnings.catch_warnings():  # pgserver asks platformdirs for a runtime dir at import; none here
        warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR is not set")
        import pgserver

    datadir = tempfile.mkdtemp(prefix="paperwire-pg-")
    server = pgserver.get_server(datadir, cleanup_mode="delete")
    try:
        yield normalize_database_url(server.get_uri())
    finally:
        server.cleanup()


def _fresh_pg_database(base_url: str) -> str:
    """A new empty database on the test server, so every test starts from nothing."""
    name = "pw_" + uuid.uuid4().hex[:12]
    admin = create_engine(base_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    from sqlalchemy.engine import make_url

    return make_url(base_url).set(database=name).render_as_string(hide_password=False)


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request, tmp_path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'paperwire.db'}"
    return _fresh_pg_database(request.getfixturevalue("postgres_url"))


@pytest.fixture
def store(db_url) -> Iterator[Store]:
    s = Store.open(db_url)
    yield s
    s.close()


@pytest.fixture
def sqlite_store(tmp_path) -> Iterator[Store]:
    s = Store.open(f"sqlite:///{tmp_path / 'sqlite-store.db'}")
    yield s
    s.close()


@pytest.fixture
def env(monkeypatch, tmp_path) -> dict[str, str]:
    """Settings for a test: a private data dir, no politeness delay, quick retries."""
    values = {
        "PAPERWIRE_DATA_DIR": str(tmp_path / "data"),
        "PAPERWIRE_DATABASE_URL": f"sqlite:///{tmp_path / 'data' / 'paperwire.db'}",
        "PAPERWIRE_HTTP_INTERVAL": "0",
        "PAPERWIRE_HTTP_RETRIES": "3",
        "PAPERWIRE_HTTP_TIMEOUT": "10",
        # Imports embed nothing in tests (the model costs seconds per import); tests of semantic search
        # embed explicitly.
        "PAPERWIRE_IMPORT_EMBED_LIMIT": "0",
    }
    for k, v in values.items():
        monkeypatch.setenv(k, v)
    return values


@pytest.fixture
def recorded_server() -> Iterator[RecordedServer]:
    server = RecordedServer().start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def sample_site(tmp_path_factory) -> Iterator[LiveServer]:
    """`paperwire serve` over the bundled sample (341 real papers, keyword index and vectors), shared by
    every test of the session that only reads. Tests that change data start their own server."""
    data = tmp_path_factory.mktemp("sample-site")
    env = {
        "PAPERWIRE_DATA_DIR": str(data),
        "PAPERWIRE_DATABASE_URL": f"sqlite:///{data / 'paperwire.db'}",
        "PAPERWIRE_IMPORT_EMBED_LIMIT": "1000",
        "PAPERWIRE_BASE_URL": "",
        "PAPERWIRE_SEARCH_RATE_LIMIT": "0",
    }
    paperwire(env, "import", "sample", "--quiet")
    server = start_server(env)
    yield server
    server.stop()


# -- a real browser (tests/browser.py) ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def browser() -> Iterator:
    """Debian's Chromium, headless, one per test module."""
    from tests.browser import ARGS, CHROMIUM

    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as pw:
        launched = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield launched
        launched.close()


@pytest.fixture
def page(browser) -> Iterator:
    """A desktop-sized page in a context of its own (no cookies from another test)."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    yield context.new_page()
    context.close()


# -- mail and a live site ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def smtp() -> Iterator[SmtpServer]:
    """A real SMTP server (aiosmtpd) on loopback, one per test module; it keeps what it receives."""
    with SmtpServer() as server:
        yield server


@pytest.fixture
def db(site) -> Iterator[Store]:
    """The store of the module's live ``site``, opened beside it (SQLite in WAL mode: reads do not block
    the server)."""
    s = Store.open(site.env["PAPERWIRE_DATABASE_URL"], run_migrations=False)
    yield s
    s.close()
