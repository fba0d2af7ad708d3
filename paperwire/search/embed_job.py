"""Keep a :class:`VectorIndex` in step with the store: embed what has no vector yet, newest papers first.

Each vector is tagged ``"<change_seq> <text digest> <recipe>"`` from the row it was computed from and the
way paper vectors were made (``PAPER_RECIPE``; tags without one are recipe 1). A paper needs work when its
``change_seq`` or the recipe differs from the tag's: if the embedded text (title + abstract) and the recipe
are unchanged (a journal-ref or DOI arrived) the tag is updated without encoding; otherwise the paper is
re-embedded.
Every batch is committed to the index as it is written, so a job killed at any moment, run again, embeds
only what is missing and ends with the index an uninterrupted run builds.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass

from paperwire.search.embeddings import PAPER_RECIPE, Embedder, paper_text
from paperwire.search.vectors import VectorIndex
from paperwire.store import Store

# Rows fetched per round trip while scanning the catalogue's (id, change_seq, deleted).
_SCAN_CHUNK = 10_000


@dataclass
class EmbedSummary:
    embedded: int = 0  # papers encoded and written (new or changed text)
    retagged: int = 0  # metadata changed, text did not: vector kept
    removed: int = 0  # vectors dropped: paper deleted or gone from the store
    pending: int = 0  # papers still to embed when ``limit`` stopped the run
    seconds: float = 0.0

    @property
    def rate(self) -> float:
        return self.embedded / self.seconds if self.seconds > 0 else 0.0


def text_digest(text: str) -> str:
    return hashlib.blake2b(text.encode(), digest_size=8).hexdigest()


def _tag(change_seq: int, digest: str) -> str:
    return f"{change_seq} {digest} {PAPER_RECIPE}"


def _parse_tag(tag: str | None) -> tuple[int, str, int]:
    """(change_seq, digest, recipe) of a tag; (-1, "", 0) when there is none (always stale)."""
    if not tag:
        return -1, "", 0
    seq, digest, recipe = [*tag.split(" "), "1"][:3]
    return int(seq), digest, int(recipe)


def _current(tag: str | None, change_seq: int) -> bool:
    seq, _, recipe = _parse_tag(tag)
    return seq == change_seq and recipe == PAPER_RECIPE


def embed_backlog(
    store: Store,
    index: VectorIndex,
    embedder: Embedder,
    *,
    batch_size: int = 64,
    limit: int | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> EmbedSummary:
    """Bring ``index`` up to date with ``store``: drop vectors of deleted papers, then embed papers with no
    vector or a stale one, newest first, ``batch_size`` at a time, at most ``limit`` of them.
    ``progress(done, total)`` is called after each batch."""
    started = time.monotonic()
    summary = EmbedSummary()
    if index.dim is not None and index.dim != embedder.dim:
        raise ValueError(f"index holds {index.dim}-d vectors, {embedder.name} makes {embedder.dim}-d")
    tags = index.tags()  # a live view, kept current by the index as we write
    todo: list[str] = []
    gone: list[str] = []
    matched = 0  # papers of the index met in the scan
    for row in store.iter_versions(_SCAN_CHUNK):
        tag = tags.get(row.id, "")
        if tag != "":
            matched += 1
        if row.deleted:
            if tag != "":
                gone.append(row.id)
        elif not _current(tag, row.change_seq):
            todo.append(row.id)
    if matched < len(tags):  # the index has ids the store never had (built from another store)
        missing = set(tags)
        for row in store.iter_versions(_SCAN_CHUNK):
            missing.discard(row.id)
        gone += sorted(missing)
    if gone:
        index.remove(gone)
        summary.removed += len(gone)

    if limit is not None and len(todo) > limit:
        summary.pending = len(todo) - limit
        todo = todo[:limit]
    done = 0
    for start in range(0, len(todo), batch_size):
        chunk = todo[start : start + batch_size]
        found = store.get_many(chunk)  # live papers only
        removed = [pid for pid in chunk if pid not in found]
        if removed:  # deleted since the scan
            before = len(index)
            index.remove(removed)
            summary.removed += before - len(index)
        new_ids, new_papers, new_tags, re_ids, re_tags = [], [], [], [], []
        for pid in chunk:
            paper = found.get(pid)
            if paper is None:
                continue
            text = paper_text(paper.title, paper.abstract)
            digest = text_digest(text)
            if pid in tags and _parse_tag(tags[pid])[1:] == (digest, PAPER_RECIPE):
                re_ids.append(pid)
                re_tags.append(_tag(paper.change_seq, digest))
            else:
                new_ids.append(pid)
                new_papers.append((paper.title, paper.abstract))
                new_tags.append(_tag(paper.change_seq, digest))
        if re_ids:
            index.retag(re_ids, re_tags)
            summary.retagged += len(re_ids)
        if new_ids:
            index.add(new_ids, embedder.encode_papers(new_papers, batch_size=batch_size), new_tags)
            summary.embedded += len(new_ids)
        done += len(chunk)
        if progress is not None:
            progress(done, len(todo))
    summary.seconds = time.monotonic() - started
    return summary
