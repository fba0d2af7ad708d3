"""Security headers on every response: a Content-Security-Policy on HTML, no MIME sniffing, no framing.

Escaping is the first defence against markup in titles and abstracts; the policy is the second: the
pages load scripts, styles and images from this site only and run no inline script, so markup that
slipped through could not run one either. Headers a route sets itself (the account pages' stricter
Referrer-Policy, /docs' own policy) are kept.
"""

from __future__ import annotations

from starlette.datastructures import MutableHeaders
from starlette.types import Message, Scope

from paperwire.web.asgi import ResponseStartMiddleware

PAGE_POLICY = (
    "default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'"
)
# Swagger UI (/docs, which sends this itself) starts from an inline script and styles its widgets inline.
DOCS_POLICY = (
    "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
)
ALWAYS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "strict-origin-when-cross-origin",
}


class SecurityHeaders(ResponseStartMiddleware):
    def edit(self, scope: Scope, message: Message) -> Message:
        headers = MutableHeaders(scope=message)
        for name, value in ALWAYS.items():
            headers.setdefault(name, value)
        if headers.get("content-type", "").startswith("text/html"):
            headers.setdefault("Content-Security-Policy", PAGE_POLICY)
        return message
