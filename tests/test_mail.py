"""Outgoing mail through the outbox, to a real SMTP server on loopback (aiosmtpd)."""

from __future__ import annotations

import mailbox
import socket
import ssl
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import trustme

from paperwire.mail import (
    InvalidAddress,
    MaildirTransport,
    SmtpTransport,
    compose,
    compose_bytes,
    deliver_due,
    enqueue,
    normalize_address,
)
from paperwire.mail.transport import HandoffRefused
from paperwire.store import outbox as box
from tests.smtp_server import SmtpServer

SENDER = "paperwire <digest@paperwire.test>"


def message(to: str, subject: str = "Today's papers", **kw):
    return compose(
        sender=SENDER,
        to=to,
        subject=subject,
        text="Plain text part.",
        html="<p>HTML <b>part</b>.</p>",
        **kw,
    )


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 11, 27, 8, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


def test_compose_has_every_header_and_both_parts():
    msg = message("Ada@Example.org", headers={"List-Unsubscribe": "<https://x.test/u/1>"})
    assert msg["To"] == "ada@example.org"
    assert msg["From"] == SENDER
    assert msg["Message-ID"].endswith("@paperwire.test>")
    assert msg["Date"] and msg["List-Unsubscribe"] == "<https://x.test/u/1>"
    types = [part.get_content_type() for part in msg.iter_parts()]
    assert types == ["text/plain", "text/html"]


@pytest.mark.parametrize(
    "bad",
    [
        "no-at-sign",
        "a@b",
        "a b@example.org",
        "a@example.org\r\nBcc: victim@example.org",
        "x" * 250 + "@e.org",
        "",
    ],
)
def test_invalid_addresses_are_refused(bad):
    with pytest.raises(InvalidAddress):
        normalize_address(bad)


def test_header_injection_is_impossible():
    msg = message("a@example.org", subject="Hello\r\nBcc: victim@example.org")
    assert msg["Subject"] == "Hello Bcc: victim@example.org"  # one line: the line break is gone
    assert "Bcc" not in msg
    with pytest.raises(ValueError):
        message("a@example.org", headers={"List-Id": "x\nBcc: victim@example.org"})


def test_outbox_delivers_over_smtp_and_records_it(store):
    clock = Clock()
    with SmtpServer() as smtp:
        assert enqueue(store, message("a@example.org"), key="digest:1", kind="digest", now=clock())
        assert not enqueue(store, message("a@example.org"), key="digest:1", kind="digest", now=clock())
        assert enqueue(store, message("b@example.org"), key="digest:2", kind="digest", now=clock())
        report = deliver_due(store, SmtpTransport(smtp.url), SENDER, clock=clock)
        assert (report.sent, report.retried, report.failed) == (2, 0, 0)
        assert [len(smtp.handler.to(a)) for a in ("a@example.org", "b@example.org")] == [1, 1]
        got = smtp.handler.to("a@example.org")[0]
        assert got.sender == "digest@paperwire.test"
        assert got.message.get_body(("plain",)).get_content().strip() == "Plain text part."
        assert "<b>part</b>" in got.message.get_body(("html",)).get_content()
        assert box.status_of(store, "digest:1") == "sent"
        # Nothing is due any more: a second run sends nothing.
        assert deliver_due(store, SmtpTransport(smtp.url), SENDER, clock=clock).sent == 0
        assert len(smtp.handler.received) == 2


def test_starttls_is_required_and_used(store, tmp_path):
    ca = trustme.CA()
    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("localhost", "127.0.0.1").configure_cert(tls)
    client = ssl.create_default_context()
    ca.configure_trust(client)
    clock = Clock()
    enqueue(store, message("a@example.org"), key="k1", kind="test", now=clock())
    with SmtpServer(tls_context=tls) as smtp:
        report = deliver_due(store, SmtpTransport(smtp.url, tls_context=client), SENDER, clock=clock)
        assert report.sent == 1 and len(smtp.handler.received) == 1
    # A server that offers no STARTTLS gets nothing in clear text from an smtp:// URL.
    enqueue(store, message("b@example.org"), key="k2", kind="test", now=clock())
    with SmtpServer() as plain:
        report = deliver_due(store, SmtpTransport(f"smtp://127.0.0.1:{plain.port}"), SENDER, clock=clock)
        assert report.sent == 0 and "STARTTLS" in report.server_down
        assert plain.handler.received == []
    assert box.status_of(store, "k2") == "pending"


def test_server_down_delays_and_never_drops(store):
    clock = Clock()
    for i in range(5):
        enqueue(store, message(f"r{i}@example.org"), key=f"m{i}", kind="test", now=clock())
    smtp = SmtpServer()  # not started: connection refused
    report = deliver_due(store, SmtpTransport(smtp.url, timeout=2), SENDER, clock=clock)
    assert report.sent == 0 and report.retried == 5 and report.server_down
    assert box.counts(store) == {"pending": 5}
    with smtp:
        # Not due yet: the backoff holds them back.
        assert deliver_due(store, SmtpTransport(smtp.url), SENDER, clock=clock).sent == 0
        clock.now += timedelta(minutes=2)
        assert deliver_due(store, SmtpTransport(smtp.url), SENDER, clock=clock).sent == 5
    assert len(smtp.handler.received) == 5


def test_permanent_rejection_suppresses_the_address(store):
    clock = Clock()
    with SmtpServer() as smtp:
        smtp.handler.refuse["gone@example.org"] = "550 5.1.1 No such user"
        smtp.handler.refuse["full@example.org"] = "452 4.2.2 Mailbox full"
        for i, to in enumerate(["gone@example.org", "full@example.org", "ok@example.org"]):
            enqueue(store, message(to), key=f"m{i}", kind="test", now=clock())
        report = deliver_due(store, SmtpTransport(smtp.url), SENDER, clock=clock)
        assert (report.sent, report.retried, report.failed, report.suppressed) == (1, 1, 1, 1)
        assert box.is_suppressed(store, "gone@example.org") and not box.is_suppressed(
            store, "full@example.org"
        )
        # Later messages to a suppressed address are not even attempted.
        enqueue(store, message("gone@example.org"), key="m9", kind="test", now=clock())
        smtp.handler.refuse.clear()
        clock.now += timedelta(hours=2)
        report = deliver_due(store, SmtpTransport(smtp.url), SENDER, clock=clock)
        assert report.sent == 1 and smtp.handler.to("gone@example.org") == []
        assert len(smtp.handler.to("full@example.org")) == 1


def test_a_dead_senders_claim_expires(store):
    clock = Clock()
    enqueue(store, message("a@example.org"), key="m1", kind="test", now=clock())
    claimed = box.claim_due(store, now=clock(), limit=10, lease=timedelta(minutes=5))
    assert len(claimed) == 1
    assert box.claim_due(store, now=clock(), limit=10, lease=timedelta(minutes=5)) == []  # held
    clock.now += timedelta(minutes=6)  # the sender died without marking it
    with SmtpServer() as smtp:
        assert deliver_due(store, SmtpTransport(smtp.url), SENDER, clock=clock).sent == 1


def test_the_final_dot_goes_only_after_the_handoff_is_committed(store, monkeypatch):
    clock = Clock()
    with SmtpServer() as smtp:
        transport = SmtpTransport(smtp.url)
        with transport:
            # The handoff refuses (the row is no longer ours): the server gets no complete message.
            with pytest.raises(HandoffRefused):
                transport.send(
                    "digest@paperwire.test", "a@example.org", bytes(message("a@example.org")), lambda: False
                )
            seen: list[int] = []
            transport.send(
                "digest@paperwire.test",
                "b@example.org",
                bytes(message("b@example.org")),
                lambda: seen.append(len(smtp.handler.received)) or True,
            )
        assert seen == [0]  # called before the server had the message
        assert smtp.handler.to("a@example.org") == [] and len(smtp.handler.to("b@example.org")) == 1
        # Through the outbox: the row is "handoff" at that moment, "sent" after.
        enqueue(store, message("c@example.org"), key="m1", kind="test", now=clock())
        states: list[str | None] = []
        real = box.mark_handoff

        def spy(st, message_id, **kw):  # noqa: ANN001, ANN003, ANN202
            done = real(st, message_id, **kw)
            states.append(box.status_of(st, "m1"))
            return done

        monkeypatch.setattr(box, "mark_handoff", spy)
        assert deliver_due(store, SmtpTransport(smtp.url), SENDER, clock=clock).sent == 1
        assert states == ["handoff"] and box.status_of(store, "m1") == "sent"


def test_a_dead_process_rows_are_taken_back_at_once(store):
    """A sender killed mid-run: rows it was sending go out again at once (the server never got them
    whole); a row it had handed over counts as sent (never twice)."""
    clock = Clock()
    for i in range(3):
        enqueue(store, message(f"r{i}@example.org"), key=f"m{i}", kind="test", now=clock())
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    pid = int(dead.stdout)
    ghost = f"{socket.gethostname()}/{pid}/123456789"
    claimed = box.claim_due(store, now=clock(), limit=3, lease=timedelta(minutes=5), owner=ghost)
    assert box.mark_handoff(store, claimed[0].id, owner=ghost)
    assert not box.mark_handoff(store, claimed[1].id, owner="someone-else/1/1")  # not theirs
    assert box.recover(store, now=clock()) == (2, 1)
    assert [box.status_of(store, f"m{i}") for i in range(3)] == ["sent", "pending", "pending"]
    # A live process's rows stay its own until their lease ends.
    mine = box.claim_due(
        store, now=clock(), limit=3, lease=timedelta(minutes=5), owner=box.process_identity()
    )
    assert len(mine) == 2 and box.recover(store, now=clock()) == (0, 0)
    assert box.recover(store, now=clock() + timedelta(minutes=6)) == (2, 0)


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs Linux /proc")
def test_a_process_that_has_exited_but_was_not_reaped_counts_as_dead():
    """A killed sender whose parent died first lingers (exiting, or a zombie) until init reaps it: its rows
    must be taken back all the same (a delivery process outlived by nothing but its corpse)."""
    proc = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()"], stdin=subprocess.PIPE)
    try:
        start = box._start_time(proc.pid)
        owner = f"{socket.gethostname()}/{proc.pid}/{start}"
        assert start is not None and not box._is_dead(owner)  # alive: its rows are its own
        proc.stdin.close()
        deadline = time.monotonic() + 10
        while Path(f"/proc/{proc.pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z":
            assert time.monotonic() < deadline, "the child did not exit"
            time.sleep(0.01)
        assert box._is_dead(owner)  # a zombie (not reaped yet): dead
    finally:
        proc.wait()
    assert box._is_dead(owner)


def test_without_smtp_messages_go_to_a_maildir(store, tmp_path):
    clock = Clock()
    enqueue(store, message("a@example.org"), key="m1", kind="test", now=clock())
    report = deliver_due(store, MaildirTransport(tmp_path / "maildir"), SENDER, clock=clock)
    assert report.sent == 1
    messages = list(mailbox.Maildir(tmp_path / "maildir"))
    assert len(messages) == 1 and messages[0]["To"] == "a@example.org"


def test_smtp_url_is_validated():
    for bad in ["http://x", "smtp://", "mailto:a@b.c"]:
        with pytest.raises(ValueError):
            SmtpTransport(bad)
    t = SmtpTransport("smtps://user:p%40ss@mail.example.org")
    assert (t.port, t.user, t.password) == (465, "user", "p@ss")
    assert "p@ss" not in t.description


def test_compose_bytes_makes_the_same_message_fast():
    import email
    import email.policy
    import html as html_lib

    text = (
        "Dear reader,\n.\nA line that starts with a dot, ünïcödé, = signs and "
        + "long " * 60
        + "\nhttps://arxiv.org/pdf/2405"
        + "0" * 49
        + ".11454 (a soft line break lands before the dot)\nend"
    )
    html = "<p>Ünïcödé &amp; <b>bold</b></p>" + "<td style='x'>" * 200
    raw = compose_bytes(
        sender="Pàperwire Digest <digest@paperwire.test>",
        to="Ada@Example.org",
        subject="Speculative decoding — 𝒪(n²) + 9 more",
        text=text,
        html=html,
        headers={
            "List-Unsubscribe": "<https://p.example/unsubscribe?token="
            + "x" * 90
            + ">, <mailto:u@p.example>",
            "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
        },
    )
    assert all(len(line) <= 998 for line in raw.split(b"\r\n")) and b"\n" not in raw.replace(b"\r\n", b"")
    assert b"\n." not in raw  # no line starts with a dot: nothing for SMTP to dot-stuff
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    assert msg["To"] == "ada@example.org" and msg["Subject"] == "Speculative decoding — 𝒪(n²) + 9 more"
    assert (
        msg["From"].addresses[0].display_name == "Pàperwire Digest"
        and msg["From"].addresses[0].addr_spec == "digest@paperwire.test"
    )
    assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert msg["List-Unsubscribe"].startswith("<https://p.example/unsubscribe?token=xxx")
    assert msg["Message-ID"].endswith("@paperwire.test>") and msg["Date"]
    assert msg.get_body(("plain",)).get_content().replace("\r\n", "\n").rstrip("\n") == text
    # HTML goes as 7-bit ASCII: character references for the rest, long lines broken at spaces.
    sent_html = msg.get_body(("html",)).get_content()
    assert msg.get_body(("html",))["Content-Transfer-Encoding"] == "7bit" and sent_html.isascii()
    assert "&#220;n&#239;c&#246;d&#233;" in sent_html
    assert " ".join(html_lib.unescape(sent_html).split()) == " ".join(html_lib.unescape(html).split())
    with pytest.raises(ValueError):
        compose_bytes(
            sender=SENDER, to="a@example.org", subject="s", text="t", html="h", headers={"X": "a\r\nBcc: b"}
        )
    with pytest.raises(ValueError):
        compose_bytes(
            sender=SENDER, to="a@example.org", subject="s", text="t", html="h", headers={"X: y": "z"}
        )
    with pytest.raises(InvalidAddress):
        compose_bytes(sender=SENDER, to="a@example.org\r\nBcc: x@y.org", subject="s", text="t", html="h")


def test_old_sent_messages_are_pruned(store):
    clock = Clock()
    enqueue(store, message("a@example.org"), key="old", kind="test", now=clock() - timedelta(days=40))
    enqueue(store, message("b@example.org"), key="new", kind="test", now=clock())
    enqueue(store, message("c@example.org"), key="waiting", kind="test", now=clock() - timedelta(days=40))
    for item in box.claim_due(store, now=clock(), limit=10, lease=timedelta(minutes=5)):
        if item.key != "waiting":
            box.mark_sent(store, item.id, now=clock())
        else:
            box.mark_retry(store, item.id, error="4xx", at=clock())
    assert box.prune(store, before=clock() - timedelta(days=30)) == 1
    assert [box.status_of(store, k) for k in ("old", "new", "waiting")] == [None, "sent", "pending"]


def test_lines_starting_with_a_dot_arrive_intact():
    raw = b"From: a@paperwire.test\r\nTo: b@example.org\r\nSubject: dots\r\n\r\n.first\r\nmiddle\r\n..two\r\n.\r\nlast\r\n"
    with SmtpServer() as smtp, SmtpTransport(smtp.url) as transport:
        transport.send("a@paperwire.test", "b@example.org", raw)
        transport.send("a@paperwire.test", "b@example.org", raw.replace(b".", b","))
    got = [r.raw.replace(b"\r\n", b"\n") for r in smtp.handler.to("b@example.org")]
    assert got[0].endswith(b"\n\n.first\nmiddle\n..two\n.\nlast\n")
    assert got[1].endswith(b"\n\n,first\nmiddle\n,,two\n,\nlast\n")


def test_a_stop_inside_the_handoff_window_waits_for_the_final_dot():
    """SIGTERM outside the window stops the sender at once; inside it (handoff committed, final "." not yet
    written) only once the dot is out: a committed "handoff" always has its message at the server."""
    script = (
        "import os, signal, sys\n"
        "from paperwire.mail.stopping import exit_between_messages, handoff_window\n"
        "exit_between_messages()\n"
        "with handoff_window():\n"
        "    os.kill(os.getpid(), signal.SIGTERM)\n"
        "    print('final dot written', flush=True)\n"
        "print('never: the stop comes first', flush=True)\n"
        "os.kill(os.getpid(), signal.SIGTERM)\n"
    )
    inside = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert inside.returncode == 128 + 15 and inside.stdout == "final dot written\n", inside
    outside = subprocess.run(
        [sys.executable, "-c", script.replace("with handoff_window():", "if True:")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert outside.returncode == 128 + 15 and outside.stdout == "", outside


def test_a_delivery_process_told_to_stop_is_not_taken_for_a_failure(tmp_path, monkeypatch):
    """SIGTERM (a service manager stopping everything) leaves mail in the outbox for later; only a crash
    makes the run deliver from its own process."""
    import signal as sig

    from paperwire.mail.background import BackgroundDelivery

    monkeypatch.setenv("PAPERWIRE_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("PAPERWIRE_SMTP_URL", raising=False)
    monkeypatch.delenv("PAPERWIRE_DATABASE_URL", raising=False)
    for signum, stopped in ((sig.SIGTERM, True), (sig.SIGKILL, False)):
        delivery = BackgroundDelivery()
        deadline = time.monotonic() + 30
        while not (tmp_path / "data" / "paperwire.db").exists():  # it has opened the store: running
            assert delivery.proc.poll() is None and time.monotonic() < deadline
            time.sleep(0.05)
        time.sleep(0.3)
        delivery.proc.send_signal(signum)
        assert delivery.finish() is None
        assert delivery.stopped is stopped, delivery.proc.returncode
