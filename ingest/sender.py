"""The sender loop: hands the outbox's due mail to the SMTP server, a batch per connection.

Each mail is marked `sending` (committed) before it is handed over and `sent` (committed) after
the server's 250, one by one, so a crash leaves at most one mail in doubt; it is sent again with
the same bytes and Message-ID. A 4xx defers the mail with exponential backoff and jitter; a 5xx
fails it, and the failure shows on its ticket. An unreachable server backs the whole loop off.
"""

from __future__ import annotations

import logging
import smtplib
import socket
import ssl
import threading
import time
from datetime import timedelta
from typing import Any

import sqlite_utils

from db import clock, outbox
from db.config import Smtp
from db.connect import write
from ingest import backoff, secrets

log = logging.getLogger("desk.sender")
IDLE_SECONDS = 0.5  # how often an idle sender looks for new mail: a reply leaves within this
CAP_SECONDS = 3600.0  # the longest wait between two attempts at one mail
EXPIRE_SECONDS = 60.0  # how often mail deferred past the give-up time is failed


def connect(smtp: Smtp) -> smtplib.SMTP:
    """A connected (and, with a username, logged-in) client; TLS is verified."""
    context = ssl.create_default_context(cafile=str(smtp.ca_file) if smtp.ca_file else None)
    if smtp.security == "tls":
        conn: smtplib.SMTP = smtplib.SMTP_SSL(
            smtp.host, smtp.port, timeout=smtp.timeout, context=context
        )
    else:
        conn = smtplib.SMTP(smtp.host, smtp.port, timeout=smtp.timeout)
    try:
        if smtp.security == "starttls":
            conn.starttls(context=context)
        if smtp.username:
            secret = secrets.resolve(smtp)
            if secret.oauth2:
                token = f"user={smtp.username}\x01auth=Bearer {secret.value}\x01\x01"
                conn.ehlo_or_helo_if_needed()
                conn.auth("XOAUTH2", lambda challenge=None: token)
            else:
                conn.login(smtp.username, secret.value)
    except BaseException:
        conn.close()
        raise
    return conn


def explain(smtp: Smtp, exc: BaseException) -> str:
    """One sentence on why the server could not take mail."""
    where = f"{smtp.host}:{smtp.port}"
    if isinstance(exc, secrets.SecretError):
        return exc.message
    if isinstance(exc, smtplib.SMTPAuthenticationError):
        return f"login as {smtp.username} on {where} was refused: {_text(exc.smtp_error)}"
    if isinstance(exc, ssl.SSLCertVerificationError):
        return (
            f"the TLS certificate of {where} was refused: {exc.verify_message}; if the server "
            "uses a private certificate authority, set ca_file to its certificate"
        )
    if isinstance(exc, ConnectionRefusedError):
        return f"{where} refused the connection (is the SMTP server running?)"
    if isinstance(exc, socket.gaierror):
        return f"cannot resolve {smtp.host}: {exc.strerror}"
    if isinstance(exc, TimeoutError):
        return f"{where} did not answer within {smtp.timeout:g} s"
    if isinstance(exc, smtplib.SMTPResponseException):
        return f"{where} said {exc.smtp_code} {_text(exc.smtp_error)}"
    return f"connection to {where} failed: {exc or type(exc).__name__}"


def _text(raw: Any) -> str:
    return raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)


def _retry_delay(smtp: Smtp, attempts: int) -> timedelta:
    return timedelta(seconds=backoff.delay(attempts - 1, smtp.retry_seconds, CAP_SECONDS))


def _hand_over(
    db: sqlite_utils.Database, smtp: Smtp, conn: smtplib.SMTP, row: dict[str, Any]
) -> bool:
    """Send one mail; False when the connection is gone (the mail is deferred)."""
    attempts = row["attempts"] + 1
    try:
        conn.sendmail(row["mail_from"], [row["rcpt"]], row["raw"])
    except smtplib.SMTPRecipientsRefused as exc:
        code, text = exc.recipients[row["rcpt"]]
    except smtplib.SMTPResponseException as exc:  # MAIL FROM or DATA refused
        code, text = exc.smtp_code, exc.smtp_error
    except (smtplib.SMTPException, OSError) as exc:
        with write(db):
            outbox.defer(db, row["id"], explain(smtp, exc), _retry_delay(smtp, attempts))
        return False
    else:
        with write(db):
            outbox.sent(db, row["id"])
        return True
    answer = f"{code} {_text(text)}"
    with write(db):
        if 500 <= code < 600:
            outbox.failed(db, row["id"], f"refused by the server: {answer}")
        else:
            delay = _retry_delay(smtp, attempts)
            outbox.defer(db, row["id"], f"deferred by the server: {answer}", delay)
    log.warning("mail %d to %s: the server answered %s", row["id"], row["rcpt"], answer)
    return True


def send_due(db: sqlite_utils.Database, smtp: Smtp, stop: threading.Event) -> tuple[int, str]:
    """Hand over what is due now, one connection for the batch: (mails taken, error or '')."""
    rows = outbox.due(db, clock.now(), smtp.batch_size)
    if not rows:
        return 0, ""
    try:
        conn = connect(smtp)
    except (OSError, smtplib.SMTPException, secrets.SecretError) as exc:
        why = explain(smtp, exc)
        with write(db):
            outbox.note_unreachable(db, why)
        return 0, why
    taken = 0
    try:
        for row in rows:
            if stop.is_set():
                break
            with write(db):
                if not outbox.begin(db, row["id"]):
                    continue
            taken += 1
            if not _hand_over(db, smtp, conn, row):
                return taken, "the connection was lost while sending"
    finally:
        try:
            conn.quit()
        except (smtplib.SMTPException, OSError):
            conn.close()
    return taken, ""


def run(db: sqlite_utils.Database, smtp: Smtp, stop: threading.Event, *, once: bool) -> None:
    """Send until `stop`; with `once`, send what is due and return."""
    with write(db):
        again = outbox.recover(db)
    if again:
        log.warning("%d mail(s) were in hand when the daemon stopped; sending again", again)
    wait = backoff.Backoff(first=smtp.retry_seconds, cap=CAP_SECONDS)
    expired_at = 0.0
    while not stop.is_set():
        if time.monotonic() - expired_at >= EXPIRE_SECONDS:
            expired_at = time.monotonic()
            with write(db):
                for outbox_id in outbox.expire(db, smtp.give_up_hours):
                    log.error("mail %d: given up after %g hours", outbox_id, smtp.give_up_hours)
        taken, error = send_due(db, smtp, stop)
        if error:
            delay = wait.next_delay()
            log.warning("outgoing mail waits: %s; trying again in %.0f s", error, delay)
            if once:
                return
            stop.wait(delay)
            continue
        wait.reset()
        if taken:
            log.info("handed %d mail(s) to %s:%d", taken, smtp.host, smtp.port)
        elif once:
            return
        else:
            stop.wait(IDLE_SECONDS)
