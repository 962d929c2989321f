"""DANE for outbound SMTP (RFC 7672; docs/outbound.md, "DANE").

The world: an authoritative DNS server with DNSSEC (dnssecfix.py, dnspython)
on 127.0.0.1 serves the signed zone dane.test, the signed zone expired.test
(every signature expired: bogus) and the unsigned zone plain.test. Roost A
forwards to it and trusts the DS records of the two signed zones
([outbound] dnssec_trust_anchor); plain.test is covered by no anchor, so
insecure. Roost B on 127.0.0.41 is the MX of every domain here, with a
certificate issued by a test CA (its chain file holds the CA too) naming
mx-ta.dane.test; a FakeMX without STARTTLS on 127.0.0.42 plays a server
that cannot do TLS. Each domain's MX host has its own TLSA records at
_PORT._tcp.HOST (PORT: the shared MX port, A's smtp_port):

  ee.dane.test      mx-ee     3 1 1 of B's key              delivered, DANE
  ta.dane.test      mx-ta     2 0 1 of the CA's certificate  delivered, DANE
  bad.dane.test     mx-bad    3 1 1 of another key           deferred 4.7.5
  notls.dane.test   mx-notls  3 1 1, server without STARTTLS deferred, no plain text
  none.dane.test    mx-none   no TLSA (NXDOMAIN proven)      opportunistic, delivered
  pkix.dane.test    mx-pkix   only 1 1 1 (PKIX-EE: unusable)  TLS required, unverified, delivered
  pkixnotls.dane.test mx-pkixnotls  the same, no STARTTLS   deferred 4.7.5
  badsig.dane.test  mx-badsig TLSA signed by an unknown key  deferred (bogus TLSA)
  expired.test      mx        everything expired             deferred (bogus MX)
  plain.test        mx        unsigned, a wrong TLSA         opportunistic, delivered
"""
import hashlib
import os
import shutil
import tempfile

import pytest
from cryptography.hazmat.primitives import serialization

from conftest import RoostServer, _finish, random_password, wait_until
from dnsfix import FakeMX, log_lines, stop_world, submit, wait_log, wildcard_free_port
from dnssecfix import SignedDNS, Zone
from testca import issue, make_ca, spki_der

B_IP, NOTLS_IP = "127.0.0.41", "127.0.0.42"
DELIVERED = ["ee.dane.test", "ta.dane.test", "none.dane.test", "pkix.dane.test", "plain.test"]


def make_chain(d):
    """A CA and a leaf for B (names: every mx-*.dane.test host we use);
    returns (chain file, key file, leaf SPKI DER, CA certificate DER)."""
    ca, ca_key = make_ca("Roost test CA")
    chain, keyfile, key = issue(ca, ca_key, ["mx-ta.dane.test", "mx-ee.dane.test"], d, "b")
    return chain, keyfile, spki_der(key), ca.public_bytes(serialization.Encoding.DER)


def sha256(b):
    return hashlib.sha256(b).hexdigest()


def zones(mx_port, spki, ca_der):
    """The three zones of the module docstring; TLSA names use MX_PORT."""
    tl = f"_{mx_port}._tcp"
    wrong = sha256(b"not the key of any server")
    dane = Zone("dane.test.", [
        ("ee", "MX", "10 mx-ee"), ("mx-ee", "A", B_IP), (f"{tl}.mx-ee", "TLSA", f"3 1 1 {sha256(spki)}"),
        ("ta", "MX", "10 mx-ta"), ("mx-ta", "A", B_IP), (f"{tl}.mx-ta", "TLSA", f"2 0 1 {sha256(ca_der)}"),
        ("bad", "MX", "10 mx-bad"), ("mx-bad", "A", B_IP), (f"{tl}.mx-bad", "TLSA", f"3 1 1 {wrong}"),
        ("notls", "MX", "10 mx-notls"), ("mx-notls", "A", NOTLS_IP),
        (f"{tl}.mx-notls", "TLSA", f"3 1 1 {sha256(spki)}"),
        ("none", "MX", "10 mx-none"), ("mx-none", "A", B_IP),
        ("pkix", "MX", "10 mx-pkix"), ("mx-pkix", "A", B_IP),
        (f"{tl}.mx-pkix", "TLSA", f"1 1 1 {wrong}"),
        ("pkixnotls", "MX", "10 mx-pkixnotls"), ("mx-pkixnotls", "A", NOTLS_IP),
        (f"{tl}.mx-pkixnotls", "TLSA", f"1 1 1 {wrong}"),
        ("badsig", "MX", "10 mx-badsig"), ("mx-badsig", "A", B_IP),
        (f"{tl}.mx-badsig", "TLSA", f"3 1 1 {sha256(spki)}"),
    ], bad_sigs=[(f"{tl}.mx-badsig", "TLSA")])
    expired = Zone("expired.test.", [("@", "MX", "10 mx"), ("mx", "A", B_IP),
                                     (f"{tl}.mx", "TLSA", f"3 1 1 {sha256(spki)}")], expired=True)
    plain = Zone("plain.test.", [("@", "MX", "10 mx"), ("mx", "A", B_IP),
                                 (f"{tl}.mx", "TLSA", f"3 1 1 {wrong}")], signed=False)
    return [dane, expired, plain]


@pytest.fixture(scope="module")
def world(roost_binary):
    tmp = tempfile.mkdtemp(prefix="roost-dane-")
    servers, fakes, dns = [], {}, None
    try:
        mx_port = wildcard_free_port()
        chain, keyfile, spki, ca_der = make_chain(tmp)
        dns = SignedDNS(zones(mx_port, spki, ca_der))
        anchor = dns.trust_anchor_file(os.path.join(tmp, "anchor.key"))
        fakes["notls"] = FakeMX(NOTLS_IP, mx_port, "partial")
        b = RoostServer(hostname="mx-ee.dane.test", listen_host=B_IP, port_map={"smtp": mx_port},
                        extra_config=f"[tls]\ncert = {chain}\nkey = {keyfile}\n")
        servers.append(b)
        b.start()
        a = RoostServer(hostname="mx.a.test", listen_host="127.0.0.40", outbound=True,
                        extra_config=f"""
[outbound]
resolver = 127.0.0.1@{dns.port}
dnssec_trust_anchor = {anchor}
smtp_port = {mx_port}
timeout_percent = 2
idle_seconds = 0

[queue]
retry_schedule = 1h
""")
        servers.append(a)
        a.start()
        a.user, a.pw = "alice@a.test", random_password()
        a.make_account(a.user, a.pw)
        for dom in DELIVERED + ["bad.dane.test", "badsig.dane.test", "expired.test"]:
            b.make_account(f"u@{dom}", random_password())
        yield {"a": a, "b": b, "dns": dns, "fakes": fakes, "tlsa": f"_{mx_port}._tcp",
               "mx_port": mx_port, "tmp": tmp, "spki": spki}
    finally:
        try:
            stop_world(servers, fakes.values(), dns)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)


def test_dane_ee_delivered(world):
    """(a) TLSA 3 1 1 of B's key: delivered over TLS that DANE verified."""
    a, b = world["a"], world["b"]
    submit(a, a.user, a.pw, ["u@ee.dane.test"], subject="dane ee")
    assert b"dane ee" in b.fetch_one("u@ee.dane.test", timeout=30)
    line = wait_log(a, "event=attempt", 'rcpt="u@ee.dane.test"', "outcome=delivered")[0]
    assert 'remote="mx-ee.dane.test [127.0.0.41]"' in line and "/dane " in line, line
    v = wait_log(a, "event=dane-verified", "mx-ee.dane.test")[0]
    assert 'tlsa="3 1 1"' in v and "depth=0" in v, v


def test_roost_dns_prints_the_tlsa_record_that_verifies(world):
    """`roost dns` on B prints the TLSA record for B's MX host: the same
    3 1 1 data as the record test (a) delivered against (the zone here
    serves it at the test's SMTP port instead of 25)."""
    b = world["b"]
    r = b.roost("--config", str(b.conf), "dns", "ee.dane.test")
    assert r.rc == 0, r
    lines = [l for l in r.stdout.splitlines() if " IN TLSA " in l]
    assert len(lines) == 1, r.stdout
    name, _ttl, _in, _type, *rdata = lines[0].split()
    assert name == "_25._tcp.mx-ee.dane.test."
    # zones(): the mx-ee record test (a) delivered against
    assert " ".join(rdata) == f"3 1 1 {sha256(world['spki'])}", rdata


def test_dane_ta_delivered(world):
    """(f) TLSA 2 0 1 of the CA that issued B's certificate (B sends the
    chain): delivered, the match is at the CA (depth 1) and the name
    mx-ta.dane.test is in the certificate."""
    a, b = world["a"], world["b"]
    submit(a, a.user, a.pw, ["u@ta.dane.test"], subject="dane ta")
    assert b"dane ta" in b.fetch_one("u@ta.dane.test", timeout=30)
    line = wait_log(a, "event=attempt", 'rcpt="u@ta.dane.test"', "outcome=delivered")[0]
    assert "/dane " in line, line
    v = wait_log(a, "event=dane-verified", "mx-ta.dane.test")[0]
    assert 'tlsa="2 0 1"' in v and "depth=1" in v, v


def test_dane_mismatch_deferred(world):
    """(b) TLSA that matches nothing B presents: not delivered, deferred
    with 4.7.5 and a DANE reason, still queued."""
    a, b = world["a"], world["b"]
    submit(a, a.user, a.pw, ["u@bad.dane.test"], subject="dane mismatch")
    line = wait_log(a, "event=attempt", 'rcpt="u@bad.dane.test"', "outcome=deferred")[0]
    assert "4.7.5" in line and "DANE" in line, line
    failed = wait_log(a, "event=tls-failed", "mx-bad.dane.test")[0]
    assert "DANE" in failed and "TLSA" in failed, failed
    assert "u@bad.dane.test" in a.queue_list()
    assert b.mailbox_rows("u@bad.dane.test") == []
    assert not log_lines(a, 'rcpt="u@bad.dane.test"', "outcome=delivered")


def test_dane_without_starttls_never_plain(world):
    """(c) TLSA records, but the server offers no STARTTLS: deferred (4.7.5),
    the message never goes out in plain text."""
    a, fake = world["a"], world["fakes"]["notls"]
    submit(a, a.user, a.pw, ["u@notls.dane.test"], subject="dane no tls")
    line = wait_log(a, "event=attempt", 'rcpt="u@notls.dane.test"', "outcome=deferred")[0]
    assert "4.7.5" in line and "STARTTLS" in line, line
    wait_log(a, "event=tls-failed", "mx-notls.dane.test")
    assert fake.conns >= 1
    assert fake.messages == []
    assert not any(c.upper().startswith(("MAIL", "RCPT", "DATA")) for c in fake.commands), fake.commands
    assert "u@notls.dane.test" in a.queue_list()


def test_secure_without_tlsa_opportunistic(world):
    """A signed zone without TLSA records for the MX host (proven by NSEC):
    no DANE, opportunistic TLS as before."""
    a, b = world["a"], world["b"]
    submit(a, a.user, a.pw, ["u@none.dane.test"], subject="no tlsa")
    assert b"no tlsa" in b.fetch_one("u@none.dane.test", timeout=30)
    line = wait_log(a, "event=attempt", 'rcpt="u@none.dane.test"', "outcome=delivered")[0]
    assert "tls=TLSv1." in line and "/dane" not in line, line
    # (the TLSA lookup may never reach the server: libunbound proves the
    # NXDOMAIN from the NSEC record of the AAAA answer, RFC 8198; a lookup
    # that failed or did not validate would have left the host out)


def test_unusable_tlsa_requires_tls_only(world):
    """Secure TLSA records, none usable for SMTP (PKIX-EE, RFC 7672 3.1.3):
    TLS is still required, but the certificate is not checked against them
    (delivered to B over TLS, not DANE-verified); a server without STARTTLS
    gets nothing."""
    a, b, fake = world["a"], world["b"], world["fakes"]["notls"]
    submit(a, a.user, a.pw, ["u@pkix.dane.test", "u@pkixnotls.dane.test"], subject="pkix only")
    assert b"pkix only" in b.fetch_one("u@pkix.dane.test", timeout=30)
    line = wait_log(a, "event=attempt", 'rcpt="u@pkix.dane.test"', "outcome=delivered")[0]
    assert "tls=TLSv1." in line and "/dane" not in line, line
    line = wait_log(a, "event=attempt", 'rcpt="u@pkixnotls.dane.test"', "outcome=deferred")[0]
    assert "4.7.5" in line and "STARTTLS" in line, line
    assert fake.messages == []


def test_insecure_zone_opportunistic(world):
    """(d) An unsigned zone: its (wrong) TLSA records are not used; delivered
    with opportunistic TLS as before."""
    a, b = world["a"], world["b"]
    submit(a, a.user, a.pw, ["u@plain.test"], subject="insecure zone")
    assert b"insecure zone" in b.fetch_one("u@plain.test", timeout=30)
    line = wait_log(a, "event=attempt", 'rcpt="u@plain.test"', "outcome=delivered")[0]
    assert "tls=TLSv1." in line and "/dane" not in line, line
    assert not log_lines(a, "event=dane-verified", "mx.plain.test")
    # insecure address records: no TLSA lookup at all (RFC 7672 2.2)
    assert (f"{world['tlsa']}.mx.plain.test.", "TLSA") not in world["dns"].queries


def test_bogus_tlsa_deferred(world):
    """(e) The TLSA RRset's signature is by a key the zone does not have:
    bogus, so the host is not used and the mail waits."""
    a = world["a"]
    submit(a, a.user, a.pw, ["u@badsig.dane.test"], subject="bogus tlsa")
    line = wait_log(a, "event=attempt", 'rcpt="u@badsig.dane.test"', "outcome=deferred")[0]
    assert "DNSSEC validation of the DANE TLSA records of mx-badsig.dane.test failed" in line, line
    wait_log(a, "event=dnssec-bogus", "mx-badsig.dane.test", "type=TLSA")
    assert "u@badsig.dane.test" in a.queue_list()


def test_bogus_mx_deferred(world):
    """(e) Every signature of the zone expired: the MX lookup is bogus,
    deferred (4.4.3), nothing sent."""
    a = world["a"]
    submit(a, a.user, a.pw, ["u@expired.test"], subject="expired zone")
    line = wait_log(a, "event=attempt", 'rcpt="u@expired.test"', "outcome=deferred")[0]
    assert "4.4.3" in line and "DNSSEC validation of the MX records of expired.test failed" in line, line
    assert "u@expired.test" in a.queue_list()
    wait_until(lambda: a.running(), 1, what="A still running")


@pytest.mark.parametrize("kind", ["stripped", "malformed"])
def test_unusable_trust_anchor_turns_dane_off(world, kind):
    """stripped: a trust anchor that the resolver's answers cannot match (a
    DS for plain.test, which the server serves unsigned, as a resolver that
    drops DNSSEC records would): the start-up probe finds the anchor's
    DNSKEY set bogus. malformed: a trust anchor file libunbound cannot
    load. Either way Roost runs without DNSSEC (an error line says so) and
    mail still goes out instead of waiting forever."""
    b, dns = world["b"], world["dns"]
    anchor = os.path.join(world["tmp"], f"{kind}-anchor.key")
    with open(anchor, "w") as f:
        if kind == "stripped":
            f.write("plain.test. 300 IN DS 12345 13 2 " + "ab" * 32 + "\n")
        else:
            f.write("plain.test. 300 IN DS this is not a DS record\n")
    rcpt = f"{kind}@plain.test"
    a2 = RoostServer(hostname="mx.a2.test", listen_host="127.0.0.43", outbound=True,
                     extra_config=f"""
[outbound]
resolver = 127.0.0.1@{dns.port}
dnssec_trust_anchor = {anchor}
smtp_port = {world["mx_port"]}
timeout_percent = 2
idle_seconds = 0
""")
    try:
        a2.start()
        user, pw = "carol@a2.test", random_password()
        a2.make_account(user, pw)
        b.make_account(rcpt, random_password())
        off = wait_log(a2, "event=dnssec-off", 'anchor="plain.test."')[0]
        assert "dane=off" in off and "level=error" in off, off
        submit(a2, user, pw, [rcpt], subject=f"no dnssec {kind}")
        assert f"no dnssec {kind}".encode() in b.fetch_one(rcpt, timeout=30)
        wait_log(a2, "event=attempt", f'rcpt="{rcpt}"', "outcome=delivered")
    finally:
        _finish(a2)
