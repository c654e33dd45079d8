"""A private, throw-away Dovecot IMAP server for tests.

The ingest daemon reads real IMAP mailboxes, so its tests run against a real
server rather than a mock. :class:`Dovecot` writes a self-contained
``dovecot.conf`` under a test's temporary folder (nothing is read from or
written to ``/etc/dovecot``, and the system service is never touched), makes a
private certificate authority and a server certificate for ``127.0.0.1``, and
runs ``dovecot -F`` in the foreground as a child process listening on two free
ports on 127.0.0.1: plaintext IMAP (:attr:`Dovecot.port`) and implicit-TLS
IMAPS (:attr:`Dovecot.tls_port`).

Each user (by default the five desk functions) logs in with the password
``secret-<user>`` and gets a Maildir. Helpers append messages, read flags back,
and recreate a folder so that its UIDVALIDITY changes.

How it runs, depending on who runs the tests:

* as root (our machines and containers): the master and the auth process run as
  root, login processes as ``dovenull`` (Dovecot refuses to run them as root),
  and mail processes as ``nobody`` (Dovecot refuses mail access as root).
  If ``nobody`` cannot reach the base folder (pytest's ``/tmp/pytest-of-root``
  is mode 0700), the Maildirs live in a private folder under the system
  temporary folder instead, and ``<base>/mail`` is a symbolic link to it;
* as any other user: a "rootless" Dovecot where every process runs as that
  user and login processes are not chrooted.

With ``introspection_url`` it also takes XOAUTH2 logins, checking each token
with that OAuth 2.0 introspection endpoint (:class:`TokenServer` is one).

The module ends with the pytest fixtures :func:`dovecot_server` and
:func:`dovecot_oauth2_server`.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import datetime as dt
import grp
import http.server
import json
import os
import pwd
import re
import shutil
import signal
import socket
import ssl
import stat
import subprocess
import tempfile
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path

import imapclient
import pytest

DEFAULT_USERS: tuple[str, ...] = ("technical", "sales", "compliance", "general", "marketing")
"""The desk's five functions, one mailbox each."""

HOST = "127.0.0.1"
DOVECOT_BIN = "/usr/sbin/dovecot"
START_TIMEOUT = 10.0
STOP_TIMEOUT = 10.0
GRACE_PERIOD = 1.5  # for the master to exit after SIGTERM (about 1 s); then SIGKILL

# Longest socket path Dovecot creates under base_dir is about 30 characters
# ("login/imap-urlauth", "token-login/tokenlogin", ...); sun_path holds 107.
_MAX_BASE_DIR_LEN = 70

_APPENDUID = re.compile(rb"\[APPENDUID (\d+) (\d+)\]")
_PR_SET_PDEATHSIG = 1


def _doveadm_bin() -> str:
    return shutil.which("doveadm") or "/usr/bin/doveadm"


def _run(args: Sequence[str | os.PathLike[str]], **kwargs: object) -> str:
    """Run a command; raise with its output when it fails."""
    proc = subprocess.run(
        [str(a) for a in args],
        capture_output=True,
        text=True,
        check=False,
        **kwargs,  # type: ignore[arg-type]
    )
    if proc.returncode != 0:
        raise RuntimeError(
            f"{' '.join(map(str, args))} failed ({proc.returncode}):\n{proc.stdout}{proc.stderr}"
        )
    return proc.stdout


def generate_cert(
    folder: Path,
    cn: str,
    *,
    ca: tuple[Path, Path] | None = None,
    sans: Iterable[str] = (),
) -> tuple[Path, Path]:
    """Make a certificate and its private key in *folder*; return their paths.

    Without *ca* the certificate is a self-signed certificate authority named
    *cn* (usable as ``cafile=``); with ``ca=(ca_cert, ca_key)`` it is a server
    certificate signed by that CA, with *sans* as subjectAltName entries (for
    example ``"IP:127.0.0.1"``, ``"DNS:localhost"``). Files are named
    ``<cn>.pem`` and ``<cn>.key`` (characters other than letters, digits, "-",
    "." and "_" become "_"). Keys are EC P-256: quick to generate.
    """
    folder.mkdir(parents=True, exist_ok=True)
    stem = re.sub(r"[^A-Za-z0-9._-]", "_", cn)
    cert, key = folder / f"{stem}.pem", folder / f"{stem}.key"
    newkey = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    if ca is None:
        _run(
            ["openssl", "req", "-x509", *newkey, "-keyout", key, "-out", cert]
            + ["-days", "3650", "-subj", f"/CN={cn}"]
            + ["-addext", "basicConstraints=critical,CA:TRUE"]
            + ["-addext", "keyUsage=critical,keyCertSign,cRLSign"]
            + ["-addext", "subjectKeyIdentifier=hash"]
        )
    else:
        ca_cert, ca_key = ca
        csr, ext = folder / f"{stem}.csr", folder / f"{stem}.ext"
        lines = [
            "basicConstraints = critical,CA:FALSE",
            "keyUsage = critical,digitalSignature,keyEncipherment",
            "extendedKeyUsage = serverAuth",
            "subjectKeyIdentifier = hash",
            "authorityKeyIdentifier = keyid,issuer",
        ]
        sans = list(sans)
        if sans:
            lines.append("subjectAltName = " + ",".join(sans))
        ext.write_text("\n".join(lines) + "\n")
        _run(["openssl", "req", *newkey, "-keyout", key, "-out", csr, "-subj", f"/CN={cn}"])
        _run(
            ["openssl", "x509", "-req", "-in", csr, "-CA", ca_cert, "-CAkey", ca_key]
            + ["-set_serial", str(int.from_bytes(os.urandom(8), "big"))]
            + ["-days", "3650", "-out", cert, "-extfile", ext]
        )
        csr.unlink()
        ext.unlink()
    key.chmod(0o600)
    return cert, key


def _free_ports(count: int) -> list[int]:
    """*count* distinct free TCP ports on 127.0.0.1 (held open together while picked)."""
    socks = []
    try:
        for _ in range(count):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind((HOST, 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def _die_with_parent_hook() -> Callable[[], None] | None:
    """A ``preexec_fn`` making the child get SIGTERM when the test process dies.

    So a test run killed by a signal (no atexit) does not leave Dovecot
    running. Linux only (prctl PR_SET_PDEATHSIG); None elsewhere. The C
    function is looked up here, in the parent: the hook itself only calls it.
    """
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    parent = os.getpid()

    def hook() -> None:
        prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
        if os.getppid() != parent:  # the parent died before prctl
            os._exit(1)

    return hook


def _port_open(port: int) -> bool:
    try:
        with socket.create_connection((HOST, port), timeout=0.5):
            return True
    except OSError:
        return False


def _greets(port: int) -> bool:
    """True once the plaintext listener answers with an IMAP greeting."""
    try:
        with socket.create_connection((HOST, port), timeout=1.0) as s:
            return s.recv(64).startswith(b"* OK")
    except OSError:
        return False


def _reachable(path: Path, uid: int, gid: int) -> bool:
    """Whether a process with *uid*/*gid* may traverse every folder down to *path*.

    Conservative: ignores supplementary groups and ACLs.
    """
    for folder in [path, *path.parents]:
        st = folder.stat()
        if st.st_uid == uid:
            ok = st.st_mode & stat.S_IXUSR
        elif st.st_gid == gid:
            ok = st.st_mode & stat.S_IXGRP
        else:
            ok = st.st_mode & stat.S_IXOTH
        if not ok:
            return False
    return True


def live_processes_in_group(pgid: int) -> list[int]:
    """Ids of the processes in process group *pgid* that are not zombies (Linux /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        state, pgrp = fields[0], int(fields[2])
        if pgrp == pgid and state not in ("Z", "X"):
            found.append(int(entry.name))
    return found


class Dovecot:
    """A private Dovecot serving IMAP and IMAPS on 127.0.0.1 for *users*.

    Everything lives under *base*: ``dovecot.conf``, ``passwd``, ``tls/``
    (CA and server certificate), ``run/`` (Dovecot's base_dir), ``state/``,
    ``mail/<user>`` (Maildirs, possibly a symbolic link, see the module
    docstring) and ``dovecot.log``.

    Construction writes the files and picks the ports; :meth:`start` runs the
    server. Usable as a context manager (start ... stop + cleanup).
    """

    host: str = HOST

    def __init__(
        self,
        base: Path | str,
        users: Iterable[str] = DEFAULT_USERS,
        *,
        introspection_url: str | None = None,
    ) -> None:
        self.base = Path(base).resolve()
        self.base.mkdir(parents=True, exist_ok=True)
        self.users: tuple[str, ...] = tuple(users)
        if not self.users:
            raise ValueError("at least one user is needed")
        for user in self.users:
            if not re.fullmatch(r"[A-Za-z0-9._-]+", user):
                raise ValueError(f"unsupported user name: {user!r}")
        self.conf_path = self.base / "dovecot.conf"
        self.log_path = self.base / "dovecot.log"
        self.passwd_path = self.base / "passwd"
        self.state_dir = self.base / "state"
        # With an OAuth 2.0 introspection endpoint (RFC 7662, e.g. a TokenServer), XOAUTH2
        # logins are offered too, and the endpoint says which tokens are good.
        self.introspection_url = introspection_url
        self.port, self.tls_port = _free_ports(2)
        # More settings, written last (see reconfigure).
        self.settings: dict[str, str] = {}
        self._proc: subprocess.Popen[bytes] | None = None
        self._started_once = False
        self._temp_dirs: list[Path] = []
        atexit.register(self._atexit)

        self._set_identities()
        self.base_dir = self.base / "run"
        if len(str(self.base_dir)) > _MAX_BASE_DIR_LEN:
            self.base_dir = self._temp_dir("dovecot-run-")
        self._make_mail_root()
        self._make_certs()
        self._write_passwd()
        self._write_conf()

    # ----------------------------------------------------------------- setup

    def _set_identities(self) -> None:
        self.rootless = os.geteuid() != 0
        if self.rootless:
            me = pwd.getpwuid(os.geteuid())
            self.internal_user = self.login_user = me.pw_name
            self.internal_group = grp.getgrgid(os.getegid()).gr_name
            self.mail_uid, self.mail_gid = os.geteuid(), os.getegid()
        else:
            self.internal_user = "root"
            try:  # Dovecot's default, made by the Debian package
                self.internal_group = grp.getgrnam("dovecot").gr_name
            except KeyError:
                self.internal_group = "root"
            self.login_user = self._first_user("dovenull", "nobody")
            nobody = pwd.getpwnam(self._first_user("nobody", "dovenull"))
            self.mail_uid, self.mail_gid = nobody.pw_uid, nobody.pw_gid

    @staticmethod
    def _first_user(*names: str) -> str:
        for name in names:
            with contextlib.suppress(KeyError):
                return pwd.getpwnam(name).pw_name
        raise RuntimeError(f"none of the system users {names} exists")

    def _temp_dir(self, prefix: str) -> Path:
        path = Path(tempfile.mkdtemp(prefix=prefix))
        self._temp_dirs.append(path)
        return path

    def _make_mail_root(self) -> None:
        link = self.base / "mail"
        if self.rootless or _reachable(self.base, self.mail_uid, self.mail_gid):
            self.mail_root = link
            link.mkdir(exist_ok=True)
        else:
            self.mail_root = self._temp_dir("dovecot-mail-")
            self.mail_root.chmod(0o711)
            if not _reachable(self.mail_root, self.mail_uid, self.mail_gid):
                raise RuntimeError(f"the mail user cannot reach {self.mail_root}")
            if link.is_symlink():
                link.unlink()
            link.symlink_to(self.mail_root, target_is_directory=True)
        os.chown(self.mail_root, self.mail_uid, self.mail_gid)

    def _make_certs(self) -> None:
        tls = self.base / "tls"
        self.ca_file, self._ca_key = generate_cert(tls, "Desk Test CA")
        self.cert_file, self.key_file = generate_cert(
            tls,
            "127.0.0.1",
            ca=(self.ca_file, self._ca_key),
            sans=("IP:127.0.0.1", "DNS:localhost"),
        )

    def _write_passwd(self) -> None:
        self.passwd_path.write_text(
            "".join(f"{user}:{{PLAIN}}{self.password(user)}\n" for user in self.users)
        )
        self.passwd_path.chmod(0o600)

    def _write_conf(self) -> None:
        # Rootless: nothing can chroot (imap-login's chroot is set below).
        no_chroot = "".join(
            f"service {name} {{\n  chroot =\n}}\n"
            for name in ("anvil", "imap-urlauth-login", "ipc", "old-stats", "aggregator")
            if self.rootless
        )
        login_chroot = "" if self.rootless else "login"
        more = "".join(f"{name} = {value}\n" for name, value in self.settings.items())
        mechanisms, oauth2_passdb = "plain login", ""
        if self.introspection_url:
            oauth2_conf = self.base / "oauth2.conf.ext"
            oauth2_conf.write_text(
                f"introspection_mode = post\nintrospection_url = {self.introspection_url}\n"
                "username_attribute = username\nactive_attribute = active\nactive_value = true\n"
            )
            mechanisms += " xoauth2"
            # After the passwd-file passdb, which lets a token it does not know fall through
            # to this one; before it, user lookups without a mechanism (doveadm) would fail.
            oauth2_passdb = (
                "passdb {\n  driver = oauth2\n  mechanisms = xoauth2\n"
                f"  args = {oauth2_conf}\n}}\n"
            )
        self.conf_path.write_text(
            f"""\
# Written by tests/dovecot.py: a private test server; includes nothing from /etc.
instance_name = desk-test-dovecot
base_dir = {self.base_dir}
state_dir = {self.state_dir}
log_path = {self.log_path}
info_log_path = {self.log_path}
debug_log_path = {self.log_path}

protocols = imap
listen = {HOST}

ssl = yes
ssl_cert = <{self.cert_file}
ssl_key = <{self.key_file}

disable_plaintext_auth = no
auth_mechanisms = {mechanisms}
auth_verbose = yes
auth_failure_delay = 0
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {self.passwd_path}
}}
{oauth2_passdb}userdb {{
  driver = static
  args = home={self.mail_root}/%u
}}

mail_location = maildir:{self.mail_root}/%u
namespace inbox {{
  inbox = yes
  separator = /
}}
mail_uid = {self.mail_uid}
mail_gid = {self.mail_gid}
first_valid_uid = 0
first_valid_gid = 0
default_internal_user = {self.internal_user}
default_internal_group = {self.internal_group}
default_login_user = {self.login_user}
mail_fsync = never
stats_writer_socket_path =
{more}

service imap-login {{
  chroot = {login_chroot}
  inet_listener imap {{
    address = {HOST}
    port = {self.port}
  }}
  inet_listener imaps {{
    address = {HOST}
    port = {self.tls_port}
    ssl = yes
  }}
}}
# No growing per-IP delay (4, 8, 15 s) after failed logins:
service anvil {{
  unix_listener anvil-auth-penalty {{
    mode = 0
  }}
}}
{no_chroot}"""
        )

    # ------------------------------------------------------------- lifecycle

    @staticmethod
    def available() -> bool:
        """True when Dovecot (and the doveadm and openssl it needs) are installed."""
        return (
            Path(DOVECOT_BIN).exists()
            and Path(_doveadm_bin()).exists()
            and shutil.which("openssl") is not None
        )

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    @property
    def pid(self) -> int | None:
        """The master process id while running."""
        return self._proc.pid if self.running and self._proc else None

    def start(self) -> None:
        """Run ``dovecot -F`` and wait (at most 10 s) until it greets on the plaintext port.

        On the first start only, if another process grabbed one of the ports
        picked at construction (parallel test runs), new ports are picked.
        """
        if self.running:
            return
        for attempt in range(3):
            log_offset = self.log_path.stat().st_size if self.log_path.exists() else 0
            try:
                self._start_once()
            except RuntimeError:
                new_log = self.log_text(log_offset)
                if self._started_once or attempt == 2 or "Address already in use" not in new_log:
                    raise
                self.port, self.tls_port = _free_ports(2)
                self._write_conf()
            else:
                self._started_once = True
                return

    def _start_once(self) -> None:
        self.base_dir.mkdir(parents=True, exist_ok=True)
        self.state_dir.mkdir(parents=True, exist_ok=True)
        for port in (self.port, self.tls_port):
            if _port_open(port):
                raise RuntimeError(f"port {port} is already taken: Address already in use")
        with open(self.base / "dovecot.stderr", "ab") as err:
            self._proc = subprocess.Popen(
                [DOVECOT_BIN, "-F", "-c", str(self.conf_path)],
                stdin=subprocess.DEVNULL,
                stdout=err,
                stderr=err,
                start_new_session=True,  # own process group: stop() can sweep it
                preexec_fn=_die_with_parent_hook(),
            )
        # The master binds every listener before starting any process, so a
        # greeting on the plaintext port (which needs the auth process) means
        # the TLS port is ready too. (Probing it as well would leave a login
        # process that delays a stop right after start by 5 s.)
        deadline = time.monotonic() + START_TIMEOUT
        while not _greets(self.port):
            if self._proc.poll() is not None:
                code = self._proc.returncode
                self._proc = None
                raise RuntimeError(f"dovecot exited with {code}:\n{self.log_text()}")
            if time.monotonic() > deadline:
                self.stop(graceful=False)
                raise RuntimeError(
                    f"dovecot did not start in {START_TIMEOUT} s:\n{self.log_text()}"
                )
            time.sleep(0.01)

    def stop(self, graceful: bool = True) -> None:
        """Shut the server down and wait until its ports are closed.

        Graceful: SIGTERM to the master, which stops its children and exits
        (about 1 s: the master waits for its log process); SIGKILL if it
        takes over 1.5 s. Otherwise SIGKILL to the whole process group at once,
        like a crash (a few ms). Either way any process left in the group is
        then killed.
        """
        proc, self._proc = self._proc, None
        if proc is None:
            return
        if proc.poll() is None:
            if graceful:
                proc.send_signal(signal.SIGTERM)
            else:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(proc.pid, signal.SIGKILL)
            try:
                proc.wait(timeout=GRACE_PERIOD)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        # Any straggling child of the master is in its process group.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        deadline = time.monotonic() + STOP_TIMEOUT
        while (
            _port_open(self.port) or _port_open(self.tls_port) or live_processes_in_group(proc.pid)
        ):
            if time.monotonic() > deadline:
                raise RuntimeError("dovecot's ports or processes are still there after stop()")
            time.sleep(0.01)

    def kill(self) -> None:
        """Kill the server abruptly (SIGKILL to its process group), as in a crash."""
        self.stop(graceful=False)

    def restart(self) -> None:
        """Stop, then start again on the same ports with the same mailboxes."""
        self.stop()
        self.start()

    def cleanup(self, graceful: bool = True) -> None:
        """Stop, and remove the folders made outside *base* (if any)."""
        self.stop(graceful=graceful)
        while self._temp_dirs:
            shutil.rmtree(self._temp_dirs.pop(), ignore_errors=True)

    def _atexit(self) -> None:
        with contextlib.suppress(Exception):
            self.cleanup(graceful=False)

    def __enter__(self) -> Dovecot:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.cleanup()

    def log_text(self, offset: int = 0) -> str:
        """Dovecot's log from byte *offset* on (and whatever the master wrote to stderr)."""
        parts = []
        with contextlib.suppress(FileNotFoundError), open(self.log_path, "rb") as log:
            log.seek(offset)
            parts.append(log.read().decode(errors="replace"))
        with contextlib.suppress(FileNotFoundError):
            parts.append((self.base / "dovecot.stderr").read_text(errors="replace"))
        return "".join(parts)

    # --------------------------------------------------------------- clients

    def password(self, user: str) -> str:
        return f"secret-{user}"

    def ssl_context(self, cafile: Path | str | None = None) -> ssl.SSLContext:
        """A verifying client context trusting our CA (or *cafile*)."""
        return ssl.create_default_context(cafile=str(cafile or self.ca_file))

    def client(self, user: str, tls: bool = False, timeout: float = 10.0) -> imapclient.IMAPClient:
        """A logged-in IMAPClient for *user*: plaintext, or IMAPS verified against our CA."""
        if tls:
            c = imapclient.IMAPClient(
                self.host,
                port=self.tls_port,
                ssl=True,
                ssl_context=self.ssl_context(),
                timeout=timeout,
            )
        else:
            c = imapclient.IMAPClient(self.host, port=self.port, ssl=False, timeout=timeout)
        try:
            c.login(user, self.password(user))
        except BaseException:
            with contextlib.suppress(Exception):
                c.shutdown()
            raise
        return c

    @contextlib.contextmanager
    def session(self, user: str) -> Iterator[imapclient.IMAPClient]:
        """``with dovecot.session(user) as c:`` a plaintext client logged out afterwards."""
        c = self.client(user)
        try:
            yield c
        finally:
            with contextlib.suppress(Exception):
                c.logout()

    def doveadm(self, *args: str) -> str:
        """Run ``doveadm -c <our conf> ARGS`` and return its output."""
        return _run([_doveadm_bin(), "-c", str(self.conf_path), *args])

    # --------------------------------------------------------------- content

    def append(
        self,
        user: str,
        raw: bytes,
        folder: str = "INBOX",
        flags: Sequence[str | bytes] = (),
        msg_time: dt.datetime | None = None,
    ) -> int:
        """Append *raw* to *folder* (created if missing) and return the new UID."""
        with self.session(user) as c:
            return self._append(c, raw, folder, flags, msg_time)

    @staticmethod
    def _append(
        c: imapclient.IMAPClient,
        raw: bytes,
        folder: str,
        flags: Sequence[str | bytes],
        msg_time: dt.datetime | None,
    ) -> int:
        if folder.upper() != "INBOX" and not c.folder_exists(folder):
            c.create_folder(folder)
        response = c.append(folder, raw, flags=tuple(flags), msg_time=msg_time)
        match = _APPENDUID.search(response)
        if match is None:
            raise RuntimeError(f"no APPENDUID in {response!r}")
        return int(match.group(2))

    def flags(self, user: str, folder: str = "INBOX") -> dict[int, tuple]:
        """``{uid: flags}`` for every message in *folder* (read-only; \\Recent excluded)."""
        with self.session(user) as c:
            c.select_folder(folder, readonly=True)
            uids = c.search("ALL")
            if not uids:
                return {}
            return {
                uid: tuple(f for f in found if f != imapclient.RECENT)
                for uid, found in c.get_flags(uids).items()
            }

    def uidvalidity(self, user: str, folder: str = "INBOX") -> int:
        with self.session(user) as c:
            return int(c.folder_status(folder, [b"UIDVALIDITY"])[b"UIDVALIDITY"])

    def recreate_folder(self, user: str, folder: str = "INBOX") -> int:
        """Give *folder* a new UIDVALIDITY and the same messages again; return it.

        The messages are fetched (bytes, flags, internal dates), expunged,
        the UIDVALIDITY is changed with ``doveadm mailbox update
        --uid-validity``, and the messages are appended again, so they get new
        UIDs (continuing after the old ones). This is what a client sees when
        a folder is deleted and recreated, and it works for INBOX, which
        cannot be deleted. A session that has the folder selected (IDLE or
        not) gets ``* BYE IMAP session state is inconsistent, please relogin``
        at its next sync, as from a real server. (Actually deleting and
        recreating a selected Maildir folder leaves Dovecot's other sessions
        answering "NO Internal error" instead, so that is not done.)
        """
        with self.session(user) as c:
            c.normalise_times = False  # keep the internal dates' time zones
            old = int(c.select_folder(folder)[b"UIDVALIDITY"])
            uids = c.search("ALL")
            fetched = c.fetch(uids, [b"BODY.PEEK[]", b"FLAGS", b"INTERNALDATE"]) if uids else {}
            if uids:
                c.delete_messages(uids)
                c.expunge()
            c.close_folder()
            wanted = old % 0xFFFFFFFF + 1
            self.doveadm("mailbox", "update", "-u", user, "--uid-validity", str(wanted), folder)
            for uid in sorted(fetched):
                item = fetched[uid]
                flags = [f for f in item[b"FLAGS"] if f != imapclient.RECENT]
                self._append(c, item[b"BODY[]"], folder, flags, item[b"INTERNALDATE"])
            new = int(c.folder_status(folder, [b"UIDVALIDITY"])[b"UIDVALIDITY"])
        if new == old:
            raise RuntimeError(f"UIDVALIDITY of {user}/{folder} did not change ({old})")
        return new

    def reconfigure(self, **settings: str) -> None:
        """Restart with more Dovecot settings, such as ``imap_fetch_failure="no-after"``."""
        self.settings.update(settings)
        self._write_conf()
        self.stop(graceful=False)
        self.start()

    def drop_capabilities(self, *names: str) -> None:
        """Restart as a server without the IMAP extensions *names* (``"IDLE"``, ``"MOVE"``).

        Dovecot's ``imap_capability`` replaces the list a logged-in client is told, so it is set
        to today's list without *names*; the commands still work, but a client that asks first,
        as it must (RFC 3501 section 6.1.1), never uses them, as against an older server.
        """
        with self.session(self.users[0]) as c:
            current = [cap.decode() for cap in c.capabilities()]
        dropped = {name.upper() for name in names}
        self.reconfigure(
            imap_capability=" ".join(cap for cap in current if cap.upper() not in dropped)
        )

    def reset_folder(self, user: str, folder: str) -> int:
        """Delete *folder* (not INBOX) with its messages and create it empty; return its new
        UIDVALIDITY.

        Unlike :meth:`recreate_folder`, the UIDs of what is appended next restart at 1, below
        the ones handed out before, as on a server that lost its index: a client that kept its
        old checkpoint would skip that mail. No session may have the folder selected (Dovecot's
        other sessions would answer "NO Internal error"), so run the reader between syncs.
        """
        if folder.upper() == "INBOX":
            raise ValueError("INBOX cannot be deleted; use recreate_folder")
        with self.session(user) as c:
            old = int(c.folder_status(folder, [b"UIDVALIDITY"])[b"UIDVALIDITY"])
            c.delete_folder(folder)
            c.create_folder(folder)
            new = int(c.folder_status(folder, [b"UIDVALIDITY"])[b"UIDVALIDITY"])
            if new == old:  # created within the second the old one was: force a change
                new = old % 0xFFFFFFFF + 1
                self.doveadm("mailbox", "update", "-u", user, "--uid-validity", str(new), folder)
        return new

    def untrusted_ca_file(self) -> Path:
        """A CA certificate that did NOT sign the server's certificate."""
        cert, _key = generate_cert(self.base / "untrusted", "Untrusted Test CA")
        return cert


class TokenServer:
    """An OAuth 2.0 token introspection endpoint (RFC 7662) on 127.0.0.1, for XOAUTH2 tests.

    Dovecot's oauth2 passdb POSTs ``token=...`` to :attr:`url`; the token
    :meth:`token` gives *user* is active, any other is not. Runs in a thread
    until :meth:`close`.
    """

    def __init__(self) -> None:
        tokens = self.tokens = {}

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - the name http.server calls
                form = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                token = urllib.parse.parse_qs(form.decode()).get("token", [""])[0]
                user = tokens.get(token)
                answer = {"active": True, "username": user} if user else {"active": False}
                body = json.dumps(answer).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self._server = http.server.ThreadingHTTPServer((HOST, 0), Handler)
        self.url = f"http://{HOST}:{self._server.server_port}/introspect"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def token(self, user: str) -> str:
        """The access token that logs *user* in."""
        self.tokens[f"token-{user}"] = user
        return f"token-{user}"

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def _require_dovecot() -> None:
    """Skip when Dovecot is not installed, unless ``DESK_REQUIRE_DOVECOT=1`` (as in CI),
    in which case fail instead."""
    if not Dovecot.available():
        message = (
            f"Dovecot not available ({DOVECOT_BIN}, doveadm and openssl are needed; "
            "apt-get install dovecot-imapd)"
        )
        if os.environ.get("DESK_REQUIRE_DOVECOT") == "1":
            pytest.fail(message + " but DESK_REQUIRE_DOVECOT=1", pytrace=False)
        pytest.skip(message)


@pytest.fixture
def dovecot_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Dovecot]:
    """A started private :class:`Dovecot`, stopped and cleaned up after the test."""
    _require_dovecot()
    server = Dovecot(tmp_path_factory.mktemp("dovecot"))
    try:
        server.start()
        yield server
    finally:
        # Nothing is kept, so no need for the graceful (1 s) shutdown.
        server.cleanup(graceful=False)


@pytest.fixture
def dovecot_oauth2_server(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[Dovecot, TokenServer]]:
    """A started private :class:`Dovecot` that also takes XOAUTH2 logins, with the
    :class:`TokenServer` that says which tokens are good."""
    _require_dovecot()
    tokens = TokenServer()
    server = Dovecot(tmp_path_factory.mktemp("dovecot"), introspection_url=tokens.url)
    try:
        server.start()
        yield server, tokens
    finally:
        server.cleanup(graceful=False)
        tokens.close()
