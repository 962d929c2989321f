"""Pack compaction with real clients: mail delivered by smtplib fills more
than one 16 MiB pack, imaplib deletes most of it (STORE \\Deleted +
EXPUNGE), `roost mailbox compact` rewrites the mostly-empty packs while the
server runs, and the disk use of msg/pack shrinks once the retired packs
are removed (`--grace 0`). Every remaining message FETCHes byte-identical
through imaplib and RETRs through poplib, also from a POP3 session whose
snapshot was taken before the rewrite (it reads the retired pack during the
grace period, and for as long as it stays open). With `[store] compact_interval = 1s` the server compacts on
its own after an expunge."""
import poplib
import smtplib
import time

import pytest

from conftest import ALL_LISTENERS, DOMAIN, RoostServer, _finish, client_context

N = 26                  # messages of ~800 KiB: more than one 16 MiB pack
LINES = 800             # lines of 1,000 octets each
KEEP = (1, 3, N - 1, N)  # UIDs that survive: two in the first pack, two at the end


def big_message(rcpt, i):
    """~800 KiB of ASCII whose every line names message i and the line."""
    head = (f"From: sender@remote.test\r\nTo: {rcpt}\r\nSubject: compact {i}\r\n"
            f"Message-ID: <compact.{i}.{time.monotonic_ns()}@remote.test>\r\n\r\n")
    fill = "".join(chr(33 + (i * 7 + k) % 90) for k in range(980))
    body = "".join(f"{i:04d}.{k:06d} {fill[k % 17:]}{fill[:k % 17]}\r\n" for k in range(LINES))
    return (head + body).encode()


def pack_bytes(srv, address):
    d = srv.data / "mail" / address / "msg" / "pack"
    return sum(p.stat().st_size for p in d.iterdir() if p.is_file())


def packs(srv, address):
    d = srv.data / "mail" / address / "msg" / "pack"
    return sorted(p.name for p in d.iterdir() if p.is_file())


def imap_bodies(srv, address, pw):
    """{uid: bytes} of INBOX through imaplib UID FETCH BODY.PEEK[]."""
    from conftest import imap_login
    m = imap_login(srv, address, pw)
    try:
        typ, _ = m.select("INBOX")
        assert typ == "OK"
        typ, data = m.uid("FETCH", "1:*", "(UID BODY.PEEK[])")
        assert typ == "OK", data
        out = {}
        for item in data:
            if isinstance(item, tuple):
                meta = item[0].decode()
                uid = int(meta.split("UID ", 1)[1].split()[0])
                out[uid] = item[1]
        return out
    finally:
        m.logout()


def pop_login(srv, address, pw, timeout=20):
    """A poplib session; retried (bounded) while an earlier session's lock
    is still being released."""
    deadline = time.monotonic() + timeout
    while True:
        p = poplib.POP3_SSL("127.0.0.1", srv.ports["pop3s"], context=client_context(),
                            timeout=30)
        try:
            p.user(address)
            p.pass_(pw)
            return p
        except poplib.error_proto:
            p.close()
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def pop_retr(p, n):
    _, lines, _ = p.retr(n)
    return b"\r\n".join(lines) + b"\r\n"


def fill_and_expunge(srv, address, pw):
    """N big messages by smtplib, all but KEEP expunged through IMAP; returns
    {uid: stored bytes} of the survivors."""
    with smtplib.SMTP("127.0.0.1", srv.smtp, timeout=120) as s:
        for i in range(1, N + 1):
            s.sendmail("sender@remote.test", [address], big_message(address, i))
    srv.wait_for_message(address, N, timeout=120)
    before = imap_bodies(srv, address, pw)
    assert sorted(before) == list(range(1, N + 1))
    for i in range(1, N + 1):
        assert before[i].endswith(big_message(address, i).split(b"\r\n\r\n", 1)[1])
    assert len(packs(srv, address)) >= 2

    from conftest import imap_login
    m = imap_login(srv, address, pw)
    m.select("INBOX")
    gone = ",".join(str(u) for u in range(1, N + 1) if u not in KEEP)
    typ, _ = m.uid("STORE", gone, "+FLAGS.SILENT", r"(\Deleted)")
    assert typ == "OK"
    typ, _ = m.expunge()
    assert typ == "OK"
    m.logout()
    return {u: before[u] for u in KEEP}


@pytest.fixture(scope="module")
def filled(all_server):
    srv = all_server
    address, pw = srv.new_account("compact")
    return srv, address, pw, fill_and_expunge(srv, address, pw)


def test_compact_cli_shrinks_and_keeps_bytes(filled):
    srv, address, pw, want = filled
    disk0 = pack_bytes(srv, address)
    packs0 = packs(srv, address)

    # a POP3 session whose snapshot names the old (pack, offset)s
    p_old = pop_login(srv, address, pw)
    assert p_old.stat()[0] == len(KEEP)

    r = srv.roost("mailbox", "compact", address)
    assert r.rc == 0, r
    assert f"{address}: " in r.stdout and " packs rewritten" in r.stdout, r.stdout
    rewritten = int(r.stdout.split(": ", 1)[1].split()[0])
    assert rewritten >= 1, r.stdout
    waiting = int(r.stdout.rsplit("; ", 1)[1].split()[0])
    assert waiting >= rewritten, r.stdout
    # within the grace period nothing is removed yet: every old pack is there
    assert set(packs0) <= set(packs(srv, address))

    # the old snapshot still reads every message from the retired pack(s)
    for n, uid in enumerate(sorted(want), 1):
        assert pop_retr(p_old, n) == want[uid], f"old POP3 snapshot, message {n}"
    # past the grace but with that session open: nothing is removed
    r = srv.roost("mailbox", "compact", "--grace", "0", address)
    assert r.rc == 0 and "none removed: a POP3 session is open" in r.stdout, r.stdout
    assert set(packs0) <= set(packs(srv, address))
    for n, uid in enumerate(sorted(want), 1):
        assert pop_retr(p_old, n) == want[uid], f"old POP3 snapshot, message {n}"
    p_old.quit()

    # IMAP looks the rows up again: the new places, the same bytes
    got = imap_bodies(srv, address, pw)
    assert got == want

    # past the grace: the retired packs go and the disk use shrinks
    # (the server drops the POP3 lock as the session ends, just after QUIT's
    # reply: retried, bounded)
    removed = 0
    deadline = time.monotonic() + 10
    while True:
        r = srv.roost("mailbox", "compact", "--grace", "0", address)
        assert r.rc == 0, r
        assert " retired packs removed (" in r.stdout, r.stdout
        removed += int(r.stdout.split("; ")[1].split()[0])
        if "none removed" not in r.stdout or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert removed == rewritten, r.stdout
    disk1 = pack_bytes(srv, address)
    assert disk1 < disk0 - 8 * 1024 * 1024, (disk0, disk1)
    assert disk1 < 4 * 1024 * 1024 + sum(len(b) for b in want.values()), (disk0, disk1)

    assert imap_bodies(srv, address, pw) == want
    p = pop_login(srv, address, pw)
    assert p.stat()[0] == len(KEEP)
    for n, uid in enumerate(sorted(want), 1):
        assert pop_retr(p, n) == want[uid], f"POP3 RETR {n} after compaction"
    p.quit()
    # `mailbox cat` (store_read) agrees
    for uid, body in want.items():
        assert srv.cat(address, uid) == body

    # a second pass finds nothing to do
    r = srv.roost("mailbox", "compact", address)
    assert r.rc == 0 and r.stdout.startswith(f"{address}: 0 packs rewritten"), r.stdout


def test_compact_all_and_bad_input(filled):
    srv, address, pw, want = filled
    r = srv.roost("mailbox", "compact", "--all")
    assert r.rc == 0, r
    assert "account stores looked at" in r.stdout, r.stdout
    assert imap_bodies(srv, address, pw) == want
    r = srv.roost("mailbox", "compact", "nobody-here@example.test")
    assert r.rc == 1 and "no mail store" in r.stderr, r
    for args in (["compact"], ["compact", "--grace", "-1", address],
                 ["compact", "--grace", "x", address], ["compact", address, "extra"],
                 ["compact", "--bogus"]):
        r = srv.roost("mailbox", *args)
        assert r.rc == 2 and "usage" in r.stderr, (args, r)


def test_server_compacts_on_its_own(roost_binary):
    srv = RoostServer(listeners=ALL_LISTENERS,
                      extra_config="[store]\ncompact_interval = 1s\ncompact_grace = 0\n")
    srv.start()
    try:
        srv.ensure_domain(DOMAIN)
        address, pw = srv.new_account("autocompact")
        want = fill_and_expunge(srv, address, pw)
        # the expunge made the account due: within a few passes the mostly
        # empty packs are rewritten, then (grace 0) removed
        deadline = time.monotonic() + 60
        while pack_bytes(srv, address) > 6 * 1024 * 1024 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert pack_bytes(srv, address) <= 6 * 1024 * 1024, packs(srv, address)
        assert imap_bodies(srv, address, pw) == want
        p = pop_login(srv, address, pw)
        for n, uid in enumerate(sorted(want), 1):
            assert pop_retr(p, n) == want[uid]
        p.quit()
        r = srv.roost("mailbox", "compact", address)
        assert r.rc == 0 and r.stdout.startswith(f"{address}: 0 packs rewritten"), r.stdout
        log = (srv.data / "log" / "roost.log").read_text(errors="replace")
        assert "event=compacted" in log and f"account={address}" in log
    finally:
        _finish(srv)
