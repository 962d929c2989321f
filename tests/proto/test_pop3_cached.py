"""POP3 RETR/TOP from the page cache and from the disk give the same bytes.

A message that fits one chunk (64 KiB) and whose file the kernel holds in
memory is served on the event loop (src/pop3/pop3_retr.c, store_cached.c);
any other goes through a worker. These tests read every message with its
file in the page cache, then again after posix_fadvise(DONTNEED) dropped the
files' pages (the RWF_NOWAIT read then fails and the worker serves it), and
with all commands pipelined in one write: the responses must be identical,
in order, and equal to the stored message, byte-stuffed."""
import os
import re

import pytest

from conftest import CRLF, SMTP, make_message, pop3_session, pop3_unstuff

BODIES = [None,
          ".\r\n..\r\n.x\r\nthe last line is a lone dot\r\n.\r\n",
          "",
          "x" * 998 + "\r\n" + "." * 990 + "\r\n" + "Gr\u00fc\u00dfe \u2713\r\n",
          (".line that starts with a dot and fills the block\r\n" * 2000)]   # ~100 KiB


@pytest.fixture(scope="module")
def pop(pop3_server):
    return pop3_server


@pytest.fixture(scope="module")
def mailbox(pop):
    """An account holding BODIES in this order: (address, password, stored)."""
    address, pw = pop.new_account("cached")
    with SMTP(pop.smtp) as c:
        c.ehlo()
        for i, body in enumerate(BODIES):
            m = make_message("someone@remote.test", address, subject=f"cached {i}", body=body)
            r = c.mail_transaction("someone@remote.test", [address], m)
            assert r.code == 250, f"DATA not accepted: {r.text}"
            pop.wait_for_message(address, i + 1)
        c.cmd("QUIT")
    rows = pop.mailbox_rows(address)
    assert len(rows) == len(BODIES)
    stored = [pop.cat(address, row["uid"]) for row in rows]
    assert len(stored[-1]) > 64 * 1024, "the last message must take the worker path"
    return address, pw, stored


def evict(srv):
    """Drops the page-cache pages of the server's mail files (pack files,
    whole message files and indexes; pages a mapping holds stay)."""
    n = 0
    for root, _dirs, files in os.walk(srv.data / "mail"):
        for f in files:
            fd = os.open(os.path.join(root, f), os.O_RDONLY)
            try:
                os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
            finally:
                os.close(fd)
            if os.sep + "msg" + os.sep in os.path.join(root, f):
                n += 1
    assert n > 0, "the message files were not found"


def pipelined(c, commands):
    """Sends COMMANDS in one write; returns [(status, raw body)] in order."""
    c.send("".join(f"{x}\r\n" for x in commands).encode())
    out = []
    for x in commands:
        st = c.reply()
        assert st.startswith("+OK"), f"{x}: {st!r}"
        out.append((st, c.multi()))
    return out


def check_stuffed(raw, stored, what):
    for line in raw.split(CRLF):
        assert not (line.startswith(b".") and not line.startswith(b"..")), \
            f"{what}: a line starting with a dot is not byte-stuffed: {line[:60]!r}"
    assert pop3_unstuff(raw) == stored, f"{what}: differs from `mailbox cat`"


@pytest.mark.parametrize("which", ["pop3s", "pop3"])
def test_retr_cached_then_evicted(pop, mailbox, which):
    address, pw, stored = mailbox
    cmds = [f"RETR {i + 1}" for i in range(len(stored))]
    rounds = []
    for evicted in (False, True):
        if evicted:
            evict(pop)
        with pop3_session(pop, address, pw, which) as c:
            rounds.append(pipelined(c, cmds))
            assert c.cmd("QUIT").startswith("+OK")
    for i, ((st1, raw1), (st2, raw2)) in enumerate(zip(*rounds)):
        assert st1 == st2 == f"+OK {len(stored[i])} octets", (st1, st2)
        assert raw1 == raw2, f"RETR {i + 1}: cached and evicted bytes differ"
        check_stuffed(raw1, stored[i], f"RETR {i + 1}")


def test_top_cached_then_evicted(pop, mailbox):
    address, pw, stored = mailbox
    cmds = [f"TOP {i + 1} {n}" for i in range(len(stored)) for n in (0, 1, 3)]
    rounds = []
    for evicted in (False, True):
        if evicted:
            evict(pop)
        with pop3_session(pop, address, pw) as c:
            rounds.append(pipelined(c, cmds))
            assert c.cmd("QUIT").startswith("+OK")
    assert rounds[0] == rounds[1], "TOP: cached and evicted bytes differ"
    for (st, raw), cmd in zip(rounds[0], cmds):
        i, n = (int(x) for x in re.match(r"TOP (\d+) (\d+)", cmd).groups())
        msg = stored[i - 1]
        got = pop3_unstuff(raw)
        head_end = msg.index(b"\r\n\r\n") + 4
        # the header and the blank line, then at most N lines of the body
        assert msg.startswith(got) and len(got) >= head_end, cmd
        assert got[head_end:].count(b"\r\n") <= n, cmd
        for line in raw.split(CRLF):
            assert not (line.startswith(b".") and not line.startswith(b"..")), cmd


def test_retr_mixed_with_other_commands(pop, mailbox):
    """Cached RETRs answered in one pass keep their place among pipelined
    commands of other kinds."""
    address, pw, stored = mailbox
    with pop3_session(pop, address, pw) as c:
        c.send(b"RETR 1\r\nNOOP\r\nRETR 2\r\nSTAT\r\nRETR 999\r\nRETR 3\r\n")
        assert c.reply().startswith("+OK")
        check_stuffed(c.multi(), stored[0], "RETR 1")
        assert c.reply().startswith("+OK")           # NOOP
        assert c.reply().startswith("+OK")
        check_stuffed(c.multi(), stored[1], "RETR 2")
        assert c.reply().startswith(f"+OK {len(stored)} ")   # STAT
        assert c.reply().startswith("-ERR")          # no such message
        assert c.reply().startswith("+OK")
        check_stuffed(c.multi(), stored[2], "RETR 3")
        assert c.cmd("QUIT").startswith("+OK")
