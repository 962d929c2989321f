"""POP3 (RFC 1939, 2449, 2595, 5034) on the pop3 (STLS) and pop3s (implicit
TLS) listeners, with a raw client that sends bytes exactly as written:
greeting and CAPA, STLS (and plaintext pipelined after it), logins and their
refusals (before STLS, wrong password, two-factor, POP disabled, IN-USE,
throttling), the TRANSACTION commands against the store (`roost mailbox
list/cat`), UIDL stability, DELE/RSET/QUIT/dropped connections, bad input
and Gmail's per-account POP options (--pop-after, --pop-scope)."""
import re
import socket
import time

import pytest

from conftest import (CRLF, DOMAIN, POP3, POP3_LISTENERS, SMTP,
                      assert_stored_exactly, client_context, make_message, message_id_of,
                      pop3_connect, pop3_session, pop3_unstuff, unique)

GREETING = "+OK Roost POP3 server ready"
NEED_STLS = "-ERR [AUTH] Must issue a STLS command first"
BADPASS = "-ERR [AUTH] Username and password not accepted"
NEED_APP = "-ERR [AUTH] Application-specific password required"
POP_OFF = "-ERR [SYS/PERM] POP access is disabled for this account"
THROTTLED = "-ERR [SYS/TEMP] Too many login attempts, please try again later"


@pytest.fixture(scope="module")
def pop(pop3_server):
    return pop3_server


_src_n = [10]


def fresh_source():
    """A loopback client address of its own (127.0.0.10 and up), so that the
    login failures of one test never add up to the per-address throttle of
    another."""
    _src_n[0] += 1
    assert _src_n[0] < 250
    return f"127.0.0.{_src_n[0]}"


def deliver(srv, address, msgs):
    """Delivers msgs in this order: each message is in the INBOX before the
    next is sent (local delivery from the queue need not keep the order of
    the SMTP transactions), so INBOX order = list order."""
    with SMTP(srv.smtp) as c:
        c.ehlo()
        for m in msgs:
            before = len(srv.mailbox_rows(address))
            r = c.mail_transaction("someone@remote.test", [address], m)
            assert r.code == 250, f"DATA not accepted: {r.text}"
            srv.wait_for_message(address, before + 1)
        c.cmd("QUIT")


def fill(srv, n, prefix="pop", bodies=None):
    """A fresh account with n messages delivered in order (INBOX order =
    this order).  Returns (address, password, sent list)."""
    address, pw = srv.new_account(prefix)
    sent = []
    for i in range(n):
        body = bodies[i] if bodies else None
        sent.append(make_message("someone@remote.test", address, subject=f"pop test {i}",
                                 body=body))
    if sent:
        deliver(srv, address, sent)
    return address, pw, sent


def flags(row):
    """The FLAGS column of a `mailbox list` row ("-" when none)."""
    return row["line"].split()[3]


def rows_of(srv, address, mailbox=None):
    if mailbox is None:
        return srv.mailbox_rows(address)
    r = srv.roost("mailbox", "list", address, mailbox)
    if r.rc != 0:
        assert "no such mailbox" in r.stderr, f"mailbox list failed: {r!r}"
        return []
    return srv.mailbox_rows(address, mailbox)


def stored_by_msgid(srv, address, mailbox=None):
    if not rows_of(srv, address, mailbox):
        return {}
    return {message_id_of(data): data for data in srv.export(address, mailbox).values()}


def ok(r, what=""):
    assert r.startswith("+OK"), f"{what}: expected +OK, got {r!r}"
    return r


def err(r, what=""):
    assert r.startswith("-ERR"), f"{what}: expected -ERR, got {r!r}"
    return r


def listing(body):
    """{n: value} from a LIST/UIDL multi-line body."""
    out = {}
    for line in body.split(CRLF):
        if not line:
            continue
        t = line.decode().split()
        assert len(t) == 2 and t[0].isdigit(), f"malformed listing line {line!r}"
        out[int(t[0])] = t[1]
    return out


def capa(c):
    st, body = c.cmd_multi("CAPA")
    ok(st, "CAPA")
    return [l.decode().strip() for l in body.split(CRLF) if l]


def capa_names(caps):
    return {l.split()[0].upper() for l in caps}


def sasl_mechs(caps):
    for l in caps:
        t = l.split()
        if t and t[0].upper() == "SASL":
            return {m.upper() for m in t[1:]}
    return set()


def login(srv, address, password, which="pop3s", **kw):
    return pop3_session(srv, address, password, which, **kw)


def try_login(srv, address, password, which="pop3s", mech="USER", source=None):
    """The reply to a login attempt (USER/PASS, PLAIN or LOGIN) on a new
    connection. A session that logged in ends with QUIT, as clients end
    theirs: the server releases the maildrop lock before it answers, so the
    next login finds it free (a connection merely dropped keeps the lock
    until the server has noticed: -ERR [IN-USE] meanwhile, RFC 1939 8)."""
    with pop3_connect(srv, which, source=source) as c:
        if mech == "USER":
            r = c.user_pass(address, password)
        elif mech == "PLAIN":
            r = c.auth_plain(address, password)
        else:
            r = c.auth_login(address, password)
        if r.startswith("+OK"):
            quit_ok(c)
        return r


def login_when_free(srv, address, password, which="pop3s", timeout=10):
    """Logs in, retrying (bounded) while a previous session still holds the
    maildrop lock (-ERR [IN-USE]), e.g. after a dropped connection."""
    deadline = time.monotonic() + timeout
    while True:
        c = pop3_connect(srv, which)
        r = c.user_pass(address, password)
        if r.startswith("+OK"):
            return c
        c.close()
        assert r.startswith("-ERR [IN-USE]"), f"login failed: {r!r}"
        assert time.monotonic() < deadline, \
            f"maildrop still locked {timeout}s after the previous session ended: {r!r}"
        time.sleep(0.2)


def quit_ok(c):
    ok(c.cmd("QUIT"), "QUIT")
    assert c.expect_closed(5), "server did not close the connection after QUIT"


# ---------------------------------------------------------------- greeting and CAPA

@pytest.mark.parametrize("which", ["pop3", "pop3s"])
def test_greeting(pop, which):
    with POP3(pop.ports[which], tls=(which == "pop3s")) as c:
        assert c.greeting == GREETING, c.greeting


def test_capa_plain_before_stls(pop):
    with pop3_connect(pop, "pop3", stls=False) as c:
        caps = capa(c)
        names = capa_names(caps)
        for want in ("TOP", "UIDL", "RESP-CODES", "AUTH-RESP-CODE", "PIPELINING", "STLS"):
            assert want in names, f"{want} missing from CAPA before TLS: {caps}"
        assert "USER" not in names, f"USER offered before STLS: {caps}"
        assert "SASL" not in names, f"SASL offered before STLS: {caps}"


@pytest.mark.parametrize("which", ["pop3", "pop3s"])
def test_capa_under_tls(pop, which):
    with pop3_connect(pop, which) as c:
        caps = capa(c)
        names = capa_names(caps)
        for want in ("TOP", "UIDL", "RESP-CODES", "AUTH-RESP-CODE", "PIPELINING", "USER"):
            assert want in names, f"{want} missing from CAPA under TLS ({which}): {caps}"
        assert {"PLAIN", "LOGIN"} <= sasl_mechs(caps), f"SASL PLAIN LOGIN not offered: {caps}"
        assert "STLS" not in names, f"STLS offered under TLS ({which}): {caps}"


def test_capa_in_transaction(pop):
    address, pw, _ = fill(pop, 0, "capa")
    with login(pop, address, pw, "pop3") as c:
        caps = capa(c)
        names = capa_names(caps)
        assert {"TOP", "UIDL"} <= names, caps
        assert "STLS" not in names, f"STLS offered after login: {caps}"
        quit_ok(c)


# ---------------------------------------------------------------- STLS

def test_login_refused_before_stls(pop):
    address, pw, _ = fill(pop, 0, "early")
    with pop3_connect(pop, "pop3", stls=False) as c:
        assert c.cmd(f"USER {address}") == NEED_STLS
        assert c.cmd(f"PASS {pw}") == NEED_STLS
        assert c.auth_plain(address, pw) == NEED_STLS
        assert c.cmd("AUTH PLAIN") == NEED_STLS
        assert c.cmd("AUTH LOGIN") == NEED_STLS
        # the session goes on: CAPA, then STLS and a normal login
        assert "STLS" in capa_names(capa(c))
        c.stls()
        ok(c.user_pass(address, pw), "login after STLS")
        ok(c.cmd("STAT"))
        quit_ok(c)


def test_stls_pipelined_plaintext_discarded(pop):
    """Plaintext sent after STLS in the same packet must not be executed
    inside the TLS session (RFC 2595 / CVE-2011-0411 class)."""
    address, pw, _ = fill(pop, 1, "inject")
    with pop3_connect(pop, "pop3", stls=False) as c:
        c.send(f"STLS\r\nUSER {address}\r\nCAPA\r\n".encode())
        r = c.reply()
        assert r == "+OK Begin TLS negotiation", r
        assert c.buf == b"", f"server answered the injected commands: {c.buf!r}"
        c.sock.settimeout(c.timeout)
        c.sock = client_context().wrap_socket(
            c.sock, server_hostname=pop.hostname)
        c.tls = True
        extra = c.pending(1.0)
        assert extra == b"", f"server sent data after the TLS handshake unasked: {extra!r}"
        # had the injected USER been executed, this PASS would log in
        r = c.cmd(f"PASS {pw}")
        err(r, "PASS after STLS with USER injected before the handshake")
        ok(c.user_pass(address, pw), "normal login")
        st, body = c.cmd_multi("UIDL")
        ok(st)
        quit_ok(c)


def test_stls_refused_when_not_applicable(pop):
    with pop3_connect(pop, "pop3s") as c:
        err(c.cmd("STLS"), "STLS on pop3s")
        assert "USER" in capa_names(capa(c))
    with pop3_connect(pop, "pop3") as c:  # TLS already up
        err(c.cmd("STLS"), "second STLS")
        assert "USER" in capa_names(capa(c))


def test_pop3s_speaks_tls_only(pop):
    """The implicit-TLS port sends no plaintext greeting."""
    with socket.create_connection(("127.0.0.1", pop.ports["pop3s"]), timeout=5) as s:
        s.settimeout(1.5)
        try:
            data = s.recv(100)
        except socket.timeout:
            data = b""
        assert not data.startswith(b"+OK"), f"plaintext greeting on pop3s: {data!r}"


# ---------------------------------------------------------------- logins

@pytest.mark.parametrize("which", ["pop3", "pop3s"])
@pytest.mark.parametrize("mech,initial", [("USER", None), ("PLAIN", True), ("PLAIN", False),
                                          ("LOGIN", True), ("LOGIN", False)])
def test_login_mechanisms(pop, which, mech, initial):
    address, pw, sent = fill(pop, 1, "mech")
    with pop3_connect(pop, which) as c:
        if mech == "USER":
            r = c.user_pass(address, pw)
        elif mech == "PLAIN":
            r = c.auth_plain(address, pw, initial=initial)
        else:
            r = c.auth_login(address, pw, initial=initial)
        ok(r, f"{mech} login")
        st = ok(c.cmd("STAT"))
        assert st.split()[1] == "1", st
        # a second login in TRANSACTION is a state error
        err(c.cmd(f"USER {address}"), "USER in TRANSACTION")
        err(c.auth_plain(address, pw), "AUTH in TRANSACTION")
        ok(c.cmd("NOOP"))
        quit_ok(c)


def test_wrong_password(pop):
    src = fresh_source()
    address, pw, _ = fill(pop, 0, "wrong")
    with pop3_connect(pop, "pop3s", source=src) as c:
        assert c.user_pass(address, pw + "x") == BADPASS
        assert c.auth_plain(address, "not-the-password") == BADPASS
        assert c.auth_login(address, "not-the-password") == BADPASS
        # still in AUTHORIZATION: the right password works
        ok(c.user_pass(address, pw), "right password after failures")
        quit_ok(c)


def test_unknown_user(pop):
    src = fresh_source()
    with pop3_connect(pop, "pop3", source=src) as c:
        assert c.user_pass(f"nobody-here@{DOMAIN}", "whatever-password") == BADPASS
        assert c.auth_plain(f"nobody-{unique()}@{DOMAIN}", "whatever-password") == BADPASS
        assert "USER" in capa_names(capa(c))


def test_pass_without_user(pop):
    with pop3_connect(pop, "pop3s") as c:
        err(c.cmd("PASS something"), "PASS without USER")
        assert "UIDL" in capa_names(capa(c))


def test_auth_cancelled_and_unknown_mechanism(pop):
    address, pw, _ = fill(pop, 0, "cancel")
    with pop3_connect(pop, "pop3s", source=fresh_source()) as c:
        r = c.cmd("AUTH LOGIN")
        assert r.startswith("+ ") or r == "+", f"AUTH LOGIN: {r!r}"
        err(c.cmd("*"), "cancelled AUTH")
        err(c.cmd("AUTH CRAM-MD5"), "unknown mechanism")
        err(c.cmd(f"APOP {address} 0123456789abcdef0123456789abcdef"), "APOP (not offered)")
        ok(c.auth_plain(address, pw), "login after cancel")
        quit_ok(c)


def two_factor_account(srv):
    address, pw, _ = fill(srv, 1, "tfa")
    srv.ok("account", "set", address, "--two-factor", "on")
    return address, pw


def create_app_password(srv, address, name):
    res = srv.ok("app-password", "create", address, name)
    lines = [l.strip() for l in res.stdout.splitlines() if l.strip()]
    ap = lines[-1]
    assert len(ap) == 16 and ap.isalpha(), f"app password is not 16 letters: {ap!r} ({res!r})"
    return ap


def test_two_factor_needs_app_password(pop):
    src = fresh_source()
    address, pw = two_factor_account(pop)
    for which in ("pop3", "pop3s"):
        with pop3_connect(pop, which, source=src) as c:
            assert c.user_pass(address, pw) == NEED_APP
            assert c.auth_plain(address, pw) == NEED_APP
            assert c.auth_login(address, pw) == NEED_APP
    # a wrong password is still just wrong
    assert try_login(pop, address, pw + "nope", source=src) == BADPASS
    ap = create_app_password(pop, address, "mailer")
    for which in ("pop3", "pop3s"):
        for mech in ("USER", "PLAIN", "LOGIN"):
            r = try_login(pop, address, ap, which, mech)
            ok(r, f"app password, {mech} on {which}")
    with login(pop, address, ap) as c:
        assert ok(c.cmd("STAT")).split()[1] == "1"
        quit_ok(c)
    pop.ok("app-password", "revoke", address, "mailer")
    assert try_login(pop, address, ap, source=src) == BADPASS


def test_pop_disabled(pop):
    src = fresh_source()
    address, pw, _ = fill(pop, 1, "nopop")
    pop.ok("account", "set", address, "--pop", "off")
    for which in ("pop3", "pop3s"):
        for mech in ("USER", "PLAIN", "LOGIN"):
            r = try_login(pop, address, pw, which, mech, source=src)
            assert r == POP_OFF, f"{mech} on {which}: {r!r}"
    pop.ok("account", "set", address, "--pop", "on")
    with login(pop, address, pw) as c:
        assert ok(c.cmd("STAT")).split()[1] == "1"
        quit_ok(c)


def test_throttle(make_server):
    """Too many failed logins for an account: even the right password is
    refused for a while (shared with SMTP AUTH: same wording as Gmail's)."""
    srv = make_server(listeners=POP3_LISTENERS)
    address, pw = srv.new_account("thr")
    other, opw = srv.new_account("thr")
    got = [try_login(srv, address, f"wrong-password-{i}") for i in range(10)]
    assert got == [BADPASS] * 10, got
    assert try_login(srv, address, pw) == THROTTLED
    assert try_login(srv, address, pw, "pop3", "PLAIN") == THROTTLED
    assert try_login(srv, address, pw, source="127.0.0.2") == THROTTLED
    ok(try_login(srv, other, opw), "another account from the same address")


# ---------------------------------------------------------------- IN-USE

def test_in_use(pop):
    address, pw, _ = fill(pop, 2, "lock")
    first = login(pop, address, pw, "pop3s")
    try:
        ok(first.cmd("STAT"))
        for which, mech in (("pop3s", "USER"), ("pop3", "PLAIN"), ("pop3", "LOGIN")):
            r = try_login(pop, address, pw, which, mech)
            assert r.startswith("-ERR [IN-USE]"), f"second {mech} login on {which}: {r!r}"
        # the first session is unaffected
        assert ok(first.cmd("STAT")).split()[1] == "2"
        st, _ = first.retr(1)
        ok(st)
        quit_ok(first)
    finally:
        first.close()
    # released at QUIT
    with login(pop, address, pw, "pop3") as c:
        assert ok(c.cmd("STAT")).split()[1] == "2"
        quit_ok(c)


def test_lock_is_per_account(pop):
    """Sessions for different accounts run side by side."""
    a, apw, _ = fill(pop, 1, "lockA")
    b, bpw, _ = fill(pop, 2, "lockB")
    with login(pop, a, apw, "pop3s") as ca, login(pop, b, bpw, "pop3") as cb:
        assert ok(ca.cmd("STAT")).split()[1] == "1"
        assert ok(cb.cmd("STAT")).split()[1] == "2"
        quit_ok(ca)
        quit_ok(cb)


def test_lock_released_when_connection_drops(pop):
    address, pw, _ = fill(pop, 1, "droplock")
    c = login(pop, address, pw)
    ok(c.cmd("STAT"))
    c.close()
    c2 = login_when_free(pop, address, pw)
    with c2:
        assert ok(c2.cmd("STAT")).split()[1] == "1"
        quit_ok(c2)


# ---------------------------------------------------------------- TRANSACTION vs the store

def test_stat_list_uidl(pop):
    address, pw, sent = fill(pop, 3, "stat")
    rows = pop.mailbox_rows(address)
    by_uid = pop.export(address)
    stored = [by_uid[r["uid"]] for r in rows]
    with login(pop, address, pw) as c:
        st = ok(c.cmd("STAT"))
        assert st.split()[:3] == ["+OK", "3", str(sum(len(s) for s in stored))], \
            f"STAT {st!r}; stored sizes {[len(s) for s in stored]}"
        s, body = c.cmd_multi("LIST")
        ok(s)
        assert listing(body) == {i + 1: str(len(stored[i])) for i in range(3)}, body
        for i in range(3):
            r = ok(c.cmd(f"LIST {i + 1}"))
            assert r.split()[1:3] == [str(i + 1), str(len(stored[i]))], r
        s, body = c.cmd_multi("UIDL")
        ok(s)
        uidls = listing(body)
        assert sorted(uidls) == [1, 2, 3], body
        assert len(set(uidls.values())) == 3, f"UIDL values not unique: {uidls}"
        for u in uidls.values():
            assert 1 <= len(u) <= 70 and all(0x21 <= ord(ch) <= 0x7e for ch in u), \
                f"UIDL value outside RFC 1939's rules: {u!r}"
        for n, u in uidls.items():
            r = ok(c.cmd(f"UIDL {n}"))
            assert r.split()[1:3] == [str(n), u], r
        quit_ok(c)


@pytest.mark.parametrize("which", ["pop3", "pop3s"])
def test_retr_matches_store(pop, which):
    bodies = [None,
              ".\r\n..\r\n.x\r\n. \r\nthe last line is a lone dot\r\n.\r\n",
              "",
              "x" * 998 + "\r\n" + "." * 990 + "\r\n" + "Grüße ✓ 日本語\r\n"]
    address, pw, sent = fill(pop, len(bodies), "retr", bodies=bodies)
    rows = pop.mailbox_rows(address)
    by_uid = pop.export(address)
    with login(pop, address, pw, which) as c:
        for i, row in enumerate(rows):
            stored = by_uid[row["uid"]]
            st, body = c.cmd_multi(f"RETR {i + 1}")
            ok(st, f"RETR {i + 1}")
            # on the wire: every line starting with "." carries one more "."
            for line in body.split(CRLF):
                assert not (line.startswith(b".") and not line.startswith(b"..")), \
                    f"RETR {i + 1}: line starting with a dot not byte-stuffed: {line[:60]!r}"
            got = pop3_unstuff(body)
            assert got == stored, f"RETR {i + 1} differs from `mailbox cat` ({len(got)} vs " \
                                  f"{len(stored)} bytes)"
            assert_stored_exactly(got, sent[i])
            m = re.match(r"^\+OK (\d+) octets", st)
            if m:
                assert int(m.group(1)) == len(stored), f"RETR status {st!r} vs {len(stored)}"
        quit_ok(c)


def test_retr_large_message(pop):
    line = "0123456789 ÄÖÜ .... abcdefghijklmnopqrstuvwxyz ABCDEFGHIJKLMNOPQRSTUVWXYZ\r\n"
    body = "".join(("." if j % 5 == 0 else "") + line for j in range((1 << 20) // len(line) + 1))
    address, pw, sent = fill(pop, 1, "big", bodies=[body])
    assert len(sent[0]) > 1 << 20
    stored = pop.fetch_one(address)
    with login(pop, address, pw) as c:
        st, got = c.retr(1, timeout=60)
        ok(st)
        assert got == stored, f"RETR of a 1 MiB message differs ({len(got)} vs {len(stored)})"
        quit_ok(c)


def test_top(pop):
    body = "line one\r\n.line two with dot\r\nline three\r\nline four\r\n"
    address, pw, sent = fill(pop, 1, "top", bodies=[body])
    stored = pop.fetch_one(address)
    head, rest = stored.split(b"\r\n\r\n", 1)
    blines = rest.split(CRLF)[:-1]
    with login(pop, address, pw) as c:
        for n in (0, 1, 2, 4, 100):
            st, b = c.cmd_multi(f"TOP 1 {n}")
            ok(st, f"TOP 1 {n}")
            want = head + b"\r\n\r\n" + b"".join(l + CRLF for l in blines[:n])
            assert pop3_unstuff(b) == want, f"TOP 1 {n}: {pop3_unstuff(b)!r} != {want!r}"
        quit_ok(c)


def test_noop_rset_quit_replies(pop):
    address, pw, _ = fill(pop, 1, "noop")
    with login(pop, address, pw) as c:
        ok(c.cmd("NOOP"))
        ok(c.cmd("RSET"))
        ok(c.cmd("NOOP"))
        quit_ok(c)
    with pop3_connect(pop, "pop3") as c:
        quit_ok(c)  # QUIT in AUTHORIZATION


def test_pipelined_commands(pop):
    address, pw, _ = fill(pop, 2, "pipe")
    with pop3_connect(pop, "pop3s") as c:
        c.send(f"USER {address}\r\nPASS {pw}\r\nSTAT\r\nLIST\r\nUIDL 2\r\nNOOP\r\nRETR 1\r\n"
               f"QUIT\r\n".encode())
        ok(c.reply(), "USER")
        ok(c.reply(), "PASS")
        assert ok(c.reply(), "STAT").split()[1] == "2"
        ok(c.reply(), "LIST")
        assert sorted(listing(c.multi())) == [1, 2]
        assert ok(c.reply(), "UIDL 2").split()[1] == "2"
        ok(c.reply(), "NOOP")
        ok(c.reply(), "RETR 1")
        assert message_id_of(pop3_unstuff(c.multi())), "RETR 1 body"
        ok(c.reply(), "QUIT")
        assert c.expect_closed(5)


def test_snapshot_at_login(pop):
    """Mail that arrives during a session shows up in the next one."""
    address, pw, _ = fill(pop, 1, "snap")
    with login(pop, address, pw) as c:
        assert ok(c.cmd("STAT")).split()[1] == "1"
        deliver(pop, address, [make_message("someone@remote.test", address)])
        assert ok(c.cmd("STAT")).split()[1] == "1"
        err(c.cmd("LIST 2"), "message that arrived after login")
        quit_ok(c)
    with login(pop, address, pw) as c:
        assert ok(c.cmd("STAT")).split()[1] == "2"
        quit_ok(c)


def test_uidl_stable_across_sessions(pop):
    address, pw, sent = fill(pop, 4, "uidl")

    def uidl_by_msgid(c):
        st, body = c.cmd_multi("UIDL")
        ok(st)
        out = {}
        for n, u in listing(body).items():
            st, m = c.retr(n)
            ok(st)
            out[message_id_of(m)] = u
        return out

    with login(pop, address, pw, "pop3s") as c:
        first = uidl_by_msgid(c)
        quit_ok(c)
    assert len(first) == 4 and len(set(first.values())) == 4, first
    with login(pop, address, pw, "pop3") as c:
        assert uidl_by_msgid(c) == first, "UIDL values changed between sessions"
        # delete the first and third messages
        ok(c.cmd("DELE 1"))
        ok(c.cmd("DELE 3"))
        quit_ok(c)
    deleted = {message_id_of(sent[0]), message_id_of(sent[2])}
    deliver(pop, address, [make_message("someone@remote.test", address)])
    with login(pop, address, pw, "pop3s") as c:
        now = uidl_by_msgid(c)
        quit_ok(c)
    assert len(now) == 3, now
    for mid, u in first.items():
        if mid in deleted:
            assert mid not in now
        else:
            assert now[mid] == u, f"{mid}: UIDL {u!r} became {now[mid]!r} after deletions"
    new = [u for mid, u in now.items() if mid not in first]
    assert len(new) == 1 and new[0] not in first.values(), \
        f"new message reuses a UIDL: {new} vs {first}"


# ---------------------------------------------------------------- DELE / RSET / QUIT

def test_dele_quit_removes_from_store(pop):
    address, pw, sent = fill(pop, 3, "dele")
    rows = pop.mailbox_rows(address)
    with login(pop, address, pw) as c:
        st, m2 = c.retr(2)
        ok(st)
        ok(c.cmd("DELE 2"), "DELE 2")
        assert ok(c.cmd("STAT")).split()[1] == "2", "STAT after DELE"
        s, body = c.cmd_multi("LIST")
        assert sorted(listing(body)) == [1, 3], body
        s, body = c.cmd_multi("UIDL")
        assert sorted(listing(body)) == [1, 3], body
        for cmd in ("RETR 2", "TOP 2 0", "LIST 2", "UIDL 2", "DELE 2"):
            err(c.cmd(cmd), f"{cmd} of a deleted message")
            ok(c.cmd("NOOP"))
        # not yet removed: the store changes only at QUIT (UPDATE state)
        assert [r["uid"] for r in pop.mailbox_rows(address)] == [r["uid"] for r in rows]
        quit_ok(c)
    after = pop.mailbox_rows(address)
    assert [r["uid"] for r in after] == [rows[0]["uid"], rows[2]["uid"]], \
        f"INBOX after DELE 2 + QUIT: {after}"
    assert message_id_of(m2) == message_id_of(sent[1])
    with login(pop, address, pw) as c:
        assert ok(c.cmd("STAT")).split()[1] == "2"
        st, m = c.retr(2)
        assert message_id_of(m) == message_id_of(sent[2])
        quit_ok(c)


def test_dele_all_then_quit(pop):
    address, pw, _ = fill(pop, 3, "deleall")
    with login(pop, address, pw, "pop3") as c:
        for n in (1, 2, 3):
            ok(c.cmd(f"DELE {n}"))
        assert ok(c.cmd("STAT")).split()[1:3] == ["0", "0"]
        quit_ok(c)
    assert pop.mailbox_rows(address) == []


def test_dele_rset_keeps(pop):
    address, pw, _ = fill(pop, 2, "rset")
    rows = pop.mailbox_rows(address)
    with login(pop, address, pw) as c:
        ok(c.cmd("DELE 1"))
        ok(c.cmd("DELE 2"))
        assert ok(c.cmd("STAT")).split()[1] == "0"
        ok(c.cmd("RSET"))
        assert ok(c.cmd("STAT")).split()[1] == "2", "RSET did not unmark the deletions"
        st, _ = c.retr(1)
        ok(st, "RETR after RSET")
        quit_ok(c)
    assert [r["uid"] for r in pop.mailbox_rows(address)] == [r["uid"] for r in rows]


def test_dropped_connection_removes_nothing(pop):
    address, pw, _ = fill(pop, 2, "drop")
    rows = pop.mailbox_rows(address)
    c = login(pop, address, pw)
    ok(c.cmd("DELE 1"))
    ok(c.cmd("DELE 2"))
    c.close()  # no QUIT: no UPDATE state
    c2 = login_when_free(pop, address, pw)
    with c2:
        assert ok(c2.cmd("STAT")).split()[1] == "2"
        quit_ok(c2)
    assert [r["uid"] for r in pop.mailbox_rows(address)] == [r["uid"] for r in rows]


# ---------------------------------------------------------------- bad input

BAD_NUMBERS = ["0", "-1", "99999999999999999999", "18446744073709551617", "abc", "1x", "",
               "4"]


@pytest.mark.parametrize("cmd", ["RETR", "DELE", "LIST", "UIDL", "TOP"])
def test_bad_message_numbers(pop, cmd):
    address, pw, _ = fill(pop, 3, "badnum")
    with login(pop, address, pw) as c:
        for arg in BAD_NUMBERS:
            if cmd in ("LIST", "UIDL") and arg == "":
                continue  # the no-argument forms are valid
            if cmd == "TOP":
                line = f"TOP {arg} 1" if arg else "TOP"
            else:
                line = f"{cmd} {arg}".rstrip()
            r = c.cmd(line)
            err(r, f"{line!r}")
            assert c.buf == b"", f"{line!r}: data after -ERR: {c.buf[:200]!r}"
            ok(c.cmd("NOOP"), f"NOOP after {line!r}")
        assert ok(c.cmd("STAT")).split()[1] == "3", "a bad command changed the maildrop"
        quit_ok(c)
    assert len(pop.mailbox_rows(address)) == 3


def test_top_bad_line_counts(pop):
    address, pw, _ = fill(pop, 1, "topbad")
    with login(pop, address, pw) as c:
        for line in ("TOP 1", "TOP 1 -1", "TOP 1 abc", "TOP 1 99999999999999999999x",
                     "TOP 2 0"):
            err(c.cmd(line), line)
            ok(c.cmd("NOOP"))
        quit_ok(c)


def test_commands_in_wrong_state(pop):
    address, pw, _ = fill(pop, 1, "state")
    with pop3_connect(pop, "pop3s") as c:
        for line in ("STAT", "LIST", "LIST 1", "UIDL", "RETR 1", "TOP 1 0", "DELE 1", "RSET",
                     "NOOP"):
            err(c.cmd(line), f"{line} before login")
        assert "USER" in capa_names(capa(c))
        ok(c.user_pass(address, pw), "login after the refusals")
        for line in (f"USER {address}", f"PASS {pw}", "AUTH PLAIN", "STLS", "APOP a b"):
            err(c.cmd(line), f"{line} in TRANSACTION")
            ok(c.cmd("NOOP"))
        assert ok(c.cmd("STAT")).split()[1] == "1"
        quit_ok(c)


def test_unknown_commands(pop):
    address, pw, _ = fill(pop, 1, "unk")
    with pop3_connect(pop, "pop3s") as c:
        for line in ("FOOBAR", "HELO x", "EHLO x", "XYZZY 1 2 3", "", " ", "RETR1"):
            err(c.cmd(line), f"{line!r} in AUTHORIZATION")
        ok(c.user_pass(address, pw))
        for line in ("FOOBAR", "", "LIST1", "DELETE 1"):
            err(c.cmd(line), f"{line!r} in TRANSACTION")
            ok(c.cmd("NOOP"))
        quit_ok(c)


@pytest.mark.parametrize("length", [1100, 5000, 70000])
def test_overlong_lines(pop, length):
    address, pw, _ = fill(pop, 1, "long")
    with pop3_connect(pop, "pop3s") as c:
        r = c.cmd("USER " + "a" * length)
        err(r, f"USER with a {length}-octet line")
        assert c.buf == b"", f"more than one reply to one overlong line: {c.buf[:200]!r}"
        ok(c.user_pass(address, pw), "login after an overlong line")
        r = c.cmd("NOOP " + "x" * length)
        err(r, f"NOOP with a {length}-octet line")
        ok(c.cmd("NOOP"), "session usable after an overlong line")
        r = c.cmd("RETR " + "1" * length)
        err(r, f"RETR with a {length}-octet line")
        assert ok(c.cmd("STAT")).split()[1] == "1"
        quit_ok(c)


def test_bad_auth_exchanges(pop):
    src = fresh_source()
    address, pw, _ = fill(pop, 0, "badauth")
    with pop3_connect(pop, "pop3", source=src) as c:
        err(c.cmd("AUTH PLAIN !!!notbase64!!!"), "AUTH PLAIN with bad base64")
        r = c.cmd("AUTH PLAIN")
        assert r.startswith("+"), r
        err(c.cmd("%%%"), "bad base64 answer to the challenge")
        ok(c.auth_plain(address, pw), "login after bad AUTH exchanges")
        quit_ok(c)


# ---------------------------------------------------------------- Gmail's POP options

def set_pop(srv, address, *args):
    srv.ok("account", "set", address, *args)


def retr_some_then_quit(srv, address, pw, ns):
    with login(srv, address, pw) as c:
        got = {}
        for n in ns:
            st, m = c.retr(n)
            ok(st, f"RETR {n}")
            got[n] = m
        quit_ok(c)
    return got


def test_pop_after_keep(pop):
    address, pw, sent = fill(pop, 3, "keep")
    set_pop(pop, address, "--pop-after", "keep")
    before = pop.mailbox_rows(address)
    retr_some_then_quit(pop, address, pw, [1, 2])
    after = pop.mailbox_rows(address)
    assert [r["uid"] for r in after] == [r["uid"] for r in before], after
    for r in after:
        assert "\\Seen" not in flags(r), f"keep marked a message read: {r['line']}"
    assert rows_of(pop, address, "Archive") == []
    with login(pop, address, pw) as c:  # offered again
        assert ok(c.cmd("STAT")).split()[1] == "3"
        quit_ok(c)


def test_pop_after_mark_read(pop):
    address, pw, sent = fill(pop, 3, "markread")
    set_pop(pop, address, "--pop-after", "mark-read")
    before = pop.mailbox_rows(address)
    retr_some_then_quit(pop, address, pw, [1, 2])
    after = pop.mailbox_rows(address)
    assert [r["uid"] for r in after] == [r["uid"] for r in before], after
    assert "\\Seen" in flags(after[0]) and "\\Seen" in flags(after[1]), after
    assert "\\Seen" not in flags(after[2]), f"message not downloaded was marked: {after[2]}"
    assert rows_of(pop, address, "Archive") == []


def test_pop_after_archive(pop):
    address, pw, sent = fill(pop, 3, "archive")
    set_pop(pop, address, "--pop-after", "archive")
    stored = stored_by_msgid(pop, address)
    retr_some_then_quit(pop, address, pw, [1, 2])
    inbox = stored_by_msgid(pop, address)
    assert list(inbox) == [message_id_of(sent[2])], f"INBOX after archive: {list(inbox)}"
    archived = stored_by_msgid(pop, address, "Archive")
    assert sorted(archived) == sorted([message_id_of(sent[0]), message_id_of(sent[1])]), \
        f"Archive after archive: {list(archived)}"
    for mid, data in archived.items():
        assert data == stored[mid], f"{mid}: archived copy differs from the INBOX copy"
    with login(pop, address, pw) as c:
        assert ok(c.cmd("STAT")).split()[1] == "1"
        quit_ok(c)


def test_pop_after_archive_with_dele(pop):
    """DELE wins over --pop-after archive: a message RETR'd and deleted in
    the session is gone, not archived; the other RETR'd one is archived."""
    address, pw, sent = fill(pop, 3, "archdele")
    set_pop(pop, address, "--pop-after", "archive")
    with login(pop, address, pw) as c:
        ok(c.retr(1)[0])
        ok(c.cmd("DELE 1"))
        ok(c.retr(2)[0])
        quit_ok(c)
    assert list(stored_by_msgid(pop, address)) == [message_id_of(sent[2])]
    assert list(stored_by_msgid(pop, address, "Archive")) == [message_id_of(sent[1])]


def test_pop_after_delete(pop):
    address, pw, sent = fill(pop, 3, "popdel")
    set_pop(pop, address, "--pop-after", "delete")
    rows = pop.mailbox_rows(address)
    # a session that downloads but ends without QUIT changes nothing
    c = login(pop, address, pw)
    ok(c.retr(1)[0])
    c.close()
    c = login_when_free(pop, address, pw)
    with c:
        assert ok(c.cmd("STAT")).split()[1] == "3", "dropped session applied --pop-after"
        quit_ok(c)
    assert len(pop.mailbox_rows(address)) == 3
    retr_some_then_quit(pop, address, pw, [1, 2])
    after = pop.mailbox_rows(address)
    assert [r["uid"] for r in after] == [rows[2]["uid"]], f"INBOX after delete: {after}"
    assert rows_of(pop, address, "Archive") == []


def test_dele_deletes_with_pop_after_keep(pop):
    """DELE in a session always deletes, whatever --pop-after says."""
    address, pw, sent = fill(pop, 2, "mixed")
    set_pop(pop, address, "--pop-after", "keep")
    with login(pop, address, pw) as c:
        ok(c.retr(1)[0])
        ok(c.cmd("DELE 1"))
        quit_ok(c)
    assert list(stored_by_msgid(pop, address)) == [message_id_of(sent[1])]


def test_pop_scope_from_now(pop):
    address, pw, old = fill(pop, 2, "fromnow")
    time.sleep(1.1)  # internal dates have one-second resolution
    set_pop(pop, address, "--pop-scope", "from-now")
    time.sleep(1.1)
    new = [make_message("someone@remote.test", address, subject=f"new {i}") for i in range(2)]
    deliver(pop, address, new)
    with login(pop, address, pw) as c:
        st = ok(c.cmd("STAT"))
        assert st.split()[1] == "2", f"from-now offers older mail: {st!r}"
        got = [message_id_of(c.retr(n)[1]) for n in (1, 2)]
        assert got == [message_id_of(m) for m in new], got
        err(c.cmd("RETR 3"))
        quit_ok(c)
    assert len(pop.mailbox_rows(address)) == 4, "from-now must not touch older mail"
    set_pop(pop, address, "--pop-scope", "all")
    with login(pop, address, pw) as c:
        assert ok(c.cmd("STAT")).split()[1] == "4", "--pop-scope all does not offer everything"
        got = [message_id_of(c.retr(n)[1]) for n in (1, 2, 3, 4)]
        assert got == [message_id_of(m) for m in old + new], got
        quit_ok(c)


@pytest.mark.parametrize("after", ["keep", "mark-read", "archive", "delete"])
def test_expire_capability_matches_pop_after(pop, after):
    """RFC 2449 6.7: EXPIRE NEVER asserts that the server never removes
    messages from the maildrop; with --pop-after archive or delete every
    downloaded message leaves the maildrop at QUIT, so once the user is
    known (after login) the server must not claim NEVER (EXPIRE 0 is the
    value for "removed after download").  EXPIRE is optional: only checked
    when advertised."""
    address, pw, _ = fill(pop, 0, "expire")
    set_pop(pop, address, "--pop-after", after)
    with login(pop, address, pw) as c:
        caps = capa(c)
        quit_ok(c)
    expire = [l.split()[1:] for l in caps if l.split()[0].upper() == "EXPIRE"]
    if not expire:
        return
    value = expire[0][0].upper() if expire[0] else ""
    if after in ("archive", "delete"):
        assert value == "0", \
            f"--pop-after {after}: CAPA after login says EXPIRE {' '.join(expire[0])}; {caps}"
    else:
        assert value == "NEVER" or value.isdigit(), caps
