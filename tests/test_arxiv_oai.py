"""arXiv OAI-PMH: parsing real responses, and harvesting through a real HTTP server into real stores."""

from __future__ import annotations

import dataclasses
import json
import re
from datetime import UTC, datetime
from pathlib import Path

import pytest

from paperwire.arxiv_ids import parse_arxiv_id
from paperwire.config import get_settings
from paperwire.ingest.arxiv_oai import (
    ArxivOAISource,
    OAIError,
    harvest_oai,
    parse_oai_page,
    state_key,
)
from paperwire.ingest.base import SOURCES, IngestError
from paperwire.ingest.http import RemoteError
from paperwire.models import Paper, Rejected, Tombstone
from paperwire.store import Store
from paperwire.text import clean_line
from tests.recorded_server import RecordedServer, Reply

OAI_DIR = Path(__file__).parent / "fixtures" / "arxiv-oai"
XML_FILES = sorted(OAI_DIR.rglob("*.xml"))
HEP_EX = OAI_DIR / "functional__arxiv__fixtures__http_server__records__arxiv-physics-hep-ex.xml"
HEP_TH = OAI_DIR / "functional__arxiv__fixtures__http_server__records__arxiv-physics-hep-th.xml"
SINGLE = OAI_DIR / "functional__arxiv__fixtures__http_server__records__arxiv-single.xml"
MANY = OAI_DIR / "unit__responses__arxiv__sample_arxiv_record.xml"
OAI_DC = OAI_DIR / "oai_dc" / "test_arxiv_data_oai_dc_ListRecords.xml"
KEY = state_key("arXiv", "physics:hep-ex")
# Ends of a paragraph, as text.clean_abstract recognises them: a "\n" anywhere else is a hard wrap.
SENTENCE_END = (".", "!", "?", ":", ")", "]")


def prefix_of(path: Path) -> str:
    return "oai_dc" if path.parent.name == "oai_dc" else "arXiv"


def parse_file(path: Path) -> list:
    return parse_oai_page(path.read_bytes(), prefix_of(path)).items


def by_id(path: Path) -> dict[str, Paper]:
    return {p.id: p for p in parse_file(path)}


def utc_day(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


# -- synthetic responses around real records ------------------------------------------------------


def records_of(path: Path) -> list[str]:
    return re.findall(r"<record>.*?</record>", path.read_text(), re.S)


def restamp(record: str, day: str) -> str:
    return re.sub(r"<datestamp>[^<]*</datestamp>", f"<datestamp>{day}</datestamp>", record)


def envelope(body: str) -> str:
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<OAI-PMH xmlns="http://www.openarchives.org/OAI/2.0/" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
<responseDate>2017-12-20T10:00:00Z</responseDate>
<request verb="ListRecords">http://export.arxiv.org/oai2</request>
{body}
</OAI-PMH>"""


def list_records(*records: str, token: str | None = None, size: int = 6, cursor: int = 0) -> str:
    tail = (
        ""
        if token is None
        else f'<resumptionToken completeListSize="{size}" cursor="{cursor}">{token}</resumptionToken>'
    )
    return envelope(f"<ListRecords>\n{''.join(records)}\n{tail}</ListRecords>")


def oai_error(code: str, text: str = "") -> str:
    return envelope(f'<error code="{code}">{text}</error>')


def deleted(identifier: str, day: str) -> str:
    return (
        f'<record><header status="deleted"><identifier>oai:arXiv.org:{identifier}</identifier>'
        f"<datestamp>{day}</datestamp><setSpec>physics:hep-ex</setSpec></header></record>"
    )


EX, TH = records_of(HEP_EX), records_of(HEP_TH)
# Three pages chained by tokens A → B → empty; the last page's records changed a day later.
PAGE1 = list_records(EX[0], EX[1], token="A", cursor=0)
PAGE2 = list_records(EX[2], TH[0], token="B", cursor=2)
PAGE3 = list_records(restamp(TH[1], "2017-12-15"), restamp(TH[2], "2017-12-15"), token="", cursor=4)
CHAIN_IDS = {"1706.05371", "1706.09418", "1707.00874", "1412.8323", "1507.07790", "1607.01710"}


# -- parsing every fixture --------------------------------------------------------------------------


@pytest.mark.parametrize("path", XML_FILES, ids=lambda p: p.name)
def test_every_fixture_parses_into_valid_papers(path: Path):
    page = parse_oai_page(path.read_bytes(), prefix_of(path))
    assert len(page.items) == len(records_of(path)) > 0
    stamps = []
    for item in page.items:
        assert isinstance(item, Paper), item
        assert parse_arxiv_id(item.id) == (item.id, None)
        assert item.title and "\n" not in item.title and item.title == clean_line(item.title)
        assert item.abstract and item.abstract == item.abstract.strip()
        for i, ch in enumerate(item.abstract):
            if ch == "\n":  # only between paragraphs, never a hard wrap
                assert item.abstract[:i].endswith(SENTENCE_END), (item.id, item.abstract[i - 30 : i + 30])
        assert "  " not in item.abstract
        assert item.authors and all(a.name == clean_line(a.name) and a.name for a in item.authors)
        assert item.categories and item.primary_category == item.categories[0]
        assert item.published is not None and item.published.tzinfo == UTC
        assert item.updated is not None and item.updated >= item.published
        assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", item.metadata_date)
        assert item.source == "arxiv_oai"
        assert item.version == (2 if item.updated > item.published else 1)
        for text in (item.comments, item.journal_ref, item.doi, item.report_no, item.license):
            assert text is None or (text and text == clean_line(text))
        stamps.append(item.metadata_date)
    assert page.max_datestamp == max(stamps)
    assert page.response_date and page.response_date.endswith("Z")


def test_arxiv_format_fields():
    ex = by_id(HEP_EX)
    p = ex["1706.09418"]
    assert p.title == "R-Parity Violation at the LHC"
    assert p.categories == ["hep-ph", "hep-ex"] and p.primary_category == "hep-ph"
    assert (p.published, p.updated) == (utc_day("2017-06-28"), utc_day("2017-11-26"))
    assert p.metadata_date == "2017-12-14" and p.version == 2
    assert p.doi == "10.1140/epjc/s10052-017-5414-4"
    assert p.journal_ref == "Eur. Phys. J. C (2017) 77:856"
    assert p.report_no == "BONN-TH-2017-03"
    assert p.license == "http://arxiv.org/licenses/nonexclusive-distrib/1.0/"
    assert p.comments == (
        "43 pages, 13 tables, 17 figures; updated Figs. 11-17 and Tab. 12 including NLO corrections; "
        "version accepted for publication in EPJC"
    )
    assert [a.name for a in p.authors] == [
        "Daniel Dercks", "Herbi Dreiner", "Manuel E. Krauss", "Toby Opferkuch", "Annika Reinert",
    ]  # fmt: skip
    assert ex["1707.00874"].report_no == "IITH-PH-0001/17, IMSc/2017/07/05"
    assert ex["1707.00874"].doi is None and ex["1707.00874"].journal_ref is None
    title = by_id(HEP_EX)["1706.05371"].title
    assert title == "Evaluation of Silicon Photomultipliers for use as Photosensors in Liquid Xenon Detectors"

    # A paper with one version: no <updated>, so updated = published = the day it was submitted.
    thesis = by_id(OAI_DIR / "unit__responses__arxiv__sample_arxiv_record10.xml")["1606.04259"]
    assert thesis.published == thesis.updated == utc_day("2016-06-14") and thesis.version == 1
    assert thesis.comments == (
        'Phd thesis in Fundamental and Applied Physics presented at University "Federico II" '
        "(Naples, Italy) on 29th April 2016"
    )
    assert '"boosted horizon"' in thesis.abstract
    assert thesis.categories[:2] == ["math.AP", "hep-th"]

    # Two paragraphs stay two; the hard wraps inside them go.
    abstract = by_id(SINGLE)["1401.2122"].abstract
    assert abstract == (
        "We introduce a novel systematic construction for integrable (3+1)-dimensional dispersionless "
        "systems using nonisospectral Lax pairs that involve contact vector fields.\n"
        "In particular, we present new large classes of (3+1)-dimensional integrable dispersionless "
        "systems associated to the Lax pairs which are polynomial and rational in the spectral parameter."
    )


def test_arxiv_format_authors_and_affiliations():
    kamiokande = by_id(OAI_DIR / "unit__responses__arxiv__sample_arxiv_record8.xml")["1606.07538"]
    kavli = "Kavli Institute for the Physics and Mathematics of the Universe"
    tokyo = "Kamioka Observatory, Institute for Cosmic Ray Research, University of Tokyo"
    # The XML has 8 <author>s; one is arXiv's ":" separator, not a person.
    assert len(kamiokande.authors) == 7
    assert kamiokande.authors[0].name == "Super-Kamiokande Collaboration"
    assert kamiokande.authors[1].name == "K. Abe" and kamiokande.authors[1].affiliation == f"{tokyo}; {kavli}"
    assert kamiokande.authors[2].affiliation == kavli
    assert kamiokande.authors[-1].name == "P. de Perio"

    saxton = by_id(OAI_DIR / "unit__responses__arxiv__sample_arxiv_record7.xml")["1606.07066"].authors
    assert (saxton[0].name, saxton[0].affiliation) == ("Curtis J. Saxton Walton", "Technion; DESY")
    assert (saxton[2].name, saxton[2].affiliation) == ("Kinwah Wu", None)

    bicep = by_id(OAI_DIR / "unit__responses__arxiv__sample_arxiv_record4.xml")["1603.05976"].authors
    assert "R. W. IV" in [a.name for a in bicep]  # forenames keyname suffix
    assert ":" not in [a.name for a in bicep]

    planck = by_id(OAI_DIR / "unit__responses__arxiv__sample_arxiv_record5.xml")["1604.05585"].authors
    assert (
        planck[0].name == "Günter Burigana" and planck[0].affiliation == "on behalf of Planck Collaboration"
    )

    # An <arXiv> block without its own xmlns (it inherits the OAI namespace) still parses.
    coherence = by_id(OAI_DIR / "unit__responses__arxiv__sample_arxiv_record0.xml")["1601.03238"]
    assert coherence.authors[0].name == "Planck Collaboration" and coherence.journal_ref.startswith(
        "Phys.Rev. D93"
    )


def test_oai_dc_page():
    page = parse_oai_page(OAI_DC.read_bytes(), "oai_dc")
    assert page.resumption_token == "6960524|1001"
    assert (page.complete_list_size, page.cursor) == (1162, 0)
    assert page.response_date == "2024-01-27T17:53:42Z" and page.max_datestamp == "2024-01-26"
    papers = {p.id: p for p in page.items}
    assert list(papers) == ["1303.2033", "2401.14034", "2401.14036", "2401.14038", "2401.14040"]
    fourier = papers["1303.2033"]
    assert fourier.title == "Extended Fourier analysis of signals"
    assert [a.name for a in fourier.authors] == ["Vilnis Liepins"]
    assert fourier.comments == "32 pages, 9 figures"
    assert (
        fourier.abstract.startswith("This summary of the doctoral thesis")
        and "Comment" not in fourier.abstract
    )
    assert (fourier.published, fourier.updated) == (utc_day("2013-03-08"), utc_day("2024-01-23"))
    assert fourier.version == 2 and fourier.metadata_date == "2024-01-25"
    assert fourier.categories == ["cs"]  # oai_dc has no category codes: the setSpec is all we know
    chat = papers["2401.14040"]
    assert [a.name for a in chat.authors] == ["Francesco Periti", "Haim Dubossarsky", "Nina Tahmasebi"]
    assert chat.comments == "Accepted to the Findings of EACL 2024" and chat.version == 1
    assert papers["2401.14036"].authors[0].name == "Jiu-Cheng Xie"


def test_oai_dc_identifiers_and_sets():
    record = records_of(OAI_DC)[1]
    record = record.replace(
        "<dc:identifier>http://arxiv.org/abs/2401.14034</dc:identifier>",
        "<dc:identifier>http://arxiv.org/abs/2401.14034</dc:identifier>"
        "<dc:identifier>Phys. Rev. D 109 (2024) 014501</dc:identifier>"
        "<dc:identifier>doi:10.1103/PhysRevD.109.014501</dc:identifier>",
    )
    record = record.replace(
        "<setSpec>cs</setSpec>", "<setSpec>math:math:AG</setSpec><setSpec>physics:hep-th</setSpec>"
    )
    paper = parse_oai_page(list_records(record), "oai_dc").items[0]
    assert paper.id == "2401.14034"
    assert paper.doi == "10.1103/PhysRevD.109.014501"
    assert paper.journal_ref == "Phys. Rev. D 109 (2024) 014501"
    assert paper.categories == ["math.AG", "hep-th"]


def test_cross_check_with_the_fixture_projects_expected_results():
    """hepcrawl's expected parse of the same responses: titles, abstracts, dates, ids, dois, categories."""
    ours = (
        by_id(HEP_EX)
        | by_id(HEP_TH)
        | by_id(SINGLE)
        | by_id(OAI_DIR / "unit__responses__arxiv__sample_arxiv_record10.xml")
    )
    expected = json.loads((OAI_DIR / "functional__arxiv__fixtures__arxiv_expected.json").read_text())
    expected += json.loads((OAI_DIR / "functional__arxiv__fixtures__arxiv_expected_single.json").read_text())
    expected += json.loads(
        (OAI_DIR / "unit__responses__arxiv__sample_arxiv_record10_parsed.json").read_text()
    )[0]["results_data"]
    assert len(expected) == 8
    for exp in expected:
        eprint = exp["arxiv_eprints"][0]
        p = ours[eprint["value"]]
        assert p.title == exp["titles"][0]["title"]
        assert p.published == utc_day(exp["preprint_date"])
        assert set(p.categories) == set(eprint["categories"])
        assert p.doi == (exp["dois"][0]["value"] if "dois" in exp else None)
        assert p.journal_ref == (
            exp["publication_info"][0]["pubinfo_freetext"] if "publication_info" in exp else None
        )
        assert (p.report_no.split(", ") if p.report_no else []) == [
            r["value"] for r in exp.get("report_numbers", [])
        ]
        assert p.license == exp["license"][0]["url"]
        if "abstracts" in exp:  # hepcrawl joins paragraphs with a space, we keep them
            assert p.abstract.replace("\n", " ") == exp["abstracts"][0]["value"]
        if "public_notes" in exp:
            assert p.comments == clean_line(exp["public_notes"][0]["value"])
        surnames = sorted(a["full_name"].split(",")[0] for a in exp["authors"])
        assert sorted(s for s in surnames if any(a.name.endswith(" " + s) for a in p.authors)) == surnames


# -- synthetic edge cases ------------------------------------------------------------------------------


def test_old_style_ids():
    old = EX[1].replace("oai:arXiv.org:1706.09418", "oai:arXiv.org:hep-ph/9901001")
    old = old.replace("<id>1706.09418</id>", "<id>hep-ph/9901001</id>")
    with_subject_class = re.sub(
        r"<identifier>[^<]*</identifier>", "<identifier>oai:arXiv.org:math.GT/0309136</identifier>", EX[2]
    )
    with_subject_class = re.sub(r"<id>[^<]*</id>", "", with_subject_class)  # id from the header only
    items = parse_oai_page(list_records(old, with_subject_class)).items
    assert [p.id for p in items] == ["hep-ph/9901001", "math/0309136"]


def test_deleted_record_becomes_a_tombstone():
    page = parse_oai_page(list_records(EX[0], deleted("1706.09418", "2017-12-20"), token=""))
    assert isinstance(page.items[0], Paper)
    assert page.items[1] == Tombstone("1706.09418", metadata_date="2017-12-20", source="arxiv_oai")
    assert page.max_datestamp == "2017-12-20"
    assert page.resumption_token is None  # an empty token marks the last page


def test_malformed_records_are_rejected_and_the_rest_kept():
    bad_id = EX[0].replace("<id>1706.05371</id>", "<id>not-an-id</id>")
    no_title = re.sub(r"<title>.*?</title>", "<title>  </title>", EX[1], flags=re.S)
    bad_date = EX[2].replace("<created>2017-07-04</created>", "<created>2017-07-44</created>")
    no_metadata = re.sub(r"<metadata>.*</metadata>", "", TH[0], flags=re.S)
    items = parse_oai_page(list_records(bad_id, no_title, bad_date, no_metadata, TH[1])).items
    assert [type(i) for i in items] == [Rejected, Rejected, Rejected, Rejected, Paper]
    assert items[0].where == "record 1 (oai:arXiv.org:1706.05371)" and "not-an-id" in items[0].reason
    assert items[1].where == "record 2 (oai:arXiv.org:1706.09418)" and "title" in items[1].reason
    assert "2017-07-44" in items[2].reason
    assert "no metadata" in items[3].reason
    assert items[4].id == "1507.07790"


def test_oai_errors():
    empty = parse_oai_page(oai_error("noRecordsMatch", "no records"))
    assert (empty.items, empty.resumption_token, empty.max_datestamp) == ([], None, None)
    with pytest.raises(OAIError) as err:
        parse_oai_page(oai_error("badResumptionToken", "expired"))
    assert err.value.code == "badResumptionToken" and "expired" in str(err.value)
    with pytest.raises(OAIError, match="badArgument"):
        parse_oai_page(oai_error("badArgument"))
    with pytest.raises(IngestError, match="not a readable"):
        parse_oai_page(PAGE1[:-40])
    with pytest.raises(IngestError, match="not an OAI-PMH"):
        parse_oai_page("<feed/>")
    # defusedxml refuses entity tricks outright.
    bomb = '<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa">]><OAI-PMH>&a;</OAI-PMH>'
    with pytest.raises(IngestError):
        parse_oai_page(bomb)


def test_a_later_version_beats_the_older_record(store: Store):
    # The same paper as OAI listed it before its second version, with a comment that later changed.
    v1 = re.sub(r"<updated>[^<]*</updated>", "", EX[0]).replace("10 pages, 9 figures", "9 pages")
    v1 = restamp(v1, "2017-06-19")
    old = parse_oai_page(list_records(v1)).items[0]
    new = parse_oai_page(list_records(EX[0])).items[0]
    store.apply([new])
    assert store.apply([old]).unchanged == 1  # an older record never changes a newer one
    assert store.get("1706.05371").comments == "10 pages, 9 figures"

    # Same version and day, later datestamp (a journal-ref was added): the later-changed record wins.
    later = restamp(EX[0], "2018-01-05").replace(
        "</comments>", "</comments><journal-ref>JINST 13 (2018)</journal-ref>"
    )
    assert store.apply(parse_oai_page(list_records(later)).items).updated == 1
    got = store.get("1706.05371")
    assert got.journal_ref == "JINST 13 (2018)" and got.metadata_date == "2018-01-05"
    assert got.updated == utc_day("2017-12-12") and got.published == utc_day("2017-06-16")


# -- harvesting over HTTP --------------------------------------------------------------------------


@pytest.fixture
def oai(env, monkeypatch, recorded_server: RecordedServer) -> RecordedServer:
    """The recorded server as arXiv's OAI endpoint, no politeness delay."""
    monkeypatch.setenv("PAPERWIRE_ARXIV_OAI_URL", recorded_server.url + "/oai")
    return recorded_server


def serve_chain(server: RecordedServer, *, page2: list[Reply] | None = None, **first: str) -> None:
    server.add("/oai", Reply(PAGE1), verb="ListRecords", metadataPrefix="arXiv", **first)
    server.add("/oai", *(page2 or [Reply(PAGE2)]), verb="ListRecords", resumptionToken="A")
    server.add("/oai", Reply(PAGE3), verb="ListRecords", resumptionToken="B")


def token_only(token: str) -> dict[str, str]:
    return {"verb": "ListRecords", "resumptionToken": token}


def catalogue(store: Store) -> dict[str, dict]:
    """Every row (deleted ones too) without bookkeeping, to compare two stores."""
    rows = store.changes_since(0, limit=10_000)
    return {
        r.id: {f.name: getattr(r, f.name) for f in dataclasses.fields(Paper)} | {"deleted": r.deleted}
        for r in rows
    }


def test_harvest_follows_the_resumption_chain(store: Store, oai: RecordedServer):
    serve_chain(oai, **{"from": "2017-12-01", "set": "physics:hep-ex"})
    result = harvest_oai(store, set_spec="physics:hep-ex", from_date="2017-12-01")
    assert (result.pages, result.from_date, result.until, result.resumed) == (3, "2017-12-01", None, False)
    assert result.summary.imported == 6 and result.summary.skipped == 0
    assert [r.params for r in oai.requests] == [
        {"verb": "ListRecords", "metadataPrefix": "arXiv", "set": "physics:hep-ex", "from": "2017-12-01"},
        token_only("A"),
        token_only("B"),
    ]
    assert all(r.headers["User-Agent"].startswith("paperwire/") for r in oai.requests)
    assert {p.id for p in store.changes_since(0)} == CHAIN_IDS
    assert store.get("1607.01710").metadata_date == "2017-12-15"
    state = store.get_state(KEY)
    assert state["token"] is None and state["last_datestamp"] == "2017-12-15" and state["complete"]
    assert (state["from"], state["until"], state["max_datestamp"]) == ("2017-12-01", None, "2017-12-15")


def test_harvest_waits_out_a_503(store: Store, oai: RecordedServer):
    busy = Reply("try later", status=503, headers={"Retry-After": "1"}, content_type="text/plain")
    serve_chain(oai, page2=[busy, Reply(PAGE2)])
    result = harvest_oai(store, set_spec="physics:hep-ex")
    assert result.pages == 3 and store.count() == 6
    assert [r.params for r in oai.requests][1:] == [token_only("A"), token_only("A"), token_only("B")]
    assert oai.requests[2].at - oai.requests[1].at >= 0.95


def test_harvest_applies_deletions(store: Store, oai: RecordedServer):
    store.apply(parse_file(HEP_EX))
    assert store.get("1706.09418") is not None
    oai.add("/oai", Reply(list_records(deleted("1706.09418", "2017-12-20"), EX[0])), verb="ListRecords")
    result = harvest_oai(store, set_spec="physics:hep-ex")
    assert (result.summary.deleted, result.summary.unchanged) == (1, 1)
    assert store.get("1706.09418") is None
    assert store.get("1706.09418", include_deleted=True).deleted
    assert store.count() == 2
    assert store.get_state(KEY)["last_datestamp"] == "2017-12-20"


def test_next_harvest_starts_at_the_saved_datestamp(store: Store, oai: RecordedServer):
    serve_chain(oai)
    harvest_oai(store, set_spec="physics:hep-ex", until="2017-12-31")
    assert store.get_state(KEY)["last_datestamp"] == "2017-12-15"
    oai.add("/oai", Reply(oai_error("noRecordsMatch")), verb="ListRecords", metadataPrefix="arXiv")
    second = harvest_oai(store, set_spec="physics:hep-ex")
    assert second.from_date == "2017-12-15" and second.pages == 1 and second.summary.read == 0
    assert oai.requests[-1].params == {
        "verb": "ListRecords", "metadataPrefix": "arXiv", "set": "physics:hep-ex", "from": "2017-12-15",
    }  # fmt: skip
    assert store.get_state(KEY)["last_datestamp"] == "2017-12-15"
    # Another set keeps its own position: it starts from the beginning.
    harvest_oai(store, set_spec="physics:hep-th")
    assert "from" not in oai.requests[-1].params


def test_interrupted_harvest_resumes_from_its_token(store: Store, oai: RecordedServer, monkeypatch, tmp_path):
    monkeypatch.setenv("PAPERWIRE_HTTP_RETRIES", "1")
    broken = Reply("internal error", status=500, headers={"Retry-After": "0"}, content_type="text/plain")
    serve_chain(oai, page2=[broken])
    with pytest.raises(RemoteError, match="2 attempts"):
        harvest_oai(store, set_spec="physics:hep-ex")
    assert [r.params.get("resumptionToken") for r in oai.requests] == [None, "A", "A"]
    state = store.get_state(KEY)
    assert state["token"] == "A" and not state["complete"] and state["max_datestamp"] == "2017-12-14"
    assert store.count() == 2  # the first page was committed

    oai.add("/oai", Reply(PAGE2), verb="ListRecords", resumptionToken="A")  # the server recovered
    seen = len(oai.requests)
    result = harvest_oai(store, set_spec="physics:hep-ex")
    assert result.resumed and result.pages == 2 and result.summary.imported == 4
    assert [r.params for r in oai.requests[seen:]] == [token_only("A"), token_only("B")]
    assert store.get_state(KEY)["token"] is None and store.get_state(KEY)["last_datestamp"] == "2017-12-15"

    reference = Store.open(f"sqlite:///{tmp_path / 'reference.db'}")
    try:
        harvest_oai(reference, set_spec="physics:hep-ex")
        assert catalogue(store) == catalogue(reference)
    finally:
        reference.close()


def test_saved_token_of_another_range_is_not_reused(store: Store, oai: RecordedServer):
    store.set_state(KEY, {"from": "2017-01-01", "until": None, "token": "A", "last_datestamp": None})
    serve_chain(oai, **{"from": "2017-12-01"})
    result = harvest_oai(store, set_spec="physics:hep-ex", from_date="2017-12-01")
    assert not result.resumed and result.pages == 3
    assert oai.requests[0].params["from"] == "2017-12-01"


def test_bad_resumption_token_restarts_the_run(store: Store, oai: RecordedServer):
    store.set_state(
        KEY, {"from": "2017-12-01", "until": None, "token": "EXPIRED", "last_datestamp": "2017-12-01"}
    )
    serve_chain(oai, **{"from": "2017-12-01"})
    oai.add("/oai", Reply(oai_error("badResumptionToken", "expired")), resumptionToken="EXPIRED")
    result = harvest_oai(store, set_spec="physics:hep-ex")
    assert not result.resumed and result.from_date == "2017-12-01" and result.pages == 3
    assert [r.params.get("resumptionToken") for r in oai.requests] == ["EXPIRED", None, "A", "B"]
    assert oai.requests[1].params["from"] == "2017-12-01"
    assert store.count() == 6 and store.get_state(KEY)["token"] is None


def test_a_server_that_rejects_every_token_fails(store: Store, oai: RecordedServer):
    serve_chain(oai, page2=[Reply(oai_error("badResumptionToken"), status=400)])
    with pytest.raises(OAIError) as err:
        harvest_oai(store, set_spec="physics:hep-ex")
    assert err.value.code == "badResumptionToken"
    assert len(oai.requests) == 6  # the run was restarted twice, then given up


def test_no_records_match_is_an_empty_harvest(store: Store, oai: RecordedServer):
    oai.add("/oai", Reply(oai_error("noRecordsMatch", "nothing new")), verb="ListRecords")
    result = harvest_oai(store, from_date="2030-01-01", until="2030-01-31")
    assert (result.pages, result.summary.read, store.count()) == (1, 0, 0)
    state = store.get_state(state_key("arXiv", None))
    assert state["token"] is None and state["last_datestamp"] == "2030-01-31"


def test_bad_arguments_are_refused(sqlite_store: Store):
    with pytest.raises(ValueError, match="YYYY-MM-DD"):
        harvest_oai(sqlite_store, from_date="2024-13-01")
    with pytest.raises(ValueError, match="YYYY-MM-DD"):
        harvest_oai(sqlite_store, until="yesterday")
    with pytest.raises(ValueError, match="after"):
        harvest_oai(sqlite_store, from_date="2024-02-01", until="2024-01-01")
    with pytest.raises(ValueError, match="metadataPrefix"):
        harvest_oai(sqlite_store, metadata_prefix="marc21")


def test_source_iterates_all_pages(oai: RecordedServer):
    assert SOURCES["arxiv_oai"] is ArxivOAISource
    serve_chain(oai)
    oai.add(
        "/oai", Reply(list_records(EX[0], deleted("1706.09418", "2017-12-20"), token="")), resumptionToken="B"
    )
    source = ArxivOAISource(set_spec="physics:hep-ex")
    items = list(source.items())
    assert [type(i).__name__ for i in items] == ["Paper"] * 5 + ["Tombstone"]
    assert source.pages == 3 and len(oai.requests) == 3


def test_source_reads_oai_dc(oai: RecordedServer):
    oai.add("/oai", Reply(OAI_DC.read_bytes()), verb="ListRecords", metadataPrefix="oai_dc", set="cs")
    oai.add("/oai", Reply(list_records(token="")), resumptionToken="6960524|1001")
    items = list(ArxivOAISource(set_spec="cs", metadata_prefix="oai_dc", settings=get_settings()).items())
    assert len(items) == 5 and all(isinstance(i, Paper) and i.categories == ["cs"] for i in items)
    assert oai.requests[1].params == token_only("6960524|1001")
