"""`roost log --message` and `roost status` after REMOTE delivery and after a
bounce, on real data (docs/log.md).

The world is loopback, as in test_outbound.py (whose dnsmasq helper is
imported, not copied): a dnsmasq answers for *.test; Roost B on 127.0.0.43
is the MX of b.test; nothing listens on 127.0.0.44, the MX of dead.test.
Roost A on 127.0.0.42 delivers by MX. alice@a.test sends three messages:
to bob@b.test (B answers 250), to nobody@b.test (B answers 550 5.1.1: A
bounces, and its DSN lands in alice's INBOX) and to x@dead.test (connection
refused: deferred, retried later). remote_world() is shared with
test_http.py's remote metrics test.
"""
import contextlib
import json
import smtplib

import pytest

from conftest import RoostServer, client_context, make_message, wait_until
from dnsfix import DNS, stop_world, wildcard_free_port

A_IP, B_IP, DEAD_IP = "127.0.0.42", "127.0.0.43", "127.0.0.44"
ALICE = "alice@a.test"


@contextlib.contextmanager
def remote_world():
    """dnsmasq, B (MX of b.test) and A (delivers by MX, TLS verified against
    B's certificate); alice@a.test on A and bob@b.test on B exist."""
    mx_port = wildcard_free_port()
    dns = DNS(["--mx-host=b.test,mx.b.test,10", f"--host-record=mx.b.test,{B_IP}",
               "--mx-host=dead.test,mx.dead.test,10", f"--host-record=mx.dead.test,{DEAD_IP}"])
    servers = []
    try:
        b = RoostServer(hostname="mx.b.test", listen_host=B_IP, port_map={"smtp": mx_port},
                        outbound=True)
        servers.append(b)
        b.start()
        b.make_account("bob@b.test")
        a = RoostServer(hostname="mx.a.test", listen_host=A_IP, outbound=True, extra_config=f"""
[outbound]
resolver = 127.0.0.1@{dns.port}
smtp_port = {mx_port}
timeout_percent = 2
tls_required_domains = b.test
tls_ca_file = {b.cert}
""")
        servers.append(a)
        a.start()
        a.apw = a.make_account(ALICE)
        yield {"a": a, "b": b}
    finally:
        stop_world(servers, dns=dns)


def submit(a, rcpt, subject):
    """alice sends one message over 465 (smtplib); returns the queue id of the 250."""
    msg = make_message(ALICE, rcpt, subject=subject)
    with smtplib.SMTP_SSL(A_IP, a.submissions, context=client_context(), timeout=30) as s:
        s.login(ALICE, a.apw)
        assert s.mail(ALICE)[0] == 250
        assert s.rcpt(rcpt)[0] == 250
        code, resp = s.data(msg)
        assert code == 250, resp
    return resp.decode().split()[-1]


def json_lines(res):
    assert res.rc == 0, res
    return [json.loads(line) for line in res.stdout.splitlines() if line.strip()]


def story(srv, qid, done, timeout=30):
    """`roost log --message QID --json`, polled until DONE(lines) holds."""
    def get():
        r = srv.roost("log", "--message", qid, "--json")
        if r.rc != 0:
            return None
        lines = json_lines(r)
        return lines if done(lines) else None
    return wait_until(get, timeout, 0.2, f"the story of {qid}")


def in_order(lines, wanted):
    """Each wanted (comp, event) appears, in this order; returns those lines."""
    got, pos = [], 0
    for w in wanted:
        while pos < len(lines) and (lines[pos]["comp"], lines[pos]["event"]) != w:
            pos += 1
        assert pos < len(lines), f"{w} missing or out of order in " \
                                 f"{[(l['comp'], l['event']) for l in lines]}"
        got.append(lines[pos])
        pos += 1
    return got


def text_in_order(out, wanted):
    pos = 0
    for w in wanted:
        i = out.find(w, pos)
        assert i >= 0, f"{w!r} missing or out of order in:\n{out}"
        pos = i + len(w)


@pytest.fixture(scope="module")
def world(roost_binary):
    with remote_world() as w:
        yield w


@pytest.fixture(scope="module")
def sent(world):
    a, b = world["a"], world["b"]
    ok = submit(a, "bob@b.test", "to bob by MX")
    b.wait_for_message("bob@b.test", 1, timeout=30)
    bad = submit(a, "nobody@b.test", "to nobody")
    dead = submit(a, "x@dead.test", "to a dead MX")
    return {"ok": ok, "bad": bad, "dead": dead}


def removed(qid):
    return lambda lines: any(l["event"] == "removed" and l["queue"] == qid for l in lines)


def test_remote_delivery_story(world, sent):
    a, qid = world["a"], sent["ok"]
    lines = story(a, qid, removed(qid))
    conn, tls, auth, mail, rcpt, _, _, acc, _, att, end = in_order(lines, [
        ("smtp", "connect"), ("smtp", "tls"), ("smtp", "auth"), ("smtp", "mail"),
        ("smtp", "rcpt"), ("smtp", "data"), ("queue", "accepted"), ("smtp", "accepted"),
        ("queue", "queued-remote"), ("outbound", "attempt"), ("queue", "removed")])
    assert conn["listener"] == "submissions" and tls["mode"] == "implicit"
    assert auth["account"] == ALICE and mail["from"] == ALICE
    assert rcpt["to"] == "bob@b.test" and rcpt["route"] == "remote"
    assert acc["result"] == "250"
    assert att["rcpt"] == "bob@b.test" and att["outcome"] == "delivered"
    assert att["remote"] == f"mx.b.test [{B_IP}]"
    assert att["tls"].startswith("TLSv1.") and att["code"] == "250"
    assert att["reply"].startswith("250 ")
    assert all(l.get("queue") == qid or l.get("session") == conn["session"] for l in lines)
    out = a.ok("log", "--message", qid).stdout
    assert out.splitlines()[0] == f"Message {qid}"
    text_in_order(out, [f"MAIL FROM:<{ALICE}>", "RCPT TO:<bob@b.test> -> 250 route remote",
                        "message accepted -> 250", "waiting for remote delivery to <bob@b.test>",
                        f"delivery attempt to <bob@b.test>: delivered via mx.b.test [{B_IP}] "
                        "reply \"250 ", " tls TLSv1.", "removed from the queue (done)"])


def test_bounce_story(world, sent):
    a, qid = world["a"], sent["bad"]

    def dsn_delivered(lines):
        d = [l for l in lines if l["event"] == "dsn-queued"]
        return d and any(l["event"] == "removed" and l["queue"] == d[0]["dsn"] for l in lines)
    lines = story(a, qid, dsn_delivered)
    att, bounced, dq = in_order(lines, [("outbound", "attempt"), ("queue", "bounced"),
                                        ("queue", "dsn-queued")])
    assert att["outcome"] == "failed" and att["code"] == "550"
    assert att["reply"].startswith("550 5.1.1 ") and att["remote"] == f"mx.b.test [{B_IP}]"
    assert bounced["rcpt"] == "nobody@b.test" and bounced["status"] == "5.1.1"
    dsn = dq["dsn"]
    assert dq["kind"] == "failed" and dq["to"] == ALICE and dsn != qid
    # the DSN's own lines: queued with the null sender, delivered to alice's INBOX
    own = [l for l in lines if l.get("queue") == dsn]
    acc, deliv, _ = in_order(own, [("queue", "accepted"), ("queue", "delivered"),
                                   ("queue", "removed")])
    assert acc["from"] == ""
    assert deliv["account"] == ALICE and deliv["mailbox"] == "INBOX"
    rows = [r for r in a.mailbox_rows(ALICE) if r["qid"] == dsn]
    assert len(rows) == 1 and int(deliv["uid"]) == rows[0]["uid"]
    assert b"nobody@b.test" in a.cat(ALICE, rows[0]["uid"])
    out = a.ok("log", "--message", qid).stdout
    text_in_order(out, ["delivery attempt to <nobody@b.test>: failed via mx.b.test",
                        'reply "550 5.1.1 ', "bounced <nobody@b.test> 5.1.1 (failed)",
                        f"failed DSN queued as {dsn} to <{ALICE}>",
                        f"queue {dsn}", f"delivered to {ALICE} mailbox INBOX uid {rows[0]['uid']}"])


def test_deferred_story(world, sent):
    a, qid = world["a"], sent["dead"]
    lines = story(a, qid, lambda ls: any(l["event"] == "retry-scheduled" for l in ls))
    att, retry = in_order(lines, [("outbound", "attempt"), ("queue", "retry-scheduled")])
    assert att["outcome"] == "deferred" and att["remote"] == f"mx.dead.test [{DEAD_IP}]"
    assert "Connection refused" in att["reply"] and att["tls"] == "none"
    assert retry["rcpt"] == "x@dead.test" and int(retry["attempt"]) == 1
    assert not any(l["event"] == "removed" for l in lines)
    out = a.ok("log", "--message", qid).stdout
    text_in_order(out, ["delivery attempt to <x@dead.test>: deferred via mx.dead.test",
                        "retry 1 scheduled in "])


def test_status_filters(world, sent):
    a = world["a"]
    story(a, sent["bad"], lambda ls: any(l["event"] == "dsn-queued" for l in ls))
    story(a, sent["dead"], lambda ls: any(l["event"] == "retry-scheduled" for l in ls))
    bounced = json_lines(a.roost("log", "--status", "bounced", "--json"))
    qs = {l.get("queue") for l in bounced}
    dsn = [l["dsn"] for l in bounced if l["event"] == "dsn-queued"]
    assert len(dsn) == 1
    assert qs == {sent["bad"], dsn[0]}, qs       # the message and its DSN, nothing else
    assert any(l["event"] == "attempt" and l["code"] == "550" for l in bounced)
    deferred = json_lines(a.roost("log", "--status", "deferred", "--json"))
    assert {l.get("queue") for l in deferred} == {sent["dead"]}
    delivered = {l.get("queue") for l in json_lines(a.roost("log", "--status", "delivered",
                                                            "--json"))}
    assert sent["ok"] in delivered and sent["dead"] not in delivered
    assert sent["bad"] not in delivered and dsn[0] in delivered  # the DSN reached alice
    text = a.ok("log", "--status", "bounced").stdout
    assert 'reply "550 5.1.1 ' in text and "failed DSN queued as" in text
    # --to follows recipients, not the DSN's addressee
    to = {l.get("queue") for l in json_lines(a.roost("log", "--to", ALICE, "--json"))}
    assert to == {dsn[0]}, to


def test_status_shows_deferred_and_bounces(world, sent):
    a = world["a"]
    story(a, sent["bad"], lambda ls: any(l["event"] == "dsn-queued" for l in ls))
    story(a, sent["ok"], removed(sent["ok"]))
    st = json.loads(a.ok("--config", str(a.conf), "status", "--json").stdout)
    assert st["queue"]["messages"] == 1 and st["queue"]["deferred"] == 1, st
    assert st["queue"]["oldest_deferred_age"] >= 0
    assert st["bounces_24h"] == 1
    text = a.ok("--config", str(a.conf), "status").stdout
    assert "1 message queued, 1 with remote recipients pending" in text, text
    assert "Bounces in the last 24 hours: 1" in text
