"""Shared helpers of the outbound tests (test_outbound.py, test_delivery.py):
a dnsmasq for *.test on loopback, a tiny scripted SMTP server, free ports
on every address, log polling, and authenticated submission with smtplib."""
import base64
import shutil
import smtplib
import socket
import ssl
import subprocess
import tempfile
import threading
import time
from email.message import EmailMessage
from pathlib import Path

from conftest import _finish, wait_until

DNSMASQ = shutil.which("dnsmasq") or "/usr/sbin/dnsmasq"


def wildcard_free_port():
    """A port free on every address (bound on 0.0.0.0)."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("0.0.0.0", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def udp_free_port():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


class DNS:
    """dnsmasq as a foreground child; killed by its PID at the end."""

    def __init__(self, records):
        self.port = udp_free_port()
        self.dir = tempfile.mkdtemp(prefix="roost-dns-")
        args = [DNSMASQ, "-k", "--conf-file=/dev/null", "--no-resolv", "--no-hosts",
                "--listen-address=127.0.0.1", "--bind-interfaces", f"--port={self.port}",
                f"--pid-file={self.dir}/pid", "--local=/test/", "--log-facility=-"]
        self.proc = subprocess.Popen(args + records, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL,
                                     stderr=open(f"{self.dir}/log", "wb"))
        wait_until(self._answers, 10, what="dnsmasq to answer")

    def _answers(self):
        if self.proc.poll() is not None:
            raise AssertionError(f"dnsmasq exited: {Path(self.dir, 'log').read_text()}")
        q = b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x06b-test\x04test\x00\x00\x01\x00\x01"
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.settimeout(0.5)
        try:
            s.sendto(q, ("127.0.0.1", self.port))
            return s.recv(512)
        except OSError:
            return None
        finally:
            s.close()

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        shutil.rmtree(self.dir, ignore_errors=True)


class FakeMX:
    """A tiny SMTP server in a thread. Modes: flaky (451 to the first
    FAIL_FIRST MAIL commands), partial (550 to RCPT <bad...>, SIZE 100000),
    helo (502 to EHLO), badtls (offers STARTTLS, then answers the handshake
    with junk), greeting / overlong / midreply (garbage), chunking (offers
    CHUNKING and PIPELINING; BDAT answered 452 / 552 when a recipient
    contains "bdat452" / "bdat552"), chunknp (CHUNKING without PIPELINING).
    COMMANDS records every command line (not the message bytes)."""
    FAIL_FIRST = 2

    def __init__(self, ip, port, mode, tls_ctx=None):
        """IP may be an IPv6 address (::1)."""
        self.mode = mode
        self.tls_ctx = tls_ctx
        self.auth = []
        self.messages = []
        self.commands = []
        self.mails = 0
        self.conns = 0
        self.rsets = 0
        self.lock = threading.Lock()
        family = socket.AF_INET6 if ":" in ip else socket.AF_INET
        self.sock = socket.socket(family, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((ip, port))
        self.sock.listen(16)
        self.sock.settimeout(0.2)
        self.stopping = False
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self):
        while not self.stopping:
            try:
                c, _ = self.sock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            threading.Thread(target=self._serve, args=(c,), daemon=True).start()

    def stop(self):
        self.stopping = True
        self.sock.close()
        self.thread.join(5)

    def _serve(self, c):
        c.settimeout(20)
        with self.lock:
            self.conns += 1
        try:
            if self.tls_ctx:
                c = self.tls_ctx.wrap_socket(c, server_side=True)
            self._session(c)
        except OSError:
            pass
        finally:
            c.close()

    def _session(self, c):
        f = c.makefile("rb")
        if self.mode == "silent":
            # accept, say nothing: the client's greeting timeout (5 min
            # scaled by timeout_percent = 2: 6 s) must end it
            f.readline(4096)
            return
        if self.mode == "greeting":
            c.sendall(b"hello, I am not an SMTP server\r\n")
            f.readline(4096)
            return
        c.sendall(b"220 fake.test ESMTP\r\n")
        if self.mode == "overlong":
            f.readline(4096)
            c.sendall(b"250-" + b"x" * 10000 + b"\r\n250 OK\r\n")
            f.readline(4096)
            return
        if self.mode == "midreply":
            f.readline(4096)
            c.sendall(b"250-fake.test\r\n250-PIPELI")
            return
        mail, rcpts = None, []
        chunks = b""            # BDAT chunks before the LAST one
        while True:
            line = f.readline(4096)
            if not line:
                return
            cmd = line.decode("utf-8", "replace").strip()
            up = cmd.upper()
            with self.lock:
                self.commands.append(cmd)
            if up.startswith("EHLO") and self.mode == "loginrelay":
                c.sendall(b"250-login.relay.test\r\n250-AUTH LOGIN\r\n250 8BITMIME\r\n")
            elif up == "AUTH LOGIN" and self.mode == "loginrelay":
                c.sendall(b"334 VXNlcm5hbWU6\r\n")
                user = base64.b64decode(f.readline(4096).strip()).decode()
                c.sendall(b"334 UGFzc3dvcmQ6\r\n")
                pw = base64.b64decode(f.readline(4096).strip()).decode()
                with self.lock:
                    self.auth.append((user, pw))
                c.sendall(b"235 2.7.0 Accepted\r\n")
            elif up.startswith("EHLO") and self.mode == "helo":
                c.sendall(b"502 5.5.1 EHLO not implemented\r\n")
            elif up.startswith("EHLO") and self.mode in ("chunking", "chunknp"):
                pipe = b"250-PIPELINING\r\n" if self.mode == "chunking" else b""
                c.sendall(b"250-fake.test\r\n" + pipe + b"250-CHUNKING\r\n250 SIZE 100000\r\n")
            elif up.startswith("BDAT") and self.mode in ("chunking", "chunknp"):
                words = up.split()
                size = int(words[1])
                chunk = f.read(size)
                last = len(words) > 2 and words[2] == "LAST"
                if mail is None or not rcpts:
                    c.sendall(b"503 5.5.1 RCPT first\r\n")
                    continue
                data = chunks + chunk
                chunks = b"" if last else data
                if not last:
                    c.sendall(b"250 2.0.0 chunk OK\r\n")
                elif any("bdat452" in r for r in rcpts):
                    mail, rcpts = None, []
                    c.sendall(b"452 4.3.1 Insufficient system storage\r\n")
                elif any("bdat552" in r for r in rcpts):
                    mail, rcpts = None, []
                    c.sendall(b"552 5.3.4 Message too big for system\r\n")
                else:
                    with self.lock:
                        self.messages.append((mail, list(rcpts), data))
                    mail, rcpts = None, []
                    c.sendall(b"250 2.0.0 OK queued\r\n")
            elif up.startswith("EHLO"):
                tls = b"250-STARTTLS\r\n" if self.mode == "badtls" else b""
                c.sendall(b"250-fake.test\r\n" + tls +
                          b"250-PIPELINING\r\n250-8BITMIME\r\n250 SIZE 100000\r\n")
            elif up == "STARTTLS":
                c.sendall(b"220 2.0.0 Ready to start TLS\r\n")
                time.sleep(0.3)
                c.sendall(b"this is not a TLS server hello\r\n" * 4)
                return
            elif up.startswith("HELO"):
                c.sendall(b"250 fake.test\r\n")
            elif up.startswith("MAIL"):
                with self.lock:
                    self.mails += 1
                    n = self.mails
                if self.mode == "flaky" and n <= self.FAIL_FIRST:
                    mail = None
                    c.sendall(b"451 4.3.0 Mailbox temporarily unavailable, try again later\r\n")
                else:
                    mail, rcpts = cmd, []
                    c.sendall(b"250 2.1.0 OK\r\n")
            elif up.startswith("RCPT"):
                if mail is None:
                    c.sendall(b"503 5.5.1 MAIL first\r\n")
                elif "<bad" in cmd.lower():
                    c.sendall(b"550 5.1.1 The email account that you tried to reach does not exist\r\n")
                else:
                    rcpts.append(cmd[cmd.index("<") + 1:cmd.rindex(">")])
                    c.sendall(b"250 2.1.5 OK\r\n")
            elif up == "DATA":
                if not rcpts:
                    c.sendall(b"554 5.5.1 No valid recipients\r\n")
                    continue
                c.sendall(b"354 Go ahead\r\n")
                data = b""
                while True:
                    dl = f.readline(100000)
                    if not dl or dl == b".\r\n":
                        break
                    data += dl
                with self.lock:
                    self.messages.append((mail, list(rcpts), data))
                mail, rcpts = None, []
                c.sendall(b"250 2.0.0 OK queued\r\n")
            elif up == "RSET" and self.mode == "rsetclose":
                with self.lock:
                    self.rsets += 1
                return          # as if the server had dropped the idle connection
            elif up == "RSET":
                with self.lock:
                    self.rsets += 1
                mail, rcpts = None, []
                c.sendall(b"250 2.0.0 OK\r\n")
            elif up == "QUIT":
                c.sendall(b"221 2.0.0 Bye\r\n")
                return
            else:
                c.sendall(b"502 5.5.1 Unrecognized command\r\n")


def stop_world(servers, fakes=(), dns=None):
    """Stops every server (checking each for sanitizer reports), the fake
    MXs and the DNS server; then raises the first server's error, if any."""
    errors = []
    for s in servers:
        try:
            _finish(s)
        except BaseException as e:    # stop every server, then report
            errors.append(e)
    for f in fakes:
        f.stop()
    if dns:
        dns.stop()
    if errors:
        raise errors[0]


def log_lines(srv, *needles):
    text = srv.stderr_text().decode("utf-8", "replace")
    return [l for l in text.splitlines() if all(n in l for n in needles)]


def wait_log(srv, *needles, timeout=20):
    return wait_until(lambda: log_lines(srv, *needles), timeout,
                      what=f"log line with {needles}; tail: {srv.stderr_tail(2000)}")


def submit(srv, user, pw, rcpts, subject="outbound test", body="Hello from A.\n", size_pad=0,
           implicit_tls=False, msg=None):
    """Submits one message with AUTH: STARTTLS on the submission port, or
    implicit TLS on submissions (465) with IMPLICIT_TLS."""
    if msg is None:
        msg = EmailMessage()
        msg["From"] = user
        msg["To"] = ", ".join(rcpts)
        msg["Subject"] = subject
        msg.set_content(body + ("x" * 70 + "\n") * size_pad)
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    if implicit_tls:
        s = smtplib.SMTP_SSL(srv.listen_host, srv.submissions, timeout=30, context=ctx)
    else:
        s = smtplib.SMTP(srv.listen_host, srv.submission, timeout=30)
    with s:
        if not implicit_tls:
            s.starttls(context=ctx)
        s.login(user, pw)
        s.send_message(msg, from_addr=user, to_addrs=rcpts)
    return msg
