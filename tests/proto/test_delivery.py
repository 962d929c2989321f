"""End to end delivery between Roost instances (issue 5): the outbound
transport, the scheduler, DSNs, SRS forwarding and the queue tools together.

One dnsmasq (tests/proto/dnsfix.py) answers for *.test; Roost A
(mx.a.test, 127.0.0.30) and Roost B (mx.b.test, 127.0.0.31) are each other's
MX, both on one shared port that both use as [outbound] smtp_port; small
Python SMTP servers play a receiver that refuses one recipient (127.0.0.32)
and one that answers 451 at first (127.0.0.33); dead.test's MX (127.0.0.34)
has nothing listening. Tests that need a config of their own (a short
max_age, a smarthost) start a third, short-lived Roost beside the pair.
"""
import email
import email.policy
import os
import re
import smtplib
import ssl
import threading
import time
from email.message import EmailMessage

import pytest

from conftest import SMTP, RoostServer, _finish, check, make_message, random_password, \
    split_return_path, unique, wait_until
from dnsfix import DNS, FakeMX, log_lines, stop_world, submit, wait_log, wildcard_free_port

A_IP, B_IP, PARTIAL_IP, FLAKY_IP, DEAD_IP = ("127.0.0.30", "127.0.0.31", "127.0.0.32",
                                             "127.0.0.33", "127.0.0.34")
EXPIRE_IP, SMART_IP, WRONG_SRC_IP = "127.0.0.35", "127.0.0.36", "127.0.0.37"
SRS_RE = re.compile(r"SRS0=[A-Za-z0-9+/]{6}=[A-Z2-7]{2}=([^=@]+)=([^@]+)@([^>\s]+)")

# A's outbound limits: the crash test's bound on messages in flight to one
# destination is PER_DEST connections x one message per connection at a time
PER_DEST = 3
PER_CONNECTION_BATCH = 1


def outbound_conf(dns, mx_port, extra=""):
    return f"""
[outbound]
resolver = 127.0.0.1@{dns.port}
smtp_port = {mx_port}
timeout_percent = 2
idle_seconds = 1
{extra}
"""


@pytest.fixture(scope="module")
def pair(roost_binary):
    mx_port = wildcard_free_port()
    dns = DNS(["--mx-host=a.test,mx.a.test,10", f"--host-record=mx.a.test,{A_IP}",
               "--mx-host=b.test,mx.b.test,10", f"--host-record=mx.b.test,{B_IP}",
               "--mx-host=partial.test,mx.partial.test,10",
               f"--host-record=mx.partial.test,{PARTIAL_IP}",
               "--mx-host=flaky.test,mx.flaky.test,10", f"--host-record=mx.flaky.test,{FLAKY_IP}",
               "--mx-host=dead.test,mx.dead.test,10", f"--host-record=mx.dead.test,{DEAD_IP}"])
    fakes = {"partial": FakeMX(PARTIAL_IP, mx_port, "partial"),
             "flaky": FakeMX(FLAKY_IP, mx_port, "flaky")}
    servers = []
    try:
        b = RoostServer(hostname="mx.b.test", listen_host=B_IP, port_map={"smtp": mx_port},
                        outbound=True, extra_config=outbound_conf(dns, mx_port))
        servers.append(b)
        b.start()
        a = RoostServer(hostname="mx.a.test", listen_host=A_IP, port_map={"smtp": mx_port},
                        outbound=True, extra_config=outbound_conf(
                            dns, mx_port, f"max_connections_per_destination = {PER_DEST}\n"
                                          "max_connections = 6\n"
                                          f"source_address = {A_IP}\n") + """
[queue]
retry_schedule = 1s 1s 2s
""")
        servers.append(a)
        a.start()
        a.user, a.pw = "alice@a.test", random_password()
        a.make_account(a.user, a.pw)
        b.ensure_domain("b.test")
        yield {"a": a, "b": b, "dns": dns, "fakes": fakes, "mx_port": mx_port}
    finally:
        stop_world(servers, fakes.values(), dns)


def parse_report(raw):
    msg = email.message_from_bytes(raw, policy=email.policy.compat32)
    assert msg.get_content_type() == "multipart/report", msg.get_content_type()
    assert msg.get_param("report-type") == "delivery-status"
    parts = msg.get_payload()
    assert [p.get_content_type() for p in parts] == [
        "text/plain", "message/delivery-status", "text/rfc822-headers"], parts
    return msg, parts, parts[1].get_payload()


def inbox(srv, address):
    """Every message in ADDRESS's INBOX as stored, in UID order."""
    got = srv.export(address) if srv.mailbox_rows(address) else {}
    return [got[k] for k in sorted(got)]


def queue_ids(srv):
    return re.findall(r"^([0-9A-Z]{20})\s", srv.queue_list(), re.M)


# ---------------------------------------------------------------- 1

def test_one_refused_two_delivered_one_bounce(pair):
    a, fake = pair["a"], pair["fakes"]["partial"]
    sender, pw = f"{unique('s')}@a.test", random_password()
    a.make_account(sender, pw)
    rcpts = ["one@partial.test", "bad1@partial.test", "two@partial.test"]
    before = len(fake.messages)
    submit(a, sender, pw, rcpts, subject="three at a fake MX", implicit_tls=True)
    wait_until(lambda: len(fake.messages) > before, 30, what="the fake MX to get the message")
    mail, got, data = fake.messages[-1]
    assert sorted(got) == ["one@partial.test", "two@partial.test"]
    assert f"<{sender}>" in mail and b"three at a fake MX" in data

    raw = a.fetch_one(sender, timeout=30)         # exactly one notice
    msg, parts, blocks = parse_report(raw)
    assert msg["Subject"] == "Undelivered Mail Returned to Sender"
    assert len(blocks) == 2, [str(b) for b in blocks]   # per message + one recipient
    per = blocks[1]
    assert per["Final-Recipient"] == "rfc822; bad1@partial.test"
    assert per["Action"] == "failed"
    assert re.fullmatch(r"5\.\d{1,3}\.\d{1,3}", per["Status"]), per["Status"]
    assert per["Status"] == "5.1.1"
    diag = per["Diagnostic-Code"]
    assert diag.startswith("smtp;") and "550" in diag
    assert "The email account that you tried to reach does not exist" in " ".join(diag.split())
    assert "mx.partial.test" in (per["Remote-MTA"] or "")
    headers = parts[2].get_payload()
    assert "Subject: three at a fake MX" in headers
    finals = [b["Final-Recipient"] for b in blocks[1:]]
    assert finals == ["rfc822; bad1@partial.test"]
    wait_until(lambda: "partial.test" not in a.queue_list(), 15, what="queue done")


# ---------------------------------------------------------------- 2

def test_unreachable_delayed_then_bounce(pair, roost_binary):
    """A Roost of its own with a short max_age: dead.test's MX refuses every
    connection; a delayed notice first, then the bounce, then gone."""
    e = RoostServer(hostname="mx.e.test", listen_host=EXPIRE_IP, outbound=True,
                    extra_config=outbound_conf(pair["dns"], pair["mx_port"]) + """
[queue]
retry_schedule = 1s
delay_warning = 2s
max_age = 6s
""")
    try:
        e.start()
        sender, pw = "eve@e.test", random_password()
        e.make_account(sender, pw)
        submit(e, sender, pw, ["nobody@dead.test"], subject="into the void")
        rows = e.wait_for_message(sender, 2, timeout=40)
        delayed, failed = (e.cat(sender, r["uid"]) for r in rows[:2])
        msg, parts, blocks = parse_report(delayed)
        assert msg["Subject"] == "Delayed Mail (still being retried)"
        assert blocks[1]["Final-Recipient"] == "rfc822; nobody@dead.test"
        assert blocks[1]["Action"] == "delayed"
        assert blocks[1]["Status"].startswith("4.")
        assert blocks[1]["Will-Retry-Until"].endswith("+0000")
        assert "mx.dead.test" in (blocks[1]["Remote-MTA"] or "") or \
            "refused" in (blocks[1]["Diagnostic-Code"] or "").lower()
        msg, parts, blocks = parse_report(failed)
        assert msg["Subject"] == "Undelivered Mail Returned to Sender"
        assert blocks[1]["Final-Recipient"] == "rfc822; nobody@dead.test"
        assert blocks[1]["Action"] == "failed" and blocks[1]["Status"] == "5.4.7"
        assert "Subject: into the void" in parts[2].get_payload()
        wait_until(lambda: "dead.test" not in e.queue_list(), 15, what="expired message gone")
        assert not queue_ids(e)
        assert log_lines(e, "event=attempt", 'rcpt="nobody@dead.test"', "outcome=deferred")
        assert log_lines(e, "event=connect-failed", DEAD_IP)
    finally:
        _finish(e)


def test_source_address_not_on_this_host_defers(pair):
    """[outbound] source_address that this host does not have: the attempt
    is deferred with a reply that names the address and the setting, the
    message stays queued, and the server keeps working."""
    w = RoostServer(hostname="mx.w.test", listen_host=WRONG_SRC_IP, outbound=True,
                    extra_config=outbound_conf(pair["dns"], pair["mx_port"],
                                               "source_address = 192.0.2.99\n"))
    try:
        w.start()
        sender, pw = "walt@w.test", random_password()
        w.make_account(sender, pw)
        rcpt = f"{unique('nosrc')}@b.test"
        pair["b"].make_account(rcpt)
        submit(w, sender, pw, [rcpt], subject="from an address we do not have")
        line = wait_log(w, "event=attempt", "outcome=deferred", rcpt)[0]
        assert "192.0.2.99" in line and "source_address" in line, line
        assert rcpt in w.queue_list()
        assert not pair["b"].mailbox_rows(rcpt)
        assert log_lines(w, "comp=outbound", "event=started", "source4=192.0.2.99")
    finally:
        _finish(w)


# ---------------------------------------------------------------- 3

def test_451_then_delivered_on_retry(pair):
    a, fake = pair["a"], pair["fakes"]["flaky"]
    submit(a, a.user, a.pw, ["later@flaky.test"], subject="flaky")
    wait_until(lambda: fake.messages, 30, what="the flaky server to get the message")
    mail, rcpts, data = fake.messages[-1]
    assert rcpts == ["later@flaky.test"] and b"flaky" in data
    deferred = log_lines(a, 'rcpt="later@flaky.test"', "outcome=deferred")
    assert len(deferred) == FakeMX.FAIL_FIRST and "code=451" in deferred[0], deferred
    wait_log(a, 'rcpt="later@flaky.test"', "outcome=delivered")
    assert len(fake.messages) == 1
    wait_until(lambda: "flaky.test" not in a.queue_list(), 15, what="queue done")


# ---------------------------------------------------------------- 4

def test_forward_to_other_instance_srs_and_bounce(pair):
    a, b = pair["a"], pair["b"]
    fwd = f"{unique('fw')}@a.test"
    a.make_account(fwd)
    target = f"{unique('bob')}@b.test"
    b.make_account(target)
    orig = f"{unique('carol')}@b.test"           # the original sender, an account on B
    b.make_account(orig)
    a.ok("account", "set", fwd, "--forward-to", target)

    sent = make_message(orig, fwd, subject="forward me to B")
    with SMTP(a.smtp, host=a.listen_host) as s:
        s.ehlo()
        check(s.mail_transaction(orig, [fwd], sent), 250)
        s.cmd("QUIT")
    stored = b.fetch_one(target, timeout=30)
    return_path, stored = split_return_path(stored)
    head = stored.split(b"\r\n\r\n")[0].decode("utf-8", "replace")
    assert "forward me to B" in head
    # the envelope sender, in B's queue log and in the Return-Path: B stored
    qid = re.search(r"by mx\.b\.test \(Roost\) with ESMTPS id (\w+)", head)
    assert qid, head
    acc = wait_log(b, "comp=queue", "event=accepted", f"queue={qid.group(1)}")[0]
    m = re.search(r'from="?([^"\s]+)', acc)
    assert m, acc
    srs = m.group(1)
    mm = SRS_RE.fullmatch(srs)
    assert mm, f"envelope sender on B is not SRS0: {srs!r}"
    assert (mm.group(1), mm.group(2), mm.group(3)) == ("b.test", orig.split("@")[0], "a.test")
    assert return_path == srs, (return_path, srs)
    # the top Received field is B's: from A (EHLO mx.a.test), from A's own
    # address ([outbound] source_address), over TLS
    assert head.startswith(f"Received: from mx.a.test ([{A_IP}])"), head[:300]
    assert re.search(r"\(version=TLSv1\.[23] ", head), head[:300]
    assert f"Delivered-To: {fwd}" in head

    # B's copy bounces: a null-sender notice to the SRS0 address on A's port 25
    bounce = make_message("MAILER-DAEMON@mx.b.test", srs,
                          subject="Undelivered Mail Returned to Sender (forwarded)")
    with SMTP(a.smtp, host=a.listen_host) as s:
        s.ehlo()
        check(s.cmd("MAIL FROM:<>"), 250)
        check(s.cmd(f"RCPT TO:<{srs}>"), 250)
        r = s.cmd("DATA")
        assert r.code == 354, r.text
        s.send(bounce.replace(b"\r\n.", b"\r\n..") + b".\r\n")
        check(s.reply(), 250)
        s.cmd("QUIT")
    got = b.fetch_one(orig, timeout=30)            # through A's outbound, by MX
    assert b"Undelivered Mail Returned to Sender (forwarded)" in got
    qid = re.search(rb"by mx\.b\.test \(Roost\) with ESMTPS id (\w+)", got)
    assert qid, got[:600]
    acc = wait_log(b, "comp=queue", "event=accepted", f"queue={qid.group(1).decode()}")[0]
    assert 'from=""' in acc, acc                   # the null sender kept


# ---------------------------------------------------------------- 5

def _submit_many(a, rcpt, n, tag, threads=4):
    ids = [f"<crash.{i}.{tag}@a.test>" for i in range(n)]
    errors = []
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE

    def work(chunk):
        try:
            with smtplib.SMTP(a.listen_host, a.submission, timeout=60) as s:
                s.starttls(context=ctx)
                s.login(a.user, a.pw)
                for i in chunk:
                    msg = EmailMessage()
                    msg["From"], msg["To"] = a.user, rcpt
                    msg["Subject"], msg["Message-ID"] = f"crash {i}", ids[i]
                    msg.set_content(f"message {i} of {n}\n")
                    s.send_message(msg)
        except BaseException as e:  # reported below
            errors.append(e)

    ts = [threading.Thread(target=work, args=(list(range(k, n, threads)),))
          for k in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(120)
    assert not errors, errors[0]
    return ids


def _message_ids(srv, address):
    out = []
    for raw in inbox(srv, address):
        m = re.search(rb"^Message-ID:\s*(<[^>]+>)", raw, re.M | re.I)
        out.append(m.group(1).decode() if m else None)
    return out


def _b_received(b, rcpt):
    """Deliveries to RCPT logged by B so far (cheap: one read of its log)."""
    p = b.data / "log" / "roost.log"
    text = p.read_text(errors="replace") if p.exists() else ""
    return sum(1 for line in text.splitlines()
               if "event=delivered" in line and rcpt in line)


def test_kill9_during_outbound_run(pair):
    """B is stopped while A queues 200 messages for it (all deferred); B comes
    back, A's retries start the run, A is killed with SIGKILL in the middle
    and restarted: every message reaches B, duplicates at most the number in
    flight (PER_DEST connections x PER_CONNECTION_BATCH)."""
    a, b = pair["a"], pair["b"]
    rcpt = f"{unique('crash')}@b.test"
    b.make_account(rcpt)
    n = 200
    assert b.terminate() == 0
    try:
        ids = _submit_many(a, rcpt, n, unique("t"))
        wait_until(lambda: len(log_lines(a, "event=attempt", rcpt, "outcome=deferred")) >= n,
                   40, what="every message tried once while B is down")
    finally:
        b.start()
    t0 = time.monotonic()
    wait_until(lambda: _b_received(b, rcpt) >= 20, 40, what="the run to B to start")
    a.kill9()
    at_kill = _b_received(b, rcpt)
    print(f"\ncrash test: B had {at_kill} of {n} messages when A was killed")
    assert at_kill < n, "the run ended before the kill: nothing was in flight"
    a.start()
    wait_until(lambda: len(_message_ids(b, rcpt)) >= n, 60,
               what=f"all {n} messages at B after the restart")
    wait_until(lambda: rcpt not in a.queue_list(), 30, what="A's queue empty")
    got = _message_ids(b, rcpt)
    assert set(ids) <= set(got), sorted(set(ids) - set(got))[:5]
    dups = len(got) - len(set(got))
    bound = PER_DEST * PER_CONNECTION_BATCH
    print(f"crash test: {len(got)} messages at B for {n} sent, {dups} duplicate(s)"
          f" (bound {bound}); {time.monotonic() - t0:.1f}s from B's restart")
    assert set(got) == set(ids)
    assert dups <= bound, dups


# ---------------------------------------------------------------- 6

def test_smarthost_wrong_password_then_fixed(pair, roost_binary, tmp_path):
    """B as A's smarthost (implicit TLS on its 465, AUTH): a wrong password
    in relay_auth_file leaves the message queued with the 535; the file
    fixed, `roost queue retry ID` delivers it without a restart."""
    b = pair["b"]
    # the relay account is the sender's address (a relay lets an account
    # send only as itself, as Gmail does)
    relay_user, relay_pw = "sam@s.test", random_password()
    b.make_account(relay_user, relay_pw)
    carol = f"{unique('carol')}@b.test"
    b.make_account(carol)
    auth = tmp_path / "relay-auth"
    auth.write_text(f"{relay_user} not-the-password\n")
    os.chmod(auth, 0o600)
    s = RoostServer(hostname="mx.s.test", listen_host=SMART_IP, outbound=True,
                    extra_config=outbound_conf(pair["dns"], pair["mx_port"], f"""
relay = mx.b.test:{b.submissions}
relay_tls = implicit
relay_auth_file = {auth}
relay_ca_file = {b.cert}
""") + """
[transport]
* = relay

[queue]
retry_schedule = 1h
""")
    try:
        s.start()
        spw = random_password()
        s.make_account("sam@s.test", spw)
        submit(s, "sam@s.test", spw, [carol], subject="via the smarthost")
        wait_log(s, "event=auth-failed")
        line = wait_log(s, "event=attempt", f'rcpt="{carol}"', "outcome=deferred", "code=535")[0]
        assert "tls=TLSv1." in line, line          # the refused login went over TLS
        wait_until(lambda: re.search(r"<" + re.escape(carol) + r">.*535", s.queue_list()), 20,
                   what="the 535 in queue list")
        out = s.queue_list()
        qid = re.findall(r"^([0-9A-Z]{20})\s", out, re.M)
        assert len(qid) == 1, out
        assert b.mailbox_rows(carol) == []
        auth.write_text(f"{relay_user} {relay_pw}\n")
        os.chmod(auth, 0o600)
        s.ok("queue", "retry", qid[0])
        stored = b.fetch_one(carol, timeout=30)
        assert b"via the smarthost" in stored
        assert b"ESMTPSA" in stored.split(b"\r\n\r\n")[0]
        wait_log(s, "event=auth-file-reread")
        wait_log(s, f'rcpt="{carol}"', "outcome=delivered")
        wait_until(lambda: not queue_ids(s), 15, what="queue empty")
        log = s.stderr_text().decode("utf-8", "replace")
        assert relay_pw not in log and "not-the-password" not in log
    finally:
        _finish(s)


# ---------------------------------------------------------------- 7

def test_queue_verbs_with_real_transport(pair):
    """list/show/hold/retry/release/bounce/delete on A with the real
    transport: dead.test refuses connections, so messages wait."""
    a = pair["a"]
    sender, pw = f"{unique('q')}@a.test", random_password()
    a.make_account(sender, pw)
    qids = {}
    for name in ("hold", "bounce", "delete"):
        submit(a, sender, pw, [f"{name}@dead.test"], subject=f"verb {name}")
    wait_until(lambda: len(re.findall(r"@dead\.test>.*attempts=\d", a.queue_list())) >= 3, 20,
               what="three messages tried")
    out = a.queue_list()
    for qid in re.findall(r"^([0-9A-Z]{20})\s", out, re.M):
        show = a.ok("queue", "show", qid).stdout
        for name in ("hold", "bounce", "delete"):
            if f"<{name}@dead.test>" in show and f"sender:    <{sender}>" in show:
                qids[name] = qid
    assert set(qids) == {"hold", "bounce", "delete"}, out
    assert "Subject: verb hold" in a.ok("queue", "show", qids["hold"]).stdout
    assert re.search(r"deferred\s+<hold@dead\.test> remote\s+attempts=\d+\s+next=\S+Z\s+"
                     r"last=\"cannot connect to mx\.dead\.test \[127\.0\.0\.34\]: Connection refused",
                     out), out

    a.ok("queue", "hold", qids["hold"])
    wait_log(a, "event=held", f"queue={qids['hold']}")
    n = int(re.search(r"<hold@dead\.test>.*attempts=(\d+)", a.queue_list()).group(1))
    time.sleep(2.5)                                    # the 1s/2s schedule would have retried
    assert int(re.search(r"<hold@dead\.test>.*attempts=(\d+)", a.queue_list()).group(1)) == n
    a.ok("queue", "retry", qids["hold"])
    a.ok("queue", "release", qids["hold"])
    wait_until(lambda: int(re.search(r"<hold@dead\.test>.*attempts=(\d+)",
                                     a.queue_list()).group(1)) > n, 15, what="retried after release")

    a.ok("queue", "bounce", qids["bounce"])
    raw = a.fetch_one(sender, timeout=20)
    _, parts, blocks = parse_report(raw)
    assert blocks[1]["Final-Recipient"] == "rfc822; bounce@dead.test"
    assert blocks[1]["Action"] == "failed"
    assert "connect" in blocks[1]["Diagnostic-Code"].lower() or \
        "refused" in blocks[1]["Diagnostic-Code"].lower(), blocks[1]["Diagnostic-Code"]
    a.ok("queue", "delete", qids["delete"])
    a.ok("queue", "delete", qids["hold"])
    wait_until(lambda: not any(q in a.queue_list() for q in qids.values()), 15,
               what="all three gone")
    time.sleep(0.5)
    assert len(a.mailbox_rows(sender)) == 1          # no notice for the deletes
