"""Feed any source's items into the store in batches, with progress and a summary.

Each batch is one transaction, so a killed import leaves whole batches behind and a rerun (upserts are
idempotent) ends in exactly the state an uninterrupted run would have reached.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from paperwire.models import IngestItem, Paper, Rejected, Tombstone
from paperwire.progress import Progress
from paperwire.store import ApplyResult, Store

DEFAULT_BATCH = 5000
# Rejections kept in memory for the report; the count is always exact.
MAX_KEPT_REJECTIONS = 1000


@dataclass
class ImportSummary(ApplyResult):
    skipped: int = 0
    rejected: list[Rejected] = field(default_factory=list)

    @property
    def read(self) -> int:
        return self.imported + self.updated + self.unchanged + self.deleted + self.skipped

    @property
    def ok(self) -> int:
        return self.read - self.skipped

    def merge(self, other: ImportSummary) -> None:
        self.add(other)
        self.skipped += other.skipped
        room = MAX_KEPT_REJECTIONS - len(self.rejected)
        self.rejected.extend(other.rejected[: max(room, 0)])

    def line(self) -> str:
        text = (
            f"{self.imported:,} imported, {self.updated:,} updated, {self.unchanged:,} unchanged, "
            f"{self.skipped:,} skipped"
        )
        return text + (f", {self.deleted:,} deleted" if self.deleted else "")


def run_import(
    store: Store,
    items: Iterable[IngestItem],
    *,
    batch_size: int = DEFAULT_BATCH,
    progress: Progress | None = None,
    position: Callable[[], int] | None = None,
    on_reject: Callable[[Rejected], None] | None = None,
    finish_progress: bool = True,
) -> ImportSummary:
    """Apply ``items`` to ``store``. ``position`` reports bytes read so far, for the progress line;
    callers that import in several runs (page by page) pass ``finish_progress=False``."""
    summary = ImportSummary()
    batch: list[Paper | Tombstone] = []

    def flush() -> None:
        summary.add(store.apply(batch))
        batch.clear()
        if progress:
            progress.update(summary.read, position() if position else None)

    for item in items:
        if isinstance(item, Rejected):
            summary.skipped += 1
            if len(summary.rejected) < MAX_KEPT_REJECTIONS:
                summary.rejected.append(item)
            if on_reject:
                on_reject(item)
            continue
        batch.append(item)
        if len(batch) >= batch_size:
            flush()
    if batch:
        flush()
    if progress:
        progress.update(summary.read, position() if position else None)
        if finish_progress:
            progress.finish()
    return summary
