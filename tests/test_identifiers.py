"""Reading a query as the identifiers of papers (search/identifiers.py)."""

from __future__ import annotations

import pytest

from paperwire.search.identifiers import Identifier, identifiers_in


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("2501.17461", [("arxiv", "2501.17461")]),
        ("  arXiv:2501.17461v2 ", [("arxiv", "2501.17461")]),
        ("arxiv: 2501.17461", [("arxiv", "2501.17461")]),
        ("https://arxiv.org/abs/2501.17461", [("arxiv", "2501.17461")]),
        ("arxiv.org/pdf/2501.17461v1.pdf", [("arxiv", "2501.17461")]),
        ("https://huggingface.co/papers/2501.17461", [("arxiv", "2501.17461")]),
        ("https://www.alphaxiv.org/abs/2501.17461", [("arxiv", "2501.17461")]),
        ("hep-th/9901001", [("arxiv", "hep-th/9901001")]),
        ("math.GT/0309136v1", [("arxiv", "math/0309136")]),
        ("10.1109/ICST62969.2025.10988919", [("doi", "10.1109/ICST62969.2025.10988919")]),
        ("doi: 10.1109/ICST62969.2025.10988919.", [("doi", "10.1109/ICST62969.2025.10988919")]),
        ("https://doi.org/10.1103/PhysRevD.76.013009", [("doi", "10.1103/PhysRevD.76.013009")]),
        # arXiv's own DOIs carry the id.
        ("https://doi.org/10.48550/arXiv.2501.17461", [("arxiv", "2501.17461")]),
        # Several, in the query's order, once each.
        (
            "2501.17461, 2306.03845; 2501.17461v3",
            [("arxiv", "2501.17461"), ("arxiv", "2306.03845")],
        ),
        ("10.1000/a, hep-th/9901001", [("doi", "10.1000/a"), ("arxiv", "hep-th/9901001")]),
    ],
)
def test_identifiers_are_read(query, expected):
    assert identifiers_in(query) == [Identifier(*e) for e in expected]


@pytest.mark.parametrize(
    "query",
    [
        "",
        "   ",
        "speculative decoding",
        "2501.17461 oracles",  # words beside an id: a search of words
        "10 papers on decoding",
        "2501.1746",  # an id being typed, not yet one
        "1513.00001",  # month 13
        "https://example.org/2501.17461",
        "ti:2501.17461",
    ],
)
def test_other_queries_are_not_identifiers(query):
    assert identifiers_in(query) is None


def test_identifier_display_and_links():
    assert str(Identifier("arxiv", "2501.17461")) == "arXiv:2501.17461"
    assert Identifier("arxiv", "hep-th/9901001").url == "https://arxiv.org/abs/hep-th/9901001"
    doi = Identifier("doi", "10.1002/(SICI)1097-4636(199603)31:3<317::AID-JBM5>3.0.CO;2-M")
    assert str(doi).startswith("doi:10.1002/")
    # Characters that cannot stand in a URL are escaped; the DOI's own punctuation is kept.
    assert doi.url == "https://doi.org/10.1002/(SICI)1097-4636(199603)31:3%3C317::AID-JBM5%3E3.0.CO;2-M"
