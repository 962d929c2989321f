"""SMTP replies, one test each, and the session still works after each
recoverable error.  Raw sockets, bytes exactly as written here."""
import pytest

from conftest import (CRLF, DEFAULT_MAX_SIZE, DOMAIN, HOSTNAME, SMTP, assert_stored_exactly, check,
                      dot_stuff, make_message, queue_id)

EXT_SENDER = "sender@remote.test"


@pytest.fixture(scope="module")
def rcpt(server):
    address, _ = server.new_account("err")
    return address


def usable(c, rcpt, after_ehlo=True):
    """The connection still works: NOOP, then a MAIL/RCPT/RSET round."""
    check(c.cmd("NOOP"), 250)
    check(c.cmd(f"MAIL FROM:<{EXT_SENDER}>"), 250, "2.1.0", "OK")
    check(c.cmd(f"RCPT TO:<{rcpt}>"), 250, "2.1.5", "OK")
    check(c.cmd("RSET"), 250, "2.1.5", "Flushed")


def ehlo_keywords(r):
    kws = r.keywords()
    return kws, {k.split()[0] for k in kws}


# ---------------------------------------------------------------- greeting, EHLO

def test_greeting(server):
    with server.connect("smtp") as c:
        assert c.greeting.text == f"220 {HOSTNAME} ESMTP Roost"


def test_greeting_submissions(server):
    with server.connect("submissions") as c:
        assert c.greeting.text == f"220 {HOSTNAME} ESMTP Roost"


def test_ehlo_smtp_listener(server):
    with server.connect("smtp") as c:
        r = c.ehlo()
        check(r, 250)
        assert len(r.lines) > 1 and r.lines[0].startswith(f"250-{HOSTNAME}"), r.text
        kws, names = ehlo_keywords(r)
        for k in ("PIPELINING", "8BITMIME", "SMTPUTF8", "ENHANCEDSTATUSCODES", "CHUNKING",
                  "STARTTLS"):
            assert k in names, f"{k} missing from EHLO: {r.text}"
        assert f"SIZE {DEFAULT_MAX_SIZE}" in kws, r.text
        assert "AUTH" not in names, f"AUTH offered on the smtp listener: {r.text}"
        c.starttls()
        r = c.ehlo()
        kws, names = ehlo_keywords(r)
        assert "STARTTLS" not in names, f"STARTTLS offered under TLS: {r.text}"
        assert "AUTH" not in names, f"AUTH offered on the smtp listener under TLS: {r.text}"
        for k in ("PIPELINING", "8BITMIME", "SMTPUTF8", "ENHANCEDSTATUSCODES", "CHUNKING"):
            assert k in names, f"{k} missing from EHLO under TLS: {r.text}"
        assert f"SIZE {DEFAULT_MAX_SIZE}" in kws, r.text


def test_ehlo_submission(server):
    with server.connect("submission") as c:
        r = c.ehlo()
        kws, names = ehlo_keywords(r)
        assert "STARTTLS" in names, r.text
        assert "AUTH" not in names, f"AUTH offered before STARTTLS: {r.text}"
        c.starttls()
        r = c.ehlo()
        kws, names = ehlo_keywords(r)
        assert "STARTTLS" not in names, r.text
        auth = [k for k in kws if k.split()[0] == "AUTH"]
        assert auth and {"PLAIN", "LOGIN"} <= set(auth[0].split()[1:]), r.text
        assert f"SIZE {DEFAULT_MAX_SIZE}" in kws, r.text


def test_ehlo_submissions(server):
    with server.connect("submissions") as c:
        r = c.ehlo()
        kws, names = ehlo_keywords(r)
        assert "STARTTLS" not in names, r.text
        auth = [k for k in kws if k.split()[0] == "AUTH"]
        assert auth and {"PLAIN", "LOGIN"} <= set(auth[0].split()[1:]), r.text
        for k in ("PIPELINING", "8BITMIME", "SMTPUTF8", "ENHANCEDSTATUSCODES", "CHUNKING"):
            assert k in names, f"{k} missing: {r.text}"


def test_helo(server, rcpt):
    with server.connect("smtp") as c:
        check(c.cmd("HELO client.example.net"), 250)
        usable(c, rcpt)


# ---------------------------------------------------------------- the happy path replies

def test_transaction_replies_and_delivery(server, rcpt):
    address, _ = server.new_account("txn")
    msg = make_message(EXT_SENDER, address)
    with server.connect("smtp") as c:
        c.ehlo()
        check(c.cmd(f"MAIL FROM:<{EXT_SENDER}>"), 250, "2.1.0", "OK")
        check(c.cmd(f"RCPT TO:<{address}>"), 250, "2.1.5", "OK")
        check(c.cmd("DATA"), 354, None, "Go ahead")
        c.send(dot_stuff(msg))
        qid = queue_id(c.reply())
        check(c.cmd("RSET"), 250, "2.1.5", "Flushed")
        check(c.cmd("NOOP"), 250)
        check(c.cmd(f"VRFY <{address}>"), 252)
        check(c.cmd("HELP"), 214)
        check(c.cmd("QUIT"), 221)
        assert c.expect_closed(5), "connection not closed after QUIT"
    rows = server.wait_for_message(address, 1)
    assert len(rows) == 1, rows
    assert rows[0]["qid"] == qid, f"mailbox list queue id {rows[0]} != 250 reply's {qid}"
    assert_stored_exactly(server.cat(address, rows[0]["uid"]), msg)


def test_rset_mid_transaction(server, rcpt):
    with server.connect("smtp") as c:
        c.ehlo()
        check(c.cmd(f"MAIL FROM:<{EXT_SENDER}>"), 250, "2.1.0", "OK")
        check(c.cmd(f"RCPT TO:<{rcpt}>"), 250, "2.1.5", "OK")
        check(c.cmd("RSET"), 250, "2.1.5", "Flushed")
        # the transaction is gone
        check(c.cmd("DATA"), 503, "5.5.1")
        usable(c, rcpt)


# ---------------------------------------------------------------- errors

def test_unknown_command(server, rcpt):
    with server.connect("smtp") as c:
        c.ehlo()
        check(c.cmd("FROBNICATE now"), 500, "5.5.1")
        usable(c, rcpt)


def test_ehlo_without_domain_syntax_error(server, rcpt):
    with server.connect("smtp") as c:
        check(c.cmd("EHLO"), 501)
        c.ehlo()
        usable(c, rcpt)


def test_mail_missing_path_syntax_error(server, rcpt):
    with server.connect("smtp") as c:
        c.ehlo()
        check(c.cmd("MAIL FROM:"), 501)
        usable(c, rcpt)


def test_bad_sender_syntax(server, rcpt):
    with server.connect("smtp") as c:
        c.ehlo()
        check(c.cmd("MAIL FROM:<bad@@remote..test>"), 501, "5.1.7")
        usable(c, rcpt)


def test_bad_recipient_syntax(server, rcpt):
    with server.connect("smtp") as c:
        c.ehlo()
        check(c.cmd(f"MAIL FROM:<{EXT_SENDER}>"), 250, "2.1.0", "OK")
        check(c.cmd(f"RCPT TO:<bad@@{DOMAIN}>"), 501, "5.1.3")
        # the transaction survives a bad RCPT
        check(c.cmd(f"RCPT TO:<{rcpt}>"), 250, "2.1.5", "OK")
        check(c.cmd("RSET"), 250, "2.1.5", "Flushed")
        usable(c, rcpt)


def test_mail_before_ehlo(server, rcpt):
    with server.connect("smtp") as c:
        check(c.cmd(f"MAIL FROM:<{EXT_SENDER}>"), 503, "5.5.1")
        c.ehlo()
        usable(c, rcpt)


def test_rcpt_before_mail(server, rcpt):
    with server.connect("smtp") as c:
        c.ehlo()
        check(c.cmd(f"RCPT TO:<{rcpt}>"), 503, "5.5.1")
        usable(c, rcpt)


def test_data_before_rcpt(server, rcpt):
    with server.connect("smtp") as c:
        c.ehlo()
        check(c.cmd("DATA"), 503, "5.5.1")
        check(c.cmd(f"MAIL FROM:<{EXT_SENDER}>"), 250, "2.1.0", "OK")
        check(c.cmd("DATA"), 503, "5.5.1")
        check(c.cmd("RSET"), 250, "2.1.5", "Flushed")
        usable(c, rcpt)


def test_nested_mail(server, rcpt):
    with server.connect("smtp") as c:
        c.ehlo()
        check(c.cmd(f"MAIL FROM:<{EXT_SENDER}>"), 250, "2.1.0", "OK")
        check(c.cmd(f"MAIL FROM:<{EXT_SENDER}>"), 503, "5.5.1")
        # the first transaction is still open
        check(c.cmd(f"RCPT TO:<{rcpt}>"), 250, "2.1.5", "OK")
        check(c.cmd("RSET"), 250, "2.1.5", "Flushed")
        usable(c, rcpt)


def test_line_too_long(server, rcpt):
    with server.connect("smtp") as c:
        c.ehlo()
        c.send(b"NOOP " + b"x" * 3000 + CRLF)
        r = c.reply()
        assert r.text == "500 5.5.2 Line too long", r.text
        # nothing of the long line is executed as further commands
        assert c.pending(1.0) == b""
        usable(c, rcpt)


def test_line_too_long_in_transaction(server, rcpt):
    with server.connect("smtp") as c:
        c.ehlo()
        check(c.cmd(f"MAIL FROM:<{EXT_SENDER}>"), 250, "2.1.0", "OK")
        c.send(b"RCPT TO:<" + b"a" * 2100 + b"@" + DOMAIN.encode() + b">" + CRLF)
        r = c.reply()
        assert r.text == "500 5.5.2 Line too long", r.text
        assert c.pending(1.0) == b""
        check(c.cmd(f"RCPT TO:<{rcpt}>"), 250, "2.1.5", "OK")
        check(c.cmd("RSET"), 250, "2.1.5", "Flushed")


def test_long_line_under_limit_accepted(server, rcpt):
    with server.connect("smtp") as c:
        c.ehlo()
        line = b"NOOP " + b"x" * (2000 - 5 - 2)
        assert len(line) + 2 == 2000
        check(c.cmd(line), 250)
        usable(c, rcpt)


def test_bare_lf_command_refused(server, rcpt):
    with server.connect("smtp") as c:
        c.ehlo()
        c.send(b"NOOP\n")
        check(c.reply(), 500, "5.5.2")
        usable(c, rcpt)


def test_twenty_bad_commands_421(server):
    with server.connect("smtp") as c:
        c.ehlo()
        replies = []
        closed = False
        for i in range(21):
            try:
                r = c.cmd(f"BOGUS{chr(65 + i)}")  # unknown verbs (letters only)
            except AssertionError as e:  # closed without a 421
                raise AssertionError(f"closed after {len(replies)} bad commands without 421: "
                                     f"{[x.text for x in replies]} ({e})")
            replies.append(r)
            if r.code == 421:
                closed = c.expect_closed(5)
                break
            check(r, 500, "5.5.1")
        codes = [r.code for r in replies]
        assert codes[-1] == 421, f"no 421 after 21 bad commands: {codes}"
        assert 20 <= len(replies) <= 21, f"421 after {len(replies)} bad commands: {codes}"
        assert closed, "connection not closed after 421"


# ---------------------------------------------------------------- TLS / AUTH replies

def test_auth_before_starttls_on_submission(server, rcpt):
    with server.connect("submission") as c:
        c.ehlo()
        r = c.cmd("AUTH PLAIN AGZvbwBiYXJiYXpxdXV4")
        assert r.text == "530 5.7.0 Must issue a STARTTLS command first", r.text
        check(c.cmd("NOOP"), 250)


def test_mail_before_starttls_on_submission(server, rcpt):
    with server.connect("submission") as c:
        c.ehlo()
        r = c.cmd(f"MAIL FROM:<{rcpt}>")
        assert r.text == "530 5.7.0 Must issue a STARTTLS command first", r.text
        check(c.cmd("NOOP"), 250)
        c.starttls()
        c.ehlo()
        r = c.cmd(f"MAIL FROM:<{rcpt}>")
        assert r.text == "530 5.7.0 Authentication Required", r.text


def test_mail_without_auth_submission(server, rcpt):
    with server.connect("submission") as c:
        c.ehlo()
        c.starttls()
        c.ehlo()
        r = c.cmd(f"MAIL FROM:<{rcpt}>")
        assert r.text == "530 5.7.0 Authentication Required", r.text
        check(c.cmd("NOOP"), 250)


def test_mail_without_auth_submissions(server, rcpt):
    with server.connect("submissions") as c:
        c.ehlo()
        r = c.cmd(f"MAIL FROM:<{rcpt}>")
        assert r.text == "530 5.7.0 Authentication Required", r.text
        check(c.cmd("NOOP"), 250)


def test_starttls_reply(server, rcpt):
    with server.connect("smtp") as c:
        c.ehlo()
        r = c.starttls()
        assert r.text == "220 2.0.0 Ready to start TLS", r.text
        c.ehlo()
        usable(c, rcpt)


def test_starttls_under_tls_503(server, rcpt):
    with server.connect("smtp") as c:
        c.ehlo()
        c.starttls()
        c.ehlo()
        check(c.cmd("STARTTLS"), 503)
        usable(c, rcpt)
    with server.connect("submissions") as c:
        c.ehlo()
        check(c.cmd("STARTTLS"), 503)
        check(c.cmd("NOOP"), 250)


def test_starttls_cert_verifies_with_cafile(server):
    """The self-signed certificate at DATA/tls/cert.pem works as the CA file."""
    assert server.cert.exists(), f"{server.cert} missing"
    assert (server.data / "tls" / "key.pem").exists()
    with server.connect("submissions", cafile=server.cert) as c:
        c.ehlo()
        check(c.cmd("NOOP"), 250)
    with server.connect("submission") as c:
        c.ehlo()
        c.starttls(cafile=server.cert)
        c.ehlo()
        check(c.cmd("NOOP"), 250)


def test_self_signed_cert_is_ecdsa_p256(server):
    import subprocess
    out = subprocess.run(["openssl", "x509", "-in", str(server.cert), "-noout", "-text"],
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=20).stdout
    assert b"id-ecPublicKey" in out and (b"prime256v1" in out or b"P-256" in out), out[:2000]


# ---------------------------------------------------------------- BDAT

def test_bdat_chunks(server):
    address, _ = server.new_account("bdat")
    msg = make_message(EXT_SENDER, address, subject="bdat")
    # BDAT carries the bytes as they are: no dot-stuffing, lines starting with "."
    a, b = msg[:57], msg[57:]
    with server.connect("smtp") as c:
        c.ehlo()
        check(c.cmd(f"MAIL FROM:<{EXT_SENDER}>"), 250, "2.1.0", "OK")
        check(c.cmd(f"RCPT TO:<{address}>"), 250, "2.1.5", "OK")
        c.send(f"BDAT {len(a)}\r\n".encode() + a)
        r = c.reply()
        assert r.text == f"250 2.0.0 {len(a)} octets received", r.text
        c.send(f"BDAT {len(b)} LAST\r\n".encode() + b)
        qid = queue_id(c.reply())
        usable(c, address)
    rows = server.wait_for_message(address, 1)
    assert len(rows) == 1 and rows[0]["qid"] == qid, rows
    assert_stored_exactly(server.cat(address, rows[0]["uid"]), msg)


def test_bdat_pipelined_with_zero_last(server):
    address, _ = server.new_account("bdat0")
    msg = make_message(EXT_SENDER, address, subject="bdat zero last")
    with server.connect("smtp") as c:
        c.ehlo()
        c.send((f"MAIL FROM:<{EXT_SENDER}>\r\nRCPT TO:<{address}>\r\n"
                f"BDAT {len(msg)}\r\n").encode() + msg + b"BDAT 0 LAST\r\n")
        check(c.reply(), 250, "2.1.0", "OK")
        check(c.reply(), 250, "2.1.5", "OK")
        r = c.reply()
        assert r.text == f"250 2.0.0 {len(msg)} octets received", r.text
        qid = queue_id(c.reply())
    rows = server.wait_for_message(address, 1)
    assert rows[0]["qid"] == qid
    assert_stored_exactly(server.cat(address, rows[0]["uid"]), msg)


def test_pipelined_transaction(server):
    address, _ = server.new_account("pipe")
    msg = make_message(EXT_SENDER, address, subject="pipelined")
    with server.connect("smtp") as c:
        c.ehlo()
        c.send((f"MAIL FROM:<{EXT_SENDER}>\r\nRCPT TO:<{address}>\r\nDATA\r\n").encode())
        check(c.reply(), 250, "2.1.0", "OK")
        check(c.reply(), 250, "2.1.5", "OK")
        check(c.reply(), 354, None, "Go ahead")
        c.send(dot_stuff(msg) + b"QUIT\r\n")
        qid = queue_id(c.reply())
        check(c.reply(), 221)
    rows = server.wait_for_message(address, 1)
    assert rows[0]["qid"] == qid
    assert_stored_exactly(server.cat(address, rows[0]["uid"]), msg)


# ---------------------------------------------------------------- pipelined QUIT

def _all_replies(c, n, timeout=10):
    out = []
    for _ in range(n):
        out.append(c.reply(timeout))
    return out


def test_pipelined_ehlo_quit_first_connection(make_server):
    """The first session of a fresh server, a client that pipelines
    EHLO and QUIT (even before the greeting): every reply arrives in order
    before the close."""
    srv = make_server()
    c = SMTP(srv.smtp, read_greeting=False)
    with c:
        c.send(b"EHLO client.example.net\r\nQUIT\r\n")
        try:
            g, e, q = _all_replies(c, 3)
        except AssertionError as err:
            raise AssertionError(f"replies lost with pipelined EHLO+QUIT: {err}")
        check(g, 220)
        check(e, 250)
        check(q, 221)


def test_pipelined_rcpt_quit(server):
    """QUIT pipelined after MAIL/RCPT: the RCPT reply (which needs a
    directory lookup) is not lost when QUIT closes the session."""
    address, _ = server.new_account("pq")
    with server.connect("smtp") as c:
        c.ehlo()
        c.send((f"MAIL FROM:<{EXT_SENDER}>\r\nRCPT TO:<{address}>\r\n"
                f"RCPT TO:<nobody-{address}>\r\nQUIT\r\n").encode())
        try:
            m, r1, r2, q = _all_replies(c, 4)
        except AssertionError as err:
            raise AssertionError(f"replies lost with pipelined ...QUIT: {err}")
        check(m, 250, "2.1.0", "OK")
        check(r1, 250, "2.1.5", "OK")
        check(r2, 550, "5.1.1")
        check(q, 221)
