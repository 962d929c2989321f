"""DKIM: `roost dkim generate|show` and the signatures Roost puts on mail
that accounts submit.

Every signature is checked by an independent verifier, dkimpy (Debian's
python3-dkim), whose DNS lookup is replaced by the TXT record that
`roost dkim show` printed; a one-byte change in the body must then make it
fail.  Messages are sent with Python's smtplib as an account; local
recipients are read back from their mailbox, remote ones from the queue
file (outbound delivery is not built yet, so they wait there).
"""
import os
import re
import smtplib
import stat
import struct
import subprocess

import pytest

from conftest import (DOMAIN, check, client_context, make_message, queue_id, split_received,
                      split_return_path, unique, wait_until)

dkim = pytest.importorskip("dkim", reason="python3-dkim (dkimpy) not installed")

EXT_SENDER = "someone@outside.example.net"


# ---------------------------------------------------------------- helpers

def new_domain(server, prefix="dk"):
    domain = f"{unique(prefix)}.test".lower()
    server.ensure_domain(domain)
    return domain


def record_of(output):
    """(name, value) of the TXT record in `roost dkim generate|show` output."""
    name = re.search(r"^name:  (\S+)$", output, re.M)
    value = re.search(r"^value: (.+)$", output, re.M)
    assert name and value, f"no TXT record in output:\n{output}"
    return name.group(1), value.group(1)


def dns_for(records):
    """A dkimpy dnsfunc answering from {name: value} (names without the
    trailing dot)."""
    def dnsfunc(name, timeout=5):
        if isinstance(name, bytes):
            name = name.decode()
        return records.get(name.rstrip(".").lower(), "").encode() or None
    return dnsfunc


def verify(msg, records):
    return dkim.verify(msg, dnsfunc=dns_for(records))


def signature_tags(stored):
    if stored.startswith(b"Return-Path:"):   # stored by final delivery; not a queued one
        _, stored = split_return_path(stored)
    assert stored.startswith(b"DKIM-Signature:"), f"not signed: {stored[:300]!r}"
    end = stored.index(b"\r\nReceived:")
    field = stored[len(b"DKIM-Signature:"):end].replace(b"\r\n", b"").decode()
    tags = {}
    for part in field.split(";"):
        if "=" in part:
            k, v = part.split("=", 1)
            tags[k.strip()] = re.sub(r"\s+", "", v)
    return tags, stored[end + 2:]


def alter_body_byte(stored):
    body_at = stored.index(b"\r\n\r\n") + 4
    i = stored.index(b"Hello", body_at)
    return stored[:i] + b"J" + stored[i + 1:]


def send(server, sender, pw, rcpts, msg):
    with smtplib.SMTP_SSL("127.0.0.1", server.submissions, context=client_context(),
                          timeout=30) as s:
        s.ehlo("client.example.net")
        s.login(sender, pw)
        refused = s.sendmail(sender, rcpts, msg, mail_options=["BODY=8BITMIME"])
        assert refused == {}


def queued_message(server, qid):
    """The 'M' record (the message as stored) of queue file QID."""
    path = server.data / "queue" / qid
    data = wait_until(lambda: path.exists() and path.read_bytes(), 10, what=f"queue file {qid}")
    assert data[:8] == b"ROOSTQ1\n"
    pos = 8
    while pos < len(data):
        rtype, rlen = data[pos:pos + 1], struct.unpack("<I", data[pos + 1:pos + 5])[0]
        if rtype == b"M":
            return data[pos + 5:pos + 5 + rlen]
        pos += 5 + rlen
    raise AssertionError(f"no message record in queue file {qid}")


@pytest.fixture(scope="module")
def rsa_domain(server):
    """A domain with an RSA key: (domain, {record name: value})."""
    domain = new_domain(server, "rsa")
    r = server.ok("dkim", "generate", domain, "--selector", "s1")
    name, value = record_of(r.stdout)
    return domain, {name: value}


# ---------------------------------------------------------------- CLI

def test_generate_prints_record_and_stores_private_key(server):
    domain = new_domain(server)
    r = server.ok("dkim", "generate", domain)
    name, value = record_of(r.stdout)
    sel = name.split("._domainkey.")[0]
    assert re.fullmatch(r"20[0-9]{2}(0[1-9]|1[0-2])", sel), f"default selector {sel!r}"
    assert name == f"{sel}._domainkey.{domain}"
    assert re.fullmatch(r"v=DKIM1; k=rsa; p=[A-Za-z0-9+/]+=*", value), value
    assert f"{name}. IN TXT (" in r.stdout
    key = server.data / "dkim" / domain / f"{sel}.key"
    assert stat.S_IMODE(os.stat(key).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(key.parent).st_mode) == 0o700
    assert b"PRIVATE KEY" in key.read_bytes()
    assert b"PRIVATE" not in r.out, "the private key must not be printed"
    # show prints the same record again
    assert record_of(server.ok("dkim", "show", domain).stdout) == (name, value)
    # generating again: a new selector is active, the old key is kept
    r2 = server.ok("dkim", "generate", domain, "--ed25519")
    name2, value2 = record_of(r2.stdout)
    assert name2 == f"{sel}-2._domainkey.{domain}"
    assert value2.startswith("v=DKIM1; k=ed25519; p=")
    assert key.exists()
    assert record_of(server.ok("dkim", "show", domain).stdout) == (name2, value2)


def test_ed25519_record_is_raw_32_byte_key(server):
    import base64
    domain = new_domain(server)
    _, value = record_of(server.ok("dkim", "generate", domain, "--ed25519", "--selector",
                                   "ed1").stdout)
    assert len(base64.b64decode(value.split("p=", 1)[1])) == 32


def test_cli_bad_input(server):
    domain = new_domain(server)
    r = server.roost("dkim", "generate", "not-served.example")
    assert r.rc == 1 and "not a domain served here" in r.stderr, r
    r = server.roost("dkim", "generate", "../../etc")
    assert r.rc == 1 and "not a valid domain name" in r.stderr, r
    for bad in ("a b", "-x", "a.b", "x" * 64, "sel/../x", ""):
        r = server.roost("dkim", "generate", domain, "--selector", bad)
        assert r.rc == 1 and "selector" in r.stderr, (bad, r)
    r = server.roost("dkim", "generate", domain, "--rsa", "--ed25519")
    assert r.rc == 2 and "choose one" in r.stderr, r
    r = server.roost("dkim", "generate", domain, "--bits", "1024")
    assert r.rc == 2 and "usage" in r.stderr, r
    r = server.roost("dkim", "generate", domain, "--selector")
    assert r.rc == 2, r
    r = server.roost("dkim", "generate")
    assert r.rc == 2 and "usage" in r.stderr, r
    r = server.roost("dkim", "show", domain)
    assert r.rc == 1 and "no DKIM key yet" in r.stderr, r
    r = server.roost("dkim", "show", "not-served.example")
    assert r.rc == 1 and "not a domain served here" in r.stderr, r
    server.ok("dkim", "generate", domain, "--selector", "dup")
    r = server.roost("dkim", "generate", domain, "--selector", "dup")
    assert r.rc == 1 and "already has a key" in r.stderr, r
    r = server.roost("dkim", "frobnicate", domain)
    assert r.rc == 2, r


def test_help_lists_dkim(server):
    out = server.ok("help").stdout
    assert "dkim generate DOMAIN [--rsa|--ed25519] [--selector S]" in out
    assert "dkim show DOMAIN" in out


# ---------------------------------------------------------------- signing

def test_submitted_mail_signed_rsa_and_verifies(server, rsa_domain):
    domain, records = rsa_domain
    sender, pw = server.new_account("alice", domain=domain)
    rcpt, _ = server.new_account("bob", domain=domain)
    msg = make_message(sender, rcpt, subject="DKIM rsa",
                       extra_headers=[f"Reply-To: {sender}", "X-Mailer: proto-test"])
    send(server, sender, pw, [rcpt], msg)
    stored = server.fetch_one(rcpt)
    tags, rest = signature_tags(stored)
    _, content = split_received(rest, return_path=False)
    assert content == msg, "the message after our fields must be what the client sent"
    assert tags["a"] == "rsa-sha256" and tags["c"] == "relaxed/relaxed"
    assert tags["d"] == domain and tags["s"] == "s1"
    h = tags["h"].lower().split(":")
    assert h.count("from") == 2, f"From must be over-signed: {h}"
    for f in ("to", "subject", "date", "message-id", "mime-version", "content-type", "reply-to"):
        assert f in h, f"{f} not signed: {h}"
    assert "x-mailer" not in h and "received" not in h
    assert verify(stored, records), "dkimpy could not verify Roost's signature"
    assert not verify(alter_body_byte(stored), records), "altered body still verifies"


def test_submitted_mail_signed_ed25519_and_verifies(server):
    pytest.importorskip("nacl", reason="python3-nacl needed by dkimpy for ed25519")
    domain = new_domain(server, "ed")
    name, value = record_of(server.ok("dkim", "generate", domain, "--ed25519").stdout)
    sender, pw = server.new_account("ed", domain=domain)
    rcpt, _ = server.new_account("rcpt", domain=domain)
    msg = make_message(sender, rcpt, subject="DKIM ed25519")
    send(server, sender, pw, [rcpt], msg)
    stored = server.fetch_one(rcpt)
    tags, _ = signature_tags(stored)
    assert tags["a"] == "ed25519-sha256" and tags["d"] == domain
    assert verify(stored, {name: value})
    assert not verify(alter_body_byte(stored), {name: value})


def test_remote_recipient_queued_signed(server, rsa_domain):
    domain, records = rsa_domain
    sender, pw = server.new_account("out", domain=domain)
    msg = make_message(sender, "friend@elsewhere.invalid", subject="DKIM outbound")
    with server.submit_session(sender, pw, "submission") as c:
        qid = queue_id(c.mail_transaction(sender, ["friend@elsewhere.invalid"], msg))
    queued = queued_message(server, qid)
    tags, _ = signature_tags(queued)
    assert tags["d"] == domain
    assert verify(queued, records)
    assert not verify(alter_body_byte(queued), records)


def test_rotation_signs_with_new_selector(server):
    domain = new_domain(server, "rot")
    old = record_of(server.ok("dkim", "generate", domain, "--selector", "old").stdout)
    new = record_of(server.ok("dkim", "generate", domain, "--selector", "new").stdout)
    sender, pw = server.new_account("rot", domain=domain)
    rcpt, _ = server.new_account("rcpt", domain=domain)
    send(server, sender, pw, [rcpt], make_message(sender, rcpt, subject="rotated"))
    stored = server.fetch_one(rcpt)
    assert signature_tags(stored)[0]["s"] == "new"
    assert verify(stored, dict([new]))
    assert not verify(stored, dict([old]))
    assert (server.data / "dkim" / domain / "old.key").exists()


def test_from_domain_preferred_then_envelope_domain(server, rsa_domain):
    """From: in a keyed domain signs with that domain; From: in a domain
    without a key falls back to the envelope sender's domain."""
    key_domain, records = rsa_domain
    plain_domain = new_domain(server, "nokey")
    account, pw = server.new_account("multi", domain=key_domain)
    alias = f"{unique('alias')}@{plain_domain}"
    server.ok("alias", "add", alias, account)
    rcpt, _ = server.new_account("rcpt", domain=key_domain)
    # From: alias@plain-domain (no key), envelope account@key-domain: fallback
    send(server, account, pw, [rcpt], make_message(alias, rcpt, subject="fallback"))
    stored = server.fetch_one(rcpt)
    tags, _ = signature_tags(stored)
    assert tags["d"] == key_domain
    assert verify(stored, records)
    # From: alias in a second keyed domain, envelope in the first: From wins
    from_domain = new_domain(server, "fromkey")
    from_rec = record_of(server.ok("dkim", "generate", from_domain, "--ed25519").stdout)
    alias2 = f"{unique('alias')}@{from_domain}"
    server.ok("alias", "add", alias2, account)
    other_rcpt, _ = server.new_account("rcpt2", domain=key_domain)
    send(server, account, pw, [other_rcpt], make_message(alias2, other_rcpt, subject="from"))
    stored = server.fetch_one(other_rcpt)
    assert signature_tags(stored)[0]["d"] == from_domain
    pytest.importorskip("nacl", reason="python3-nacl needed by dkimpy for ed25519")
    assert verify(stored, dict([from_rec]))


def test_no_key_no_signature(server):
    domain = new_domain(server, "unsigned")
    sender, pw = server.new_account("plain", domain=domain)
    rcpt, _ = server.new_account("rcpt", domain=domain)
    msg = make_message(sender, rcpt, subject="no key")
    send(server, sender, pw, [rcpt], msg)
    stored = server.fetch_one(rcpt)
    assert split_return_path(stored)[1].startswith(b"Received:")
    assert b"DKIM-Signature" not in stored


def test_port_25_mail_never_signed(server, rsa_domain):
    domain, _ = rsa_domain
    rcpt, _ = server.new_account("inbound", domain=domain)
    # even with a From: in a domain that has a key
    msg = make_message(f"spoof@{domain}", rcpt, subject="from outside")
    with server.connect("smtp") as c:
        c.ehlo()
        check(c.mail_transaction(EXT_SENDER, [rcpt], msg), 250)
    stored = server.fetch_one(rcpt)
    assert split_return_path(stored)[1].startswith(b"Received:")
    assert b"DKIM-Signature" not in stored


def test_broken_key_accepts_unsigned_and_logs(server):
    """A key Roost cannot use never costs the message: it is delivered
    unsigned and the failure is logged."""
    domain = new_domain(server, "broken")
    server.ok("dkim", "generate", domain, "--selector", "bad")
    (server.data / "dkim" / domain / "bad.key").write_text(
        "-----BEGIN PRIVATE KEY-----\nbm90IGEga2V5\n-----END PRIVATE KEY-----\n")
    sender, pw = server.new_account("broken", domain=domain)
    rcpt, _ = server.new_account("rcpt", domain=domain)
    msg = make_message(sender, rcpt, subject="broken key")
    send(server, sender, pw, [rcpt], msg)
    stored = server.fetch_one(rcpt)
    assert split_return_path(stored)[1].startswith(b"Received:")
    assert b"DKIM-Signature" not in stored
    _, content = split_received(stored)
    assert content == msg
    log = server.stderr_text()
    assert re.search(rb"level=error comp=dkim event=key-error .*domain=" + domain.encode() +
                     rb" .*result=unsigned", log), log[-2000:]


def test_sendmail_from_trusted_user_signed(server):
    """`roost sendmail` run by a trusted user (root, or the data directory's
    owner: whoever runs the tests): the message leaves signed for its From:
    domain like a logged-in sender's, and the signature verifies."""
    domain = new_domain(server, "cron")
    name, value = record_of(server.ok("dkim", "generate", domain, "--selector", "s1").stdout)
    sender, _ = server.new_account("cron", domain=domain)
    rcpt, _ = server.new_account("ops", domain=domain)
    msg = f"From: Nightly job <{sender}>\nTo: {rcpt}\nSubject: nightly\n\nHello, all good\n".encode()
    cp = subprocess.run([server.bin, "--data", str(server.data), "sendmail", "-f", sender, rcpt],
                        input=msg, capture_output=True, timeout=60)
    assert cp.returncode == 0, cp.stderr.decode("utf-8", "replace")
    stored = server.fetch_one(rcpt)
    tags, rest = signature_tags(stored)
    assert tags["d"] == domain and tags["s"] == "s1"
    assert rest.startswith(b"Received: by "), rest[:200]
    assert verify(stored, {name: value}), "dkimpy could not verify the pickup signature"
    assert not verify(alter_body_byte(stored), {name: value})
