"""A snapshot import killed with SIGKILL and run again ends in exactly the store an uninterrupted run builds.

Also: parsing in a child process (what big files get) and parsing inline give identical results.
"""

from __future__ import annotations

import contextlib
import gzip
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import orjson
import psutil
import pytest

from bench.synthetic import CorpusModel, write_snapshot
from paperwire.ingest.background import MIN_BACKGROUND_BYTES, file_source
from paperwire.ingest.runner import ImportSummary, run_import
from paperwire.models import Rejected
from paperwire.store import Store

RECORDS = 30_000
BATCH = 500
SNAPSHOT = Path(__file__).parent / "fixtures" / "snapshot" / "arxiv-metadata-oai-snapshot.head200.jsonl"
CLI = [sys.executable, "-m", "paperwire.cli"]
# How long the parser child may take to notice its parent is gone (it checks every second while blocked).
CHILD_EXIT_WITHIN = 5.0


def cli_env(db: Path) -> dict[str, str]:
    return {
        **os.environ,
        "PAPERWIRE_DATA_DIR": str(db.parent),
        "PAPERWIRE_DATABASE_URL": f"sqlite:///{db}",
    }


def import_cmd(path: Path) -> list[str]:
    # The store is what is tested here; the search index has tests of its own.
    return [*CLI, "import", "snapshot", str(path), "--batch-size", str(BATCH), "--quiet", "--no-index"]


def run_import_cli(path: Path, db: Path) -> str:
    result = subprocess.run(import_cmd(path), env=cli_env(db), capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, f"{result.stdout}\n{result.stderr}"
    return result.stdout


def dump(db: Path) -> dict[str, list[tuple]]:
    """Every column of every row of the tables an import writes, in a fixed order."""
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return {
            "papers": conn.execute("SELECT * FROM papers ORDER BY id").fetchall(),
            "papers_columns": [c[1] for c in conn.execute("PRAGMA table_info(papers)")],
            "sequences": conn.execute("SELECT * FROM sequences ORDER BY name").fetchall(),
            "sync_state": conn.execute("SELECT name, value FROM sync_state ORDER BY name").fetchall(),
            "tables": conn.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name"
            ).fetchall(),
        }
    finally:
        conn.close()


def committed_rows(db: Path) -> int | None:
    """Rows committed so far, read by a separate read-only connection; None while the database is starting."""
    if not db.exists():
        return None
    try:
        conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=0.05)
    except sqlite3.OperationalError:
        return None
    try:
        return conn.execute("SELECT count(*) FROM papers").fetchone()[0]
    except sqlite3.OperationalError:  # "no such table" before the migration, "database is locked"
        return None
    finally:
        conn.close()


def gone(proc: psutil.Process) -> bool:
    try:
        return proc.status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory) -> tuple[Path, Path, dict]:
    """(snapshot file, reference database, its dump) from one uninterrupted import."""
    root = tmp_path_factory.mktemp("kill")
    path = write_snapshot(root / "synthetic.jsonl", RECORDS)
    # Big enough that the CLI parses it in a child process: that process is part of what is tested.
    assert path.stat().st_size >= MIN_BACKGROUND_BYTES
    reference = root / "a" / "paperwire.db"
    out = run_import_cli(path, reference)
    assert f"{RECORDS:,} imported, 0 updated, 0 unchanged, 0 skipped" in out
    state = dump(reference)
    assert len(state["papers"]) == RECORDS
    return path, reference, state


@pytest.mark.slow
@pytest.mark.parametrize("fraction", [0.2, 0.5, 0.8])
def test_killed_import_resumes_to_the_same_store(synthetic, tmp_path, fraction: float):
    path, _, expected = synthetic
    db = tmp_path / "b" / "paperwire.db"
    target = int(RECORDS * fraction)
    proc = subprocess.Popen(import_cmd(path), env=cli_env(db), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    parent = psutil.Process(proc.pid)
    children: list[psutil.Process] = []
    try:
        deadline = time.monotonic() + 60
        seen = None
        while time.monotonic() < deadline:
            children = children or parent.children(recursive=True)
            seen = committed_rows(db)
            if seen is not None and seen >= target:
                break
            assert proc.poll() is None, f"the import ended before it could be killed ({seen} rows committed)"
            time.sleep(0.002)
        else:
            pytest.fail(f"{target} rows never got committed (last seen: {seen})")
        children = parent.children(recursive=True) or children
        cmdlines = {c.pid: " ".join(_cmdline(c)) for c in children}
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdout.close()
        proc.stderr.close()
    assert proc.returncode == -signal.SIGKILL

    # The parser child must notice that its parent died and exit by itself (checked at the end of the test,
    # after the rerun, so that a lingering child does not hide whether the store itself came out right).
    assert children, "the import did not parse in a child process"
    assert any("multiprocessing.spawn" in line for line in cmdlines.values()), (
        f"no parser process among {cmdlines}"
    )
    deadline = time.monotonic() + CHILD_EXIT_WITHIN
    while time.monotonic() < deadline and not all(gone(c) for c in children):
        time.sleep(0.05)
    lingering = [(c.pid, cmdlines[c.pid]) for c in children if not gone(c)]
    for c in children:  # never leave them behind, whatever the assertion below says
        with contextlib.suppress(psutil.NoSuchProcess):
            c.kill()

    partial = committed_rows(db)
    assert partial is not None and target <= partial < RECORDS
    assert partial % BATCH == 0, "a killed import must leave whole batches (one transaction each)"
    seq = expected["papers_columns"].index("change_seq")
    assert dump(db)["papers"] == [r for r in expected["papers"] if r[seq] <= partial], (
        "the committed rows are not exactly the first batches of the uninterrupted run"
    )

    out = run_import_cli(path, db)
    assert f"{RECORDS - partial:,} imported, 0 updated, {partial:,} unchanged, 0 skipped" in out, out
    got = dump(db)
    assert got["papers_columns"] == expected["papers_columns"]
    assert "change_seq" in got["papers_columns"] and "content_hash" in got["papers_columns"]
    assert len(got["papers"]) == len(expected["papers"])
    for mine, theirs in zip(got["papers"], expected["papers"], strict=True):
        assert mine == theirs
    assert got == expected

    assert not lingering, (
        f"{CHILD_EXIT_WITHIN:.0f}s after the import was killed (at {seen:,} of {RECORDS:,} rows committed) these "
        f"processes were still alive: {lingering}"
    )


def _cmdline(proc: psutil.Process) -> list[str]:
    try:
        return proc.cmdline()
    except (psutil.NoSuchProcess, psutil.ZombieProcess, psutil.AccessDenied):
        return []


# -- background parsing == inline parsing ----------------------------------------------------------------


def malformed_file(path: Path) -> Path:
    """Synthetic lines across several of the child's 1,000-item batches, bad lines among them (also at the
    very start and end, and around batch boundaries), duplicates and an older version of one paper."""
    good = list(CorpusModel(seed=7).lines(2_600))
    bad = {
        0: b"{not json\n",
        1: b"\n",
        500: b"[1, 2]\n",
        998: orjson.dumps({"id": "not-an-id", "title": "x"}) + b"\n",
        999: orjson.dumps(orjson.loads(good[3]) | {"title": ""}) + b"\n",
        1000: orjson.dumps(orjson.loads(good[4]) | {"versions": [{"version": "vX", "created": "?"}]}) + b"\n",
        1001: b"null\n",
        2000: good[10],  # the same paper again: unchanged
        2001: orjson.dumps(
            orjson.loads(good[11])
            | {"versions": [{"version": "v1", "created": "Mon, 1 Jan 2007 00:00:00 GMT"}], "title": "older"}
        )
        + b"\n",
        2599: b'{"id": "0704.0001"\n',
    }
    lines = []
    for i, line in enumerate(good):
        if i in bad:
            lines.append(bad[i])
        lines.append(line)
    lines.append(b"{truncated")
    path.write_bytes(b"".join(lines))
    return path


def import_with(path: Path, db: Path, background: bool) -> tuple[ImportSummary, list[Rejected]]:
    import paperwire.ingest.jsonl  # noqa: F401  (registers the sources)
    import paperwire.ingest.snapshot  # noqa: F401

    store = Store.open(f"sqlite:///{db}")
    seen: list[Rejected] = []
    try:
        source = file_source("snapshot", path, background=background)
        assert type(source).__name__ == ("BackgroundSource" if background else "SnapshotSource")
        summary = run_import(store, source.items(), batch_size=300, on_reject=seen.append)
    finally:
        store.close()
    return summary, seen


@pytest.mark.parametrize("which", ["fixture", "malformed", "malformed-gz-truncated"])
def test_background_and_inline_parsing_agree(tmp_path, which: str):
    if which == "fixture":
        path = SNAPSHOT
    else:
        path = malformed_file(tmp_path / "malformed.jsonl")
        if which == "malformed-gz-truncated":
            packed = gzip.compress(path.read_bytes())
            path = tmp_path / "malformed.jsonl.gz"
            path.write_bytes(packed[: len(packed) * 2 // 3])
    inline, inline_rejected = import_with(path, tmp_path / "inline.db", background=False)
    background, background_rejected = import_with(path, tmp_path / "background.db", background=True)

    def counts(s: ImportSummary) -> tuple:
        return s.imported, s.updated, s.unchanged, s.deleted, s.skipped

    assert counts(background) == counts(inline)
    assert background_rejected == inline_rejected
    assert background.rejected == inline.rejected == inline_rejected[: len(inline.rejected)]
    assert dump(tmp_path / "background.db") == dump(tmp_path / "inline.db")
    if which == "fixture":
        assert counts(inline) == (200, 0, 0, 0, 0)
    else:
        where = [r.where for r in inline_rejected]
        numbers = [int(w.split()[1]) for w in where]
        assert numbers == sorted(numbers) and inline.skipped == len(where) and inline.imported > 1000
        if which == "malformed":
            # one line each for: bad JSON, an array, a bad id, no title, a bad version, null, a cut-off line twice
            assert inline.skipped == 8 and inline.unchanged == 2 and inline.imported == 2_600, where
        else:
            assert "could not be read past line" in inline_rejected[-1].reason
