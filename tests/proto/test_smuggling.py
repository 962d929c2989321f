"""SMTP smuggling and command injection: DATA ends only at CRLF.CRLF,
bare LF / bare CR are refused (554 5.6.0) after the real end, nothing after
a fake terminator runs as a command, STARTTLS discards pipelined plaintext,
and command lines ending in a bare LF are refused."""
import time

import pytest

from conftest import CRLF, check, make_message, queue_id

EXT_SENDER = "sender@remote.test"

FAKE_TERMINATORS = {
    "LF.LF": b"\n.\n",
    "CRLF.LF": b"\r\n.\n",
    "LF.CRLF": b"\n.\r\n",
    "CR.CRLF": b"\r.\r\n",
}


def open_session(server, which):
    if which == "smtp":
        c = server.connect("smtp")
        c.ehlo()
        return c, EXT_SENDER
    address, pw = server.new_account("smug")
    return server.submit_session(address, pw, which), address


def collect_replies(c, wait=1.5):
    """Every reply the server sends within `wait` seconds (after the first)."""
    out = []
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        try:
            out.append(c.reply(timeout=max(0.05, deadline - time.monotonic())))
        except AssertionError as e:
            if "no complete reply line" in str(e):
                break
            raise
    return out


@pytest.mark.parametrize("which", ["smtp", "submission"])
@pytest.mark.parametrize("fake", list(FAKE_TERMINATORS), ids=list(FAKE_TERMINATORS))
def test_fake_terminator(server, which, fake):
    victim, _ = server.new_account("victim")
    smuggled_to, _ = server.new_account("smuggled")
    c, sender = open_session(server, which)
    with c:
        head = make_message(sender, victim, subject=f"smuggling {fake}", body="")
        payload = (head + b"innocent body" + FAKE_TERMINATORS[fake] +
                   f"MAIL FROM:<{sender}>\r\nRCPT TO:<{smuggled_to}>\r\nDATA\r\n".encode() +
                   f"From: {sender}\r\nTo: {smuggled_to}\r\nSubject: smuggled\r\n\r\n".encode() +
                   b"smuggled body\r\n.\r\n")
        check(c.cmd(f"MAIL FROM:<{sender}>"), 250, "2.1.0", "OK")
        check(c.cmd(f"RCPT TO:<{victim}>"), 250, "2.1.5", "OK")
        check(c.cmd("DATA"), 354, None, "Go ahead")
        c.send(payload)
        first = c.reply()
        extra = collect_replies(c)
        assert first.code == 554 and first.last.startswith("554 5.6.0"), \
            f"message with fake terminator {fake!r}: first reply {first.text!r}, " \
            f"then {[r.text for r in extra]}"
        assert extra == [], f"replies after the 554 (smuggled commands executed?): " \
                            f"{[r.text for r in extra]}"
        # the connection stays usable
        check(c.cmd(f"MAIL FROM:<{sender}>"), 250, "2.1.0", "OK")
        check(c.cmd("RSET"), 250, "2.1.5", "Flushed")
    time.sleep(1.5)
    assert server.mailbox_rows(smuggled_to) == [], "smuggled message was delivered"
    assert server.mailbox_rows(victim) == [], "message with bare LF/CR was delivered"


@pytest.mark.parametrize("bad", [b"line one\nline two\r\n", b"line one\rline two\r\n",
                                 b"ends with bare cr\r\r\n", b"bare lf at end\n\r\n"],
                         ids=["LF", "CR", "CRCRLF", "LFCRLF"])
def test_bare_lf_or_cr_in_body_refused(server, bad):
    victim, _ = server.new_account("bare")
    with server.connect("smtp") as c:
        c.ehlo()
        head = make_message(EXT_SENDER, victim, subject="bare", body="")
        check(c.cmd(f"MAIL FROM:<{EXT_SENDER}>"), 250, "2.1.0", "OK")
        check(c.cmd(f"RCPT TO:<{victim}>"), 250, "2.1.5", "OK")
        check(c.cmd("DATA"), 354, None, "Go ahead")
        c.send(head + bad + b".\r\n")
        r = c.reply()
        assert r.code == 554 and r.last.startswith("554 5.6.0"), r.text
        assert collect_replies(c, 1.0) == []
        check(c.cmd(f"MAIL FROM:<{EXT_SENDER}>"), 250, "2.1.0", "OK")
    time.sleep(1.0)
    assert server.mailbox_rows(victim) == []


def test_bare_lf_in_header_refused(server):
    victim, _ = server.new_account("bareh")
    with server.connect("smtp") as c:
        c.ehlo()
        check(c.cmd(f"MAIL FROM:<{EXT_SENDER}>"), 250, "2.1.0", "OK")
        check(c.cmd(f"RCPT TO:<{victim}>"), 250, "2.1.5", "OK")
        check(c.cmd("DATA"), 354, None, "Go ahead")
        c.send(b"Subject: hi\nBcc: x@y\r\nFrom: " + EXT_SENDER.encode() + b"\r\n\r\nbody\r\n.\r\n")
        r = c.reply()
        assert r.code == 554 and r.last.startswith("554 5.6.0"), r.text


def test_crlf_dot_crlf_inside_line_not_terminator(server):
    """A line '..' (stuffed dot) and '.x' do not end the data; CRLF.CRLF does."""
    victim, _ = server.new_account("dots")
    msg = make_message(EXT_SENDER, victim, subject="dots",
                       body=".\r\n..\r\n.x\r\n. \r\nend\r\n")
    with server.connect("smtp") as c:
        c.ehlo()
        qid = queue_id(c.mail_transaction(EXT_SENDER, [victim], msg))
    rows = server.wait_for_message(victim, 1)
    assert rows[0]["qid"] == qid
    from conftest import assert_stored_exactly
    assert_stored_exactly(server.cat(victim, rows[0]["uid"]), msg)


# ---------------------------------------------------------------- STARTTLS injection

@pytest.mark.parametrize("which", ["smtp", "submission"])
def test_starttls_pipelined_plaintext_discarded(server, which):
    victim, _ = server.new_account("inject")
    with server.connect(which) as c:
        c.ehlo()
        c.send(f"STARTTLS\r\nMAIL FROM:<{EXT_SENDER}>\r\nRCPT TO:<{victim}>\r\n".encode())
        r = c.reply()
        assert r.text == "220 2.0.0 Ready to start TLS", r.text
        assert c.buf == b"", f"plaintext reply after the 220: {c.buf!r}"
        c.tls = False
        from conftest import client_context, HOSTNAME
        c.sock = client_context().wrap_socket(c.sock, server_hostname=HOSTNAME)
        c.tls = True
        # nothing may come before our own first command under TLS
        unsolicited = c.pending(1.5)
        assert unsolicited == b"", \
            f"server answered injected plaintext commands under TLS: {unsolicited!r}"
        r = c.ehlo()
        check(r, 250)
        assert len(r.lines) > 1, f"EHLO reply is not the EHLO response: {r.text}"
        # no transaction was opened by the injected MAIL
        check(c.cmd(f"RCPT TO:<{victim}>"), 503, "5.5.1")
        check(c.cmd("NOOP"), 250)


def test_starttls_state_reset(server):
    """After STARTTLS the session starts over: MAIL needs a new EHLO."""
    with server.connect("smtp") as c:
        c.ehlo()
        c.starttls()
        check(c.cmd(f"MAIL FROM:<{EXT_SENDER}>"), 503, "5.5.1")
        c.ehlo()
        check(c.cmd(f"MAIL FROM:<{EXT_SENDER}>"), 250, "2.1.0", "OK")


# ---------------------------------------------------------------- bare LF in commands

def test_bare_lf_between_pipelined_commands(server):
    victim, _ = server.new_account("lfcmd")
    with server.connect("smtp") as c:
        c.ehlo()
        c.send(f"MAIL FROM:<{EXT_SENDER}>\nRCPT TO:<{victim}>\r\n".encode())
        replies = [c.reply()] + collect_replies(c, 1.5)
        texts = [r.text for r in replies]
        assert replies[0].code == 500 and replies[0].last.startswith("500 5.5.2"), texts
        assert not any(r.code == 250 for r in replies), \
            f"a command ending in bare LF was executed: {texts}"
        # MAIL was not executed: there is no transaction
        check(c.cmd(f"RCPT TO:<{victim}>"), 503, "5.5.1")
        check(c.cmd(f"MAIL FROM:<{EXT_SENDER}>"), 250, "2.1.0", "OK")


def test_bare_cr_in_command(server):
    with server.connect("smtp") as c:
        c.ehlo()
        c.send(f"MAIL FROM:<{EXT_SENDER}>\rRCPT TO:<x@example.test>\r\n".encode())
        r = c.reply()
        assert r.code in (500, 501), r.text
        extra = collect_replies(c, 1.0)
        assert not any(x.code == 250 for x in [r] + extra), [x.text for x in [r] + extra]
        check(c.cmd("RCPT TO:<x@example.test>"), 503, "5.5.1")


def test_bare_lf_data_command(server):
    """'DATA\\n' followed by a message must not open a data phase."""
    victim, _ = server.new_account("lfdata")
    with server.connect("smtp") as c:
        c.ehlo()
        check(c.cmd(f"MAIL FROM:<{EXT_SENDER}>"), 250, "2.1.0", "OK")
        check(c.cmd(f"RCPT TO:<{victim}>"), 250, "2.1.5", "OK")
        c.send(b"DATA\n")
        r = c.reply()
        assert r.code == 500 and r.last.startswith("500 5.5.2"), r.text
        check(c.cmd("RSET"), 250, "2.1.5", "Flushed")
    time.sleep(1.0)
    assert server.mailbox_rows(victim) == []
