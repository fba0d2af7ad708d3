import pytest

from paperwire.arxiv_ids import InvalidArxivId, is_arxiv_id, normalize_arxiv_id, parse_arxiv_id


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
