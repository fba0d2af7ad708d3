"""Where messages go: an SMTP server (``PAPERWIRE_SMTP_URL``) or, without one, a maildir on disk.

Failures are sorted the way a mail queue needs them: a temporary failure (4xx reply, network error,
server down) is retried later; a permanent one (5xx on the recipient) will never succeed."""

from __future__ import annotations

import mailbox
import smtplib
import socket
import ssl
from collections.abc import Callable
from pathlib import Path
from urllib.parse import unquote, urlsplit

from paperwire.config import Settings
from paperwire.mail.stopping import handoff_window


class TemporaryFailure(Exception):
    """Try again later (the server is down or said 4xx). ``server_down``: nothing else will go through
    either right now, so the sender stops and retries the whole queue later."""

    def __init__(self, message: str, *, server_down: bool = False):
        super().__init__(message)
        self.server_down = server_down


class PermanentFailure(Exception):
    """This message to this recipient will never be accepted (5xx)."""


class HandoffRefused(Exception):
    """``on_handoff`` said no (the message is no longer ours to send): it was not sent."""


# Called just before the message becomes the server's (the final "." of DATA, the maildir rename): the
# outbox commits "handoff" there. Returning False (or raising) abandons the message unsent.
Handoff = Callable[[], bool]


class Transport:
    """Sends one message at a time over a connection opened on first use; use as a context manager."""

    description = "?"

    def send(self, sender: str, recipient: str, message: bytes, on_handoff: Handoff | None = None) -> None:
        raise NotImplementedError

    def close(self) -> None:
        pass

    def __enter__(self) -> Transport:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class MaildirTransport(Transport):
    """Messages become files in a maildir (``new/``), readable by any mail client or `ls`."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.description = f"the maildir {self.path}"
        self._box: mailbox.Maildir | None = None

    def send(self, sender: str, recipient: str, message: bytes, on_handoff: Handoff | None = None) -> None:
        if self._box is None:
            for sub in ("tmp", "new", "cur"):
                (self.path / sub).mkdir(parents=True, exist_ok=True)
            self._box = mailbox.Maildir(self.path, create=False)
        with handoff_window():
            if on_handoff is not None and not on_handoff():
                raise HandoffRefused("the message is no longer ours to send")
            self._box.add(message)


class SmtpTransport(Transport):
    """``smtp://user:pass@host:587`` (STARTTLS, required), ``smtps://user:pass@host:465`` (implicit TLS),
    ``smtp+insecure://host:25`` (no TLS: only for a relay on a trusted network, and only when asked for)."""

    DEFAULT_PORTS = {"smtp": 587, "smtps": 465, "smtp+insecure": 25}

    def __init__(self, url: str, timeout: float = 30.0, tls_context: ssl.SSLContext | None = None):
        parts = urlsplit(url)
        if parts.scheme not in self.DEFAULT_PORTS or not parts.hostname:
            raise ValueError(
                "PAPERWIRE_SMTP_URL must look like smtp://user:pass@host:587, smtps://user:pass@host:465 "
                "or smtp+insecure://host:25"
            )
        self.scheme = parts.scheme
        self.host = parts.hostname
        self.port = parts.port or self.DEFAULT_PORTS[parts.scheme]
        self.user = unquote(parts.username) if parts.username else None
        self.password = unquote(parts.password) if parts.password else None
        self.timeout = timeout
        self.tls_context = tls_context or ssl.create_default_context()
        self.description = f"{parts.scheme}://{self.host}:{self.port}"  # never the password
        self._smtp: smtplib.SMTP | None = None

    def _connect(self) -> smtplib.SMTP:
        try:
            if self.scheme == "smtps":
                smtp = smtplib.SMTP_SSL(self.host, self.port, timeout=self.timeout, context=self.tls_context)
            else:
                smtp = smtplib.SMTP(self.host, self.port, timeout=self.timeout)
                if self.scheme == "smtp":
                    smtp.ehlo()
                    if not smtp.has_extn("starttls"):
                        smtp.close()
                        raise TemporaryFailure(
                            f"{self.description} does not offer STARTTLS; refusing to send in clear text "
                            "(use smtp+insecure:// only for a trusted relay)",
                            server_down=True,
                        )
                    smtp.starttls(context=self.tls_context)
                    smtp.ehlo()
            # The body and the final "." go in two writes (see _transaction); with Nagle's algorithm the
            # dot would wait for the server's delayed ACK of the body: 40 ms a message on Linux.
            smtp.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if self.user:
                smtp.login(self.user, self.password or "")
        except smtplib.SMTPAuthenticationError as exc:
            raise TemporaryFailure(
                f"{self.description} refused the login: {exc.smtp_code}", server_down=True
            ) from exc
        except (OSError, smtplib.SMTPException) as exc:
            raise TemporaryFailure(f"cannot reach {self.description}: {exc}", server_down=True) from exc
        return smtp

    def send(self, sender: str, recipient: str, message: bytes, on_handoff: Handoff | None = None) -> None:
        if self._smtp is None:
            self._smtp = self._connect()
        try:
            self._transaction(self._smtp, sender, recipient, message, on_handoff)
        except HandoffRefused:
            self.close(abort=True)  # drop the connection mid-DATA: the server discards the message
            raise
        except smtplib.SMTPRecipientsRefused as exc:
            code, reply = exc.recipients.get(recipient, (450, b""))
            self._fail(code, f"recipient refused: {code} {_text(reply)}")
        except smtplib.SMTPSenderRefused as exc:
            self._fail(400 if exc.smtp_code >= 500 else exc.smtp_code, f"sender refused: {exc.smtp_code}")
        except smtplib.SMTPDataError as exc:
            self._fail(exc.smtp_code, f"message refused: {exc.smtp_code} {_text(exc.smtp_error)}")
        except (TimeoutError, smtplib.SMTPServerDisconnected, smtplib.SMTPResponseException, OSError) as exc:
            self.close()
            raise TemporaryFailure(f"{self.description}: {exc}", server_down=True) from exc

    @staticmethod
    def _transaction(
        smtp: smtplib.SMTP, sender: str, recipient: str, message: bytes, on_handoff: Handoff | None
    ) -> None:
        """smtplib's sendmail for one recipient, with ``on_handoff`` run between the message body and the
        final ".": until that dot the server throws the message away if the connection drops."""
        smtp.ehlo_or_helo_if_needed()
        code, reply = smtp.mail(sender)
        if code != 250:
            if code == 421:
                smtp.close()
            else:
                smtp._rset()
            raise smtplib.SMTPSenderRefused(code, reply, sender)
        code, reply = smtp.rcpt(recipient)
        if code not in (250, 251):
            if code == 421:
                smtp.close()
            else:
                smtp._rset()
            raise smtplib.SMTPRecipientsRefused({recipient: (code, reply)})
        code, reply = smtp.docmd("data")
        if code != 354:
            smtp._rset()
            raise smtplib.SMTPDataError(code, reply)
        # Dot-stuffing (a line starting with "." gets another); most messages have none to stuff, and
        # a search is much cheaper than smtplib's regular expression over the whole message.
        body = smtplib._quote_periods(message) if message.startswith(b".") or b"\n." in message else message
        if not body.endswith(b"\r\n"):
            body += b"\r\n"
        smtp.send(body)
        with handoff_window():
            if on_handoff is not None:
                try:
                    ours = on_handoff()
                except BaseException:
                    smtp.close()  # mid-DATA: the server throws the message away
                    raise
                if not ours:
                    raise HandoffRefused("the message is no longer ours to send")
            smtp.send(b".\r\n")
        code, reply = smtp.getreply()
        if code != 250:
            if code == 421:
                smtp.close()
            else:
                smtp._rset()
            raise smtplib.SMTPDataError(code, reply)

    def _fail(self, code: int, message: str) -> None:
        try:
            self._smtp.rset()  # the connection stays usable for the next message
        except (smtplib.SMTPException, OSError):
            self.close()
        if 500 <= code < 600:
            raise PermanentFailure(message)
        raise TemporaryFailure(message)

    def close(self, *, abort: bool = False) -> None:
        if self._smtp is not None:
            if abort:
                self._smtp.close()
            else:
                try:
                    self._smtp.quit()
                except (smtplib.SMTPException, OSError):
                    self._smtp.close()
            self._smtp = None


def _text(reply: bytes | str) -> str:
    return reply.decode(errors="replace") if isinstance(reply, bytes) else str(reply)


def transport_from_settings(settings: Settings) -> Transport:
    if settings.smtp_url:
        return SmtpTransport(settings.smtp_url)
    return MaildirTransport(settings.maildir)
