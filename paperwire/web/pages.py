"""HTML pages: home, daily/weekly/monthly lists, search, paper."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from paperwire.arxiv_ids import InvalidArxivId, normalize_arxiv_id
from paperwire.web.common import get_store
from paperwire.web.templating import templates

router = APIRouter(include_in_schema=False)
PAGE_SIZE = 25


@router.get("/", response_class=HTMLResponse)
def home(request: Request, page: int = 1) -> HTMLResponse:
    page = max(1, min(page, 10_000))
    s = get_store(request)
    papers = s.newest(limit=PAGE_SIZE + 1, offset=(page - 1) * PAGE_SIZE)
    return templates.TemplateResponse(
        request,
        "index.html",
        {"papers": papers[:PAGE_SIZE], "page": page, "has_next": len(papers) > PAGE_SIZE, "total": s.count()},
    )


@router.get("/papers/{paper_id:path}", response_class=HTMLResponse)
def paper_page(request: Request, paper_id: str) -> HTMLResponse:
    try:
        canonical = normalize_arxiv_id(paper_id)
    except InvalidArxivId:
        return templates.TemplateResponse(request, "not_found.html", {"what": paper_id}, status_code=404)
    paper = get_store(request).get(canonical)
    if paper is None:
        return templates.TemplateResponse(request, "not_found.html", {"what": canonical}, status_code=404)
    return templates.TemplateResponse(request, "paper.html", {"paper": paper})
