"""The ``paperwire`` command line."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

import click
import orjson

from paperwire import __version__
from paperwire.config import SettingsError, get_settings
from paperwire.ingest.base import IngestError
from paperwire.ingest.runner import ImportSummary, run_import
from paperwire.models import Rejected
from paperwire.progress import Progress
from paperwire.store import Store, open_store

SAMPLE_PATH = Path(__file__).parent / "sample" / "papers.jsonl.gz"
# A Hugging Face daily list of sample papers with their upvotes, so the demo's front page is trending.
SAMPLE_DAILY_PATH = Path(__file__).parent / "sample" / "daily_papers.json"
# Rejections printed on the terminal; --rejects FILE keeps every one of them.
SHOWN_REJECTIONS = 20


def _fail(message: str, code: int = 1) -> None:
    click.echo(f"error: {message}", err=True)
    sys.exit(code)


def _store() -> Store:
    try:
        return open_store()
    except SettingsError as exc:
        _fail(str(exc), 2)
    except Exception as exc:  # an unreachable server or unwritable data dir must not end in a traceback
        _fail(f"cannot open the database ({get_settings().database_url}): {exc}")
    raise AssertionError("unreachable")


class RejectionReport:
    """Prints the first rejections as they happen and, if asked, writes all of them as JSONL."""

    def __init__(self, label: str, path: Path | None):
        self.label = label
        self.count = 0
        self._file = path.open("wb") if path else None

    def __call__(self, item: Rejected) -> None:
        self.count += 1
        if self.count <= SHOWN_REJECTIONS:
            # On a terminal, first clear the progress line this message interrupts.
            clear = "\r\x1b[K" if sys.stderr.isatty() else ""
            click.echo(f"{clear}skipped {self.label} {item.where}: {item.reason}", err=True)
        if self._file:
            self._file.write(orjson.dumps({"where": item.where, "reason": item.reason}) + b"\n")

    def close(self, rejects_path: Path | None) -> None:
        if self._file:
            self._file.close()
        if self.count > SHOWN_REJECTIONS:
            more = self.count - SHOWN_REJECTIONS
            hint = f"all are in {rejects_path}" if rejects_path else "use --rejects FILE to save them all"
            click.echo(f"... and {more:,} more skipped records ({hint})", err=True)


def _report(label: str, summary: ImportSummary, seconds: float) -> None:
    rate = summary.read / seconds if seconds > 0 else 0.0
    click.echo(f"{label}: {summary.line()} in {seconds:.1f}s ({rate:,.0f} records/s)")


def _import(
    label: str,
    make_source: Callable[[], object],
    rejects: Path | None,
    batch_size: int,
    quiet: bool,
    index: bool = True,
) -> None:
    store = _store()
    try:
        source = make_source()
    except IngestError as exc:
        _fail(str(exc))
    size = getattr(source, "size", None) or getattr(getattr(source, "file", None), "size", None)
    progress = Progress(f"importing {label}", total_bytes=size, enabled=None if not quiet else False)
    report = RejectionReport(label, rejects)
    started = time.monotonic()
    try:
        summary = run_import(
            store,
            source.items(),
            batch_size=batch_size,
            progress=progress,
            position=getattr(source, "position", None),
            on_reject=report,
        )
    except IngestError as exc:
        _fail(str(exc))
    finally:
        report.close(rejects)
        store.close()
    _report(f"Imported {label}", summary, time.monotonic() - started)
    if summary.ok == 0:
        _fail(
            f"nothing could be imported from {label}" + (" (no records found)" if not summary.skipped else "")
        )
    if index:
        _catch_up_index(quiet, vector_limit=get_settings().import_embed_limit)


def _catch_up_index(
    quiet: bool,
    rebuild: bool = False,
    *,
    vectors: bool = True,
    vector_limit: int | None = None,
    device: str | None = None,
) -> None:
    """Bring this node's search index up to the store: keywords (fast, all of it), then vectors, newest
    papers first, at most ``vector_limit`` of them (imports embed a few, `paperwire index` all)."""
    from paperwire.search.keyword import IndexBusy, KeywordIndex

    settings = get_settings()
    store = _store()
    try:
        index = KeywordIndex(settings.index_dir / "keyword")
        behind = store.last_change_seq() - (0 if rebuild else index.change_seq)
        progress = Progress("indexing", enabled=None if not quiet else False)
        started = time.monotonic()
        try:
            done = index.catch_up(store, rebuild=rebuild, on_progress=lambda n: progress.update(n))
        except IndexBusy as exc:
            _fail(f"{exc}; try again when it is done")
        progress.finish()
        seconds = time.monotonic() - started
        docs = index.read_state().get("docs", 0)
        if done or rebuild:
            verb = "Rebuilt" if rebuild else "Updated"
            click.echo(
                f"{verb} the search index: {done:,} changes in {seconds:.1f}s ({docs:,} papers searchable)"
            )
        elif behind <= 0:
            click.echo(f"The search index is up to date ({docs:,} papers searchable).")
        if vectors and vector_limit != 0:
            _embed(store, quiet, rebuild=rebuild, limit=vector_limit, device=device)
    finally:
        store.close()


def _embed(store: Store, quiet: bool, *, rebuild: bool, limit: int | None, device: str | None) -> None:
    """The embedding model's vectors, then the re-scoring model's (see PAPERWIRE_RESCORE_MODEL): they
    only re-score candidates, so they need no nearest-neighbour graph, and come second so that every
    paper is found by meaning before any is re-scored."""
    from paperwire.search.embeddings import ModelUnavailable

    settings = get_settings()
    _embed_with(store, quiet, settings.embedding_model, rebuild=rebuild, limit=limit, device=device)
    if settings.rescore_model:
        try:
            _embed_with(
                store, quiet, settings.rescore_model, rebuild=rebuild, limit=limit, device=device, graph=False
            )
        except ModelUnavailable as exc:
            # Search works without it (candidates keep the embedding model's order): say so, go on.
            click.echo(f"warning: re-scoring is off: {exc} (or set PAPERWIRE_RESCORE_MODEL=none)", err=True)


def _embed_with(
    store: Store,
    quiet: bool,
    model: str | None,
    *,
    rebuild: bool,
    limit: int | None,
    device: str | None,
    graph: bool = True,
) -> None:
    import shutil

    from paperwire.search.embed_job import embed_backlog
    from paperwire.search.embeddings import ModelUnavailable, get_embedder
    from paperwire.search.vectors import IndexLocked, VectorIndex, index_path

    settings = get_settings()
    try:
        embedder = get_embedder(model, device)
    except ValueError as exc:
        _fail(str(exc), 2)
    except ModelUnavailable as exc:
        if not graph:  # the re-scoring model: the caller decides
            raise
        _fail(str(exc), 2)
    path = index_path(embedder.name, settings.index_dir)
    if rebuild and path.exists():
        shutil.rmtree(path)
    progress = Progress(f"embedding ({embedder.name})", enabled=None if not quiet else False)
    added = 0
    try:
        with VectorIndex(path, embedder.dim, graph_min_rows=settings.vector_graph_min_rows) as vectors:
            summary = embed_backlog(
                store, vectors, embedder, limit=limit, progress=lambda done, total: progress.update(done)
            )
            progress.finish()
            started = time.monotonic()
            if graph:
                graph_progress = Progress(
                    "nearest-neighbour graph", unit="vectors", enabled=None if not quiet else False
                )
                added = vectors.update_graph(progress=lambda done, total: graph_progress.update(done))
                if added:
                    graph_progress.finish()
    except IndexLocked as exc:
        _fail(f"{exc}; another process is embedding: try again when it is done")
    if summary.embedded or summary.removed or summary.retagged:
        click.echo(
            f"Embedded {summary.embedded:,} papers with {embedder.name}"
            + (f" ({embedder.precision})" if embedder.precision else "")
            + ("" if graph else ", for re-scoring,")
            + f" in {summary.seconds:.1f}s "
            f"({summary.rate:,.1f} papers/s)" + (f", removed {summary.removed:,}" if summary.removed else "")
        )
    if added:
        click.echo(
            f"Added {added:,} vectors to the nearest-neighbour graph in {time.monotonic() - started:.1f}s"
        )
    if summary.pending:
        click.echo(
            f"{summary.pending:,} papers have no {embedder.name} vector yet: "
            + (
                "they are found by keywords; "
                if graph
                else "their candidates are ranked by the embedding model alone; "
            )
            + "`paperwire index` embeds them, newest first (--device cuda on a machine with a GPU)."
        )


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="paperwire")
def main() -> None:
    """paperwire: a research-paper discovery hub for arXiv.

    Settings come from PAPERWIRE_* environment variables; PAPERWIRE_DATA_DIR (default ./data) holds
    the SQLite database unless PAPERWIRE_DATABASE_URL names another (sqlite:// or postgresql://).
    """


# -- import ---------------------------------------------------------------------------------------------

_file_options = [
    click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path)),
    click.option(
        "--rejects",
        type=click.Path(dir_okay=False, path_type=Path),
        help="Write every skipped record (JSONL) here.",
    ),
    click.option(
        "--batch-size",
        default=5000,
        show_default=True,
        type=click.IntRange(1, 100_000),
        help="Records per transaction.",
    ),
    click.option("--quiet", "-q", is_flag=True, help="No progress line."),
    click.option(
        "--index/--no-index", default=True, show_default=True, help="Update the search index afterwards."
    ),
]


def _with_file_options(f):
    for option in reversed(_file_options):
        f = option(f)
    return f


@main.group("import")
def import_group() -> None:
    """Import papers from files (arXiv snapshot, JSONL, CSV, the bundled sample, Hugging Face daily lists)."""


@import_group.command("snapshot")
@_with_file_options
def import_snapshot(file: Path, rejects: Path | None, batch_size: int, quiet: bool, index: bool) -> None:
    """Import arXiv's metadata snapshot (arxiv-metadata-oai-snapshot.json, JSONL, also .gz).

    Streams the file: memory stays flat for any size. Re-importing changes nothing; a newer version
    of a paper replaces an older one, never the reverse.
    """
    import paperwire.ingest.snapshot  # noqa: F401  (registers the source)
    from paperwire.ingest.background import file_source

    _import(str(file), lambda: file_source("snapshot", file), rejects, batch_size, quiet, index)


@import_group.command("jsonl")
@_with_file_options
def import_jsonl(file: Path, rejects: Path | None, batch_size: int, quiet: bool, index: bool) -> None:
    """Import JSONL: one object a line, {"id", "title", "abstract", "authors": [str],
    "categories": [str], "published": "YYYY-MM-DD"}; only id and title are required."""
    import paperwire.ingest.jsonl  # noqa: F401  (registers the source)
    from paperwire.ingest.background import file_source

    _import(str(file), lambda: file_source("jsonl", file), rejects, batch_size, quiet, index)


@import_group.command("csv")
@_with_file_options
def import_csv(file: Path, rejects: Path | None, batch_size: int, quiet: bool, index: bool) -> None:
    """Import CSV with a header row naming the JSONL keys (authors separated by ';')."""
    from paperwire.ingest.jsonl import CsvSource

    _import(str(file), lambda: CsvSource(file), rejects, batch_size, quiet, index)


@import_group.command("sample")
@click.option("--quiet", "-q", is_flag=True, help="No progress line.")
@click.option(
    "--index/--no-index", default=True, show_default=True, help="Update the search index afterwards."
)
def import_sample(quiet: bool, index: bool) -> None:
    """Import the bundled sample of real arXiv papers and a daily list of them with upvotes (offline)."""
    from paperwire.ingest.hf_daily import import_file
    from paperwire.ingest.jsonl import JsonlSource

    _import("bundled sample", lambda: JsonlSource(SAMPLE_PATH), None, 2000, quiet, False)
    store = _store()
    try:
        result = import_file(store, SAMPLE_DAILY_PATH)
    finally:
        store.close()
    click.echo(f"Imported the sample daily list: {result.line()}")
    if index:
        _catch_up_index(quiet, vector_limit=get_settings().import_embed_limit)


@import_group.command("hf-daily")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--quiet", "-q", is_flag=True, help="No progress line.")
@click.option(
    "--index/--no-index", default=True, show_default=True, help="Update the search index afterwards."
)
def import_hf_daily(file: Path, quiet: bool, index: bool) -> None:
    """Import a Hugging Face daily papers list (a saved /api/daily_papers response, JSON).

    Papers the catalogue lacks are added from the list; papers it has keep their arXiv metadata. Each
    paper goes on the daily list of the day it was submitted to the Hub, with the Hub's upvotes counted
    for trending. Malformed items are skipped and reported; the rest import.
    """
    from paperwire.ingest.hf_daily import import_file

    store = _store()
    started = time.monotonic()
    try:
        result = import_file(store, file)
    except IngestError as exc:
        _fail(str(exc))
    finally:
        store.close()
    for item in result.skipped[:SHOWN_REJECTIONS]:
        click.echo(f"skipped {file} {item.where}: {item.reason}", err=True)
    if len(result.skipped) > SHOWN_REJECTIONS:
        click.echo(f"... and {len(result.skipped) - SHOWN_REJECTIONS:,} more skipped items", err=True)
    click.echo(f"Imported {file}: {result.line()} in {time.monotonic() - started:.1f}s")
    if result.read == 0:
        _fail(f"nothing could be imported from {file}" + (" (no items found)" if not result.skipped else ""))
    if index:
        _catch_up_index(quiet, vector_limit=get_settings().import_embed_limit)


# -- remote sources -------------------------------------------------------------------------------------


@main.group("harvest")
def harvest_group() -> None:
    """Harvest papers incrementally from arXiv's OAI-PMH service."""


@harvest_group.command("oai")
@click.option("--set", "set_spec", help="OAI set, e.g. cs, math, physics:hep-th.")
@click.option(
    "--from", "from_date", help="First datestamp (YYYY-MM-DD); default: where the last harvest ended."
)
@click.option("--until", help="Last datestamp (YYYY-MM-DD).")
@click.option(
    "--prefix", "metadata_prefix", type=click.Choice(["arXiv", "oai_dc"]), default="arXiv", show_default=True
)
@click.option("--quiet", "-q", is_flag=True, help="No progress line.")
@click.option(
    "--index/--no-index", default=True, show_default=True, help="Update the search index afterwards."
)
def harvest_oai_command(
    set_spec: str | None,
    from_date: str | None,
    until: str | None,
    metadata_prefix: str,
    quiet: bool,
    index: bool,
) -> None:
    """ListRecords with resumption tokens; resumes from the last harvested datestamp."""
    from paperwire.ingest.arxiv_oai import harvest_oai

    store = _store()
    started = time.monotonic()
    progress = Progress("harvesting", enabled=None if not quiet else False)
    try:
        result = harvest_oai(
            store,
            set_spec=set_spec,
            from_date=from_date,
            until=until,
            metadata_prefix=metadata_prefix,
            progress=progress,
        )
    except (IngestError, ValueError) as exc:
        _fail(str(exc))
    finally:
        store.close()
    for item in result.summary.rejected[:SHOWN_REJECTIONS]:
        click.echo(f"skipped {item.where}: {item.reason}", err=True)
    window = f"from {result.from_date or 'the beginning'}" + (
        f" until {result.until}" if result.until else ""
    )
    resumed = ", resumed an interrupted run" if result.resumed else ""
    _report(
        f"Harvested {set_spec or 'all sets'} {window} ({result.pages} pages{resumed})",
        result.summary,
        time.monotonic() - started,
    )
    if index:
        _catch_up_index(quiet, vector_limit=get_settings().import_embed_limit)


@main.group("fetch")
def fetch_group() -> None:
    """Fetch papers on demand from a remote service."""


@fetch_group.command("arxiv")
@click.option("--query", help="arXiv API search_query, e.g. 'ti:\"speculative decoding\" AND cat:cs.CL'.")
@click.option("--ids", help="Comma-separated arXiv ids (versions allowed): 2401.14040,hep-th/9901001v2.")
@click.option(
    "--max", "max_results", type=click.IntRange(1, 100_000), default=None, help="Stop after this many papers."
)
@click.option("--page-size", type=click.IntRange(1, 2000), default=100, show_default=True)
@click.option(
    "--sort-by",
    type=click.Choice(["relevance", "lastUpdatedDate", "submittedDate"]),
    default="submittedDate",
    show_default=True,
)
@click.option(
    "--sort-order", type=click.Choice(["ascending", "descending"]), default="descending", show_default=True
)
@click.option("--quiet", "-q", is_flag=True, help="No progress line.")
@click.option(
    "--index/--no-index", default=True, show_default=True, help="Update the search index afterwards."
)
def fetch_arxiv(
    query: str | None,
    ids: str | None,
    max_results: int | None,
    page_size: int,
    sort_by: str,
    sort_order: str,
    quiet: bool,
    index: bool,
) -> None:
    """Fetch papers through the arXiv API (Atom), page by page."""
    from paperwire.arxiv_ids import InvalidArxivId, parse_arxiv_id
    from paperwire.ingest.arxiv_api import ArxivAPISource

    if not query and not ids:
        _fail("give --query or --ids", 2)
    id_list = [i.strip() for i in (ids or "").split(",") if i.strip()]
    for raw in id_list:
        try:
            parse_arxiv_id(raw)
        except InvalidArxivId as exc:
            _fail(str(exc), 2)
    source = ArxivAPISource(
        query=query,
        ids=id_list or None,
        max_results=max_results,
        page_size=page_size,
        sort_by=sort_by,
        sort_order=sort_order,
    )
    store = _store()
    started = time.monotonic()
    report = RejectionReport("arXiv API", None)
    try:
        summary = run_import(
            store,
            source.items(),
            progress=Progress("fetching", enabled=None if not quiet else False),
            on_reject=report,
        )
    except IngestError as exc:
        _fail(str(exc))
    finally:
        report.close(None)
        store.close()
    total = f" of {source.total:,} matching" if source.total is not None else ""
    _report(f"Fetched {summary.read:,} papers{total} from the arXiv API", summary, time.monotonic() - started)
    if index:
        _catch_up_index(quiet, vector_limit=get_settings().import_embed_limit)


# -- inspection -----------------------------------------------------------------------------------------


@main.command()
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def stats(as_json: bool) -> None:
    """Counts: papers, by category, newest date, change sequence, harvest and index state, digest
    subscribers and the mail outbox."""
    from sqlalchemy.engine import make_url

    from paperwire.store import outbox as outbox_store
    from paperwire.store.engine import current_revision
    from paperwire.store.subscriptions import count_by_status

    store = _store()
    try:
        s = store.stats()
        revision = current_revision(store.engine)
        subscribers = count_by_status(store)
        mail = outbox_store.counts(store)
    finally:
        store.close()
    url = make_url(get_settings().database_url).render_as_string(hide_password=True)
    if as_json:
        doc = {
            "database": url,
            "schema_revision": revision,
            "papers": s.papers,
            "deleted": s.deleted,
            "newest_published": s.newest_published.isoformat() if s.newest_published else None,
            "last_change_seq": s.last_change_seq,
            "by_category": dict(s.by_category),
            "state": s.states,
            "indexes": _local_index_states(),
            "subscribers": subscribers,
            "outbox": mail,
        }
        click.echo(orjson.dumps(doc, option=orjson.OPT_INDENT_2).decode())
        return
    click.echo(f"Database:          {url} (schema {revision})")
    click.echo(f"Papers:            {s.papers:,}" + (f" ({s.deleted:,} deleted)" if s.deleted else ""))
    click.echo(f"Newest published:  {s.newest_published.date().isoformat() if s.newest_published else '-'}")
    click.echo(f"Change sequence:   {s.last_change_seq:,}")
    if s.by_category:
        click.echo("Primary categories:")
        width = max(len(c) for c, _ in s.by_category)
        for category, n in s.by_category:
            click.echo(f"  {category:<{width}}  {n:>9,}")
    harvests = {k: v for k, v in s.states.items() if k.startswith("harvest:")}
    indexes = _local_index_states()
    if harvests:
        click.echo("Harvests:")
        for name, state in sorted(harvests.items()):
            last = state.get("last_datestamp") or "-"
            pending = " (interrupted: will resume)" if state.get("token") else ""
            click.echo(f"  {name}: last datestamp {last}{pending}")
    if subscribers:
        order = ("active", "pending", "unsubscribed", "bounced")
        parts = [f"{subscribers[k]:,} {k}" for k in order if subscribers.get(k)]
        parts += [f"{n:,} {k}" for k, n in sorted(subscribers.items()) if k not in order]
        click.echo("Digest subscribers: " + ", ".join(parts))
    if mail:
        # What waits (pending, sending, handoff) is what an operator looks for first.
        order = ("pending", "sending", "handoff", "sent", "failed")
        parts = [f"{mail[k]:,} {k}" for k in order if mail.get(k)]
        parts += [f"{n:,} {k}" for k, n in sorted(mail.items()) if k not in order]
        click.echo("Mail outbox:        " + ", ".join(parts))
    click.echo(f"Indexes (this node, {get_settings().index_dir}):")
    if not indexes:
        click.echo("  none built yet (paperwire index)")
    for name, state in sorted(indexes.items()):
        if name.startswith("vectors/"):
            rows, covered = state["vectors"], state["graph"]
            if name == f"vectors/{get_settings().rescore_model}":
                how = "for re-scoring"
            else:
                how = f"the graph covers {covered:,}" if covered else "searched exactly (no graph)"
            click.echo(f"  {name}: {rows:,} vectors stored, {how}")
            continue
        seen = state.get("change_seq", 0)
        behind = s.last_change_seq - seen
        click.echo(
            f"  {name}: at change {seen:,}"
            + (f", {state['docs']:,} papers" if "docs" in state else "")
            + (f" ({behind:,} behind)" if behind > 0 else " (up to date)")
        )


@main.command("index")
@click.option("--rebuild", is_flag=True, help="Start over from the store instead of catching up.")
@click.option(
    "--vectors/--no-vectors", default=True, show_default=True, help="Also embed papers for semantic search."
)
@click.option(
    "--limit", type=click.IntRange(0), default=None, help="Embed at most this many papers (newest first)."
)
@click.option(
    "--device", default=None, help="Where to run the embedding model: cpu, cuda (default: cuda if available)."
)
@click.option("--quiet", "-q", is_flag=True, help="No progress line.")
def index_command(rebuild: bool, vectors: bool, limit: int | None, device: str | None, quiet: bool) -> None:
    """Bring this node's search index up to date with the store (incremental, idempotent, resumable):
    keywords for every paper, then vectors for semantic search, newest papers first."""
    _catch_up_index(quiet, rebuild=rebuild, vectors=vectors, vector_limit=limit, device=device)


@main.command("search")
@click.argument("query", default="")
@click.option(
    "--limit", "-n", default=10, show_default=True, type=click.IntRange(1, 100), help="Results per page."
)
@click.option("--page", default=1, show_default=True, type=click.IntRange(1, 10_000))
@click.option(
    "--mode", type=click.Choice(["hybrid", "keyword", "semantic"]), default="hybrid", show_default=True
)
@click.option(
    "--sort", type=click.Choice(["relevance", "date", "trending"]), default="relevance", show_default=True
)
@click.option(
    "--category",
    "categories",
    multiple=True,
    help="Only these categories (cs.CL, or cs.* for a whole archive).",
)
@click.option("--author", "authors", multiple=True, help="Only papers by this author.")
@click.option("--from", "date_from", help="Published on or after (YYYY-MM-DD).")
@click.option("--to", "date_to", help="Published on or before (YYYY-MM-DD).")
@click.option("--json", "as_json", is_flag=True, help="A JSON array of results.")
def search_command(
    query: str,
    limit: int,
    page: int,
    mode: str,
    sort: str,
    categories: tuple[str, ...],
    authors: tuple[str, ...],
    date_from: str | None,
    date_to: str | None,
    as_json: bool,
) -> None:
    """Search the catalogue: words (typos forgiven), "phrases", ti: au: abs: cat: all:, AND OR ANDNOT, wildcards."""
    from datetime import date

    from paperwire.search import Filters, QueryError, SearchEngine

    try:
        filters = Filters(
            published_from=date.fromisoformat(date_from) if date_from else None,
            published_to=date.fromisoformat(date_to) if date_to else None,
            categories=categories,
            authors=authors,
        )
    except ValueError as exc:
        _fail(f"bad date: {exc} (expected YYYY-MM-DD)", 2)
    engine = SearchEngine.open(_store())
    try:
        result = engine.search(query, filters, sort=sort, page=page, per_page=limit, mode=mode)
    except QueryError as exc:
        _fail(str(exc), 2)
    finally:
        engine.store.close()
    if as_json:
        docs = [
            {
                "id": h.id,
                "title": h.title,
                "score": round(h.score, 4),
                "authors": [a.name for a in h.paper.authors],
                "categories": h.paper.categories,
                "published": h.paper.published.isoformat() if h.paper.published else None,
                "abstract": h.abstract,
                "title_highlighted": str(h.title_html),
                "abstract_snippet": str(h.abstract_html),
                "matched": h.matched,
            }
            for h in result.hits
        ]
        click.echo(orjson.dumps(docs, option=orjson.OPT_INDENT_2).decode())
        if result.not_found:  # standard output stays the JSON array
            click.echo(f"not in this catalogue: {', '.join(map(str, result.not_found))}", err=True)
        return
    _print_results(result)


def _print_results(result) -> None:  # noqa: ANN001
    import re

    bold = sys.stdout.isatty()

    def marked(html: str) -> str:
        # Terminal rendering of the highlighted HTML: <mark> becomes bold, entities are decoded.
        import html as html_lib

        text = re.sub(
            r"<mark>(.*?)</mark>", (lambda m: f"\x1b[1m{m.group(1)}\x1b[0m") if bold else r"\1", html
        )
        return html_lib.unescape(text)

    notes = []
    if result.fallback:
        notes.append("the query was read as plain words")
    if result.meaning_only:
        notes.append("no paper matches most of the words: ranked by closeness in meaning")
    elif result.relaxed:
        notes.append("not every word matched")
    if result.not_found:
        notes.append(f"not in this catalogue: {', '.join(map(str, result.not_found))}")
    first = (result.page - 1) * result.per_page + 1
    shown = f"{first:,}-{first + len(result.hits) - 1:,} of " if result.hits else ""
    click.echo(
        f"{shown}{result.total:,} results ({result.took_ms:.0f} ms)"
        + (f"; {', '.join(notes)}" if notes else "")
    )
    for n, hit in enumerate(result.hits, start=first):
        p = hit.paper
        year = f"{p.published:%Y-%m-%d}" if p.published else "-"
        click.echo(f"\n{n:>3}. {marked(str(hit.title_html))}")
        authors = ", ".join(a.name for a in p.authors[:5]) + (", et al." if len(p.authors) > 5 else "")
        click.echo(f"     arXiv:{p.id} · {year} · {' '.join(p.categories)} · {authors}")
        click.echo(f"     {marked(str(hit.abstract_html))}")


def _local_index_states() -> dict[str, dict]:
    """Watermarks of this node's derived indexes (they live beside the index, not in the shared store)."""
    from paperwire.search.graph import GraphReader, graph_path
    from paperwire.search.keyword import STATE_FILE

    states = {}
    path = get_settings().index_dir / "keyword" / STATE_FILE
    if path.exists():
        states["keyword"] = orjson.loads(path.read_bytes())
    # Vectors: what their manifest says was committed, and how many of those rows the graph covers.
    for manifest in sorted((get_settings().index_dir / "vectors").glob("*/manifest.json")):
        meta = orjson.loads(manifest.read_bytes())
        graph = GraphReader(graph_path(manifest.parent, meta["uid"]))
        graph.refresh()
        states[f"vectors/{manifest.parent.name}"] = {"vectors": meta["rows"], "graph": graph.covered}
    return states


@main.command()
@click.argument("paper_id")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def show(paper_id: str, as_json: bool) -> None:
    """Show one paper from the catalogue (any arXiv id form: 2401.14040v2, arXiv:..., a URL)."""
    from paperwire.arxiv_ids import InvalidArxivId, normalize_arxiv_id
    from paperwire.ingest.jsonl import write_jsonl_line

    try:
        canonical = normalize_arxiv_id(paper_id)
    except InvalidArxivId as exc:
        _fail(str(exc), 2)
    store = _store()
    try:
        paper = store.get(canonical)
    finally:
        store.close()
    if paper is None:
        _fail(f"{canonical} is not in the catalogue (try: paperwire fetch arxiv --ids {canonical})")
    if as_json:
        click.echo(write_jsonl_line(paper).decode().rstrip())
        return
    click.echo(f"{paper.title}\n")
    click.echo(f"arXiv:{paper.id}v{paper.version}  [{' '.join(paper.categories)}]")
    click.echo(", ".join(a.name + (f" ({a.affiliation})" if a.affiliation else "") for a in paper.authors))
    dates = f"published {paper.published:%Y-%m-%d}" if paper.published else "published -"
    if paper.updated and paper.updated != paper.published:
        dates += f", updated {paper.updated:%Y-%m-%d}"
    click.echo(dates)
    for label, value in (
        ("Comments", paper.comments),
        ("Journal", paper.journal_ref),
        ("DOI", paper.doi),
        ("Report", paper.report_no),
        ("License", paper.license),
    ):
        if value:
            click.echo(f"{label}: {value}")
    click.echo("\n" + paper.abstract)


@main.group("trending")
def trending_group() -> None:
    """The trending score (votes with time decay)."""


@trending_group.command("recompute")
def trending_recompute() -> None:
    """Recompute every paper's trending key from its votes, then bring the index up to date.

    Run it after changing PAPERWIRE_TRENDING_HALF_LIFE_HOURS: stored keys depend on the half-life.
    Safe while the site runs (small transactions) and idempotent (a second run changes nothing)."""
    from paperwire.search.keyword import IndexBusy, KeywordIndex
    from paperwire.store.votes import recompute_trending
    from paperwire.trending import half_life_hours

    store = _store()
    try:
        started = time.perf_counter()
        changed = recompute_trending(store)
        click.echo(
            f"Recomputed trending keys with a half-life of {half_life_hours():g} hours: "
            f"{changed:,} changed in {time.perf_counter() - started:.1f}s."
        )
        if not changed:
            return
        # Sorting by trending reads the keys from the index.
        try:
            done = KeywordIndex(get_settings().index_dir / "keyword").catch_up(store)
        except IndexBusy:
            click.echo(
                "The search index is being written by another process (a server): it catches up itself."
            )
            return
        click.echo(f"Updated the search index: {done:,} changes.")
    finally:
        store.close()


# -- accounts -------------------------------------------------------------------------------------------


@main.group("admin")
def admin_group() -> None:
    """Site administrators: they can hide papers. Anyone else signs in by e-mailed link on the site."""


def _admin_address(email: str) -> str:
    from paperwire.mail import InvalidAddress, normalize_address

    try:
        return normalize_address(email)
    except InvalidAddress as exc:
        _fail(str(exc), 2)
    raise AssertionError("unreachable")


@admin_group.command("grant")
@click.argument("email")
def admin_grant(email: str) -> None:
    """Make EMAIL an administrator (creating its account if there is none: it signs in by e-mailed link)."""
    from datetime import UTC, datetime

    from paperwire.store import accounts

    address = _admin_address(email)
    store = _store()
    try:
        user = accounts.set_admin(store, address, True, now=datetime.now(UTC))
    finally:
        store.close()
    assert user is not None
    click.echo(f"{user.email} is an administrator.")


@admin_group.command("revoke")
@click.argument("email")
def admin_revoke(email: str) -> None:
    """Take administrator rights away from EMAIL (the account stays)."""
    from datetime import UTC, datetime

    from paperwire.store import accounts

    address = _admin_address(email)
    store = _store()
    try:
        user = accounts.set_admin(store, address, False, now=datetime.now(UTC))
    finally:
        store.close()
    if user is None:
        _fail(f"there is no account for {address}")
    click.echo(f"{address} is no longer an administrator.")


@admin_group.command("list")
def admin_list() -> None:
    """Print the administrators' addresses."""
    from paperwire.store import accounts

    store = _store()
    try:
        admins = accounts.list_admins(store)
    finally:
        store.close()
    for user in admins:
        click.echo(user.email)
    if not admins:
        click.echo("No administrators (paperwire admin grant EMAIL makes one).", err=True)


# -- digests -------------------------------------------------------------------------------------------


def _parse_now(value: str | None):  # noqa: ANN202
    from datetime import UTC, datetime

    if not value:
        return datetime.now(UTC)
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        _fail(f"--now must be an ISO 8601 time like 2026-11-27T08:00:00+00:00, got {value!r}", 2)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _transport():  # noqa: ANN202
    from paperwire.mail import transport_from_settings

    try:
        return transport_from_settings(get_settings())
    except ValueError as exc:
        _fail(str(exc), 2)


def _digest_engine(store: Store):  # noqa: ANN202
    """This node's search engine, its keyword index first caught up with the store (topics must see the
    newest papers); a busy index (another process writing it) is used as it is."""
    import contextlib

    from paperwire.search.keyword import IndexBusy, KeywordIndex
    from paperwire.search.service import SearchEngine

    settings = get_settings()
    with contextlib.suppress(IndexBusy):
        KeywordIndex(settings.index_dir / "keyword").catch_up(store)
    return SearchEngine.open(store)


@main.group("digest")
def digest_group() -> None:
    """E-mail digests of trending papers and each subscriber's topics."""


@digest_group.command("run")
@click.option("--now", "now_text", help="Act as if it were this time (ISO 8601); default: now.")
@click.option("--deliver/--no-deliver", default=True, show_default=True, help="Send the queued mail too.")
@click.option("--quiet", "-q", is_flag=True, help="No progress line.")
def digest_run(now_text: str | None, deliver: bool, quiet: bool) -> None:
    """Send every digest due now (one-shot: run it from cron, or use `paperwire worker`).

    Safe to run again at any time, and by several processes at once: each subscriber gets each period's
    digest exactly once. Exits 75 when the mail server is unreachable (the mail waits in the outbox)."""
    from datetime import UTC, datetime

    from paperwire.digest.run import base_url, compose_due, run_digests
    from paperwire.store import outbox as outbox_store

    settings = get_settings()
    now = _parse_now(now_text)
    transport = _transport() if deliver else None
    if not settings.base_url:
        click.echo(
            f"note: PAPERWIRE_BASE_URL is not set; links in digests point to {base_url(settings)}", err=True
        )
    store = _store()
    try:
        engine = _digest_engine(store)
        progress = Progress("composing digests", unit="subscribers", enabled=None if not quiet else False)
        if transport is None:
            report = compose_due(
                store, engine, settings, now=now, on_batch=lambda r: progress.update(r.checked)
            )
            progress.finish()
            click.echo(f"Checked {report.checked:,} subscribers in {report.seconds:.1f}s: {report}.")
            return
        # --now shifts this run's clock: mail queued "at" that time is due on it.
        offset = now - datetime.now(UTC)
        report = run_digests(
            store,
            engine,
            settings,
            transport,
            now=now,
            on_batch=lambda r: progress.update(r.checked),
            clock_offset=offset,
            background=True,
        )
        progress.finish()
        delivery = report.delivery
        waiting = sum(
            n for status, n in outbox_store.counts(store).items() if status in ("pending", "sending")
        )
        click.echo(f"Checked {report.checked:,} subscribers: {report}.")
        click.echo(
            f"Delivered through {transport.description}: {delivery}"
            + (f"; {waiting:,} messages wait in the outbox for a retry" if waiting else "")
            + f" ({report.seconds:.1f}s in all)."
        )
        if delivery.server_down:
            sys.exit(75)  # EX_TEMPFAIL: cron and systemd see that something needs attention
    finally:
        store.close()


@digest_group.command("preview")
@click.argument("email")
@click.option("--now", "now_text", help="Act as if it were this time (ISO 8601); default: now.")
@click.option(
    "--html", "html_path", type=click.Path(dir_okay=False, path_type=Path), help="Save the HTML part."
)
@click.option(
    "--eml", "eml_path", type=click.Path(dir_okay=False, path_type=Path), help="Save the whole message."
)
def digest_preview(email: str, now_text: str | None, html_path: Path | None, eml_path: Path | None) -> None:
    """Print the digest EMAIL's subscriber would get now (nothing is sent or recorded)."""
    from email import message_from_bytes, policy

    from paperwire.digest.run import preview
    from paperwire.store.subscriptions import get_subscriber_by_email

    store = _store()
    try:
        subscriber = get_subscriber_by_email(store, _admin_address(email))
        if subscriber is None:
            _fail(f"{email} has no subscription (subscribe on the site or with POST /api/v1/subscriptions)")
        digest, raw = preview(
            store, _digest_engine(store), get_settings(), subscriber, now=_parse_now(now_text)
        )
    finally:
        store.close()
    message = message_from_bytes(raw, policy=policy.default)
    if eml_path:
        eml_path.write_bytes(raw)
    if html_path:
        html_path.write_text(message.get_body(("html",)).get_content(), encoding="utf-8")
    click.echo(f"Subject: {message['Subject']}")
    click.echo(f"To: {message['To']} ({subscriber.status}, {subscriber.frequency})\n")
    click.echo(message.get_body(("plain",)).get_content())
    if eml_path or html_path:
        click.echo("Saved " + " and ".join(str(p) for p in (eml_path, html_path) if p) + ".", err=True)


@main.command()
@click.option("--once", is_flag=True, help="Run every step once and exit.")
def worker(once: bool) -> None:
    """Harvest, index, send digests and retry mail on a schedule, until stopped (SIGTERM/Ctrl-C)."""
    import logging

    from paperwire.digest.run import run_digests
    from paperwire.mail import deliver_due
    from paperwire.worker import Job, Worker

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    settings = get_settings()
    transport = _transport()
    store = _store()

    def harvest() -> str:
        from paperwire.ingest.arxiv_oai import harvest_oai

        lines = []
        for set_spec in settings.harvest_sets:
            result = harvest_oai(store, set_spec=set_spec)
            lines.append(
                f"harvested {set_spec}: {result.summary.imported:,} new, {result.summary.updated:,} updated"
            )
        return "; ".join(lines)

    def index() -> str | None:
        from paperwire.search.keyword import IndexBusy, KeywordIndex

        try:
            done = KeywordIndex(settings.index_dir / "keyword").catch_up(store)
        except IndexBusy:
            return None
        if settings.import_embed_limit:
            _embed(store, True, rebuild=False, limit=settings.import_embed_limit, device=None)
        return f"indexed {done:,} changes" if done else None

    def digests() -> str | None:
        from paperwire.search.service import SearchEngine

        report = run_digests(store, SearchEngine.open(store), settings, transport, background=True)
        return f"{report}; mail: {report.delivery}" if report.due else None

    def mail() -> str | None:
        report = deliver_due(store, transport, settings.mail_from)
        return f"mail: {report}" if (report.sent or report.retried or report.failed) else None

    def prune() -> str | None:
        from datetime import UTC, datetime, timedelta

        from paperwire.store import outbox as outbox_store

        gone = outbox_store.prune(store, before=datetime.now(UTC) - timedelta(days=30))
        return f"deleted {gone:,} messages sent over 30 days ago from the outbox" if gone else None

    jobs = [
        Job("harvest", settings.harvest_minutes * 60 if settings.harvest_sets else 0, harvest),
        Job("index", max(settings.index_follow_seconds, 5.0), index),
        Job("digests", settings.digest_minutes * 60, digests),
        Job("mail", max(settings.mail_sweep_seconds, 1.0), mail),
        Job("prune", 86400.0, prune),
    ]
    click.echo(
        "paperwire worker: "
        + ", ".join(f"{j.name} every {j.every:g}s" if j.every else f"{j.name} off" for j in jobs)
        + f"; mail through {transport.description}"
    )
    try:
        Worker(
            jobs, on_result=lambda job, result: result and click.echo(f"{job.name}: {result}")
        ).run_forever(once=once)
    finally:
        store.close()
    click.echo("paperwire worker stopped.")


@main.command()
def migrate() -> None:
    """Create or upgrade the database schema (other commands do this on their own too)."""
    from paperwire.store.engine import current_revision

    store = _store()
    try:
        click.echo(f"Database schema is at revision {current_revision(store.engine)}.")
    finally:
        store.close()


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=click.IntRange(1, 65535))
@click.option(
    "--workers",
    default=1,
    show_default=True,
    type=click.IntRange(1, 64),
    help="Processes serving requests (one per core). They share this node's index; one of them keeps it current.",
)
@click.option("--access-log/--no-access-log", default=True, show_default=True)
def serve(host: str, port: int, workers: int, access_log: bool) -> None:
    """Serve the web pages and APIs on http://HOST:PORT."""
    import uvicorn

    store = _store()  # fail early, with a clear message, if the database cannot be opened
    store.close()
    shown = "localhost" if host in ("127.0.0.1", "0.0.0.0") else host
    click.echo(f"paperwire is serving on http://{shown}:{port} (API docs: http://{shown}:{port}/docs)")
    settings = get_settings()
    if settings.smtp_url:
        from paperwire.mail import SmtpTransport

        try:
            transport = SmtpTransport(settings.smtp_url)
        except ValueError as exc:
            _fail(str(exc), 2)
        click.echo(f"Mail (sign-in links) goes out through {transport.description}")
    else:
        click.echo(
            f"Mail (sign-in links) is written to the maildir {settings.maildir.resolve()}/new "
            "(set PAPERWIRE_SMTP_URL to send it)"
        )
    # Each worker embeds queries on its own, beside its keyword side: more model threads than its share
    # of the cores less one only makes them fight (serving_threads).
    from paperwire.search.embeddings import serving_threads

    os.environ.setdefault("PAPERWIRE_EMBED_THREADS", str(serving_threads(workers)))
    uvicorn.run(
        "paperwire.web.app:create_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level="info",
        access_log=access_log,
    )


if __name__ == "__main__":
    main()
