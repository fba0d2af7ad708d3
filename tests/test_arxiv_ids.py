import pytest

from paperwire.arxiv_ids import (
    InvalidArxivId,
    abs_url,
    is_arxiv_id,
    normalize_arxiv_id,
    parse_arxiv_id,
    pdf_url,
)


@pytest.mark.parametrize(
    "text, expected",
    [
        ("2401.14040", ("2401.14040", None)),
        ("2401.14040v3", ("2401.14040", 3)),
        ("0704.0001", ("0704.0001", None)),
        ("arXiv:2401.14040v2", ("2401.14040", 2)),
        ("https://arxiv.org/abs/2401.14040v2", ("2401.14040", 2)),
        ("http://arxiv.org/pdf/2401.14040v1.pdf", ("2401.14040", 1)),
        ("https://export.arxiv.org/abs/hep-th/9901001", ("hep-th/9901001", None)),
        ("hep-th/9901001", ("hep-th/9901001", None)),
        ("hep-th/9901001v2", ("hep-th/9901001", 2)),
        ("oai:arXiv.org:hep-th/9901001", ("hep-th/9901001", None)),
        ("oai:arXiv.org:0704.0001", ("0704.0001", None)),
        ("math.GT/0309136", ("math/0309136", None)),
        ("cond-mat.str-el/0601001v1", ("cond-mat/0601001", 1)),
        ("  quant-ph/0201082v1 ", ("quant-ph/0201082", 1)),
    ],
)
def test_accepted_forms(text, expected):
    assert parse_arxiv_id(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "",
        "abc",
        "0000.0000",
        "2401.1404",
        "1501.1234",
        "1412.12345",
        "2413.00001",
        "hep-th/9913001",
        "hep th/9901001",
        "2401.14040vx",
    ],
)
def test_rejected_forms(text):
    with pytest.raises(InvalidArxivId):
        parse_arxiv_id(text)
    assert not is_arxiv_id(text)


def test_normalize_drops_version():
    assert normalize_arxiv_id("2401.14040v9") == "2401.14040"


def test_urls_without_a_scheme_as_pasted_from_an_address_bar():
    from paperwire.arxiv_ids import normalize_arxiv_id

    assert normalize_arxiv_id("arxiv.org/abs/2405.00002") == "2405.00002"
    assert normalize_arxiv_id("www.arxiv.org/pdf/2405.00002v3") == "2405.00002"


def test_id_keys_round_trip_and_never_collide():
    from paperwire.arxiv_ids import id_from_key, id_key

    ids = [
        "0704.0001", "0704.9999", "1412.9999", "1501.00001", "2401.14040", "2612.99999", "9912.99999",
        "hep-th/9901001", "math/0309136", "chao-dyn/9301001", "cond-mat/0001001", "q-alg/9501001",
        "a/0000000", "hep-th/0000001", "hep-ph/9901001", "physics/0701001",
    ]  # fmt: skip
    keys = [id_key(i) for i in ids]
    assert [id_from_key(k) for k in keys] == ids
    assert len(set(keys)) == len(keys) and all(0 < k < 2**63 for k in keys)
    assert id_key("longarchive/9901001") is None  # no room: callers fall back to the stored id


def test_links_to_arxiv():
    assert abs_url("hep-th/9901001") == "https://arxiv.org/abs/hep-th/9901001"
    assert pdf_url("2401.14040") == "https://arxiv.org/pdf/2401.14040"
    assert pdf_url("2401.14040", 3) == "https://arxiv.org/pdf/2401.14040v3"
    assert pdf_url("2401.14040", None) == "https://arxiv.org/pdf/2401.14040"
    # Every id these links are built from parses back to itself.
    assert parse_arxiv_id(pdf_url("2401.14040", 3)) == ("2401.14040", 3)
