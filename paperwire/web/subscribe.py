"""Digest subscriptions on the web: sign up (double opt-in), confirm, preferences, one-click unsubscribe.

* ``POST /subscribe`` (the box on every page) and ``POST /api/v1/subscriptions`` take an address; no
  account needed. Nothing is sent to it but a confirmation link until that link is followed; a second
  sign-up sends nothing new within ``PAPERWIRE_SUBSCRIBE_RESEND_MINUTES`` (an active address gets at
  most an "already subscribed, here are your preferences" note). The answer never says whether the
  address was subscribed already. A signed-in user's own address is active at once (signing in by
  e-mailed link proved the mailbox is theirs).
* ``GET /subscribe/confirm?token=`` shows a button (mail scanners prefetch links); its POST confirms.
* ``GET /preferences?token=`` / ``POST /preferences``: frequency, hour and time zone, size, topics.
* ``GET /unsubscribe?token=`` shows a button; ``POST /unsubscribe?token=`` unsubscribes at once, with no
  cookie and no CSRF token (RFC 8058 one-click: the mail provider posts ``List-Unsubscribe=One-Click``).

Links are signed with the site key, one purpose each. Confirmation links expire; preference and
unsubscribe links do not, but carry the subscriber's ``token_version`` (bump it to revoke them all).
The digest sender builds its headers with :func:`unsubscribe_headers`.
"""

from __future__ import annotations

import html
import logging
import re
import zoneinfo
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import BaseModel, Field

from paperwire.arxiv_ids import InvalidArxivId, normalize_arxiv_id
from paperwire.config import Settings
from paperwire.mail import InvalidAddress, compose, enqueue, normalize_address
from paperwire.store import Store
from paperwire.store import outbox as outbox_store
from paperwire.store import subscriptions as subs
from paperwire.store.accounts import User
from paperwire.store.subscriptions import Preferences, Subscriber, SubscriptionRejected, Topic
from paperwire.web.auth import (
    BadSignature,
    CurrentUser,
    _bearer,
    check_csrf,
    sign_token,
    site_base,
    unsign_token,
)
from paperwire.web.common import ApiError
from paperwire.web.ratelimit import RateLimited, app_limiter, client_key
from paperwire.web.templating import templates

log = logging.getLogger("paperwire.web.subscribe")

router = APIRouter()

PURPOSE_CONFIRM = "subscription-confirm"
PURPOSE_PREFERENCES = "subscription-preferences"
PURPOSE_UNSUBSCRIBE = "subscription-unsubscribe"

EMAIL_WINDOW = timedelta(days=1)
IP_WINDOW = 3600.0
MIN_SIZE, MAX_SIZE = 5, 50
MAX_TOPICS = 20  # per kind
MAX_QUERY = 200
PRIVATE_HEADERS = {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer", "X-Frame-Options": "DENY"}
_CATEGORY = re.compile(r"^[a-z][a-z-]*(\.(\*|[A-Za-z][A-Za-z-]*))?$")


def _settings(request: Request) -> Settings:
    return request.app.state.settings


def _store(request: Request) -> Store:
    return request.app.state.store


def _now() -> datetime:
    return datetime.now(UTC)


def _page(request: Request, context: dict, status: int = 200, name: str = "subscribe.html") -> Response:
    response = templates.TemplateResponse(request, name, context, status_code=status)
    response.headers.update(PRIVATE_HEADERS)
    return response


# -- signed links ---------------------------------------------------------------------------------------


def make_confirm_token(settings: Settings, subscriber: Subscriber, issued: datetime) -> str:
    payload = {"s": subscriber.id, "e": subscriber.email, "t": int(issued.timestamp())}
    return sign_token(settings.signing_key(), PURPOSE_CONFIRM, payload)


def make_link_token(settings: Settings, purpose: str, subscriber: Subscriber) -> str:
    """A preferences or unsubscribe token: no expiry, bound to the subscriber's token_version."""
    return sign_token(settings.signing_key(), purpose, {"s": subscriber.id, "v": subscriber.token_version})


def read_confirm_token(settings: Settings, token: str, *, now: datetime) -> tuple[int, str, datetime]:
    """``(subscriber id, address, time issued)`` of a genuine, unexpired confirmation token."""
    try:
        payload = unsign_token(settings.signing_key(), PURPOSE_CONFIRM, token)
    except BadSignature:
        raise SubscriptionRejected(
            "This confirmation link is not valid: it may have been cut short or changed on its way."
        ) from None
    sid, email, issued = payload.get("s"), payload.get("e"), payload.get("t")
    if not isinstance(sid, int) or not isinstance(email, str) or not isinstance(issued, int):
        raise SubscriptionRejected("This confirmation link is not valid.")
    age = now.timestamp() - issued
    if age > settings.subscribe_confirm_days * 86400:
        raise SubscriptionRejected(
            f"This confirmation link has expired (links work for {settings.subscribe_confirm_days:g} days). "
            "Subscribe again to get a new one."
        )
    if age < -300:
        raise SubscriptionRejected("This confirmation link is not valid.")
    return sid, email, datetime.fromtimestamp(issued, UTC)


def subscriber_from_token(store: Store, settings: Settings, purpose: str, token: str) -> Subscriber:
    """The subscriber a preferences or unsubscribe token names, if its version is still current."""
    what = "unsubscribe" if purpose == PURPOSE_UNSUBSCRIBE else "preferences"
    try:
        payload = unsign_token(settings.signing_key(), purpose, token)
    except BadSignature:
        raise SubscriptionRejected(
            f"This {what} link is not valid: it may have been cut short or changed on its way."
        ) from None
    sid, version = payload.get("s"), payload.get("v")
    if not isinstance(sid, int) or not isinstance(version, int):
        raise SubscriptionRejected(f"This {what} link is not valid.")
    sub = subs.get_subscriber(store, sid)
    if sub is None or sub.token_version != version:
        raise SubscriptionRejected(
            f"This {what} link is no longer valid. Use the link in the newest message from us."
        )
    return sub


def _base(settings: Settings, base_url: str | None) -> str:
    base = (base_url or settings.base_url).rstrip("/")
    if not base:
        raise ValueError("absolute links need PAPERWIRE_BASE_URL (or a base_url)")
    return base


def preferences_url(settings: Settings, subscriber: Subscriber, *, base_url: str | None = None) -> str:
    token = make_link_token(settings, PURPOSE_PREFERENCES, subscriber)
    return f"{_base(settings, base_url)}/preferences?token={token}"


def unsubscribe_url(settings: Settings, subscriber: Subscriber, *, base_url: str | None = None) -> str:
    token = make_link_token(settings, PURPOSE_UNSUBSCRIBE, subscriber)
    return f"{_base(settings, base_url)}/unsubscribe?token={token}"


def unsubscribe_headers(
    settings: Settings, subscriber: Subscriber, *, base_url: str | None = None, url: str | None = None
) -> dict[str, str]:
    """``List-Unsubscribe`` and ``List-Unsubscribe-Post`` (RFC 2369, RFC 8058 one-click) for a message to
    ``subscriber``: the https link, and a mailto: when PAPERWIRE_UNSUBSCRIBE_MAILTO is set. ``base_url``
    defaults to PAPERWIRE_BASE_URL (a job has no request to take it from); ``url``: the unsubscribe link
    already made for the message body (signing it again costs time per digest)."""
    links = [f"<{url or unsubscribe_url(settings, subscriber, base_url=base_url)}>"]
    if settings.unsubscribe_mailto:
        address = normalize_address(settings.unsubscribe_mailto)
        links.append(f"<mailto:{address}?subject={quote('unsubscribe ' + subscriber.email)}>")
    return {"List-Unsubscribe": ", ".join(links), "List-Unsubscribe-Post": "List-Unsubscribe=One-Click"}


# -- mail -----------------------------------------------------------------------------------------------


def _mail_html(paragraphs: Iterable[str], button: tuple[str, str] | None = None) -> str:
    parts = ['<!doctype html><html><body style="font-family: system-ui, sans-serif; line-height: 1.5">']
    parts += [f"<p>{p}</p>" for p in paragraphs]
    if button:
        label, link = button
        safe = html.escape(link, quote=True)
        parts.append(
            f'<p><a href="{safe}" style="display: inline-block; padding: .6em 1.2em; background: #3b5bdb; '
            f'color: #fff; border-radius: 8px; text-decoration: none; font-weight: 600">{html.escape(label)}</a>'
            f'</p><p>Or copy this address into your browser:<br><a href="{safe}">{safe}</a></p>'
        )
    parts.append("</body></html>")
    return "".join(parts)


def confirmation_message(
    settings: Settings, subscriber: Subscriber, confirm_link: str, prefs_link: str
) -> object:
    days = f"{settings.subscribe_confirm_days:g} days"
    text = (
        "Hello,\n\n"
        f"someone (hopefully you) asked for paperwire's digest of trending papers at {subscriber.email}.\n"
        "Nothing will be sent until you confirm. Open this link to confirm:\n\n"
        f"{confirm_link}\n\n"
        f"The link works for {days}. If you did not ask for it, ignore this message: you will get no more.\n\n"
        f"Choose how often, when and what you get here:\n{prefs_link}\n"
    )
    safe_prefs = html.escape(prefs_link, quote=True)
    body = _mail_html(
        [
            "Hello,",
            "someone (hopefully you) asked for paperwire's digest of trending papers at "
            f"<strong>{html.escape(subscriber.email)}</strong>. Nothing will be sent until you confirm.",
        ],
        ("Confirm my subscription", confirm_link),
    ).replace(
        "</body>",
        f"<p>The link works for {days}. If you did not ask for it, ignore this message: you will get no "
        f'more.</p><p><a href="{safe_prefs}">Choose how often, when and what you get</a>.</p></body>',
    )
    return compose(
        sender=settings.mail_from,
        to=subscriber.email,
        subject="Confirm your paperwire digest subscription",
        text=text,
        html=body,
        headers={"Auto-Submitted": "auto-generated"},
    )


def already_message(settings: Settings, subscriber: Subscriber, prefs_link: str, unsub_link: str) -> object:
    text = (
        "Hello,\n\n"
        f"someone (hopefully you) asked to subscribe {subscriber.email} to paperwire's digest. "
        "It is subscribed already: nothing changed.\n\n"
        f"Change how often, when and what you get:\n{prefs_link}\n\n"
        f"Unsubscribe:\n{unsub_link}\n"
    )
    body = _mail_html(
        [
            "Hello,",
            f"someone (hopefully you) asked to subscribe <strong>{html.escape(subscriber.email)}</strong> to "
            "paperwire's digest. It is subscribed already: nothing changed.",
        ],
        ("Change my preferences", prefs_link),
    ).replace("</body>", f'<p><a href="{html.escape(unsub_link, quote=True)}">Unsubscribe</a></p></body>')
    return compose(
        sender=settings.mail_from,
        to=subscriber.email,
        subject="You are subscribed to paperwire's digest",
        text=text,
        html=body,
        headers={"Auto-Submitted": "auto-generated"},
    )


# -- signing up -----------------------------------------------------------------------------------------


def _limit_ip(request: Request) -> None:
    limiter = app_limiter(request, "subscribe_ip_limiter", _settings(request).subscribe_ip_limit, IP_WINDOW)
    try:
        limiter.hit(client_key(request), "sign-ups")
    except RateLimited as exc:
        raise RateLimited(
            f"Too many subscription requests from your network (at most {limiter.limit} an hour). "
            f"Try again in {max(1, round(exc.retry_after / 60))} minute(s).",
            exc.retry_after,
        ) from None


def _limit_address(request: Request, email: str, now: datetime) -> None:
    limit = _settings(request).subscribe_email_limit
    if limit <= 0:
        return
    sent = subs.recent_mails(_store(request), email, since=now - EMAIL_WINDOW)
    if len(sent) >= limit:
        retry = max(1, int((sent[-limit] + EMAIL_WINDOW - now).total_seconds()) + 1)
        raise RateLimited(
            f"We have already sent {len(sent)} messages about a subscription to this address today. "
            f"Use the newest one, or try again in {max(1, round(retry / 3600))} hour(s).",
            retry,
        )


def request_subscription(request: Request, address: str, user: User | None) -> Subscriber:
    """Sign ``address`` up and queue what it should get (a confirmation, an "already subscribed" note, or
    nothing when one went out within the resend period). ``user``: the signed-in user whose own address
    this is (active at once, no mail). SubscriptionRejected for a suppressed address; RateLimited."""
    settings, store, now = _settings(request), _store(request), _now()
    if outbox_store.is_suppressed(store, address):
        raise SubscriptionRejected(
            "Mail to this address bounced permanently, so it cannot be subscribed. Check the address, or "
            "use another one."
        )
    verified = user is not None and user.email == address
    sub = subs.subscribe(store, address, now=now, user_id=user.id if verified else None, verified=verified)
    if verified:
        return sub
    every = timedelta(minutes=max(0.0, settings.subscribe_resend_minutes))
    last = sub.last_confirmation_sent_at
    if last is not None and now - last < every:
        return sub  # idempotent: the message sent a moment ago is still the one to use
    _limit_address(request, address, now)
    if not subs.claim_mail_slot(store, sub.id, now=now, every=every):
        return sub  # a concurrent request sent it
    base = site_base(request)
    prefs_link = preferences_url(settings, sub, base_url=base)
    if sub.status == "active":
        kind = "subscribe-already"
        message = already_message(settings, sub, prefs_link, unsubscribe_url(settings, sub, base_url=base))
    else:
        kind = "subscribe-confirm"
        confirm_link = f"{base}/subscribe/confirm?token={make_confirm_token(settings, sub, now)}"
        message = confirmation_message(settings, sub, confirm_link, prefs_link)
    enqueue(store, message, key=f"{kind}:{sub.id}:{now.timestamp():.6f}", kind=kind, now=now)
    worker = getattr(request.app.state, "mail_worker", None)
    if worker is not None:
        worker.poke()
    return sub


def _sent_context(request: Request, address: str) -> dict:
    return {
        "mode": "sent",
        "email": address,
        "days": f"{_settings(request).subscribe_confirm_days:g}",
        "maildir": _settings(request).smtp_url is None,
    }


@router.get("/subscribe", response_class=HTMLResponse, include_in_schema=False)
def subscribe_page(request: Request, user: CurrentUser) -> Response:
    return _page(request, {"mode": "form", "user": user})


@router.post(
    "/subscribe", response_class=HTMLResponse, include_in_schema=False, dependencies=[Depends(check_csrf)]
)
def subscribe_form(request: Request, user: CurrentUser, email: Annotated[str, Form()] = "") -> Response:
    _limit_ip(request)
    try:
        address = normalize_address(email)
    except InvalidAddress:
        context = {
            "mode": "form",
            "user": user,
            "email": email[:254],
            "error": "That does not look like an e-mail address. Check it and try again.",
        }
        return _page(request, context, 400)
    try:
        sub = request_subscription(request, address, user)
    except SubscriptionRejected as exc:
        return _page(request, {"mode": "form", "user": user, "email": address, "error": str(exc)}, 400)
    if user is not None and user.email == address:
        link = preferences_url(_settings(request), sub, base_url=site_base(request))
        return _page(request, {"mode": "active", "email": address, "prefs_link": link})
    return _page(request, _sent_context(request, address))


class SubscriptionIn(BaseModel):
    email: str = Field(max_length=320, description="The address to send the digest to")


class SubscriptionOut(BaseModel):
    email: str
    message: str


@router.post(
    "/api/v1/subscriptions",
    response_model=SubscriptionOut,
    status_code=202,
    summary="Subscribe to the digest (double opt-in)",
    tags=["paperwire API v1"],
    responses={
        400: {"description": 'Not an e-mail address, or one that cannot get mail: `{"error": "..."}`'},
        429: {"description": "Too many sign-ups from this client or to this address (see Retry-After)"},
    },
)
def api_subscribe(request: Request, body: SubscriptionIn, user: CurrentUser) -> SubscriptionOut:
    """Subscribe an address to the daily digest of trending papers. Double opt-in: the address gets a
    confirmation link and nothing else until it is followed; the answer is the same whether or not it
    was subscribed already. With ``Authorization: Bearer <token>`` the account's own address is
    subscribed at once."""
    _limit_ip(request)
    try:
        address = normalize_address(body.email)
    except InvalidAddress:
        raise ApiError(400, "email: not an e-mail address") from None
    owner = user if _bearer(request) is not None else None  # a cookie alone could be a cross-site request
    try:
        request_subscription(request, address, owner)
    except SubscriptionRejected as exc:
        raise ApiError(400, str(exc)) from None
    if owner is not None and owner.email == address:
        return SubscriptionOut(email=address, message="Subscribed: your account's address is confirmed.")
    return SubscriptionOut(
        email=address,
        message="Check the inbox: a message with a link to confirm the subscription (or to change its "
        "preferences, if it is subscribed already) is on its way.",
    )


# -- confirming -----------------------------------------------------------------------------------------


def _invalid(request: Request, exc: SubscriptionRejected) -> Response:
    return _page(request, {"mode": "invalid", "error": str(exc)}, 400)


@router.get("/subscribe/confirm", response_class=HTMLResponse, include_in_schema=False)
def confirm_page(request: Request, token: str = "") -> Response:
    """What the e-mailed link opens: a button (a GET changes nothing: mail scanners fetch links)."""
    try:
        sid, email, _ = read_confirm_token(_settings(request), token, now=_now())
        sub = subs.get_subscriber(_store(request), sid)
        if sub is None or sub.email != email:
            raise SubscriptionRejected("This confirmation link is not valid.")
    except SubscriptionRejected as exc:
        return _invalid(request, exc)
    return _page(request, {"mode": "confirm", "email": email, "token": token, "status": sub.status})


@router.post(
    "/subscribe/confirm",
    response_class=HTMLResponse,
    include_in_schema=False,
    dependencies=[Depends(check_csrf)],
)
def confirm(request: Request, token: Annotated[str, Form()] = "") -> Response:
    settings, store = _settings(request), _store(request)
    try:
        sid, email, issued = read_confirm_token(settings, token, now=_now())
        sub = subs.get_subscriber(store, sid)
        if sub is None or sub.email != email:
            raise SubscriptionRejected("This confirmation link is not valid.")
        sub = subs.confirm(store, sid, now=_now(), issued=issued)
    except SubscriptionRejected as exc:
        return _invalid(request, exc)
    link = preferences_url(settings, sub, base_url=site_base(request))
    return _page(request, {"mode": "confirmed", "email": sub.email, "prefs_link": link})


# -- preferences ----------------------------------------------------------------------------------------


@cache
def _zones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones()) | {"UTC"}


def valid_timezone(name: str) -> bool:
    if name not in _zones():
        return False
    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return False
    return True


def _items(text: str, *, lines: bool) -> list[str]:
    parts = text.splitlines() if lines else re.split(r"[\s,]+", text)
    return list(dict.fromkeys(" ".join(p.split()) for p in parts if p.strip()))


def parse_preferences(store: Store, form: dict[str, str]) -> tuple[Preferences | None, dict[str, str]]:
    """The preferences a form asks for, or None and a message per field that is wrong."""
    errors: dict[str, str] = {}
    frequency = form.get("frequency", "")
    if frequency not in subs.FREQUENCIES:
        errors["frequency"] = "Choose daily, weekly or off."
    hour = size = 0
    try:
        hour = int(form.get("hour", ""))
        if not 0 <= hour <= 23:
            raise ValueError
    except ValueError:
        errors["hour"] = "The hour is a whole number from 0 to 23."
    timezone = form.get("timezone", "").strip()
    if not valid_timezone(timezone):
        errors["timezone"] = (
            f"{timezone[:60]!r} is not a time zone we know: use a name like Europe/Berlin or America/New_York."
        )
    try:
        size = int(form.get("size", ""))
        if not MIN_SIZE <= size <= MAX_SIZE:
            raise ValueError
    except ValueError:
        errors["size"] = f"A digest has {MIN_SIZE} to {MAX_SIZE} papers."
    topics: list[Topic] = []
    categories = _items(form.get("categories", ""), lines=False)
    bad = [c for c in categories if len(c) > 40 or not _CATEGORY.match(c)]
    if bad:
        errors["categories"] = (
            f"Not an arXiv category: {', '.join(bad[:3])[:120]} (write cs.CL, or cs.* for all of cs)."
        )
    topics += [Topic("category", c) for c in categories]
    authors = _items(form.get("authors", ""), lines=True)
    if any(len(a) < 2 or len(a) > 100 for a in authors):
        errors["authors"] = "Write one author name per line (2 to 100 characters)."
    topics += [Topic("author", a) for a in authors]
    queries = _items(form.get("queries", ""), lines=True)
    if any(len(q) > MAX_QUERY for q in queries):
        errors["queries"] = f"A search is at most {MAX_QUERY} characters."
    topics += [Topic("query", q) for q in queries]
    likes: list[str] = []
    unknown: list[str] = []
    for text in _items(form.get("likes", ""), lines=False):
        try:
            paper_id = normalize_arxiv_id(text)
        except InvalidArxivId:
            unknown.append(text[:40])
            continue
        if store.get(paper_id) is None:
            unknown.append(paper_id)
        else:
            likes.append(paper_id)
    if unknown:
        errors["likes"] = f"Not in this catalogue: {', '.join(unknown[:5])}. Give arXiv ids like 2401.00001."
    topics += [Topic("like", p) for p in dict.fromkeys(likes)]
    for kind, label in (
        ("category", "categories"),
        ("author", "authors"),
        ("query", "queries"),
        ("like", "likes"),
    ):
        if sum(t.kind == kind for t in topics) > MAX_TOPICS and label not in errors:
            errors[label] = f"At most {MAX_TOPICS} {label}."
    if errors:
        return None, errors
    return (
        Preferences(
            frequency=frequency,
            hour=hour,
            timezone=timezone,
            size=size,
            weekends=bool(form.get("weekends")),
            empty_note=bool(form.get("empty_note")),
            topics=tuple(topics),
        ),
        {},
    )


def _form_values(sub: Subscriber) -> dict[str, str]:
    def joined(kind: str, sep: str) -> str:
        return sep.join(t.value for t in sub.topics if t.kind == kind)

    return {
        "frequency": sub.frequency,
        "hour": str(sub.hour),
        "timezone": sub.timezone,
        "size": str(sub.size),
        "weekends": "1" if sub.weekends else "",
        "empty_note": "1" if sub.empty_note else "",
        "categories": joined("category", " "),
        "authors": joined("author", "\n"),
        "queries": joined("query", "\n"),
        "likes": joined("like", " "),
    }


def _prefs_page(
    request: Request, sub: Subscriber, token: str, values: dict, status: int = 200, **extra: object
) -> Response:
    from paperwire.digest.schedule import next_delivery

    upcoming = next_delivery(sub, _now()) if sub.status == "active" else None
    context = {
        "sub": sub,
        "token": token,
        "values": values,
        # "Monday 2 March, 08:00 (Europe/Berlin)": the subscriber's own time, as they chose it.
        "next_digest": (
            f"{upcoming:%A} {upcoming.day} {upcoming:%B}, {upcoming:%H:%M} ({sub.timezone})"
            if upcoming
            else None
        ),
        "errors": {},
        "unsubscribe_token": make_link_token(_settings(request), PURPOSE_UNSUBSCRIBE, sub),
        "zones": sorted(_zones()),
        "min_size": MIN_SIZE,
        "max_size": MAX_SIZE,
        **extra,
    }
    return _page(request, context, status, name="preferences.html")


@router.get("/preferences", response_class=HTMLResponse, include_in_schema=False)
def preferences_page(request: Request, token: str = "") -> Response:
    try:
        sub = subscriber_from_token(_store(request), _settings(request), PURPOSE_PREFERENCES, token)
    except SubscriptionRejected as exc:
        return _invalid(request, exc)
    return _prefs_page(request, sub, token, _form_values(sub))


@router.post(
    "/preferences", response_class=HTMLResponse, include_in_schema=False, dependencies=[Depends(check_csrf)]
)
def save_preferences(
    request: Request,
    token: Annotated[str, Form()] = "",
    frequency: Annotated[str, Form()] = "",
    hour: Annotated[str, Form()] = "",
    timezone: Annotated[str, Form()] = "",
    size: Annotated[str, Form()] = "",
    weekends: Annotated[str, Form()] = "",
    empty_note: Annotated[str, Form()] = "",
    categories: Annotated[str, Form()] = "",
    authors: Annotated[str, Form()] = "",
    queries: Annotated[str, Form()] = "",
    likes: Annotated[str, Form()] = "",
) -> Response:
    store = _store(request)
    try:
        sub = subscriber_from_token(store, _settings(request), PURPOSE_PREFERENCES, token)
    except SubscriptionRejected as exc:
        return _invalid(request, exc)
    form = {
        "frequency": frequency,
        "hour": hour,
        "timezone": timezone,
        "size": size,
        "weekends": weekends,
        "empty_note": empty_note,
        "categories": categories[:5000],
        "authors": authors[:5000],
        "queries": queries[:20000],
        "likes": likes[:5000],
    }
    prefs, errors = parse_preferences(store, form)
    if prefs is None:
        return _prefs_page(request, sub, token, form, 400, errors=errors)
    saved = subs.save_preferences(store, sub.id, prefs)
    if saved is None:
        return _invalid(request, SubscriptionRejected("There is no such subscription any more."))
    return _prefs_page(request, saved, token, _form_values(saved), saved_notice=True)


# -- unsubscribing --------------------------------------------------------------------------------------


@router.get("/unsubscribe", response_class=HTMLResponse, include_in_schema=False)
def unsubscribe_page(request: Request, token: str = "") -> Response:
    """A button, not an unsubscription: a GET changes nothing (links get prefetched)."""
    try:
        sub = subscriber_from_token(_store(request), _settings(request), PURPOSE_UNSUBSCRIBE, token)
    except SubscriptionRejected as exc:
        return _invalid(request, exc)
    return _page(request, {"mode": "unsubscribe", "email": sub.email, "token": token, "status": sub.status})


@router.post("/unsubscribe", response_class=HTMLResponse, include_in_schema=False)
async def unsubscribe(request: Request, token: str = "") -> Response:
    """RFC 8058 one-click: the token (query or form body) is the only authority; no cookie, no CSRF."""
    if not token:
        content_type = request.headers.get("content-type", "")
        if content_type.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
            value = (await request.form()).get("token")
            token = value if isinstance(value, str) else ""
    try:
        sub = subscriber_from_token(_store(request), _settings(request), PURPOSE_UNSUBSCRIBE, token)
    except SubscriptionRejected as exc:
        return _invalid(request, exc)
    sub = subs.unsubscribe(_store(request), sub.id, now=_now()) or sub
    log.info("subscriber %s unsubscribed", sub.id)
    return _page(request, {"mode": "unsubscribed", "email": sub.email})
