"""The IMAP server on a real `roost serve`: logins and policy (LOGINDISABLED
before STARTTLS on 143, AUTHENTICATE PLAIN/LOGIN with SASL-IR, IMAP off,
two-factor accounts with app passwords), one imaplib session running every
command of the issue, sync between two sessions and IDLE woken by an SMTP
delivery, CONDSTORE/QRESYNC, mailbox names, LIST-EXTENDED/LIST-STATUS,
APPEND errors and quota, COMPRESS=DEFLATE, limits and bad input, SIGTERM
during IDLE, and POP3 deletions seen by IMAP.

Python's imaplib is the client wherever it can express the test; a raw TLS
socket (RawIMAP from test_imap_messages) sends exact bytes where the exact
reply matters."""
import base64
import imaplib
import re
import socket
import ssl
import threading
import time
import zlib

import pytest

from conftest import (CRLF, DOMAIN, SMTP, RoostServer, _finish, client_context, deliver_many,
                      make_message, unique, wait_until)
from test_imap_messages import RawIMAP, fetched

LISTENERS = ("smtp", "submission", "submissions", "imap", "imaps", "pop3s")


@pytest.fixture(scope="module")
def srv(roost_binary):
    s = RoostServer(listeners=LISTENERS)
    s.start()
    s.ensure_domain(DOMAIN)
    yield s
    _finish(s)


def imaps(srv):
    return imaplib.IMAP4_SSL("127.0.0.1", srv.ports["imaps"], ssl_context=client_context(),
                             timeout=60)


def login(srv, address, pw):
    m = imaps(srv)
    m.login(address, pw)
    return m


def deliver(srv, rcpt, subject="hello", body=None):
    """One message over SMTP, waiting until it is in the INBOX (local
    delivery follows the 250 from the queue); returns the time of the 250."""
    before = len(srv.mailbox_rows(rcpt))
    msg = make_message("someone@remote.test", rcpt, subject=subject, body=body)
    with SMTP(srv.smtp) as c:
        c.ehlo()
        r = c.mail_transaction("someone@remote.test", [rcpt], msg)
        t = time.monotonic()
        assert r.code == 250, r
    srv.wait_for_message(rcpt, before + 1)
    return t


def simple(subject=b"x", body=b"Body text.\r\n"):
    return (b"From: a@remote.test\r\nTo: b@example.test\r\nSubject: " + subject +
            b"\r\nDate: Mon, 05 Feb 2024 10:00:00 +0000\r\n\r\n" + body)


def wait_tagged(c, tag):
    """(untagged responses, tagged text) once TAG's reply arrives."""
    untagged = []
    while True:
        r = c.read_response()
        if r.startswith(tag + b" "):
            return untagged, r[len(tag) + 1:].decode("utf-8", "replace")
        untagged.append(r)


# --------------------------------------------------------------------------
# logins and policy

def test_plain_listener_logindisabled_then_starttls(srv):
    address, pw = srv.new_account("tls")
    m = imaplib.IMAP4("127.0.0.1", srv.ports["imap"], timeout=30)
    caps = m.capabilities
    assert "STARTTLS" in caps and "LOGINDISABLED" in caps, caps
    assert not [c for c in caps if c.startswith("AUTH=")], caps
    typ, data = m._simple_command("LOGIN", address, pw)
    assert typ == "NO" and b"PRIVACYREQUIRED" in data[0], data
    m.starttls(ssl_context=client_context())
    assert "AUTH=PLAIN" in m.capabilities and "LOGINDISABLED" not in m.capabilities
    typ, data = m.login(address, pw)
    assert typ == "OK" and b"CAPABILITY" in data[0]
    assert m.select("INBOX")[0] == "OK"
    m.logout()


def test_authenticate_plain_login_sasl_ir_and_cancel(srv):
    address, pw = srv.new_account("sasl")
    ir = base64.b64encode(f"\0{address}\0{pw}".encode()).decode()
    with RawIMAP(srv.ports["imaps"]) as c:
        u, t = c.cmd(f"AUTHENTICATE PLAIN {ir}")
        assert t.startswith("OK") and "CAPABILITY" in t, t
    with RawIMAP(srv.ports["imaps"]) as c:
        c.sock.sendall(b"a1 AUTHENTICATE LOGIN\r\n")
        assert c.read_line().startswith(b"+ ")
        c.sock.sendall(base64.b64encode(address.encode()) + CRLF)
        assert c.read_line().startswith(b"+ ")
        c.sock.sendall(base64.b64encode(pw.encode()) + CRLF)
        line = c.read_line()
        assert line.startswith(b"a1 OK"), line
    with RawIMAP(srv.ports["imaps"]) as c:
        c.sock.sendall(b"a1 AUTHENTICATE PLAIN\r\n")
        assert c.read_line().startswith(b"+")
        c.sock.sendall(b"*\r\n")
        assert c.read_line().startswith(b"a1 BAD"), "cancel"
        u, t = c.cmd("AUTHENTICATE PLAIN " + base64.b64encode(f"\0{address}\0wrong".encode()).decode())
        assert t.startswith("NO [AUTHENTICATIONFAILED]"), t
        u, t = c.cmd("AUTHENTICATE CRAM-MD5")
        assert t.startswith("NO"), t
        u, t = c.cmd(f'LOGIN "{address}" "{pw}"')
        assert t.startswith("OK"), t


def test_imaplib_login_methods(srv):
    address, pw = srv.new_account("meth")
    m = imaps(srv)
    m.authenticate("PLAIN", lambda _: f"\0{address}\0{pw}".encode())
    assert m.state == "AUTH"
    m.logout()
    m = imaps(srv)
    with pytest.raises(imaplib.IMAP4.error) as e:
        m.login(address, pw + "x")
    assert "AUTHENTICATIONFAILED" in str(e.value)
    m.logout()


def test_imap_disabled_account(srv):
    address, pw = srv.new_account("noimap")
    srv.ok("account", "set", address, "--imap", "off")
    m = imaps(srv)
    with pytest.raises(imaplib.IMAP4.error) as e:
        m.login(address, pw)
    assert "IMAP access is disabled" in str(e.value)
    m.logout()


def test_two_factor_app_passwords_only(srv):
    address, pw = srv.new_account("tfa")
    srv.ok("account", "set", address, "--two-factor", "on")
    m = imaps(srv)
    with pytest.raises(imaplib.IMAP4.error) as e:
        m.login(address, pw)
    assert "Application-specific password required" in str(e.value)
    m.logout()
    ap = srv.ok("app-password", "create", address, "laptop").stdout.strip().splitlines()[-1]
    m = login(srv, address, ap)
    assert m.select("INBOX")[0] == "OK"
    m.logout()
    srv.ok("app-password", "revoke", address, "laptop")
    m = imaps(srv)
    with pytest.raises(imaplib.IMAP4.error):
        m.login(address, ap)
    m.logout()


# --------------------------------------------------------------------------
# one session, every command

def test_full_session_every_command(srv):
    address, pw = srv.new_account("full")
    deliver(srv, address, subject="first")
    m = login(srv, address, pw)
    assert m.capability()[0] == "OK"
    assert m.noop()[0] == "OK"
    typ, data = m.xatom("ID", '("name" "pytest")')
    assert typ == "OK"
    typ, data = m.namespace()
    assert typ == "OK" and data[0] == b'(("" "/")) NIL NIL', data
    typ, data = m._simple_command("ENABLE", "CONDSTORE")
    assert typ == "OK" and m.untagged_responses.pop("ENABLED") == [b"CONDSTORE"]
    # mailboxes
    assert m.create("Work/Projects")[0] == "OK"
    assert m.create("Old")[0] == "OK"
    assert m.rename("Old", "Work/Old")[0] == "OK"
    assert m.subscribe("Work/Old")[0] == "OK"
    typ, data = m.list('""', "Work/*")
    assert typ == "OK"
    names = sorted(re.search(rb'"/" "?([^"]*)"?$', d).group(1) for d in data)
    assert names == [b"Work/Old", b"Work/Projects"], data
    typ, data = m.lsub('""', "*")
    assert [d for d in data if d.endswith(b'"Work/Old"')], data
    assert m.unsubscribe("Work/Old")[0] == "OK"
    typ, data = m.lsub('""', "Work/*")
    assert not [d for d in data if d], data
    assert m.delete("Work/Old")[0] == "OK"
    # APPEND, STATUS
    typ, data = m.append("Work/Projects", r"(\Flagged)", '"05-Feb-2024 10:00:00 +0000"',
                         simple(b"appended"))
    assert typ == "OK" and b"APPENDUID" in data[0], data
    typ, data = m.status("Work/Projects", "(MESSAGES UIDNEXT UNSEEN SIZE HIGHESTMODSEQ)")
    assert typ == "OK"
    assert re.search(rb"MESSAGES 1 UIDNEXT 2 UNSEEN 1 SIZE \d+ HIGHESTMODSEQ \d+", data[0]), data
    # SELECT / EXAMINE, SEARCH, FETCH, STORE, COPY, MOVE, EXPUNGE
    typ, data = m.select("INBOX")
    assert typ == "OK" and data == [b"1"]
    assert m.check()[0] == "OK"
    typ, data = m.search(None, "SUBJECT", "first")
    assert data == [b"1"]
    typ, data = m.uid("SEARCH", "ALL")
    uid1 = data[0].split()[0]
    typ, data = m.fetch("1", "(BODY.PEEK[HEADER.FIELDS (SUBJECT)] FLAGS)")
    assert b"Subject: first" in data[0][1]
    typ, data = m.store("1", "+FLAGS", r"(\Seen $Work)")
    assert b"\\Seen" in data[0] and b"$Work" in data[0]
    typ, data = m.uid("FETCH", uid1, "(FLAGS MODSEQ)")
    assert b"MODSEQ" in data[0]
    assert m.copy("1", "Work/Projects")[0] == "OK"
    typ, data = m.uid("MOVE", uid1, "Trash")
    assert typ == "OK"
    typ, data = m.select("Trash")
    assert data == [b"1"]
    assert m.store("1", "+FLAGS", r"(\Deleted)")[0] == "OK"
    typ, data = m.expunge()
    assert typ == "OK" and data == [b"1"], data
    assert m.unselect()[0] == "OK"
    typ, data = m.select("Work/Projects", readonly=True)
    assert data == [b"2"]
    assert m.close()[0] == "OK"
    typ, data = m.select("Work/Projects")
    assert m.uid("STORE", "1:*", "+FLAGS", r"(\Deleted)")[0] == "OK"
    typ, data = m.uid("EXPUNGE", "1")
    assert typ == "OK"
    typ, data = m.search(None, "ALL")
    assert data == [b"1"], data
    assert m.close()[0] == "OK"   # expunges the other \Deleted silently
    typ, data = m.status("Work/Projects", "(MESSAGES)")
    assert b"MESSAGES 0" in data[0]
    # quota
    typ, data = m.getquotaroot("INBOX")
    assert typ == "OK" and data[0] == [b'"INBOX" ""'] and b"STORAGE" in data[1][0], data
    typ, data = m.getquota('""')
    assert typ == "OK" and re.match(rb'"" \(STORAGE \d+ 15728640\)', data[0]), data
    # IDLE (ended at once)
    m.send(b"i1 IDLE\r\n")
    assert m.readline().startswith(b"+ ")
    m.send(b"DONE\r\n")
    assert m.readline().startswith(b"i1 OK")
    typ, data = m.logout()
    assert typ == "BYE"


# --------------------------------------------------------------------------
# sync between sessions, IDLE

def test_two_sessions_see_each_others_changes(srv):
    address, pw = srv.new_account("sync")
    for i in range(3):
        deliver(srv, address, subject=f"s{i}")
    a = login(srv, address, pw)
    b = login(srv, address, pw)
    a.select("INBOX")
    b.select("INBOX")
    b.untagged_responses.clear()   # imaplib keeps SELECT's EXISTS
    a.store("2", "+FLAGS", r"(\Flagged)")
    typ, data = b.noop()
    fetch = b.untagged_responses.pop("FETCH", [])
    assert [f for f in fetch if f.startswith(b"2 (FLAGS") and b"\\Flagged" in f], fetch
    a.store("1", "+FLAGS", r"(\Deleted)")
    a.expunge()
    b.noop()
    assert b.untagged_responses.pop("EXPUNGE", None) == [b"1"]
    a.append("INBOX", None, None, simple(b"from-a"))
    b.noop()
    assert b.untagged_responses.pop("EXISTS", None) == [b"3"]
    deliver(srv, address, subject="smtp")   # local delivery follows the 250 from the queue
    wait_until(lambda: b.noop() and "EXISTS" in b.untagged_responses, 10, what="EXISTS")
    assert b.untagged_responses.pop("EXISTS", None) == [b"4"]
    # EXPUNGE is held back during FETCH (RFC 9051 7.5.1) and sent after
    a.store("1", "+FLAGS", r"(\Deleted)")
    a.expunge()
    typ, data = b.fetch("1:4", "(UID)")
    # the expunged message keeps its sequence number; the server answers
    # the others and says what happened (RFC 5530 EXPUNGEISSUED)
    assert "EXPUNGE" not in b.untagged_responses
    assert typ == "NO" and b"EXPUNGEISSUED" in data[0], (typ, data)
    assert len(b.untagged_responses.pop("FETCH")) == 3
    b.noop()
    assert b.untagged_responses.pop("EXPUNGE", None) == [b"1"]
    a.logout()
    b.logout()


def idle_start(m):
    tag = m._new_tag()
    m.send(tag + b" IDLE\r\n")
    assert m.readline().startswith(b"+ ")
    return tag


def idle_stop(m, tag):
    m.send(b"DONE\r\n")
    while True:
        line = m.readline()
        if line.startswith(tag):
            assert b" OK " in line
            return


def test_idle_woken_by_smtp_delivery_within_a_second(srv):
    address, pw = srv.new_account("idle")
    deliver(srv, address)
    m = login(srv, address, pw)
    m.select("INBOX")
    tag = idle_start(m)
    lines = []

    def reader():
        lines.append((m.readline(), time.monotonic()))

    delays = []
    for n in (2, 3, 4):
        t = threading.Thread(target=reader)
        t.start()
        time.sleep(0.2)
        t250 = deliver(srv, address, subject=f"idle{n}")
        t.join(5)
        line, at = lines.pop()
        assert line == f"* {n} EXISTS\r\n".encode(), line
        delays.append(at - t250)
    assert max(delays) <= 1.0, delays
    idle_stop(m, tag)
    m.logout()


def test_idle_woken_by_other_session_store(srv):
    address, pw = srv.new_account("idle2")
    deliver(srv, address)
    a = login(srv, address, pw)
    b = login(srv, address, pw)
    a.select("INBOX")
    b.select("INBOX")
    tag = idle_start(b)
    a.store("1", "+FLAGS", r"(\Answered)")
    b.sock.settimeout(5)
    line = b.readline()
    assert line.startswith(b"* 1 FETCH (FLAGS (\\Answered)"), line
    idle_stop(b, tag)
    a.logout()
    b.logout()


def test_condstore_and_qresync(srv):
    address, pw = srv.new_account("qres")
    for i in range(4):
        deliver(srv, address, subject=f"q{i}")
    with RawIMAP(srv.ports["imaps"]) as c:
        c.ok(f'LOGIN "{address}" "{pw}"')
        c.ok("ENABLE QRESYNC")
        u, t = c.ok("SELECT INBOX")
        uv = int(re.search(rb"UIDVALIDITY (\d+)", b"".join(u)).group(1))
        hm = int(re.search(rb"HIGHESTMODSEQ (\d+)", b"".join(u)).group(1))
        c.ok("STORE 2 +FLAGS (\\Seen)")
        c.ok("STORE 3 +FLAGS (\\Deleted)")
        u, t = c.ok("EXPUNGE")
        assert b"* VANISHED 3" in u, u
        u, t = c.ok(f"UID FETCH 1:* (FLAGS) (CHANGEDSINCE {hm})")
        assert len([r for r in u if b"FETCH" in r]) == 1 and b"MODSEQ" in u[0], u
        u, t = c.ok(f"UID FETCH 1:* (FLAGS) (CHANGEDSINCE {hm} VANISHED)")
        assert b"* VANISHED (EARLIER) 3" in u, u
        c.ok("UNSELECT")
        u, t = c.ok(f"SELECT INBOX (QRESYNC ({uv} {hm}))")
        assert b"* VANISHED (EARLIER) 3" in u, u
        assert [r for r in u if re.match(rb"\* 2 FETCH \(UID 2 FLAGS \(\\Seen\) MODSEQ", r)], u
        u, t = c.cmd(f"SELECT INBOX (QRESYNC ({uv}))")
        assert t.startswith("BAD"), t


# --------------------------------------------------------------------------
# mailboxes

def test_mailbox_names_refused_and_international(srv):
    address, pw = srv.new_account("names")
    m = login(srv, address, pw)
    for bad in ('"a/../b"', '"/lead"', '".."', '"x\ty"', '"a//b"', '"&Jjo"', '"a*b"'):
        typ, data = m._simple_command("CREATE", bad)
        assert typ == "NO" and b"CANNOT" in data[-1], (bad, data)
    assert m.create("&AMk-t&AOk-/Entw&APw-rfe")[0] == "OK"   # Été/Entwürfe
    typ, data = m.list('""', "*")
    assert [d for d in data if d.endswith(b'"&AMk-t&AOk-/Entw&APw-rfe"')], data
    assert m.select("&AMk-t&AOk-/Entw&APw-rfe")[0] == "OK"
    m.unselect()   # ENABLE is valid in the authenticated state only (RFC 5161)
    m._simple_command("ENABLE", "UTF8=ACCEPT")
    typ, data = m.list('""', "*")
    assert [d for d in data if d.endswith('"Été/Entwürfe"'.encode())], data
    assert m.delete("INBOX")[0] == "NO"
    assert m.create("inbox")[0] == "NO"
    assert m.rename("Nope", "Other")[0] == "NO"
    m.logout()


def test_list_extended_status_and_special_use(srv):
    address, pw = srv.new_account("listx")
    deliver(srv, address)
    with RawIMAP(srv.ports["imaps"]) as c:
        c.ok(f'LOGIN "{address}" "{pw}"')
        u, t = c.ok('LIST "" ""')
        assert u == [b'* LIST (\\Noselect) "/" ""'], u
        u, t = c.ok('LIST "" "*"')
        for use in (b"\\Sent", b"\\Drafts", b"\\Trash", b"\\Junk", b"\\Archive"):
            assert [r for r in u if use in r], (use, u)
        c.ok("CREATE Parent/Child")
        c.ok("SUBSCRIBE Parent/Child")
        c.ok("SUBSCRIBE Ghost")
        u, t = c.ok('LIST (SUBSCRIBED) "" "*"')
        assert b'* LIST (\\HasNoChildren \\Subscribed) "/" "Parent/Child"' in u, u
        assert [r for r in u if b"\\NonExistent" in r and r.endswith(b'"Ghost"')], u
        u, t = c.ok('LIST "" "%" RETURN (CHILDREN STATUS (MESSAGES UNSEEN))')
        assert b'* LIST (\\HasChildren) "/" "Parent"' in u, u
        assert b'* STATUS "INBOX" (MESSAGES 1 UNSEEN 1)' in u, u
        u, t = c.ok('LIST (SPECIAL-USE) "" "*"')
        assert len([r for r in u if r.startswith(b"* LIST")]) == 5, u
        u, t = c.ok('LIST "" ("INBOX" "Par*")')
        assert len(u) == 3, u
        u, t = c.cmd('LIST (RECURSIVEMATCH) "" "*"')
        assert t.startswith("BAD"), t
        u, t = c.ok('CREATE Reports (USE (\\Archive))')
        u, t = c.cmd('CREATE Bad (USE (\\Bogus))')
        assert t.startswith("NO [USEATTR]"), t


def test_append_errors_and_quota(srv):
    address, pw = srv.new_account("appq")
    with RawIMAP(srv.ports["imaps"]) as c:
        c.ok(f'LOGIN "{address}" "{pw}"')
        msg = simple(b"q")
        c.sock.sendall(b"a1 APPEND NoSuch {%d}\r\n" % len(msg))
        assert c.read_line().startswith(b"+")
        c.sock.sendall(msg + CRLF)
        u, t = wait_tagged(c, b"a1")
        assert t.startswith("NO [TRYCREATE]"), t
        # APPENDLIMIT: refused from the announcement, no "+"
        c.sock.sendall(b"a2 APPEND INBOX {999999999}\r\n")
        line = c.read_line()
        assert line.startswith(b"a2 NO [TOOBIG]"), line
        u, t = c.cmd('APPEND INBOX (\\Bogus) {1+}\r\nx')
        assert t.startswith("BAD"), t
        srv.ok("account", "set", address, "--quota", "1K")
        big = simple(b"big", b"y" * 2000 + CRLF)
        c.sock.sendall(b"a3 APPEND INBOX {%d+}\r\n" % len(big) + big + CRLF)
        u, t = wait_tagged(c, b"a3")
        assert t.startswith("NO [OVERQUOTA]"), t
        u, t = c.ok("GETQUOTA \"\"")
        assert b'* QUOTA "" (STORAGE 0 1)' in u, u
        u, t = c.ok("NOOP")


# --------------------------------------------------------------------------
# limits, bad input, isolation

def test_bad_commands_and_limits(srv):
    address, pw = srv.new_account("limits")
    with RawIMAP(srv.ports["imaps"]) as c:
        u, t = c.cmd("FROBNICATE")
        assert t.startswith("BAD"), t
        u, t = c.cmd("SELECT INBOX")
        assert t.startswith("BAD"), t
        c.ok(f'LOGIN "{address}" "{pw}"')
        u, t = c.cmd("LOGIN a b")
        assert t.startswith("BAD"), t
        u, t = c.cmd("NOOP " + "(" * 40 + ")" * 40)
        assert t.startswith("BAD") and "nested" in t, t
        c.sock.sendall(b"big LOGIN {2147483648}\r\n")
        line = c.read_line()
        assert line.startswith(b"big NO [TOOBIG]") or line.startswith(b"big BAD"), line
        c.sock.sendall(b"long NOOP " + b"x" * 70000 + b"\r\n")
        line = c.read_line()
        assert line.startswith(b"long BAD") and b"too long" in line, line
        u, t = c.ok("NOOP")
        # too many invalid commands in a row: BYE
        for i in range(25):
            c.sock.sendall(b"b%d FROBNICATE\r\n" % i)
        seen = b""
        try:
            while b"* BYE" not in seen:
                seen += c.read_line()
        except EOFError:
            pass
        assert b"* BYE Too many invalid commands" in seen, seen[-300:]
    # the server keeps working
    m = login(srv, address, pw)
    assert m.select("INBOX")[0] == "OK"
    m.logout()


def test_accounts_are_isolated(srv):
    a_addr, a_pw = srv.new_account("isoa")
    b_addr, b_pw = srv.new_account("isob")
    deliver(srv, b_addr, subject="secret")
    mb = login(srv, b_addr, b_pw)
    mb.create("Private")
    mb.logout()
    m = login(srv, a_addr, a_pw)
    typ, data = m.list('""', "*")
    assert not [d for d in data if b"Private" in d], data
    assert m.select("Private")[0] == "NO"
    typ, data = m.select("INBOX")
    assert data == [b"0"]
    typ, data = m.search(None, "SUBJECT", "secret")
    assert data == [b""]
    for name in ('"../' + b_addr + '/INBOX"', '"/INBOX"'):
        typ, data = m._simple_command("STATUS", name, "(MESSAGES)")
        assert typ == "NO", (name, data)
    m.logout()


def test_compress_deflate(srv):
    address, pw = srv.new_account("zip")
    deliver(srv, address, subject="zipped")
    ctx = client_context()
    s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", srv.ports["imaps"]), timeout=10))
    f = s.makefile("rb")
    f.readline()
    s.sendall(f'a1 LOGIN "{address}" "{pw}"\r\n'.encode())
    while not f.readline().startswith(b"a1 "):
        pass
    s.sendall(b"a2 COMPRESS DEFLATE\r\n")
    assert f.readline().startswith(b"a2 OK")
    comp = zlib.compressobj(6, zlib.DEFLATED, -15)
    dec = zlib.decompressobj(-15)

    def send(line):
        s.sendall(comp.compress(line) + comp.flush(zlib.Z_SYNC_FLUSH))

    def read_until(tag):
        buf = b""
        while tag not in buf:
            buf += dec.decompress(s.recv(65536))
        return buf

    send(b"a3 SELECT INBOX\r\n")
    assert b"* 1 EXISTS" in read_until(b"a3 OK")
    send(b"a4 FETCH 1 BODY.PEEK[HEADER.FIELDS (SUBJECT)]\r\n")
    out = read_until(b"a4 OK")
    assert b"Subject: zipped" in out, out
    send(b"a5 COMPRESS DEFLATE\r\n")
    assert b"a5 NO [COMPRESSIONACTIVE]" in read_until(b"a5 ")
    send(b"a6 LOGOUT\r\n")
    assert b"a6 OK" in read_until(b"a6 OK")
    s.close()


def test_pop3_deletion_seen_by_imap(srv):
    import poplib
    address, pw = srv.new_account("popimap")
    for i in range(3):
        deliver(srv, address, subject=f"p{i}")
    m = login(srv, address, pw)
    m.select("INBOX")
    p = poplib.POP3_SSL("127.0.0.1", srv.ports["pop3s"], context=client_context(), timeout=30)
    p.user(address)
    p.pass_(pw)
    p.dele(2)
    p.quit()
    m.noop()
    assert m.untagged_responses.pop("EXPUNGE", None) == [b"2"]
    typ, data = m.search(None, "ALL")
    assert data == [b"1 2"]
    m.logout()


def test_sigterm_during_idle(roost_binary):
    s = RoostServer(listeners=LISTENERS)
    s.start()
    try:
        s.ensure_domain(DOMAIN)
        address, pw = s.new_account("term")
        m = login(s, address, pw)
        m.select("INBOX")
        idle_start(m)
        s.proc.terminate()
        m.sock.settimeout(10)
        line = m.readline()
        assert line.startswith(b"* BYE"), line
        assert s.proc.wait(20) == 0
    finally:
        _finish(s)
