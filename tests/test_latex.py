from paperwire.latex import readable


def test_math_and_text_macros_become_unicode():
    assert readable(r"$\mathcal{O}(n^2)$ bounds with $\alpha \leq 10^{-3}$") == "𝒪(n²) bounds with α ≤ 10⁻³"
    assert readable(r"Schr\"odinger and H$_2$O") == "Schrödinger and H₂O"
    assert readable(r"\textit{Ab initio} study") == "Ab initio study"


def test_plain_text_is_untouched_and_percent_is_not_a_comment():
    assert readable("A 50% gain & <b>") == "A 50% gain & <b>"
    assert readable("snake_case_name and x^y") == "snake_case_name and x^y"
    assert readable(r"A 50% gain in $\beta$") == "A 50% gain in β"


def test_scripts_without_unicode_forms_stay_readable():
    assert readable(r"$x_{ij}$ and $L^{\infty}$") == "xᵢⱼ and L^∞"


def test_malformed_latex_never_raises():
    for text in ["broken $ math { unbalanced", "\\", "$$", "{{{", r"\begin{equation} x", "$" * 1000]:
        assert isinstance(readable(text), str)


def test_ampersand():
    assert readable("<b> & $x<y$ Q&A") == "<b> & x<y Q&A"


def test_fractions_roots_fonts_accents_and_references():
    assert (
        readable(r"$\frac{1}{2}$ and $\frac{a+b}{c}$, $\sqrt{s}$, $\sqrt[3]{x}$") == "1/2 and (a+b)/c, √s, ∛x"
    )
    assert readable(r"$\mathbb{R}^n$, $\mathfrak{g}$, $\vec v$, Erd\H{o}s") == "ℝⁿ, 𝔤, v⃗, Erdős"
    assert (
        readable(r"as shown \cite{smith2020} in Sec.~\ref{sec:x}\label{y}") == "as shown […] in Sec.\u00a0[…]"
    )
    assert readable(r"$$E = mc^2$$") == "E = mc²"


def test_colon_and_norms_from_real_abstracts():
    # arXiv 2405.11454's abstract: the colon and the norm bars must survive.
    assert readable(r"$f\colon\mathbb R^n\to\mathbb R$") == "f: ℝⁿ→ℝ"
    assert readable(r"$\nabla f(x)/\|\nabla f(x)\|$") == "∇ f(x)/‖∇ f(x)‖"
    assert readable(r"$\lVert x \rVert_2$ and $\lvert y \rvert$") == "‖ x ‖₂ and | y |"
