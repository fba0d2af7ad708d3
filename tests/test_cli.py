"""The installed ``paperwire`` command, run as a real subprocess: exit codes, what it prints, what it stores."""

from __future__ import annotations

import csv
import gzip
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import click
import orjson
import pytest

import paperwire.cli
from paperwire.store import Store
from tests.recorded_server import RecordedServer, Reply

FIXTURES = Path(__file__).parent / "fixtures"
SNAPSHOT = FIXTURES / "snapshot" / "arxiv-metadata-oai-snapshot.head200.jsonl"
API_XML = FIXTURES / "arxiv-api" / "recorded_xml"
HEP_TH = (
    FIXTURES / "arxiv-oai" / "functional__arxiv__fixtures__http_server__records__arxiv-physics-hep-th.xml"
)
API_PATH = "/api/query"


def _command() -> list[str]:
    """The console script installed next to this interpreter; ``python -m paperwire.cli`` otherwise."""
    script = shutil.which("paperwire", path=str(Path(sys.executable).parent))
    return [script] if script else [sys.executable, "-m", "paperwire.cli"]


PAPERWIRE = _command()


def run_cli(
    env: dict[str, str],
    *args: str | os.PathLike,
    extra_env: dict[str, str] | None = None,
    timeout: float = 120,
) -> subprocess.CompletedProcess[str]:
    full_env = {**os.environ, **env, **(extra_env or {})}
    return subprocess.run(
        [*PAPERWIRE, *map(str, args)],
        env=full_env,
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=Path(env["PAPERWIRE_DATA_DIR"]).parent,  # the test's tmp_path: nothing lands in the checkout
    )


def describe(result: subprocess.CompletedProcess[str]) -> str:
    return f"exit {result.returncode}\n--- stdout\n{result.stdout}\n--- stderr\n{result.stderr}"


def ok(result: subprocess.CompletedProcess[str]) -> subprocess.CompletedProcess[str]:
    assert result.returncode == 0, describe(result)
    assert "Traceback" not in result.stderr, describe(result)
    return result


def failed(
    result: subprocess.CompletedProcess[str], code: int | None = None
) -> subprocess.CompletedProcess[str]:
    if code is None:
        assert result.returncode != 0, describe(result)
    else:
        assert result.returncode == code, describe(result)
    assert "Traceback" not in result.stderr, describe(result)
    return result


@pytest.fixture
def open_store(env) -> Iterator[Callable[[], Store]]:
    """Open the store the CLI wrote (after the command ended); closed at the end of the test."""
    opened: list[Store] = []

    def _open() -> Store:
        store = Store.open(env["PAPERWIRE_DATABASE_URL"])
        opened.append(store)
        return store

    yield _open
    for store in opened:
        store.close()


def snapshot_lines() -> list[bytes]:
    return [line for line in SNAPSHOT.read_bytes().splitlines(keepends=True) if line.strip()]


def snapshot_ids() -> list[str]:
    return [orjson.loads(line)["id"] for line in snapshot_lines()]


# -- help: every command of the tree ---------------------------------------------------------------------


def _walk(
    command: click.Command, path: tuple[str, ...] = ()
) -> Iterator[tuple[tuple[str, ...], click.Command]]:
    yield path, command
    if isinstance(command, click.Group):
        for name in sorted(command.commands):
            yield from _walk(command.commands[name], (*path, name))


COMMANDS = list(_walk(paperwire.cli.main))


def test_the_command_tree_is_walked():
    paths = {" ".join(p) for p, _ in COMMANDS}
    assert {
        "",
        "import",
        "import snapshot",
        "import jsonl",
        "import csv",
        "import sample",
        "harvest",
        "harvest oai",
        "fetch",
        "fetch arxiv",
        "stats",
        "show",
        "migrate",
        "serve",
    } <= paths


@pytest.mark.parametrize(("path", "command"), COMMANDS, ids=[" ".join(p) or "paperwire" for p, _ in COMMANDS])
def test_help(env, path: tuple[str, ...], command: click.Command):
    for flag in ("--help", "-h"):
        result = ok(run_cli(env, *path, flag))
        out = result.stdout
        assert "Usage:" in out, describe(result)
        assert " ".join(path) in out
        if command.help:
            assert command.help.split("\n")[0].strip()[:40] in " ".join(out.split())
        if isinstance(command, click.Group):
            assert "Commands:" in out
            for name in command.commands:
                assert name in out, f"{name!r} missing from the help of {' '.join(path) or 'paperwire'}"
        for param in command.params:
            if isinstance(param, click.Option) and not param.hidden:
                assert param.opts[0] in out, f"{param.opts[0]} missing from the help of {' '.join(path)}"
            elif isinstance(param, click.Argument):
                assert param.name.upper() in out


def test_version(env):
    result = ok(run_cli(env, "--version"))
    assert result.stdout.startswith("paperwire, version ")
    # The module form works too.
    module = subprocess.run(
        [sys.executable, "-m", "paperwire.cli", "--version"],
        capture_output=True,
        text=True,
        env={**os.environ, **env},
        timeout=60,
    )
    assert module.returncode == 0 and module.stdout == result.stdout


def test_unknown_command_is_a_usage_error(env):
    result = failed(run_cli(env, "frobnicate"), 2)
    assert "No such command" in result.stderr


# -- import snapshot -------------------------------------------------------------------------------------


def test_import_snapshot_then_again(env, open_store):
    first = ok(run_cli(env, "import", "snapshot", SNAPSHOT, "--quiet"))
    assert "200 imported, 0 updated, 0 unchanged, 0 skipped" in first.stdout, describe(first)
    assert "skipped" not in first.stderr
    second = ok(run_cli(env, "import", "snapshot", SNAPSHOT))
    assert "0 imported, 0 updated, 200 unchanged, 0 skipped" in second.stdout, describe(second)
    store = open_store()
    assert store.count() == 200
    assert store.last_change_seq() == 200  # the re-import changed nothing
    assert set(store.get_many(snapshot_ids())) == set(snapshot_ids())
    first_paper = store.get("0704.0001")
    assert first_paper.title.startswith("Calculation of prompt diphoton production cross sections")
    assert first_paper.version == 2 and first_paper.source == "snapshot"


def write_malformed(path: Path) -> tuple[list[str], dict[int, str]]:
    """Good fixture lines with bad ones between them; returns (good ids, {line number: reason fragment})."""
    good = snapshot_lines()[:10]
    bad_id = orjson.loads(good[0]) | {"id": "not-an-id"}
    no_title = orjson.loads(good[1]) | {"id": "0704.9998", "title": "  "}
    lines = [
        good[0],
        b'{"id": "0704.9997", "title": broken\n',  # 2: bad JSON
        good[1],
        orjson.dumps(bad_id) + b"\n",  # 4: bad id
        good[2],
        good[3],
        orjson.dumps(no_title) + b"\n",  # 7: no title
        b"[1, 2, 3]\n",  # 8: not an object
        *good[4:],
    ]
    path.write_bytes(b"".join(lines))
    reasons = {
        2: "invalid JSON",
        4: "not an arXiv id: 'not-an-id'",
        7: "missing title",
        8: "not a JSON object",
    }
    return [orjson.loads(g)["id"] for g in good], reasons


def test_import_snapshot_with_malformed_lines(env, open_store, tmp_path):
    path = tmp_path / "some-bad.jsonl"
    good_ids, reasons = write_malformed(path)
    rejects = tmp_path / "rejects.jsonl"
    result = ok(run_cli(env, "import", "snapshot", path, "--rejects", rejects, "-q"))
    assert f"{len(good_ids)} imported, 0 updated, 0 unchanged, {len(reasons)} skipped" in result.stdout, (
        describe(result)
    )
    skipped = [line for line in result.stderr.splitlines() if "skipped" in line]
    assert len(skipped) == len(reasons), describe(result)
    for line, (number, reason) in zip(skipped, sorted(reasons.items()), strict=True):
        assert f"line {number}:" in line and reason in line, line
    assert "more skipped records" not in result.stderr
    written = [orjson.loads(line) for line in rejects.read_bytes().splitlines()]
    assert [w["where"] for w in written] == [f"line {n}" for n in sorted(reasons)]
    for w, reason in zip(written, [reasons[n] for n in sorted(reasons)], strict=True):
        assert reason in w["reason"]
        assert set(w) == {"where", "reason"}
    store = open_store()
    assert store.count() == len(good_ids)
    assert set(store.get_many(good_ids)) == set(good_ids)
    assert store.get("0704.9998") is None and store.get("0704.9997") is None


def test_only_twenty_rejections_are_printed(env, open_store, tmp_path):
    good = snapshot_lines()[:5]
    path = tmp_path / "many-bad.jsonl"
    bad_count = 57
    path.write_bytes(
        b"".join(good[:2]) + b"".join(b"{oops %d\n" % i for i in range(bad_count)) + b"".join(good[2:])
    )
    rejects = tmp_path / "all-rejects.jsonl"
    result = ok(run_cli(env, "import", "snapshot", path, "--quiet", "--rejects", rejects))
    assert f"5 imported, 0 updated, 0 unchanged, {bad_count} skipped" in result.stdout, describe(result)
    shown = [line for line in result.stderr.splitlines() if "skipped" in line and "invalid JSON" in line]
    assert len(shown) == 20
    assert [line.split(" line ")[1].split(":")[0] for line in shown] == [str(n) for n in range(3, 23)]
    assert f"... and {bad_count - 20} more skipped records (all are in {rejects})" in result.stderr
    assert len(rejects.read_bytes().splitlines()) == bad_count
    # Without --rejects the hint says how to keep them all.
    again = ok(run_cli(env, "import", "snapshot", path, "--quiet"))
    assert (
        f"... and {bad_count - 20} more skipped records (use --rejects FILE to save them all)" in again.stderr
    )
    assert "0 imported, 0 updated, 5 unchanged" in again.stdout
    assert open_store().count() == 5


def test_a_file_with_nothing_usable_fails(env, open_store, tmp_path):
    path = tmp_path / "all-bad.jsonl"
    path.write_bytes(b"{nope\n[1]\n" + orjson.dumps({"id": "0704.0001"}) + b"\n")
    result = failed(run_cli(env, "import", "snapshot", path, "-q"))
    assert "0 imported, 0 updated, 0 unchanged, 3 skipped" in result.stdout
    assert f"error: nothing could be imported from {path}" in result.stderr
    assert open_store().count() == 0


def test_an_empty_file_fails_with_a_clear_message(env, tmp_path):
    path = tmp_path / "empty.jsonl"
    path.write_bytes(b"")
    result = failed(run_cli(env, "import", "snapshot", path, "-q"))
    assert f"error: nothing could be imported from {path} (no records found)" in result.stderr
    blank = tmp_path / "blank.jsonl"
    blank.write_bytes(b"\n  \n\n")
    result = failed(run_cli(env, "import", "jsonl", blank, "-q"))
    assert "no records found" in result.stderr


def test_a_missing_file_is_a_usage_error(env, tmp_path):
    missing = tmp_path / "nowhere" / "snapshot.json"
    for kind in ("snapshot", "jsonl", "csv"):
        result = failed(run_cli(env, "import", kind, missing), 2)
        assert "Usage:" in result.stderr
        assert str(missing) in result.stderr and "does not exist" in result.stderr


def test_import_snapshot_gz(env, open_store, tmp_path):
    path = tmp_path / "snapshot.json.gz"
    path.write_bytes(gzip.compress(SNAPSHOT.read_bytes()))
    result = ok(run_cli(env, "import", "snapshot", path, "-q"))
    assert "200 imported, 0 updated, 0 unchanged, 0 skipped" in result.stdout, describe(result)
    store = open_store()
    assert store.count() == 200
    # The same content, plain, is recognised as unchanged.
    again = ok(run_cli(env, "import", "snapshot", SNAPSHOT, "-q"))
    assert "200 unchanged" in again.stdout


def test_batch_size_is_validated(env):
    result = failed(run_cli(env, "import", "snapshot", SNAPSHOT, "--batch-size", "0"), 2)
    assert "--batch-size" in result.stderr


# -- JSONL and CSV ---------------------------------------------------------------------------------------


def test_import_jsonl_documented_format(env, open_store, tmp_path):
    records = [
        {
            "id": "hep-th/9901001",
            "title": "An old-style paper",
            "abstract": "  Old\n  abstract.  ",
            "authors": ["Ada Lovelace", "Alan Turing"],
            "categories": ["hep-th", "gr-qc"],
            "published": "1999-01-04",
        },
        {
            "id": "2401.14040v2",
            "title": "A versioned id",
            "authors": [{"name": "Grace Hopper", "affiliation": "Yale University"}, {"name": "Plain Author"}],
            "categories": "cs.CL cs.LG",
            "published": "2024-01-25T10:20:30Z",
            "updated": "2024-02-01",
            "doi": "10.1000/xyz123",
            "comments": "12 pages",
        },
        {"id": "https://arxiv.org/abs/2301.00001v3", "title": "A URL id", "categories": ["math.CO"]},
        {"id": "0704.0002", "title": "Only the required keys"},
    ]
    path = tmp_path / "papers.jsonl"
    path.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in records))
    result = ok(run_cli(env, "import", "jsonl", path, "-q"))
    assert "4 imported, 0 updated, 0 unchanged, 0 skipped" in result.stdout, describe(result)
    store = open_store()
    old = store.get("hep-th/9901001")
    assert old.title == "An old-style paper" and old.abstract == "Old abstract." and old.version == 1
    assert [(a.name, a.affiliation) for a in old.authors] == [("Ada Lovelace", None), ("Alan Turing", None)]
    assert old.categories == ["hep-th", "gr-qc"] and old.primary_category == "hep-th"
    assert old.published == datetime(1999, 1, 4, tzinfo=UTC) and old.source == "jsonl"
    new = store.get("2401.14040")
    assert new.version == 2
    assert [(a.name, a.affiliation) for a in new.authors] == [
        ("Grace Hopper", "Yale University"),
        ("Plain Author", None),
    ]
    assert new.categories == ["cs.CL", "cs.LG"]
    assert new.published == datetime(2024, 1, 25, 10, 20, 30, tzinfo=UTC)
    assert new.updated == datetime(2024, 2, 1, tzinfo=UTC)
    assert (new.doi, new.comments) == ("10.1000/xyz123", "12 pages")
    url = store.get("2301.00001")
    assert url.version == 3 and url.categories == ["math.CO"]
    bare = store.get("0704.0002")
    assert (
        bare.title == "Only the required keys"
        and bare.authors == []
        and bare.categories == []
        and bare.abstract == ""
    )
    # show accepts any id form and prints what was stored
    shown = ok(run_cli(env, "show", "hep-th/9901001v1"))
    assert shown.stdout.startswith("An old-style paper\n") and "Ada Lovelace, Alan Turing" in shown.stdout


def test_import_jsonl_rejections(env, open_store, tmp_path):
    path = tmp_path / "mixed.jsonl"
    path.write_bytes(
        b'{"id": "2401.14040", "title": "Fine"}\n'
        b'{"title": "No id"}\n'
        b'{"id": "2401.14041", "title": "Bad authors", "authors": 5}\n'
        b'{"id": "2401.14042", "title": "Bad date", "published": "yesterday"}\n'
        b'{"id": "2401.14043"}\n'
    )
    result = ok(run_cli(env, "import", "jsonl", path, "-q"))
    assert "1 imported, 0 updated, 0 unchanged, 4 skipped" in result.stdout
    for number, reason in (
        (2, "missing 'id'"),
        (3, "authors must be a list"),
        (4, "bad date"),
        (5, "missing 'title'"),
    ):
        assert any(f"line {number}: " in line and reason in line for line in result.stderr.splitlines()), (
            number,
            describe(result),
        )
    assert open_store().count() == 1


def test_import_csv(env, open_store, tmp_path):
    path = tmp_path / "papers.csv"
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["id", "title", "abstract", "authors", "categories", "published", "doi"])
        writer.writerow(
            [
                "hep-th/9901001v2",
                "Strings, old style",
                "An abstract, with a comma.",
                "Lovelace, Ada; Turing, Alan",
                "hep-th gr-qc",
                "1999-01-04",
                "",
            ]
        )
        writer.writerow(
            ["2401.14040", "New style", "", "Grace Hopper", "cs.CL,cs.LG", "2024-01-25", "10.1/abc"]
        )
        writer.writerow(["", "No id", "", "", "", "", ""])
    result = ok(run_cli(env, "import", "csv", path, "-q"))
    assert "2 imported, 0 updated, 0 unchanged, 1 skipped" in result.stdout, describe(result)
    assert "line 4: missing 'id'" in result.stderr
    store = open_store()
    old = store.get("hep-th/9901001")
    assert (
        old.version == 2
        and old.title == "Strings, old style"
        and old.abstract == "An abstract, with a comma."
    )
    assert [a.name for a in old.authors] == ["Lovelace, Ada", "Turing, Alan"]
    assert old.categories == ["hep-th", "gr-qc"] and old.source == "csv"
    new = store.get("2401.14040")
    assert [a.name for a in new.authors] == ["Grace Hopper"] and new.categories == ["cs.CL", "cs.LG"]
    assert new.doi == "10.1/abc" and old.doi is None
    assert new.published == datetime(2024, 1, 25, tzinfo=UTC)


def test_import_csv_without_the_required_header_fails(env, tmp_path):
    path = tmp_path / "wrong.csv"
    path.write_text("name,year\nfoo,1999\n", encoding="utf-8")
    result = failed(run_cli(env, "import", "csv", path, "-q"))
    assert "error:" in result.stderr and "'id' and 'title'" in result.stderr


# -- sample ----------------------------------------------------------------------------------------------


def test_import_sample(env, open_store):
    if not paperwire.cli.SAMPLE_PATH.exists():
        pytest.skip(f"the bundled sample {paperwire.cli.SAMPLE_PATH} has not been built")
    result = ok(run_cli(env, "import", "sample", "-q"))
    store = open_store()
    count = store.count()
    assert count >= 300, describe(result)
    assert f"{count:,} imported, 0 updated, 0 unchanged, 0 skipped" in result.stdout, describe(result)
    again = ok(run_cli(env, "import", "sample", "-q"))
    assert f"0 imported, 0 updated, {count:,} unchanged" in again.stdout
    assert store.count() == count


def test_trending_recompute_after_a_half_life_change(env, open_store):
    """Stored trending keys depend on the half-life: the command recomputes them and the index, so that
    the sort by trending follows the new setting; run again, it changes nothing."""
    if not paperwire.cli.SAMPLE_PATH.exists():
        pytest.skip(f"the bundled sample {paperwire.cli.SAMPLE_PATH} has not been built")
    ok(run_cli(env, "import", "sample", "-q"))
    store = open_store()
    voted = [
        p
        for p in store.get_many(store.ids_published_since(datetime(1990, 1, 1, tzinfo=UTC))).values()
        if p.trending_score
    ]
    assert voted, "the sample has a daily list with upvotes"
    before = {p.id: p.trending_score for p in voted}
    unchanged = ok(run_cli(env, "trending", "recompute"))
    assert "half-life of 24 hours: 0 changed" in unchanged.stdout, describe(unchanged)
    slower = {"PAPERWIRE_TRENDING_HALF_LIFE_HOURS": "72"}
    result = ok(run_cli(env, "trending", "recompute", extra_env=slower))
    changed = int(result.stdout.split("72 hours: ")[1].split(" changed")[0].replace(",", ""))
    assert changed == len(before), describe(result)
    assert "Updated the search index: " in result.stdout, describe(result)
    after = {pid: store.get(pid).trending_score for pid in before}
    assert all(after[pid] != before[pid] for pid in before)
    index_state = ok(run_cli(env, "stats", extra_env=slower)).stdout
    assert "(up to date)" in index_state, index_state
    again = ok(run_cli(env, "trending", "recompute", extra_env=slower))
    assert "72 hours: 0 changed" in again.stdout and "search index" not in again.stdout, describe(again)


# -- inspection ------------------------------------------------------------------------------------------


def test_stats(env, open_store):
    empty = ok(run_cli(env, "stats"))
    assert "Papers:            0" in empty.stdout and "Change sequence:   0" in empty.stdout
    ok(run_cli(env, "import", "snapshot", SNAPSHOT, "-q"))
    result = ok(run_cli(env, "stats"))
    out = result.stdout
    assert "Papers:            200" in out
    assert "Change sequence:   200" in out
    assert "Primary categories:" in out
    store_stats = open_store().stats()
    top_category, top_count = store_stats.by_category[0]
    assert any(line.split() == [top_category, str(top_count)] for line in out.splitlines()), out
    assert "Newest published:  " + store_stats.newest_published.date().isoformat() in out
    # Imports bring the search index up to date on their own.
    assert "keyword: at change 200, 200 papers (up to date)" in out
    as_json = orjson.loads(ok(run_cli(env, "stats", "--json")).stdout)
    assert as_json["papers"] == 200 and as_json["deleted"] == 0 and as_json["last_change_seq"] == 200
    assert as_json["by_category"][top_category] == top_count
    assert as_json["indexes"]["keyword"]["change_seq"] == 200
    assert as_json["database"].startswith("sqlite:///") and as_json["schema_revision"]
    assert as_json["subscribers"] == {} and as_json["outbox"] == {}
    assert "Digest subscribers" not in out and "Mail outbox" not in out


def test_stats_show_digest_subscribers_and_the_outbox(env, open_store):
    from paperwire.store import outbox as box
    from paperwire.store import subscriptions as subs

    now = datetime.now(UTC)
    store = open_store()
    confirmed = subs.subscribe(store, "ada@example.org", now=now)
    subs.confirm(store, confirmed.id, now=now)
    subs.subscribe(store, "grace@example.org", now=now)
    for key in ("m1", "m2"):
        box.add(
            store,
            key=key,
            kind="digest",
            recipient="ada@example.org",
            message=b"Subject: x\r\n\r\nx",
            now=now,
        )
    box.mark_sent(store, box.claim_due(store, now=now, limit=1, lease=timedelta(minutes=5))[0].id, now=now)
    out = ok(run_cli(env, "stats")).stdout
    assert "Digest subscribers: 1 active, 1 pending" in out, out
    assert "Mail outbox:        1 pending, 1 sent" in out, out
    as_json = orjson.loads(ok(run_cli(env, "stats", "--json")).stdout)
    assert as_json["subscribers"] == {"active": 1, "pending": 1}
    assert as_json["outbox"] == {"pending": 1, "sent": 1}


def test_show(env):
    ok(run_cli(env, "import", "snapshot", SNAPSHOT, "-q"))
    title = "Calculation of prompt diphoton production cross sections at Tevatron and LHC energies"
    for spelling in ("0704.0001", "arXiv:0704.0001v2", "https://arxiv.org/abs/0704.0001"):
        result = ok(run_cli(env, "show", spelling))
        assert result.stdout.startswith(title + "\n"), describe(result)
        assert "arXiv:0704.0001v2  [hep-ph]" in result.stdout
    as_json = orjson.loads(ok(run_cli(env, "show", "0704.0001", "--json")).stdout)
    assert as_json["id"] == "0704.0001" and as_json["title"] == title and as_json["version"] == 2


def test_show_unknown_and_invalid_ids(env):
    ok(run_cli(env, "import", "snapshot", SNAPSHOT, "-q"))
    # 9999.99999 is not even a possible id (month 99)
    impossible = failed(run_cli(env, "show", "9999.99999"))
    assert "error:" in impossible.stderr and "9999.99999" in impossible.stderr
    absent = failed(run_cli(env, "show", "0704.9999"), 1)
    assert "error: 0704.9999 is not in the catalogue" in absent.stderr
    garbage = failed(run_cli(env, "show", "garbage"), 2)
    assert "error: not an arXiv id: 'garbage'" in garbage.stderr


def test_migrate(env):
    result = ok(run_cli(env, "migrate"))
    assert result.stdout.startswith("Database schema is at revision ")
    assert Path(env["PAPERWIRE_DATABASE_URL"].removeprefix("sqlite:///")).is_file()


# -- remote sources, against the recorded server ---------------------------------------------------------


def api_body(stem: str) -> bytes:
    (path,) = API_XML.glob(f"{stem}_*.xml")
    return path.read_bytes()


def api_env(server: RecordedServer) -> dict[str, str]:
    return {"PAPERWIRE_ARXIV_API_URL": server.url + API_PATH}


def test_fetch_arxiv_ids(env, open_store, recorded_server: RecordedServer):
    recorded_server.add(API_PATH, Reply(api_body("id_astro-ph_0601001_s0_m100")), id_list="astro-ph/0601001")
    result = ok(
        run_cli(env, "fetch", "arxiv", "--ids", "astro-ph/0601001", "-q", extra_env=api_env(recorded_server))
    )
    assert "1 imported, 0 updated, 0 unchanged, 0 skipped" in result.stdout, describe(result)
    assert [r.params.get("id_list") for r in recorded_server.requests] == ["astro-ph/0601001"]
    assert recorded_server.requests[0].headers["User-Agent"].startswith("paperwire/")
    paper = open_store().get("astro-ph/0601001")
    assert paper is not None and paper.source == "arxiv_api"
    assert paper.title.startswith("Frequency of Hot Jupiters and Very Hot Jupiters")


def test_fetch_arxiv_error_feed(env, open_store, recorded_server: RecordedServer):
    # arXiv answers its error feed with HTTP 400 (recorded for id_list=abc; served here for a well-formed id,
    # since the command itself refuses 'abc' before asking arXiv).
    recorded_server.add(API_PATH, Reply(api_body("id_abc_s0_m100"), status=400), id_list="0704.0001")
    result = failed(
        run_cli(env, "fetch", "arxiv", "--ids", "0704.0001", "-q", extra_env=api_env(recorded_server)), 1
    )
    assert "error:" in result.stderr and "incorrect id format" in result.stderr, describe(result)
    assert len(recorded_server.requests) == 1  # a 400 is an answer, not a reason to retry
    assert open_store().count() == 0


def test_fetch_arxiv_rejects_a_malformed_id_without_asking(env, recorded_server: RecordedServer):
    result = failed(run_cli(env, "fetch", "arxiv", "--ids", "abc", extra_env=api_env(recorded_server)), 2)
    assert "error: not an arXiv id: 'abc'" in result.stderr
    assert recorded_server.requests == []


def test_fetch_arxiv_needs_query_or_ids(env, recorded_server: RecordedServer):
    result = failed(run_cli(env, "fetch", "arxiv", extra_env=api_env(recorded_server)), 2)
    assert "error: give --query or --ids" in result.stderr
    assert recorded_server.requests == []


def oai_env(server: RecordedServer) -> dict[str, str]:
    return {"PAPERWIRE_ARXIV_OAI_URL": server.url + "/oai"}


def test_harvest_oai(env, open_store, recorded_server: RecordedServer):
    recorded_server.add(
        "/oai",
        Reply(HEP_TH.read_bytes()),
        verb="ListRecords",
        metadataPrefix="arXiv",
        set="physics:hep-th",
        **{"from": "2017-12-14"},
    )
    result = ok(
        run_cli(
            env,
            "harvest",
            "oai",
            "--set",
            "physics:hep-th",
            "--from",
            "2017-12-14",
            "-q",
            extra_env=oai_env(recorded_server),
        )
    )
    assert "3 imported, 0 updated, 0 unchanged, 0 skipped" in result.stdout, describe(result)
    assert "Harvested physics:hep-th from 2017-12-14 (1 pages)" in result.stdout
    assert [r.params for r in recorded_server.requests] == [
        {"verb": "ListRecords", "metadataPrefix": "arXiv", "set": "physics:hep-th", "from": "2017-12-14"}
    ]
    store = open_store()
    assert set(store.get_many(["1412.8323", "1507.07790", "1607.01710"])) == {
        "1412.8323",
        "1507.07790",
        "1607.01710",
    }
    assert store.get("1412.8323").title.startswith("Toolbox for reconstructing quantum theory")
    state = store.get_state("harvest:oai:arXiv:physics:hep-th")
    assert state is not None and state["last_datestamp"] == "2017-12-14"
    stats = ok(run_cli(env, "stats"))
    assert "harvest:oai:arXiv:physics:hep-th: last datestamp 2017-12-14" in stats.stdout


def test_harvest_oai_bad_date(env, recorded_server: RecordedServer):
    result = failed(
        run_cli(
            env,
            "harvest",
            "oai",
            "--set",
            "physics:hep-th",
            "--from",
            "2017-13-45",
            extra_env=oai_env(recorded_server),
        )
    )
    assert "error: not a date (expected YYYY-MM-DD): '2017-13-45'" in result.stderr, describe(result)
    assert recorded_server.requests == []
    reversed_range = failed(
        run_cli(
            env,
            "harvest",
            "oai",
            "--from",
            "2018-01-02",
            "--until",
            "2018-01-01",
            extra_env=oai_env(recorded_server),
        )
    )
    assert "error:" in reversed_range.stderr and "after" in reversed_range.stderr
    assert recorded_server.requests == []


# -- settings --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "args",
    [("stats",), ("migrate",), ("show", "0704.0001"), ("import", "snapshot", str(SNAPSHOT))],
    ids=lambda a: " ".join(a[:2]),
)
def test_an_unusable_database_url(env, args):
    result = failed(run_cli(env, *args, extra_env={"PAPERWIRE_DATABASE_URL": "mysql://x"}), 2)
    assert result.stderr.startswith("error:"), describe(result)
    assert "PAPERWIRE_DATABASE_URL" in result.stderr and "mysql://x" in result.stderr
    assert result.stdout == ""


def test_a_database_that_cannot_be_opened(env, tmp_path):
    not_a_dir = tmp_path / "a-file"
    not_a_dir.write_text("x")
    result = failed(
        run_cli(env, "stats", extra_env={"PAPERWIRE_DATABASE_URL": f"sqlite:///{not_a_dir}/db.sqlite"}), 1
    )
    assert result.stderr.startswith("error: cannot open the database"), describe(result)


def test_serve_refuses_a_malformed_smtp_url(env):
    import subprocess
    import sys

    proc = subprocess.run(
        [sys.executable, "-m", "paperwire.cli", "serve", "--port", "1"],
        env={**__import__("os").environ, **env, "PAPERWIRE_SMTP_URL": "http://mail.example.org"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2 and "PAPERWIRE_SMTP_URL must look like" in proc.stderr


def test_index_embeds_for_re_scoring_after_the_embedding_model(env, open_store):
    """With a re-scoring model (wordllama here, for speed; mpnet as shipped), `paperwire index` embeds every
    paper with it too, after the embedding model and with no graph (it only re-scores candidates)."""
    ok(run_cli(env, "import", "snapshot", SNAPSHOT, "-q"))
    count = open_store().count()
    settings = {"PAPERWIRE_VECTOR_GRAPH_MIN_ROWS": "100", "PAPERWIRE_RESCORE_MODEL": "wordllama"}
    first = ok(run_cli(env, "index", extra_env=settings, timeout=300))
    lines = first.stdout.splitlines()
    embedded = [n for n, line in enumerate(lines) if line.startswith(f"Embedded {count:,} papers with")]
    assert len(embedded) == 2, describe(first)
    assert "with minilm" in lines[embedded[0]] and "with wordllama, for re-scoring," in lines[embedded[1]]
    vectors = Path(env["PAPERWIRE_DATA_DIR"]) / "index" / "vectors"
    assert [g.parent.name for g in vectors.glob("*/graph-*.usearch")] == ["minilm"]
    stats = ok(run_cli(env, "stats", extra_env=settings))
    assert f"vectors/wordllama: {count:,} vectors stored, for re-scoring" in stats.stdout, describe(stats)
    again = ok(run_cli(env, "index", extra_env=settings))
    assert "Embedded" not in again.stdout, describe(again)
    found = ok(
        run_cli(env, "search", "ripples of spacetime from merging stars", "--json", extra_env=settings)
    )
    assert len(orjson.loads(found.stdout)) == 10
    unknown = failed(run_cli(env, "index", extra_env={"PAPERWIRE_RESCORE_MODEL": "no-such-model"}), 2)
    assert "unknown embedding model 'no-such-model'" in unknown.stderr, describe(unknown)


def test_index_keeps_a_nearest_neighbour_graph(env, open_store):
    """Past PAPERWIRE_VECTOR_GRAPH_MIN_ROWS vectors, `paperwire index` builds the graph that vector search
    then uses; run again with nothing new, it leaves the graph alone."""
    ok(run_cli(env, "import", "snapshot", SNAPSHOT, "-q"))
    count = open_store().count()
    graph_env = {"PAPERWIRE_VECTOR_GRAPH_MIN_ROWS": "100"}
    first = ok(run_cli(env, "index", extra_env=graph_env, timeout=300))
    assert f"Embedded {count:,} papers" in first.stdout, describe(first)
    assert f"Added {count:,} vectors to the nearest-neighbour graph" in first.stdout, describe(first)
    graphs = list(Path(env["PAPERWIRE_DATA_DIR"]).glob("index/vectors/*/graph-*.usearch"))
    assert len(graphs) == 1
    again = ok(run_cli(env, "index", extra_env=graph_env))
    assert "nearest-neighbour graph" not in again.stdout, describe(again)
    stats = ok(run_cli(env, "stats"))
    assert f"vectors/minilm: {count:,} vectors stored, the graph covers {count:,}" in stats.stdout
    state = orjson.loads(ok(run_cli(env, "stats", "--json")).stdout)["indexes"]["vectors/minilm"]
    assert state == {"vectors": count, "graph": count}
    found = ok(run_cli(env, "search", "the cosmic microwave background", "--mode", "semantic", "--json"))
    assert len(orjson.loads(found.stdout)) == 10
