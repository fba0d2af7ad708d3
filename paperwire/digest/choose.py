"""Which papers a subscriber's digest holds, and why.

A digest is the period's trending papers, then the subscriber's personal matches: categories, authors and
saved searches through the search engine, "more like these" through the vectors. Nothing a subscriber was
sent before comes again. A :class:`Chooser` serves one run: what many subscribers share (the period's
candidates, the result of each topic) is computed once, so a run costs a few searches per distinct topic,
not per subscriber."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from itertools import zip_longest

from paperwire.digest.schedule import WINDOW_DAYS, Period
from paperwire.search.keyword import Filters
from paperwire.search.query import QueryError
from paperwire.search.service import SearchEngine
from paperwire.store import Store, StoredPaper
from paperwire.store import votes as votes_store
from paperwire.store.subscriptions import Subscriber, Topic

log = logging.getLogger("paperwire.digest")

CANDIDATES = 200  # trending candidates per window
PER_TOPIC = 30  # matches kept per topic
LIKE_THRESHOLD = 0.35  # cosine below which "more like this" is not alike enough to send
TRENDING_SHARE = 0.3  # of a digest with topics; the rest is personal matches (trending fills any gap)


@dataclass(slots=True)
class Pick:
    paper: StoredPaper
    reasons: list[str]

    @property
    def reason(self) -> str:
        return " · ".join(self.reasons)


@dataclass(slots=True)
class Digest:
    subscriber: Subscriber
    period: Period
    trending: list[Pick] = field(default_factory=list)
    personal: list[Pick] = field(default_factory=list)
    trending_has_votes: bool = False  # False: the "trending" section is the newest papers (nobody voted)

    @property
    def picks(self) -> list[Pick]:
        return self.trending + self.personal

    @property
    def paper_ids(self) -> tuple[str, ...]:
        return tuple(p.paper.id for p in self.picks)

    @property
    def empty(self) -> bool:
        return not self.trending and not self.personal


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def _short(text: str, limit: int = 60) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


class Chooser:
    def __init__(self, store: Store, engine: SearchEngine | None, *, newest_day: date | None = None):
        self.store = store
        self.engine = engine
        # Windows end at the catalogue's newest day, not today: an instance harvested yesterday (or a demo
        # on a sample) still has "today's" papers.
        self.newest_day = newest_day or store.newest_published_day() or datetime.now(UTC).date()
        self.papers: dict[str, StoredPaper] = {}
        self._trending: dict[str, tuple[list[tuple[str, str]], bool]] = {}
        self._topics: dict[tuple[str, Topic], list[tuple[str, str]]] = {}
        self._window_ids: dict[str, set[str]] = {}

    # -- shared per run --------------------------------------------------------------------------------

    def since(self, frequency: str) -> date:
        return self.newest_day - timedelta(days=WINDOW_DAYS.get(frequency, 3) - 1)

    def _remember(self, papers: list[StoredPaper]) -> None:
        for p in papers:
            self.papers[p.id] = p

    def _search_ids(self, query: str, filters: Filters, sort: str, *, relax: bool = False) -> list[str]:
        if self.engine is None:
            return []
        try:
            # Keyword mode, every word required and taken whole (a saved search is finished, not typed):
            # "matches your search" must be true of each paper.
            result = self.engine.search(
                query,
                filters,
                sort=sort,
                per_page=PER_TOPIC,
                mode="keyword",
                highlight=False,
                relax=relax,
                as_you_type=False,
                count=False,  # ids only: no total
            )
        except QueryError as exc:
            log.info("digest topic %r skipped: %s", query, exc)
            return []
        self._remember([h.paper for h in result.hits])
        return [h.id for h in result.hits]

    def trending(self, frequency: str) -> tuple[list[tuple[str, str]], bool]:
        """``(id, reason)`` of the window's trending papers, best first, and whether anyone voted."""
        if frequency not in self._trending:
            since = self.since(frequency)
            start = datetime(since.year, since.month, since.day, tzinfo=UTC)
            found, _ = votes_store.trending(self.store, since=start, limit=CANDIDATES)
            self._remember(found)
            voted = [
                (p.id, f"trending: {_plural(p.votes, 'upvote')}")
                if p.votes
                else (p.id, "in the daily papers")
                for p in found
            ]
            if voted:
                self._trending[frequency] = (voted, True)
            else:  # nobody voted here yet: the newest papers of the window
                ids = self._search_ids("", Filters(published_from=since), "date")
                self._trending[frequency] = (
                    [(i, f"new in {self.papers[i].primary_category or 'arXiv'}") for i in ids],
                    False,
                )
        return self._trending[frequency]

    def window_ids(self, frequency: str) -> set[str]:
        if frequency not in self._window_ids:
            since = self.since(frequency)
            start = datetime(since.year, since.month, since.day, tzinfo=UTC)
            self._window_ids[frequency] = set(self.store.ids_published_since(start))
        return self._window_ids[frequency]

    def topic(self, frequency: str, topic: Topic) -> list[tuple[str, str]]:
        """``(id, reason)`` of the window's papers that match ``topic``, best first."""
        key = (frequency, topic)
        if key not in self._topics:
            self._topics[key] = self._match(frequency, topic)
        return self._topics[key]

    def _match(self, frequency: str, topic: Topic) -> list[tuple[str, str]]:
        since = self.since(frequency)
        if topic.kind == "category":
            ids = self._search_ids("", Filters(published_from=since, categories=(topic.value,)), "trending")
            return [(i, f"new in {topic.value}") for i in ids]
        if topic.kind == "author":
            ids = self._search_ids("", Filters(published_from=since, authors=(topic.value,)), "date")
            return [(i, f"new from an author you follow: {topic.value}") for i in ids]
        if topic.kind == "query":
            ids = self._search_ids(topic.value, Filters(published_from=since), "relevance")
            return [(i, f"matches your search “{_short(topic.value, 80)}”") for i in ids]
        if topic.kind == "like":
            return self._like(frequency, topic.value)
        return []

    def _like(self, frequency: str, paper_id: str) -> list[tuple[str, str]]:
        liked = self.papers.get(paper_id) or self.store.get(paper_id)
        if liked is None:
            return []
        reason = f"like “{_short(liked.title)}”, a paper you follow"
        engine = self.engine
        vector = (
            engine.vectors.vector(paper_id) if engine is not None and engine.vectors is not None else None
        )
        if vector is not None:
            allowed = self.window_ids(frequency) - {paper_id}
            ids, scores = engine.vectors.search(vector, k=PER_TOPIC, allowed=allowed)
            return [(i, reason) for i, s in zip(ids, scores, strict=True) if s >= LIKE_THRESHOLD]
        # No vector for it (vectors not built yet): the window's papers that best match its title.
        words = " ".join(liked.title.split()[:12])
        ids = self._search_ids(words, Filters(published_from=self.since(frequency)), "relevance", relax=True)
        return [(i, reason) for i in ids if i != paper_id]

    def _hydrate(self, ids: list[str]) -> None:
        missing = [i for i in ids if i not in self.papers]
        if missing:
            self._remember(list(self.store.get_many(missing).values()))

    # -- per subscriber --------------------------------------------------------------------------------

    def choose(
        self, subscriber: Subscriber, period: Period, sent: set[str] | frozenset[str] = frozenset()
    ) -> Digest:
        size = max(1, subscriber.size)
        freq = period.frequency
        digest = Digest(subscriber, period)
        trending, digest.trending_has_votes = self.trending(freq)
        trending = [(i, r) for i, r in trending if i not in sent]

        # Personal matches, one from each topic in turn, so that one busy category cannot crowd out an
        # author the subscriber follows; a paper matched by several topics keeps every reason.
        reasons: dict[str, list[str]] = {}
        lists = [self.topic(freq, t) for t in subscriber.topics]
        for row in zip_longest(*lists):
            for item in row:
                if item is None or item[0] in sent:
                    continue
                pid, reason = item
                if reason not in reasons.setdefault(pid, []):
                    reasons[pid].append(reason)
        self._hydrate(list(reasons))
        personal = [pid for pid in reasons if pid in self.papers]

        quota = size if not subscriber.topics else max(1, round(size * TRENDING_SHARE))
        quota = max(quota, size - len(personal))  # trending fills what personal matches cannot
        chosen: set[str] = set()
        for pid, reason in trending:
            if len(digest.trending) >= quota:
                break
            paper = self.papers.get(pid)
            if paper is None or pid in chosen:
                continue
            chosen.add(pid)
            digest.trending.append(Pick(paper, [reason, *reasons.get(pid, [])]))
        for pid in personal:
            if len(digest.trending) + len(digest.personal) >= size:
                break
            if pid not in chosen:
                chosen.add(pid)
                digest.personal.append(Pick(self.papers[pid], reasons[pid]))
        return digest
