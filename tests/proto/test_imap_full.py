"""IMAP with Python's imaplib as the client, on a real `roost serve`.

test_full_session is one realistic session that uses every command the
issue lists, in the order a mail client would (143: CAPABILITY, NOOP,
STARTTLS, AUTHENTICATE; then ID, ENABLE, NAMESPACE, LIST, CREATE,
SUBSCRIBE/LSUB/UNSUBSCRIBE, RENAME, DELETE, STATUS, APPEND, SELECT, FETCH,
STORE, SEARCH, COPY, MOVE, EXPUNGE, the UID variants, CHECK, CLOSE,
EXAMINE, UNSELECT, GETQUOTAROOT/GETQUOTA, IDLE, LOGOUT), and a second one
over 993 with LOGIN that finds everything the first left behind.  Every
step checks real results: message bytes, counts, flags, UIDs.

The other tests are the issue's limits and safety rules: line length, a
2 GB literal refused without allocating it, nesting depth, commands without
progress, mailbox names with "..", a leading "/" or control characters, one
account never seeing another's data, IMAP turned off for an account,
two-factor accounts (app passwords only), LOGINDISABLED before STARTTLS."""
import base64
import imaplib
import os
import re
import time

import pytest

from conftest import (CRLF, DOMAIN, IMAP_LISTENERS, IMAPRaw, deliver_bulk, imap_connect,
                      imap_idle_done, imap_idle_start, imap_idle_until, imap_login, imap_raw,
                      imap_refresh_caps, make_message, numbered_messages, proc_status,
                      smtp_deliver_one)


# ---------------------------------------------------------------- helpers

def ok(res, what):
    typ, data = res
    assert typ == "OK", f"{what}: {typ} {data!r}"
    return data


def untagged(m, name):
    """The untagged responses NAME collected since the last call (popped)."""
    typ, data = m.response(name)
    return [d for d in (data or []) if d is not None]


LIST_RE = re.compile(rb'^\((?P<attrs>[^)]*)\) (?P<delim>NIL|"[^"]*") (?P<name>.*)$')


def unquote(b):
    if b.startswith(b'"') and b.endswith(b'"'):
        return re.sub(rb'\\(.)', rb'\1', b[1:-1])
    return b


def listing(data):
    """{name: set(attributes)} from imaplib LIST/LSUB data."""
    out = {}
    for d in data:
        if d is None:
            continue
        if isinstance(d, tuple):          # name sent as a literal
            head, name = d
            m = re.match(rb'^\((?P<attrs>[^)]*)\) (?P<delim>NIL|"[^"]*") ', head)
            assert m, f"LIST response {d!r}"
        else:
            m = LIST_RE.match(d)
            assert m, f"LIST response {d!r}"
            name = unquote(m.group("name"))
            assert m.group("delim") == b'"/"', f"hierarchy delimiter is not /: {d!r}"
        out[name.decode()] = {a.lower() for a in m.group("attrs").decode().split()}
    return out


def status_items(data):
    """{'MESSAGES': 3, ...} from imaplib STATUS data."""
    m = re.search(rb"\(([^)]*)\)\s*$", data[0])
    assert m, data
    t = m.group(1).split()
    return {t[i].decode().upper(): int(t[i + 1]) for i in range(0, len(t), 2)}


def fetch_items(data):
    """{seq: {ITEM: value}} from imaplib FETCH data, for the simple items
    (UID FLAGS RFC822.SIZE MODSEQ) and one literal (the body) per message."""
    out = {}
    cur = None
    for d in data:
        if d is None:
            continue
        if isinstance(d, tuple):
            head, lit = d
            seq = int(head.split()[0])
            cur = out.setdefault(seq, {})
            cur["literal"] = lit
            text = head
        else:
            if d.strip() == b")" or not re.match(rb"^\d+ \(", d):
                if cur is not None:
                    text = d
                else:
                    continue
            else:
                seq = int(d.split()[0])
                cur = out.setdefault(seq, {})
                text = d
        for k, v in re.findall(rb"(UID|RFC822\.SIZE|MODSEQ) \(?(\d+)\)?", text):
            cur[k.decode()] = int(v)
        f = re.search(rb"FLAGS \(([^)]*)\)", text)
        if f:
            cur["FLAGS"] = set(f.group(1).decode().split())
    return out


def code_of(data):
    """The response code text in a tagged OK ('[APPENDUID 1 2] ...' -> 'APPENDUID 1 2')."""
    text = data[0].decode() if data and isinstance(data[0], bytes) else str(data)
    m = re.match(r"^\[([^\]]*)\]", text)
    return m.group(1) if m else None


def plain_auth(address, password):
    return lambda _challenge: f"\0{address}\0{password}".encode()


@pytest.fixture(scope="module")
def srv(imap_server):
    return imap_server


# ---------------------------------------------------------------- the full session

def test_full_session(srv):
    address, pw = srv.new_account("full")
    srv.ok("account", "set", address, "--quota", "10M")
    msgs = numbered_messages(address, 3, prefix="inbox")
    for i, msg in enumerate(msgs):      # one by one: UID order = this order
        smtp_deliver_one(srv, address, msg)
        srv.wait_for_message(address, i + 1)
    rows = srv.wait_for_message(address, 3)
    by_uid = srv.export(address)
    stored = [by_uid[r["uid"]] for r in rows]
    for s, sent in zip(stored, msgs):
        assert s.endswith(sent), "INBOX does not hold the messages in delivery order"

    # -- 143: not authenticated, plaintext
    m = imaplib.IMAP4("127.0.0.1", srv.ports["imap"], timeout=60)
    assert m.welcome.startswith(b"* OK"), m.welcome
    caps = set(ok(m.capability(), "CAPABILITY")[-1].decode().upper().split())
    assert {"IMAP4REV1", "STARTTLS", "LOGINDISABLED"} <= caps, caps
    ok(m.noop(), "NOOP")
    m.starttls(ssl_context=srv_context(srv))
    caps = set(ok(m.capability(), "CAPABILITY after STARTTLS")[-1].decode().upper().split())
    assert "LOGINDISABLED" not in caps and "STARTTLS" not in caps, caps
    assert "AUTH=PLAIN" in caps, caps
    ok(m.authenticate("PLAIN", plain_auth(address, pw)), "AUTHENTICATE PLAIN")
    caps = set(imap_refresh_caps(m))
    want = {"IMAP4REV1", "IDLE", "NAMESPACE", "ID", "ENABLE", "UIDPLUS", "MOVE", "UNSELECT", "SPECIAL-USE",
            "CONDSTORE", "QRESYNC", "QUOTA", "LITERAL+"}
    assert want <= caps, f"missing after login: {want - caps}"

    # -- ID, ENABLE, NAMESPACE
    ok(m.xatom("ID", '("name" "roost-proto" "version" "1.0")'), "ID")
    ids = untagged(m, "ID")
    assert ids and (ids[0] == b"NIL" or ids[0].startswith(b"(")), f"* ID {ids!r}"
    ok(m.enable("CONDSTORE"), "ENABLE CONDSTORE")
    assert any(b"CONDSTORE" in e.upper() for e in untagged(m, "ENABLED")), "no * ENABLED CONDSTORE"
    ns = ok(m.namespace(), "NAMESPACE")
    assert ns[0].replace(b" ", b"") == b'(("""/"))NILNIL', f"NAMESPACE {ns!r}"

    # -- LIST, CREATE, SUBSCRIBE / LSUB / UNSUBSCRIBE, RENAME, DELETE
    boxes = listing(ok(m.list('""', "*"), "LIST"))
    assert "INBOX" in boxes, boxes
    special = listing(ok(m.list('""', "* RETURN (SPECIAL-USE)"), "LIST RETURN (SPECIAL-USE)"))
    for name, use in (("Sent", "\\sent"), ("Drafts", "\\drafts"), ("Trash", "\\trash")):
        assert name in special and use in special[name], f"{name}: {special}"
    for name in ("Work", "Work/Projects", "Old Stuff", "Reports"):
        ok(m.create(f'"{name}"'), f"CREATE {name}")
    assert m.create("Work")[0] == "NO", "CREATE of an existing mailbox"
    boxes = listing(ok(m.list('""', "*"), "LIST"))
    assert {"Work", "Work/Projects", "Old Stuff", "Reports"} <= set(boxes), boxes
    assert "\\haschildren" in boxes["Work"], boxes["Work"]
    top = listing(ok(m.list('""', "%"), "LIST %"))
    assert "Work" in top and "Work/Projects" not in top, top
    assert set(listing(ok(m.list('"Work/"', "%"), "LIST Work/ %"))) == {"Work/Projects"}
    ok(m.subscribe("Work"), "SUBSCRIBE")
    ok(m.subscribe("Reports"), "SUBSCRIBE")
    subs = listing(ok(m.lsub('""', "*"), "LSUB"))
    assert {"Work", "Reports"} <= set(subs) and "Work/Projects" not in subs, subs
    ok(m.unsubscribe("Reports"), "UNSUBSCRIBE")
    subs = listing(ok(m.lsub('""', "*"), "LSUB"))
    assert "Work" in subs and "Reports" not in subs, subs
    ok(m.rename('"Old Stuff"', '"Older Stuff"'), "RENAME")
    ok(m.rename("Work", "Job"), "RENAME with a child")
    boxes = listing(ok(m.list('""', "*"), "LIST"))
    assert "Older Stuff" in boxes and "Old Stuff" not in boxes, boxes
    assert {"Job", "Job/Projects"} <= set(boxes) and "Work" not in boxes, boxes
    ok(m.delete('"Older Stuff"'), "DELETE")
    ok(m.delete("Job/Projects"), "DELETE")
    assert m.delete("INBOX")[0] == "NO", "DELETE INBOX must fail"
    assert m.select("Nowhere")[0] == "NO", "SELECT of a missing mailbox"
    boxes = listing(ok(m.list('""', "*"), "LIST"))
    assert "Older Stuff" not in boxes and "Job/Projects" not in boxes and "Job" in boxes, boxes

    # -- STATUS, APPEND
    st = status_items(ok(m.status("INBOX", "(MESSAGES UNSEEN UIDNEXT UIDVALIDITY)"), "STATUS"))
    assert st["MESSAGES"] == 3 and st["UNSEEN"] == 3, st
    inbox_validity = st["UIDVALIDITY"]
    appended = make_message("me@remote.test", address, subject="appended draft",
                            body="An appended message.\r\n.dot line\r\n")
    data = ok(m.append("Job", "(\\Flagged $Todo)", '"14-Mar-2024 09:30:00 +0100"', appended),
              "APPEND")
    code = code_of(data)
    assert code and code.split()[0] == "APPENDUID", f"APPEND: {data!r}"
    job_validity, job_uid = int(code.split()[1]), int(code.split()[2])
    st = status_items(ok(m.status("Job", "(MESSAGES UIDVALIDITY UIDNEXT)"), "STATUS Job"))
    assert st["MESSAGES"] == 1 and st["UIDVALIDITY"] == job_validity and \
        st["UIDNEXT"] > job_uid, st

    # -- SELECT, FETCH
    typ, data = m.select("INBOX")
    assert typ == "OK" and data == [b"3"], f"SELECT: {typ} {data!r}"
    assert untagged(m, "UIDVALIDITY") == [str(inbox_validity).encode()]
    flags = untagged(m, "FLAGS")
    assert flags and all(f in flags[0] for f in (b"\\Seen", b"\\Deleted", b"\\Flagged")), flags
    f = fetch_items(ok(m.fetch("1:*", "(UID FLAGS RFC822.SIZE BODY.PEEK[])"), "FETCH"))
    assert sorted(f) == [1, 2, 3], f
    for i in (1, 2, 3):
        assert f[i]["literal"] == stored[i - 1], f"FETCH {i} BODY[] differs from the store"
        assert f[i]["RFC822.SIZE"] == len(stored[i - 1])
        assert f[i]["FLAGS"] == set(), f[i]
    uids = [f[i]["UID"] for i in (1, 2, 3)]
    assert uids == sorted(uids) and uids == [r["uid"] for r in rows], (uids, rows)
    data = ok(m.fetch("2", "(BODY[HEADER.FIELDS (SUBJECT)])"), "FETCH header")
    assert data[0][1] == b"Subject: inbox 1\r\n\r\n", data
    f = fetch_items(ok(m.fetch("2", "(FLAGS)"), "FETCH FLAGS"))
    assert "\\Seen" in f[2]["FLAGS"], f"BODY[] did not set \\Seen: {f}"

    # -- STORE, SEARCH
    f = fetch_items(ok(m.store("1", "+FLAGS", "(\\Flagged $Important)"), "STORE"))
    assert f[1]["FLAGS"] == {"\\Flagged", "$Important"}, f
    assert f[1].get("MODSEQ", 0) > 0, f"CONDSTORE enabled: STORE reports MODSEQ: {f}"
    ok(m.store("1", "-FLAGS.SILENT", "(\\Flagged)"), "STORE .SILENT")
    f = fetch_items(ok(m.fetch("1", "(FLAGS)"), "FETCH"))
    assert f[1]["FLAGS"] == {"$Important"}, f
    assert ok(m.search(None, "FLAGGED"), "SEARCH") == [b""]
    assert ok(m.search(None, "KEYWORD", "$Important"), "SEARCH") == [b"1"]
    assert ok(m.search(None, "SUBJECT", '"inbox 2"'), "SEARCH") == [b"3"]
    assert ok(m.search(None, "SEEN"), "SEARCH") == [b"2"]
    assert ok(m.search(None, "UNSEEN"), "SEARCH") == [b"1 3"]
    assert ok(m.uid("SEARCH", "ALL"), "UID SEARCH")[0].split() == [str(u).encode() for u in uids]

    # -- COPY, MOVE, EXPUNGE
    data = ok(m.copy("1", "Job"), "COPY")
    code = code_of(data)
    assert code and code.split()[0] == "COPYUID" and code.split()[2] == str(uids[0]), data
    ok(m.xatom("MOVE", "3", "Job"), "MOVE")
    assert untagged(m, "EXPUNGE") == [b"3"], "MOVE of message 3 did not expunge it"
    st = status_items(ok(m.status("Job", "(MESSAGES)"), "STATUS"))
    assert st["MESSAGES"] == 3, st
    ok(m.store("2", "+FLAGS", "(\\Deleted)"), "STORE \\Deleted")
    typ, data = m.expunge()
    assert typ == "OK" and data == [b"2"], f"EXPUNGE: {typ} {data!r}"
    assert ok(m.uid("SEARCH", "ALL"), "UID SEARCH")[0].split() == [str(uids[0]).encode()]

    # -- UID FETCH / STORE / COPY / MOVE / EXPUNGE
    u = uids[0]
    f = fetch_items(ok(m.uid("FETCH", str(u), "(FLAGS BODY.PEEK[])"), "UID FETCH"))
    assert f[1]["UID"] == u and f[1]["literal"] == stored[0], f
    ok(m.uid("COPY", str(u), "Reports"), "UID COPY")
    ok(m.append("INBOX", None, None, appended), "APPEND to the selected INBOX")
    f = fetch_items(ok(m.fetch("2", "(UID)"), "FETCH"))
    u2 = f[2]["UID"]
    assert u2 > uids[2], "UIDs only grow"
    f = fetch_items(ok(m.uid("STORE", f"{u}:{u2}", "+FLAGS", "(\\Deleted)"), "UID STORE"))
    assert all("\\Deleted" in v["FLAGS"] for v in f.values()) and len(f) == 2, f
    data = ok(m.uid("EXPUNGE", str(u2)), "UID EXPUNGE")
    assert untagged(m, "EXPUNGE") == [b"2"] or data == [b"2"], data
    ok(m.uid("STORE", str(u), "-FLAGS", "(\\Deleted)"), "UID STORE")
    ok(m.uid("MOVE", str(u), "Reports"), "UID MOVE")
    typ, data = m.select("INBOX")
    assert data == [b"0"], f"INBOX after UID MOVE: {data!r}"
    st = status_items(ok(m.status("Reports", "(MESSAGES)"), "STATUS"))
    assert st["MESSAGES"] == 2, st

    # -- CHECK, CLOSE (expunges), EXAMINE (read-only), UNSELECT (does not)
    m.select("Job")
    ok(m.check(), "CHECK")
    ok(m.store("1", "+FLAGS", "(\\Deleted)"), "STORE")
    ok(m.close(), "CLOSE")
    assert untagged(m, "EXPUNGE") == [], "CLOSE sends no EXPUNGE responses"
    st = status_items(ok(m.status("Job", "(MESSAGES)"), "STATUS"))
    assert st["MESSAGES"] == 2, f"CLOSE did not expunge: {st}"
    typ, data = m.select("Job", readonly=True)
    assert typ == "OK" and data == [b"2"], data
    assert m.store("1", "+FLAGS", "(\\Deleted)")[0] == "NO", "STORE in an EXAMINEd mailbox"
    ok(m.fetch("1:*", "(BODY[])"), "FETCH in EXAMINE")
    f = fetch_items(ok(m.fetch("1:*", "(FLAGS)"), "FETCH"))
    assert all("\\Seen" not in v["FLAGS"] for v in f.values()), f"EXAMINE set \\Seen: {f}"
    ok(m.unselect(), "UNSELECT")
    m.select("Job")
    ok(m.store("1", "+FLAGS", "(\\Deleted)"), "STORE")
    ok(m.unselect(), "UNSELECT")
    st = status_items(ok(m.status("Job", "(MESSAGES)"), "STATUS"))
    assert st["MESSAGES"] == 2, f"UNSELECT expunged: {st}"

    # -- quota (RFC 9208): STORAGE in units of 1024 octets
    data = ok(m.getquotaroot("INBOX"), "GETQUOTAROOT")
    roots, quotas = data
    qr = re.match(rb'^(?i:"INBOX"|INBOX) (.+)$', roots[0]) if roots else None
    assert qr, f"QUOTAROOT {data!r}"
    root = qr.group(1).decode()
    q = re.search(rb"\(STORAGE (\d+) (\d+)\)", quotas[0])
    assert q, f"QUOTA {quotas!r}"
    used, limit = int(q.group(1)), int(q.group(2))
    assert limit == 10 * 1024, f"--quota 10M should be STORAGE limit 10240: {quotas!r}"
    # left: Job = copy of 1 + moved 3; Reports = copy of 1 + moved 1
    total = 3 * len(stored[0]) + len(stored[2])
    assert total // 1024 <= used <= total // 1024 + 1, (used, total)
    q2 = ok(m.getquota(root if root.startswith('"') else f'"{root}"'), "GETQUOTA")
    assert re.search(rb"\(STORAGE %d %d\)" % (used, limit), q2[0]), q2

    # -- IDLE woken by a delivery
    m.select("INBOX")
    tag = imap_idle_start(m)
    _, t250 = smtp_deliver_one(srv, address, numbered_messages(address, 1, "idle")[0])
    line, t, lines = imap_idle_until(m, lambda l: l.rstrip() == b"* 1 EXISTS")
    assert t - t250 <= 1.0, f"IDLE woke {t - t250:.2f}s after the 250"
    ok(imap_idle_done(m, tag), "IDLE DONE")

    # -- LOGOUT
    typ, data = m.logout()
    assert typ == "BYE", (typ, data)

    # -- again over 993 with LOGIN: everything is as the first session left it
    m = imap_login(srv, address, pw, "imaps")
    boxes = listing(ok(m.list('""', "*"), "LIST"))
    assert {"INBOX", "Job", "Reports"} <= set(boxes) and "Work" not in boxes, boxes
    # RFC 3501 6.3.9: the server never removes a name from the subscriptions
    assert "Work" in listing(ok(m.lsub('""', "*"), "LSUB")), "subscription lost by RENAME"
    m.select("Reports", readonly=True)
    f = fetch_items(ok(m.fetch("1:*", "(FLAGS BODY.PEEK[])"), "FETCH"))
    assert [v["literal"] for v in f.values()] == [stored[0], stored[0]]
    assert all(v["FLAGS"] == {"$Important"} for v in f.values()), f
    m.select("Job", readonly=True)
    f = fetch_items(ok(m.fetch("1:*", "(FLAGS BODY.PEEK[])"), "FETCH"))
    assert sorted(v["literal"] for v in f.values()) == sorted([stored[0], stored[2]])
    typ, _ = m.logout()
    assert typ == "BYE"


def srv_context(srv):
    from conftest import imap_context
    return imap_context(srv)


# ---------------------------------------------------------------- login rules

def test_logindisabled_before_starttls(srv):
    address, pw = srv.new_account("plain")
    with IMAPRaw(srv.ports["imap"]) as c:
        u, st = c.ok("CAPABILITY")
        caps = u[0].decode().upper().split()
        assert "LOGINDISABLED" in caps and "STARTTLS" in caps, u
        u, st = c.login(address, pw)
        assert st.startswith(("NO", "BAD")), f"plaintext LOGIN on 143: {st!r}"
        tok = base64.b64encode(f"\0{address}\0{pw}".encode()).decode()
        u, st = c.cmd(f"AUTHENTICATE PLAIN {tok}")
        assert st.startswith(("NO", "BAD")), f"plaintext AUTHENTICATE on 143: {st!r}"
        u, st = c.cmd("SELECT INBOX")
        assert st.startswith(("NO", "BAD")), f"SELECT before login: {st!r}"
        c.starttls()
        u, st = c.ok("CAPABILITY")
        caps = u[0].decode().upper().split()
        assert "LOGINDISABLED" not in caps and "STARTTLS" not in caps, u
        u, st = c.login(address, pw)
        assert st.startswith("OK"), st


def test_wrong_password(srv):
    address, pw = srv.new_account("wrong")
    with imap_raw(srv, "imaps") as c:
        u, st = c.login(address, pw + "x")
        assert st.startswith("NO"), st
        u, st = c.login("nobody@" + DOMAIN, pw)
        assert st.startswith("NO"), st
        u, st = c.cmd("SELECT INBOX")
        assert st.startswith(("NO", "BAD")), st
        u, st = c.login(address, pw)
        assert st.startswith("OK"), st


def test_imap_off_for_account(srv):
    address, pw = srv.new_account("noimap")
    srv.ok("account", "set", address, "--imap", "off")
    for which in ("imaps", "imap"):
        with imap_raw(srv, which) as c:
            u, st = c.login(address, pw)
            assert st.startswith("NO"), f"IMAP off, LOGIN on {which}: {st!r}"
            tok = base64.b64encode(f"\0{address}\0{pw}".encode()).decode()
            u, st = c.cmd(f"AUTHENTICATE PLAIN {tok}")
            assert st.startswith("NO"), f"IMAP off, AUTHENTICATE on {which}: {st!r}"
    srv.ok("account", "set", address, "--imap", "on")
    m = imap_login(srv, address, pw)
    ok(m.select("INBOX"), "SELECT")
    m.logout()


def test_two_factor_app_passwords_only(srv):
    address, pw = srv.new_account("tfa")
    srv.ok("account", "set", address, "--two-factor", "on")
    with imap_raw(srv, "imaps") as c:
        u, st = c.login(address, pw)
        assert st.startswith("NO"), f"two-factor account, account password: {st!r}"
        assert "application-specific password" in st.lower(), st
    res = srv.ok("app-password", "create", address, "phone")
    ap = [l.strip() for l in res.stdout.splitlines() if l.strip()][-1]
    assert len(ap) == 16 and ap.isalpha(), res
    m = imap_login(srv, address, ap)
    ok(m.select("INBOX"), "SELECT")
    m.logout()
    m = imap_connect(srv, "imap")
    ok(m.authenticate("PLAIN", plain_auth(address, ap)), "AUTHENTICATE with an app password")
    m.logout()
    srv.ok("app-password", "revoke", address, "phone")
    with imap_raw(srv, "imaps") as c:
        u, st = c.login(address, ap)
        assert st.startswith("NO"), f"revoked app password: {st!r}"


# ---------------------------------------------------------------- isolation

def send_literal(c, prefix, data, suffix=b""):
    """A command with one synchronizing literal: (untagged, status)."""
    tag = c.next_tag()
    c.send(tag.encode() + b" " + prefix + b"{%d}\r\n" % len(data))
    r = c.reply()
    if not r.startswith(b"+"):
        assert r.startswith(tag.encode() + b" "), r
        return [], r[len(tag) + 1:].decode()
    c.send(data + suffix + CRLF)
    return c.collect(tag)


BAD_NAMES = [b"../escape", b"/leading", b"a/../escape", b"..", b".", b"a/./b", b"Box/..",
             b"ctlchar\x01name", b"tab\tname", b"del\x7fname", b"nul\x00name", b"esc\x1bname"]


def test_mailbox_names_refused(srv):
    address, pw = srv.new_account("names")
    other, opw = srv.new_account("victim")
    with imap_raw(srv, "imaps", address, pw) as c:
        for name in BAD_NAMES:
            for cmd in (b"CREATE ", b"SELECT ", b"STATUS ", b"DELETE "):
                suffix = b" (MESSAGES)" if cmd == b"STATUS " else b""
                u, st = send_literal(c, cmd, name, suffix)
                assert st.startswith(("NO", "BAD")), f"{cmd.decode()}{name!r}: {st!r}"
            u, st = send_literal(c, b"RENAME INBOX ", name)
            assert st.startswith(("NO", "BAD")), f"RENAME INBOX {name!r}: {st!r}"
            if b"\0" not in name:
                q = b'"' + name.replace(b"\\", b"\\\\").replace(b'"', b'\\"') + b'"'
                u, st = c.cmd(b"APPEND " + q + b" {3+}\r\nabc")
                assert st.startswith(("NO", "BAD")), f"APPEND to {name!r}: {st!r}"
        u, st = c.cmd(f'SELECT "../{other}/INBOX"')
        assert st.startswith(("NO", "BAD")), st
        u, st = c.ok('LIST "" "*"')
        names = b"\n".join(u)
        for bad in (b"escape", b"ctlchar", b"tab", b"del", b"nul", b"esc"):
            assert bad not in names, f"a refused name was created: {u!r}"
        u, st = c.ok("NOOP")
    # nothing escaped the account's own directory
    mail = srv.data / "mail"
    for root, dirs, files in os.walk(srv.data):
        for n in dirs + files:
            assert "escape" not in n and "ctlchar" not in n, f"{root}/{n} created"
    assert all("@" in p.name for p in mail.iterdir() if p.is_dir()), list(mail.iterdir())


def test_accounts_isolated(srv):
    a, apw = srv.new_account("alice")
    b, bpw = srv.new_account("bob")
    secret = make_message("x@remote.test", b, subject="bob secret", body="zebra-crossing\r\n")
    deliver_bulk(srv, b, [secret])
    srv.wait_for_message(b, 1)
    ma = imap_login(srv, a, apw)
    mb = imap_login(srv, b, bpw)
    ok(mb.create("BobOnly"), "CREATE")
    boxes = listing(ok(ma.list('""', "*"), "LIST"))
    assert "BobOnly" not in boxes, boxes
    assert ma.select("BobOnly")[0] == "NO"
    ns = ok(ma.namespace(), "NAMESPACE")[0]
    assert ns.endswith(b"NIL NIL"), f"other users' / shared namespaces offered: {ns!r}"
    typ, data = ma.select("INBOX")
    assert data == [b"0"], data
    imap_idle_start(ma)
    deliver_bulk(srv, b, [make_message("x@remote.test", b, subject="more for bob")])
    ma.sock.settimeout(1.5)
    try:
        extra = ma.readline()
    except OSError:
        extra = b""
    ma.shutdown()
    assert extra == b"", f"alice's IDLE saw bob's delivery: {extra!r}"
    ma = imap_login(srv, a, apw)
    ma.select("INBOX")
    assert ok(ma.search(None, "TEXT", "zebra-crossing"), "SEARCH") == [b""]
    for mbox in (f'"../{b}/INBOX"', f'"{b}/INBOX"', f'"/{b}/INBOX"', f'"~{b}/INBOX"',
                 f'"#user/{b.split("@")[0]}/INBOX"', '"Other Users"'):
        assert ma.select(mbox)[0] != "OK", f"SELECT {mbox}"
        assert ma.status(mbox, "(MESSAGES)")[0] != "OK", f"STATUS {mbox}"
    assert ma.append(f'"../{b}/INBOX"', None, None, secret)[0] != "OK"
    ma.select("INBOX")
    assert ma.copy("1:*", f'"../{b}/INBOX"')[0] != "OK"
    assert len(srv.mailbox_rows(b)) == 2
    ma.logout()
    mb.logout()


# ---------------------------------------------------------------- limits

@pytest.fixture
def lsrv(make_server):
    """A server of its own (its memory is measured).  Under ASan, freed
    blocks wait in a quarantine (256 MB by default) before their memory is
    reused, so that streaming N bytes through any buffer raises the RSS by
    a multiple of N even when nothing is kept: the quarantine is made small
    (4 MB) for this server so that its RSS says what the server holds."""
    srv = make_server(listeners=IMAP_LISTENERS, start=False)
    asan = os.environ.get("ASAN_OPTIONS", "")
    srv.env = dict(os.environ, ASAN_OPTIONS=(asan + ":" if asan else "") +
                   "quarantine_size_mb=4:thread_local_quarantine_size_kb=64")
    srv.start()
    srv.ensure_domain(DOMAIN)
    return srv


def test_line_length(lsrv):
    address, pw = lsrv.new_account("lines")
    deliver_bulk(lsrv, address, numbered_messages(address, 3))
    lsrv.wait_for_message(address, 3)
    with imap_raw(lsrv, "imaps", address, pw) as c:
        c.ok("SELECT INBOX")
        # RFC 7162 4: at least 8192 octets per command line must work
        long_set = ",".join(str(i) for i in range(1, 1900))
        assert len(long_set) > 8192
        u, st = c.ok(f"UID FETCH {long_set} (FLAGS)")
        assert len(u) == 3, u
        before = proc_status(lsrv.proc.pid)
        c.send(b"t900 NOOP " + b"x" * 200000 + CRLF)
        r = c.reply()
        assert r.startswith((b"t900 BAD", b"* BAD")), f"200 kB line: {r!r}"
        # a 20 MB line without a line end: refused without being buffered
        c.sock.settimeout(10)
        try:
            c.send(b"t901 NOOP " + b"y" * (20 << 20))
        except OSError:
            pass
        after = proc_status(lsrv.proc.pid)
        grew = after["VmHWM"] - before["VmHWM"]
        assert grew < 12 * 1024, f"peak RSS grew by {grew} kB for an overlong line"
    with imap_raw(lsrv, "imaps", address, pw) as c:
        c.ok("NOOP")


def test_two_gigabyte_literal(lsrv):
    address, pw = lsrv.new_account("big")
    with imap_raw(lsrv, "imaps", address, pw) as c:
        caps = c.ok("CAPABILITY")[0][0].decode().upper().split()
        lim = [x for x in caps if x.startswith("APPENDLIMIT")]
        assert lim, f"no APPENDLIMIT: {caps}"
        before = proc_status(lsrv.proc.pid)
        tag = c.next_tag()
        c.send(f"{tag} APPEND INBOX (\\Seen) {{2147483648}}\r\n".encode())
        r = c.reply()
        assert r.startswith(f"{tag} NO [TOOBIG]".encode()), \
            f"2 GB APPEND literal: {r!r} (no '+' may be sent)"
        u, st = c.cmd('LOGIN {2147483648}')
        assert st.startswith(("BAD", "NO")), f"2 GB literal in LOGIN: {st!r}"
        u, st = c.ok("NOOP")
        after = proc_status(lsrv.proc.pid)
    for k, lim_kb in (("VmHWM", 16 * 1024), ("VmPeak", 1024 * 1024)):
        assert after[k] - before[k] < lim_kb, \
            f"{k} grew by {after[k] - before[k]} kB after a refused 2 GB literal"
    # a non-synchronizing 2 GB literal: its octets are never buffered
    with imap_raw(lsrv, "imaps", address, pw) as c:
        before = proc_status(lsrv.proc.pid)
        try:
            c.send(b"t1 APPEND INBOX {2147483648+}\r\n")
            chunk = b"z" * (1 << 20)
            for _ in range(32):
                c.send(chunk)
        except OSError:
            pass        # the server may close the connection (RFC 7888 4)
        time.sleep(0.5)
        after = proc_status(lsrv.proc.pid)
        assert after["VmHWM"] - before["VmHWM"] < 16 * 1024, \
            f"peak RSS grew by {after['VmHWM'] - before['VmHWM']} kB"
    assert lsrv.running(), "server died"
    m = imap_login(lsrv, address, pw)
    typ, data = m.select("INBOX")
    assert data == [b"0"], f"a refused APPEND stored something: {data!r}"
    m.logout()


def test_nesting_depth(srv):
    address, pw = srv.new_account("nest")
    deliver_bulk(srv, address, numbered_messages(address, 2))
    srv.wait_for_message(address, 2)
    with imap_raw(srv, "imaps", address, pw) as c:
        c.ok("SELECT INBOX")
        u, st = c.ok("SEARCH " + "(" * 5 + "ALL" + ")" * 5)
        assert u == [b"* SEARCH 1 2"], u
        u, st = c.cmd("SEARCH " + "(" * 40 + "ALL" + ")" * 40)
        assert st.startswith(("BAD", "NO")), f"40 levels: {st!r}"
        u, st = c.cmd("SEARCH " + "(" * 30000 + "ALL" + ")" * 30000)
        assert st.startswith(("BAD", "NO")), f"30,000 levels: {st!r}"
        u, st = c.cmd("FETCH 1 " + "(" * 30000 + "FLAGS" + ")" * 30000)
        assert st.startswith("BAD"), f"30,000 levels: {st!r}"
        u, st = c.cmd("SEARCH " + "NOT " * 20000 + "ALL")
        assert st.startswith(("BAD", "NO", "OK")), st
        u, st = c.ok("NOOP")


def read_until_bye(c, counted=None):
    """Reads replies until * BYE or silence: (the BYE line or None, how many
    replies matched the regex COUNTED)."""
    n = 0
    try:
        while True:
            r = c.reply(timeout=10)
            if r.startswith(b"* BYE"):
                return r, n
            if counted and re.match(counted, r):
                n += 1
    except AssertionError:
        return None, n


def test_noop_flood_and_slow_polling(srv):
    """More than 200 NOOPs within a second get * BYE; a client that polls
    with NOOP at a human pace is never cut off, however many it sends."""
    address, pw = srv.new_account("noopflood")
    with imap_raw(srv, "imaps", address, pw) as c:
        # 1,050 NOOPs in bursts of 150 a little over a second apart
        for burst in range(7):
            c.send(b"".join(b"p%d NOOP\r\n" % (burst * 150 + i) for i in range(150)))
            for i in range(150):
                u, st = c.collect(f"p{burst * 150 + i}")
                assert st.startswith("OK"), st
            time.sleep(1.1)
        c.ok("NOOP")
        c.send(b"".join(b"f%d NOOP\r\n" % i for i in range(1000)))
        bye, oks = read_until_bye(c, rb"^f\d+ OK")
        assert bye is not None and b"progress" in bye, f"no * BYE after {oks} NOOPs"
        # 200 a second; a flood that straddles a second boundary may get 400
        assert oks <= 400, f"{oks} NOOPs answered within the flood"
        assert c.expect_closed(5), "connection not closed after * BYE"
    with imap_raw(srv, "imaps", address, pw) as c:   # the server is fine
        c.ok("NOOP")


def test_commands_without_progress(srv):
    """Invalid commands one after the other: the server ends the session
    (* BYE) instead of answering them for ever."""
    address, pw = srv.new_account("noprog")
    with imap_raw(srv, "imaps", address, pw) as c:
        c.send(b"".join(b"b%d BOGUS%d\r\n" % (i, i) for i in range(200)))
        bye, bads = read_until_bye(c, rb"^b\d+ BAD")
        assert bye is not None, f"no * BYE after {bads} invalid commands"
        assert bads < 200, "every invalid command was answered"
        assert c.expect_closed(5), "connection not closed after * BYE"
    # the same before login
    with IMAPRaw(srv.ports["imaps"], tls=True) as c:
        c.send(b"".join(b"b%d SELECT INBOX\r\n" % i for i in range(200)))
        bye, _ = read_until_bye(c)
        assert bye is not None, "200 commands refused before login and no * BYE"
