"""Access logs without secrets: sign-in, confirmation, preferences and unsubscribe links carry a signed
token in their query string, and whoever reads the log (or the log shipper) must not be able to use it."""

from __future__ import annotations

import logging
import re

# ``token=`` as a query parameter, up to the next ``&``, ``#`` or the end.
_TOKEN = re.compile(r"([?&](?:token|access_token)=)[^&#\s]*", re.IGNORECASE)


def redact(path: str) -> str:
    """``/unsubscribe?token=abc&x=1`` → ``/unsubscribe?token=[redacted]&x=1``."""
    return _TOKEN.sub(r"\1[redacted]", path) if "token=" in path.lower() else path


class RedactTokens(logging.Filter):
    """For uvicorn's access logger, whose record args are (client, method, path, http version, status)."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and len(args) >= 3 and isinstance(args[2], str):
            record.args = (*args[:2], redact(args[2]), *args[3:])
        return True


def redact_access_log() -> None:
    """Install the filter once per process (each uvicorn worker builds the app)."""
    access = logging.getLogger("uvicorn.access")
    if not any(isinstance(f, RedactTokens) for f in access.filters):
        access.addFilter(RedactTokens())
