"""Accounts on the web: sign in by e-mailed link, sign out, the account page (API tokens, deletion),
``GET /api/v1/me``, and the thread that delivers mail from the outbox.

Sign-in never needs a password. ``POST /signin`` e-mails a signed link that works once, for
``PAPERWIRE_LOGIN_LINK_MINUTES``. Opening it (``GET /signin/confirm``) changes nothing -- mail scanners
fetch links before people do -- it shows a button that POSTs the token back; only that POST uses the
link and starts a session. Nothing here changes state on GET.
"""

from __future__ import annotations

import html
import logging
import secrets
import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import BaseModel
from sqlalchemy import and_, or_, select

from paperwire.config import Settings
from paperwire.mail import InvalidAddress, compose, deliver_due, enqueue, normalize_address
from paperwire.mail.transport import transport_from_settings
from paperwire.store import Store, accounts
from paperwire.store.accounts import LinkRejected, User
from paperwire.store.schema import outbox
from paperwire.web.auth import (
    PURPOSE_LOGIN,
    BadSignature,
    CurrentUser,
    RequiredUser,
    check_csrf,
    end_session,
    new_api_token,
    safe_next,
    sign_token,
    site_base,
    start_session,
    unsign_token,
)
from paperwire.web.ratelimit import RateLimited, app_limiter, client_key
from paperwire.web.templating import templates

log = logging.getLogger("paperwire.web.account")

router = APIRouter()

# The per-address limit counts the links of this window; the per-client one counts requests per hour.
EMAIL_WINDOW = timedelta(minutes=15)
IP_WINDOW = 3600.0
MAX_TOKENS = 20
MAX_TOKEN_NAME = 100
# Pages that show a sign-in token or an API token must not be kept by a cache or leak through Referer;
# and no other site may frame them to trick a click on their buttons.
PRIVATE_HEADERS = {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer", "X-Frame-Options": "DENY"}


def _settings(request: Request) -> Settings:
    return request.app.state.settings


def _store(request: Request) -> Store:
    return request.app.state.store


def _now() -> datetime:
    return datetime.now(UTC)


def _page(request: Request, name: str, context: dict, status: int = 200) -> Response:
    response = templates.TemplateResponse(request, name, context, status_code=status)
    response.headers.update(PRIVATE_HEADERS)
    return response


def _minutes(seconds: float) -> str:
    minutes = max(1, round(seconds / 60))
    return "1 minute" if minutes == 1 else f"{minutes} minutes"


# -- sign-in links --------------------------------------------------------------------------------------


def make_login_token(
    settings: Settings, email: str, nonce: str, issued: datetime, next_path: str | None
) -> str:
    """The token a sign-in link carries: address, nonce, time issued and where to go afterwards, signed
    with the site's key (so nobody can write one for an address whose mail they cannot read)."""
    payload: dict = {"e": email, "n": nonce, "t": int(issued.timestamp())}
    if next_path:
        payload["r"] = next_path
    return sign_token(settings.signing_key(), PURPOSE_LOGIN, payload)


def read_login_token(settings: Settings, token: str, *, now: datetime) -> tuple[str, str, str | None]:
    """``(email, nonce, next path)`` of a link that is genuine and not expired; LinkRejected says why not.
    Whether it was used already is the store's to say (:func:`accounts.check_login_link`)."""
    try:
        payload = unsign_token(settings.signing_key(), PURPOSE_LOGIN, token)
    except BadSignature:
        raise LinkRejected(
            "This sign-in link is not valid: it may have been cut short or changed on its way."
        ) from None
    email, nonce, issued = payload.get("e"), payload.get("n"), payload.get("t")
    if not isinstance(email, str) or not isinstance(nonce, str) or not isinstance(issued, int):
        raise LinkRejected("This sign-in link is not valid.")
    age = now.timestamp() - issued
    if age > settings.login_link_minutes * 60:
        raise LinkRejected(
            f"This sign-in link has expired: links work for {_minutes(settings.login_link_minutes * 60)}."
        )
    if age < -300:  # issued in the future: not by us (clocks of several nodes may differ a little)
        raise LinkRejected("This sign-in link is not valid.")
    next_path = payload.get("r")
    return email, nonce, safe_next(next_path) if isinstance(next_path, str) else None


def _limit_ip(request: Request) -> None:
    limiter = app_limiter(request, "signin_ip_limiter", _settings(request).signin_ip_limit, IP_WINDOW)
    try:
        limiter.hit(client_key(request), "sign-in requests")
    except RateLimited as exc:
        raise RateLimited(
            f"Too many sign-in requests from your network (at most {limiter.limit} an hour). "
            f"Try again in {_minutes(exc.retry_after)}.",
            exc.retry_after,
        ) from None


def _limit_address(request: Request, email: str, now: datetime) -> None:
    """At most ``signin_email_limit`` links per address per 15 minutes, counted in the store (every web
    process sees the same links): asking again and again cannot flood someone's inbox."""
    limit = _settings(request).signin_email_limit
    if limit <= 0:
        return
    sent = accounts.recent_links(_store(request), email, since=now - EMAIL_WINDOW)
    if len(sent) >= limit:
        retry = max(1, int((sent[-limit] + EMAIL_WINDOW - now).total_seconds()) + 1)
        raise RateLimited(
            f"We have already sent {len(sent)} sign-in links to this address in the last 15 minutes. "
            f"Use the newest one, or try again in {_minutes(retry)}.",
            retry,
        )


def signin_message(settings: Settings, email: str, link: str) -> object:
    """The sign-in e-mail: plain text and HTML, with the absolute link in both."""
    minutes = _minutes(settings.login_link_minutes * 60)
    text = (
        f"Hello,\n\n"
        f"someone (hopefully you) asked to sign in to paperwire as {email}. Open this link to sign in:\n\n"
        f"{link}\n\n"
        f"The link works once, within {minutes}. If you did not ask for it, ignore this message: "
        f"nobody can sign in without the link.\n"
    )
    safe_link = html.escape(link, quote=True)
    body = (
        '<!doctype html><html><body style="font-family: system-ui, sans-serif; line-height: 1.5">'
        f"<p>Hello,</p><p>someone (hopefully you) asked to sign in to paperwire as "
        f"<strong>{html.escape(email)}</strong>.</p>"
        f'<p><a href="{safe_link}" style="display: inline-block; padding: .6em 1.2em; background: #3b5bdb; '
        f'color: #fff; border-radius: 8px; text-decoration: none; font-weight: 600">Sign in to paperwire</a></p>'
        f'<p>Or copy this address into your browser:<br><a href="{safe_link}">{safe_link}</a></p>'
        f"<p>The link works once, within {minutes}. If you did not ask for it, ignore this message: "
        f"nobody can sign in without the link.</p></body></html>"
    )
    return compose(
        sender=settings.mail_from,
        to=email,
        subject="Sign in to paperwire",
        text=text,
        html=body,
        headers={"Auto-Submitted": "auto-generated"},
    )


def send_signin_link(request: Request, email: str, next_path: str | None) -> None:
    """Record a new link, queue its e-mail in the outbox and wake the mail thread; never waits on SMTP."""
    settings = _settings(request)
    store = _store(request)
    now = _now()
    nonce = secrets.token_urlsafe(24)
    token = make_login_token(settings, email, nonce, now, next_path)
    link = f"{site_base(request)}/signin/confirm?token={token}"
    message = signin_message(settings, email, link)
    accounts.add_login_link(store, nonce, email, now=now)
    enqueue(store, message, key=f"signin:{nonce}", kind="signin", now=now)
    worker: MailWorker | None = getattr(request.app.state, "mail_worker", None)
    if worker is not None:
        worker.poke()


# -- pages ----------------------------------------------------------------------------------------------


@router.get("/signin", response_class=HTMLResponse, include_in_schema=False)
def signin_page(request: Request, user: CurrentUser, next: str = "") -> Response:
    return _page(request, "signin.html", {"mode": "form", "next": safe_next(next) or "", "user": user})


@router.post(
    "/signin", response_class=HTMLResponse, include_in_schema=False, dependencies=[Depends(check_csrf)]
)
def signin_request(
    request: Request,
    email: Annotated[str, Form()] = "",
    next: Annotated[str, Form()] = "",
) -> Response:
    next_path = safe_next(next)
    _limit_ip(request)
    try:
        address = normalize_address(email)
    except InvalidAddress:
        context = {
            "mode": "form",
            "next": next_path or "",
            "email": email[:254],
            "error": "That does not look like an e-mail address. Check it and try again.",
        }
        return _page(request, "signin.html", context, 400)
    _limit_address(request, address, _now())
    send_signin_link(request, address, next_path)
    context = {
        "email": address,
        "minutes": _minutes(_settings(request).login_link_minutes * 60),
        "maildir": _settings(request).smtp_url is None,
    }
    return _page(request, "signin_sent.html", context)


def _rejected(request: Request, exc: LinkRejected, email: str = "") -> Response:
    context = {"mode": "form", "next": "", "email": email, "error": f"{exc} Ask for a new link below."}
    return _page(request, "signin.html", context, 400)


@router.get("/signin/confirm", response_class=HTMLResponse, include_in_schema=False)
def signin_confirm_page(request: Request, token: str = "") -> Response:
    """What the e-mailed link opens: a button, not a sign-in (a GET must not use the link up)."""
    try:
        email, nonce, _ = read_login_token(_settings(request), token, now=_now())
        accounts.check_login_link(_store(request), nonce, email)
    except LinkRejected as exc:
        return _rejected(request, exc)
    return _page(request, "signin.html", {"mode": "confirm", "email": email, "token": token})


@router.post(
    "/signin/confirm",
    response_class=HTMLResponse,
    include_in_schema=False,
    dependencies=[Depends(check_csrf)],
)
def signin_confirm(request: Request, token: Annotated[str, Form()] = "") -> Response:
    email = ""
    try:
        email, nonce, next_path = read_login_token(_settings(request), token, now=_now())
        user = accounts.use_login_link(_store(request), nonce, email, now=_now())
    except LinkRejected as exc:
        return _rejected(request, exc, email)
    response = RedirectResponse(next_path or "/account", status_code=303)
    start_session(request, response, user)
    return response


@router.post("/signout", include_in_schema=False, dependencies=[Depends(check_csrf)])
def signout(request: Request) -> Response:
    response = RedirectResponse("/", status_code=303)
    end_session(request, response)
    return response


def _account_page(request: Request, user: User, status: int = 200, **extra: object) -> Response:
    context = {"user": user, "tokens": accounts.list_api_tokens(_store(request), user.id), **extra}
    return _page(request, "account.html", context, status)


@router.get("/account", response_class=HTMLResponse, include_in_schema=False)
def account_page(request: Request, user: RequiredUser, revoked: int = 0) -> Response:
    return _account_page(request, user, notice="The token was revoked." if revoked else None)


@router.post(
    "/account/tokens",
    response_class=HTMLResponse,
    include_in_schema=False,
    dependencies=[Depends(check_csrf)],
)
def create_token(request: Request, user: RequiredUser, name: Annotated[str, Form()] = "") -> Response:
    """Create a token and show it, this once, in the response itself (never in a URL or the store)."""
    name = " ".join(name.split())
    if not name or len(name) > MAX_TOKEN_NAME:
        return _account_page(
            request, user, 400, token_error=f"Give the token a name of 1 to {MAX_TOKEN_NAME} characters."
        )
    store = _store(request)
    if accounts.count_api_tokens(store, user.id) >= MAX_TOKENS:
        return _account_page(
            request,
            user,
            400,
            token_error=f"You have {MAX_TOKENS} tokens, the most there can be: revoke one first.",
        )
    token, token_hash, prefix = new_api_token()
    created = accounts.create_api_token(
        store, user.id, name=name, token_hash=token_hash, prefix=prefix, now=_now()
    )
    return _account_page(request, user, new_token=token, new_token_name=created.name)


@router.post("/account/tokens/{token_id}/revoke", include_in_schema=False, dependencies=[Depends(check_csrf)])
def revoke_token(request: Request, user: RequiredUser, token_id: int) -> Response:
    if not accounts.revoke_api_token(_store(request), user.id, token_id):
        return _account_page(request, user, 404, token_error="There is no such token (revoked already?).")
    return RedirectResponse("/account?revoked=1", status_code=303)


@router.post(
    "/account/delete",
    response_class=HTMLResponse,
    include_in_schema=False,
    dependencies=[Depends(check_csrf)],
)
def delete_account(request: Request, user: RequiredUser, confirm: Annotated[str, Form()] = "") -> Response:
    """Delete the account once its address is typed in as confirmation: the user, sessions, tokens and
    votes (the papers' counts go down)."""
    if confirm.strip().lower() != user.email:
        return _account_page(
            request, user, 400, delete_error="Type your e-mail address exactly to confirm the deletion."
        )
    accounts.delete_user(_store(request), user.id)
    response = _page(request, "signin.html", {"mode": "deleted"})
    end_session(request, response)
    return response


# -- JSON API -------------------------------------------------------------------------------------------


class MeOut(BaseModel):
    email: str
    is_admin: bool


@router.get(
    "/api/v1/me",
    response_model=MeOut,
    summary="The signed-in account",
    tags=["paperwire API v1"],
    responses={401: {"description": 'Not signed in, or the token is not valid: `{"error": "..."}`'}},
)
def api_me(user: RequiredUser) -> MeOut:
    """Who the request is authenticated as: send ``Authorization: Bearer <token>`` (tokens are made on
    the account page)."""
    return MeOut(email=user.email, is_admin=user.is_admin)


# -- mail delivery --------------------------------------------------------------------------------------


class MailWorker:
    """Delivers the outbox from inside the web process: at once when a request queued a message
    (:meth:`poke`), and every ``every`` seconds for retries and for messages other processes queued.
    Requests never wait on SMTP. Several processes may run one each: the outbox's claims keep any
    message from going twice. Once an hour it also deletes expired sessions and old sign-in links."""

    PURGE_EVERY = 3600.0
    LINK_KEPT = timedelta(days=1)

    def __init__(self, store: Store, settings: Settings):
        self.store = store
        self.settings = settings
        self.every = max(0.5, settings.mail_sweep_seconds)
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="mail-delivery", daemon=True)
        self._last_purge = 0.0

    def start(self) -> None:
        self._thread.start()

    def poke(self) -> None:
        self._wake.set()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread.is_alive():
            self._thread.join(timeout=10)

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self.every)
            self._wake.clear()
            if self._stop.is_set():
                break
            self.deliver()
            self._purge()

    def _anything_due(self, now: datetime) -> bool:
        """A read first: claiming takes the write lock, which a sweep every few seconds should not."""
        due = or_(
            and_(outbox.c.status == "pending", outbox.c.next_attempt_at <= now),
            and_(outbox.c.status == "sending", outbox.c.claimed_until < now),
        )
        with self.store.engine.connect() as conn:
            return conn.execute(select(outbox.c.id).where(due).limit(1)).first() is not None

    def deliver(self) -> None:
        try:
            if not self._anything_due(_now()):
                return
            transport = transport_from_settings(self.settings)
            report = deliver_due(self.store, transport, self.settings.mail_from)
            if report.sent or report.retried or report.failed:
                log.info("mail to %s: %s", transport.description, report)
        except Exception:  # the thread must survive a broken database or mail setting and try again
            log.exception("delivering mail failed")

    def _purge(self) -> None:
        if time.monotonic() - self._last_purge < self.PURGE_EVERY:
            return
        self._last_purge = time.monotonic()
        try:
            accounts.purge_expired(self.store, now=_now(), link_age=self.LINK_KEPT)
        except Exception:
            log.exception("deleting expired sessions failed")
