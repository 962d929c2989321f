"""`roost log` and `roost status` against a real `roost serve`.

A message submitted with smtplib over 465 is traced with `roost log
--message` from its session (connect, TLS, AUTH, MAIL, RCPT, 250) to its
local delivery (mailbox and UID), in text and in JSON; refusals show under
`--status rejected` with their reason; the filters narrow the lines; IMAP and
POP3 logins with an app password show its name and never the secret; a
story survives log rotation; the outbound vocabulary of the other components
(attempt, dsn-queued, bounced) is followed in a log written by hand; `roost
status` sees the listeners, the queue and the sending counters move.
"""
import imaplib
import json
import smtplib
import time
from pathlib import Path

import pytest

from conftest import (ALL_LISTENERS, check, client_context, imap_context,
                      make_message, pop3_session, wait_until)



@pytest.fixture(scope="module")
def srv(all_server):
    return all_server


def cli(srv, *args):
    """roost with the server's own config (status needs the listeners)."""
    return srv.roost("--config", str(srv.conf), *args)


def submit(srv, sender, pw, rcpts, subject="log test"):
    """Sends one message over 465 with AUTH; returns the queue id of the 250."""
    msg = make_message(sender, rcpts[0], subject=subject)
    with smtplib.SMTP_SSL("127.0.0.1", srv.submissions, context=client_context(),
                          timeout=30) as s:
        s.ehlo("client.example.net")
        s.login(sender, pw)
        code, _ = s.mail(sender)
        assert code == 250
        for r in rcpts:
            code, _ = s.rcpt(r)
            assert code == 250
        code, resp = s.data(msg)
        assert code == 250, resp
    text = resp.decode()
    assert text.startswith("2.0.0 OK "), text
    return text.split()[-1]


def json_lines(res):
    assert res.rc == 0, res
    return [json.loads(line) for line in res.stdout.splitlines() if line.strip()]


def story(srv, qid, until_event="delivered", timeout=20):
    """`roost log --message QID --json`, polled until the event shows."""
    def get():
        r = srv.roost("log", "--message", qid, "--json")
        if r.rc != 0:
            return None
        lines = json_lines(r)
        return lines if any(l["event"] == until_event for l in lines) else None
    return wait_until(get, timeout, 0.2, f"{until_event} of {qid} in the log")


@pytest.fixture(scope="module")
def sent(srv):
    """alice sends one message to bob (both local); returns the facts."""
    alice, apw = srv.new_account("alice")
    bob, _ = srv.new_account("bob")
    qid = submit(srv, alice, apw, [bob])
    rows = srv.wait_for_message(bob, 1)
    lines = story(srv, qid)
    return {"alice": alice, "apw": apw, "bob": bob, "qid": qid, "uid": rows[0]["uid"],
            "lines": lines}


def order_of(events, wanted):
    """Indexes of each wanted (comp, event) in EVENTS, in order."""
    idx, pos = [], 0
    for w in wanted:
        while pos < len(events) and events[pos] != w:
            pos += 1
        assert pos < len(events), f"{w} missing or out of order in {events}"
        idx.append(pos)
        pos += 1
    return idx


def test_message_story_json(srv, sent):
    lines = sent["lines"]
    events = [(l["comp"], l["event"]) for l in lines]
    order_of(events, [("smtp", "connect"), ("smtp", "tls"), ("smtp", "auth"), ("smtp", "mail"),
                      ("smtp", "rcpt"), ("smtp", "data"), ("queue", "accepted"),
                      ("smtp", "accepted"), ("queue", "delivered")])
    by = {(l["comp"], l["event"]): l for l in lines}
    conn = by[("smtp", "connect")]
    assert conn["client"] == "127.0.0.1" and int(conn["port"]) > 0
    assert conn["listener"] == "submissions" and int(conn["local_port"]) == srv.submissions
    tls = by[("smtp", "tls")]
    assert tls["version"].startswith("TLSv1.") and tls["cipher"] and tls["mode"] == "implicit"
    auth = by[("smtp", "auth")]
    assert auth["result"] == "ok" and auth["account"] == sent["alice"]
    assert by[("smtp", "mail")]["from"] == sent["alice"]
    assert by[("smtp", "mail")]["result"] == "250"
    rcpt = by[("smtp", "rcpt")]
    assert rcpt["to"] == sent["bob"] and rcpt["result"] == "250"
    assert by[("smtp", "accepted")]["result"] == "250"
    d = by[("queue", "delivered")]
    assert d["account"] == sent["bob"] and d["mailbox"] == "INBOX"
    assert int(d["uid"]) == sent["uid"]
    # every line belongs to this message or to its session
    sid = conn["session"]
    for l in lines:
        assert l.get("queue") == sent["qid"] or l.get("session") == sid, l
    assert sent["apw"] not in json.dumps(lines)


def test_message_story_text(srv, sent):
    r = srv.ok("log", "--message", sent["qid"])
    out = r.stdout
    assert out.splitlines()[0] == f"Message {sent['qid']}"
    assert "ts=" not in out and "event=" not in out  # readable, not raw logfmt
    wanted = ["connection from 127.0.0.1 port ", "TLS established (implicit): TLSv1.",
              f"as {sent['alice']}", f"MAIL FROM:<{sent['alice']}>",
              f"RCPT TO:<{sent['bob']}> -> 250", "message accepted -> 250",
              f"delivered to {sent['bob']} mailbox INBOX uid {sent['uid']}"]
    pos = 0
    for w in wanted:
        i = out.find(w, pos)
        assert i >= 0, f"{w!r} missing or out of order in:\n{out}"
        pos = i + len(w)


def test_rejected_with_reason(srv, sent):
    c = srv.connect("smtp")
    c.ehlo()
    check(c.cmd("MAIL FROM:<stranger@remote.test>"), 250)
    check(c.cmd("RCPT TO:<someone@elsewhere.test>"), 550, "5.7.1", "Relaying denied")
    check(c.cmd("RSET"), 250)
    check(c.cmd("MAIL FROM:<big@remote.test> SIZE=999999999999"), 552, "5.3.4")
    c.cmd("QUIT")
    c.close()

    def rejected():
        lines = json_lines(srv.roost("log", "--status", "rejected", "--json"))
        reasons = {l.get("reason") for l in lines if l["event"] in ("rcpt", "reject")}
        return lines if {"relay-denied", "size"} <= reasons else None
    lines = wait_until(rejected, 10, 0.2, "relay-denied and size rejections")
    relay = [l for l in lines if l.get("reason") == "relay-denied"][-1]
    assert relay["result"] == "550" and relay["to"] == "someone@elsewhere.test"
    size = [l for l in lines if l.get("reason") == "size"][-1]
    assert size["result"] == "552" and size["command"] == "mail"
    # the accepted message is not among the rejected ones
    assert all(l.get("queue") != sent["qid"] for l in lines)
    text = srv.ok("log", "--status", "rejected").stdout
    assert "RCPT TO:<someone@elsewhere.test> -> 550 (relay-denied)" in text
    assert "mail refused -> 552: size" in text


def test_filters(srv, sent):
    # --account: alice's session and message, not someone else's
    other, opw = srv.new_account("carol")
    qid2 = submit(srv, other, opw, [sent["bob"]], subject="carol")
    story(srv, qid2)
    lines = json_lines(srv.roost("log", "--account", sent["alice"], "--json"))
    assert any(l["event"] == "auth" and l.get("account") == sent["alice"] for l in lines)
    assert any(l["event"] == "mail" and l.get("queue") == sent["qid"] for l in lines)
    assert not any(l.get("queue") == qid2 for l in lines)
    assert not any(l.get("account") == other for l in lines)
    # --to: both messages went to bob; --from narrows to alice's
    to = {l.get("queue") for l in json_lines(srv.roost("log", "--to", sent["bob"], "--json"))}
    assert {sent["qid"], qid2} <= to
    frm = json_lines(srv.roost("log", "--from", other, "--to", sent["bob"], "--json"))
    assert {l.get("queue") for l in frm} == {qid2}
    assert json_lines(srv.roost("log", "--to", "nobody-at-all@nowhere.test", "--json")) == []
    # --since / --until
    recent = json_lines(srv.roost("log", "--since", "1h", "--message", sent["qid"], "--json"))
    assert len(recent) == len(json_lines(srv.roost("log", "--message", sent["qid"], "--json")))
    today = time.strftime("%Y-%m-%d", time.gmtime())
    assert json_lines(srv.roost("log", "--since", today, "--to", sent["bob"], "--json"))
    assert json_lines(srv.roost("log", "--since", "2099-01-01", "--json")) == []
    assert json_lines(srv.roost("log", "--until", "2000-01-01T00:00", "--json")) == []
    # --session: exactly that session's lines
    sid = [l for l in sent["lines"] if l["event"] == "connect"][0]["session"]
    ses = json_lines(srv.roost("log", "--session", sid, "--json"))
    assert ses and all(l.get("session") == sid for l in ses)
    assert [l["event"] for l in ses][-1] == "disconnect"
    # --status delivered
    deliv = json_lines(srv.roost("log", "--status", "delivered", "--json"))
    assert any(l["event"] == "delivered" and l["queue"] == sent["qid"] for l in deliv)


def test_imap_pop3_logins_with_app_password(srv):
    user, pw = srv.new_account("dave")
    srv.ok("account", "set", user, "--pop", "on")
    secret = srv.ok("app-password", "create", user, "phone").stdout.strip().splitlines()[-1]
    m = imaplib.IMAP4_SSL("127.0.0.1", srv.ports["imaps"], ssl_context=imap_context(srv),
                          timeout=30)
    m.login(user, secret)
    m.logout()
    m = imaplib.IMAP4_SSL("127.0.0.1", srv.ports["imaps"], ssl_context=imap_context(srv),
                          timeout=30)
    with pytest.raises(imaplib.IMAP4.error):
        m.login(user, "wrong-password-xyz")
    m.logout()
    p = pop3_session(srv, user, secret)
    p.cmd("QUIT")
    p.close()

    def logins(proto):
        lines = json_lines(srv.roost("log", "--protocol", proto, "--account", user, "--json"))
        return [l for l in lines if l["event"] == "login"]
    imap = wait_until(lambda: len(logins("imap")) >= 2 and logins("imap"), 10, 0.2, "imap logins")
    ok = [l for l in imap if l["result"] == "ok"]
    assert ok and ok[0]["account"] == user and ok[0]["app_password"] == "phone"
    assert ok[0]["client"] == "127.0.0.1"
    assert any(l["result"] == "fail" and l["user"] == user for l in imap)
    pop = wait_until(lambda: logins("pop3"), 10, 0.2, "pop3 login")
    assert pop[0]["result"] == "ok" and pop[0]["app_password"] == "phone"
    everything = json_lines(srv.roost("log", "--protocol", "imap", "--json"))
    assert everything and all(l["comp"] == "imap" for l in everything)
    text = srv.ok("log", "--protocol", "imap", "--account", user).stdout
    assert f'ok as {user} (app password "phone")' in text
    # the secret never reaches the log files or the output
    logdir = Path(srv.data) / "log"
    for f in logdir.iterdir():
        assert secret.encode() not in f.read_bytes()
    assert secret not in text


def test_bad_inputs(srv):
    r = srv.roost("log", "--message", "NOSUCHQUEUEID0000000")
    assert r.rc == 1 and "no such message in the log" in r.stderr and r.stdout == ""
    for bad in ("yesterday", "2026-13-01", "2026-02-30", "12h30", "2026-12-03T25:00", "-1h", ""):
        r = srv.roost("log", "--since", bad)
        assert r.rc == 2, (bad, r)
    assert srv.roost("log", "--until", "soon").rc == 2
    assert srv.roost("log", "--status", "lost").rc == 2
    assert srv.roost("log", "--protocol", "http").rc == 2
    assert srv.roost("log", "--bogus").rc == 2
    assert srv.roost("log", "--message").rc == 2
    assert srv.roost("status", "--verbose").rc == 2


def test_status(srv, sent):
    r = cli(srv, "status")
    assert r.rc == 0, r
    for kind, port in srv.ports.items():
        assert any(line.split()[:1] == [kind] and line.rstrip().endswith("up")
                   and f":{port}" in line for line in r.stdout.splitlines()), (kind, r.stdout)

    def usage():
        st = json.loads(cli(srv, "status", "--json").stdout)
        return {a["account"]: a for a in st["accounts"]}, st
    before, st = usage()
    assert all(l["up"] for l in st["listeners"]) and len(st["listeners"]) == len(ALL_LISTENERS)
    assert isinstance(st["bounces_24h"], int)
    n = before[sent["alice"]]["messages"]
    assert n >= 1 and before[sent["alice"]]["limit_messages"] > n
    # one more message from alice, to a remote address: stays queued (deferred)
    submit(srv, sent["alice"], sent["apw"], ["friend@remote.example"], subject="remote")
    after, st = usage()
    assert after[sent["alice"]]["messages"] == n + 1
    assert st["queue"]["messages"] >= 1 and st["queue"]["deferred"] >= 1
    assert st["queue"]["oldest_deferred_age"] >= 0
    text = cli(srv, "status").stdout
    assert f"{sent['alice']}" in text and f"{n + 1}/" in text
    assert "with remote recipients pending" in text and "Bounces in the last 24 hours" in text


def test_status_listener_down(srv, tmp_path):
    conf = tmp_path / "down.conf"
    from conftest import free_ports
    (port,) = free_ports(1)
    conf.write_text(f"[server]\nhostname = x.test\ndata_dir = {srv.data}\nuser =\n\n"
                    f"[listeners]\nsmtp = 127.0.0.1:{port}\n")
    r = srv.roost("--config", str(conf), "status")
    assert r.rc == 1 and "DOWN" in r.stdout
    st = json.loads(srv.roost("--config", str(conf), "status", "--json").stdout)
    assert st["listeners"] == [{"kind": "smtp", "address": "127.0.0.1", "port": port,
                                "up": False}]


def test_rotation_keeps_the_story(make_server):
    s = make_server(extra_config="\n[log]\nmax_size = 8K\nkeep = 200\n")
    a, apw = s.new_account("rot")
    b, _ = s.new_account("rotb")
    first = submit(s, a, apw, [b], subject="first")
    s.wait_for_message(b, 1)
    story(s, first)
    # traffic until the first message's lines are all in rotated files
    logdir = Path(s.data) / "log"
    deadline = time.monotonic() + 60
    n = 1
    while first.encode() in (logdir / "roost.log").read_bytes() or \
            not (logdir / "roost.log.2").exists():
        assert time.monotonic() < deadline, "log did not rotate"
        c = s.connect("smtp")
        c.ehlo()
        c.cmd("NOOP")
        c.cmd("QUIT")
        c.close()
        n += 1
    assert (logdir / "roost.log.1").exists()
    lines = story(s, first)
    assert any(l["event"] == "connect" for l in lines)
    assert any(l["event"] == "delivered" and l["account"] == b for l in lines)
    for f in logdir.iterdir():
        assert f.stat().st_size < 8 * 1024 + 8192


def test_outbound_vocabulary_followed(srv, tmp_path):
    """The scheduler and outbound transport (other components) log attempts,
    DSNs and bounces keyed by queue=ID: a log in that vocabulary, read by a
    data directory of its own."""
    data = tmp_path / "data"
    (data / "log").mkdir(parents=True)
    now = time.time()

    def ts(off):
        t = now - 3600 + off
        return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + ".000Z"
    lines = [
        f"ts={ts(0)} level=info comp=smtp event=connect session=s1 client=192.0.2.7 port=4000 listener=submissions",
        f"ts={ts(1)} level=info comp=smtp event=mail session=s1 queue=Q1 client=192.0.2.7 from=a@example.test size=0 result=250",
        f"ts={ts(2)} level=info comp=smtp event=rcpt session=s1 queue=Q1 client=192.0.2.7 to=x@far.test result=250 route=remote",
        f"ts={ts(3)} level=info comp=queue event=accepted queue=Q1 from=a@example.test nrcpt=1 size=100",
        f"ts={ts(4)} level=info comp=outbound event=attempt queue=Q1 rcpt=x@far.test outcome=deferred remote=\"mx.far.test[198.51.100.1]\" reply=\"451 4.7.1 try later\" tls=TLSv1.3",
        f"ts={ts(5)} level=info comp=queue event=dsn-queued queue=Q1 dsn=D1 kind=delayed",
        f"ts={ts(6)} level=info comp=outbound event=attempt queue=Q1 rcpt=x@far.test outcome=failed remote=\"mx.far.test[198.51.100.1]\" reply=\"550 5.1.1 no such user\" tls=TLSv1.3",
        f"ts={ts(7)} level=info comp=queue event=dsn-queued queue=Q1 dsn=D2 kind=failed",
        f"ts={ts(8)} level=info comp=queue event=bounced queue=Q1 rcpt=x@far.test",
        f"ts={ts(9)} level=info comp=queue event=delivered queue=D2 rcpt=a@example.test account=a@example.test uid=3 mailbox=INBOX",
        "this line is not logfmt and is skipped",
        f"ts={ts(10)} level=info comp=queue event=removed queue=Q1",
        f"ts={ts(11)} level=info comp=queue event=removed queue=D2",
        f"ts={ts(12)} level=info comp=queue event=removed queue=OTHER",
    ]
    # the older half in a rotated file
    (data / "log" / "roost.log.1").write_text("\n".join(lines[:5]) + "\n")
    (data / "log" / "roost.log").write_text("\n".join(lines[5:]) + "\n")

    def run(*args):
        return srv.roost("--data", str(data), *args)
    got = json_lines(run("log", "--message", "Q1", "--json"))
    assert [l["event"] for l in got] == ["connect", "mail", "rcpt", "accepted", "attempt",
                                         "dsn-queued", "attempt", "dsn-queued", "bounced",
                                         "delivered", "removed", "removed"]
    assert got[4]["reply"] == "451 4.7.1 try later" and got[9]["queue"] == "D2"
    text = run("log", "--message", "Q1").stdout
    assert "delivery attempt to <x@far.test>: failed via mx.far.test[198.51.100.1]" in text
    assert "failed DSN queued as D2" in text
    # a bounce brings its DSN's own lines along (D2's delivery to the sender)
    assert {l["queue"] for l in json_lines(run("log", "--status", "bounced", "--json"))} == \
        {"Q1", "D2"}
    assert {l["queue"] for l in json_lines(run("log", "--status", "deferred", "--json"))} == {"Q1"}
    st = json.loads(run("status", "--json").stdout)
    assert st["bounces_24h"] == 1
