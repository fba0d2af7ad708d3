"""A digest as an e-mail: Jinja2 (autoescaped) HTML that real mail clients show well (tables, inline CSS,
no scripts, a dark-mode block for clients that honour it, one column on a phone) and a plain-text part,
both with absolute links and a reason for every paper; List-Unsubscribe with one-click (RFC 8058).

What is the same for every subscriber (a paper's card: title, authors, snippet, links) is rendered once
per run and reused; only the reasons, the header and the footer are per subscriber."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from markupsafe import Markup

from paperwire.arxiv_ids import abs_url, pdf_url
from paperwire.config import Settings
from paperwire.digest.choose import Digest, Pick
from paperwire.latex import readable
from paperwire.mail import compose_bytes
from paperwire.store import StoredPaper

HERE = Path(__file__).parent
SNIPPET = 320  # characters of the abstract shown

_html = Environment(
    loader=FileSystemLoader(HERE / "templates"),
    autoescape=select_autoescape(["html"]),
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)
_text = Environment(
    loader=FileSystemLoader(HERE / "templates"),
    autoescape=False,
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
    keep_trailing_newline=True,
)


def snippet(text: str, limit: int = SNIPPET) -> str:
    text = " ".join(readable(text).split())
    if len(text) <= limit:
        return text
    cut = text[:limit].rsplit(" ", 1)[0].rstrip(",;:.")
    return cut + "…"


def author_line(paper: StoredPaper, shown: int = 3) -> str:
    names = [a.name for a in paper.authors]
    if len(names) > shown:
        return ", ".join(names[:shown]) + " et al."
    return ", ".join(names)


@dataclass(frozen=True, slots=True)
class Card:
    """A paper as every digest shows it: rendered once per run."""

    title: str
    html: Markup  # the card's body, already escaped
    text: str  # the plain-text lines below the title
    url: str


@dataclass(frozen=True, slots=True)
class RenderedDigest:
    subject: str
    text: str
    html: str


class Renderer:
    def __init__(self, settings: Settings, base_url: str):
        self.settings = settings
        self.base = base_url.rstrip("/")
        self._cards: dict[str, Card] = {}
        self._card_html = _html.get_template("digest_card.html")
        self._digest_html = _html.get_template("digest.html")
        self._digest_text = _text.get_template("digest.txt")

    def paper_url(self, paper_id: str) -> str:
        return f"{self.base}/papers/{quote(paper_id, safe='/')}"

    def card(self, paper: StoredPaper) -> Card:
        card = self._cards.get(paper.id)
        if card is None:
            title = " ".join(readable(paper.title).split())
            meta = " · ".join(
                x
                for x in (
                    author_line(paper),
                    paper.primary_category or "",
                    f"{paper.published:%b} {paper.published.day}, {paper.published.year}"
                    if paper.published
                    else "",
                )
                if x
            )
            url = self.paper_url(paper.id)
            arxiv_page, pdf = abs_url(paper.id), pdf_url(paper.id)
            abstract = snippet(paper.abstract)
            context = {
                "title": title,
                "meta": meta,
                "abstract": abstract,
                "url": url,
                "abs_url": arxiv_page,
                "pdf_url": pdf,
                "votes": paper.votes,
            }
            text = f"   {meta}\n   {abstract}\n   {url}\n   arXiv: {arxiv_page}  PDF: {pdf}"
            card = Card(title, Markup(self._card_html.render(context)), text, url)
            if len(self._cards) > 50_000:
                self._cards.clear()
            self._cards[paper.id] = card
        return card

    def subject(self, digest: Digest) -> str:
        picks = digest.picks
        kind = "weekly" if digest.period.frequency == "weekly" else "daily"
        if not picks:
            return f"Nothing new this time · paperwire {kind}"
        top = self.card(picks[0].paper).title
        top = top if len(top) <= 70 else top[:70].rsplit(" ", 1)[0].rstrip(" ,;:-") + "…"
        more = len(picks) - 1
        return f"{top}" + (f" + {more} more" if more else "") + f" · paperwire {kind}"

    def render(self, digest: Digest, *, preferences_url: str, unsubscribe_url: str) -> RenderedDigest:
        def items(picks: list[Pick]) -> list[dict]:
            return [{"card": self.card(p.paper), "reason": p.reason} for p in picks]

        trending_title = "Trending" if digest.trending_has_votes else "New papers"
        sections = [
            {"title": title, "items": items(picks)}
            for title, picks in ((trending_title, digest.trending), ("For you", digest.personal))
            if picks
        ]
        topics = list(digest.subscriber.topics)
        context = {
            "subject": self.subject(digest),
            "period": digest.period,
            "kind": "weekly" if digest.period.frequency == "weekly" else "daily",
            "sections": sections,
            "count": len(digest.picks),
            "topics": topics,
            "email": digest.subscriber.email,
            "site": self.base,
            "site_host": self.base.split("://", 1)[-1],
            "preferences_url": preferences_url,
            "unsubscribe_url": unsubscribe_url,
        }
        return RenderedDigest(
            context["subject"], self._digest_text.render(context), self._digest_html.render(context)
        )

    def message(
        self, digest: Digest, *, preferences_url: str, unsubscribe_url: str, headers: dict[str, str]
    ) -> bytes:
        """The whole message (RFC 5322 bytes, CRLF) for SMTP."""
        rendered = self.render(digest, preferences_url=preferences_url, unsubscribe_url=unsubscribe_url)
        host = self.base.split("://", 1)[-1].split("/", 1)[0].split(":", 1)[0] or "localhost"
        return compose_bytes(
            sender=self.settings.mail_from,
            to=digest.subscriber.email,
            subject=rendered.subject,
            text=rendered.text,
            html=rendered.html,
            headers={
                **headers,
                "List-Id": f"paperwire {('weekly' if digest.period.frequency == 'weekly' else 'daily')} digest "
                f"<digest.{host}>",
                "Precedence": "bulk",
            },
        )
