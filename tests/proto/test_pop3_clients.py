"""Real POP3 clients nobody here wrote: fetchmail (with and without keep,
995 and 110+STLS), getmail6 (SimplePOP3SSLRetriever into a Maildir),
Python's poplib (110+STLS and 995), curl (pop3:// --ssl-reqd and pop3s://).

Each downloads the same 500-message mailbox (dot lines, 8-bit UTF-8, long
lines, folded headers, "From " lines, empty bodies, MIME, one of 1 MiB) and
every downloaded message must equal what `roost mailbox cat` shows, byte for
byte (compared per message through the Message-ID each message carries).
The clients that keep the mail share the mailbox; fetchmail without keep
runs last and empties it."""
import base64
import os
import poplib
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from conftest import (CRLF, DOMAIN, POP3_LISTENERS, RoostServer, _finish, assert_stored_exactly,
                      client_context, deliver_many, make_message, message_id_of, unique)

N_MESSAGES = 500
BIG_AT = 250
CLIENT_TIMEOUT = 180


def varied_messages(rcpt, n, big_at=None, sender="someone@remote.test"):
    """n messages (bytes, CRLF), each with its own Message-ID, NUL-free."""
    out = []
    for i in range(n):
        msgid = f"<pop{i:04d}.{unique('v')}@client.example.net>"
        k = i % 8
        subject = f"POP3 download {i}"
        extra = ()
        if i == big_at:
            line = "0123456789abcdefghijklmnopqrstuvwxyz ÄÖÜ äöü ............ xyzzy 1MiB\r\n"
            nlines = (1 << 20) // len(line.encode()) + 1
            body = "".join(("." if j % 7 == 0 else f"{j:06d} ") + line for j in range(nlines))
        elif k == 0:
            body = None  # make_message's default: dot lines and 8-bit UTF-8
        elif k == 1:
            body = ".\r\n..\r\n...\r\n. \r\nthe next line is a lone dot\r\n.\r\n"
        elif k == 2:
            body = ("x" * 996 + "\r\n") + ("." + "y" * 990 + "\r\n") + ("ü" * 400 + "\r\n")
        elif k == 3:
            subject = (f"Grüße {i} — a long subject that is folded\r\n over more than one"
                       " line\r\n\tand a tab")
            body = "Folded headers above.\r\n"
            extra = ("X-Long: " + " ".join(["word"] * 30),)
        elif k == 4:
            body = "From the start of a line\r\nFrom me to you\r\n>From quoted\r\nText\r\n"
        elif k == 5:
            body = ""
        elif k == 6:
            body = "trailing spaces   \r\n\t tab and space\r\n \r\n\r\n\r\nblank lines above\r\n"
        else:
            att = base64.encodebytes(bytes(range(1, 256)) * 20).decode().replace("\n", "\r\n")
            body = ("--b0und4ry\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
                    "Anhang: naïve café\r\n.hidden dot\r\n--b0und4ry\r\n"
                    "Content-Type: application/octet-stream\r\n"
                    "Content-Transfer-Encoding: base64\r\n\r\n" + att + "--b0und4ry--\r\n")
        m = make_message(sender, rcpt, subject=subject, body=body, msgid=msgid,
                         extra_headers=extra)
        if k == 7 and i != big_at:
            m = m.replace(b"Content-Type: text/plain; charset=utf-8",
                          b'Content-Type: multipart/mixed; boundary="b0und4ry"', 1)
        assert b"\0" not in m
        out.append(m)
    return out


class Bulk:
    """The shared server and its 500-message account."""

    def __init__(self, srv, address, password, sent, stored):
        self.srv = srv
        self.address = address
        self.password = password
        self.sent = sent          # msgid -> bytes sent by SMTP
        self.stored = stored      # msgid -> bytes as `mailbox cat` shows them
        self.uidls = None         # msgid -> UIDL, from the first client that asks

    @property
    def pop3(self):
        return self.srv.ports["pop3"]

    @property
    def pop3s(self):
        return self.srv.ports["pop3s"]

    def check(self, got, client):
        """got: list of downloaded messages (bytes, as the store holds them)."""
        problems = []
        seen = {}
        for data in got:
            mid = message_id_of(data)
            if mid is None:
                problems.append(f"a message without Message-ID: {data[:200]!r}")
                continue
            if mid in seen:
                problems.append(f"{mid} downloaded twice")
            seen[mid] = data
        missing = set(self.stored) - set(seen)
        extra = set(seen) - set(self.stored)
        if missing:
            problems.append(f"{len(missing)} message(s) not downloaded, e.g. {sorted(missing)[:3]}")
        if extra:
            problems.append(f"{len(extra)} unknown message(s), e.g. {sorted(extra)[:3]}")
        for mid, data in sorted(seen.items()):
            want = self.stored.get(mid)
            if want is not None and data != want:
                i = next((k for k in range(min(len(data), len(want))) if data[k] != want[k]),
                         min(len(data), len(want)))
                problems.append(
                    f"{mid}: differs from the store at byte {i} (got {len(data)} bytes, store "
                    f"{len(want)}): got {data[max(0, i - 40):i + 40]!r} store "
                    f"{want[max(0, i - 40):i + 40]!r}")
        assert not problems, f"{client}: {len(problems)} problem(s):\n" + "\n".join(problems[:10])

    def inbox_count(self):
        return len(self.srv.mailbox_rows(self.address))


@pytest.fixture(scope="module")
def bulk(roost_binary):
    srv = RoostServer(listeners=POP3_LISTENERS)
    try:
        srv.start()
        srv.ensure_domain(DOMAIN)
        address, pw = srv.new_account("bulk")
        msgs = varied_messages(address, N_MESSAGES, big_at=BIG_AT)
        deliver_many(srv, address, msgs, threads=4)
        rows = srv.wait_for_message(address, N_MESSAGES, timeout=120)
        assert len(rows) == N_MESSAGES, f"{len(rows)} messages in the INBOX"
        sent = {message_id_of(m): m for m in msgs}
        stored = {message_id_of(data): data for data in srv.export(address).values()}
        assert set(stored) == set(sent), "the store does not hold the messages sent"
        for mid, data in stored.items():
            assert_stored_exactly(data, sent[mid])
    except BaseException:
        _finish(srv)
        raise
    yield Bulk(srv, address, pw, sent, stored)
    _finish(srv)


def run(cmd, env=None, timeout=CLIENT_TIMEOUT):
    return subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          timeout=timeout, env=env)


def describe(cp):
    return (f"{cp.args!r} exited {cp.returncode}\nstdout:\n"
            f"{cp.stdout.decode('utf-8', 'replace')[-3000:]}\nstderr:\n"
            f"{cp.stderr.decode('utf-8', 'replace')[-3000:]}")


def need(tool):
    if shutil.which(tool) is None:
        pytest.skip(f"{tool} not installed")


def read_dir(d):
    return [p.read_bytes() for p in sorted(Path(d).iterdir()) if p.is_file()]


# ---------------------------------------------------------------- Python poplib

def poplib_download(p, bulk):
    p.user(bulk.address)
    p.pass_(bulk.password)
    count, size = p.stat()
    assert count == N_MESSAGES, f"STAT says {count} messages"
    assert size == sum(len(v) for v in bulk.stored.values()), \
        f"STAT size {size} != stored total {sum(len(v) for v in bulk.stored.values())}"
    resp, lines, _ = p.uidl()
    uidl = dict(l.decode().split() for l in lines)
    resp, lines, _ = p.list()
    sizes = dict(l.decode().split() for l in lines)
    got, by_uidl = [], {}
    for n in range(1, count + 1):
        resp, lines, octets = p.retr(n)
        data = CRLF.join(lines) + CRLF
        assert sizes[str(n)] == str(len(data)), \
            f"LIST {n} says {sizes[str(n)]}, RETR gave {len(data)} bytes"
        got.append(data)
        by_uidl[message_id_of(data)] = uidl[str(n)]
    p.quit()
    return got, by_uidl


def check_uidls(bulk, by_uidl, client):
    assert len(set(by_uidl.values())) == len(by_uidl), f"{client}: duplicate UIDL values"
    if bulk.uidls is None:
        bulk.uidls = by_uidl
    else:
        assert by_uidl == bulk.uidls, f"{client}: UIDL values differ from an earlier session"


def test_poplib_stls(bulk):
    p = poplib.POP3("127.0.0.1", bulk.pop3, timeout=60)
    try:
        assert p.getwelcome() == b"+OK Roost POP3 server ready"
        caps = p.capa()
        assert "STLS" in caps and "USER" not in caps, caps
        p.stls(context=client_context())
        caps = p.capa()
        assert "USER" in caps and "STLS" not in caps, caps
        got, by_uidl = poplib_download(p, bulk)
    finally:
        p.close()
    bulk.check(got, "poplib STLS")
    check_uidls(bulk, by_uidl, "poplib STLS")
    assert bulk.inbox_count() == N_MESSAGES


def test_poplib_pop3_ssl(bulk):
    p = poplib.POP3_SSL("127.0.0.1", bulk.pop3s, context=client_context(bulk.srv.cert),
                        timeout=60)
    try:
        assert p.getwelcome() == b"+OK Roost POP3 server ready"
        assert {"TOP", "UIDL", "USER", "SASL"} <= set(p.capa()), p.capa()
        got, by_uidl = poplib_download(p, bulk)
    finally:
        p.close()
    bulk.check(got, "poplib POP3_SSL")
    check_uidls(bulk, by_uidl, "poplib POP3_SSL")
    assert bulk.inbox_count() == N_MESSAGES


# ---------------------------------------------------------------- curl

@pytest.mark.parametrize("scheme", ["pop3", "pop3s"])
def test_curl(bulk, tmp_path, scheme):
    need("curl")
    port = bulk.pop3 if scheme == "pop3" else bulk.pop3s
    base = ["curl", "-sS", "-k", "--max-time", "150", "-u", f"{bulk.address}:{bulk.password}"]
    if scheme == "pop3":
        base.append("--ssl-reqd")
    url = f"{scheme}://127.0.0.1:{port}/"
    cp = run(base + [url])  # LIST
    assert cp.returncode == 0, describe(cp)
    listing = [l.split() for l in cp.stdout.decode().splitlines() if l.strip()]
    assert len(listing) == N_MESSAGES, f"LIST gave {len(listing)} lines: {cp.stdout[:300]!r}"
    assert sum(int(s) for _, s in listing) == sum(len(v) for v in bulk.stored.values())
    out = tmp_path / "msgs"
    out.mkdir()
    cp = run(base + [f"{url}[1-{N_MESSAGES}]", "-o", f"{out}/#1"])
    assert cp.returncode == 0, describe(cp)
    bulk.check(read_dir(out), f"curl {scheme}://")
    assert bulk.inbox_count() == N_MESSAGES


def test_curl_pop3_without_tls_cannot_log_in(bulk, tmp_path):
    """curl pop3:// without --ssl-reqd tries to log in in plaintext: refused."""
    need("curl")
    cp = run(["curl", "-sS", "--max-time", "60", "-u", f"{bulk.address}:{bulk.password}",
              f"pop3://127.0.0.1:{bulk.pop3}/1"])
    assert cp.returncode != 0, describe(cp)
    assert b"Received:" not in cp.stdout


# ---------------------------------------------------------------- getmail6

def getmail_dirs():
    """A Maildir the delivering user can write: getmail refuses to deliver
    as root, so as root it runs the delivery as nobody."""
    base = Path(tempfile.mkdtemp(prefix="roost-getmail-"))
    os.chmod(base, 0o755)
    md = base / "Maildir"
    for sub in ("", "cur", "new", "tmp"):
        (md / sub).mkdir(exist_ok=True)
        os.chmod(md / sub, 0o777)
    gmdir = base / "getmail"
    gmdir.mkdir()
    return base, md, gmdir


def getmail_rc(path, retriever, port, bulk, md, extra=""):
    user_line = "user = nobody\n" if os.geteuid() == 0 else ""
    path.write_text(
        "[retriever]\n"
        f"type = {retriever}\n"
        "server = 127.0.0.1\n"
        f"port = {port}\n"
        f"username = {bulk.address}\n"
        f"password = {bulk.password}\n"
        "timeout = 30\n"
        f"{extra}"
        "\n[destination]\n"
        "type = Maildir\n"
        f"path = {md}/\n"
        f"{user_line}"
        "\n[options]\n"
        "read_all = true\n"
        "delete = false\n"
        "delivered_to = false\n"
        "received = false\n"
        "message_log_syslog = false\n"
        "verbose = 1\n")
    os.chmod(path, 0o600)


GETMAIL_FORK_RACE = b"waiting child pid"


def run_getmail(gmdir, rc, md):
    """Runs getmail once.  getmail6 forks a child for every delivery and
    installs its SIGCHLD handler only after fork(): when the child finishes
    first, getmail waits for its timeout and fails with "waiting child pid N
    timed out" (a client race, nothing the server does).  getmail is pinned
    to one CPU, which makes the parent run first after fork(), and a run
    that failed with exactly that error is repeated once with an empty
    Maildir."""
    cmd = ["getmail", "--getmaildir", str(gmdir), "--rcfile", str(rc)]
    if shutil.which("taskset"):
        cmd = ["taskset", "-c", "0"] + cmd
    for attempt in range(2):
        cp = run(cmd)
        if cp.returncode == 0 or GETMAIL_FORK_RACE not in cp.stdout + cp.stderr:
            return cp
        for f in (md / "new").iterdir():
            f.unlink()
    return cp


def test_getmail_pop3_ssl(bulk):
    need("getmail")
    from getmailcore.message import Message
    base, md, gmdir = getmail_dirs()
    try:
        rc = gmdir / "rc"
        getmail_rc(rc, "SimplePOP3SSLRetriever", bulk.pop3s, bulk, md)
        cp = run_getmail(gmdir, rc, md)
        assert cp.returncode == 0, describe(cp)
        files = read_dir(md / "new")
        assert len(files) == N_MESSAGES, f"{len(files)} messages in the Maildir; {describe(cp)}"
        # getmail re-writes each message with LF line ends, a Return-Path:
        # field, and its own header folding.  Apply getmail's own rewrite
        # (the code getmail runs on what RETR returned) to the store's bytes:
        # the result must be what getmail wrote.
        expected = {}
        for mid, data in bulk.stored.items():
            m = Message(fromlines=data[:-2].split(CRLF) + [b""])
            expected[mid] = m.flatten(False, False)
        got = {}
        for f in files:
            got[message_id_of(f)] = f
        assert set(got) == set(expected), "getmail did not download every message"
        bad = [mid for mid in expected if got[mid] != expected[mid]]
        assert not bad, (f"getmail: {len(bad)} message(s) differ from the store, e.g. {bad[0]}: "
                         f"{got[bad[0]][:300]!r} vs {expected[bad[0]][:300]!r}")
    finally:
        shutil.rmtree(base, ignore_errors=True)
    assert bulk.inbox_count() == N_MESSAGES


def test_getmail_plain_pop3_is_refused(bulk):
    """getmail6's SimplePOP3Retriever has no STLS: its USER/PASS in plaintext
    on the pop3 port must be refused, and nothing downloaded."""
    need("getmail")
    base, md, gmdir = getmail_dirs()
    try:
        rc = gmdir / "rc"
        getmail_rc(rc, "SimplePOP3Retriever", bulk.pop3, bulk, md)
        cp = run_getmail(gmdir, rc, md)
        out = cp.stdout + cp.stderr
        assert b"Must issue a STLS command first" in out, describe(cp)
        assert read_dir(md / "new") == []
    finally:
        shutil.rmtree(base, ignore_errors=True)


# ---------------------------------------------------------------- fetchmail

def fetchmail(bulk, tmp_path, tls, keep):
    """Runs fetchmail once; returns (CompletedProcess, downloaded messages).
    invisible / no rewrite / no stripcr: fetchmail hands each message to the
    MDA exactly as RETR returned it (dot-unstuffed)."""
    need("fetchmail")
    out = tmp_path / "out"
    out.mkdir()
    if tls == "ssl":
        port, tlsopt = bulk.pop3s, "ssl"
    else:
        port, tlsopt = bulk.pop3, "sslproto tls1.2+"
    rc = tmp_path / "fetchmailrc"
    rc.write_text(
        "set no syslog\n"
        "set invisible\n"
        "set no bouncemail\n"
        f"poll 127.0.0.1 with proto POP3 service {port} auth password timeout 120\n"
        f'  user "{bulk.address}" there with password "{bulk.password}" is "root" here\n'
        f"  options {tlsopt} no sslcertck {'keep' if keep else 'no keep'} fetchall "
        "no rewrite no stripcr\n"
        f"  mda \"/bin/sh -c 'cat > {out}/msg.$$'\"\n")
    os.chmod(rc, 0o600)
    env = dict(os.environ, HOME=str(tmp_path))
    cp = run(["fetchmail", "-f", str(rc), "--idfile", str(tmp_path / "ids"), "--nodetach",
              "-v"], env=env)
    return cp, read_dir(out)


@pytest.mark.parametrize("tls", ["ssl", "stls"])
def test_fetchmail_keep(bulk, tmp_path, tls):
    cp, got = fetchmail(bulk, tmp_path, tls, keep=True)
    assert cp.returncode == 0, describe(cp)
    if tls == "stls":
        assert b"STLS" in cp.stdout + cp.stderr, describe(cp)
    bulk.check(got, f"fetchmail keep ({tls})")
    assert bulk.inbox_count() == N_MESSAGES, "fetchmail with keep removed messages"


def test_fetchmail_without_keep_last(bulk, tmp_path):
    """Runs last in this module: downloads everything, DELE, QUIT; the INBOX
    is then empty (the store agrees)."""
    assert bulk.inbox_count() == N_MESSAGES, "the shared mailbox is not complete"
    cp, got = fetchmail(bulk, tmp_path, "ssl", keep=False)
    assert cp.returncode == 0, describe(cp)
    bulk.check(got, "fetchmail without keep")
    assert bulk.inbox_count() == 0, "fetchmail deleted every message, but the INBOX is not empty"
    # and a second run finds nothing (fetchmail exits 1: no mail)
    tmp2 = tmp_path / "again"
    tmp2.mkdir()
    cp, got = fetchmail(bulk, tmp2, "stls", keep=False)
    assert got == [] and cp.returncode == 1, describe(cp)
