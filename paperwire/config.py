"""Settings, read from ``PAPERWIRE_*`` environment variables.

Every setting has a default so that zero configuration runs the demo. Settings are read when
:func:`get_settings` is called (not at import time) so tests can change the environment freely.
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from paperwire import __version__

DEFAULT_ARXIV_API_URL = "https://export.arxiv.org/api/query"
DEFAULT_ARXIV_OAI_URL = "https://oaipmh.arxiv.org/oai"


_KEYS: dict[Path, bytes] = {}


class SettingsError(ValueError):
    """A setting has a value we cannot use."""


# Enough to overlap a request's waits on disk and the database with another's work; more only makes
# threads queue for the GIL (p99 up by a third at 16) and, past the store's pool, open new connections.
WEB_THREADS = 4


def _float(name: str, default: float) -> float:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return float(raw)
    except ValueError:
        raise SettingsError(f"{name} must be a number, got {raw!r}") from None


def _positive(name: str, default: float) -> float:
    value = _float(name, default)
    if not value > 0:
        raise SettingsError(f"{name} must be greater than 0, got {value!r}")
    return value


def _int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise SettingsError(f"{name} must be an integer, got {raw!r}") from None


@dataclass(frozen=True)
class Settings:
    data_dir: Path
    database_url: str
    arxiv_api_url: str
    arxiv_oai_url: str
    # arXiv asks clients to wait 3 seconds between requests; we never go below what is configured.
    http_interval: float
    http_timeout: float
    http_retries: int
    # Upper bound on how long we honour a server's Retry-After, so a bad header cannot hang a job forever.
    http_max_retry_after: float
    user_agent: str
    # This node's derived indexes (keyword, vectors); never shared between nodes.
    index_dir: Path
    embedding_model: str | None
    # A second, stronger model that re-scores the candidates of a query no paper matches by its words
    # (a description of an idea): None when turned off (PAPERWIRE_RESCORE_MODEL=none).
    rescore_model: str | None
    # Papers an import embeds right away (newest first); `paperwire index` embeds the rest.
    import_embed_limit: int
    # From this many vectors on, vector search uses a nearest-neighbour graph instead of scanning them all.
    vector_graph_min_rows: int
    # How often a web process catches its keyword index up with the store (0: never; `paperwire index` does).
    index_follow_seconds: float
    # Requests a web process works on at once (its handlers run in threads that share one GIL).
    web_threads: int
    # Searches one client may run per minute on the web pages and APIs (0: unlimited).
    search_rate_limit: int
    # The public address of this instance, for absolute links in feeds and e-mails ("" = from the request).
    base_url: str
    # Outgoing mail: smtp://user:pass@host:587 (STARTTLS required), smtps://host:465, smtp+insecure://host:25.
    # Unset: messages are written to a maildir in the data directory (the demo needs no mail server).
    smtp_url: str | None
    mail_from: str
    # Signs e-mailed links and session cookies; generated once and kept in the data directory when unset.
    secret_key: str | None
    # Accounts (paperwire/web/account.py). How long an e-mailed sign-in link works, and a session lasts.
    login_link_minutes: float = 15.0
    session_days: float = 30.0
    # Sign-in e-mails one address may receive per 15 minutes, and one client IP may ask for per hour.
    signin_email_limit: int = 3
    signin_ip_limit: int = 10
    # How often the web process's mail thread retries what is due in the outbox (it also sends at once
    # after each message a request queues).
    mail_sweep_seconds: float = 5.0
    # Trending: a vote's weight halves every this many hours (see docs/trending.md).
    trending_half_life_hours: float = 24.0
    # Daily lists also show every paper published that day in these categories (small instances), e.g.
    # "cs.CL,cs.LG"; empty: only submitted papers.
    daily_categories: tuple[str, ...] = ()
    # Digest subscriptions (paperwire/web/subscribe.py). How long a confirmation link works; at most one
    # confirmation (or "already subscribed" note) per address per `subscribe_resend_minutes`, and at most
    # `subscribe_email_limit` of them per address per day; sign-ups one client IP may send per hour.
    subscribe_confirm_days: float = 7.0
    subscribe_resend_minutes: float = 10.0
    subscribe_email_limit: int = 3
    subscribe_ip_limit: int = 10
    # An address that takes unsubscribe requests by mail (List-Unsubscribe's mailto:); unset: https only.
    unsubscribe_mailto: str | None = None
    # `paperwire worker` (paperwire/worker.py): OAI sets to harvest (empty: none) and how often; how often
    # it looks for digests that are due (each subscriber's own hour decides who is).
    harvest_sets: tuple[str, ...] = ()
    harvest_minutes: float = 720.0
    digest_minutes: float = 5.0

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    @property
    def maildir(self) -> Path:
        return self.data_dir / "maildir"

    def signing_key(self) -> bytes:
        """``PAPERWIRE_SECRET_KEY``, or a random key created once in the data directory (mode 0600), so that
        links and sessions survive restarts without anyone having to configure a secret."""
        if self.secret_key:
            return self.secret_key.encode()
        path = self.data_dir / "secret_key"
        cached = _KEYS.get(path)
        if cached is not None:  # read once per process: every rendered form signs a CSRF token with it
            return cached
        try:
            key = path.read_bytes().strip()
        except FileNotFoundError:
            key = self._create_key(path)
        _KEYS[path] = key
        return key

    def _create_key(self, path: Path) -> bytes:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        key = secrets.token_urlsafe(48).encode()
        tmp = path.with_name(f"secret_key.{os.getpid()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(key)
        try:
            os.link(tmp, path)  # atomic and exclusive: a reader never sees a half-written key
        except FileExistsError:  # another process created it first: use theirs
            key = path.read_bytes().strip()
        finally:
            tmp.unlink()
        return key


DEFAULT_RESCORE_MODEL = "mpnet"


def rescore_model(embedding_model: str | None) -> str | None:
    """PAPERWIRE_RESCORE_MODEL (default mpnet); "none" (or empty) turns re-scoring off, and so does naming
    the embedding model itself (there is nothing stronger to ask)."""
    from paperwire.search.embeddings import DEFAULT_MODEL

    name = os.environ.get("PAPERWIRE_RESCORE_MODEL", DEFAULT_RESCORE_MODEL).strip()
    if name.lower() in ("", "none", "off") or name == (embedding_model or DEFAULT_MODEL):
        return None
    return name


def web_threads() -> int:
    """PAPERWIRE_WEB_THREADS, checked (also read alone: the store sizes its connection pool by it)."""
    return int(_positive("PAPERWIRE_WEB_THREADS", WEB_THREADS))


def get_settings() -> Settings:
    data_dir = Path(os.environ.get("PAPERWIRE_DATA_DIR") or "./data").expanduser()
    database_url = (
        os.environ.get("PAPERWIRE_DATABASE_URL") or f"sqlite:///{(data_dir / 'paperwire.db').resolve()}"
    )
    contact = os.environ.get("PAPERWIRE_CONTACT_EMAIL")
    user_agent = os.environ.get("PAPERWIRE_USER_AGENT") or (
        f"paperwire/{__version__} (research-paper discovery hub"
        + (f"; mailto:{contact}" if contact else "")
        + ")"
    )
    return Settings(
        data_dir=data_dir,
        database_url=normalize_database_url(database_url),
        arxiv_api_url=os.environ.get("PAPERWIRE_ARXIV_API_URL") or DEFAULT_ARXIV_API_URL,
        arxiv_oai_url=os.environ.get("PAPERWIRE_ARXIV_OAI_URL") or DEFAULT_ARXIV_OAI_URL,
        http_interval=_float("PAPERWIRE_HTTP_INTERVAL", 3.0),
        http_timeout=_float("PAPERWIRE_HTTP_TIMEOUT", 30.0),
        http_retries=_int("PAPERWIRE_HTTP_RETRIES", 4),
        http_max_retry_after=_float("PAPERWIRE_HTTP_MAX_RETRY_AFTER", 600.0),
        user_agent=user_agent,
        index_dir=Path(os.environ.get("PAPERWIRE_INDEX_DIR") or data_dir / "index").expanduser(),
        embedding_model=os.environ.get("PAPERWIRE_EMBEDDING_MODEL") or None,
        rescore_model=rescore_model(os.environ.get("PAPERWIRE_EMBEDDING_MODEL")),
        import_embed_limit=_int("PAPERWIRE_IMPORT_EMBED_LIMIT", 2000),
        vector_graph_min_rows=_int("PAPERWIRE_VECTOR_GRAPH_MIN_ROWS", 50_000),
        index_follow_seconds=_float("PAPERWIRE_INDEX_FOLLOW_SECONDS", 5.0),
        web_threads=web_threads(),
        search_rate_limit=_int("PAPERWIRE_SEARCH_RATE_LIMIT", 600),
        base_url=(os.environ.get("PAPERWIRE_BASE_URL") or "").rstrip("/"),
        smtp_url=os.environ.get("PAPERWIRE_SMTP_URL") or None,
        mail_from=os.environ.get("PAPERWIRE_MAIL_FROM")
        or _default_sender(os.environ.get("PAPERWIRE_BASE_URL")),
        secret_key=os.environ.get("PAPERWIRE_SECRET_KEY") or None,
        login_link_minutes=_float("PAPERWIRE_LOGIN_LINK_MINUTES", 15.0),
        session_days=_float("PAPERWIRE_SESSION_DAYS", 30.0),
        signin_email_limit=_int("PAPERWIRE_SIGNIN_EMAIL_LIMIT", 3),
        signin_ip_limit=_int("PAPERWIRE_SIGNIN_IP_LIMIT", 10),
        mail_sweep_seconds=_float("PAPERWIRE_MAIL_SWEEP_SECONDS", 5.0),
        trending_half_life_hours=_positive("PAPERWIRE_TRENDING_HALF_LIFE_HOURS", 24.0),
        subscribe_confirm_days=_positive("PAPERWIRE_SUBSCRIBE_CONFIRM_DAYS", 7.0),
        subscribe_resend_minutes=_float("PAPERWIRE_SUBSCRIBE_RESEND_MINUTES", 10.0),
        subscribe_email_limit=_int("PAPERWIRE_SUBSCRIBE_EMAIL_LIMIT", 3),
        subscribe_ip_limit=_int("PAPERWIRE_SUBSCRIBE_IP_LIMIT", 10),
        unsubscribe_mailto=os.environ.get("PAPERWIRE_UNSUBSCRIBE_MAILTO") or None,
        harvest_sets=tuple(
            s.strip() for s in (os.environ.get("PAPERWIRE_HARVEST_SETS") or "").split(",") if s.strip()
        ),
        harvest_minutes=_float("PAPERWIRE_HARVEST_MINUTES", 720.0),
        digest_minutes=_float("PAPERWIRE_DIGEST_MINUTES", 5.0),
        daily_categories=tuple(
            c.strip() for c in (os.environ.get("PAPERWIRE_DAILY_CATEGORIES") or "").split(",") if c.strip()
        ),
    )


def _default_sender(base_url: str | None) -> str:
    """``paperwire <paperwire@HOST>`` for the public address's host; a bare ``localhost`` is no address
    that mail.compose accepts (it wants a dotted domain), so without one it is ``localhost.localdomain``."""
    from urllib.parse import urlsplit

    host = urlsplit(base_url or "").hostname or ""
    if "." not in host or host.replace(".", "").isdigit():
        host = "localhost.localdomain"
    return f"paperwire <paperwire@{host}>"


def normalize_database_url(url: str) -> str:
    """Accept the URLs people paste (``postgres://``, ``postgresql://``) and pick our driver (psycopg 3)."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    if url.startswith(("sqlite", "postgresql+")):
        return url
    raise SettingsError(f"PAPERWIRE_DATABASE_URL must be a sqlite:// or postgresql:// URL, got {url!r}")
