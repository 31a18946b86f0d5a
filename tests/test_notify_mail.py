"""A notification by mail, to a real SMTP receiver on loopback: apprise's mailto:// speaks SMTP to
it, and the mail's text says what the run said, line for line."""

from __future__ import annotations

import email
import email.policy
import socketserver
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from pgbackup_tui.core import notify


class SmtpReceiver(socketserver.StreamRequestHandler):
    """Enough of SMTP (RFC 5321) for one client: every command answered 250, DATA kept whole."""

    received: list[bytes]

    def say(self, line: str) -> None:
        self.wfile.write(line.encode("ascii") + b"\r\n")

    def handle(self) -> None:
        self.say("220 loopback test receiver")
        data: list[bytes] | None = None
        while line := self.rfile.readline():
            if data is not None:  # inside DATA: up to the lone dot
                if line == b".\r\n":
                    self.received.append(b"".join(data))
                    data = None
                    self.say("250 queued")
                else:
                    data.append(line[1:] if line.startswith(b"..") else line)
                continue
            command = line.decode("ascii", "replace").strip().upper()
            if command.startswith("EHLO"):
                self.say("250-loopback")
                self.say("250 8BITMIME")
            elif command.startswith("DATA"):
                self.say("354 end with a lone dot")
                data = []
            elif command.startswith("QUIT"):
                self.say("221 bye")
                return
            else:
                self.say("250 ok")


@pytest.fixture
def smtp_port() -> Iterator[tuple[int, list[bytes]]]:
    received: list[bytes] = []
    handler = type("Receiver", (SmtpReceiver,), {"received": received})
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1], received
    finally:
        server.shutdown()
        server.server_close()


def test_a_mail_keeps_the_run_s_lines(home: Path, smtp_port: tuple[int, list[bytes]],
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    port, received = smtp_port
    monkeypatch.setenv(notify.env_name("ops"),
                       f"mailto://127.0.0.1:{port}?from=backups@example.com&to=dba@example.com&mode=insecure")
    outcome = notify.Outcome(schedule="nightly", status="failed",
                             error="pg_dump: error: relation <app.orders> is locked",
                             lines=["dump of shop failed after 3.2 s", "kept the last 7 backups"],
                             log_path=Path("/var/log/x.log"))
    assert notify.send(["ops"], outcome) == ["notification 'ops' sent"]
    [raw] = received
    mail = email.message_from_bytes(raw, policy=email.policy.default)
    assert mail["Subject"] == "pgbackup-tui: schedule nightly failed"
    text = mail.get_body(preferencelist=("plain",))
    assert text is not None
    assert text.get_content().splitlines() == [
        "pg_dump: error: relation <app.orders> is locked",
        "dump of shop failed after 3.2 s",
        "kept the last 7 backups",
        "log: /var/log/x.log",
    ]


def test_a_url_the_environment_gives_is_sent_whatever_notify_toml_is_and_its_fault_is_its_own(
        home: Path, smtp_port: tuple[int, list[bytes]], monkeypatch: pytest.MonkeyPatch) -> None:
    """A notify.toml others could read stopped every notification, those whose URL a variable gave
    too; and a bad URL from a variable was said to be in notify.toml (QA)."""
    port, received = smtp_port
    (home / "notify.toml").write_text('[urls]\nother = "json://127.0.0.1/x"\n')
    (home / "notify.toml").chmod(0o644)
    monkeypatch.setenv(notify.env_name("ops"),
                       f"mailto://127.0.0.1:{port}?from=backups@example.com&to=dba@example.com&mode=insecure")
    outcome = notify.Outcome(schedule="nightly", status="failed", error="boom")
    assert notify.unreachable(["ops"]) is None
    sent, refused = notify.send(["ops", "other"], outcome)
    assert sent == "notification 'ops' sent" and len(received) == 1
    assert refused.startswith("notification 'other' not sent:") and "chmod 600" in refused
    (home / "notify.toml").chmod(0o600)
    monkeypatch.setenv(notify.env_name("ops"), "nosuchscheme://user:TOKEN42@host")
    [said] = notify.send(["ops"], outcome)
    assert "PGBACKUP_TUI_NOTIFY_OPS" in said and "notify.toml" not in said and "TOKEN42" not in said


def test_a_failure_that_names_its_log_names_it_once(home: Path, smtp_port: tuple[int, list[bytes]],
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """A job's failure line ends with its log ("…; log: /…/x.log"), and the mail said the log again
    on a line of its own (QA)."""
    port, received = smtp_port
    monkeypatch.setenv(notify.env_name("ops"),
                       f"mailto://127.0.0.1:{port}?from=backups@example.com&to=dba@example.com&mode=insecure")
    line = "nightly: failed: pg_dump failed (exit 1): permission denied; log: /var/log/x.log (job 1a2b3c4d)"
    outcome = notify.Outcome(schedule="nightly", status="failed", error=line, lines=[line],
                             log_path=Path("/var/log/x.log"))
    assert notify.send(["ops"], outcome) == ["notification 'ops' sent"]
    text = email.message_from_bytes(received[0], policy=email.policy.default).get_body(preferencelist=("plain",))
    assert text is not None
    assert text.get_content().count("/var/log/x.log") == 1, text.get_content()
