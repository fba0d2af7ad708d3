from paperwire.text import clean_abstract, clean_line, clean_optional


def test_title_hard_wrap_and_indent_become_one_line():
    assert clean_line(
        "Calculation of prompt diphoton production cross sections at Tevatron and\n  LHC energies"
    ) == ("Calculation of prompt diphoton production cross sections at Tevatron and LHC energies")


def test_latex_and_markup_are_kept_verbatim():
    title = r"Measurement of $\sqrt{s}$ < 7 TeV & <b>friends</b>"
    assert clean_line(title) == title


def test_abstract_joins_wrapped_lines_and_keeps_paragraphs():
    raw = (
        "  Partial cubes are isometric subgraphs of hypercubes. Structures on a graph\n"
        "defined by means of semicubes play a role.\n"
        "  The operations of Cartesian product and pasting are utilized\n"
        "in the paper.\n"
    )
    assert clean_abstract(raw) == (
        "Partial cubes are isometric subgraphs of hypercubes. Structures on a graph defined by means of "
        "semicubes play a role.\nThe operations of Cartesian product and pasting are utilized in the paper."
    )


def test_indented_continuation_mid_sentence_is_not_a_paragraph():
    raw = (
        "  Intersection bodies represent a class of objects and invoking\n  Radon transforms, we prove it.\n"
    )
    assert (
        clean_abstract(raw)
        == "Intersection bodies represent a class of objects and invoking Radon transforms, we prove it."
    )


def test_control_characters_are_dropped():
    assert clean_line("a\x00b\x1bc") == "abc"
    assert clean_abstract("x\x07y") == "xy"


def test_optional():
    assert clean_optional(None) is None
    assert clean_optional("   ") is None
    assert clean_optional(" 12 pages,\n  3 figures ") == "12 pages, 3 figures"
