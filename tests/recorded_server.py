"""A real HTTP server on loopback that replays recorded responses (arXiv itself is outside the machine).

Rules match a path and a subset of query parameters. A rule holds one or more responses: they are served
in order and the last one repeats, so ``[503 with Retry-After, 200]`` scripts a temporary outage.
Every request is recorded with its arrival time, for assertions on politeness and pagination.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit


@dataclass
class Reply:
    body: bytes | str
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str = "application/xml; charset=utf-8"


@dataclass
class Rule:
    path: str
    params: dict[str, str]
    replies: list[Reply]
    served: int = 0


@dataclass
class SeenRequest:
    path: str
    params: dict[str, str]
    headers: dict[str, str]
    at: float


class RecordedServer:
    def __init__(self) -> None:
        self.rules: list[Rule] = []
        self.requests: list[SeenRequest] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802
                parts = urlsplit(self.path)
                params = {k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
                server.requests.append(SeenRequest(parts.path, params, dict(self.headers), time.monotonic()))
                reply = server._match(parts.path, params)
                body = reply.body.encode() if isinstance(reply.body, str) else reply.body
                self.send_response(reply.status)
                self.send_header("Content-Type", reply.content_type)
                self.send_header("Content-Length", str(len(body)))
                for k, v in reply.headers.items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args) -> None:  # keep test output clean
                pass

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    def add(self, path: str, *replies: Reply, **params: str) -> Rule:
        """Serve ``replies`` for GET ``path`` when the query has all of ``params``.
        Later rules win over earlier ones, so a specific rule can override a catch-all."""
        rule = Rule(path, params, list(replies))
        self.rules.insert(0, rule)
        return rule

    def _match(self, path: str, params: dict[str, str]) -> Reply:
        for rule in self.rules:
            if rule.path == path and all(params.get(k) == v for k, v in rule.params.items()):
                reply = rule.replies[min(rule.served, len(rule.replies) - 1)]
                rule.served += 1
                return reply
        return Reply("no recorded response for this request", status=404, content_type="text/plain")

    def start(self) -> RecordedServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
