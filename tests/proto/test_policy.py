"""Policy: no open relay, sender ownership, aliases / plus / catch-all,
daily limits, recipient and size limits, overlong lines."""
import re
import time

import pytest

from conftest import (CRLF, DOMAIN, assert_stored_exactly, check, dot_stuff, make_message,
                      queue_id, split_received, unique)

EXT_SENDER = "sender@remote.test"
RELAY_DENIED = "550 5.7.1 Relaying denied"
NOT_OWNED = "553 5.7.1 Sender address not owned by this account"
DAILY = "550 5.4.5 Daily user sending limit exceeded"
TOO_MANY = "452 4.5.3 Too many recipients"
TOO_BIG = "552 5.3.4 Message size exceeds fixed limit"


def assert_no_message(server, address, wait=2.0):
    time.sleep(wait)
    rows = server.mailbox_rows(address)
    assert rows == [], f"{address} received mail it should not have: {rows}"


# ---------------------------------------------------------------- relay

def test_no_open_relay_on_smtp_listener(server):
    local, _ = server.new_account("relay")
    with server.connect("smtp") as c:
        c.ehlo()
        for sender in (EXT_SENDER, local, ""):
            check(c.cmd(f"MAIL FROM:<{sender}>"), 250, "2.1.0", "OK")
            for rc in ("victim@elsewhere.invalid", f"victim@sub.{DOMAIN}",
                       f"victim@{DOMAIN}.evil.invalid"):
                r = c.cmd(f"RCPT TO:<{rc}>")
                assert r.text == RELAY_DENIED, f"RCPT TO:<{rc}> from <{sender}>: {r.text}"
            check(c.cmd("RSET"), 250, "2.1.5", "Flushed")
        # under STARTTLS too
        c.starttls()
        c.ehlo()
        check(c.cmd(f"MAIL FROM:<{EXT_SENDER}>"), 250, "2.1.0", "OK")
        r = c.cmd("RCPT TO:<victim@elsewhere.invalid>")
        assert r.text == RELAY_DENIED, r.text


def test_no_relay_via_source_route_or_percent_hack(server):
    with server.connect("smtp") as c:
        c.ehlo()
        check(c.cmd(f"MAIL FROM:<{EXT_SENDER}>"), 250, "2.1.0", "OK")
        for rc in (f"<@{DOMAIN}:victim@elsewhere.invalid>",
                   f"<victim%elsewhere.invalid@{DOMAIN}>",
                   f"<victim@elsewhere.invalid@{DOMAIN}>",
                   f"<\"victim@elsewhere.invalid\"@{DOMAIN}>"):
            r = c.cmd(f"RCPT TO:{rc}")
            assert 500 <= r.code <= 599, f"RCPT TO:{rc} -> {r.text}"


def test_unknown_local_user_550_511(server):
    with server.connect("smtp") as c:
        c.ehlo()
        check(c.cmd(f"MAIL FROM:<{EXT_SENDER}>"), 250, "2.1.0", "OK")
        check(c.cmd(f"RCPT TO:<no-such-user-{unique()}@{DOMAIN}>"), 550, "5.1.1")
        local, _ = server.new_account("known")
        check(c.cmd(f"RCPT TO:<{local}>"), 250, "2.1.5", "OK")


@pytest.mark.parametrize("which", ["submission", "submissions"])
def test_submission_without_auth_no_relay(server, which):
    local, _ = server.new_account("noauth")
    with server.connect(which) as c:
        c.ehlo()
        if which == "submission":
            c.starttls()
            c.ehlo()
        r = c.cmd(f"MAIL FROM:<{local}>")
        assert r.text == "530 5.7.0 Authentication Required", r.text
        r = c.cmd("RCPT TO:<victim@elsewhere.invalid>")
        assert r.code in (503, 530, 550), r.text
        r = c.cmd("DATA")
        assert r.code in (503, 530), r.text
        check(c.cmd("NOOP"), 250)


@pytest.mark.parametrize("which", ["submission", "submissions"])
def test_authenticated_relay_queued(server, which):
    address, pw = server.new_account("out")
    msg = make_message(address, "friend@elsewhere.invalid", subject="outbound")
    with server.submit_session(address, pw, which) as c:
        qid = queue_id(c.mail_transaction(address, ["friend@elsewhere.invalid"], msg))
    q = server.queue_list()
    assert qid in q, f"queue id {qid} not in queue list:\n{q}"


# ---------------------------------------------------------------- sender ownership

@pytest.mark.parametrize("which", ["submission", "submissions"])
def test_envelope_sender_not_owned(server, which):
    address, pw = server.new_account("own")
    other, _ = server.new_account("victim")
    with server.submit_session(address, pw, which) as c:
        for sender in (other, "ceo@elsewhere.invalid", f"{address.split('@')[0]}@other.invalid"):
            r = c.cmd(f"MAIL FROM:<{sender}>")
            assert r.text == NOT_OWNED, f"MAIL FROM:<{sender}> -> {r.text}"
        # the session goes on with the owned address
        check(c.cmd(f"MAIL FROM:<{address}>"), 250, "2.1.0", "OK")


def test_from_header_not_owned(server):
    address, pw = server.new_account("hdr")
    other, _ = server.new_account("victim")
    rcpt, _ = server.new_account("rcpt")
    msg = make_message(other, rcpt, subject="spoofed From")
    with server.submit_session(address, pw) as c:
        r = c.mail_transaction(address, [rcpt], msg)
        assert r.text == NOT_OWNED, r.text
        # connection still usable: a proper message goes through
        good = make_message(f'"Real Sender" <{address}>', rcpt, subject="good")
        queue_id(c.mail_transaction(address, [rcpt], good))
    rows = server.wait_for_message(rcpt, 1)
    time.sleep(1.0)
    rows = server.mailbox_rows(rcpt)
    assert len(rows) == 1, f"spoofed message delivered? {rows}"
    assert_stored_exactly(server.cat(rcpt, rows[0]["uid"]), good)


def test_from_header_spoof_with_display_name_and_multiple(server):
    address, pw = server.new_account("hdr2")
    rcpt, _ = server.new_account("rcpt")
    with server.submit_session(address, pw, "submissions") as c:
        for frm in (f'"{address}" <boss@elsewhere.invalid>',
                    f"{address}, boss@elsewhere.invalid"):
            msg = make_message(frm, rcpt, subject="sneaky From")
            r = c.mail_transaction(address, [rcpt], msg)
            assert r.text == NOT_OWNED, f"From: {frm} -> {r.text}"
    assert_no_message(server, rcpt)


def test_alias_may_send(server):
    address, pw = server.new_account("aliased")
    alias = f"{unique('sales')}@{DOMAIN}"
    server.ok("alias", "add", alias, address)
    rcpt, _ = server.new_account("rcpt")
    msg = make_message(alias, rcpt, subject="from my alias")
    with server.submit_session(address, pw) as c:
        queue_id(c.mail_transaction(alias, [rcpt], msg))
    assert_stored_exactly(server.fetch_one(rcpt), msg)


# ---------------------------------------------------------------- local delivery rules

def deliver_inbound(server, rcpt_addr, msg):
    with server.connect("smtp") as c:
        c.ehlo()
        return queue_id(c.mail_transaction(EXT_SENDER, [rcpt_addr], msg))


def test_plus_addressing(server):
    address, _ = server.new_account("plus")
    user = address.split("@")[0]
    target = f"{user}+newsletters@{DOMAIN}"
    msg = make_message(EXT_SENDER, target, subject="plus")
    deliver_inbound(server, target, msg)
    assert_stored_exactly(server.fetch_one(address), msg)


def test_alias_delivery(server):
    address, _ = server.new_account("target")
    alias = f"{unique('info')}@{DOMAIN}"
    server.ok("alias", "add", alias, address)
    assert alias in server.ok("alias", "list").stdout
    msg = make_message(EXT_SENDER, alias, subject="alias")
    deliver_inbound(server, alias, msg)
    assert_stored_exactly(server.fetch_one(address), msg)


def test_alias_del(server):
    address, _ = server.new_account("target")
    alias = f"{unique('gone')}@{DOMAIN}"
    server.ok("alias", "add", alias, address)
    server.ok("alias", "del", alias)
    with server.connect("smtp") as c:
        c.ehlo()
        check(c.cmd(f"MAIL FROM:<{EXT_SENDER}>"), 250, "2.1.0", "OK")
        check(c.cmd(f"RCPT TO:<{alias}>"), 550, "5.1.1")


def test_catch_all(server):
    dom = f"{unique('c')}.test".lower()
    server.ensure_domain(dom)
    address, _ = server.new_account("catcher")
    exact, _ = server.new_account("exact", domain=dom)
    server.ok("alias", "add", f"@{dom}", address)
    target = f"anything-{unique()}@{dom}"
    msg = make_message(EXT_SENDER, target, subject="catch-all")
    deliver_inbound(server, target, msg)
    assert_stored_exactly(server.fetch_one(address), msg)
    # an existing account of that domain still gets its own mail
    msg2 = make_message(EXT_SENDER, exact, subject="exact")
    deliver_inbound(server, exact, msg2)
    assert_stored_exactly(server.fetch_one(exact), msg2)
    time.sleep(0.5)
    assert len(server.mailbox_rows(address)) == 1


def test_delivery_to_several_local_recipients(server):
    rcpts = [server.new_account("multi")[0] for _ in range(3)]
    msg = make_message(EXT_SENDER, ", ".join(rcpts), subject="several")
    with server.connect("smtp") as c:
        c.ehlo()
        queue_id(c.mail_transaction(EXT_SENDER, rcpts, msg))
    for r in rcpts:
        assert_stored_exactly(server.fetch_one(r), msg)


# ---------------------------------------------------------------- daily limits

def usage(server, address):
    out = server.ok("account", "show", address).stdout
    m = re.search(r"messages today:\s*(\d+)\s*/\s*(\d+)", out)
    r = re.search(r"recipients today:\s*(\d+)\s*/\s*(\d+)", out)
    assert m and r, f"account show lacks the usage lines:\n{out}"
    return (int(m.group(1)), int(m.group(2))), (int(r.group(1)), int(r.group(2)))


def test_daily_message_limit(server):
    address, pw = server.new_account("daily")
    server.ok("account", "set", address, "--daily-limit", "3")
    rcpt, _ = server.new_account("rcpt")
    with server.submit_session(address, pw) as c:
        for i in range(3):
            msg = make_message(address, rcpt, subject=f"daily {i}")
            queue_id(c.mail_transaction(address, [rcpt], msg))
        check(c.cmd(f"MAIL FROM:<{address}>"), 250, "2.1.0", "OK")
        check(c.cmd(f"RCPT TO:<{rcpt}>"), 250, "2.1.5", "OK")
        r = c.cmd("DATA")
        assert r.text == DAILY, f"4th DATA with a daily limit of 3: {r.text}"
        check(c.cmd("RSET"), 250, "2.1.5", "Flushed")
    # a new session is refused too
    with server.submit_session(address, pw, "submissions") as c:
        check(c.cmd(f"MAIL FROM:<{address}>"), 250, "2.1.0", "OK")
        check(c.cmd(f"RCPT TO:<{rcpt}>"), 250, "2.1.5", "OK")
        r = c.cmd("DATA")
        assert r.text == DAILY, r.text
    (msgs, mlim), (rc, rlim) = usage(server, address)
    assert (msgs, mlim) == (3, 3), f"messages today {msgs} / {mlim}"
    assert rc == 3, f"recipients today {rc} / {rlim}"
    server.wait_for_message(rcpt, 3)
    time.sleep(0.5)
    assert len(server.mailbox_rows(rcpt)) == 3


def test_daily_recipient_limit(server):
    address, pw = server.new_account("dailyr")
    server.ok("account", "set", address, "--daily-limit", "3")
    (_, mlim), (_, rlim) = usage(server, address)
    assert rlim == 3, f"--daily-limit 3 did not set the recipient limit (show: {mlim}, {rlim})"
    rcpts = [server.new_account("rcpt")[0] for _ in range(4)]
    with server.submit_session(address, pw) as c:
        msg = make_message(address, ", ".join(rcpts[:3]), subject="three recipients")
        queue_id(c.mail_transaction(address, rcpts[:3], msg))
        # one message sent, three recipients: the recipient limit is reached
        check(c.cmd(f"MAIL FROM:<{address}>"), 250, "2.1.0", "OK")
        check(c.cmd(f"RCPT TO:<{rcpts[3]}>"), 250, "2.1.5", "OK")
        r = c.cmd("DATA")
        assert r.text == DAILY, r.text
        check(c.cmd("NOOP"), 250)
    (msgs, _), (rc, _) = usage(server, address)
    assert (msgs, rc) == (1, 3), f"usage after one message to three: {msgs} msgs, {rc} rcpts"
    assert_no_message(server, rcpts[3])


def test_account_show_usage_zero(server):
    address, _ = server.new_account("fresh")
    (msgs, mlim), (rc, rlim) = usage(server, address)
    assert msgs == 0 and rc == 0 and mlim > 0 and rlim > 0


# ---------------------------------------------------------------- recipients / size limits (own servers)

@pytest.fixture(scope="module")
def small_server(request):
    from conftest import RoostServer, _finish, roost_bin
    import os
    if not os.access(roost_bin(), os.X_OK):
        pytest.skip("roost binary not built")
    srv = RoostServer(limits={"max_recipients": 5, "max_message_size": 10000})
    srv.start()
    srv.ensure_domain(DOMAIN)
    yield srv
    _finish(srv)


@pytest.mark.parametrize("which", ["smtp", "submission"])
def test_too_many_recipients(small_server, which):
    srv = small_server
    rcpts = [srv.new_account("many")[0] for _ in range(7)]
    if which == "smtp":
        c = srv.connect("smtp")
        c.ehlo()
        sender = EXT_SENDER
    else:
        sender, pw = srv.new_account("sender")
        c = srv.submit_session(sender, pw)
    with c:
        check(c.cmd(f"MAIL FROM:<{sender}>"), 250, "2.1.0", "OK")
        for rc in rcpts[:5]:
            check(c.cmd(f"RCPT TO:<{rc}>"), 250, "2.1.5", "OK")
        for rc in rcpts[5:]:
            r = c.cmd(f"RCPT TO:<{rc}>")
            assert r.text == TOO_MANY, f"RCPT #6/7: {r.text}"
        msg = make_message(sender, "undisclosed-recipients:;", subject="five only")
        check(c.cmd("DATA"), 354, None, "Go ahead")
        c.send(dot_stuff(msg))
        queue_id(c.reply())
    for rc in rcpts[:5]:
        assert_stored_exactly(srv.fetch_one(rc), msg)
    for rc in rcpts[5:]:
        assert srv.mailbox_rows(rc) == [], f"{rc} got the message despite the 452"


def test_size_advertised(small_server):
    with small_server.connect("smtp") as c:
        r = c.ehlo()
        assert "SIZE 10000" in r.keywords(), r.text


def test_size_param_over_limit(small_server):
    rcpt, _ = small_server.new_account("size")
    with small_server.connect("smtp") as c:
        c.ehlo()
        r = c.cmd(f"MAIL FROM:<{EXT_SENDER}> SIZE=10001")
        assert r.text == TOO_BIG, r.text
        r = c.cmd(f"MAIL FROM:<{EXT_SENDER}> SIZE=99999999999999999999")
        assert r.text == TOO_BIG, r.text
        check(c.cmd(f"MAIL FROM:<{EXT_SENDER}> SIZE=5000"), 250, "2.1.0", "OK")
        check(c.cmd(f"RCPT TO:<{rcpt}>"), 250, "2.1.5", "OK")
        check(c.cmd("RSET"), 250, "2.1.5", "Flushed")


def big_message(frm, to, total):
    head = make_message(frm, to, subject="big", body="")
    line = b"0123456789" * 7 + CRLF
    body = line * ((total - len(head)) // len(line) + 1)
    return head + body


def test_data_over_limit(small_server):
    srv = small_server
    rcpt, _ = srv.new_account("big")
    msg = big_message(EXT_SENDER, rcpt, 20000)
    with srv.connect("smtp") as c:
        c.ehlo()
        r = c.mail_transaction(EXT_SENDER, [rcpt], msg)
        assert r.text == TOO_BIG, r.text
        # still usable, and a message under the limit goes through
        small = big_message(EXT_SENDER, rcpt, 9000)
        assert len(small) < 10000
        queue_id(c.mail_transaction(EXT_SENDER, [rcpt], small))
    assert_stored_exactly(srv.fetch_one(rcpt), small)


def test_data_over_limit_submission(small_server):
    srv = small_server
    sender, pw = srv.new_account("bigsub")
    rcpt, _ = srv.new_account("big")
    msg = big_message(sender, rcpt, 50000)
    with srv.submit_session(sender, pw, "submissions") as c:
        r = c.mail_transaction(sender, [rcpt], msg)
        assert r.text == TOO_BIG, r.text
        check(c.cmd("NOOP"), 250)
    assert_no_message(srv, rcpt)


def test_bdat_over_limit(small_server):
    srv = small_server
    rcpt, _ = srv.new_account("bigbdat")
    msg = big_message(EXT_SENDER, rcpt, 20000)
    with srv.connect("smtp") as c:
        c.ehlo()
        check(c.cmd(f"MAIL FROM:<{EXT_SENDER}>"), 250, "2.1.0", "OK")
        check(c.cmd(f"RCPT TO:<{rcpt}>"), 250, "2.1.5", "OK")
        c.send(f"BDAT {len(msg)} LAST\r\n".encode() + msg)
        r = c.reply()
        assert r.text == TOO_BIG, r.text
        # the chunk's bytes were consumed, not executed
        assert c.pending(1.0) == b""
        check(c.cmd("NOOP"), 250)
    assert_no_message(srv, rcpt)


# ---------------------------------------------------------------- overlong lines

def test_overlong_command_line_submission(server):
    address, pw = server.new_account("long")
    with server.submit_session(address, pw) as c:
        c.send(b"MAIL FROM:<" + b"a" * 4000 + b"@" + DOMAIN.encode() + b">" + CRLF)
        r = c.reply()
        assert r.text == "500 5.5.2 Line too long", r.text
        assert c.pending(1.0) == b""
        check(c.cmd(f"MAIL FROM:<{address}>"), 250, "2.1.0", "OK")


def test_very_long_line(server):
    """64 KiB on one command line: one '500 5.5.2 Line too long' (the server
    may answer once the line ends), no part of it runs as a command, and the
    session goes on."""
    rcpt, _ = server.new_account("vlong")
    with server.connect("smtp") as c:
        c.ehlo()
        check(c.cmd(f"MAIL FROM:<{EXT_SENDER}>"), 250, "2.1.0", "OK")
        try:
            for _ in range(16):
                c.send(b"RSET" * 1024)
            c.send(CRLF)
        except OSError:
            raise AssertionError("server closed the connection on a long line "
                                 "instead of answering 500 5.5.2")
        r = c.reply(timeout=10)
        assert r.text == "500 5.5.2 Line too long", r.text
        assert c.pending(1.0) == b"", "more than one reply to one overlong line"
        # the transaction was not reset by a tail of the line run as RSET
        check(c.cmd(f"RCPT TO:<{rcpt}>"), 250, "2.1.5", "OK")


def test_auth_response_longer_than_command_limit(server):
    """RFC 4954 section 4: a SASL response line (after 334) may be up to
    12288 octets, more than the 2048-octet command-line limit; a 3000-octet
    wrong response is a failed login (535), not 'Line too long'."""
    import base64
    address, pw = server.new_account("longauth")
    tok = base64.b64encode(b"\0" + address.encode() + b"\0" + b"p" * 2200).decode()
    assert 2048 < len(tok) < 12000
    with server.connect("submissions") as c:
        c.ehlo()
        check(c.cmd("AUTH PLAIN"), 334)
        r = c.cmd(tok)
        assert r.text == "535 5.7.8 Username and Password not accepted", r.text
        assert c.auth_plain(address, pw).text == "235 2.7.0 Accepted"


def test_return_path_is_the_envelope_sender(server):
    """Final delivery puts the envelope sender on top of the stored message
    (RFC 5321 4.4), "<>" for a null sender (a bounce), and the content sent
    after it unchanged."""
    rcpt, _ = server.new_account("retpath")
    sender = f"{unique('list-bounces')}@elsewhere.example"
    msg = make_message("news@elsewhere.example", rcpt, subject="envelope sender differs from From:")
    with server.connect("smtp") as c:
        c.ehlo()
        check(c.mail_transaction(sender, [rcpt], msg), 250)
        check(c.mail_transaction("", [rcpt], make_message("MAILER-DAEMON@elsewhere.example",
                                                          rcpt, subject="a bounce")), 250)
    rows = server.wait_for_message(rcpt, 2)
    first, second = (server.cat(rcpt, r["uid"]) for r in rows[:2])
    assert first.startswith(f"Return-Path: <{sender}>\r\nReceived: ".encode()), first[:200]
    assert first.count(b"Return-Path:") == 1
    _, rest = split_received(first)
    assert rest == msg
    assert second.startswith(b"Return-Path: <>\r\nReceived: "), second[:200]
