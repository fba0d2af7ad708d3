"""Who is asking, and did they mean to: sessions, API tokens, CSRF protection, signed tokens.

* A session is a random id in a cookie; the store keeps only its SHA-256, so a copy of the database signs
  nobody in. The cookie is HttpOnly, SameSite=Lax, and Secure whenever the site is served over https.
* An API token (``Authorization: Bearer pw_...``) authenticates scripts; it too is stored hashed.
* CSRF: every form that changes state carries ``csrf_token`` (``{{ csrf_token(request) }}`` in a template;
  ``X-CSRF-Token`` header for ``fetch()``). The token is an HMAC of a random value kept in an HttpOnly
  cookie (a signed double-submit cookie), so it works for anonymous visitors too and another site can
  neither read nor forge it. Requests authenticated by a bearer token need none: a browser never adds an
  Authorization header to a cross-site request on its own.

Routes use the dependencies :func:`current_user`, :func:`require_user` and :func:`check_csrf`.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import secrets
from datetime import UTC, datetime, timedelta
from typing import Annotated
from urllib.parse import quote

import orjson
from fastapi import Depends, FastAPI, Request
from fastapi.responses import RedirectResponse, Response
from starlette.types import Message, Scope

from paperwire.config import Settings
from paperwire.store import Store, accounts
from paperwire.store.accounts import User
from paperwire.web.asgi import ResponseStartMiddleware
from paperwire.web.common import (
    ApiError,
    site_base,  # noqa: F401 - used here and imported from here
)

log = logging.getLogger("paperwire.web.auth")

SESSION_COOKIE = "paperwire_session"
CSRF_COOKIE = "paperwire_csrf"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"
TOKEN_PREFIX = "pw_"
# Characters of a token shown on the account page to tell tokens apart ("pw_" and 7 more: not enough to
# guess the other 36).
SHOWN_PREFIX = 10
CSRF_COOKIE_DAYS = 365

# Keys for different purposes are derived from the one signing key, so that nothing signed for one
# purpose (a CSRF token) is ever accepted for another (a sign-in link).
PURPOSE_LOGIN = "login-link"
PURPOSE_CSRF = "csrf"

# request.state keys: the user (looked up once per request) and a CSRF cookie to set on the response.
_STATE_USER = "paperwire_user"
_STATE_CSRF = "paperwire_csrf_new"


def _settings(request: Request) -> Settings:
    return request.app.state.settings


def _store(request: Request) -> Store:
    return request.app.state.store


def _now() -> datetime:
    return datetime.now(UTC)


def sha256_hex(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _purpose_key(key: bytes, purpose: str) -> bytes:
    return hmac.new(key, b"paperwire/" + purpose.encode(), hashlib.sha256).digest()


# -- signed tokens --------------------------------------------------------------------------------------


class BadSignature(ValueError):
    """The token was not made by this site with this key (tampered, truncated, or for another purpose)."""


def sign_token(key: bytes, purpose: str, payload: dict) -> str:
    """``payload`` as URL-safe text with an HMAC-SHA256: readable by anyone, changeable by no one."""
    body = _b64(orjson.dumps(payload))
    mac = hmac.new(_purpose_key(key, purpose), body.encode(), hashlib.sha256).digest()
    return f"{body}.{_b64(mac)}"


def unsign_token(key: bytes, purpose: str, token: str) -> dict:
    """The payload of a token made by :func:`sign_token` with the same key and purpose; BadSignature if not."""
    body, _, mac = (token or "").strip().partition(".")
    if not body or not mac or len(token) > 2000:
        raise BadSignature("malformed token")
    expected = hmac.new(_purpose_key(key, purpose), body.encode(), hashlib.sha256).digest()
    # Compare the text, not the decoded bytes: base64's last character carries spare bits that a
    # decoder ignores, so several spellings decode to one MAC; only the one we wrote is valid.
    if not hmac.compare_digest(_b64(expected).encode(), mac.encode("utf-8", "replace")):
        raise BadSignature("bad signature")
    try:
        payload = orjson.loads(_unb64(body))
    except (ValueError, TypeError):
        raise BadSignature("malformed payload") from None
    if not isinstance(payload, dict):
        raise BadSignature("malformed payload")
    return payload


def safe_next(path: str | None) -> str | None:
    """``path`` if it is a path on this site (``/papers/x?y``), else None: a redirect after sign-in must
    never lead to another site (``//evil.example``, ``/\\evil.example``, ``https://...``)."""
    if not path or not path.startswith("/") or path.startswith("//") or "\\" in path or len(path) > 1000:
        return None
    if any(ord(c) < 0x20 or c == "\x7f" for c in path):
        return None
    return path


def is_https(request: Request) -> bool:
    """Cookies get Secure when the public address is https, or the request itself came over https."""
    return _settings(request).base_url.startswith("https://") or request.url.scheme == "https"


# -- CSRF -----------------------------------------------------------------------------------------------


def _csrf_for(request: Request, seed: str) -> str:
    key = _purpose_key(_settings(request).signing_key(), PURPOSE_CSRF)
    return _b64(hmac.new(key, seed.encode(), hashlib.sha256).digest())


def _csrf_seed(request: Request) -> str:
    """This browser's CSRF seed: from its cookie, or a new one that :class:`CsrfCookie` sets on the
    response (the first page a visitor sees already carries working forms)."""
    state = request.state
    seed = getattr(state, _STATE_CSRF, None) or request.cookies.get(CSRF_COOKIE)
    if not seed or len(seed) > 200:
        seed = secrets.token_urlsafe(32)
        setattr(state, _STATE_CSRF, seed)
    return seed


def csrf_token(request: Request) -> str:
    """The token this visitor's forms must send as ``csrf_token`` (or in an ``X-CSRF-Token`` header).

    In a template: ``<input type="hidden" name="csrf_token" value="{{ csrf_token(request) }}">``. Every page
    built on base.html also has it in ``<meta name="csrf-token">`` for scripts."""
    return _csrf_for(request, _csrf_seed(request))


async def check_csrf(request: Request) -> None:
    """Dependency for every route that changes state: 403 unless the request carries this browser's
    CSRF token (form field ``csrf_token`` or header ``X-CSRF-Token``), or authenticates with a bearer
    token instead of cookies."""
    if _bearer(request) is not None:
        return
    seed = request.cookies.get(CSRF_COOKIE)
    sent = request.headers.get(CSRF_HEADER)
    if sent is None:
        content_type = request.headers.get("content-type", "")
        if content_type.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
            form = await request.form()
            value = form.get(CSRF_FIELD)
            sent = value if isinstance(value, str) else None
    if not seed or not sent:
        raise ApiError(
            403,
            "This form could not be accepted: it came without its security token (were cookies blocked, "
            "or was it sent from another site?). Go back, reload the page and try again.",
        )
    if not hmac.compare_digest(sent.encode(), _csrf_for(request, seed).encode()):
        raise ApiError(
            403,
            "This form could not be accepted: its security token does not match (it may have been sent "
            "from another site, or from a page opened before your cookies were cleared). Go back, reload "
            "the page and try again.",
        )


class CsrfCookie(ResponseStartMiddleware):
    """When a page handed out a CSRF token from a new seed, set the seed's cookie on the response."""

    def edit(self, scope: Scope, message: Message) -> Message:
        seed = scope["state"].get(_STATE_CSRF)
        if not seed:
            return message
        cookie = _cookie_header(
            CSRF_COOKIE, seed, max_age=CSRF_COOKIE_DAYS * 86400, secure=is_https(Request(scope))
        )
        return {**message, "headers": [*message.get("headers", []), (b"set-cookie", cookie)]}


def _cookie_header(name: str, value: str, *, max_age: int, secure: bool) -> bytes:
    response = Response()
    response.set_cookie(name, value, max_age=max_age, path="/", httponly=True, samesite="lax", secure=secure)
    return response.headers["set-cookie"].encode("latin-1")


# -- sessions -------------------------------------------------------------------------------------------


def start_session(request: Request, response: Response, user: User) -> None:
    """Sign ``user`` in on ``response``: a fresh random id (never one the browser brought: no session
    fixation), stored hashed, in an HttpOnly, SameSite=Lax cookie that is Secure on https."""
    old = request.cookies.get(SESSION_COOKIE)
    if old:
        accounts.delete_session(_store(request), sha256_hex(old))
    session_id = secrets.token_urlsafe(32)
    now = _now()
    lifetime = timedelta(days=_settings(request).session_days)
    accounts.create_session(
        _store(request), sha256_hex(session_id), user.id, now=now, expires_at=now + lifetime
    )
    response.set_cookie(
        SESSION_COOKIE,
        session_id,
        max_age=int(lifetime.total_seconds()),
        path="/",
        httponly=True,
        samesite="lax",
        secure=is_https(request),
    )
    setattr(request.state, _STATE_USER, user)


def end_session(request: Request, response: Response) -> None:
    """Delete this browser's session row (the cookie alone is worthless afterwards) and its cookie."""
    session_id = request.cookies.get(SESSION_COOKIE)
    if session_id:
        accounts.delete_session(_store(request), sha256_hex(session_id))
    response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="lax", secure=is_https(request))
    setattr(request.state, _STATE_USER, None)


def new_api_token() -> tuple[str, str, str]:
    """A new token: ``(token, its hash, the prefix shown on the account page)``."""
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    return token, sha256_hex(token), token[:SHOWN_PREFIX]


def _bearer(request: Request) -> str | None:
    header = request.headers.get("authorization")
    if not header:
        return None
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer":
        return None
    return value.strip()


# -- dependencies ---------------------------------------------------------------------------------------


def current_user(request: Request) -> User | None:
    """Dependency: the signed-in user (session cookie, or ``Authorization: Bearer`` API token), None for
    an anonymous visitor. A bearer token that is not valid (revoked, mistyped) is a 401: falling back
    to anonymous would hide the mistake from the script that sent it. Looked up once per request."""
    state = request.state
    if hasattr(state, _STATE_USER):
        return getattr(state, _STATE_USER)
    user = None
    token = _bearer(request)
    if token is not None:
        user = accounts.token_user(_store(request), sha256_hex(token), now=_now()) if token else None
        if user is None:
            setattr(state, _STATE_USER, None)
            raise ApiError(401, "the API token is not valid (revoked, or mistyped)")
    else:
        session_id = request.cookies.get(SESSION_COOKIE)
        if session_id and len(session_id) < 200:
            user = accounts.session_user(_store(request), sha256_hex(session_id), now=_now())
    setattr(state, _STATE_USER, user)
    return user


def viewer(request: Request) -> User | None:
    """:func:`current_user` for templates (the header's "Sign in" or e-mail): never raises, so that an
    error page can always render."""
    try:
        return current_user(request)
    except ApiError:
        return None
    except Exception:
        log.exception("looking up the signed-in user failed")
        return None


class SignInRequired(Exception):
    """A page needs a signed-in user: answered with a redirect to the sign-in page (see :func:`install`)."""

    def __init__(self, next_path: str | None):
        super().__init__("sign in required")
        self.next_path = next_path


def _is_api(request: Request) -> bool:
    path = request.url.path
    return path.startswith("/api/") or path.endswith(".json")


def require_user(user: Annotated[User | None, Depends(current_user)], request: Request) -> User:
    """Dependency: the signed-in user. Anonymous: 401 JSON on /api/ paths, else a redirect (303) to
    /signin that comes back here afterwards (for a GET; a form POST comes back to the page it was on)."""
    if user is not None:
        return user
    if _is_api(request):
        raise ApiError(401, "sign in required: send Authorization: Bearer <token> (create one on /account)")
    if request.method in ("GET", "HEAD"):
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    else:
        referer = request.headers.get("referer", "")
        base = str(request.base_url)
        target = "/" + referer[len(base) :] if referer.startswith(base) else None
    raise SignInRequired(safe_next(target))


def require_admin(user: Annotated[User, Depends(require_user)]) -> User:
    """Dependency: a signed-in admin (``paperwire admin grant EMAIL``); 403 for anyone else."""
    if not user.is_admin:
        raise ApiError(403, "only an administrator can do this")
    return user


CurrentUser = Annotated[User | None, Depends(current_user)]
RequiredUser = Annotated[User, Depends(require_user)]
AdminUser = Annotated[User, Depends(require_admin)]
CsrfChecked = Depends(check_csrf)


def install(app: FastAPI) -> None:
    """Wire accounts into the app: the CSRF cookie middleware and the sign-in redirect."""
    app.add_middleware(CsrfCookie)

    @app.exception_handler(SignInRequired)
    async def sign_in_required(request: Request, exc: SignInRequired) -> Response:
        location = "/signin" + (f"?next={quote(exc.next_path, safe='/')}" if exc.next_path else "")
        return RedirectResponse(location, status_code=303)
