"""Outbound transport (docs/outbound.md): Roost A sends to the world.

The world is loopback: a dnsmasq started here (127.0.0.1, a free port,
--no-resolv --no-hosts) answers for *.test; Roost B on 127.0.0.3 is the MX of
b.test and imp.test (A record only: implicit MX); small Python SMTP servers
on 127.0.0.4-9 play a server that answers 451 at first, one that refuses one
recipient and has a SIZE limit, and three that talk garbage; on 127.0.0.21-22
two that offer CHUNKING (RFC 3030), with and without PIPELINING; mx.v6.test has
an AAAA (::1) and an A (127.0.0.23) record, a server on each. Every MX server
listens on one shared port, which A uses as its [outbound] smtp_port.
Roost C on 127.0.0.7 stands in for Gmail's smtp.gmail.com:465 (implicit TLS,
AUTH) for the smarthost tests.
"""
import os
import shutil
import smtplib
import ssl
import subprocess
import tempfile
import time
import email.policy
from email.message import EmailMessage
from pathlib import Path

import pytest

from conftest import RoostServer, _finish, random_password, wait_until
from dnsfix import DNS, FakeMX, log_lines, stop_world, submit, wait_log, wildcard_free_port

FLAKY_IP, PARTIAL_IP, RELAY_IP = "127.0.0.4", "127.0.0.5", "127.0.0.7"
HELO_IP, BADTLS_IP, DEAD_IP = "127.0.0.14", "127.0.0.15", "127.0.0.13"
RSETCLOSE_IP = "127.0.0.19"
LOGINRELAY_IP = "127.0.0.20"
CHUNK_IP, CHUNKNP_IP = "127.0.0.21", "127.0.0.22"
V6_IP4 = "127.0.0.23"
GARBAGE = {"garbage1.test": ("127.0.0.6", "greeting"),
           "garbage2.test": ("127.0.0.8", "overlong"),
           "garbage3.test": ("127.0.0.9", "midreply"),
           "silent.test": ("127.0.0.18", "silent")}


@pytest.fixture(scope="module")
def world(roost_binary):
    mx_port = wildcard_free_port()
    records = ["--mx-host=b.test,mx.b.test,10", "--host-record=mx.b.test,127.0.0.3",
               "--host-record=imp.test,127.0.0.3",
               "--dns-rr=nullmx.test,15,000000",
               "--mx-host=flaky.test,mx.flaky.test,10", f"--host-record=mx.flaky.test,{FLAKY_IP}",
               "--mx-host=partial.test,mx.partial.test,10",
               f"--host-record=mx.partial.test,{PARTIAL_IP}",
               "--mx-host=secure.test,mx.partial.test,10",
               "--mx-host=fo.test,mx1.fo.test,10", f"--host-record=mx1.fo.test,{DEAD_IP}",
               "--mx-host=fo.test,mx.partial.test,20",
               "--mx-host=helo.test,mx.helo.test,10", f"--host-record=mx.helo.test,{HELO_IP}",
               "--mx-host=rsetclose.test,mx.rsetclose.test,10",
               f"--host-record=mx.rsetclose.test,{RSETCLOSE_IP}",
               "--mx-host=badtls.test,mx.badtls.test,10",
               f"--host-record=mx.badtls.test,{BADTLS_IP}",
               f"--host-record=smtp.relay.test,{RELAY_IP}",
               f"--host-record=login.relay.test,{LOGINRELAY_IP}",
               "--mx-host=chunk.test,mx.chunk.test,10", f"--host-record=mx.chunk.test,{CHUNK_IP}",
               "--mx-host=chunknp.test,mx.chunknp.test,10",
               f"--host-record=mx.chunknp.test,{CHUNKNP_IP}",
               "--mx-host=v6.test,mx.v6.test,10", f"--host-record=mx.v6.test,{V6_IP4},::1"]
    for dom, (ip, _) in GARBAGE.items():
        records += [f"--mx-host={dom},mx.{dom},10", f"--host-record=mx.{dom},{ip}"]
    # many.test: 20 MX records at preference 50 (nothing listens) around
    # the preferred one (5), which is more than ten from either end
    for n in range(20):
        if n == 10:
            records.append("--mx-host=many.test,mx.partial.test,5")
        records += [f"--mx-host=many.test,mx{n}.many.test,50",
                    f"--host-record=mx{n}.many.test,{DEAD_IP}"]
    dns = DNS(records)
    fakes = {"flaky": FakeMX(FLAKY_IP, mx_port, "flaky"),
             "partial": FakeMX(PARTIAL_IP, mx_port, "partial"),
             "helo": FakeMX(HELO_IP, mx_port, "helo"),
             "badtls": FakeMX(BADTLS_IP, mx_port, "badtls"),
             "rsetclose": FakeMX(RSETCLOSE_IP, mx_port, "rsetclose"),
             "chunking": FakeMX(CHUNK_IP, mx_port, "chunking"),
             "chunknp": FakeMX(CHUNKNP_IP, mx_port, "chunknp"),
             "v6": FakeMX("::1", mx_port, "partial"),
             "v6v4": FakeMX(V6_IP4, mx_port, "partial")}
    for dom, (ip, mode) in GARBAGE.items():
        fakes[dom] = FakeMX(ip, mx_port, mode)
    servers = []
    try:
        # B logs at debug level: its event=command lines show whether A
        # sent DATA or BDAT (test_mx_over_verified_starttls)
        b = RoostServer(hostname="mx.b.test", listen_host="127.0.0.3",
                        port_map={"smtp": mx_port}, outbound=True,
                        extra_config="[server]\nlog_level = debug\n")
        servers.append(b)
        b.start()
        a = RoostServer(hostname="mx.a.test", listen_host="127.0.0.2", outbound=True,
                        extra_config=f"""
[outbound]
resolver = 127.0.0.1@{dns.port}
smtp_port = {mx_port}
timeout_percent = 2
idle_seconds = 1
max_connections_per_destination = 1
max_connections = 3
tls_required_domains = b.test secure.test share2.test
tls_ca_file = {b.cert}

[transport]
share1.test = smtp:mx.partial.test
share2.test = smtp:mx.partial.test

[queue]
retry_schedule = 1s 1s 1h
""")
        servers.append(a)
        a.start()
        a.user, a.pw = "alice@a.test", random_password()
        a.make_account(a.user, a.pw)
        yield {"a": a, "b": b, "dns": dns, "fakes": fakes, "mx_port": mx_port}
    finally:
        stop_world(servers, fakes.values(), dns)


def test_mx_over_verified_starttls(world):
    """b.test is in tls_required_domains: STARTTLS, certificate verified
    against mx.b.test (B's own certificate is the CA)."""
    a, b = world["a"], world["b"]
    b.make_account("bob@b.test", random_password())
    submit(a, a.user, a.pw, ["bob@b.test"], subject="to b by MX")
    stored = b.fetch_one("bob@b.test", timeout=30)
    assert b"to b by MX" in stored
    received = stored.split(b"\r\n\r\n")[0]
    assert b"ESMTPS" in received, received
    line = wait_log(a, "event=attempt", 'rcpt="bob@b.test"', "outcome=delivered")[0]
    assert 'remote="mx.b.test [127.0.0.3]"' in line and "tls=TLSv1." in line, line
    assert "code=250" in line
    wait_until(lambda: "bob@b.test" not in a.queue_list(), 10, what="queue empty")
    # B offers CHUNKING: A sent the message with BDAT, not DATA
    assert log_lines(b, "event=command", "verb=BDAT")
    assert not log_lines(b, "event=command", "verb=DATA")


def test_implicit_mx_opportunistic_tls(world):
    a, b = world["a"], world["b"]
    b.make_account("ivan@imp.test", random_password())
    submit(a, a.user, a.pw, ["ivan@imp.test"], subject="implicit mx")
    stored = b.fetch_one("ivan@imp.test", timeout=30)
    assert b"implicit mx" in stored and b"ESMTPS" in stored.split(b"\r\n\r\n")[0]
    line = wait_log(a, "event=attempt", 'rcpt="ivan@imp.test"', "outcome=delivered")[0]
    assert 'remote="imp.test [127.0.0.3]"' in line, line


def test_null_mx_fails_at_once(world):
    a = world["a"]
    t0 = time.monotonic()
    submit(a, a.user, a.pw, ["nobody@nullmx.test"])
    line = wait_log(a, "event=attempt", 'rcpt="nobody@nullmx.test"', "outcome=failed")[0]
    assert time.monotonic() - t0 < 15
    assert "5.1.10" in line and "null MX" in line, line
    assert not log_lines(a, 'rcpt="nobody@nullmx.test"', "outcome=deferred")
    wait_until(lambda: "nullmx.test" not in a.queue_list(), 10, what="failed message removed")


def test_nxdomain_fails(world):
    a = world["a"]
    submit(a, a.user, a.pw, ["x@nosuchdomain.test"])
    line = wait_log(a, "event=attempt", 'rcpt="x@nosuchdomain.test"', "outcome=failed")[0]
    assert "5.1.2" in line and "does not exist" in line, line


def test_451_then_delivered_on_retry(world):
    a, fake = world["a"], world["fakes"]["flaky"]
    submit(a, a.user, a.pw, ["later@flaky.test"], subject="flaky")
    wait_until(lambda: fake.messages, 40, what="the flaky server to get the message")
    mail, rcpts, data = fake.messages[-1]
    assert rcpts == ["later@flaky.test"] and b"flaky" in data
    deferred = log_lines(a, 'rcpt="later@flaky.test"', "outcome=deferred")
    assert len(deferred) >= FakeMX.FAIL_FIRST and "code=451" in deferred[0], deferred
    wait_log(a, 'rcpt="later@flaky.test"', "outcome=delivered")
    assert log_lines(a, "event=retry-scheduled")


def test_one_rcpt_refused_others_delivered(world):
    a, fake = world["a"], world["fakes"]["partial"]
    before = len(fake.messages)
    rc = ["one@partial.test", "bad@partial.test", "two@partial.test"]
    submit(a, a.user, a.pw, rc, subject="three rcpts")
    wait_until(lambda: len(fake.messages) > before, 30, what="partial server message")
    mail, rcpts, data = fake.messages[-1]
    assert sorted(rcpts) == ["one@partial.test", "two@partial.test"]
    assert "SIZE=" in mail, mail
    bad = wait_log(a, 'rcpt="bad@partial.test"', "outcome=failed")[0]
    assert "code=550" in bad and "5.1.1" in bad, bad
    for r in ("one@partial.test", "two@partial.test"):
        wait_log(a, f'rcpt="{r}"', "outcome=delivered")
    wait_until(lambda: "partial.test" not in a.queue_list(), 10, what="queue done")


def test_message_over_remote_size_fails(world):
    a, fake = world["a"], world["fakes"]["partial"]
    before = len(fake.messages)
    submit(a, a.user, a.pw, ["big@partial.test"], subject="big", size_pad=2000)
    line = wait_log(a, 'rcpt="big@partial.test"', "outcome=failed")[0]
    assert "552" in line and "5.3.4" in line, line
    assert len(fake.messages) == before


def test_tls_required_but_not_offered_defers(world):
    a = world["a"]
    submit(a, a.user, a.pw, ["z@secure.test"])
    wait_log(a, "event=tls-failed", "mx.partial.test")
    line = wait_log(a, 'rcpt="z@secure.test"', "outcome=deferred")[0]
    assert "STARTTLS" in line, line
    assert "z@secure.test" in a.queue_list()


def test_transport_host_shared_with_a_tls_required_domain(world):
    """Two domains routed to one transport host (smtp:mx.partial.test, which
    offers no STARTTLS), the second in tls_required_domains: the plain
    connection opened for the first and kept idle (idle_seconds) must not
    carry the second's mail."""
    a, fake = world["a"], world["fakes"]["partial"]
    submit(a, a.user, a.pw, ["p@share1.test"], subject="plain share")
    wait_log(a, 'rcpt="p@share1.test"', "outcome=delivered")
    before = len(fake.messages)
    submit(a, a.user, a.pw, ["s@share2.test"], subject="tls share")
    line = wait_log(a, 'rcpt="s@share2.test"', "outcome=deferred")[0]
    assert "STARTTLS" in line, line
    assert not [m for m in fake.messages[before:] if m[1] == ["s@share2.test"]]
    assert "s@share2.test" in a.queue_list()


@pytest.mark.parametrize("domain,expect", [("garbage1.test", "malformed reply"),
                                           ("garbage2.test", "longer than 2048"),
                                           ("garbage3.test", "closed the connection"),
                                           ("silent.test", "timeout waiting for the server's reply (greeting)")])
def test_garbage_servers_defer(world, domain, expect):
    a = world["a"]
    rcpt = f"g@{domain}"
    submit(a, a.user, a.pw, [rcpt])
    line = wait_log(a, f'rcpt="{rcpt}"', "outcome=deferred")[0]
    assert expect in line, line
    assert a.running()
    assert rcpt in a.queue_list()


def test_next_mx_after_connection_refused(world):
    a, fake = world["a"], world["fakes"]["partial"]
    before = len(fake.messages)
    submit(a, a.user, a.pw, ["fo@fo.test"], subject="failover")
    wait_until(lambda: len(fake.messages) > before, 30, what="delivery by the second MX")
    assert fake.messages[-1][1] == ["fo@fo.test"]
    wait_log(a, "event=connect-failed", f"mx1.fo.test [{DEAD_IP}]")
    line = wait_log(a, 'rcpt="fo@fo.test"', "outcome=delivered")[0]
    assert f'remote="mx.partial.test [{PARTIAL_IP}]"' in line, line


def test_ipv6_address_tried_first(world):
    """An MX host with an AAAA and an A record: A connects over IPv6 first."""
    a, six, four = world["a"], world["fakes"]["v6"], world["fakes"]["v6v4"]
    submit(a, a.user, a.pw, ["six@v6.test"], subject="over ipv6")
    line = wait_log(a, 'rcpt="six@v6.test"', "outcome=delivered")[0]
    assert 'remote="mx.v6.test [::1]"' in line, line
    assert [m[1] for m in six.messages] == [["six@v6.test"]]
    assert four.messages == []


def test_ipv4_when_ipv6_refused(world):
    """The IPv6 address refuses the connection: the same host's IPv4
    address takes the message."""
    a, six, four = world["a"], world["fakes"]["v6"], world["fakes"]["v6v4"]
    wait_log(a, 'rcpt="six@v6.test"', "outcome=delivered")
    six.stop()
    # a connection A still holds to [::1] from the test above is idle for
    # at most idle_seconds (1 s); A must not be able to reuse it
    time.sleep(1.5)
    before = len(six.messages)
    submit(a, a.user, a.pw, ["four@v6.test"], subject="over ipv4")
    line = wait_log(a, 'rcpt="four@v6.test"', "outcome=delivered")[0]
    assert f'remote="mx.v6.test [{V6_IP4}]"' in line, line
    wait_log(a, "event=connect-failed", "mx.v6.test [::1]")
    assert [m[1] for m in four.messages] == [["four@v6.test"]]
    assert len(six.messages) == before


def test_preferred_mx_among_many(world):
    """21 MX records: the preferred one is kept even though it is more than
    ten records from either end of the answer (only ten hosts are tried,
    chosen after sorting by preference)."""
    a, fake = world["a"], world["fakes"]["partial"]
    before = len(fake.messages)
    submit(a, a.user, a.pw, ["m@many.test"], subject="many mx")
    wait_until(lambda: any(m[1] == ["m@many.test"] for m in fake.messages[before:]), 30,
               what="delivery to the preferred MX")
    line = wait_log(a, 'rcpt="m@many.test"', "outcome=delivered")[0]
    assert f'remote="mx.partial.test [{PARTIAL_IP}]"' in line, line


def test_helo_fallback(world):
    a, fake = world["a"], world["fakes"]["helo"]
    submit(a, a.user, a.pw, ["h@helo.test"], subject="helo only")
    wait_until(lambda: fake.messages, 30, what="the HELO-only server to get the message")
    mail, rcpts, data = fake.messages[-1]
    assert rcpts == ["h@helo.test"] and "SIZE=" not in mail, mail
    wait_log(a, 'rcpt="h@helo.test"', "outcome=delivered", "tls=none")


def test_failed_opportunistic_tls_retries_in_plain(world):
    a, fake = world["a"], world["fakes"]["badtls"]
    submit(a, a.user, a.pw, ["t@badtls.test"], subject="tls broken")
    wait_until(lambda: fake.messages, 30, what="delivery in plain text after the TLS failure")
    line = wait_log(a, "event=tls-failed", "mx.badtls.test")[0]
    assert "without TLS" in line, line
    wait_log(a, 'rcpt="t@badtls.test"', "outcome=delivered", "tls=none")


def test_connection_reused_with_rset(world):
    """max_connections_per_destination = 1: the second message to the same
    destination waits and gets the first one's connection (RSET, not a new
    connect)."""
    a, fake = world["a"], world["fakes"]["partial"]
    time.sleep(1.5)          # let earlier idle connections expire
    conns, rsets, before = fake.conns, fake.rsets, len(fake.messages)
    send_two(a, ["r1@partial.test", "r2@partial.test"])
    wait_until(lambda: len(fake.messages) >= before + 2, 30, what="both messages")
    assert fake.conns == conns + 1, (fake.conns, conns)
    assert fake.rsets >= rsets + 1


def send_two(a, rcpts):
    """a's user sends one message per recipient in one submission session."""
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    with smtplib.SMTP(a.listen_host, a.submission, timeout=30) as s:
        s.starttls(context=ctx)
        s.login(a.user, a.pw)
        for n, r in enumerate(rcpts):
            msg = EmailMessage()
            msg["From"], msg["To"], msg["Subject"] = a.user, r, f"message {n}"
            msg.set_content("two in a row\n")
            s.send_message(msg)


def test_dead_reused_connection_replaced(world):
    """The server drops the connection at RSET: the waiting message gets a
    new connection at once, not a deferral."""
    a, fake = world["a"], world["fakes"]["rsetclose"]
    send_two(a, ["d1@rsetclose.test", "d2@rsetclose.test"])
    wait_until(lambda: len(fake.messages) >= 2, 30, what="both messages")
    assert fake.conns == 2 and fake.rsets == 1, (fake.conns, fake.rsets)
    wait_log(a, "event=reconnect")
    assert not log_lines(a, "rsetclose.test", "outcome=deferred")


def test_utf8_address_to_server_without_smtputf8_fails(world):
    a, fake = world["a"], world["fakes"]["partial"]
    before = len(fake.messages)
    rcpt = "j\u00fcrgen@partial.test"
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = a.user, rcpt, "utf8"
    msg.set_content("Gr\u00fc\u00dfe\n")
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    with smtplib.SMTP(a.listen_host, a.submission, timeout=30) as s:
        s.starttls(context=ctx)
        s.login(a.user, a.pw)
        s.sendmail(a.user, [rcpt], msg.as_bytes(policy=email.policy.SMTPUTF8), mail_options=["SMTPUTF8", "BODY=8BITMIME"])
    line = wait_log(a, "outcome=failed", "5.6.7")[0]
    assert "SMTPUTF8" in line, line
    assert len(fake.messages) == before


# ---- CHUNKING (RFC 3030) --------------------------------------------------

DOTTY_BODY = "Lines with dots:\n.leading dot\n..two dots\n.\nend\n"


def session_commands(fake, rcpt):
    """The commands of the transaction for RCPT: from its MAIL to the next
    MAIL (or the end)."""
    with fake.lock:
        cmds = list(fake.commands)
    i = max(n for n, c in enumerate(cmds) if c.upper() == f"RCPT TO:<{rcpt.upper()}>")
    start = max(n for n in range(i + 1) if cmds[n].upper().startswith("MAIL"))
    end = next((n for n in range(i + 1, len(cmds)) if cmds[n].upper().startswith("MAIL")),
               len(cmds))
    return cmds[start:end]


def wait_message(fake, rcpt):
    def found():
        with fake.lock:
            return [m for m in fake.messages if rcpt in m[1]]
    return wait_until(found, 30, what=f"the message to {rcpt}")[-1]


@pytest.mark.parametrize("key", ["chunking", "chunknp"])
def test_bdat_last_when_chunking_offered(world, key):
    """CHUNKING offered (with and without PIPELINING): one BDAT <size>
    LAST, size = exactly the bytes that follow, no dot-stuffing, no DATA."""
    a, fake = world["a"], world["fakes"][key]
    dom = "chunk.test" if key == "chunking" else "chunknp.test"
    rcpt = f"dots@{dom}"
    submit(a, a.user, a.pw, [rcpt], subject=f"bdat {key}", body=DOTTY_BODY)
    mail, rcpts, data = wait_message(fake, rcpt)
    assert rcpts == [rcpt]
    cmds = session_commands(fake, rcpt)
    bdat = [c for c in cmds if c.upper().startswith("BDAT")]
    assert bdat == [f"BDAT {len(data)} LAST"], cmds
    assert "DATA" not in [c.upper() for c in cmds], cmds
    # the body as stored by A: leading dots unchanged, no end marker
    assert data.endswith(b"\r\n\r\nLines with dots:\r\n.leading dot\r\n..two dots\r\n.\r\nend\r\n"), data
    assert b"\n..leading" not in data and b"\r\n\r\n" in data and b"\n\n" not in data
    line = wait_log(a, "event=attempt", f'rcpt="{rcpt}"', "outcome=delivered")[0]
    assert "code=250" in line, line


def test_data_dot_stuffed_without_chunking(world):
    """No CHUNKING in the EHLO reply: DATA, lines starting with "." doubled
    on the wire (the fake server stores them as received)."""
    a, fake = world["a"], world["fakes"]["partial"]
    rcpt = "dots@partial.test"
    submit(a, a.user, a.pw, [rcpt], subject="data dots", body=DOTTY_BODY)
    mail, rcpts, data = wait_message(fake, rcpt)
    assert data.endswith(b"\r\n\r\nLines with dots:\r\n..leading dot\r\n...two dots\r\n..\r\nend\r\n"), data
    cmds = session_commands(fake, rcpt)
    assert "DATA" in cmds and not [c for c in cmds if c.upper().startswith("BDAT")], cmds
    wait_log(a, f'rcpt="{rcpt}"', "outcome=delivered")


@pytest.mark.parametrize("code,outcome", [(452, "deferred"), (552, "failed")])
def test_bdat_refused(world, code, outcome):
    """The reply to BDAT LAST is the message's outcome: 452 defers, 552
    fails the accepted recipient; a recipient refused at RCPT keeps its own
    550."""
    a, fake = world["a"], world["fakes"]["chunking"]
    rcpt = f"bdat{code}@chunk.test"
    submit(a, a.user, a.pw, [rcpt, "bad@chunk.test"], subject=f"bdat {code}")
    line = wait_log(a, "event=attempt", f'rcpt="{rcpt}"', f"outcome={outcome}")[0]
    assert f"code={code}" in line, line
    bad = wait_log(a, 'rcpt="bad@chunk.test"', "outcome=failed")[0]
    assert "code=550" in bad, bad
    assert not [m for m in fake.messages if rcpt in m[1]]
    if outcome == "deferred":
        assert rcpt in a.queue_list()
    else:
        wait_until(lambda: rcpt not in a.queue_list(), 10, what="the failed recipient gone")
    assert a.running()


def test_bdat_pipelined_after_refused_rcpt(world):
    """With PIPELINING the BDAT goes out with MAIL and RCPT, before their
    replies: with the only recipient refused the server still gets the
    chunk (and answers 503); the recipient keeps its 550."""
    a, fake = world["a"], world["fakes"]["chunking"]
    rcpt = "bad-pipe@chunk.test"
    submit(a, a.user, a.pw, [rcpt], subject="pipelined bdat")
    line = wait_log(a, "event=attempt", f'rcpt="{rcpt}"', "outcome=failed")[0]
    assert "code=550" in line and "5.1.1" in line, line
    cmds = session_commands(fake, rcpt)
    assert [c for c in cmds if c.startswith("BDAT ") and c.endswith(" LAST")], cmds
    assert not [m for m in fake.messages if rcpt in m[1]]
    assert a.running()


def test_bdat_connection_reused_with_rset(world):
    """Two messages over one connection to a CHUNKING server: RSET between
    the transactions, both sent with BDAT."""
    a, fake = world["a"], world["fakes"]["chunking"]
    send_two(a, ["re1@chunk.test", "re2@chunk.test"])
    for r in ("re1@chunk.test", "re2@chunk.test"):
        wait_message(fake, r)
    first = session_commands(fake, "re1@chunk.test")
    # max_connections_per_destination = 1: the second message waits for the
    # first one's connection, so re1's transaction runs into RSET and re2's MAIL
    assert first[-1] == "RSET" and [c for c in first if c.startswith("BDAT ")], first
    second = session_commands(fake, "re2@chunk.test")
    assert [c for c in second if c.startswith("BDAT ")] and "DATA" not in second, second


# ---- smarthost -----------------------------------------------------------

@pytest.fixture(scope="module")
def relay_world(world, roost_binary):
    """C: smtp.relay.test, implicit TLS on its submissions port, AUTH."""
    c = RoostServer(hostname="smtp.relay.test", listen_host=RELAY_IP, outbound=True)
    try:
        c.start()
        c.relay_pw = random_password()
        c.make_account("alice@a.test", c.relay_pw)
        c.make_account("carol@c.test", random_password())
        yield c
    finally:
        _finish(c)


def relay_sender(world, c, ip, secret, mode=0o600, starttls=False):
    base = Path(tempfile.mkdtemp(prefix="roost-relay-auth-"))
    auth = base / "relay-auth"
    auth.write_text(secret)
    os.chmod(auth, mode)
    a = RoostServer(hostname="mx.a.test", listen_host=ip, outbound=True, extra_config=f"""
[outbound]
resolver = 127.0.0.1@{world['dns'].port}
relay = smtp.relay.test:{c.submission if starttls else c.submissions}
relay_tls = {"starttls" if starttls else "implicit"}
relay_auth_file = {auth}
relay_ca_file = {c.cert}
timeout_percent = 10

[transport]
c.test = relay
* = mx

[queue]
retry_unit_ms = 200
""")
    a.auth_dir = base
    return a


def test_relay_delivers(world, relay_world):
    """[transport] c.test = relay: implicit TLS verified against
    smtp.relay.test (relay_ca_file), AUTH PLAIN with relay_auth_file."""
    c = relay_world
    a = relay_sender(world, c, "127.0.0.10", f"alice@a.test {c.relay_pw}\n")
    try:
        a.start()
        apw = random_password()
        a.make_account("alice@a.test", apw)
        submit(a, "alice@a.test", apw, ["carol@c.test"], subject="via relay")
        stored = c.fetch_one("carol@c.test", timeout=30)
        assert b"via relay" in stored
        assert b"ESMTPSA" in stored.split(b"\r\n\r\n")[0]
        wait_log(a, "event=auth-ok", "smtp.relay.test")
        line = wait_log(a, 'rcpt="carol@c.test"', "outcome=delivered")[0]
        assert 'remote="smtp.relay.test [127.0.0.7]"' in line and "tls=TLSv1." in line, line
        assert c.relay_pw not in a.stderr_text().decode("utf-8", "replace")
    finally:
        _finish(a)
        shutil.rmtree(a.auth_dir, ignore_errors=True)


def test_relay_wrong_password_defers_with_hint(world, relay_world):
    c = relay_world
    a = relay_sender(world, c, "127.0.0.11", "alice@a.test\nnot-the-password\n")
    try:
        a.start()
        apw = random_password()
        a.make_account("alice@a.test", apw)
        submit(a, "alice@a.test", apw, ["carol@c.test"], subject="wrong pw")
        line = wait_log(a, "event=auth-failed")[0]
        assert "535" in line and "relay_auth_file" in line and 'hint="' in line, line
        dl = wait_log(a, 'rcpt="carol@c.test"', "outcome=deferred")[0]
        assert "535" in dl, dl
        assert "carol@c.test" in a.queue_list()
        assert "not-the-password" not in a.stderr_text().decode("utf-8", "replace")
    finally:
        _finish(a)
        shutil.rmtree(a.auth_dir, ignore_errors=True)


def test_relay_daily_limit_defers(world, relay_world):
    """Gmail's 550 5.4.5 from the relay is about the relay account: deferred."""
    c = relay_world
    cpw = random_password()
    c.make_account("limited@a.test", cpw, daily_limit=1)
    a = relay_sender(world, c, "127.0.0.16", f"limited@a.test {cpw}\n")
    try:
        a.start()
        apw = random_password()
        a.make_account("limited@a.test", apw)
        submit(a, "limited@a.test", apw, ["carol@c.test"], subject="first of the day")
        wait_log(a, 'rcpt="carol@c.test"', "outcome=delivered")
        submit(a, "limited@a.test", apw, ["carol@c.test"], subject="over the limit")
        line = wait_log(a, 'rcpt="carol@c.test"', "outcome=deferred")[0]
        assert "5.4.5" in line and "daily sending limit" in line, line
        wait_log(a, "event=relay-limit")
        assert "carol@c.test" in a.queue_list()
    finally:
        _finish(a)
        shutil.rmtree(a.auth_dir, ignore_errors=True)


def test_relay_starttls_and_app_password_required(world, relay_world):
    """The relay's 587-style port (STARTTLS, verified), and a two-factor
    account that answers 534 5.7.9 to its account password."""
    c = relay_world
    cpw = random_password()
    c.make_account("twofa@a.test", cpw)
    c.ok("account", "set", "twofa@a.test", "--two-factor", "on")
    a = relay_sender(world, c, "127.0.0.17", f"twofa@a.test {cpw}\n", starttls=True)
    try:
        a.start()
        apw = random_password()
        a.make_account("twofa@a.test", apw)
        submit(a, "twofa@a.test", apw, ["carol@c.test"], subject="needs an app password")
        line = wait_log(a, "event=auth-failed")[0]
        assert "534" in line and "app password" in line, line
        dl = wait_log(a, 'rcpt="carol@c.test"', "outcome=deferred")[0]
        assert 'remote="smtp.relay.test [127.0.0.7]"' in dl and "5.7.9" in dl, dl
        assert "carol@c.test" in a.queue_list()
    finally:
        _finish(a)
        shutil.rmtree(a.auth_dir, ignore_errors=True)


def test_relay_auth_login_only(world, tmp_path):
    """A relay offering only AUTH LOGIN, implicit TLS on a port other than
    465, certificate checked against login.relay.test (relay_ca_file)."""
    cert, key = tmp_path / "relay.pem", tmp_path / "relay.key"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:P-256", "-nodes", "-days", "2", "-subj",
                    "/CN=login.relay.test", "-addext", "subjectAltName=DNS:login.relay.test",
                    "-keyout", str(key), "-out", str(cert)], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(str(cert), str(key))
    port = wildcard_free_port()
    fake = FakeMX(LOGINRELAY_IP, port, "loginrelay", tls_ctx=ctx)
    auth = tmp_path / "auth"
    auth.write_text("relayuser@login.test\nsecret with spaces\n")
    os.chmod(auth, 0o600)
    a = RoostServer(hostname="mx.a.test", listen_host="127.0.0.21", outbound=True,
                    extra_config=f"""
[outbound]
resolver = 127.0.0.1@{world['dns'].port}
relay = login.relay.test:{port}
relay_tls = implicit
relay_auth_file = {auth}
relay_ca_file = {cert}
timeout_percent = 10

[queue]
retry_unit_ms = 200
""")
    try:
        a.start()
        apw = random_password()
        a.make_account("alice@a.test", apw)
        submit(a, "alice@a.test", apw, ["someone@anywhere.test"], subject="login relay")
        wait_until(lambda: fake.messages, 30, what="the LOGIN relay to get the message")
        assert fake.auth == [("relayuser@login.test", "secret with spaces")]
        assert fake.messages[0][1] == ["someone@anywhere.test"]
        line = wait_log(a, 'rcpt="someone@anywhere.test"', "outcome=delivered")[0]
        assert f'remote="login.relay.test [{LOGINRELAY_IP}]"' in line and "tls=TLSv1.3" in line
    finally:
        _finish(a)
        fake.stop()


def test_relay_auth_file_readable_by_others_refused(world, relay_world):
    c = relay_world
    a = relay_sender(world, c, "127.0.0.12", "alice@a.test secret\n", mode=0o644)
    try:
        # the listeners are bound before the check: wait for the exit
        try:
            a.start(timeout=15)
        except AssertionError:
            pass
        wait_until(lambda: a.proc.poll() is not None, 20, what="roost serve to refuse")
        assert a.proc.returncode != 0
        assert "chmod 600" in a.stderr_tail()
    finally:
        _finish(a)
        shutil.rmtree(a.auth_dir, ignore_errors=True)
