"""A polite HTTP client for arXiv's services.

arXiv asks for one request every 3 seconds, a User-Agent that says who we are, and backing off when
it answers 503 with Retry-After. This client does that for every remote source: a minimum interval
between requests, timeouts, and bounded retries with exponential backoff on 429/5xx and network errors.
"""

from __future__ import annotations

import email.utils
import logging
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime

import httpx

from paperwire.config import Settings, get_settings
from paperwire.ingest.base import IngestError

log = logging.getLogger(__name__)

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})


class RemoteError(IngestError):
    """The remote service failed after all retries, or answered with a non-retryable error."""

    def __init__(self, message: str, status: int | None = None, body: str | None = None):
        super().__init__(message)
        self.status = status
        self.body = body


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or an HTTP date), None if unusable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    now_dt = datetime.fromtimestamp(now if now is not None else time.time(), UTC)
    return max(0.0, (when - now_dt).total_seconds())


class PoliteClient:
    def __init__(
        self,
        settings: Settings | None = None,
        *,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        backoff_base: float = 2.0,
    ):
        self.settings = settings or get_settings()
        self._sleep = sleep
        self._clock = clock
        self._backoff_base = backoff_base
        self._last_request: float | None = None
        self._http = httpx.Client(
            timeout=self.settings.http_timeout,
            headers={"User-Agent": self.settings.user_agent},
            follow_redirects=True,
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> PoliteClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _wait_turn(self) -> None:
        if self._last_request is not None:
            wait = self.settings.http_interval - (self._clock() - self._last_request)
            if wait > 0:
                self._sleep(wait)
        self._last_request = self._clock()

    def get(
        self, url: str, params: Mapping[str, str] | None = None, *, ok_statuses: frozenset[int] = frozenset()
    ) -> httpx.Response:
        """GET with politeness and retries. Returns 2xx responses and any in ``ok_statuses``;
        raises :class:`RemoteError` for anything else once retries are spent."""
        attempts = self.settings.http_retries + 1
        last_error = ""
        for attempt in range(attempts):
            self._wait_turn()
            try:
                response = self._http.get(url, params=params)
            except httpx.HTTPError as exc:
                last_error = f"{type(exc).__name__}: {exc}"
                log.warning(
                    "request to %s failed (%s), attempt %d/%d", url, last_error, attempt + 1, attempts
                )
                if attempt + 1 < attempts:
                    self._sleep(self._backoff(attempt))
                continue
            if response.is_success or response.status_code in ok_statuses:
                return response
            if response.status_code not in RETRY_STATUSES:
                raise RemoteError(
                    f"{url} answered HTTP {response.status_code}", response.status_code, response.text[:2000]
                )
            last_error = f"HTTP {response.status_code}"
            if attempt + 1 < attempts:
                delay = parse_retry_after(response.headers.get("Retry-After"))
                if delay is None:
                    delay = self._backoff(attempt)
                delay = min(delay, self.settings.http_max_retry_after)
                log.warning(
                    "%s answered %s; retrying in %.1fs (attempt %d/%d)",
                    url,
                    last_error,
                    delay,
                    attempt + 1,
                    attempts,
                )
                self._sleep(delay)
        raise RemoteError(f"{url} failed after {attempts} attempts: {last_error}")

    def _backoff(self, attempt: int) -> float:
        return min(self._backoff_base * (2**attempt), self.settings.http_max_retry_after)
