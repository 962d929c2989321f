"""`roost queue` against a running and a stopped server with the real
outbound transport, and the DSNs the queue sends, read back from the
sender's INBOX and parsed with Python's email package.

Mail is submitted by an account to addresses in `.invalid` domains; the
server's `[transport] * = smtp:[127.0.0.1]:PORT` sends every remote
recipient to a closed port on loopback, so each attempt is a real
connection refused and the recipient is deferred. The retry schedule is an
hour, so each message waits in the queue for the commands under test.
"""
import email
import email.policy
import re
import time

import pytest

from conftest import (HOSTNAME, RoostServer, _finish, free_ports, make_message, queue_id,
                      wait_until)

QUEUE_CONFIG = "\n[queue]\nretry_schedule = 1h\nmax_age = 5d\ndelay_warning = 4h\n"


def _outbound_config():
    """Every remote recipient to a closed loopback port (nothing listens
    there: the free port is released before the server starts), with short
    timeouts."""
    port = free_ports(1)[0]
    return (f"\n[outbound]\ntimeout_percent = 5\n"
            f"\n[transport]\n* = smtp:[127.0.0.1]:{port}\n")


def _config():
    return QUEUE_CONFIG + _outbound_config()


@pytest.fixture(scope="module")
def qserver(roost_binary):
    srv = RoostServer(extra_config=_config(), outbound=True)
    srv.start()
    srv.ensure_domain("example.test")
    yield srv
    _finish(srv)


# ---------------------------------------------------------------- helpers

def submit_remote(srv, address, pw, rcpts, subject="queue tools"):
    msg = make_message(address, rcpts[0], subject=subject)
    with srv.submit_session(address, pw) as c:
        return queue_id(c.mail_transaction(address, rcpts, msg))


def list_block(srv, qid):
    """The `queue list` lines of message QID ('' when not listed)."""
    out = srv.queue_list()
    lines, take = [], False
    for line in out.splitlines():
        if re.match(r"^[0-9A-Z]{20}\s", line):
            take = line.startswith(qid)
        if take:
            lines.append(line)
    return "\n".join(lines)


def attempts_of(srv, qid, rcpt):
    block = list_block(srv, qid)
    m = re.search(r"<" + re.escape(rcpt) + r">.*attempts=(\d+)", block)
    return int(m.group(1)) if m else None


def wait_attempts(srv, qid, rcpt, n, timeout=15):
    return wait_until(lambda: (attempts_of(srv, qid, rcpt) or 0) >= n, timeout,
                      what=f"{qid} {rcpt} attempts>={n}")


def log_text(srv):
    p = srv.data / "log" / "roost.log"
    return p.read_text(errors="replace") if p.exists() else ""


def log_has(srv, *needles):
    return any(all(n in line for n in needles) for line in log_text(srv).splitlines())


def wait_log(srv, *needles, timeout=15):
    wait_until(lambda: log_has(srv, *needles), timeout, what=f"log line with {needles}")


def parse_dsn(raw: bytes):
    msg = email.message_from_bytes(raw, policy=email.policy.compat32)
    assert msg.get_content_type() == "multipart/report", msg.get_content_type()
    assert msg.get_param("report-type") == "delivery-status"
    parts = msg.get_payload()
    assert [p.get_content_type() for p in parts] == [
        "text/plain", "message/delivery-status", "text/rfc822-headers"], parts
    # message/delivery-status: the per-message block, then one per recipient
    blocks = parts[1].get_payload()
    return msg, parts, blocks


# ---------------------------------------------------------------- running server

def test_list_and_show(qserver):
    address, pw = qserver.new_account("qlist")
    rcpt = "friend@elsewhere.invalid"
    qid = submit_remote(qserver, address, pw, [rcpt], subject="list and show")
    wait_attempts(qserver, qid, rcpt, 1)
    block = list_block(qserver, qid)
    assert f"from <{address}>" in block and "active" in block, block
    assert re.search(r"deferred\s+<friend@elsewhere.invalid> remote\s+attempts=1\s+next=\S+Z"
                     r"\s+last=\"[^\"]+\"", block), block
    show = qserver.ok("queue", "show", qid).stdout
    assert f"id:        {qid}" in show
    assert f"sender:    <{address}>" in show
    assert "protocol:  ESMTPSA" in show and f"auth:      {address}" in show
    assert "Subject: list and show" in show
    assert re.search(r"<friend@elsewhere.invalid> remote\s+deferred\s+attempts=1", show), show
    assert re.search(r"next attempt \S+Z", show), show
    assert re.search(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ\s+deferred\s+\S", show), show
    assert log_has(qserver, "event=retry-scheduled", f"queue={qid}", "next=")


def test_bounce_sends_dsn(qserver):
    address, pw = qserver.new_account("qbounce")
    rcpts = ["one@elsewhere.invalid", "two@other.invalid"]
    qid = submit_remote(qserver, address, pw, rcpts, subject="please bounce me")
    wait_attempts(qserver, qid, rcpts[0], 1)
    wait_attempts(qserver, qid, rcpts[1], 1)
    r = qserver.ok("queue", "bounce", qid)
    assert f"{qid}: bounce requested" in r.stdout
    assert "running server acts on it now" in r.stdout
    raw = qserver.fetch_one(address)
    wait_until(lambda: qid not in qserver.queue_list(), 15, what="bounced message removed")
    wait_log(qserver, "event=dsn-queued", f"queue={qid}", "kind=failed", "rcpts=2")
    assert log_has(qserver, "event=bounced", f"queue={qid}", "one@elsewhere.invalid")
    assert log_has(qserver, "event=bounce-requested", f"queue={qid}")

    msg, parts, blocks = parse_dsn(raw)
    assert msg["From"] == f"Mail Delivery System <MAILER-DAEMON@{HOSTNAME}>"
    assert msg["To"] == f"<{address}>"
    assert msg["Auto-Submitted"] == "auto-replied"
    text = parts[0].get_payload()
    assert "could not be delivered" in text and "one@elsewhere.invalid" in text
    assert "What to do" in text
    assert blocks[0]["Reporting-MTA"] == f"dns; {HOSTNAME}"
    assert blocks[0]["Arrival-Date"]
    per = {b["Final-Recipient"]: b for b in blocks[1:]}
    assert set(per) == {f"rfc822; {a}" for a in rcpts}, list(per)
    for b in per.values():
        assert b["Action"] == "failed"
        assert re.fullmatch(r"5\.\d{1,3}\.\d{1,3}", b["Status"]), b["Status"]
        assert b["Diagnostic-Code"]          # the last reply the queue had
        assert b["Last-Attempt-Date"].endswith("+0000")
    headers = parts[2].get_payload()
    assert "Subject: please bounce me" in headers
    # the notice was queued with the null envelope sender
    m = re.search(r"event=dsn-queued queue=" + qid + r" dsn=(\w+)", log_text(qserver))
    assert m, "no dsn-queued line"
    assert log_has(qserver, "event=accepted", f"queue={m.group(1)}", 'from=""')


def test_hold_retry_release(qserver):
    address, pw = qserver.new_account("qhold")
    rcpt = "held@elsewhere.invalid"
    qid = submit_remote(qserver, address, pw, [rcpt])
    wait_attempts(qserver, qid, rcpt, 1)
    r = qserver.ok("queue", "hold", qid)
    assert f"{qid}: held" in r.stdout
    wait_log(qserver, "event=held", f"queue={qid}")
    wait_until(lambda: " held" in list_block(qserver, qid), 10, what="held in list")
    qserver.ok("queue", "retry", qid)
    wait_log(qserver, "event=retry-requested", f"queue={qid}")
    time.sleep(0.5)
    assert attempts_of(qserver, qid, rcpt) == 1        # held: retry does nothing yet
    qserver.ok("queue", "release", qid)
    wait_log(qserver, "event=released", f"queue={qid}")
    wait_attempts(qserver, qid, rcpt, 2)               # released: due at once
    assert " active" in list_block(qserver, qid)
    qserver.ok("queue", "retry", qid)
    wait_attempts(qserver, qid, rcpt, 3)
    r = qserver.ok("queue", "retry", "--all")
    assert re.search(r"^\d+ messages? due now", r.stdout, re.M), r.stdout
    wait_attempts(qserver, qid, rcpt, 4)
    qserver.ok("queue", "delete", qid)


def test_delete_no_dsn(qserver):
    address, pw = qserver.new_account("qdel")
    rcpt = "gone@elsewhere.invalid"
    qid = submit_remote(qserver, address, pw, [rcpt])
    wait_attempts(qserver, qid, rcpt, 1)
    r = qserver.ok("queue", "delete", qid)
    assert f"{qid}: delete requested" in r.stdout
    wait_until(lambda: qid not in qserver.queue_list(), 15, what="deleted message gone")
    wait_log(qserver, "event=deleted", f"queue={qid}")
    assert not (qserver.data / "queue" / qid).exists()
    assert not (qserver.data / "queue" / f"{qid}.state").exists()
    time.sleep(0.5)
    assert qserver.mailbox_rows(address) == []         # no notice for a delete
    assert not log_has(qserver, "event=dsn-queued", f"queue={qid}")
    r = qserver.roost("queue", "show", qid)
    assert r.rc == 1 and "no message" in r.stderr


def test_bad_input(qserver):
    cases = [
        (("queue", "show", "nope"), 2, "is not a queue id"),
        (("queue", "hold", "0123456789abcdefghjk"), 2, "is not a queue id"),
        (("queue", "show", "0123456789ABCDEFGHJK"), 1, "no message 0123456789ABCDEFGHJK"),
        (("queue", "bounce", "0123456789ABCDEFGHJK"), 1, "no message"),
        (("queue", "delete", "0123456789ABCDEFGHJK"), 1, "no message"),
        (("queue", "hold"), 2, "usage: roost queue"),
        (("queue", "frob", "0123456789ABCDEFGHJK"), 2, "usage: roost queue"),
        (("queue", "show", "A" * 5000), 2, "is not a queue id"),
        (("queue",), 2, "usage: roost queue"),
    ]
    for args, rc, text in cases:
        r = qserver.roost(*args)
        assert r.rc == rc, r
        assert text in r.stderr, r
    assert not (qserver.data / "queue" / "0123456789ABCDEFGHJK.state").exists()


# ---------------------------------------------------------------- stopped server

def test_verbs_while_stopped(make_server):
    srv = make_server(extra_config=_config(), outbound=True)
    address, pw = srv.new_account("qstop")
    msgs = {}
    for name in ("hold", "delete", "bounce", "retry", "wait"):
        rcpt = f"{name}@elsewhere.invalid"
        msgs[name] = (submit_remote(srv, address, pw, [rcpt], subject=f"{name} me"), rcpt)
    for qid, rcpt in msgs.values():
        wait_attempts(srv, qid, rcpt, 1)
    assert srv.terminate() == 0

    q_hold, q_del, q_bnc, q_retry = (msgs[k][0] for k in ("hold", "delete", "bounce", "retry"))
    r = srv.ok("queue", "hold", q_hold)
    assert "No server is running" in r.stdout
    srv.ok("queue", "delete", q_del)
    srv.ok("queue", "bounce", q_bnc)
    srv.ok("queue", "retry", q_retry)
    out = srv.queue_list()
    assert re.search(q_hold + r".*\bheld$", out, re.M), out
    assert re.search(q_del + r".*\bdelete-requested$", out, re.M), out
    assert re.search(q_bnc + r".*\bbounce-requested$", out, re.M), out
    show = srv.ok("queue", "show", q_hold).stdout
    assert "state:     held" in show

    srv.start()
    raw = srv.fetch_one(address)                      # the bounce, after the start
    wait_until(lambda: q_del not in srv.queue_list() and q_bnc not in srv.queue_list(), 15,
               what="delete and bounce done at start")
    _, parts, blocks = parse_dsn(raw)
    assert blocks[1]["Final-Recipient"] == "rfc822; bounce@elsewhere.invalid"
    assert "Subject: bounce me" in parts[2].get_payload()
    wait_attempts(srv, q_retry, msgs["retry"][1], 2)  # retry: due at start
    time.sleep(0.5)
    # the schedule survived the restart: the others wait for their hour
    assert attempts_of(srv, msgs["wait"][0], msgs["wait"][1]) == 1
    assert attempts_of(srv, q_hold, msgs["hold"][1]) == 1      # still held
    assert srv.terminate() == 0

    srv.ok("queue", "release", q_hold)                # released while stopped
    assert " active" in list_block(srv, q_hold)
    srv.start()
    wait_attempts(srv, q_hold, msgs["hold"][1], 2)
    assert log_has(srv, "event=released", f"queue={q_hold}")
    assert attempts_of(srv, msgs["wait"][0], msgs["wait"][1]) == 1


# ---------------------------------------------------------------- shrunk schedule

def test_delayed_notice_then_bounce(make_server):
    """[queue] in seconds: retries every second, a delay notice after 2 s,
    the bounce after 6 s (Status 5.4.7), then the message is gone."""
    cfg = "\n[queue]\nretry_schedule = 1s\nmax_age = 6s\ndelay_warning = 2s\n" + _outbound_config()
    srv = make_server(extra_config=cfg, outbound=True)
    address, pw = srv.new_account("qexp")
    rcpt = "late@elsewhere.invalid"
    qid = submit_remote(srv, address, pw, [rcpt], subject="expire me")
    rows = srv.wait_for_message(address, 2, timeout=30)
    wait_until(lambda: qid not in srv.queue_list(), 15, what="expired message removed")
    delayed, failed = (srv.cat(address, r["uid"]) for r in rows[:2])

    msg, parts, blocks = parse_dsn(delayed)
    assert msg["Subject"] == "Delayed Mail (still being retried)"
    assert "not been delivered yet" in parts[0].get_payload()
    assert blocks[1]["Final-Recipient"] == f"rfc822; {rcpt}"
    assert blocks[1]["Action"] == "delayed"
    assert blocks[1]["Status"].startswith("4.")
    assert blocks[1]["Will-Retry-Until"].endswith("+0000")

    msg, parts, blocks = parse_dsn(failed)
    assert msg["Subject"] == "Undelivered Mail Returned to Sender"
    assert blocks[1]["Action"] == "failed" and blocks[1]["Status"] == "5.4.7"
    assert "gave up" in parts[0].get_payload()
    assert "Subject: expire me" in parts[2].get_payload()
    text = log_text(srv)
    assert len(re.findall(r"event=dsn-queued queue=" + qid + r" \S+ kind=delayed", text)) == 1
    assert len(re.findall(r"event=dsn-queued queue=" + qid + r" \S+ kind=failed", text)) == 1
    assert log_has(srv, "event=bounced", f"queue={qid}", "reason=expired")
    assert len(re.findall(r"event=retry-scheduled queue=" + qid, text)) >= 3
