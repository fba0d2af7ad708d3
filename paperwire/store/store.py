"""The store: every read and write of the catalogue goes through :class:`Store`."""

from __future__ import annotations

from collections import namedtuple
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime

import orjson
from sqlalchemy import Engine, Row, func, select, update

from paperwire.models import Author, Paper, Tombstone
from paperwire.store.engine import create_store_engine, migrate, write_engine
from paperwire.store.merge import content_hash, merge
from paperwire.store.prepared import (
    DIGEST,
    PREPARED_COLUMNS,
    PUBLISHED,
    UPDATED,
    PreparedRow,
    paper_from_prepared,
    parse_time_text,
    prepare,
)
from paperwire.store.schema import papers, sequences, sync_state

_SEQ_NAME = "papers"
# Prepared-row columns, then what the store adds.
_ROW_COLUMNS = (*PREPARED_COLUMNS[:DIGEST], "deleted", "content_hash", "change_seq")
# SQLite allows 32,766 bound parameters per statement; stay far below it for IN (...) lists.
_IN_CHUNK = 900
# What get_many reads, in this order (_DriverRow).
_PAPER_COLUMNS = (
    "id", "version", "title", "abstract", "authors", "categories", "primary_category", "published",
    "updated", "metadata_date", "comments", "journal_ref", "doi", "report_no", "license", "source",
    "deleted", "change_seq", "trending_score", "upvotes", "external_upvotes", "hidden",
)  # fmt: skip
_DriverRow = namedtuple("_DriverRow", _PAPER_COLUMNS)
_SELECT_PAPERS_BY_ID = f"SELECT {', '.join(_PAPER_COLUMNS)} FROM papers WHERE id"


@dataclass(slots=True)
class StoredPaper(Paper):
    change_seq: int = 0
    deleted: bool = False
    trending_score: float = 0.0
    upvotes: int = 0  # votes of this instance's users (always equal to their rows in `votes`)
    external_upvotes: int = 0  # votes counted elsewhere (an imported Hugging Face list)
    hidden: bool = False  # an admin hid it: not in lists or search, still in the store

    @property
    def votes(self) -> int:
        """What a page shows as the paper's upvotes."""
        return self.upvotes + self.external_upvotes


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

    paper: Paper | None  # decoded form, when a merge needed it
    row: PreparedRow | None  # prepared form, when the record arrived prepared and was not merged
    deleted: bool
    stored_hash: str | None  # None when the id is not in the store yet
    stored_deleted: bool
    hash: str


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
        self._sqlite = engine.dialect.name == "sqlite"
        # The bulk path talks to the driver directly: SQLAlchemy's per-row parameter processing
        # costs as much as SQLite's own work at snapshot-import rates.
        mark = "?" if engine.dialect.paramstyle == "qmark" else "%s"
        self._insert_sql = (
            f"INSERT INTO papers ({', '.join(_ROW_COLUMNS)}) VALUES ({', '.join(mark for _ in _ROW_COLUMNS)})"
        )
        self._update_sql = (
            f"UPDATE papers SET {', '.join(f'{c} = {mark}' for c in _ROW_COLUMNS[1:])} WHERE id = {mark}"
        )
        self._in_sqls: dict[tuple[str, int, str], str] = {}

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

    def apply(self, items: Sequence[Paper | Tombstone | PreparedRow]) -> ApplyResult:
        """Upsert papers and apply deletions in one transaction; returns what happened per record.

        Papers may come already prepared (see :mod:`paperwire.store.prepared`)."""
        result = ApplyResult()
        if not items:
            return result
        # (id, prepared row) for papers, (id, None) for tombstones.
        entries: list[tuple[str, PreparedRow | None]] = []
        for item in items:
            if isinstance(item, Tombstone):
                entries.append((item.id, None))
            else:
                row = item if isinstance(item, list) else prepare(item)
                entries.append((row[0], row))
        with self._writer.begin() as conn:
            # The counter row lock serialises writers (SQLite's BEGIN IMMEDIATE already does), so ids
            # read below cannot be inserted by someone else before we commit.
            seq = conn.execute(
                select(sequences.c.value).where(sequences.c.name == _SEQ_NAME).with_for_update()
            ).scalar_one()
            stored: dict[str, tuple[str, bool]] = {}
            for chunk in _chunks(list(dict.fromkeys(pid for pid, _ in entries))):
                stmt = select(papers.c.id, papers.c.content_hash, papers.c.deleted).where(
                    papers.c.id.in_(chunk)
                )
                stored.update((r.id, (r.content_hash, r.deleted)) for r in conn.execute(stmt))
            # Re-imports are mostly identical records: recognise them by digest without decoding the row.
            need_rows = {
                pid
                for pid, row in entries
                if pid in stored and (row is None or row[DIGEST] != stored[pid][0] or stored[pid][1])
            }
            slots: dict[str, _Slot] = {}
            for chunk in _chunks(list(need_rows)):
                for r in conn.execute(select(papers).where(papers.c.id.in_(chunk))):
                    slots[r.id] = _Slot(
                        _row_to_paper(r), None, r.deleted, r.content_hash, r.deleted, r.content_hash
                    )
            for pid, row in entries:
                slot = slots.get(pid)
                if slot is None and pid in stored:
                    result.unchanged += 1  # identical to the stored, live row
                elif row is None:
                    if slot is None or slot.deleted:
                        result.unchanged += 1
                    else:
                        slot.deleted = True
                        result.deleted += 1
                elif slot is None:
                    slots[pid] = _Slot(None, row, False, None, False, row[DIGEST])
                    result.imported += 1
                elif self._merge_into(slot, row):
                    result.updated += 1
                else:
                    result.unchanged += 1

            inserts, updates = [], []
            for pid, slot in slots.items():
                if slot.stored_hash is None:
                    seq += 1
                    inserts.append(self._db_values(slot, seq))
                elif slot.hash != slot.stored_hash or slot.deleted != slot.stored_deleted:
                    seq += 1
                    updates.append((*self._db_values(slot, seq)[1:], pid))
            if inserts:
                conn.exec_driver_sql(self._insert_sql, inserts)
            if updates:
                conn.exec_driver_sql(self._update_sql, updates)
            if inserts or updates:
                conn.execute(update(sequences).where(sequences.c.name == _SEQ_NAME).values(value=seq))
        return result

    @staticmethod
    def _merge_into(slot: _Slot, row: PreparedRow) -> bool:
        """Merge an incoming record into the slot; True when the slot's content changed."""
        old = slot.paper if slot.paper is not None else paper_from_prepared(slot.row)
        new = paper_from_prepared(row)
        merged = merge(old, new)
        if merged is old:
            new_hash = slot.hash
        elif merged is new:
            new_hash = row[DIGEST]
        else:
            new_hash = content_hash(merged)
        if new_hash == slot.hash and not slot.deleted:
            return False
        slot.paper, slot.row, slot.hash, slot.deleted = merged, None, new_hash, False
        return True

    def _db_values(self, slot: _Slot, seq: int) -> tuple:
        row = slot.row if slot.row is not None else prepare(slot.paper)
        values = row[:DIGEST]
        if not self._sqlite:
            values[PUBLISHED] = parse_time_text(values[PUBLISHED])
            values[UPDATED] = parse_time_text(values[UPDATED])
        return (*values, slot.deleted, slot.hash, seq)

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

    def get_many(self, ids: Iterable[str], *, include_hidden: bool = False) -> dict[str, StoredPaper]:
        """The papers among ``ids`` that exist and are not deleted, by id. Every search hit, nearest
        neighbour and list entry is read here. Hidden papers are left out (get() still returns them)."""
        no = "0" if self._sqlite else "false"  # how each stores a false boolean
        where = f" AND deleted = {no}" + ("" if include_hidden else f" AND hidden = {no}")
        rows = self.rows_in(_SELECT_PAPERS_BY_ID, list(ids), where)
        return {row[0]: self._driver_row_to_paper(row) for row in rows}

    def ids_by_doi(self, dois: Iterable[str]) -> dict[str, list[str]]:
        """Lower-cased DOI -> the ids of the papers (not deleted) that carry it, for each of ``dois`` that
        some paper does (a conference's DOI may be shared by several)."""
        wanted = sorted({d.lower() for d in dois})
        if not wanted:
            return {}
        found: dict[str, list[str]] = {}
        query = (
            select(func.lower(papers.c.doi), papers.c.id)
            .where(func.lower(papers.c.doi).in_(wanted), papers.c.deleted.is_(False))
            .order_by(papers.c.id)
        )
        with self.engine.connect() as conn:
            for doi, paper_id in conn.execute(query):
                found.setdefault(doi, []).append(paper_id)
        return found

    def rows_in(self, select_where: str, ids: list[str], rest: str = "") -> list[tuple]:
        """The rows of ``{select_where} IN (ids){rest}`` (SQL text, ids bound), in chunks, as the driver
        returns them. For the reads every search page makes: on the driver's own cursor, with one SQL
        text per chunk size, because SQLAlchemy's compiling of an expanding IN and its row processing
        cost four times SQLite's own work for a page of ten papers."""
        if not ids:
            return []
        rows: list[tuple] = []
        with self.engine.connect() as conn:
            cursor = conn.connection.driver_connection.cursor()
            try:
                for chunk in _chunks(ids):
                    key = (select_where, len(chunk), rest)
                    sql = self._in_sqls.get(key)
                    if sql is None:
                        mark = "?" if self._sqlite else "%s"
                        sql = self._in_sqls[key] = (
                            f"{select_where} IN ({', '.join([mark] * len(chunk))}){rest}"
                        )
                    cursor.execute(sql, chunk)
                    rows.extend(cursor.fetchall())
            finally:
                cursor.close()
        return rows

    def driver_time(self, value: datetime | str | None) -> datetime | None:
        """A timestamp column as the driver returns it, in UTC (SQLite gives the text SQLAlchemy wrote)."""
        return parse_time_text(value) if self._sqlite else _utc(value)

    def _driver_row_to_paper(self, row: tuple) -> StoredPaper:
        """A row of ``_PAPER_COLUMNS`` as the driver returns it (SQLite: timestamps as the text SQLAlchemy
        wrote, booleans as 0/1), made into what SQLAlchemy's rows give ``_row_to_paper``."""
        r = _DriverRow._make(row)
        return _row_to_paper(
            r._replace(
                published=self.driver_time(r.published),
                updated=self.driver_time(r.updated),
                deleted=bool(r.deleted),
                hidden=bool(r.hidden),
            )
        )

    def count(self) -> int:
        with self.engine.connect() as conn:
            return conn.execute(
                select(func.count()).select_from(papers).where(papers.c.deleted.is_(False))
            ).scalar_one()

    def last_change_seq(self) -> int:
        with self.engine.connect() as conn:
            return conn.execute(select(sequences.c.value).where(sequences.c.name == _SEQ_NAME)).scalar_one()

    def changes_since(self, seq: int, limit: int = 1000) -> list[StoredPaper]:
        """Rows changed after ``seq`` in change order, deleted ones included (indexes must drop them)."""
        stmt = select(papers).where(papers.c.change_seq > seq).order_by(papers.c.change_seq).limit(limit)
        with self.engine.connect() as conn:
            return [_row_to_paper(row) for row in conn.execute(stmt)]

    def iter_versions(self, chunk: int = 10_000) -> Iterator[Row]:
        """``(id, change_seq, deleted)`` of every paper, newest ``published`` first (undated last),
        streamed ``chunk`` rows at a time: what derived indexes compare their own state against."""
        stmt = (
            select(papers.c.id, papers.c.change_seq, papers.c.deleted)
            .order_by(papers.c.published.desc().nulls_last(), papers.c.id.desc())
            .execution_options(yield_per=chunk)
        )
        with self.engine.connect() as conn:
            yield from conn.execute(stmt)

    def newest_published_day(self) -> date | None:
        """The publication day of the newest paper (max() over the indexed column: no sort of the table)."""
        with self.engine.connect() as conn:
            newest = conn.execute(
                select(func.max(papers.c.published)).where(papers.c.deleted.is_(False))
            ).scalar()
        if isinstance(newest, str):  # SQLite returns max() of a DateTime column as text
            newest = datetime.fromisoformat(newest)
        return _utc(newest).date() if newest else None

    def ids_published_since(self, since: datetime, limit: int = 50_000) -> list[str]:
        """Live, visible papers published at or after ``since``, newest first (a digest's window)."""
        stmt = (
            select(papers.c.id)
            .where(papers.c.published >= _utc(since), papers.c.deleted.is_(False), papers.c.hidden.is_(False))
            .order_by(papers.c.published.desc(), papers.c.id.desc())
            .limit(limit)
        )
        with self.engine.connect() as conn:
            return list(conn.execute(stmt).scalars())

    def newest(self, limit: int = 20, offset: int = 0) -> list[StoredPaper]:
        """The newest live papers; hidden ones are left out (an admin hid them from every list)."""
        stmt = (
            select(papers)
            .where(papers.c.deleted.is_(False), papers.c.hidden.is_(False))
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


def _chunks(ids: list[str]) -> Iterable[list[str]]:
    for i in range(0, len(ids), _IN_CHUNK):
        yield ids[i : i + _IN_CHUNK]


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
        trending_score=row.trending_score,
        upvotes=row.upvotes,
        external_upvotes=row.external_upvotes,
        hidden=row.hidden,
    )
