"""A Hugging Face Papers-compatible API: ``huggingface_hub`` (``HfApi(endpoint=...)`` or ``HF_ENDPOINT``)
and the ``hf papers`` CLI work against this server unmodified.

Keys follow what the client's ``PaperInfo`` reads (see :mod:`paperwire.web.api.serialize`). Until
daily submissions and votes exist (the trending issue), a day's list is the papers published that day,
a day's list is its submitted papers ranked by upvotes (the papers published that day when nobody
submitted any).
"""

from __future__ import annotations

from typing import Literal

import orjson
from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import PlainTextResponse, Response

from paperwire.search.service import MAX_PER_PAGE
from paperwire.store.votes import daily_entries, daily_entry
from paperwire.web.api.serialize import hf_item, hf_paper_info, paper_markdown, site_base
from paperwire.web.api.v1 import lookup_paper, parse_period
from paperwire.web.common import ApiError, get_engine, latest_period, period_papers
from paperwire.web.ratelimit import limit_search

router = APIRouter(tags=["Hugging Face-compatible"])


def _json(items: list[dict]) -> Response:
    """The list as JSON, serialised by orjson: FastAPI's validation and encoding of a ``list[dict]``
    response cost more than a search's fetching and building of the items (1.4 ms for 10 papers)."""
    return Response(orjson.dumps(items), media_type="application/json")


# The Hub's own defaults: 50 papers per page of a daily list, pages counted from 0.
DAILY_LIMIT = 50
SEARCH_LIMIT = 50
_SORTS = {None: "upvotes", "publishedAt": "date", "trending": "trending"}


@router.get(
    "/api/papers/search",
    summary="Search papers (Hugging Face-compatible)",
    dependencies=[Depends(limit_search)],
    response_model=list[dict],
)
def search_papers(
    request: Request,
    q: str = Query("", description="Search query (empty: the newest papers)"),
    limit: int = Query(SEARCH_LIMIT, ge=1, le=MAX_PER_PAGE, description="Papers to return"),
) -> Response:
    """What ``HfApi.list_papers(query=..., limit=...)`` and ``hf papers search`` call: the best matches
    (hybrid keyword and meaning ranking), as the Hub's list items."""
    # The Hub's list items carry no highlights and the list no total: skip marking and counting.
    result = get_engine(request).search(
        q, page=1, per_page=limit, mode="hybrid", highlight=False, as_you_type=False, count=False
    )
    entries = daily_entries(get_engine(request).store, [hit.id for hit in result.hits])
    return _json([hf_item(hit.paper, entries.get(hit.id)) for hit in result.hits])


@router.get(
    "/api/daily_papers",
    summary="A day's, week's or month's papers (Hugging Face-compatible)",
    dependencies=[Depends(limit_search)],
    response_model=list[dict],
)
def daily_papers(
    request: Request,
    date: str | None = Query(None, description="YYYY-MM-DD"),
    week: str | None = Query(None, description="ISO week, YYYY-Www"),
    month: str | None = Query(None, description="YYYY-MM"),
    sort: Literal["publishedAt", "trending"] | None = Query(
        None, description="Default: upvotes. publishedAt: newest first. trending: by the trending score"
    ),
    p: int = Query(0, ge=0, description="Page, counted from 0"),
    limit: int = Query(DAILY_LIMIT, ge=1, le=MAX_PER_PAGE),
    submitter: str | None = Query(None, description="Hub username of the submitter"),
) -> Response:
    """What ``HfApi.list_daily_papers`` and ``hf papers ls`` call. One of date, week or month picks the
    period; none picks the latest day with papers."""
    given = {k: v for k, v in (("date", date), ("week", week), ("month", month)) if v is not None}
    if len(given) > 1:
        raise ApiError(400, f"give at most one of date, week and month (got {', '.join(given)})")
    engine = get_engine(request)
    if given:
        ((kind, key),) = given.items()
        period = parse_period(kind, key)
    else:
        period = latest_period(engine, "date")
    result = period_papers(engine, period, sort=_SORTS[sort], page=p + 1, per_page=limit, submitter=submitter)
    return _json([hf_item(hit.paper, getattr(hit, "entry", None)) for hit in result.hits])


@router.get(
    "/api/papers/{paper_id:path}",
    summary="One paper (Hugging Face-compatible)",
    responses={404: {"description": "Not an arXiv id, or not in this catalogue"}},
)
def paper_info(request: Request, paper_id: str) -> dict:
    """What ``HfApi.paper_info(id)`` and ``hf papers info`` call. Versioned ids (``2401.00001v2``) and
    old-style ids (``hep-th/9901001``) resolve to the paper."""
    paper = lookup_paper(request, paper_id)
    return hf_paper_info(paper, daily_entry(get_engine(request).store, paper.id))


@router.get(
    "/papers/{paper_id:path}.md",
    summary="One paper as Markdown (Hugging Face-compatible)",
    response_class=PlainTextResponse,
    responses={200: {"content": {"text/markdown": {}}}, 404: {"description": "Unknown paper"}},
)
def paper_md(request: Request, paper_id: str) -> Response:
    """What ``HfApi.read_paper(id)`` and ``hf papers read`` call. Errors are plain text too: whoever
    asked for Markdown reads text."""
    try:
        paper = lookup_paper(request, paper_id)
    except ApiError as exc:
        return PlainTextResponse(exc.message + "\n", status_code=exc.status)
    return Response(paper_markdown(paper, site_base(request)), media_type="text/markdown; charset=utf-8")
