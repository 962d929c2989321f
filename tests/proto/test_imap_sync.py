"""Two (or three) concurrent imaplib sessions on one account, on a real
`roost serve`: what one does (flags, expunge, move, append, an SMTP
delivery) is announced to the other as untagged FETCH / EXPUNGE / EXISTS
at its next command (never an EXPUNGE while it runs FETCH, STORE or SEARCH,
RFC 3501 7.4.1), and at once during IDLE: within one second of the SMTP
250 or of the other session's tagged OK (a functional requirement of the
issue, measured for every event).  After a reconnect, CONDSTORE
(CHANGEDSINCE) and QRESYNC (SELECT ... QRESYNC, VANISHED (EARLIER)) report
exactly what changed and nothing else (RFC 7162)."""
import re
import threading
import time

import pytest

from conftest import (deliver_bulk, imap_idle_done, imap_idle_start, imap_idle_until,
                      imap_login, make_message, numbered_messages, smtp_deliver_one)

WAKE_LIMIT = 1.0


def ok(res, what):
    typ, data = res
    assert typ == "OK", f"{what}: {typ} {data!r}"
    return data


def untagged(m, name):
    typ, data = m.response(name)
    return [d for d in (data or []) if d is not None]


def select(m, box, readonly=False):
    """SELECT; returns the EXISTS count and drops the untagged responses of
    the SELECT itself (imaplib leaves them collected)."""
    typ, data = m.select(box, readonly)
    assert typ == "OK", f"SELECT {box}: {data!r}"
    for name in ("EXISTS", "RECENT", "FETCH", "EXPUNGE"):
        m.response(name)
    return int(data[0])


def flags_by_seq(data):
    """{seq: set(flags)} from untagged FETCH data (imaplib drops "FETCH")."""
    out = {}
    for d in data:
        if isinstance(d, tuple):
            d = d[0]
        m = re.match(rb"^(\d+) \(.*FLAGS \(([^)]*)\)", d)
        if m:
            out[int(m.group(1))] = set(m.group(2).decode().split())
    return out


def uid_of(d):
    m = re.search(rb"UID (\d+)", d if isinstance(d, bytes) else d[0])
    return int(m.group(1)) if m else None


@pytest.fixture(scope="module")
def srv(imap_server):
    return imap_server


def filled_account(srv, n, prefix="sync"):
    address, pw = srv.new_account(prefix)
    deliver_bulk(srv, address, numbered_messages(address, n, prefix=prefix))
    srv.wait_for_message(address, n)
    return address, pw


def test_changes_announced_at_next_command(srv):
    address, pw = filled_account(srv, 5)
    a = imap_login(srv, address, pw)
    b = imap_login(srv, address, pw)
    assert select(a, "INBOX") == 5
    assert select(b, "INBOX") == 5
    uids = [int(x) for x in ok(b.uid("SEARCH", "ALL"), "UID SEARCH")[0].split()]
    assert len(uids) == 5

    # flags: A stores, B sees FETCH FLAGS at its next command
    ok(a.store("1", "+FLAGS", "(\\Flagged $Label1)"), "STORE")
    ok(b.noop(), "NOOP")
    f = flags_by_seq(untagged(b, "FETCH"))
    assert f.get(1) == {"\\Flagged", "$Label1"}, f"B after A's STORE: {f}"
    ok(a.store("1", "-FLAGS", "($Label1)"), "STORE")
    ok(b.noop(), "NOOP")
    assert flags_by_seq(untagged(b, "FETCH")).get(1) == {"\\Flagged"}

    # append: EXISTS
    ok(a.append("INBOX", "(\\Seen)", None,
                make_message("me@remote.test", address, subject="appended by A")), "APPEND")
    ok(b.noop(), "NOOP")
    assert untagged(b, "EXISTS") == [b"6"], "B did not see A's APPEND"

    # expunge: not during B's FETCH / STORE / SEARCH, then at its NOOP
    ok(a.store("2", "+FLAGS", "(\\Deleted)"), "STORE")
    ok(a.expunge(), "EXPUNGE")
    typ, data = b.fetch("1:*", "(FLAGS)")
    # RFC 2180 4.1: the expunged message's data, or NO [EXPUNGEISSUED]
    assert typ == "OK" or (typ == "NO" and b"EXPUNGEISSUED" in data[0]), (typ, data)
    assert untagged(b, "EXPUNGE") == [], "EXPUNGE sent during FETCH (RFC 3501 7.4.1)"
    ok(b.search(None, "ALL"), "SEARCH")
    assert untagged(b, "EXPUNGE") == [], "EXPUNGE sent during SEARCH"
    ok(b.store("3", "+FLAGS", "($Seen3)"), "STORE")
    assert untagged(b, "EXPUNGE") == [], "EXPUNGE sent during STORE"
    ok(b.noop(), "NOOP")
    assert untagged(b, "EXPUNGE") == [b"2"], "B did not see A's EXPUNGE at NOOP"
    got = [int(x) for x in ok(b.uid("SEARCH", "ALL"), "UID SEARCH")[0].split()]
    assert got[:4] == [uids[0]] + uids[2:] and len(got) == 5, (got, uids)

    # move: EXPUNGE in B, EXISTS in a third session on the target
    c = imap_login(srv, address, pw)
    assert select(c, "Archive") == 0
    ok(a.xatom("MOVE", "1", "Archive"), "MOVE")
    ok(b.noop(), "NOOP")
    assert untagged(b, "EXPUNGE") == [b"1"], "B did not see A's MOVE"
    ok(c.noop(), "NOOP")
    assert untagged(c, "EXISTS") == [b"1"], "the session on Archive did not see the MOVE"
    f = flags_by_seq(ok(c.fetch("1", "(FLAGS)"), "FETCH"))
    assert f[1] == {"\\Flagged"}, f"MOVE kept the flags: {f}"

    # B's own change is answered to B, and announced to A
    ok(b.store("1:*", "+FLAGS", "(\\Answered)"), "STORE")
    ok(a.noop(), "NOOP")
    f = flags_by_seq(untagged(a, "FETCH"))
    assert set(f) == {1, 2, 3, 4} and all("\\Answered" in v for v in f.values()), f
    for m in (a, b, c):
        m.logout()


class IdleWatch:
    """Runs imap_idle_until in a thread so that the main thread can act."""

    def __init__(self, m, pred, timeout=15.0):
        self.result = None
        self.error = None
        self.t = threading.Thread(target=self._run, args=(m, pred, timeout))
        self.t.start()

    def _run(self, m, pred, timeout):
        try:
            self.result = imap_idle_until(m, pred, timeout)
        except BaseException as e:   # reported in wait()
            self.error = e

    def wait(self):
        self.t.join(30)
        assert not self.t.is_alive(), "IDLE reader did not finish"
        if self.error:
            raise self.error
        return self.result


def test_idle_woken_by_smtp_delivery(srv):
    address, pw = filled_account(srv, 2, "idle")
    a = imap_login(srv, address, pw)
    b = imap_login(srv, address, pw)
    select(a, "INBOX")
    select(b, "INBOX")
    delays = []
    for i in range(5):
        n = 3 + i
        tag = imap_idle_start(a)
        w = IdleWatch(a, lambda l, n=n: l.rstrip() == b"* %d EXISTS" % n)
        time.sleep(0.2)
        _, t250 = smtp_deliver_one(srv, address,
                                   make_message("x@remote.test", address, subject=f"wake {i}"))
        line, t, lines = w.wait()
        delays.append(t - t250)
        ok(imap_idle_done(a, tag), "DONE")
        ok(b.noop(), "NOOP")
        assert untagged(b, "EXISTS") == [str(n).encode()], f"B after delivery {i}"
    assert max(delays) <= WAKE_LIMIT, \
        f"IDLE woken {', '.join(f'{d:.3f}' for d in delays)} s after the SMTP 250"
    # the new messages are really there
    data = ok(a.fetch("3:7", "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])"), "FETCH")
    subjects = [d[1].strip() for d in data if isinstance(d, tuple)]
    assert subjects == [f"Subject: wake {i}".encode() for i in range(5)], subjects
    a.logout()
    b.logout()


def test_idle_woken_by_other_session(srv):
    address, pw = filled_account(srv, 4, "idle2")
    a = imap_login(srv, address, pw)
    b = imap_login(srv, address, pw)
    select(a, "INBOX")
    select(b, "INBOX")

    def during_idle(pred, action):
        tag = imap_idle_start(a)
        w = IdleWatch(a, pred)
        time.sleep(0.2)
        action()
        t_ok = time.monotonic()
        line, t, lines = w.wait()
        ok(imap_idle_done(a, tag), "DONE")
        assert t - t_ok <= WAKE_LIMIT, f"IDLE woken {t - t_ok:.3f}s after the other's OK"
        return line, lines

    line, _ = during_idle(lambda l: re.match(rb"^\* 2 FETCH .*\\Seen", l) is not None,
                          lambda: ok(b.store("2", "+FLAGS", "(\\Seen)"), "STORE"))
    assert b"\\Seen" in line
    line, _ = during_idle(lambda l: l.rstrip() == b"* 5 EXISTS",
                          lambda: ok(b.append("INBOX", None, None, make_message(
                              "me@remote.test", address, subject="by B")), "APPEND"))

    def expunge_3():
        ok(b.store("3", "+FLAGS.SILENT", "(\\Deleted)"), "STORE")
        ok(b.expunge(), "EXPUNGE")
    line, lines = during_idle(lambda l: l.rstrip() == b"* 3 EXPUNGE", expunge_3)
    ok(a.noop(), "NOOP")
    typ, data = a.fetch("1:*", "(UID)")
    assert len([d for d in data if d]) == 4, f"A's view after the expunge: {data!r}"
    a.logout()
    b.logout()


def test_condstore_qresync_resync_after_reconnect(srv):
    address, pw = filled_account(srv, 6, "resync")
    a = imap_login(srv, address, pw)
    ok(a.enable("QRESYNC"), "ENABLE QRESYNC")
    ok(a.select("INBOX"), "SELECT")
    validity = int(untagged(a, "UIDVALIDITY")[0])
    hms = untagged(a, "HIGHESTMODSEQ")
    assert hms, "no HIGHESTMODSEQ at SELECT"
    modseq0 = int(hms[0])
    uids = [int(x) for x in ok(a.uid("SEARCH", "ALL"), "UID SEARCH")[0].split()]
    a.logout()

    # another device changes things while A is away
    b = imap_login(srv, address, pw)
    ok(b.select("INBOX"), "SELECT")
    ok(b.uid("STORE", str(uids[1]), "+FLAGS", "(\\Flagged)"), "UID STORE")
    ok(b.uid("STORE", f"{uids[3]},{uids[4]}", "+FLAGS", "(\\Deleted)"), "UID STORE")
    ok(b.expunge(), "EXPUNGE")
    data = ok(b.append("INBOX", None, None, make_message("me@remote.test", address,
                                                          subject="new while away")), "APPEND")
    new_uid = int(re.search(rb"APPENDUID \d+ (\d+)", data[0]).group(1))
    b.logout()

    # QRESYNC: SELECT with the remembered state
    a = imap_login(srv, address, pw)
    ok(a.enable("QRESYNC"), "ENABLE QRESYNC")
    typ, data = a.select(f"INBOX (QRESYNC ({validity} {modseq0} {uids[0]}:{uids[-1]}))")
    assert typ == "OK" and data == [b"5"], (typ, data)
    van = untagged(a, "VANISHED")
    assert len(van) == 1 and van[0].upper().startswith(b"(EARLIER) "), f"VANISHED {van!r}"
    gone = van[0].split()[1].decode()
    assert set(expand(gone)) == {uids[3], uids[4]}, f"VANISHED (EARLIER) {gone}"
    fetch = untagged(a, "FETCH")
    changed = {uid_of(d): d for d in fetch}
    assert set(changed) == {uids[1], new_uid}, f"QRESYNC reported {fetch!r}"
    assert b"\\Flagged" in changed[uids[1]] and b"MODSEQ" in changed[uids[1]]
    a.logout()

    # CONDSTORE only: CHANGEDSINCE gives the same set (without the vanished)
    a = imap_login(srv, address, pw)
    ok(a.select("INBOX (CONDSTORE)"), "SELECT (CONDSTORE)")
    now = int(untagged(a, "HIGHESTMODSEQ")[0])
    assert now > modseq0
    data = ok(a.uid("FETCH", "1:*", f"(FLAGS) (CHANGEDSINCE {modseq0})"), "UID FETCH CHANGEDSINCE")
    assert {uid_of(d) for d in data if d} == {uids[1], new_uid}, data
    data = a.uid("FETCH", "1:*", f"(FLAGS) (CHANGEDSINCE {now})")[1]
    assert [d for d in data if d] == [], f"nothing changed since {now}: {data!r}"
    st = ok(a.status("INBOX", "(HIGHESTMODSEQ)"), "STATUS")
    assert f"HIGHESTMODSEQ {now}".encode() in st[0], st
    a.logout()

    # a wrong UIDVALIDITY: no VANISHED and no FETCH (the client must resync fully)
    a = imap_login(srv, address, pw)
    ok(a.enable("QRESYNC"), "ENABLE QRESYNC")
    typ, data = a.select(f"INBOX (QRESYNC ({validity + 1} {modseq0}))")
    assert typ == "OK"
    assert untagged(a, "VANISHED") == [] and untagged(a, "FETCH") == []
    a.logout()


def expand(seqset):
    out = []
    for part in seqset.split(","):
        lo, _, hi = part.partition(":")
        out.extend(range(int(lo), int(hi or lo) + 1))
    return out
