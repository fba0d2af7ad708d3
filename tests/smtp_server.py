"""A real SMTP server on loopback (aiosmtpd) that keeps what it receives, for tests of outgoing mail."""

from __future__ import annotations

import email
import email.policy
import socket
import ssl
import threading
from dataclasses import dataclass, field
from email.message import EmailMessage

from aiosmtpd.controller import Controller


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Received:
    sender: str
    recipients: list[str]
    raw: bytes

    @property
    def message(self) -> EmailMessage:
        return email.message_from_bytes(self.raw, policy=email.policy.default)


@dataclass
class Handler:
    """Accepts everything except recipients listed in ``refuse`` (address → SMTP reply)."""

    received: list[Received] = field(default_factory=list)
    refuse: dict[str, str] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):  # noqa: N802, ANN001, ANN201
        if address.lower() in self.refuse:
            return self.refuse[address.lower()]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):  # noqa: N802, ANN001, ANN201
        with self.lock:
            self.received.append(
                Received(envelope.mail_from, list(envelope.rcpt_tos), envelope.original_content)
            )
        return "250 Message accepted for delivery"

    def to(self, address: str) -> list[Received]:
        with self.lock:
            return [r for r in self.received if address.lower() in (x.lower() for x in r.recipients)]


class SmtpServer:
    """``with SmtpServer() as smtp: ... smtp.url ... smtp.handler.received``. ``tls_context`` turns on
    STARTTLS; ``port`` lets a test stop the server and start it again on the same address."""

    def __init__(
        self, port: int | None = None, tls_context: ssl.SSLContext | None = None, auth: bool = False
    ):
        self.handler = Handler()
        self.port = port or free_port()
        self.tls_context = tls_context
        self.controller: Controller | None = None

    @property
    def url(self) -> str:
        return f"{'smtp' if self.tls_context else 'smtp+insecure'}://127.0.0.1:{self.port}"

    def start(self) -> SmtpServer:
        kwargs = {}
        if self.tls_context is not None:
            kwargs = {"tls_context": self.tls_context, "require_starttls": True}
        self.controller = Controller(
            self.handler, hostname="127.0.0.1", port=self.port, server_hostname="localhost", **kwargs
        )
        self.controller.start()
        return self

    def stop(self) -> None:
        if self.controller is not None:
            self.controller.stop()
            self.controller = None

    def __enter__(self) -> SmtpServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


__all__ = ["SmtpServer", "Received", "free_port"]
