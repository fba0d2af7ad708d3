"""Synthetic arXiv-snapshot records whose text follows the real records' word distribution.

The model is learnt from the bundled real snapshot lines: word frequencies of titles and abstracts,
their length distributions, author names, category sets and the shape of every field. A Zipfian tail of
made-up words is mixed in so that the vocabulary keeps growing with N, as arXiv's does (hundreds of
thousands of distinct terms at full scale), instead of stopping at the few thousand words of the sample.
"""

from __future__ import annotations

import random
import re
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson

REAL_SNAPSHOT = (
    Path(__file__).resolve().parent.parent
    / "tests/fixtures/snapshot/arxiv-metadata-oai-snapshot.head200.jsonl"
)
_WORD = re.compile(r"\S+")
_SYLLABLES = [
    "ka",
    "lo",
    "mi",
    "ne",
    "ro",
    "ti",
    "sa",
    "vu",
    "zen",
    "qua",
    "ph",
    "ion",
    "tor",
    "ex",
    "gra",
    "lin",
    "morph",
    "cyt",
    "dyn",
    "lex",
]
_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def _rfc2822(d: datetime) -> str:
    return f"{_DAYS[d.weekday()]}, {d.day} {_MONTHS[d.month - 1]} {d.year} {d:%H:%M:%S} GMT"


class CorpusModel:
    def __init__(
        self, path: Path = REAL_SNAPSHOT, tail_words: int = 300_000, tail_share: float = 0.08, seed: int = 0
    ):
        records = [orjson.loads(line) for line in path.read_bytes().splitlines() if line.strip()]
        words: Counter[str] = Counter()
        self.title_lengths, self.abstract_lengths, self.author_counts = [], [], []
        self.categories, self.surnames, self.forenames, self.comments = [], [], [], []
        for r in records:
            t, a = _WORD.findall(r["title"]), _WORD.findall(r["abstract"])
            words.update(t)
            words.update(a)
            self.title_lengths.append(len(t))
            self.abstract_lengths.append(len(a))
            self.author_counts.append(len(r["authors_parsed"]))
            self.categories.append(r["categories"])
            self.comments.append(r.get("comments"))
            for entry in r["authors_parsed"]:
                self.surnames.append(entry[0])
                self.forenames.append(entry[1])
        self.rng = random.Random(seed)
        real = words.most_common()
        real_total = sum(c for _, c in real)
        tail_total = sum(1.0 / (i + 1) for i in range(tail_words))
        # One population: the real words with their frequencies, then a Zipfian tail of made-up words
        # (word i has weight 1/(i+1)) holding `tail_share` of all draws.
        self.population = [w for w, _ in real] + [self._made_up(i) for i in range(tail_words)]
        weights = [(1 - tail_share) * c / real_total for _, c in real]
        weights += [tail_share / (i + 1) / tail_total for i in range(tail_words)]
        self.cum_weights = list(_cumulative(weights))

    def _made_up(self, i: int) -> str:
        rng = random.Random(i)
        return "".join(rng.choice(_SYLLABLES) for _ in range(rng.randint(2, 4))) + str(
            i % 97 if i % 5 == 0 else ""
        )

    def _words(self, n: int) -> list[str]:
        return self.rng.choices(self.population, cum_weights=self.cum_weights, k=n)

    def record(self, n: int) -> dict:
        """The n-th synthetic record (ids are unique and increasing with n)."""
        rng = self.rng
        # 9,999 papers a month keeps every id valid in both the 4-digit (to 1412) and 5-digit schemes.
        month_index, number = divmod(n, 9_999)
        year, month = 2007 + month_index // 12, month_index % 12 + 1
        width = 5 if year >= 2015 else 4
        paper_id = f"{year % 100:02d}{month:02d}.{number + 1:0{width}d}"
        created = datetime(
            year,
            month,
            rng.randint(1, 28),
            rng.randint(0, 23),
            rng.randint(0, 59),
            rng.randint(0, 59),
            tzinfo=UTC,
        )
        versions = [{"version": "v1", "created": _rfc2822(created)}]
        for v in range(2, 1 + rng.choice((1, 1, 1, 2, 3))):
            versions.append({"version": f"v{v}", "created": _rfc2822(created + timedelta(days=30 * v))})
        n_authors = rng.choice(self.author_counts)
        authors_parsed = [
            [rng.choice(self.surnames), rng.choice(self.forenames), ""] for _ in range(n_authors)
        ]
        title = " ".join(self._words(rng.choice(self.title_lengths)))
        abstract_words = self._words(rng.choice(self.abstract_lengths))
        # Hard-wrap like arXiv does, so parsing does the same work as on real lines.
        lines, line = [], []
        for w in abstract_words:
            line.append(w)
            if sum(len(x) + 1 for x in line) > 76:
                lines.append(" ".join(line))
                line = []
        lines.append(" ".join(line))
        return {
            "id": paper_id,
            "submitter": authors_parsed[0][1] + " " + authors_parsed[0][0] if authors_parsed else None,
            "authors": ", ".join(f"{a[1]} {a[0]}" for a in authors_parsed),
            "title": title,
            "comments": rng.choice(self.comments),
            "journal-ref": None,
            "doi": None,
            "report-no": None,
            "categories": rng.choice(self.categories),
            "license": None,
            "abstract": "  " + "\n".join(lines) + "\n",
            "versions": versions,
            "update_date": (created + timedelta(days=40)).date().isoformat(),
            "authors_parsed": authors_parsed,
        }

    def lines(self, count: int, start: int = 0) -> Iterator[bytes]:
        for n in range(start, start + count):
            yield orjson.dumps(self.record(n)) + b"\n"


def _cumulative(values: list[float]) -> Iterator[float]:
    total = 0.0
    for v in values:
        total += v
        yield total


def write_snapshot(path: Path, count: int, seed: int = 0) -> Path:
    model = CorpusModel(seed=seed)
    with open(path, "wb") as f:
        for line in model.lines(count):
            f.write(line)
    return path
