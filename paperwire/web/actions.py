"""What signed-in people do to papers: upvote (a form without JavaScript, the JSON API with it), submit a
paper to today's list, and (admins) hide a paper. Every change is a POST or DELETE with a CSRF token
(or a bearer token); nothing changes on GET."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import RedirectResponse, Response
from pydantic import BaseModel

from paperwire.arxiv_ids import InvalidArxivId, normalize_arxiv_id
from paperwire.ingest.base import IngestError
from paperwire.store import StoredPaper, votes
from paperwire.store.accounts import User
from paperwire.web.api.v1 import lookup_paper
from paperwire.web.auth import AdminUser, RequiredUser, check_csrf, safe_next
from paperwire.web.common import ApiError, get_store
from paperwire.web.ratelimit import app_limiter

log = logging.getLogger("paperwire.web")
# After the user dependency, so that a visitor who is not signed in hears that first (401 / sign-in page).
Csrf = Annotated[None, Depends(check_csrf)]
router = APIRouter()
VOTES_PER_MINUTE = 60
SUBMISSIONS_PER_HOUR = 20


class UpvoteOut(BaseModel):
    id: str
    upvoted: bool
    upvotes: int


def _limit(request: Request, name: str, limit: int, window: float, user: User, what: str) -> None:
    app_limiter(request, name, limit, window).hit(f"user:{user.id}", what)


def _vote(request: Request, user: User, paper_id: str, up: bool) -> UpvoteOut:
    paper = lookup_paper(request, paper_id)
    _limit(request, "vote_limiter", VOTES_PER_MINUTE, 60, user, "votes")
    store = get_store(request)
    try:
        if up:
            votes.upvote(store, user.id, paper.id, datetime.now(UTC))
        else:
            votes.remove_upvote(store, user.id, paper.id, datetime.now(UTC))
    except votes.UnknownPaper as exc:
        raise ApiError(404, f"paper {exc.paper_id} not found") from None
    fresh = store.get(paper.id)
    return UpvoteOut(id=paper.id, upvoted=up, upvotes=fresh.votes if fresh else 0)


@router.post(
    "/api/v1/papers/{paper_id:path}/upvote",
    tags=["paperwire API v1"],
    summary="Upvote a paper (once per user; again is a no-op)",
)
def api_upvote(request: Request, paper_id: str, user: RequiredUser, _csrf: Csrf) -> UpvoteOut:
    """Signed in by the session cookie (with an ``X-CSRF-Token`` header) or a personal API token
    (``Authorization: Bearer ...``, from the account page)."""
    return _vote(request, user, paper_id, up=True)


@router.delete(
    "/api/v1/papers/{paper_id:path}/upvote",
    tags=["paperwire API v1"],
    summary="Take back an upvote",
)
def api_remove_upvote(request: Request, paper_id: str, user: RequiredUser, _csrf: Csrf) -> UpvoteOut:
    return _vote(request, user, paper_id, up=False)


@router.post("/papers/{paper_id:path}/upvote", include_in_schema=False)
def form_upvote(
    request: Request,
    paper_id: str,
    user: RequiredUser,
    _csrf: Csrf,
    action: Annotated[str, Form()] = "add",
    next: Annotated[str | None, Form()] = None,  # noqa: A002 - the form field's name
) -> Response:
    """The same without JavaScript: the button is a form; back to the page it was on."""
    result = _vote(request, user, paper_id, up=action != "remove")
    return RedirectResponse(safe_next(next) or f"/papers/{result.id}", status_code=303)


@router.post("/papers/submit", include_in_schema=False)
def submit_daily(
    request: Request, user: RequiredUser, _csrf: Csrf, paper: Annotated[str, Form()] = ""
) -> Response:
    """Put a paper on today's list by arXiv id or URL, fetching it from arXiv when the catalogue does not
    have it yet (as Hugging Face's "Submit a paper")."""
    _limit(request, "submit_limiter", SUBMISSIONS_PER_HOUR, 3600, user, "submissions")
    try:
        canonical = normalize_arxiv_id(paper)
    except InvalidArxivId:
        raise ApiError(400, f"{paper.strip()[:80]!r} is not an arXiv id or abstract URL") from None
    store = get_store(request)
    found = store.get(canonical)
    if found is None:
        found = _fetch_from_arxiv(request, canonical)
    if found.hidden:
        raise ApiError(404, f"paper {canonical} not found")
    now = datetime.now(UTC)
    try:
        votes.submit_daily(store, found.id, now.date(), user.id, now)
    except votes.AlreadySubmitted as exc:
        raise ApiError(409, f"arXiv:{found.id} is already on the list of {exc.day.isoformat()}") from None
    request.app.state.follower.catch_up()  # so the list shows it at once, not after the next poll
    return RedirectResponse(f"/papers/date/{now.date().isoformat()}?submitted={found.id}", status_code=303)


def _fetch_from_arxiv(request: Request, canonical: str) -> StoredPaper:
    from paperwire.ingest.arxiv_api import ArxivAPISource
    from paperwire.ingest.runner import run_import

    store = get_store(request)
    try:
        run_import(store, ArxivAPISource(ids=[canonical]).items())
    except (IngestError, OSError) as exc:
        log.warning("fetching %s from arXiv failed: %s", canonical, exc)
        raise ApiError(
            502, f"arXiv:{canonical} is not in this catalogue and arXiv could not be asked: {exc}"
        ) from None
    found = store.get(canonical)
    if found is None:
        raise ApiError(404, f"arXiv has no paper {canonical}")
    return found


@router.post("/papers/{paper_id:path}/hide", include_in_schema=False)
def hide(
    request: Request, paper_id: str, admin: AdminUser, _csrf: Csrf, hidden: Annotated[str, Form()] = "1"
) -> Response:
    """Admins take a paper out of every list and search (it stays in the store; `unhide` brings it back)."""
    try:
        canonical = normalize_arxiv_id(paper_id)
    except InvalidArxivId:
        raise ApiError(404, f"{paper_id[:80]!r} is not an arXiv id") from None
    if get_store(request).get(canonical) is None:
        raise ApiError(404, f"paper {canonical} not found")
    votes.set_hidden(get_store(request), canonical, hidden == "1")
    request.app.state.follower.catch_up()
    log.info("%s %s arXiv:%s", admin.email, "hid" if hidden == "1" else "unhid", canonical)
    return RedirectResponse(f"/papers/{canonical}", status_code=303)
