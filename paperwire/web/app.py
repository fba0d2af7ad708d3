"""The web application: pages, the JSON APIs (own, Hugging Face-compatible, arXiv-compatible) and feeds.

Every route reads through one :class:`SearchEngine` (the store plus this node's indexes). A background
thread keeps the keyword index caught up with the store's change sequence, so a node serves what was
imported or harvested elsewhere without a restart."""

from __future__ import annotations

import gc
import logging
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import anyio.to_thread
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException
from swagger_ui_bundle import swagger_ui_path

from paperwire import __version__
from paperwire.config import get_settings
from paperwire.search import IndexBusy, QueryError, SearchEngine
from paperwire.search.english import is_english_word
from paperwire.store import Store, open_store
from paperwire.web.common import ApiError
from paperwire.web.head import HeadAsGet
from paperwire.web.logs import redact_access_log
from paperwire.web.ratelimit import RateLimited
from paperwire.web.security_headers import DOCS_POLICY, SecurityHeaders
from paperwire.web.templating import templates

HERE = Path(__file__).parent
log = logging.getLogger("paperwire.web")

DESCRIPTION = """
paperwire's own JSON API (`/api/v1`), a Hugging Face Papers-compatible API (`/api/papers`,
`/api/daily_papers`: point `huggingface_hub` at this server with `HF_ENDPOINT`) and an arXiv-compatible
Atom API (`/api/query`). Errors are JSON objects `{"error": "..."}` with a 4xx status.
"""


class IndexFollower:
    """Catches this node's keyword index up with the store every few seconds (one writer per node: when
    another process holds the index, this one only reads)."""

    def __init__(self, engine: SearchEngine, every: float):
        self.engine = engine
        self.every = every
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="index-follower", daemon=True)

    def start(self) -> None:
        self.catch_up()
        if self.every > 0:
            self._thread.start()
        # Load the embedding model now, not during the first visitor's search (it takes a second or two).
        threading.Thread(target=self._warm_up, name="model-warm-up", daemon=True).start()

    def _warm_up(self) -> None:
        try:
            if self.engine.vectors_ready():
                self.engine.warm_up()
                is_english_word("warm")  # the word list hybrid search consults for unknown words
        except Exception:
            log.exception("loading the embedding model failed; semantic search will retry on first use")

    def stop(self) -> None:
        self._stop.set()

    def catch_up(self) -> int:
        self.engine.open_vectors()  # vectors built after this process started (`paperwire index`)
        try:
            if self.engine.keyword.change_seq >= self.engine.store.last_change_seq():
                return 0
            return self.engine.keyword.catch_up(self.engine.store)
        except IndexBusy:
            return 0
        except Exception:  # a broken catch-up must not take the site down: log it and try again later
            log.exception("catching up the keyword index failed")
            return 0

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            self.catch_up()


def _wants_json(request: Request) -> bool:
    path = request.url.path
    return path.startswith("/api/") or path.endswith(".json")


def _error(request: Request, status: int, message: str) -> Response:
    if request.url.path.startswith("/api/query"):  # before the JSON rule: this path is under /api/ too
        from paperwire.web.api.arxiv import error_feed  # arXiv's clients expect its Atom error entries

        return error_feed(request, message, status)
    if _wants_json(request):
        return JSONResponse({"error": message}, status_code=status)
    return templates.TemplateResponse(
        request, "error.html", {"status": status, "message": message}, status_code=status
    )


def _validation_message(exc: RequestValidationError) -> str:
    parts = []
    for err in exc.errors()[:3]:
        where = ".".join(str(x) for x in err.get("loc", ()) if x not in ("query", "path", "body"))
        parts.append(f"{where}: {err.get('msg', 'invalid')}" if where else str(err.get("msg", "invalid")))
    return "; ".join(parts) or "invalid request"


def create_app(store: Store | None = None, engine: SearchEngine | None = None) -> FastAPI:
    settings = get_settings()
    redact_access_log()
    store = store or (engine.store if engine else open_store())
    engine = engine or SearchEngine.open(store)
    follower = IndexFollower(engine, settings.index_follow_seconds)
    from paperwire.web.account import MailWorker

    mail_worker = MailWorker(store, settings)  # sends what requests queue (sign-in links), never in a request

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # Fewer, later cyclic collections: with the result cache holding thousands of objects, a full
        # collection every few hundred requests stalled one request in a hundred by 100+ ms at 1M papers.
        gc.collect()
        gc.freeze()
        gc.set_threshold(20_000, 20, 20)
        # Sync handlers run on anyio's thread pool, 40 threads by default: on a few cores that many
        # requests at once only queue for the GIL, and each past the store's pool opens a connection.
        anyio.to_thread.current_default_thread_limiter().total_tokens = settings.web_threads
        follower.start()
        mail_worker.start()
        yield
        mail_worker.stop()
        follower.stop()

    app = FastAPI(
        title="paperwire",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
        docs_url=None,  # served below, from our own files rather than a CDN
        redoc_url=None,
    )
    app.state.store = store
    app.state.engine = engine
    app.state.settings = settings
    app.state.follower = follower
    app.state.mail_worker = mail_worker
    app.mount("/static/swagger-ui", StaticFiles(directory=swagger_ui_path), name="swagger-ui")
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")

    @app.get("/docs", include_in_schema=False)
    def api_docs() -> HTMLResponse:
        """The OpenAPI description in Swagger UI, all of it served from here: the page works offline."""
        page = get_swagger_ui_html(
            openapi_url=app.openapi_url,
            title="paperwire API",
            swagger_js_url="/static/swagger-ui/swagger-ui-bundle.js",
            swagger_css_url="/static/swagger-ui/swagger-ui.css",
            swagger_favicon_url="/static/favicon.svg",
            # Nor is the spec sent to swagger.io's online validator for its badge.
            swagger_ui_parameters={"validatorUrl": None},
        )
        page.headers["Content-Security-Policy"] = DOCS_POLICY
        return page

    app.add_middleware(HeadAsGet)
    app.add_middleware(SecurityHeaders)
    from paperwire.web import auth

    auth.install(app)  # the CSRF cookie middleware, and the redirect of pages that need a signed-in user

    @app.exception_handler(ApiError)
    async def api_error(request: Request, exc: ApiError) -> Response:
        return _error(request, exc.status, exc.message)

    @app.exception_handler(QueryError)
    async def query_error(request: Request, exc: QueryError) -> Response:
        return _error(request, 400, str(exc))

    @app.exception_handler(RateLimited)
    async def rate_limited(request: Request, exc: RateLimited) -> Response:
        response = _error(request, 429, str(exc))
        response.headers["Retry-After"] = str(exc.retry_after)
        return response

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> Response:
        return _error(request, 400, _validation_message(exc))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        message = exc.detail if isinstance(exc.detail, str) else "error"
        if exc.status_code == 404 and message == "Not Found":
            message = f"nothing at {request.url.path[:200]}"
        return _error(request, exc.status_code, message)

    @app.exception_handler(Exception)
    async def server_error(request: Request, exc: Exception) -> Response:
        log.exception("unhandled error on %s", request.url.path)
        return _error(request, 500, "internal error")

    @app.get("/healthz", include_in_schema=False)
    def healthz() -> JSONResponse:
        return JSONResponse(
            # Cheap on purpose (load balancers ask often): no COUNT(*) over millions of rows.
            {"ok": True, "papers": engine.searchable(), "index_change_seq": engine.keyword.change_seq}
        )

    from paperwire.web import account, actions, feeds, pages, subscribe
    from paperwire.web.api import arxiv, hf, v1

    app.include_router(actions.router)  # before v1: /api/v1/papers/{id}/upvote inside v1's /papers/{id:path}
    app.include_router(v1.router)
    app.include_router(hf.router)
    app.include_router(arxiv.router)
    app.include_router(feeds.router)
    app.include_router(account.router)  # sign-in, account page, /api/v1/me
    app.include_router(subscribe.router)  # digest subscriptions: /subscribe, /preferences, /unsubscribe
    app.include_router(pages.router)  # last: its /papers/{id} catches what the others leave
    return app
