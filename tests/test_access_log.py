"""The access log never holds a usable link: signed tokens in query strings are redacted."""

from __future__ import annotations

import httpx

from paperwire.web.logs import redact
from tests.live_server import start_server


def test_redact_hides_token_parameters_only():
    assert redact("/unsubscribe?token=abc.def") == "/unsubscribe?token=[redacted]"
    assert redact("/preferences?x=1&token=abc&y=2#top") == "/preferences?x=1&token=[redacted]&y=2#top"
    assert redact("/search?q=token+passing") == "/search?q=token+passing"  # a search for the word stays
    assert redact("/papers/2401.00001") == "/papers/2401.00001"


def test_the_real_servers_access_log_shows_no_token(tmp_path):
    secret = "eyJlIjoiYUBleGFtcGxlLm9yZyJ9.c2VjcmV0LXNpZ25hdHVyZQ"
    server = start_server(
        {"PAPERWIRE_DATA_DIR": str(tmp_path / "data"), "PAPERWIRE_SECRET_KEY": "access-log-test-secret"}
    )
    try:
        for path in ("/signin/confirm", "/subscribe/confirm", "/preferences", "/unsubscribe"):
            response = httpx.get(f"{server.url}{path}", params={"token": secret}, timeout=30)
            assert response.status_code < 500
        assert httpx.get(f"{server.url}/search", params={"q": "tokenization"}, timeout=30).status_code == 200
    finally:
        server.proc.terminate()
        output, _ = server.proc.communicate(timeout=30)
    log = output.decode(errors="replace")
    assert "/unsubscribe?token=[redacted]" in log and "/search?q=tokenization" in log, log
    assert secret not in log and secret[:20] not in log, log
