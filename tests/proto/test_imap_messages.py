"""IMAP message commands on a real `roost serve`: FETCH (every data item,
body sections and partials of a multipart message delivered over SMTP,
BINARY, BODY/BODYSTRUCTURE, implicit \\Seen, CONDSTORE MODSEQ and
CHANGEDSINCE, streamed FETCH 1:* of a large mailbox), SEARCH (each key,
UID SEARCH, ESEARCH RETURN, SAVE and "$", charsets), STORE (+FLAGS -FLAGS
FLAGS .SILENT, keywords, UNCHANGEDSINCE and [MODIFIED], read-only), COPY
and MOVE (COPYUID, EXPUNGE, TRYCREATE), and bad input (sequence sets,
unknown items, commands without a selected mailbox).

Python's imaplib is the client where it can say what is being tested; a raw
client (RawIMAP) sends exact bytes and reads responses with their literals
where the exact reply matters (response codes, ESEARCH, errors)."""
import imaplib
import re
import socket
import ssl
import time

import pytest

from conftest import (CRLF, DOMAIN, SMTP, RoostServer, _finish, client_context, unique)

IMAP_LISTENERS = ("smtp", "submission", "submissions", "imap", "imaps")

MULTI = CRLF.join([
    b"From: \"Alice Example\" <alice@remote.test>",
    b"To: {rcpt}",
    b"Cc: carol@remote.test",
    b"Subject: Quarterly report",
    b"Date: Mon, 05 Feb 2024 10:00:00 +0000",
    b"Message-ID: <m1@remote.test>",
    b"X-Tag: alpha",
    b"MIME-Version: 1.0",
    b"Content-Type: multipart/mixed; boundary=\"BOUND\"",
    b"",
    b"This is a MIME message.",
    b"--BOUND",
    b"Content-Type: text/plain; charset=utf-8",
    b"",
    b"Hello Bob, the numbers are attached.",
    b"--BOUND",
    b"Content-Type: application/octet-stream; name=\"data.bin\"",
    b"Content-Transfer-Encoding: base64",
    b"Content-Disposition: attachment; filename=\"data.bin\"",
    b"",
    b"AGFiYwBkZWY=",
    b"--BOUND",
    b"Content-Type: message/rfc822",
    b"",
    b"From: dave@remote.test",
    b"Subject: inner note",
    b"",
    b"Inner body text.",
    b"--BOUND",
    b"Content-Type: application/x-thing",
    b"Content-Transfer-Encoding: x-weird",
    b"",
    b"zzz",
    b"--BOUND--",
    b"",
])


def simple(subject, body=b"Hello there.", frm=b"Zed <zed@remote.test>", to=b"someone@example.test",
           date=b"Thu, 01 Feb 2024 23:30:00 -0500", extra=b""):
    return (b"From: " + frm + CRLF + b"To: " + to + CRLF + b"Subject: " + subject + CRLF +
            b"Date: " + date + CRLF + extra + CRLF + body + CRLF)


# --------------------------------------------------------------------------
# a tiny IMAP response reader (for FETCH data and exact replies)

class Tok:
    def __init__(self, data):
        self.d = data
        self.i = 0

    def peek(self):
        return self.d[self.i:self.i + 1]

    def skip_sp(self):
        while self.peek() == b" ":
            self.i += 1

    def value(self):
        self.skip_sp()
        c = self.peek()
        if c == b"(":
            self.i += 1
            out = []
            while True:
                self.skip_sp()
                if self.peek() == b")":
                    self.i += 1
                    return out
                assert self.i < len(self.d), f"unterminated list in {self.d!r}"
                out.append(self.value())
        if c == b'"':
            self.i += 1
            out = bytearray()
            while True:
                ch = self.d[self.i:self.i + 1]
                assert ch, f"unterminated string in {self.d!r}"
                self.i += 1
                if ch == b"\\":
                    out += self.d[self.i:self.i + 1]
                    self.i += 1
                elif ch == b'"':
                    return bytes(out)
                else:
                    out += ch
        m = re.compile(rb"~?\{(\d+)\}\r\n").match(self.d, self.i)
        if m:
            n = int(m.group(1))
            self.i = m.end() + n
            return self.d[m.end():m.end() + n]
        start = self.i
        depth = 0
        while self.i < len(self.d):
            ch = self.d[self.i:self.i + 1]
            if ch == b"[":
                depth += 1
            elif ch == b"]":
                depth -= 1
            elif depth == 0 and ch in (b" ", b"(", b")", b"\r"):
                break
            self.i += 1
        atom = self.d[start:self.i]
        assert atom, f"empty atom at {self.i} in {self.d!r}"
        return None if atom.upper() == b"NIL" else atom


def parse_fetch(resp):
    """b'3 FETCH (UID 5 BODY[] {3}\\r\\nabc)' -> (3, {'UID': b'5', 'BODY[]': b'abc'})."""
    t = Tok(resp)
    seq = int(t.value())
    items = t.value()
    if not isinstance(items, list):   # raw "* n FETCH (...)"; imaplib drops "FETCH"
        assert items.upper() == b"FETCH", resp
        items = t.value()
    assert isinstance(items, list) and len(items) % 2 == 0, f"odd FETCH list: {resp!r}"
    return seq, {items[k].decode().upper(): items[k + 1] for k in range(0, len(items), 2)}


def imaplib_blob(data):
    """Rebuilds the raw untagged FETCH responses (without "* ") from
    imaplib's (head, literal) tuples and tails."""
    out = []
    cur = b""
    for d in data:
        if d is None:
            continue
        if isinstance(d, tuple):
            cur += d[0] + CRLF + d[1]
        else:
            cur += d
            out.append(cur)
            cur = b""
    if cur:
        out.append(cur)
    return out


def fetched(data):
    """{seq: items} from imaplib FETCH data."""
    res = {}
    for r in imaplib_blob(data):
        seq, items = parse_fetch(r)
        res.setdefault(seq, {}).update(items)
    return res


class RawIMAP:
    """Exact bytes over TLS; responses with their literals."""

    def __init__(self, port, timeout=20):
        s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.sock = client_context().wrap_socket(s)
        self.buf = b""
        self.n = 0
        greeting = self.read_response()
        assert greeting.startswith(b"* OK"), greeting

    def _fill(self):
        d = self.sock.recv(65536)
        if not d:
            raise EOFError(f"connection closed; buffered {self.buf[-300:]!r}")
        self.buf += d

    def read_line(self):
        while b"\r\n" not in self.buf:
            self._fill()
        i = self.buf.index(b"\r\n")
        line, self.buf = self.buf[:i + 2], self.buf[i + 2:]
        return line

    def read_response(self):
        """One response with its literals, without the final CRLF."""
        out = b""
        while True:
            line = self.read_line()
            out += line
            m = re.search(rb"~?\{(\d+)\}\r\n$", line)
            if not m:
                return out[:-2]
            n = int(m.group(1))
            while len(self.buf) < n:
                self._fill()
            out += self.buf[:n]
            self.buf = self.buf[n:]

    def cmd(self, line, tag=None):
        """(untagged responses, tagged line) for LINE (str or bytes)."""
        self.n += 1
        tag = tag or f"r{self.n}"
        if isinstance(line, str):
            line = line.encode()
        self.sock.sendall(tag.encode() + b" " + line + CRLF)
        untagged = []
        while True:
            r = self.read_response()
            if r.startswith(tag.encode() + b" "):
                return untagged, r[len(tag) + 1:].decode("utf-8", "replace")
            untagged.append(r)

    def ok(self, line):
        u, t = self.cmd(line)
        assert t.startswith("OK"), f"{line!r} -> {t!r} {u!r}"
        return u, t

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.close()


def fetches(untagged):
    res = {}
    for r in untagged:
        if re.match(rb"\* \d+ FETCH ", r):
            seq, items = parse_fetch(r[2:])
            res.setdefault(seq, {}).update(items)
    return res


# --------------------------------------------------------------------------
# fixtures

@pytest.fixture(scope="module")
def srv(roost_binary):
    s = RoostServer(listeners=IMAP_LISTENERS)
    s.start()
    s.ensure_domain(DOMAIN)
    yield s
    _finish(s)


def connect(srv):
    return imaplib.IMAP4_SSL("127.0.0.1", srv.ports["imaps"], ssl_context=client_context(),
                             timeout=60)


def login(srv, address, pw):
    m = connect(srv)
    m.login(address, pw)
    return m


def raw_login(srv, address, pw, select="INBOX"):
    """A raw session, logged in, with INBOX selected (select="EXAMINE":
    examined; None: nothing selected)."""
    c = RawIMAP(srv.ports["imaps"])
    c.ok(f'LOGIN "{address}" "{pw}"')
    if select == "EXAMINE":
        c.ok("EXAMINE INBOX")
    elif select:
        c.ok(f"SELECT {select}")
    return c


def append(m, msg, flags="", date='"05-Feb-2024 10:00:00 +0000"', mailbox="INBOX"):
    typ, data = m.append(mailbox, flags or None, date, msg)
    assert typ == "OK", data


@pytest.fixture(scope="module")
def multi(srv):
    """An account whose INBOX holds the multipart message, delivered over
    SMTP; returns (address, password, stored bytes)."""
    address, pw = srv.new_account("fetch")
    msg = MULTI.replace(b"{rcpt}", address.encode())
    with SMTP(srv.smtp) as c:
        c.ehlo()
        r = c.mail_transaction("alice@remote.test", [address], msg)
        assert r.code == 250, r.text
    rows = srv.wait_for_message(address, 1)
    stored = srv.cat(address, rows[0]["uid"])
    assert stored.endswith(msg), "the stored message is a Received: field plus the data"
    return address, pw, stored


@pytest.fixture
def account(srv):
    return srv.new_account("imap")


# --------------------------------------------------------------------------
# FETCH

def test_fetch_index_items(srv, multi):
    address, pw, stored = multi
    m = login(srv, address, pw)
    m.select("INBOX", readonly=True)
    typ, data = m.fetch("1", "(UID FLAGS INTERNALDATE RFC822.SIZE)")
    assert typ == "OK"
    it = fetched(data)[1]
    assert it["UID"].isdigit()
    assert it["FLAGS"] == []
    assert re.fullmatch(rb"\d\d-[A-Z][a-z]{2}-\d{4} \d\d:\d\d:\d\d [+-]\d{4}", it["INTERNALDATE"])
    assert int(it["RFC822.SIZE"]) == len(stored)
    # the macros (RFC 3501 6.4.5)
    for macro, names in (("FAST", {"FLAGS", "INTERNALDATE", "RFC822.SIZE"}),
                         ("ALL", {"FLAGS", "INTERNALDATE", "RFC822.SIZE", "ENVELOPE"}),
                         ("FULL", {"FLAGS", "INTERNALDATE", "RFC822.SIZE", "ENVELOPE", "BODY"})):
        typ, data = m.fetch("1", macro)
        assert typ == "OK"
        assert set(fetched(data)[1]) == names, macro
    # UID FETCH always includes UID
    typ, data = m.uid("FETCH", it["UID"].decode(), "(FLAGS)")
    assert fetched(data)[1]["UID"] == it["UID"]
    m.logout()


def test_fetch_envelope(srv, multi):
    address, pw, _ = multi
    m = login(srv, address, pw)
    m.select("INBOX", readonly=True)
    env = fetched(m.fetch("1", "(ENVELOPE)")[1])[1]["ENVELOPE"]
    assert len(env) == 10
    assert env[0] == b"Mon, 05 Feb 2024 10:00:00 +0000"
    assert env[1] == b"Quarterly report"
    assert env[2] == [[b"Alice Example", None, b"alice", b"remote.test"]]   # from
    assert env[3] == env[2] and env[4] == env[2]                           # sender, reply-to
    assert env[5][0][2:] == [address.split("@")[0].encode(), DOMAIN.encode()]
    assert env[6] == [[None, None, b"carol", b"remote.test"]]
    assert env[7] is None and env[8] is None
    assert env[9] == b"<m1@remote.test>"
    m.logout()


def test_fetch_bodystructure_and_body(srv, multi):
    address, pw, _ = multi
    m = login(srv, address, pw)
    m.select("INBOX", readonly=True)
    it = fetched(m.fetch("1", "(BODYSTRUCTURE BODY)")[1])[1]
    bs, body = it["BODYSTRUCTURE"], it["BODY"]
    # multipart: 4 parts then the subtype, then extension data (BODYSTRUCTURE only)
    assert [p[0].upper() for p in bs[:4]] == [b"TEXT", b"APPLICATION", b"MESSAGE", b"APPLICATION"]
    assert bs[4].upper() == b"MIXED"
    assert len(bs) > 5 and [b.upper() if isinstance(b, bytes) else b for b in bs[5]] == \
        [b"BOUNDARY", b"BOUND"]
    assert body[4].upper() == b"MIXED" and len(body) == 5
    text = bs[0]
    assert text[1].upper() == b"PLAIN" and text[5].upper() == b"7BIT"
    assert int(text[6]) == len(b"Hello Bob, the numbers are attached.")
    att = bs[1]
    assert att[5].upper() == b"BASE64" and int(att[6]) == len(b"AGFiYwBkZWY=")
    assert att[8][0].upper() == b"ATTACHMENT"          # disposition (extension)
    assert len(body[1]) == 7                            # BODY: basic fields only
    inner = bs[2]
    assert inner[1].upper() == b"RFC822"
    assert inner[7][1] == b"inner note"                 # its ENVELOPE
    assert inner[8][0].upper() == b"TEXT"               # its body
    assert body[2][:8] == inner[:8]
    m.logout()


def section(m, spec, seq="1"):
    typ, data = m.fetch(seq, f"(BODY.PEEK[{spec}])")
    assert typ == "OK", data
    return fetched(data)[int(seq)]


def test_fetch_sections(srv, multi):
    address, pw, stored = multi
    m = login(srv, address, pw)
    m.select("INBOX", readonly=True)
    hdr_end = stored.index(b"\r\n\r\n") + 4
    assert section(m, "")["BODY[]"] == stored
    assert section(m, "HEADER")["BODY[HEADER]"] == stored[:hdr_end]
    assert section(m, "TEXT")["BODY[TEXT]"] == stored[hdr_end:]
    it = section(m, "HEADER.FIELDS (SUBJECT X-TAG)")
    assert it["BODY[HEADER.FIELDS (SUBJECT X-TAG)]"] == \
        b"Subject: Quarterly report\r\nX-Tag: alpha\r\n\r\n"
    it = section(m, "HEADER.FIELDS.NOT (RECEIVED FROM TO CC DATE MESSAGE-ID MIME-VERSION "
                    "CONTENT-TYPE)")
    assert list(it.values())[0] == (b"Return-Path: <alice@remote.test>\r\n"
                                    b"Subject: Quarterly report\r\nX-Tag: alpha\r\n\r\n")
    assert section(m, "1")["BODY[1]"] == b"Hello Bob, the numbers are attached."
    assert section(m, "1.MIME")["BODY[1.MIME]"] == \
        b"Content-Type: text/plain; charset=utf-8\r\n\r\n"
    assert section(m, "2")["BODY[2]"] == b"AGFiYwBkZWY="
    assert section(m, "3.HEADER")["BODY[3.HEADER]"] == \
        b"From: dave@remote.test\r\nSubject: inner note\r\n\r\n"
    assert section(m, "3.TEXT")["BODY[3.TEXT]"] == b"Inner body text."
    assert section(m, "3.1")["BODY[3.1]"] == b"Inner body text."
    # parts that do not exist: the empty string
    assert section(m, "9")["BODY[9]"] == b""
    assert section(m, "1.HEADER")["BODY[1.HEADER]"] == b""
    m.logout()


def test_fetch_partial(srv, multi):
    address, pw, stored = multi
    m = login(srv, address, pw)
    m.select("INBOX", readonly=True)
    it = fetched(m.fetch("1", "(BODY.PEEK[]<0.10>)")[1])[1]
    assert it == {"BODY[]<0>": stored[:10]}
    it = fetched(m.fetch("1", "(BODY.PEEK[]<5.20>)")[1])[1]
    assert it == {"BODY[]<5>": stored[5:25]}
    n = len(stored)
    it = fetched(m.fetch("1", f"(BODY.PEEK[]<{n - 3}.100>)")[1])[1]
    assert it == {f"BODY[]<{n - 3}>": stored[-3:]}
    it = fetched(m.fetch("1", f"(BODY.PEEK[]<{n + 10}.5>)")[1])[1]
    assert it == {f"BODY[]<{n + 10}>": b""}
    it = fetched(m.fetch("1", "(BODY.PEEK[1]<6.3>)")[1])[1]
    assert it == {"BODY[1]<6>": b"Bob"}
    m.logout()


def test_fetch_binary(srv, multi):
    address, pw, _ = multi
    with raw_login(srv, address, pw, select="INBOX") as c:
        u, t = c.ok("FETCH 1 (BINARY.PEEK[2] BINARY.SIZE[2] BINARY.PEEK[1])")
        raw = [r for r in u if b" FETCH " in r][0]
        assert b"BINARY[2] ~{8}\r\n\x00abc\x00def" in raw, raw    # literal8 (RFC 3516)
        it = fetches(u)[1]
        assert it["BINARY[2]"] == b"\x00abc\x00def"
        assert it["BINARY.SIZE[2]"] == b"8"
        assert it["BINARY[1]"] == b"Hello Bob, the numbers are attached."
        u, t = c.cmd("FETCH 1 (BINARY.PEEK[4])")
        assert t.startswith("NO [UNKNOWN-CTE]"), t
        u, t = c.ok("FETCH 1 (BINARY.PEEK[2]<1.3>)")
        assert fetches(u)[1] == {"BINARY[2]<1>": b"abc"}


def test_fetch_rfc822_items(srv, multi):
    address, pw, stored = multi
    m = login(srv, address, pw)
    m.select("INBOX", readonly=True)
    hdr_end = stored.index(b"\r\n\r\n") + 4
    it = fetched(m.fetch("1", "(RFC822.HEADER RFC822.TEXT RFC822)")[1])[1]
    assert it["RFC822.HEADER"] == stored[:hdr_end]
    assert it["RFC822.TEXT"] == stored[hdr_end:]
    assert it["RFC822"] == stored
    m.logout()


def test_fetch_sets_seen(srv, account):
    address, pw = account
    m = login(srv, address, pw)
    for i in range(3):
        append(m, simple(f"seen {i}".encode()))
    m.select("INBOX")
    it = fetched(m.fetch("1", "(BODY.PEEK[TEXT])")[1])[1]
    assert "FLAGS" not in it
    it = fetched(m.fetch("1", "(BODY[TEXT])")[1])[1]
    assert it["FLAGS"] == [b"\\Seen"] and it["BODY[TEXT]"] == b"Hello there.\r\n"
    # already seen: no FLAGS the second time
    it = fetched(m.fetch("1", "(BODY[TEXT])")[1])[1]
    assert "FLAGS" not in it
    it = fetched(m.fetch("2", "(RFC822)")[1])[2]
    assert it["FLAGS"] == [b"\\Seen"]
    it = fetched(m.fetch("2:3", "(FLAGS)")[1])
    assert it[2]["FLAGS"] == [b"\\Seen"] and it[3]["FLAGS"] == []
    m.close()
    # EXAMINE: read-only, nothing changes
    m.select("INBOX", readonly=True)
    it = fetched(m.fetch("3", "(BODY[])")[1])[3]
    assert "FLAGS" not in it
    assert fetched(m.fetch("3", "(FLAGS)")[1])[3]["FLAGS"] == []
    m.logout()


def test_fetch_modseq_changedsince(srv, account):
    address, pw = account
    m = login(srv, address, pw)
    for i in range(3):
        append(m, simple(f"m{i}".encode()))
    with raw_login(srv, address, pw) as c:
        u, _ = c.ok("FETCH 1:* (MODSEQ)")   # enables CONDSTORE
        ms = {s: int(v["MODSEQ"][0]) for s, v in fetches(u).items()}
        assert len(ms) == 3 and all(v > 0 for v in ms.values())
        c.ok("STORE 2 +FLAGS.SILENT (\\Flagged)")
        u, _ = c.ok(f"FETCH 1:* (FLAGS) (CHANGEDSINCE {max(ms.values())})")
        f = fetches(u)
        assert list(f) == [2], f
        assert f[2]["FLAGS"] == [b"\\Flagged"] and int(f[2]["MODSEQ"][0]) > max(ms.values())
        # under CONDSTORE every FETCH carries MODSEQ
        u, _ = c.ok("FETCH 1 (FLAGS)")
        assert "MODSEQ" in fetches(u)[1]
    m.logout()


def test_fetch_vanished_needs_qresync(srv, account):
    address, pw = account
    m = login(srv, address, pw)
    for i in range(4):
        append(m, simple(f"v{i}".encode()))
    m.logout()
    with raw_login(srv, address, pw, select=None) as c:
        c.ok("ENABLE QRESYNC")
        u, _ = c.ok("SELECT INBOX")
        hms = [re.search(rb"HIGHESTMODSEQ (\d+)", r) for r in u]
        hm = int([x for x in hms if x][0].group(1))
        u, _ = c.ok("UID SEARCH ALL")
        uids = [int(x) for x in re.findall(rb"\d+", u[-1])]
        c.ok(f"UID STORE {uids[1]} +FLAGS.SILENT (\\Deleted)")
        c.ok(f"UID EXPUNGE {uids[1]}")
        u, _ = c.ok(f"UID FETCH 1:* (FLAGS) (CHANGEDSINCE {hm} VANISHED)")
        van = [r for r in u if r.startswith(b"* VANISHED (EARLIER)")]
        assert van and str(uids[1]).encode() in van[0], u
        u, t = c.cmd(f"FETCH 1:* (FLAGS) (CHANGEDSINCE {hm} VANISHED)")
        assert t.startswith("BAD"), t
    with raw_login(srv, address, pw) as c:
        u, t = c.cmd("UID FETCH 1:* (FLAGS) (CHANGEDSINCE 1 VANISHED)")
        assert t.startswith("BAD"), t   # QRESYNC not enabled


def test_fetch_large_mailbox_streamed(srv, account):
    """FETCH 1:* (FLAGS ENVELOPE) and BODY[] of a few thousand messages:
    every message answered once, in order, in reasonable time."""
    address, pw = account
    n = 1000
    m = login(srv, address, pw)
    body = b"x" * 2000
    for i in range(n):
        append(m, simple(f"bulk {i}".encode(), body=body))
    m.select("INBOX")
    t0 = time.monotonic()
    typ, data = m.fetch("1:*", "(FLAGS ENVELOPE)")
    elapsed = time.monotonic() - t0
    f = fetched(data)
    assert typ == "OK" and sorted(f) == list(range(1, n + 1))
    assert f[n]["ENVELOPE"][1] == f"bulk {n - 1}".encode()
    assert elapsed < 15, f"FETCH 1:* (FLAGS ENVELOPE) of {n} took {elapsed:.1f}s"
    typ, data = m.fetch("1:*", "(BODY.PEEK[])")
    f = fetched(data)
    assert sorted(f) == list(range(1, n + 1))
    assert all(v["BODY[]"].endswith(body + CRLF) for v in f.values())
    m.logout()


# --------------------------------------------------------------------------
# SEARCH

@pytest.fixture(scope="module")
def searchbox(srv):
    """Five messages with known flags, dates, sizes and headers."""
    address, pw = srv.new_account("search")
    m = login(srv, address, pw)
    append(m, simple(b"apple pie", body=b"bake at noon", frm=b"Ann <ann@remote.test>",
                     date=b"Thu, 01 Feb 2024 23:30:00 -0500", extra=b"X-Mood: happy\r\n"),
           flags="(\\Seen)", date='"01-Feb-2024 12:00:00 +0000"')
    append(m, simple(b"banana split", body=b"y" * 3000, frm=b"Bob <bob@remote.test>",
                     date=b"Sat, 03 Feb 2024 08:00:00 +0000"),
           flags="(\\Flagged $Work)", date='"03-Feb-2024 12:00:00 +0000"')
    append(m, simple(b"cherry tart", body=b"cherries everywhere", to=b"carl@remote.test",
                     date=b"Mon, 05 Feb 2024 08:00:00 +0000",
                     extra=b"Cc: dora@remote.test\r\nBcc: eve@remote.test\r\n"),
           flags="(\\Answered \\Seen)", date='"05-Feb-2024 12:00:00 +0000"')
    append(m, simple(b"caf\xc3\xa9 au lait".replace(b"caf\xc3\xa9", b"=?utf-8?q?caf=C3=A9?="),
                     body=b"draft text"),
           flags="(\\Draft \\Deleted)", date='"07-Feb-2024 12:00:00 +0000"')
    append(m, simple(b"elderberry", body=b"last one"), date='"09-Feb-2024 12:00:00 +0000"')
    m.logout()
    return address, pw


def search(m, *criteria, uid=False, charset=None):
    if uid:
        typ, data = m.uid("SEARCH", *(["CHARSET", charset] if charset else []), *criteria)
    else:
        typ, data = m.search(charset, *criteria)
    assert typ == "OK", data
    return [int(x) for x in data[0].split()] if data and data[0] else []


SEARCH_CASES = [
    ("ALL", [1, 2, 3, 4, 5]),
    ("SEEN", [1, 3]), ("UNSEEN", [2, 4, 5]),
    ("FLAGGED", [2]), ("UNFLAGGED", [1, 3, 4, 5]),
    ("ANSWERED", [3]), ("UNANSWERED", [1, 2, 4, 5]),
    ("DELETED", [4]), ("UNDELETED", [1, 2, 3, 5]),
    ("DRAFT", [4]), ("UNDRAFT", [1, 2, 3, 5]),
    ("KEYWORD $Work", [2]), ("UNKEYWORD $Work", [1, 3, 4, 5]),
    ("RECENT", []), ("NEW", []), ("OLD", [1, 2, 3, 4, 5]),
    ("FROM ann@remote", [1]), ("FROM BOB", [2]), ("TO carl", [3]), ("CC dora", [3]),
    ("BCC eve", [3]), ("SUBJECT split", [2]), ("SUBJECT CHERRY", [3]),
    ('HEADER X-Mood happy', [1]), ('HEADER X-Mood ""', [1]),
    ("BODY cherries", [3]), ("BODY split", []), ("TEXT split", [2]), ("TEXT noon", [1]),
    ("BEFORE 3-Feb-2024", [1]), ("ON 3-Feb-2024", [2]), ("SINCE 7-Feb-2024", [4, 5]),
    ("SENTON 1-Feb-2024", [1, 4, 5]), ("SENTBEFORE 3-Feb-2024", [1, 4, 5]),
    ("SENTSINCE 3-Feb-2024", [2, 3]), ("SENTON 2-Feb-2024", []),
    ("LARGER 2000", [2]), ("SMALLER 1000", [1, 3, 4, 5]),
    ("2:4", [2, 3, 4]), ("*", [5]), ("4:*", [4, 5]),
    ("NOT SEEN", [2, 4, 5]), ("OR FLAGGED ANSWERED", [2, 3]),
    ("(SEEN UNANSWERED)", [1]), ("SEEN NOT (FROM ann)", [3]),
    ("OLDER 1", [1, 2, 3, 4, 5]), ("YOUNGER 1", []),
]


@pytest.mark.parametrize("criteria,want", SEARCH_CASES, ids=[c for c, _ in SEARCH_CASES])
def test_search_key(srv, searchbox, criteria, want):
    address, pw = searchbox
    with raw_login(srv, address, pw, select="EXAMINE") as c:
        u, _ = c.ok(f"SEARCH {criteria}")
        res = [r for r in u if r.startswith(b"* SEARCH")]
        assert len(res) == 1, u
        assert [int(x) for x in res[0].split()[2:]] == want


def test_search_uid_and_charset(srv, searchbox):
    address, pw = searchbox
    m = login(srv, address, pw)
    m.select("INBOX", readonly=True)
    uids = search(m, "ALL", uid=True)
    assert len(uids) == 5 and uids == sorted(uids)
    assert search(m, "UID", f"{uids[1]}:{uids[2]}") == [2, 3]
    assert search(m, "FLAGGED", uid=True) == [uids[1]]
    m.logout()
    # a UTF-8 needle in a literal against an RFC 2047 encoded subject
    with raw_login(srv, address, pw, select="EXAMINE") as c:
        needle = "caf\u00e9".encode("utf-8")
        c.sock.sendall(b"u1 SEARCH CHARSET UTF-8 SUBJECT {%d}\r\n" % len(needle))
        assert c.read_response().startswith(b"+"), "no continuation for the literal"
        c.sock.sendall(needle + b"\r\n")
        r = c.read_response()
        assert r == b"* SEARCH 4", r
        assert c.read_response().startswith(b"u1 OK")
        u, t = c.cmd("SEARCH CHARSET KOI8-R SUBJECT x")
        assert t.startswith("NO [BADCHARSET"), t
        u, t = c.ok("SEARCH CHARSET US-ASCII SUBJECT apple")
        assert u[-1] == b"* SEARCH 1", u


def test_esearch(srv, searchbox):
    address, pw = searchbox
    with raw_login(srv, address, pw, select="EXAMINE") as c:
        def esearch(cmd):
            u, _ = c.ok(cmd)
            tag = f'(TAG "r{c.n}")'.encode()
            return [r.replace(tag, b"(TAG)") for r in u if r.startswith(b"* ESEARCH")]

        assert esearch("SEARCH RETURN (MIN MAX COUNT) UNSEEN") == \
            [b"* ESEARCH (TAG) MIN 2 MAX 5 COUNT 3"]
        assert esearch("SEARCH RETURN () ALL") == [b"* ESEARCH (TAG) ALL 1:5"]
        assert esearch("SEARCH RETURN (ALL) OR SEEN DELETED") == [b"* ESEARCH (TAG) ALL 1,3:4"]
        assert esearch("UID SEARCH RETURN (COUNT) FLAGGED") == [b"* ESEARCH (TAG) UID COUNT 1"]
        assert esearch("SEARCH RETURN (MIN ALL COUNT) KEYWORD nothing") == \
            [b"* ESEARCH (TAG) COUNT 0"]
        # SAVE alone: no ESEARCH reply; "$" then stands for the result
        assert esearch("SEARCH RETURN (SAVE) SEEN") == []
        u, _ = c.ok("SEARCH $")
        assert u[-1] == b"* SEARCH 1 3", u
        u, _ = c.ok("FETCH $ (FLAGS)")
        assert sorted(fetches(u)) == [1, 3]
        assert esearch("SEARCH RETURN (SAVE MIN) FLAGGED") == [b"* ESEARCH (TAG) MIN 2"]
        u, _ = c.ok("UID SEARCH UID $")
        assert len(u[-1].split()) == 3, u
        # CONDSTORE: MODSEQ in the result (RFC 7162 3.1.5)
        u, _ = c.ok("SEARCH MODSEQ 1")
        assert re.fullmatch(rb"\* SEARCH 1 2 3 4 5 \(MODSEQ \d+\)", u[-1]), u
        r = esearch("SEARCH RETURN (ALL) MODSEQ 1")
        assert len(r) == 1 and re.fullmatch(rb"\* ESEARCH \(TAG\) ALL 1:5 MODSEQ \d+", r[0]), r


# --------------------------------------------------------------------------
# STORE

def test_store_variants(srv, account):
    address, pw = account
    m = login(srv, address, pw)
    for i in range(3):
        append(m, simple(f"s{i}".encode()))
    m.select("INBOX")
    typ, data = m.store("1", "+FLAGS", "(\\Flagged $Label1)")
    assert typ == "OK"
    assert set(fetched(data)[1]["FLAGS"]) == {b"\\Flagged", b"$Label1"}
    typ, data = m.store("1", "-FLAGS", "($Label1)")
    assert fetched(data)[1]["FLAGS"] == [b"\\Flagged"]
    typ, data = m.store("1:2", "FLAGS", "(\\Seen \\Answered)")
    f = fetched(data)
    assert set(f[1]["FLAGS"]) == set(f[2]["FLAGS"]) == {b"\\Seen", b"\\Answered"}
    typ, data = m.store("3", "+FLAGS.SILENT", "(\\Deleted)")
    assert typ == "OK" and not [d for d in data if d], data
    assert fetched(m.fetch("3", "(FLAGS)")[1])[3]["FLAGS"] == [b"\\Deleted"]
    uid3 = fetched(m.fetch("3", "(UID)")[1])[3]["UID"].decode()
    typ, data = m.uid("STORE", uid3, "-FLAGS", "(\\Deleted)")
    it = fetched(data)[3]
    assert it["FLAGS"] == [] and it["UID"].decode() == uid3
    m.close()
    # EXAMINE: STORE is refused
    m.select("INBOX", readonly=True)
    typ, data = m.store("1", "+FLAGS", "(\\Flagged)")   # imaplib raises only for BAD
    assert typ == "NO" and b"READ-ONLY" in data[0], data
    m.logout()


def test_store_condstore(srv, account):
    address, pw = account
    m = login(srv, address, pw)
    for i in range(3):
        append(m, simple(f"c{i}".encode()))
    m.logout()
    with raw_login(srv, address, pw) as c:
        u, _ = c.ok("FETCH 1:3 (MODSEQ)")
        ms = {s: int(v["MODSEQ"][0]) for s, v in fetches(u).items()}
        c.ok("STORE 2 +FLAGS.SILENT (\\Seen)")
        u, t = c.ok(f"STORE 1:3 (UNCHANGEDSINCE {max(ms.values())}) +FLAGS (\\Flagged)")
        assert "[MODIFIED 2]" in t, t
        f = fetches(u)
        assert 2 not in f and {1, 3} <= set(f)
        assert all(b"\\Flagged" in f[s]["FLAGS"] and "MODSEQ" in f[s] for s in (1, 3))
        # .SILENT under CONDSTORE still reports the new MODSEQ
        u, t = c.ok("STORE 1 +FLAGS.SILENT (\\Answered)")
        f = fetches(u)
        assert "MODSEQ" in f[1] and "FLAGS" not in f[1], u
        u, t = c.ok("UID STORE 1:* (UNCHANGEDSINCE 0) +FLAGS (x)")
        assert t.startswith("OK [MODIFIED "), t
        u, t = c.cmd("STORE 1 +FLAGS (\\Recent)")
        assert t.startswith("BAD"), t
        u, t = c.cmd("STORE 1 +FLAGS (\\Bogus)")
        assert t.startswith("BAD"), t
        u, t = c.cmd("STORE 1 PLUSFLAGS (\\Seen)")
        assert t.startswith("BAD"), t


# --------------------------------------------------------------------------
# COPY / MOVE

def test_copy_and_move(srv, account):
    address, pw = account
    m = login(srv, address, pw)
    for i in range(4):
        append(m, simple(f"cp{i}".encode()))
    assert m.create("Keep")[0] == "OK"
    m.logout()
    with raw_login(srv, address, pw) as c:
        u, _ = c.ok("UID SEARCH ALL")
        uids = [int(x) for x in u[-1].split()[2:]]
        u, t = c.ok("COPY 1:2 Keep")
        mm = re.search(r"\[COPYUID (\d+) (\S+) (\S+)\]", t)
        assert mm, t
        assert mm.group(2) == f"{uids[0]}:{uids[1]}"
        u, t = c.cmd("COPY 1 NoSuchBox")
        assert t.startswith("NO [TRYCREATE]"), t
        u, t = c.ok("MOVE 2:3 Keep")
        copyuid = [r for r in u if r.startswith(b"* OK [COPYUID ")]
        assert copyuid, u
        exp = [r for r in u if re.fullmatch(rb"\* \d+ EXPUNGE", r)]
        assert len(exp) == 2, u
        u, _ = c.ok("UID SEARCH ALL")
        assert [int(x) for x in u[-1].split()[2:]] == [uids[0], uids[3]]
        u, t = c.ok(f"UID MOVE {uids[3]} Keep")
        assert [r for r in u if r.startswith(b"* OK [COPYUID ")], u
        u, _ = c.ok("STATUS Keep (MESSAGES)")
        assert b"MESSAGES 5" in u[-1], u
        u, t = c.ok("UID COPY 999999 Keep")   # no such UID: nothing to do
        c.ok("EXAMINE Keep")
        u, t = c.cmd("MOVE 1 INBOX")
        assert t.startswith("NO"), t
        u, t = c.ok("COPY 1 INBOX")
        assert "[COPYUID" in t


# --------------------------------------------------------------------------
# bad input

def test_bad_input(srv, account):
    address, pw = account
    m = login(srv, address, pw)
    append(m, simple(b"only"))
    m.logout()
    with raw_login(srv, address, pw, select=None) as c:
        for cmd in ("FETCH 1 (FLAGS)", "SEARCH ALL", "STORE 1 +FLAGS (x)", "COPY 1 INBOX",
                    "UID FETCH 1 (FLAGS)"):
            u, t = c.cmd(cmd)
            assert t.startswith(("BAD", "NO")), (cmd, t)
        c.ok("SELECT INBOX")
        for cmd in ("FETCH 0 (FLAGS)", "FETCH 1: (FLAGS)", "FETCH a (FLAGS)", "FETCH 5 (FLAGS)",
                    "FETCH 1 (NOSUCHITEM)", "FETCH 1 (BODY[9.FOO])", "FETCH 1", "FETCH 1 ()",
                    "FETCH 1 (BODY[]<1.2.3>)", "FETCH 1 (FLAGS", "SEARCH NOSUCHKEY",
                    "SEARCH", "SEARCH LARGER x", "SEARCH BEFORE 31-Foo-2024", "FETCH 1,,2 FLAGS",
                    "STORE 1 +FLAGS", "COPY 1", "UID FETCH x FLAGS"):
            u, t = c.cmd(cmd)
            assert t.startswith("BAD"), (cmd, t)
        # the session still works
        u, _ = c.ok("FETCH 1 (FLAGS)")
        assert fetches(u)[1]["FLAGS"] == []
        u, t = c.ok("UID FETCH 999999 (FLAGS)")   # UIDs that do not exist: OK, nothing
        assert not fetches(u)
