"""The polite client against a real local server: retries, backoff, Retry-After, User-Agent, interval."""

from __future__ import annotations

import pytest

from paperwire.config import get_settings
from paperwire.ingest.http import PoliteClient, RemoteError, parse_retry_after
from tests.recorded_server import Reply


def test_parse_retry_after():
    assert parse_retry_after("7") == 7.0
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412470.0) == 10.0
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412490.0) == 0.0
    assert parse_retry_after("soon") is None
    assert parse_retry_after(None) is None


def _client(sleeps: list[float]) -> PoliteClient:
    return PoliteClient(get_settings(), sleep=sleeps.append)


def test_retries_5xx_and_429_with_backoff_then_succeeds(env, recorded_server):
    recorded_server.add("/x", Reply("busy", 500), Reply("slow down", 429), Reply("ok"))
    sleeps: list[float] = []
    with _client(sleeps) as client:
        assert client.get(recorded_server.url + "/x").text == "ok"
    assert len(recorded_server.requests) == 3
    assert sleeps == [2.0, 4.0]  # exponential backoff: base 2 s, doubled


def test_retry_after_header_is_honoured_and_capped(env, monkeypatch, recorded_server):
    monkeypatch.setenv("PAPERWIRE_HTTP_MAX_RETRY_AFTER", "60")
    recorded_server.add(
        "/x",
        Reply("down", 503, {"Retry-After": "5"}),
        Reply("down", 503, {"Retry-After": "86400"}),
        Reply("ok"),
    )
    sleeps: list[float] = []
    with _client(sleeps) as client:
        assert client.get(recorded_server.url + "/x").text == "ok"
    assert sleeps == [5.0, 60.0]


def test_gives_up_after_bounded_retries(env, recorded_server):
    recorded_server.add("/x", Reply("down", 503))
    with _client([]) as client, pytest.raises(RemoteError, match="failed after 4 attempts: HTTP 503"):
        client.get(recorded_server.url + "/x")
    assert len(recorded_server.requests) == 4  # PAPERWIRE_HTTP_RETRIES=3 in the test env


def test_client_errors_are_not_retried(env, recorded_server):
    recorded_server.add("/x", Reply("nope", 404))
    with _client([]) as client, pytest.raises(RemoteError) as info:
        client.get(recorded_server.url + "/x")
    assert info.value.status == 404 and len(recorded_server.requests) == 1


def test_connection_errors_are_retried(env):
    sleeps: list[float] = []
    with _client(sleeps) as client, pytest.raises(RemoteError, match="ConnectError"):
        client.get("http://127.0.0.1:9/unreachable")
    assert sleeps == [2.0, 4.0, 8.0]


def test_user_agent_and_interval(env, monkeypatch, recorded_server):
    monkeypatch.setenv("PAPERWIRE_HTTP_INTERVAL", "3")
    monkeypatch.setenv("PAPERWIRE_CONTACT_EMAIL", "ops@example.org")
    recorded_server.add("/x", Reply("ok"))
    sleeps: list[float] = []
    with _client(sleeps) as client:
        for _ in range(3):
            client.get(recorded_server.url + "/x")
    ua = recorded_server.requests[0].headers["User-Agent"]
    assert ua.startswith("paperwire/") and "mailto:ops@example.org" in ua
    # No wait before the first request; before each later one, the rest of the 3 s interval.
    assert len(sleeps) == 2 and all(2.5 < s <= 3.0 for s in sleeps)
