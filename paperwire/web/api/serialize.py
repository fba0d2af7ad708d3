"""The JSON and Markdown shapes of a paper, shared by the APIs (own v1, Hugging Face-compatible).

One module decides what a paper looks like on the wire, so the APIs cannot drift apart on links, dates
or author lists. The v1 shapes are pydantic models (they document ``/openapi.json``); the Hugging Face
shapes are plain dicts whose keys follow what ``huggingface_hub``'s ``PaperInfo`` reads.
"""

from __future__ import annotations

import hashlib
import re
from datetime import UTC, datetime

from pydantic import BaseModel, Field

from paperwire.arxiv_ids import abs_url, pdf_url
from paperwire.latex import readable
from paperwire.models import Paper
from paperwire.search.service import Hit
from paperwire.store import StoredPaper
from paperwire.store.votes import DailyEntry
from paperwire.web.common import site_base  # noqa: F401 - used here and imported from here


def page_url(base: str, paper_id: str) -> str:
    return f"{base}/papers/{paper_id}"


# -- paperwire's own shapes (v1) ------------------------------------------------------------------------


class AuthorOut(BaseModel):
    name: str
    affiliation: str | None = None


class PaperOut(BaseModel):
    """A paper at its latest known version."""

    id: str = Field(description="Canonical arXiv id, without version", examples=["2401.14040"])
    version: int = Field(description="Latest known version")
    title: str = Field(description="As arXiv has it (LaTeX included)")
    abstract: str = Field(description="Paragraphs separated by one newline")
    authors: list[AuthorOut]
    categories: list[str] = Field(description="arXiv categories, primary first")
    primary_category: str | None
    published: datetime | None = Field(description="When version 1 was submitted (UTC)")
    updated: datetime | None = Field(description="When the latest version was submitted (UTC)")
    comments: str | None
    journal_ref: str | None
    doi: str | None
    report_no: str | None
    license: str | None
    trending_score: float
    upvotes: int = Field(0, description="Upvotes: this instance's users' plus any imported from elsewhere")
    url: str = Field(description="This paper's page on this site")
    abs_url: str = Field(description="The paper on arXiv")
    pdf_url: str = Field(description="The latest version's PDF on arXiv")


class HitOut(BaseModel):
    """A paper in a result list, with why it matched."""

    id: str
    score: float = Field(description="Ranking score (only comparable within one result list)")
    title: str
    abstract: str
    title_html: str = Field(description="The title, HTML-escaped, LaTeX made readable, matches in <mark>")
    snippet_html: str = Field(description="Part of the abstract around the matches, HTML-escaped, <mark>ed")
    matched: list[str] = Field(description="Why the paper matched, in words")
    authors: list[AuthorOut]
    categories: list[str]
    primary_category: str | None
    published: datetime | None
    updated: datetime | None
    url: str
    abs_url: str
    pdf_url: str


def _authors(paper: Paper) -> list[AuthorOut]:
    return [AuthorOut(name=a.name, affiliation=a.affiliation) for a in paper.authors]


def paper_out(paper: StoredPaper, base: str) -> PaperOut:
    """The full v1 shape of one paper (``base``: see :func:`site_base`)."""
    return PaperOut(
        id=paper.id,
        version=paper.version,
        title=paper.title,
        abstract=paper.abstract,
        authors=_authors(paper),
        categories=list(paper.categories),
        primary_category=paper.primary_category,
        published=paper.published,
        updated=paper.updated,
        comments=paper.comments,
        journal_ref=paper.journal_ref,
        doi=paper.doi,
        report_no=paper.report_no,
        license=paper.license,
        trending_score=paper.trending_score,
        upvotes=paper.votes,
        url=page_url(base, paper.id),
        abs_url=abs_url(paper.id),
        pdf_url=pdf_url(paper.id),
    )


def hit_out(hit: Hit, base: str) -> HitOut:
    """A search or list hit in the v1 shape."""
    paper = hit.paper
    return HitOut(
        id=hit.id,
        score=round(hit.score, 6),
        title=paper.title,
        abstract=paper.abstract,
        title_html=str(hit.title_html),
        snippet_html=str(hit.abstract_html),
        matched=list(hit.matched),
        authors=_authors(paper),
        categories=list(paper.categories),
        primary_category=paper.primary_category,
        published=paper.published,
        updated=paper.updated,
        url=page_url(base, paper.id),
        abs_url=abs_url(paper.id),
        pdf_url=pdf_url(paper.id),
    )


# -- Hugging Face Papers shapes ----------------------------------------------------------------------------


def hf_time(value: datetime | None) -> str | None:
    """The Hub's timestamp format (``2024-01-25T00:00:00.000Z``): ``huggingface_hub`` parses only this."""
    if value is None:
        return None
    value = value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"


def _object_id(*parts: str) -> str:
    """A stable 24-hex id in the Hub's ObjectId format (authors and discussions carry one there)."""
    return hashlib.sha1("\x1f".join(parts).encode()).hexdigest()[:24]


def hf_submitter(entry: DailyEntry | None) -> dict | None:
    """The Hub's user object for whoever submitted the paper to a daily list."""
    from paperwire.web.common import submitter_name

    name = submitter_name(entry) if entry is not None and entry.submitted else None
    if name is None:
        return None
    return {"_id": _object_id("user", name), "user": name, "fullname": name, "avatarUrl": "", "type": "user"}


def hf_paper(paper: StoredPaper, entry: DailyEntry | None = None) -> dict:
    """The Hub's paper object (the ``paper`` of a list item, and the body of ``/api/papers/{id}``).

    Hub-only features have their empty value: nobody has upvoted, submitted or discussed a paper here
    (``discussionId`` is stable per paper so clients can key on it), and there are no AI summaries,
    project pages or linked repos."""
    return {
        "id": paper.id,
        "authors": [
            {"_id": _object_id(paper.id, str(i), a.name), "name": a.name, "hidden": False}
            for i, a in enumerate(paper.authors)
        ],
        "mediaUrls": [],
        "publishedAt": hf_time(paper.published),
        "submittedOnDailyAt": hf_time(entry.submitted_at) if entry is not None and entry.submitted else None,
        "title": paper.title,
        "submittedOnDailyBy": hf_submitter(entry),
        "summary": paper.abstract,
        "upvotes": paper.votes,
        "discussionId": _object_id("discussion", paper.id),
        "projectPage": None,
        "githubRepo": None,
        "githubStars": None,
        "ai_summary": None,
        "ai_keywords": [],
        "organization": None,
    }


def hf_paper_info(paper: StoredPaper, entry: DailyEntry | None = None) -> dict:
    """The flat object of ``GET /api/papers/{id}``: the paper plus what the Hub links to it (nothing here).

    Never a ``comments`` key: ``PaperInfo`` keeps unknown keys as attributes, and that one would replace
    its comment count with arXiv's comments text."""
    return {
        **hf_paper(paper, entry),
        "numComments": 0,
        "source": "arxiv",
        "linkedModels": [],
        "numTotalModels": 0,
        "linkedDatasets": [],
        "numTotalDatasets": 0,
        "linkedSpaces": [],
        "numTotalSpaces": 0,
    }


def hf_item(paper: StoredPaper, entry: DailyEntry | None = None) -> dict:
    """One entry of ``/api/papers/search`` and ``/api/daily_papers``: the paper, plus the list's own keys.

    ``publishedAt`` at the top is when the paper appeared in the list (``PaperInfo.submitted_at``); a
    day's list is the papers published that day, so it is the paper's publication time. No top-level
    ``authors``: ``PaperInfo`` would keep the raw dicts over the parsed ones."""
    listed = entry.submitted_at if entry is not None and entry.submitted else paper.published
    return {
        "paper": hf_paper(paper, entry),
        "publishedAt": hf_time(listed),
        "title": paper.title,
        "summary": paper.abstract,
        "thumbnail": None,
        "mediaUrls": [],
        "numComments": 0,
        "submittedBy": hf_submitter(entry),
        "organization": None,
        "isAuthorParticipating": False,
        "upvotes": paper.votes,  # PaperInfo reads an inner 0 as "missing" and falls back to this one
        "source": "arxiv",
        "ai_summary": None,
        "ai_keywords": [],
        "projectPage": None,
        "githubRepo": None,
        "githubStars": None,
    }


# -- Markdown ---------------------------------------------------------------------------------------------

# A "<" that could open an HTML tag or comment when the Markdown is rendered; "x < y" stays as typed.
_TAG_START = re.compile(r"<(?=[A-Za-z/!?])")


def _md(text: str) -> str:
    """Text made safe to drop into Markdown: no raw HTML, no line breaks that restructure the page."""
    return _TAG_START.sub(r"\\<", " ".join(text.split()))


def paper_markdown(paper: StoredPaper, base: str) -> str:
    """The paper as a Markdown page (what ``huggingface_hub``'s ``read_paper`` returns): title, authors,
    links, dates, categories and the abstract, LaTeX made readable."""
    lines = [f"# {_md(readable(paper.title))}", ""]
    if paper.authors:
        lines.append("**Authors:** " + ", ".join(_md(a.name) for a in paper.authors))
    links = [
        f"[arXiv:{paper.id}]({abs_url(paper.id)})",
        f"[PDF]({pdf_url(paper.id)})",
        f"[paperwire]({page_url(base, paper.id)})",
    ]
    lines.append("**Links:** " + " · ".join(links))
    dates = []
    if paper.published:
        dates.append(f"published {paper.published:%Y-%m-%d}")
    if paper.updated and paper.version > 1:
        dates.append(f"updated {paper.updated:%Y-%m-%d} (v{paper.version})")
    if dates:
        lines.append("**Dates:** " + ", ".join(dates))
    if paper.categories:
        cats = [f"{paper.categories[0]} (primary)", *paper.categories[1:]]
        lines.append("**Categories:** " + ", ".join(cats))
    for label, value in (
        ("Comments", paper.comments),
        ("Journal reference", paper.journal_ref),
        ("Report number", paper.report_no),
    ):
        if value:
            lines.append(f"**{label}:** {_md(value)}")
    if paper.doi:
        lines.append(f"**DOI:** [{_md(paper.doi)}](https://doi.org/{paper.doi.replace(')', '%29')})")
    if paper.license:
        lines.append(f"**License:** {_md(paper.license)}")
    # Consecutive "**...**" lines would merge into one paragraph: end each with a hard break.
    header = [line + "  " if line.startswith("**") else line for line in lines]
    body = [_md(p) for p in readable(paper.abstract).split("\n") if p.strip()]
    return "\n".join([*header, "", "## Abstract", "", "\n\n".join(body) or "(no abstract)", ""])
