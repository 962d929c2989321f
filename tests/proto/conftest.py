"""Shared fixtures for the Roost protocol tests.

Every test talks to a real `roost serve` started on 127.0.0.1 with its own
data directory and free ports.  Nothing here reaches past loopback; every
wait is bounded.  See README.md in this directory.
"""
import os
import random
import re
import shutil
import signal
import socket
import ssl
import string
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
HOSTNAME = "mx.example.test"
DOMAIN = "example.test"
DEFAULT_MAX_SIZE = 35882577


def roost_bin():
    b = os.environ.get("ROOST_BIN") or "build/asan/roost"
    p = Path(b)
    if not p.is_absolute():
        p = REPO / p
    return str(p)


STARTUP_TIMEOUT = float(os.environ.get("ROOST_STARTUP_TIMEOUT", "20"))
CLI_TIMEOUT = 60
REPLY_TIMEOUT = 15.0
CRLF = b"\r\n"

_SANITIZER_MARKERS = (b"ERROR: AddressSanitizer", b"ERROR: LeakSanitizer",
                      b"runtime error:", b"ERROR: UndefinedBehaviorSanitizer")


# --------------------------------------------------------------------------
# small utilities

def free_ports(n):
    """n distinct free TCP ports on 127.0.0.1 (bound at once, then released)."""
    socks, ports = [], []
    try:
        for _ in range(n):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.1", 0))
            socks.append(s)
            ports.append(s.getsockname()[1])
    finally:
        for s in socks:
            s.close()
    return ports


def random_password(n=16):
    alphabet = string.ascii_letters + string.digits
    return "".join(random.SystemRandom().choice(alphabet) for _ in range(n))


def client_context(cafile=None):
    """TLS client context: verification off, or the server's own cert as CA."""
    if cafile:
        ctx = ssl.create_default_context(cafile=str(cafile))
        ctx.check_hostname = False
        return ctx
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def wait_until(pred, timeout, interval=0.1, what="condition"):
    deadline = time.monotonic() + timeout
    last = None
    while True:
        last = pred()
        if last:
            return last
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


_uniq_lock = threading.Lock()
_uniq_n = [0]


def unique(prefix="u"):
    with _uniq_lock:
        _uniq_n[0] += 1
        n = _uniq_n[0]
    return f"{prefix}{os.getpid()}x{n}{random.randrange(1 << 20):05x}"


def make_message(frm, to, subject="Roost proto test", body=None, msgid=None,
                 extra_headers=()):
    """An RFC 5322 message as bytes with CRLF line endings (ending in CRLF).

    The default body has a line starting with "." (dot-stuffing), one
    starting with "..", and 8-bit UTF-8 text."""
    if msgid is None:
        msgid = f"<{unique('m')}@client.example.net>"
    if body is None:
        body = ("Hello from the Roost protocol tests.\r\n"
                ".a line that starts with a dot\r\n"
                "..and one with two dots\r\n"
                ".\tdot then tab\r\n"
                "Grüße, ça va? — 日本語 ✓ €\r\n"
                "\r\n"
                "last line\r\n")
    headers = [
        f"From: {frm}",
        f"To: {to}",
        f"Subject: {subject}",
        "Date: Mon, 01 Jan 2024 12:00:00 +0000",
        f"Message-ID: {msgid}",
        "MIME-Version: 1.0",
        "Content-Type: text/plain; charset=utf-8",
        "Content-Transfer-Encoding: 8bit",
    ]
    headers.extend(extra_headers)
    text = "\r\n".join(headers) + "\r\n\r\n" + body
    data = text.encode("utf-8")
    assert data.endswith(CRLF)
    return data


def dot_stuff(msg: bytes) -> bytes:
    """SMTP DATA payload for msg (which ends in CRLF), including the final dot."""
    assert msg.endswith(CRLF)
    lines = msg[:-2].split(CRLF)
    out = [(b"." + l) if l.startswith(b".") else l for l in lines]
    return CRLF.join(out) + CRLF + b".\r\n"


RETURN_PATH_RE = re.compile(rb"Return-Path: <([^<>\r\n]*)>\r\n")


def split_return_path(stored: bytes):
    """Splits a message as final delivery stored it into (envelope sender, rest):
    the store puts "Return-Path: <sender>" on the first line (RFC 5321 4.4)."""
    m = RETURN_PATH_RE.match(stored)
    assert m, f"stored message does not start with a Return-Path: field: {stored[:200]!r}"
    return m.group(1).decode("utf-8", "replace"), stored[m.end():]


def split_received(stored: bytes, return_path=True):
    """Splits a stored message into (Received field, rest), after its
    Return-Path: line (return_path=False: a message without one, such as a
    part of a stored message or a queued one).  The field is the first line
    plus any continuation lines (starting with SP or HTAB)."""
    if return_path:
        _, stored = split_return_path(stored)
    assert stored.startswith(b"Received:"), \
        f"stored message does not start with the server's Received: field: {stored[:200]!r}"
    pos = stored.find(CRLF)
    assert pos >= 0, f"Received: line not CRLF-terminated: {stored[:300]!r}"
    pos += 2
    while stored[pos:pos + 1] in (b" ", b"\t"):
        nxt = stored.find(CRLF, pos)
        assert nxt >= 0, f"unterminated Received: continuation: {stored[:400]!r}"
        pos = nxt + 2
    field = stored[:pos]
    assert b"\n" not in field.replace(CRLF, b""), f"bare LF in Received: field: {field!r}"
    assert b"\r" not in field.replace(CRLF, b""), f"bare CR in Received: field: {field!r}"
    return field, stored[pos:]


def assert_stored_exactly(stored: bytes, sent: bytes):
    field, rest = split_received(stored)
    if rest != sent:
        # find the first difference for a useful message
        i = next((k for k in range(min(len(rest), len(sent))) if rest[k] != sent[k]),
                 min(len(rest), len(sent)))
        raise AssertionError(
            "stored message differs from what was sent (after the Received: field)\n"
            f"  first difference at byte {i}: stored {rest[max(0, i - 40):i + 40]!r}\n"
            f"                              sent   {sent[max(0, i - 40):i + 40]!r}\n"
            f"  lengths: stored {len(rest)} sent {len(sent)}")


# --------------------------------------------------------------------------
# raw SMTP client

class SMTPClosed(AssertionError):
    pass


class Reply:
    def __init__(self, lines):
        self.lines = lines
        self.code = int(lines[-1][:3])

    @property
    def last(self):
        return self.lines[-1]

    @property
    def text(self):
        return "\n".join(self.lines)

    def keywords(self):
        """EHLO keywords (lines after the first), upper-cased, e.g. 'SIZE 1000'."""
        return [l[4:].strip().upper() for l in self.lines[1:]]

    def __repr__(self):
        return f"Reply({self.text!r})"


_reply_line = re.compile(rb"^[2-5][0-9][0-9]([ -]|$)")


class SMTP:
    """A raw SMTP connection: sends bytes exactly, reads (multi-line) replies
    with timeouts.  Keeps a transcript for failure messages."""

    def __init__(self, port, tls=False, host="127.0.0.1", timeout=REPLY_TIMEOUT,
                 source=None, read_greeting=True, cafile=None):
        self.timeout = timeout
        self.transcript = []
        src = (source, 0) if source else None
        self.sock = socket.create_connection((host, port), timeout=timeout,
                                             source_address=src)
        self.tls = False
        if tls:
            self.sock = client_context(cafile).wrap_socket(self.sock,
                                                           server_hostname=HOSTNAME)
            self.tls = True
        self.buf = b""
        self.greeting = self.reply() if read_greeting else None

    # -- io
    def send(self, data):
        if isinstance(data, str):
            data = data.encode("utf-8")
        self.transcript.append(("C", data[:300]))
        self.sock.sendall(data)

    def _fill(self, deadline):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise socket.timeout("reply timeout")
        self.sock.settimeout(remaining)
        try:
            chunk = self.sock.recv(65536)
        except (ConnectionResetError, ssl.SSLError) as e:
            raise SMTPClosed(f"connection reset: {e!r}; transcript: {self.history()}")
        if not chunk:
            raise SMTPClosed(f"connection closed by server; buffered {self.buf!r}; "
                             f"transcript: {self.history()}")
        self.buf += chunk

    def read_line(self, timeout=None):
        deadline = time.monotonic() + (timeout if timeout is not None else self.timeout)
        while CRLF not in self.buf:
            if len(self.buf) > 100000:
                raise AssertionError(f"reply line without CRLF: {self.buf[:200]!r}")
            try:
                self._fill(deadline)
            except socket.timeout:
                raise AssertionError(
                    f"no complete reply line within {timeout or self.timeout}s; "
                    f"buffered {self.buf!r}; transcript: {self.history()}") from None
        line, self.buf = self.buf.split(CRLF, 1)
        return line

    def reply(self, timeout=None):
        lines = []
        while True:
            line = self.read_line(timeout)
            assert _reply_line.match(line), \
                f"malformed reply line {line!r}; transcript: {self.history()}"
            s = line.decode("utf-8", "replace")
            if lines:
                assert s[:3] == lines[0][:3], f"code changed inside multi-line reply: {lines + [s]}"
            lines.append(s)
            if line[3:4] != b"-":
                break
        r = Reply(lines)
        self.transcript.append(("S", r.text))
        return r

    def cmd(self, line, timeout=None):
        if isinstance(line, str):
            line = line.encode("utf-8")
        self.send(line + CRLF)
        return self.reply(timeout)

    def pending(self, wait=1.0):
        """Bytes the server sent without being asked, within `wait` seconds
        (b'' if none; b'<EOF>' appended if it closed)."""
        deadline = time.monotonic() + wait
        try:
            while time.monotonic() < deadline:
                self._fill(deadline)
        except socket.timeout:
            pass
        except SMTPClosed:
            return self.buf + b"<EOF>"
        return self.buf

    def expect_closed(self, timeout=5.0):
        """True if the server closes the connection within timeout (any
        unread data is discarded into self.buf)."""
        deadline = time.monotonic() + timeout
        try:
            while True:
                self._fill(deadline)
        except SMTPClosed:
            return True
        except (socket.timeout, TimeoutError):
            return False
        except OSError:
            return True

    def history(self):
        out = []
        for who, d in self.transcript[-12:]:
            out.append(f"{who}: {d!r}" if who == "C" else f"{who}: {d}")
        return " | ".join(out)

    # -- commands
    def ehlo(self, name="client.example.net"):
        r = self.cmd(f"EHLO {name}")
        self.ehlo_reply = r
        return r

    def starttls(self, cafile=None):
        r = self.cmd("STARTTLS")
        assert r.code == 220, f"STARTTLS refused: {r}"
        assert self.buf == b"", f"server sent data after 220 to STARTTLS: {self.buf!r}"
        self.sock.settimeout(self.timeout)
        self.sock = client_context(cafile).wrap_socket(self.sock, server_hostname=HOSTNAME)
        self.tls = True
        return r

    def auth_plain(self, user, password, initial=True):
        import base64
        tok = base64.b64encode(b"\0" + user.encode() + b"\0" + password.encode()).decode()
        if initial:
            return self.cmd(f"AUTH PLAIN {tok}")
        r = self.cmd("AUTH PLAIN")
        if r.code != 334:
            return r
        return self.cmd(tok)

    def auth_login(self, user, password, initial=False):
        import base64
        u = base64.b64encode(user.encode()).decode()
        p = base64.b64encode(password.encode()).decode()
        r = self.cmd(f"AUTH LOGIN {u}") if initial else self.cmd("AUTH LOGIN")
        if r.code != 334:
            return r
        if not initial:
            r = self.cmd(u)
            if r.code != 334:
                return r
        return self.cmd(p)

    def mail_transaction(self, sender, rcpts, msg, mail_params=""):
        """MAIL/RCPT/DATA; asserts the normal 250/354 path; returns the final reply."""
        r = self.cmd(f"MAIL FROM:<{sender}>" + (f" {mail_params}" if mail_params else ""))
        check(r, 250, "2.1.0", "OK")
        for rc in rcpts:
            r = self.cmd(f"RCPT TO:<{rc}>")
            check(r, 250, "2.1.5", "OK")
        r = self.cmd("DATA")
        check(r, 354, None, "Go ahead")
        self.send(dot_stuff(msg))
        return self.reply()

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.close()


QUEUE_ID_RE = re.compile(r"^250 2\.0\.0 OK (\S+)")


def check(r, code, enh=None, text=None, exact=True):
    """Asserts a reply: code; enhanced code (if given) right after the code;
    and the text (if given) exactly (exact=True) or as a prefix."""
    assert r.code == code, f"expected {code}, got {r.text!r}"
    if enh is not None:
        assert re.match(rf"^{code} {re.escape(enh)}( |$)", r.last), \
            f"expected '{code} {enh} ...', got {r.text!r}"
    if text is not None:
        want = f"{code} {enh} {text}" if enh else f"{code} {text}"
        if exact:
            assert r.last == want, f"expected {want!r}, got {r.last!r}"
        else:
            assert r.last.startswith(want), f"expected {want!r}..., got {r.last!r}"
    return r


def queue_id(r):
    m = QUEUE_ID_RE.match(r.last)
    assert r.code == 250 and m, f"expected '250 2.0.0 OK <queue-id>', got {r.text!r}"
    return m.group(1)


# --------------------------------------------------------------------------
# the server

class CLIResult:
    def __init__(self, args, cp):
        self.args = args
        self.rc = cp.returncode
        self.out = cp.stdout
        self.err = cp.stderr
        self.stdout = cp.stdout.decode("utf-8", "replace")
        self.stderr = cp.stderr.decode("utf-8", "replace")

    def __repr__(self):
        return (f"roost {' '.join(self.args)} -> rc={self.rc} stdout={self.stdout[-800:]!r} "
                f"stderr={self.stderr[-800:]!r}")


class RoostServer:
    def __init__(self, limits=None, hostname=HOSTNAME, listeners=("smtp", "submission", "submissions"),
                 extra_config="", listen_host="127.0.0.1", port_map=None, outbound=False):
        self.bin = roost_bin()
        self.base = Path(tempfile.mkdtemp(prefix="roost-proto-"))
        os.chmod(self.base, 0o755)
        self.data = self.base / "data"
        self.conf = self.base / "roost.conf"
        self.hostname = hostname
        # listen_host / port_map (test_outbound.py): another loopback address,
        # and fixed ports for some listeners (e.g. the shared MX port)
        self.listen_host = listen_host
        ports = free_ports(len(listeners) + 1)
        # The HTTP listener ([http] listen) gets a free port too, unless the
        # test configures [http] itself in extra_config.
        self.http_port = ports.pop()
        self.ports = dict(zip(listeners, ports))
        self.ports.update(port_map or {})
        self.limits = dict(limits or {})
        lines = ["[server]", f"hostname = {hostname}", f"data_dir = {self.data}", "user =",
                 "", "[listeners]"]
        for k, p in self.ports.items():
            lines.append(f"{k} = {listen_host}:{p}")
        if self.limits:
            lines += ["", "[limits]"] + [f"{k} = {v}" for k, v in self.limits.items()]
        if "[http]" not in extra_config:
            lines += ["", "[http]", f"listen = 127.0.0.1:{self.http_port}"]
        if not outbound:
            # remote recipients stay queued (the tests read them from the
            # queue); test_outbound.py turns the transport on
            lines += ["", "[outbound]", "enabled = no"]
        self.conf.write_text("\n".join(lines) + "\n" + extra_config)
        self.proc = None
        self.stderr_path = self.base / "stderr.log"
        self.stdout_path = self.base / "stdout.log"
        self.domains = set()
        self.exit_codes = []
        self.env = None           # environment of `roost serve` (None: inherit)

    # -- ports
    @property
    def smtp(self):
        return self.ports["smtp"]

    @property
    def submission(self):
        return self.ports["submission"]

    @property
    def submissions(self):
        return self.ports["submissions"]

    @property
    def cert(self):
        return self.data / "tls" / "cert.pem"

    # -- process
    def start(self, timeout=STARTUP_TIMEOUT):
        assert self.proc is None or self.proc.poll() is not None
        out = open(self.stdout_path, "ab")
        err = open(self.stderr_path, "ab")
        try:
            self.proc = subprocess.Popen([self.bin, "serve", "--config", str(self.conf)],
                                         stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                                         cwd=str(self.base), env=self.env)
        finally:
            out.close()
            err.close()
        self.wait_ready(timeout)
        return self

    def wait_ready(self, timeout=STARTUP_TIMEOUT):
        deadline = time.monotonic() + timeout
        pending = set(self.ports.values())
        while pending:
            rc = self.proc.poll()
            if rc is not None:
                raise AssertionError(f"roost serve exited with {rc} during start-up; "
                                     f"stderr: {self.stderr_tail()}")
            for p in list(pending):
                try:
                    with socket.create_connection((self.listen_host, p), timeout=1):
                        pending.discard(p)
                except OSError:
                    pass
            if not pending:
                break
            if time.monotonic() > deadline:
                raise AssertionError(f"roost serve not accepting on {sorted(pending)} after "
                                     f"{timeout}s; stderr: {self.stderr_tail()}")
            time.sleep(0.1)

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def terminate(self, timeout=20):
        """SIGTERM, then SIGKILL after timeout.  Returns the exit code."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
                self.exit_codes.append("SIGKILL after SIGTERM timeout")
                return "killed"
        self.exit_codes.append(self.proc.returncode)
        return self.proc.returncode

    def kill9(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def stderr_text(self):
        try:
            return self.stderr_path.read_bytes()
        except OSError:
            return b""

    def stderr_tail(self, n=3000):
        return self.stderr_text()[-n:].decode("utf-8", "replace")

    def sanitizer_report(self):
        data = self.stderr_text()
        for m in _SANITIZER_MARKERS:
            i = data.find(m)
            if i >= 0:
                return data[max(0, i - 200):i + 3000].decode("utf-8", "replace")
        return None

    def cleanup(self):
        if os.environ.get("ROOST_KEEP"):
            return
        shutil.rmtree(self.base, ignore_errors=True)

    # -- CLI
    def roost(self, *args, input=None, timeout=CLI_TIMEOUT):
        args = [str(a) for a in args]
        if isinstance(input, str):
            input = input.encode("utf-8")
        cp = subprocess.run([self.bin, "--data", str(self.data), *args], input=input,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout,
                            cwd=str(self.base))
        res = CLIResult(args, cp)
        for m in _SANITIZER_MARKERS:
            assert m not in cp.stderr, f"sanitizer error in CLI: {res!r}"
        return res

    def ok(self, *args, input=None):
        r = self.roost(*args, input=input)
        assert r.rc == 0, f"CLI failed: {r!r}"
        return r

    def ensure_domain(self, domain):
        if domain in self.domains:
            return
        r = self.roost("domain", "add", domain)
        if r.rc != 0:
            lst = self.ok("domain", "list")
            assert domain in lst.stdout.split(), f"domain add failed: {r!r}"
        self.domains.add(domain)

    def make_account(self, address, password=None, plan=None, daily_limit=None):
        if password is None:
            password = random_password()
        self.ensure_domain(address.split("@", 1)[1])
        args = ["account", "add", address]
        if plan:
            args += ["--plan", plan]
        if daily_limit is not None:
            args += ["--daily-limit", str(daily_limit)]
        args.append("--password-stdin")
        self.ok(*args, input=password + "\n")
        return password

    def new_account(self, prefix="user", domain=DOMAIN, **kw):
        address = f"{unique(prefix)}@{domain}".lower()
        pw = self.make_account(address, **kw)
        return address, pw

    def mailbox_rows(self, address, mailbox=None):
        args = ["mailbox", "list", address] + ([mailbox] if mailbox else [])
        r = self.roost(*args)
        if r.rc == 1 and mailbox is None and "no such mailbox" in r.stderr:
            # The account's INBOX is created on first delivery: no messages yet.
            return []
        assert r.rc == 0, f"CLI failed: {r!r}"
        rows = []
        for line in r.stdout.splitlines():
            t = line.split()
            if len(t) >= 3 and t[0].isdigit():
                rows.append({"uid": int(t[0]), "size": t[1], "qid": t[-1], "line": line})
        return rows

    def wait_for_message(self, address, n=1, timeout=20, mailbox=None):
        """Polls `mailbox list` until it shows at least n messages; returns the rows."""
        deadline = time.monotonic() + timeout
        rows = []
        while time.monotonic() < deadline:
            rows = self.mailbox_rows(address, mailbox)
            if len(rows) >= n:
                return rows
            time.sleep(0.2)
        raise AssertionError(f"{address}: expected {n} message(s) within {timeout}s, "
                             f"mailbox list shows {len(rows)}: {rows}")

    def cat(self, address, uid, mailbox=None):
        args = ["mailbox", "cat", address, str(uid)] + ([mailbox] if mailbox else [])
        return self.ok(*args).out

    def export(self, address, mailbox=None):
        """Every message of the mailbox as stored: {uid: bytes}, one CLI call."""
        d = tempfile.mkdtemp(prefix="roost-export-")
        try:
            args = ["mailbox", "export", address, d] + ([mailbox] if mailbox else [])
            self.ok(*args)
            return {int(p.stem): p.read_bytes() for p in Path(d).glob("*.eml")}
        finally:
            shutil.rmtree(d, ignore_errors=True)

    def fetch_one(self, address, timeout=20):
        """Waits for exactly one message and returns its stored bytes."""
        rows = self.wait_for_message(address, 1, timeout)
        assert len(rows) == 1, f"{address}: expected exactly one message, got {rows}"
        return self.cat(address, rows[0]["uid"])

    def queue_list(self):
        return self.ok("queue", "list").stdout

    # -- connections
    def connect(self, which="smtp", **kw):
        port = self.ports[which]
        tls = which == "submissions"
        kw.setdefault("host", self.listen_host)
        return SMTP(port, tls=tls, **kw)

    def submit_session(self, address, password, which="submission"):
        """A connection on a submission port, TLS up, EHLO done, authenticated."""
        c = self.connect(which)
        c.ehlo()
        if which == "submission":
            c.starttls()
            c.ehlo()
        check(c.auth_plain(address, password), 235, "2.7.0", "Accepted")
        return c


def _finish(srv, request=None):
    try:
        if srv.running():
            srv.terminate()
    finally:
        rep = srv.sanitizer_report()
        if rep is None:
            srv.cleanup()
    if rep is not None:
        pytest.fail(f"sanitizer report in roost serve stderr ({srv.base}):\n{rep}", pytrace=False)


@pytest.fixture(scope="session")
def roost_binary():
    b = roost_bin()
    if not os.access(b, os.X_OK):
        pytest.skip(f"roost binary not built: {b} (make MODE=asan build/asan/roost)")
    return b


@pytest.fixture(scope="module")
def server(roost_binary):
    """A module-wide server with the default limits; domain example.test."""
    srv = RoostServer()
    srv.start()
    srv.ensure_domain(DOMAIN)
    yield srv
    _finish(srv)


@pytest.fixture
def make_server(roost_binary):
    """Factory for servers with their own config: make_server(limits={...})."""
    made = []

    def factory(limits=None, start=True, **kw):
        srv = RoostServer(limits=limits, **kw)
        made.append(srv)
        if start:
            srv.start()
            srv.ensure_domain(DOMAIN)
        return srv

    yield factory
    errors = []
    for srv in made:
        try:
            _finish(srv)
        except BaseException as e:  # report all
            errors.append(e)
    if errors:
        raise errors[0]


@pytest.fixture
def roost(server):
    return server.roost


@pytest.fixture
def make_account(server):
    return server.make_account


@pytest.fixture
def wait_for_message(server):
    return server.wait_for_message


# --------------------------------------------------------------------------
# POP3 (test_pop3*.py): raw client and bulk delivery.  Additions only.

POP3_LISTENERS = ("smtp", "submission", "submissions", "pop3", "pop3s")
ALL_LISTENERS = ("smtp", "submission", "submissions", "imap", "imaps", "pop3", "pop3s")


@pytest.fixture(scope="module")
def pop3_server(roost_binary):
    """A module-wide server with POP3 (STLS) and POP3S listeners; domain example.test."""
    srv = RoostServer(listeners=POP3_LISTENERS)
    srv.start()
    srv.ensure_domain(DOMAIN)
    yield srv
    _finish(srv)


@pytest.fixture(scope="module")
def all_server(roost_binary):
    """A module-wide server with every listener (SMTP, IMAP, POP3); domain example.test."""
    srv = RoostServer(listeners=ALL_LISTENERS)
    srv.start()
    srv.ensure_domain(DOMAIN)
    yield srv
    _finish(srv)


class POP3(SMTP):
    """A raw POP3 connection (RFC 1939): send() bytes exactly, reply() reads
    one status line ("+OK ..." / "-ERR ..." / "+ <challenge>") as str,
    multi() reads a multi-line body up to the terminating "." line."""

    def __init__(self, port, tls=False, **kw):
        super().__init__(port, tls=tls, **kw)

    def reply(self, timeout=None):
        line = self.read_line(timeout)
        s = line.decode("utf-8", "replace")
        assert s.startswith(("+OK", "-ERR", "+ ")) or s == "+", \
            f"malformed POP3 status line {line!r}; transcript: {self.history()}"
        self.transcript.append(("S", s))
        return s

    def multi(self, timeout=None):
        """The raw multi-line body after a +OK (dot-stuffed, CRLF lines,
        without the final ".\\r\\n"): bytes.  Reads efficiently (large RETR)."""
        deadline = time.monotonic() + (timeout if timeout is not None else self.timeout)
        if self.buf.startswith(b".\r\n"):
            self.buf = self.buf[3:]
            return b""
        start = 0
        while True:
            i = self.buf.find(b"\r\n.\r\n", start)
            if i >= 0:
                body = self.buf[:i + 2]
                self.buf = self.buf[i + 5:]
                return body
            start = max(0, len(self.buf) - 4)
            try:
                self._fill(deadline)
            except socket.timeout:
                raise AssertionError(
                    f"multi-line response not terminated within the timeout; "
                    f"{len(self.buf)} bytes buffered, ending {self.buf[-200:]!r}; "
                    f"transcript: {self.history()}") from None

    def cmd_multi(self, line, timeout=None):
        """(status line, raw body or None if the status is not +OK)."""
        st = self.cmd(line, timeout)
        if not st.startswith("+OK"):
            return st, None
        return st, self.multi(timeout)

    def retr(self, n, timeout=None):
        """(status, message bytes dot-unstuffed) of RETR n."""
        st, body = self.cmd_multi(f"RETR {n}", timeout)
        return st, (pop3_unstuff(body) if body is not None else None)

    def stls(self, cafile=None):
        r = self.cmd("STLS")
        assert r == "+OK Begin TLS negotiation", f"STLS refused: {r!r}"
        assert self.buf == b"", f"server sent data after +OK to STLS: {self.buf!r}"
        self.sock.settimeout(self.timeout)
        self.sock = client_context(cafile).wrap_socket(self.sock, server_hostname=HOSTNAME)
        self.tls = True
        return r

    def user_pass(self, user, password):
        r = self.cmd(f"USER {user}")
        if not r.startswith("+OK"):
            return r
        return self.cmd(f"PASS {password}")

    def auth_plain(self, user, password, initial=True):
        import base64
        tok = base64.b64encode(b"\0" + user.encode() + b"\0" + password.encode()).decode()
        if initial:
            return self.cmd(f"AUTH PLAIN {tok}")
        r = self.cmd("AUTH PLAIN")
        if not r.startswith("+"):
            return r
        assert not r.startswith("+OK"), f"AUTH PLAIN without a challenge answered {r!r}"
        return self.cmd(tok)

    def auth_login(self, user, password, initial=False):
        import base64
        u = base64.b64encode(user.encode()).decode()
        p = base64.b64encode(password.encode()).decode()
        r = self.cmd(f"AUTH LOGIN {u}") if initial else self.cmd("AUTH LOGIN")
        if not r.startswith("+ ") and r != "+":
            return r
        if not initial:
            r = self.cmd(u)
            if not r.startswith("+ ") and r != "+":
                return r
        return self.cmd(p)


def pop3_unstuff(body: bytes) -> bytes:
    """Removes POP3 byte-stuffing from a raw multi-line body (CRLF lines)."""
    if not body:
        return b""
    lines = body[:-2].split(CRLF) if body.endswith(CRLF) else body.split(CRLF)
    out = [l[1:] if l.startswith(b".") else l for l in lines]
    return CRLF.join(out) + CRLF


def pop3_connect(srv, which="pop3", stls=True, **kw):
    """A POP3 connection to srv: on "pop3" with STLS done (unless stls=False),
    on "pop3s" TLS from the first byte."""
    c = POP3(srv.ports[which], tls=(which == "pop3s"), **kw)
    if which == "pop3" and stls:
        c.stls()
    return c


def pop3_session(srv, address, password, which="pop3s", **kw):
    """A POP3 connection in the TRANSACTION state (USER/PASS)."""
    c = pop3_connect(srv, which, **kw)
    r = c.user_pass(address, password)
    assert r.startswith("+OK"), f"POP3 login of {address} failed: {r!r}; {c.history()}"
    return c


def deliver_many(srv, rcpt, messages, sender="someone@remote.test", threads=4):
    """Delivers every message (bytes) to rcpt through srv's smtp listener,
    several SMTP sessions in parallel, many transactions per session.
    Returns only once every message had its 250."""
    chunks = [messages[i::threads] for i in range(threads)]
    errors = []

    def work(chunk):
        try:
            with SMTP(srv.smtp) as c:
                c.ehlo()
                for m in chunk:
                    r = c.mail_transaction(sender, [rcpt], m)
                    assert r.code == 250, f"DATA not accepted: {r.text}"
                c.cmd("QUIT")
        except BaseException as e:  # reported below
            errors.append(e)

    ts = [threading.Thread(target=work, args=(ch,)) for ch in chunks if ch]
    for t in ts:
        t.start()
    for t in ts:
        t.join(600)
    assert not any(t.is_alive() for t in ts), "delivery threads did not finish"
    if errors:
        raise errors[0]


def message_id_of(msg: bytes):
    """The Message-ID field value of a message (bytes), or None."""
    m = re.search(rb"(?im)^Message-ID:[ \t]*(<[^>\r\n]*>)", re.split(rb"\r?\n\r?\n", msg, 1)[0])
    return m.group(1).decode("utf-8", "replace") if m else None


# --------------------------------------------------------------------------
# IMAP (test_imap_*.py): a server with IMAP listeners, imaplib logins over
# 993 and 143+STARTTLS, and fast bulk delivery.  Additions only.

IMAP_LISTENERS = ("smtp", "submission", "submissions", "imap", "imaps")


def deliver_bulk(srv, rcpt, messages, sender="someone@remote.test", connections=4, window=25):
    """Delivers every message (bytes, CRLF, ending in CRLF) to rcpt through
    srv's smtp listener as fast as SMTP allows: `connections` sessions in
    parallel, each pipelining up to `window` transactions of MAIL, RCPT and
    BDAT n LAST (RFC 2920 + RFC 3030: no round trip per message).  Returns
    the queue ids in the order of `messages` once every message had its 250
    (1,000 small messages go in within seconds)."""
    messages = list(messages)
    ids = [None] * len(messages)
    errors = []
    order = list(range(len(messages)))
    chunks = [order[i::connections] for i in range(connections)]

    def work(chunk):
        try:
            with SMTP(srv.smtp, timeout=120) as c:
                r = c.ehlo()
                kw = r.keywords()
                assert "PIPELINING" in kw and "CHUNKING" in kw, f"EHLO: {r.text}"
                for start in range(0, len(chunk), window):
                    part = chunk[start:start + window]
                    out = bytearray()
                    for i in part:
                        m = messages[i]
                        out += (f"MAIL FROM:<{sender}>\r\nRCPT TO:<{rcpt}>\r\n"
                                f"BDAT {len(m)} LAST\r\n").encode() + m
                    c.send(bytes(out))
                    for i in part:
                        for what in ("MAIL", "RCPT"):
                            r = c.reply()
                            assert r.code == 250, f"bulk delivery: {what} refused: {r.text}"
                        r = c.reply()
                        ids[i] = queue_id(r)
                c.cmd("QUIT")
        except BaseException as e:  # reported below
            errors.append(e)

    ts = [threading.Thread(target=work, args=(ch,)) for ch in chunks if ch]
    for t in ts:
        t.start()
    for t in ts:
        t.join(600)
    assert not any(t.is_alive() for t in ts), "delivery threads did not finish"
    if errors:
        raise errors[0]
    return ids


def numbered_messages(rcpt, n, prefix="msg", sender="someone@remote.test", body_size=200):
    """n distinct small messages (bytes) with Subject "<prefix> <i>" and a
    Message-ID that names i: <prefix>.<i>.<unique>@client.example.net."""
    tag = unique("b")
    out = []
    for i in range(n):
        body = f"Message {i} of {n}.\r\n" + ("." if i % 5 == 0 else "") + \
            ("z" * max(0, body_size - 40)) + "\r\nGrüße ✓\r\n"
        out.append(make_message(sender, rcpt, subject=f"{prefix} {i}", body=body,
                                msgid=f"<{prefix}.{i}.{tag}@client.example.net>"))
    return out


def imap_context(srv):
    """TLS client context that trusts exactly the server's certificate."""
    return client_context(srv.cert)


def imap_connect(srv, which="imaps", timeout=60):
    """imaplib connection: "imaps" is TLS from the first byte (993 shape);
    "imap" is plaintext with STARTTLS done (143 shape); "imap-plain" stays
    in plaintext.  The server's own certificate is the only CA."""
    import imaplib
    if which == "imaps":
        return imaplib.IMAP4_SSL("127.0.0.1", srv.ports["imaps"], ssl_context=imap_context(srv),
                                 timeout=timeout)
    m = imaplib.IMAP4("127.0.0.1", srv.ports["imap"], timeout=timeout)
    if which == "imap":
        m.starttls(ssl_context=imap_context(srv))
    return m


def imap_refresh_caps(m):
    """imaplib reads CAPABILITY once at connect; re-read it (after login the
    list grows) so that its own checks (ENABLE...) see the server's list."""
    typ, data = m.capability()
    assert typ == "OK", data
    m.capabilities = tuple(data[-1].decode().upper().split())
    return m.capabilities


def imap_login(srv, address, password, which="imaps", timeout=60):
    """An imaplib session, logged in with LOGIN (capabilities refreshed)."""
    m = imap_connect(srv, which, timeout)
    typ, data = m.login(address, password)
    assert typ == "OK", data
    imap_refresh_caps(m)
    return m


@pytest.fixture(scope="module")
def imap_server(roost_binary):
    """A module-wide server with the IMAP listeners too; domain example.test."""
    srv = RoostServer(listeners=IMAP_LISTENERS)
    srv.start()
    srv.ensure_domain(DOMAIN)
    yield srv
    _finish(srv)


_literal_at_end = re.compile(rb"~?\{(\d+)\+?\}\r\n$")


class IMAPRaw(SMTP):
    """A raw IMAP connection: send() bytes exactly; reply() reads one whole
    response (a line plus the literals it announces, without the final
    CRLF) as bytes; cmd() sends a tagged command and returns (untagged
    responses, tagged status without the tag) with the status as str."""

    def __init__(self, port, tls=False, cafile=None, **kw):
        self.n = 0
        super().__init__(port, tls=tls, cafile=cafile, **kw)
        assert self.greeting.startswith((b"* OK", b"* PREAUTH")), self.greeting

    def read_exact(self, n, timeout=None):
        deadline = time.monotonic() + (timeout if timeout is not None else self.timeout)
        while len(self.buf) < n:
            self._fill(deadline)
        data, self.buf = self.buf[:n], self.buf[n:]
        return data

    def reply(self, timeout=None):
        out = b""
        while True:
            out += self.read_line(timeout) + CRLF
            m = _literal_at_end.search(out)
            if not m:
                r = out[:-2]
                self.transcript.append(("S", r[:300].decode("utf-8", "replace")))
                return r
            out += self.read_exact(int(m.group(1)), timeout)

    def next_tag(self):
        self.n += 1
        return f"t{self.n}"

    def cmd(self, line, timeout=None, tag=None):
        tag = tag or self.next_tag()
        if isinstance(line, str):
            line = line.encode("utf-8")
        self.send(tag.encode() + b" " + line + CRLF)
        return self.collect(tag, timeout)

    def collect(self, tag, timeout=None):
        """Reads until the tagged status of TAG: (untagged, status str)."""
        untagged = []
        t = tag.encode() + b" "
        while True:
            r = self.reply(timeout)
            if r.startswith(t):
                return untagged, r[len(t):].decode("utf-8", "replace")
            untagged.append(r)

    def ok(self, line, timeout=None):
        u, st = self.cmd(line, timeout)
        assert st.startswith("OK"), f"{line!r} -> {st!r}; untagged {u!r}"
        return u, st

    def starttls(self, cafile=None):
        u, st = self.cmd("STARTTLS")
        assert st.startswith("OK"), f"STARTTLS refused: {st!r}"
        assert self.buf == b"", f"server sent data after OK to STARTTLS: {self.buf!r}"
        self.sock.settimeout(self.timeout)
        self.sock = client_context(cafile).wrap_socket(self.sock, server_hostname=HOSTNAME)
        self.tls = True
        return st

    def login(self, user, password):
        def q(s):
            return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'
        return self.cmd(f"LOGIN {q(user)} {q(password)}")


def imap_raw(srv, which="imaps", address=None, password=None, **kw):
    """A raw IMAP connection to srv ("imaps": TLS from the first byte;
    "imap": plaintext, STARTTLS done; "imap-plain": plaintext), logged in
    when address is given."""
    port = srv.ports["imaps" if which == "imaps" else "imap"]
    c = IMAPRaw(port, tls=(which == "imaps"), **kw)
    if which == "imap":
        c.starttls()
    if address is not None:
        u, st = c.login(address, password)
        assert st.startswith("OK"), f"LOGIN {address}: {st!r}"
    return c


def imap_idle_start(m):
    """Sends IDLE on an imaplib session and reads the continuation; returns
    the tag for imap_idle_done.  imaplib (3.11) has no IDLE: while idling,
    read the server's lines with m.readline()."""
    tag = m._new_tag()
    m.send(tag + b" IDLE\r\n")
    line = m.readline()
    assert line.startswith(b"+"), f"IDLE not accepted: {line!r}"
    return tag


def imap_idle_done(m, tag):
    """Ends IDLE (DONE) and returns the tagged (typ, data)."""
    m.send(b"DONE\r\n")
    return m._command_complete("IDLE", tag)


def imap_idle_until(m, pred, timeout=15.0):
    """Reads lines during IDLE until pred(line) is true; returns (line,
    monotonic time it arrived, every line read)."""
    m.sock.settimeout(timeout)
    lines = []
    deadline = time.monotonic() + timeout
    while True:
        line = m.readline()
        now = time.monotonic()
        assert line, f"connection closed during IDLE; lines {lines!r}"
        lines.append(line)
        if pred(line):
            return line, now, lines
        assert now < deadline, f"nothing matching within {timeout}s of IDLE: {lines!r}"


def smtp_deliver_one(srv, rcpt, msg, sender="someone@remote.test"):
    """One message over SMTP (port 25); returns (queue id, monotonic time at
    which the 250 arrived)."""
    with SMTP(srv.smtp) as c:
        c.ehlo()
        r = c.mail_transaction(sender, [rcpt], msg)
        t = time.monotonic()
        qid = queue_id(r)
        c.cmd("QUIT")
    return qid, t


def proc_status(pid):
    """{field: kB} of /proc/PID/status (VmRSS, VmHWM, VmPeak, VmSize...)."""
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            k, _, v = line.partition(":")
            v = v.split()
            if len(v) == 2 and v[1] == "kB":
                out[k] = int(v[0])
    return out
