"""The Jinja2 environment every page uses (autoescaping on: titles and abstracts contain <, & and LaTeX)."""

from __future__ import annotations

import hashlib
from datetime import datetime
from pathlib import Path

from fastapi.templating import Jinja2Templates

from paperwire import __version__
from paperwire.arxiv_ids import abs_url, pdf_url
from paperwire.latex import readable

HERE = Path(__file__).parent

templates = Jinja2Templates(directory=HERE / "templates")
# Templates ship inside the package and change only with it: checking every template file's mtime on
# every page (Jinja's default) cost a tenth of a search page's time under load.
templates.env.auto_reload = False


def _day(value: datetime | None) -> str:
    return f"{value:%b} {value.day}, {value.year}" if value else ""


templates.env.filters["day"] = _day
templates.env.filters["latex"] = readable
templates.env.filters["abs_url"] = abs_url
templates.env.filters["pdf_url"] = pdf_url
templates.env.globals["version"] = __version__
# The stylesheet's and script's links carry a digest of their content: a browser that cached the old
# files fetches the new ones as soon as they change, whatever the package version says.
templates.env.globals["static_version"] = hashlib.sha256(
    b"".join((HERE / "static" / name).read_bytes() for name in ("style.css", "app.js"))
).hexdigest()[:12]


def _feed_links(request):  # noqa: ANN001, ANN202 - imported late: feeds imports the search engine
    from paperwire.web.feeds import feed_links

    return feed_links(request)


templates.env.globals["feed_links"] = _feed_links


def _csrf_token(request) -> str:  # noqa: ANN001 - imported late: auth imports the store and the settings
    from paperwire.web.auth import csrf_token

    return csrf_token(request)


def _current_user(request):  # noqa: ANN001, ANN202
    from paperwire.web.auth import viewer

    return viewer(request)


# Forms that change state carry {{ csrf_token(request) }}; the header shows {{ current_user(request) }}.
templates.env.globals["csrf_token"] = _csrf_token
templates.env.globals["current_user"] = _current_user
