"""Build the bundled sample (paperwire/sample/papers.jsonl.gz) from the real recorded arXiv data in
tests/fixtures/ (itself copied from ../shared/data): snapshot lines, API responses (both Atom layouts)
and OAI-PMH records, parsed by paperwire's own ingest code and merged by the store's rules.

    python scripts/build_sample.py

arXiv metadata is CC0; see tests/fixtures/*/LICENSE* for where each recording came from.
"""

from __future__ import annotations

import contextlib
import gzip
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from paperwire.ingest.arxiv_api import ArxivAPIError, parse_feed  # noqa: E402
from paperwire.ingest.arxiv_oai import parse_oai_page  # noqa: E402
from paperwire.ingest.jsonl import write_jsonl_line  # noqa: E402
from paperwire.ingest.snapshot import SnapshotSource  # noqa: E402
from paperwire.models import Paper, Tombstone  # noqa: E402
from paperwire.store import Store  # noqa: E402

FIXTURES = ROOT / "tests" / "fixtures"
OUT = ROOT / "paperwire" / "sample" / "papers.jsonl.gz"


def records() -> list[Paper | Tombstone]:
    items: list[Paper | Tombstone] = []
    for path in sorted((FIXTURES / "arxiv-api").glob("*_xml/*.xml")):
        with contextlib.suppress(ArxivAPIError):  # the recorded error feed
            items += [i for i in parse_feed(path.read_bytes()).items if isinstance(i, Paper)]
    for path in sorted((FIXTURES / "arxiv-oai").rglob("*.xml")):
        prefix = "oai_dc" if "oai_dc" in path.parts else "arXiv"
        items += [i for i in parse_oai_page(path.read_bytes(), prefix).items if isinstance(i, Paper)]
    items += [
        i
        for i in SnapshotSource(FIXTURES / "snapshot" / "arxiv-metadata-oai-snapshot.head200.jsonl").items()
        if isinstance(i, Paper)
    ]
    return items


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        store = Store.open(f"sqlite:///{tmp}/sample.db")
        store.apply(records())
        papers = sorted(
            store.changes_since(0, limit=1_000_000),
            key=lambda p: (p.published or p.updated, p.id),
            reverse=True,
        )
        store.close()
    OUT.parent.mkdir(parents=True, exist_ok=True)
    # mtime=0 keeps the file byte-identical between builds of the same data.
    with open(OUT, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as out:
        for paper in papers:
            out.write(write_jsonl_line(paper))
    print(f"wrote {len(papers)} papers to {OUT.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
