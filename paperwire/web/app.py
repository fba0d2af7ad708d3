"""The web application. This first version lists the catalogue; search, trending and APIs build on it."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates

from paperwire import __version__
from paperwire.arxiv_ids import InvalidArxivId, normalize_arxiv_id
from paperwire.store import Store, open_store

HERE = Path(__file__).parent
PAGE_SIZE = 25


def create_app(store: Store | None = None) -> FastAPI:
    app = FastAPI(title="paperwire", version=__version__)
    app.state.store = store or open_store()
    # Jinja2Templates autoescapes .html templates: titles and abstracts contain <, & and LaTeX.
    templates = Jinja2Templates(directory=HERE / "templates")
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")

    @app.get("/", response_class=HTMLResponse)
    def home(request: Request, page: int = 1) -> HTMLResponse:
        page = max(1, min(page, 10_000))
        s: Store = app.state.store
        papers = s.newest(limit=PAGE_SIZE + 1, offset=(page - 1) * PAGE_SIZE)
        return templates.TemplateResponse(
            request,
            "index.html",
            {
                "papers": papers[:PAGE_SIZE],
                "page": page,
                "has_next": len(papers) > PAGE_SIZE,
                "total": s.count(),
            },
        )

    @app.get("/papers/{paper_id:path}", response_class=HTMLResponse)
    def paper_page(request: Request, paper_id: str) -> HTMLResponse:
        try:
            canonical = normalize_arxiv_id(paper_id)
        except InvalidArxivId:
            return templates.TemplateResponse(request, "not_found.html", {"what": paper_id}, status_code=404)
        paper = app.state.store.get(canonical)
        if paper is None:
            return templates.TemplateResponse(request, "not_found.html", {"what": canonical}, status_code=404)
        return templates.TemplateResponse(request, "paper.html", {"paper": paper})

    @app.get("/healthz")
    def healthz() -> JSONResponse:
        return JSONResponse({"ok": True, "papers": app.state.store.count()})

    return app
