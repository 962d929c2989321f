"""Forwarding with SRS (docs/accounts.md, "Forwarding") against a real
`roost serve`: `account set --forward-to B --forward-keep K` for each keep
option (B gets the message byte for byte behind one Delivered-To: field;
A's copy is in INBOX unseen / INBOX \\Seen (imaplib FETCH FLAGS) / Archive
/ nowhere), a remote target queued with an SRS0 sender in A's domain
(`roost queue list`), a bounce to that SRS0 address on port 25 delivered to
the original sender, tampered / expired SRS addresses refused at RCPT with
550 5.1.1 (an independent Python SRS implementation with the server's
DATA/srs.key makes the expired one and checks the hash format), the same
addresses as Perl's Mail::SRS both ways, SRS1 after
two forwarders, the A->B->A loop, Delivered-To: loops, --forward-to off,
bad CLI input (exit 2), and kill -9 while forwarding (nothing lost or doubled)."""
import base64
import hashlib
import hmac
import re
import shutil
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from conftest import (CRLF, IMAP_LISTENERS, SMTP, RoostServer, _finish, check, imap_login,
                      make_message, smtp_deliver_one, split_received, split_return_path,
                      unique)

OTHER = "other.test"          # a second served domain (the original senders')
REMOTE = "remote.example"     # not served: forwarding there waits in the queue
SRS_RE = re.compile(r"SRS0=([A-Za-z0-9+/]{6})=([A-Z2-7]{2})=([^=@]+)=([^@]+)@([^>\s]+)")
SRS1_RE = re.compile(r"SRS1=[A-Za-z0-9+/]{6}=[^=@]+==[^@]+@[^>\s]+")
B32 = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"


@pytest.fixture(scope="module")
def srv(roost_binary):
    s = RoostServer(listeners=IMAP_LISTENERS)
    s.start()
    s.ensure_domain("example.test")
    s.ensure_domain(OTHER)
    yield s
    _finish(s)


def account(srv, domain="example.test", prefix="fw"):
    addr, pw = srv.new_account(prefix, domain=domain)
    return addr, pw


def forward(srv, addr, to, keep=None):
    args = ["account", "set", addr, "--forward-to", to]
    if keep:
        args += ["--forward-keep", keep]
    return srv.ok(*args)


def wait_queue_clear(srv, *addrs, timeout=20):
    """Waits until no queued message is for one of ADDRS (the module's
    server keeps the copies for remote targets queued)."""
    deadline = time.monotonic() + timeout
    out = ""
    while time.monotonic() < deadline:
        out = srv.queue_list()
        if not any(f"<{a}>" in out for a in addrs):
            return
        time.sleep(0.1)
    raise AssertionError(f"messages for {addrs} still queued after {timeout}s:\n{out}")


def rows(srv, addr, mailbox=None):
    r = srv.roost("mailbox", "list", addr, *([mailbox] if mailbox else []))
    if r.rc == 1 and "no such mailbox" in r.stderr:
        return []
    assert r.rc == 0, r
    return [l.split() for l in r.stdout.splitlines() if l.split() and l.split()[0].isdigit()]


def imap_flags(srv, addr, pw, mailbox="INBOX"):
    m = imap_login(srv, addr, pw)
    try:
        typ, data = m.select(mailbox, readonly=True)
        assert typ == "OK", data
        typ, data = m.fetch("1:*", "(FLAGS)")
        assert typ == "OK", data
        out = []
        for d in data:
            if isinstance(d, tuple):
                d = d[0]
            mm = re.search(rb"FLAGS \(([^)]*)\)", d or b"")
            if mm:
                out.append(set(mm.group(1).decode().split()))
        return out
    finally:
        m.logout()


def strip_delivered_to(stored, account_addr):
    """The forwarded copy: one Delivered-To: field naming the account, then
    the account's copy as stored (our Received: + the bytes sent)."""
    return_path, stored = split_return_path(stored)
    domain = account_addr.rsplit("@", 1)[1]
    assert return_path.startswith("SRS0=") and return_path.endswith("@" + domain), return_path
    head = f"Delivered-To: {account_addr}".encode() + CRLF
    assert stored.startswith(head), stored[:200]
    return stored[len(head):]


def log_text(srv):
    text = srv.stderr_text()
    logf = srv.data / "log" / "roost.log"
    if logf.exists():
        text += logf.read_bytes()
    return text.decode("utf-8", "replace")


def srs_ref_hash(key, *parts):
    """Shevek's / libsrs2's hash: base64(HMAC-SHA1(key, lower(concat))) cut."""
    mac = hmac.new(key, "".join(parts).lower().encode(), hashlib.sha1).digest()
    return base64.b64encode(mac).decode()[:6]


def srs_ref_stamp(t):
    days = int(t // 86400) % 1024
    return B32[(days >> 5) & 31] + B32[days & 31]


# --------------------------------------------------------------------------
# keep options

@pytest.mark.parametrize("keep", ["keep", "mark-read", "archive", "delete"])
def test_keep_options(srv, keep):
    a, apw = account(srv)
    b, _ = account(srv, OTHER)
    r = forward(srv, a, b, keep)
    assert f"forwarding:       to {b}" in r.stdout, r.stdout
    msg = make_message("someone@remote.test", a, subject=f"forward {keep}")
    smtp_deliver_one(srv, a, msg, sender="someone@remote.test")

    got = srv.wait_for_message(b, 1)
    assert len(got) == 1
    stored_b = srv.cat(b, got[0]["uid"])
    a_copy = strip_delivered_to(stored_b, a)
    _, rest = split_received(a_copy, return_path=False)
    assert rest == msg, "the forwarded body differs from what was sent"
    wait_queue_clear(srv, a, b)

    inbox, archive = rows(srv, a), rows(srv, a, "Archive")
    # the account's own copy: the original envelope sender on top (B's copy
    # has the SRS one), then identical apart from Delivered-To:
    kept = b"Return-Path: <someone@remote.test>\r\n" + a_copy
    if keep in ("keep", "mark-read"):
        assert len(inbox) == 1 and archive == [], (inbox, archive)
        assert srv.cat(a, inbox[0][0]) == kept
        flags = imap_flags(srv, a, apw)
        assert len(flags) == 1
        if keep == "keep":
            assert "\\Seen" not in flags[0], flags
        else:
            assert "\\Seen" in flags[0], flags
    elif keep == "archive":
        assert inbox == [] and len(archive) == 1, (inbox, archive)
        assert srv.cat(a, archive[0][0], "Archive") == kept
        assert imap_flags(srv, a, apw, "Archive") == [set()] or \
            "\\Seen" not in imap_flags(srv, a, apw, "Archive")[0]
    else:
        assert inbox == [] and archive == [], (inbox, archive)
    assert re.search(rf"event=forwarded queue=\S+ fwd=\S+ account=\"?{re.escape(a)}", log_text(srv))


def test_archive_mailbox_recreated(srv):
    """--forward-keep archive with the Archive mailbox deleted: it is made
    again with the \\Archive special-use."""
    a, apw = account(srv)
    b, _ = account(srv)
    forward(srv, a, b, "archive")
    m = imap_login(srv, a, apw)
    try:
        typ, data = m.delete("Archive")
        assert typ == "OK", data
    finally:
        m.logout()
    smtp_deliver_one(srv, a, make_message("x@remote.test", a))
    srv.wait_for_message(b, 1)
    srv.wait_for_message(a, 1, mailbox="Archive")
    m = imap_login(srv, a, apw)
    try:
        typ, data = m.list('""', "Archive")
        assert typ == "OK" and data and b"\\Archive" in data[0], data
    finally:
        m.logout()


# --------------------------------------------------------------------------
# remote targets, SRS and bounces

def queued_srs(srv, to):
    """The queue entry of the forwarded copy to TO: (queue id, sender)."""
    deadline = time.monotonic() + 20
    out = ""
    while time.monotonic() < deadline:
        out = srv.queue_list()
        lines = out.splitlines()
        for i, line in enumerate(lines):
            m = re.match(r"^(\S+)\s.*from <([^>]*)>", line)
            if m and i + 1 < len(lines) and f"<{to}>" in lines[i + 1]:
                return m.group(1), m.group(2)
        time.sleep(0.1)
    raise AssertionError(f"no queued copy to {to}:\n{out}")


def test_remote_forward_srs_and_bounce(srv):
    c, _ = account(srv, OTHER, "orig")           # the original sender, served here too
    a, _ = account(srv)
    target = f"{unique('t')}@{REMOTE}"
    forward(srv, a, target)
    msg = make_message(c, a, subject="to be forwarded far away")
    smtp_deliver_one(srv, a, msg, sender=c)
    srv.wait_for_message(a, 1)
    qid, sender = queued_srs(srv, target)
    m = SRS_RE.fullmatch(sender)
    assert m, f"forwarded copy's sender is not SRS0: {sender!r}"
    assert m.group(3) == OTHER and m.group(4) == c.split("@")[0]
    assert m.group(5) == a.split("@")[1], "SRS0 must be in A's domain"
    assert m.group(2) == srs_ref_stamp(time.time()) or \
        m.group(2) == srs_ref_stamp(time.time() - 5)
    # an independent implementation with the server's secret agrees
    key = (srv.data / "srs.key").read_bytes()
    assert len(key) == 32 and (srv.data / "srs.key").stat().st_mode & 0o777 == 0o600
    assert m.group(1) == srs_ref_hash(key, m.group(2), m.group(3), m.group(4))
    assert re.search(rf"event=forwarded queue=\S+ fwd={qid} .*srs=\"?SRS0=", log_text(srv))

    # the remote MX bounces it (null sender) to the SRS0 address
    bounce = make_message("MAILER-DAEMON@remote.example", sender,
                          subject="Undelivered Mail Returned to Sender")
    with SMTP(srv.smtp) as s:
        s.ehlo()
        check(s.cmd("MAIL FROM:<>"), 250)
        check(s.cmd(f"RCPT TO:<{sender}>"), 250)
        # any case: some MTAs lower-case the local part
        check(s.cmd(f"RCPT TO:<{sender.lower()}>"), 250)
        r = s.cmd("DATA")
        assert r.code == 354, r.text
        s.send(bounce.replace(b"\r\n.", b"\r\n..") + b".\r\n")
        check(s.reply(), 250)
        s.cmd("QUIT")
    got = srv.wait_for_message(c, 1)
    _, rest = split_received(srv.cat(c, got[0]["uid"]))
    assert rest == bounce


def test_srs_refused_at_rcpt(srv):
    a, _ = account(srv)
    target = f"{unique('t')}@{REMOTE}"
    forward(srv, a, target)
    smtp_deliver_one(srv, a, make_message("orig@elsewhere.example", a),
                     sender="orig@elsewhere.example")
    _, sender = queued_srs(srv, target)
    m = SRS_RE.fullmatch(sender)
    assert m
    key = (srv.data / "srs.key").read_bytes()
    h = m.group(1)
    bad_hash = ("B" if h[0].upper() != "B" else "C") + h[1:]
    dom = a.split("@")[1]
    old = srs_ref_stamp(time.time() - 30 * 86400)
    expired = (f"SRS0={srs_ref_hash(key, old, 'elsewhere.example', 'orig')}={old}"
               f"=elsewhere.example=orig@{dom}")
    fresh = srs_ref_stamp(time.time())
    made_here = (f"SRS0={srs_ref_hash(key, fresh, 'elsewhere.example', 'someone')}={fresh}"
                 f"=elsewhere.example=someone@{dom}")
    forged_user = sender.replace("=orig@", "=victim@")
    with SMTP(srv.smtp) as s:
        s.ehlo()
        check(s.cmd("MAIL FROM:<>"), 250)
        for bad in (sender.replace(h, bad_hash, 1), expired, forged_user):
            r = s.cmd(f"RCPT TO:<{bad}>")
            check(r, 550, "5.1.1")
        # a valid one made by the reference implementation is accepted (remote
        # original sender: queued for the outbound transport)
        check(s.cmd(f"RCPT TO:<{made_here}>"), 250)
        # an SRS address of a domain not served here is plain relaying
        check(s.cmd(f"RCPT TO:<{sender.split('@')[0]}@{REMOTE}>"), 550, "5.7.1")
        s.cmd("QUIT")
    text = log_text(srv)
    assert "event=srs-rejected" in text and "reason=bad-hash" in text and "reason=expired" in text


def mail_srs(key, op, *args):
    """Perl's Mail::SRS (libmail-srs-perl, Shevek's own implementation),
    Guarded (SRS0/SRS1), with the server's secret and 6 hash characters:
    op "forward" SENDER ALIAS or "reverse" ADDRESS. None when it refuses."""
    script = ("use Mail::SRS; my $s = Mail::SRS->new(Secret => pack('H*', shift @ARGV),"
              " HashLength => 6, MaxAge => 21); my $op = shift @ARGV;"
              " my $r = eval { $op eq 'forward' ? $s->forward(@ARGV) : $s->reverse(@ARGV) };"
              " print defined $r ? $r : '';")
    cp = subprocess.run(["perl", "-e", script, key.hex(), op, *args], capture_output=True,
                        timeout=20)
    assert cp.returncode == 0, cp.stderr
    return cp.stdout.decode() or None


@pytest.mark.skipif(not shutil.which("perl") or subprocess.run(
    ["perl", "-MMail::SRS", "-e", "1"], capture_output=True).returncode != 0,
    reason="Mail::SRS (libmail-srs-perl) not installed: scripts/install-deps")
def test_srs_interop_with_mail_srs(srv):
    """Roost's SRS addresses are Mail::SRS's, byte for byte, both ways."""
    c = f"{unique('orig')}@elsewhere.example"
    a, _ = account(srv)
    target = f"{unique('t')}@{REMOTE}"
    forward(srv, a, target)
    smtp_deliver_one(srv, a, make_message(c, a), sender=c)
    _, sender = queued_srs(srv, target)
    key = (srv.data / "srs.key").read_bytes()
    dom = a.split("@")[1]
    assert mail_srs(key, "forward", c, dom) == sender
    assert mail_srs(key, "reverse", sender) == c
    assert mail_srs(key, "reverse", sender.lower()) == c.lower()
    # Mail::SRS's SRS1 of someone else's SRS0, and its SRS0, pass our RCPT
    srs1 = mail_srs(key, "forward", f"SRS0=abcdef=AA=orig.example=zed@fwd1.example", dom)
    assert srs1.startswith("SRS1=") and srs1.endswith("@" + dom)
    srs0 = mail_srs(key, "forward", c, dom)
    with SMTP(srv.smtp) as s:
        s.ehlo()
        check(s.cmd("MAIL FROM:<>"), 250)
        check(s.cmd(f"RCPT TO:<{srs1}>"), 250)
        check(s.cmd(f"RCPT TO:<{srs0}>"), 250)
        s.cmd("QUIT")
    text = log_text(srv)
    assert f'to="SRS0=abcdef=AA=orig.example=zed@fwd1.example"' in text
    assert f'srs="{srs0}" to="{c}"' in text


def test_srs1_after_two_forwarders(srv):
    """c -> a (example.test) -> b (other.test) -> remote: the copy leaving b
    has an SRS1 sender naming a's domain; its bounce is reversed twice, to
    c."""
    c, _ = account(srv, "example.test", "orig")
    a, _ = account(srv)
    b, _ = account(srv, OTHER)
    target = f"{unique('t')}@{REMOTE}"
    forward(srv, a, b)
    forward(srv, b, target)
    smtp_deliver_one(srv, a, make_message(c, a), sender=c)
    srv.wait_for_message(b, 1)
    _, sender = queued_srs(srv, target)
    # c is in a's domain: a leaves it as it is (libsrs2's rule), b rewrites it
    m = SRS_RE.fullmatch(sender)
    assert m and m.group(3) == "example.test" and m.group(5) == OTHER, sender

    c2, _ = account(srv, OTHER, "orig")
    a2, _ = account(srv)
    b2, _ = account(srv, "example.test")
    target2 = f"{unique('t')}@{REMOTE}"
    forward(srv, a2, b2)
    forward(srv, b2, target2)
    smtp_deliver_one(srv, a2, make_message(c2, a2), sender=c2)
    srv.wait_for_message(b2, 1)
    _, sender2 = queued_srs(srv, target2)
    # a2 (example.test) made SRS0=...=other.test=c2@example.test; b2 is in
    # example.test too, so it keeps that SRS0 (same domain)
    assert SRS_RE.fullmatch(sender2), sender2

    c3, _ = account(srv, "example.test", "orig")
    a3, _ = account(srv, OTHER)
    b3, _ = account(srv, "example.test")
    target3 = f"{unique('t')}@{REMOTE}"
    forward(srv, a3, b3)
    forward(srv, b3, target3)
    smtp_deliver_one(srv, a3, make_message(c3, a3), sender=c3)
    srv.wait_for_message(b3, 1)
    _, sender3 = queued_srs(srv, target3)
    # a3 (other.test): SRS0=...=example.test=c3@other.test; b3 (example.test):
    # SRS1=...=other.test==...=example.test=c3@example.test
    assert SRS1_RE.fullmatch(sender3), sender3
    assert sender3.endswith("@example.test") and "=other.test==" in sender3
    with SMTP(srv.smtp) as s:
        s.ehlo()
        check(s.cmd("MAIL FROM:<>"), 250)
        check(s.cmd(f"RCPT TO:<{sender3}>"), 250)
        r = s.cmd("DATA")
        assert r.code == 354
        s.send(make_message("MAILER-DAEMON@remote.example", sender3) + b".\r\n")
        check(s.reply(), 250)
        s.cmd("QUIT")
    srv.wait_for_message(c3, 1)
    assert re.search(r"event=srs-reversed srs=\"?SRS1=", log_text(srv))


# --------------------------------------------------------------------------
# loops

def test_loop_a_b_a(srv):
    a, _ = account(srv)
    b, _ = account(srv, OTHER)
    forward(srv, a, b)
    forward(srv, b, a)
    smtp_deliver_one(srv, a, make_message("loop@remote.test", a, subject="loop"))
    srv.wait_for_message(a, 1)
    srv.wait_for_message(b, 1)
    wait_queue_clear(srv, a, b)
    time.sleep(0.3)
    assert len(rows(srv, a)) == 1 and len(rows(srv, b)) == 1
    assert re.search(r"event=forward-loop .*rule=delivered-to-target", log_text(srv))


def test_loop_delivered_to_self_kept(srv):
    """A message that already went through this account is not forwarded
    again, and is kept in the INBOX even with --forward-keep delete."""
    a, _ = account(srv)
    b, _ = account(srv)
    forward(srv, a, b, "delete")
    msg = make_message("x@remote.test", a, extra_headers=[f"Delivered-To: {a.upper()}"])
    smtp_deliver_one(srv, a, msg)
    srv.wait_for_message(a, 1)
    wait_queue_clear(srv, a, b)
    assert rows(srv, b) == []
    assert re.search(r"event=forward-loop .*rule=delivered-to-self", log_text(srv))
    many = make_message("x@remote.test", a,
                        extra_headers=[f"Received: from hop{i}.example" for i in range(31)])
    smtp_deliver_one(srv, a, many)
    srv.wait_for_message(a, 2)
    wait_queue_clear(srv, a, b)
    assert rows(srv, b) == []
    assert "rule=too-many-hops" in log_text(srv)


def test_forward_off(srv):
    a, _ = account(srv)
    b, _ = account(srv)
    forward(srv, a, b, "delete")
    r = srv.ok("account", "set", a, "--forward-to", "off")
    assert "forwarding:       off" in r.stdout
    assert "forwarding:       off" in srv.ok("account", "show", a).stdout
    smtp_deliver_one(srv, a, make_message("x@remote.test", a))
    srv.wait_for_message(a, 1)
    wait_queue_clear(srv, a, b)
    assert rows(srv, b) == []


# --------------------------------------------------------------------------
# CLI

def test_cli_bad_input(srv):
    a, _ = account(srv)
    b, _ = account(srv)
    srv.ok("alias", "add", f"{unique('al')}@example.test", a)
    alias = [l.split()[0] for l in srv.ok("alias", "list").stdout.splitlines()
             if l.split() and l.split()[-1] == a][0]
    cases = [
        (["--forward-to", "not-an-address"], "not a valid address"),
        (["--forward-to", "a@@b.example"], "not a valid address"),
        (["--forward-to", "user@localhost"], "not a valid address"),
        (["--forward-to", a.upper()], "cannot forward to itself"),
        (["--forward-to", a.replace("@", "+tag@")], "this account itself"),
        (["--forward-to", alias], "this account itself"),
        (["--forward-to", f"nobody-{unique('n')}@example.test"], "no such account"),
        (["--forward-keep", "shred"], "--forward-keep must be keep, mark-read, archive or delete"),
        (["--forward-to"], "not a valid address"),
    ]
    for args, text in cases:
        r = srv.roost("account", "set", a, *args)
        assert r.rc == 2, r
        assert text in r.stderr, r
    assert "forwarding:       off" in srv.ok("account", "show", a).stdout
    # a refused target leaves the other options of the same command unapplied
    r = srv.roost("account", "set", a, "--plan", "business", "--forward-to",
                  f"nobody-{unique('n')}@example.test")
    assert r.rc == 2, r
    assert "plan:             free" in srv.ok("account", "show", a).stdout
    r = srv.roost("account", "set", f"nobody-{unique('n')}@example.test", "--forward-to", b)
    assert r.rc == 1 and "no such account" in r.stderr, r
    r = forward(srv, a, b.upper(), "mark-read")
    assert f"to {b}, Roost's copy kept, marked as read (mark-read)" in r.stdout, r.stdout
    help_text = srv.ok("help").stdout + srv.roost("help").stderr
    assert "--forward-to" in help_text and "--forward-keep" in help_text


# --------------------------------------------------------------------------
# crash

def test_kill9_while_forwarding(make_server):
    """kill -9 while messages to A are being forwarded to B: after a restart
    every message A's sender got a 250 for is in A's INBOX once and in B's
    once (nothing lost between the forward and the done mark, nothing
    doubled)."""
    s = make_server()
    s.ensure_domain(OTHER)
    a, _ = s.new_account("crash")
    b, _ = s.new_account("crash", domain=OTHER)
    forward(s, a, b, "keep")
    acked, lock, stop = set(), threading.Lock(), threading.Event()

    def sender(n):
        try:
            c = SMTP(s.smtp, timeout=15)
            c.ehlo(f"load{n}.example.net")
        except Exception:
            return
        try:
            for i in range(40):
                if stop.is_set():
                    return
                mid = f"<{unique(f'k{n}m{i}')}@load.example.net>"
                msg = make_message("load@remote.test", a, msgid=mid, subject=f"{n}/{i}")
                try:
                    r = c.mail_transaction("load@remote.test", [a], msg)
                except Exception:
                    return
                if r.code != 250:
                    return
                with lock:
                    acked.add(mid)
        finally:
            c.close()

    threads = [threading.Thread(target=sender, args=(n,), daemon=True) for n in range(4)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and len(rows(s, b)) < 15 and \
            any(t.is_alive() for t in threads):
        time.sleep(0.05)
    s.kill9()
    stop.set()
    for t in threads:
        t.join(30)
    assert acked, "nothing acknowledged before the kill"
    s.start()

    def msgids(addr):
        with ThreadPoolExecutor(4) as ex:
            raws = list(ex.map(lambda r: s.cat(addr, r[0]), rows(s, addr)))
        out = []
        for raw in raws:
            m = re.search(rb"^Message-ID:\s*(<[^>\r\n]+>)", raw, re.M | re.I)
            out.append((m.group(1).decode() if m else None, raw))
        return out

    # drained: nothing queued for A or B any more (cheap to poll; the
    # messages are read once at the end)
    deadline = time.monotonic() + 150
    while True:
        queue = s.queue_list()
        if f"<{a}>" not in queue and f"<{b}>" not in queue and \
                len(rows(s, a)) >= len(acked) and len(rows(s, b)) >= len(acked):
            break
        assert time.monotonic() < deadline, (
            f"not drained after restart: A has {len(rows(s, a))}, B {len(rows(s, b))}, "
            f"{len(acked)} acknowledged (server dir {s.base})")
        time.sleep(0.5)
    time.sleep(1.0)
    got_a, got_b = msgids(a), msgids(b)
    for who, got in (("A", got_a), ("B", got_b)):
        ids = [m for m, _ in got]
        dups = {m for m in ids if ids.count(m) > 1}
        assert not dups, f"{who} holds copies twice: {sorted(dups)[:5]}"
        missing = acked - set(ids)
        assert not missing, f"acknowledged but not in {who}: {sorted(missing)[:5]} ({s.base})"
    for _, raw in got_b:
        assert split_return_path(raw)[1].startswith(f"Delivered-To: {a}\r\n".encode())
