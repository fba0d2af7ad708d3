"""The store: every read and write of the catalogue goes through :class:`Store`."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

import orjson
from sqlalchemy import Engine, func, select, update

from paperwire.models import Author, Paper, Tombstone
from paperwire.store.engine import create_store_engine, migrate, write_engine
from paperwire.store.merge import content_hash, merge
from paperwire.store.schema import papers, sequences, sync_state

_SEQ_NAME = "papers"
# SQLite allows 32,766 bound parameters per statement; stay far below it for IN (...) lists.
_IN_CHUNK = 900


@dataclass(slots=True)
class StoredPaper(Paper):
    change_seq: int = 0
    deleted: bool = False


@dataclass
class ApplyResult:
    imported: int = 0
    updated: int = 0
    unchanged: int = 0
    deleted: int = 0

    def add(self, other: ApplyResult) -> None:
        self.imported += other.imported
        self.updated += other.updated
        self.unchanged += other.unchanged
        self.deleted += other.deleted


@dataclass
class _Slot:
    """What one id looks like while a batch is applied."""

    paper: Paper | None
    deleted: bool
    stored_hash: str | None  # None when the id is not in the store yet
    stored_deleted: bool = False
    hash: str | None = None
    seq: int = 0


@dataclass
class CatalogueStats:
    papers: int
    deleted: int
    last_change_seq: int
    newest_published: datetime | None
    by_category: list[tuple[str, int]] = field(default_factory=list)
    states: dict[str, dict] = field(default_factory=dict)


def _utc(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Store:
    def __init__(self, engine: Engine):
        self.engine = engine
        self._writer = write_engine(engine)

    @classmethod
    def open(cls, url: str, *, run_migrations: bool = True) -> Store:
        engine = create_store_engine(url)
        if run_migrations:
            migrate(engine)
        return cls(engine)

    def close(self) -> None:
        self.engine.dispose()

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    # -- writes ---------------------------------------------------------------------------------------

    def apply(self, items: Sequence[Paper | Tombstone]) -> ApplyResult:
        """Upsert papers and apply deletions in one transaction; returns what happened per record."""
        result = ApplyResult()
        if not items:
            return result
        with self._writer.begin() as conn:
            # The counter row lock serialises writers (SQLite's BEGIN IMMEDIATE already does), so ids
            # read below cannot be inserted by someone else before we commit.
            seq = conn.execute(
                select(sequences.c.value).where(sequences.c.name == _SEQ_NAME).with_for_update()
            ).scalar_one()
            ids = list(dict.fromkeys(item.id for item in items))
            slots: dict[str, _Slot] = {}
            for i in range(0, len(ids), _IN_CHUNK):
                for row in conn.execute(select(papers).where(papers.c.id.in_(ids[i : i + _IN_CHUNK]))):
                    slots[row.id] = _Slot(
                        paper=_row_to_paper(row),
                        deleted=row.deleted,
                        stored_hash=row.content_hash,
                        stored_deleted=row.deleted,
                        hash=row.content_hash,
                    )
            for item in items:
                slot = slots.get(item.id)
                if isinstance(item, Tombstone):
                    if slot is None or slot.deleted:
                        result.unchanged += 1
                    else:
                        slot.deleted = True
                        result.deleted += 1
                    continue
                item.published, item.updated = _utc(item.published), _utc(item.updated)
                if slot is None:
                    slots[item.id] = _Slot(paper=item, deleted=False, stored_hash=None, hash=content_hash(item))
                    result.imported += 1
                    continue
                merged = merge(slot.paper, item)
                new_hash = slot.hash if merged is slot.paper else content_hash(merged)
                if new_hash == slot.hash and not slot.deleted:
                    result.unchanged += 1
                    continue
                slot.paper, slot.hash, slot.deleted = merged, new_hash, False
                result.updated += 1

            inserts, updates = [], []
            for slot in slots.values():
                if slot.paper is None:
                    continue
                if slot.stored_hash is None:
                    seq += 1
                    inserts.append(_paper_to_row(slot.paper, slot.hash, slot.deleted, seq))
                elif slot.hash != slot.stored_hash or slot.deleted != slot.stored_deleted:
                    seq += 1
                    row = _paper_to_row(slot.paper, slot.hash, slot.deleted, seq)
                    row["b_id"] = row.pop("id")
                    updates.append(row)
            if inserts:
                conn.execute(papers.insert(), inserts)
            if updates:
                stmt = (
                    update(papers)
                    .where(papers.c.id == _bind("b_id"))
                    .values({c: _bind(c) for c in updates[0] if c != "b_id"})
                )
                conn.execute(stmt, updates)
            if inserts or updates:
                conn.execute(update(sequences).where(sequences.c.name == _SEQ_NAME).values(value=seq))
        return result

    def set_state(self, name: str, value: dict) -> None:
        now = datetime.now(UTC)
        doc = orjson.dumps(value).decode()
        with self._writer.begin() as conn:
            updated = conn.execute(
                update(sync_state).where(sync_state.c.name == name).values(value=doc, updated_at=now)
            ).rowcount
            if not updated:
                conn.execute(sync_state.insert().values(name=name, value=doc, updated_at=now))

    def delete_state(self, name: str) -> None:
        with self._writer.begin() as conn:
            conn.execute(sync_state.delete().where(sync_state.c.name == name))

    # -- reads ----------------------------------------------------------------------------------------

    def get(self, paper_id: str, *, include_deleted: bool = False) -> StoredPaper | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(papers).where(papers.c.id == paper_id)).first()
        if row is None or (row.deleted and not include_deleted):
            return None
        return _row_to_paper(row)

    def get_many(self, ids: Iterable[str]) -> dict[str, StoredPaper]:
        ids = list(ids)
        found: dict[str, StoredPaper] = {}
        with self.engine.connect() as conn:
            for i in range(0, len(ids), _IN_CHUNK):
                stmt = select(papers).where(papers.c.id.in_(ids[i : i + _IN_CHUNK]), papers.c.deleted.is_(False))
                for row in conn.execute(stmt):
                    found[row.id] = _row_to_paper(row)
        return found

    def count(self) -> int:
        with self.engine.connect() as conn:
            return conn.execute(select(func.count()).select_from(papers).where(papers.c.deleted.is_(False))).scalar_one()

    def last_change_seq(self) -> int:
        with self.engine.connect() as conn:
            return conn.execute(select(sequences.c.value).where(sequences.c.name == _SEQ_NAME)).scalar_one()

    def changes_since(self, seq: int, limit: int = 1000) -> list[StoredPaper]:
        """Rows changed after ``seq`` in change order, deleted ones included (indexes must drop them)."""
        stmt = select(papers).where(papers.c.change_seq > seq).order_by(papers.c.change_seq).limit(limit)
        with self.engine.connect() as conn:
            return [_row_to_paper(row) for row in conn.execute(stmt)]

    def newest(self, limit: int = 20, offset: int = 0) -> list[StoredPaper]:
        stmt = (
            select(papers)
            .where(papers.c.deleted.is_(False))
            .order_by(papers.c.published.desc().nulls_last(), papers.c.id.desc())
            .limit(limit)
            .offset(offset)
        )
        with self.engine.connect() as conn:
            return [_row_to_paper(row) for row in conn.execute(stmt)]

    def get_state(self, name: str) -> dict | None:
        with self.engine.connect() as conn:
            value = conn.execute(select(sync_state.c.value).where(sync_state.c.name == name)).scalar()
        return orjson.loads(value) if value is not None else None

    def stats(self, top_categories: int = 15) -> CatalogueStats:
        live = papers.c.deleted.is_(False)
        with self.engine.connect() as conn:
            total = conn.execute(select(func.count()).select_from(papers).where(live)).scalar_one()
            deleted = conn.execute(select(func.count()).select_from(papers).where(~live)).scalar_one()
            newest = conn.execute(select(func.max(papers.c.published)).where(live)).scalar()
            n = func.count().label("n")
            by_cat = conn.execute(
                select(papers.c.primary_category, n)
                .where(live)
                .group_by(papers.c.primary_category)
                .order_by(n.desc(), papers.c.primary_category)
                .limit(top_categories)
            ).all()
            states = {r.name: orjson.loads(r.value) for r in conn.execute(select(sync_state))}
        if isinstance(newest, str):  # SQLite returns max() of a DateTime column as text
            newest = datetime.fromisoformat(newest)
        return CatalogueStats(
            papers=total,
            deleted=deleted,
            last_change_seq=self.last_change_seq(),
            newest_published=_utc(newest),
            by_category=[(c or "(none)", k) for c, k in by_cat],
            states=states,
        )


def _bind(name: str):
    from sqlalchemy import bindparam

    return bindparam(name)


def _paper_to_row(p: Paper, digest: str | None, deleted: bool, seq: int) -> dict:
    return {
        "id": p.id,
        "version": p.version,
        "title": p.title,
        "abstract": p.abstract,
        "authors": orjson.dumps([a.to_json() for a in p.authors]).decode(),
        "categories": " ".join(p.categories),
        "primary_category": p.primary_category,
        "published": p.published,
        "updated": p.updated,
        "metadata_date": p.metadata_date,
        "comments": p.comments,
        "journal_ref": p.journal_ref,
        "doi": p.doi,
        "report_no": p.report_no,
        "license": p.license,
        "source": p.source,
        "deleted": deleted,
        "content_hash": digest,
        "change_seq": seq,
    }


def _row_to_paper(row) -> StoredPaper:  # noqa: ANN001
    return StoredPaper(
        id=row.id,
        version=row.version,
        title=row.title,
        abstract=row.abstract,
        authors=[Author(a["name"], a.get("affiliation")) for a in orjson.loads(row.authors)],
        categories=row.categories.split() if row.categories else [],
        published=_utc(row.published),
        updated=_utc(row.updated),
        metadata_date=row.metadata_date,
        comments=row.comments,
        journal_ref=row.journal_ref,
        doi=row.doi,
        report_no=row.report_no,
        license=row.license,
        source=row.source,
        change_seq=row.change_seq,
        deleted=row.deleted,
    )
