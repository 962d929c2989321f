"""Quota (RFC 9208 storage, per account in the directory): SMTP refuses mail
for a local mailbox that is full with "552 5.2.2 Mailbox full" — at RCPT TO
when the mailbox is already at or over its quota, and at the end of DATA
when this message would take it over — while other recipients and other
accounts keep working. `account set --quota` / `account show` round-trip."""
import re
import smtplib
import time

from conftest import check, dot_stuff, make_message, queue_id

EXT_SENDER = "sender@remote.test"
FULL = "552 5.2.2 Mailbox full"


def quota_line(server, address):
    out = server.ok("account", "show", address).stdout
    m = re.search(r"^quota:\s*(.*)$", out, re.M)
    assert m, f"account show lacks a quota line:\n{out}"
    return m.group(1)


def deliver(server, address, subject="fill"):
    msg = make_message(EXT_SENDER, address, subject=subject)
    with server.connect("smtp") as c:
        c.ehlo()
        queue_id(c.mail_transaction(EXT_SENDER, [address], msg))
    return len(msg)


def test_quota_default_and_set(server):
    address, _ = server.new_account("qshow")
    assert quota_line(server, address).startswith("15 GiB (0 bytes used, 0 messages)")
    out = server.ok("account", "set", address, "--quota", "500M").stdout
    assert "quota=500 MiB" in out
    assert quota_line(server, address).startswith("500 MiB")
    server.ok("account", "set", address, "--quota", "unlimited")
    assert quota_line(server, address).startswith("unlimited")
    r = server.roost("account", "set", address, "--quota", "lots")
    assert r.rc == 2


def test_rcpt_to_full_mailbox_552(server):
    full, _ = server.new_account("qfull")
    other, _ = server.new_account("qother")
    deliver(server, full)
    server.wait_for_message(full, 1)
    # the quota is now below what the mailbox holds: it is full
    server.ok("account", "set", full, "--quota", "100")
    # smtplib: the refusal reaches the client as SMTPRecipientsRefused
    s = smtplib.SMTP("127.0.0.1", server.smtp, timeout=20)
    try:
        s.ehlo("client.example.net")
        msg = make_message(EXT_SENDER, full, subject="over quota")
        try:
            s.sendmail(EXT_SENDER, [full], msg)
            raise AssertionError("sendmail to a full mailbox was accepted")
        except smtplib.SMTPRecipientsRefused as e:
            code, text = e.recipients[full]
            assert code == 552 and text.decode() == "5.2.2 Mailbox full", (code, text)
        # the other recipient of a mixed transaction still gets the mail
        refused = s.sendmail(EXT_SENDER, [full, other],
                             make_message(EXT_SENDER, other, subject="mixed"))
        assert set(refused) == {full} and refused[full][0] == 552
    finally:
        s.quit()
    server.wait_for_message(other, 1)
    time.sleep(0.5)
    assert len(server.mailbox_rows(full)) == 1
    # raw: exact reply, session goes on; raising the quota lets mail in again
    with server.connect("smtp") as c:
        c.ehlo()
        check(c.cmd(f"MAIL FROM:<{EXT_SENDER}>"), 250, "2.1.0", "OK")
        r = c.cmd(f"RCPT TO:<{full}>")
        assert r.text == FULL, r.text
        check(c.cmd(f"RCPT TO:<{other}>"), 250, "2.1.5", "OK")
        check(c.cmd("RSET"), 250)
    server.ok("account", "set", full, "--quota", "0")
    deliver(server, full, subject="after raise")
    server.wait_for_message(full, 2)


def test_data_that_would_pass_quota_552(server):
    address, _ = server.new_account("qdata")
    size = deliver(server, address)
    server.wait_for_message(address, 1)
    # room for a small message, not for a large one
    server.ok("account", "set", address, "--quota", str(size + 3000))
    with server.connect("smtp") as c:
        c.ehlo()
        big = make_message(EXT_SENDER, address, subject="big", body="x" * 8000 + "\r\n")
        check(c.cmd(f"MAIL FROM:<{EXT_SENDER}>"), 250, "2.1.0", "OK")
        check(c.cmd(f"RCPT TO:<{address}>"), 250, "2.1.5", "OK")
        check(c.cmd("DATA"), 354)
        c.send(dot_stuff(big))
        r = c.reply()
        assert r.text == FULL, r.text
        # a small one still fits, in the same session
        small = make_message(EXT_SENDER, address, subject="small")
        queue_id(c.mail_transaction(EXT_SENDER, [address], small))
    server.wait_for_message(address, 2)
    time.sleep(0.5)
    assert len(server.mailbox_rows(address)) == 2
