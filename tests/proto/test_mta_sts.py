"""MTA-STS for outbound SMTP (RFC 8461; docs/outbound.md, "MTA-STS").

The world: a dnsmasq with the domains below (MX, the TXT record
_mta-sts.DOMAIN, mta-sts.DOMAIN on 127.0.0.60); a threaded Python HTTPS
server on 127.0.0.60 (a free port: A's mta_sts_port) serving each domain's
policy by its Host header, with a certificate from a test CA naming every
mta-sts.DOMAIN except mta-sts.badhttps.test; Roost B on 127.0.0.61, the MX,
with a certificate from the same CA for mx1.sts.test only (other.sts.test
points at B too: a certificate for another name); a FakeMX without
STARTTLS on 127.0.0.62 (notls.sts.test). Roost A trusts the test CA
(tls_ca_file) and forwards DNS to the dnsmasq (no DNSSEC: DANE off).

  enf.test        enforce, mx *.sts.test, MX mx1        delivered, tls=.../mta-sts
  nomx.test       enforce, mx mx9.other.test, MX mx1     deferred: MX not in the policy
  notls.test      enforce, MX notls.sts.test (no TLS)    deferred, never plain text
  wrongcert.test  enforce, MX other.sts.test             deferred: certificate name
  testing.test    testing, MX other.sts.test             delivered + would-defer logged
  notxt.test      no TXT record, MX notls.sts.test       delivered in plain text (as before)
  fetchfail.test  TXT, HTTPS 404, MX notls.sts.test      no policy: delivered in plain text
  redirect.test   TXT, HTTPS 301, MX notls.sts.test      no policy (redirects not followed)
  badhttps.test   TXT, HTTPS cert lacks the name         no policy
  big.test        TXT, a policy of 70 KB                 no policy (64 KiB at most)
  slow.test       TXT, HTTPS answers after 6 s           no policy (the fetch times out)
  cached.test     cache file (id old1, enforce, mx nomatch) preseeded; TXT id new2,
                  HTTPS 404                              the cached policy: deferred
  changed.test    cache file (id old1, enforce, mx nomatch) preseeded; TXT id new2,
                  HTTPS serves a good policy             refetched: delivered, cache updated
  off.test        enforce, mx nomatch.test; sent by A2 with mta_sts = no: delivered
  dsts.test       a DNSSEC-signed zone (dnssecfix.py) with TLSA 3 1 1 for its MX
                  host and an enforce policy that does not name it; sent by A3,
                  which validates: DANE wins (RFC 8461 2), delivered, tls=.../dane
"""
import hashlib
import http.server
import os
import shutil
import ssl
import tempfile
import threading
import time

import pytest
from cryptography.hazmat.primitives import serialization

from conftest import RoostServer, _finish, random_password, wait_until
from dnsfix import DNS, FakeMX, log_lines, stop_world, submit, wait_log, wildcard_free_port
from dnssecfix import SignedDNS, Zone
from testca import issue, make_ca, spki_der, write_pem

HTTPS_IP, B_IP, NOTLS_IP = "127.0.0.60", "127.0.0.61", "127.0.0.62"

ENF_GOOD = "version: STSv1\r\nmode: enforce\r\nmx: *.sts.test\r\nmax_age: 86400\r\n"
POLICIES = {
    "enf.test": (200, ENF_GOOD),
    "nomx.test": (200, "version: STSv1\nmode: enforce\nmx: mx9.other.test\nmax_age: 86400\n"),
    "notls.test": (200, "version: STSv1\nmode: enforce\nmx: notls.sts.test\nmax_age: 86400\n"),
    "wrongcert.test": (200, ENF_GOOD),
    "testing.test": (200, "version: STSv1\nmode: testing\nmx: *.sts.test\nmax_age: 86400\n"),
    "fetchfail.test": (404, "not here\n"),
    "redirect.test": (301, ""),
    "badhttps.test": (200, ENF_GOOD),
    "cached.test": (404, "gone\n"),
    "changed.test": (200, ENF_GOOD),
    "big.test": (200, ENF_GOOD + "ext: " + "y" * 70000 + "\n"),
    "slow.test": (200, ENF_GOOD),
    "dsts.test": (200, "version: STSv1\nmode: enforce\nmx: nomatch.test\nmax_age: 86400\n"),
    "off.test": (200, "version: STSv1\nmode: enforce\nmx: nomatch.test\nmax_age: 86400\n"),
}
MX = {
    "enf.test": "mx1.sts.test", "nomx.test": "mx1.sts.test", "notls.test": "notls.sts.test",
    "wrongcert.test": "other.sts.test", "testing.test": "other.sts.test",
    "notxt.test": "notls.sts.test", "fetchfail.test": "notls.sts.test",
    "redirect.test": "notls.sts.test", "badhttps.test": "notls.sts.test",
    "big.test": "notls.sts.test", "slow.test": "notls.sts.test",
    "cached.test": "mx1.sts.test", "changed.test": "mx1.sts.test", "off.test": "mx1.sts.test",
}
TXT_ID = {d: "1" for d in POLICIES}
TXT_ID.update({"cached.test": "new2", "changed.test": "new2"})
STALE = "version: STSv1\nmode: enforce\nmx: nomatch.test\nmax_age: 86400\n"


class PolicyServer:
    """HTTPS on HTTPS_IP: GET /.well-known/mta-sts.txt answers POLICIES[domain]
    by the Host header (mta-sts.DOMAIN[:port]); counts requests per domain."""

    def __init__(self, chain, keyfile, port):
        self.hits = {}
        self.lock = threading.Lock()
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                host = (self.headers.get("Host") or "").split(":")[0].lower()
                dom = host[len("mta-sts."):] if host.startswith("mta-sts.") else host
                with outer.lock:
                    outer.hits[dom] = outer.hits.get(dom, 0) + 1
                code, body = POLICIES.get(dom, (404, "no such policy\n"))
                if dom == "slow.test":
                    time.sleep(6)     # longer than A's whole fetch (60 s x 5%)
                if self.path != "/.well-known/mta-sts.txt":
                    code, body = 404, "wrong path\n"
                data = body.encode()
                self.send_response(code)
                if code == 301:
                    self.send_header("Location", f"https://{host}/elsewhere")
                self.send_header("Content-Type", "text/plain; charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *a):
                pass

        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(chain, keyfile)
        self.httpd = http.server.ThreadingHTTPServer((HTTPS_IP, port), Handler)
        self.httpd.daemon_threads = True
        self.httpd.socket = ctx.wrap_socket(self.httpd.socket, server_side=True)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def count(self, dom):
        with self.lock:
            return self.hits.get(dom, 0)

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(5)


def dns_records():
    r = [f"--host-record=mx1.sts.test,{B_IP}", f"--host-record=other.sts.test,{B_IP}",
         f"--host-record=notls.sts.test,{NOTLS_IP}"]
    for dom, mx in MX.items():
        r.append(f"--mx-host={dom},{mx},10")
    for dom, i in TXT_ID.items():
        r.append(f"--txt-record=_mta-sts.{dom},v=STSv1; id={i}")  # argv: no quotes
        r.append(f"--host-record=mta-sts.{dom},{HTTPS_IP}")
    # an unrelated TXT record next to the STSv1 one is ignored (RFC 8461 3.1)
    r.append("--txt-record=_mta-sts.enf.test,some other text")
    return r


def preseed(data_dir, dom, ident, policy):
    d = os.path.join(data_dir, "queue", "mta-sts")
    os.makedirs(d, mode=0o700, exist_ok=True)
    with open(os.path.join(d, dom), "w") as f:
        f.write(f"roost-mta-sts 1\nid: {ident}\nfetched: {int(time.time())}\n\n{policy}")


@pytest.fixture(scope="module")
def world(roost_binary):
    tmp = tempfile.mkdtemp(prefix="roost-sts-")
    servers, fakes, dns, https = [], {}, None, None
    try:
        mx_port, https_port = wildcard_free_port(), wildcard_free_port()
        ca, ca_key = make_ca("Roost MTA-STS test CA")
        ca_pem = write_pem(ca, os.path.join(tmp, "ca.pem"))
        b_chain, b_key, _ = issue(ca, ca_key, ["mx1.sts.test"], tmp, "b")
        names = [f"mta-sts.{d}" for d in POLICIES if d != "badhttps.test"]
        h_chain, h_key, _ = issue(ca, ca_key, names, tmp, "https")
        https = PolicyServer(h_chain, h_key, https_port)
        dns = DNS(dns_records())
        fakes["notls"] = FakeMX(NOTLS_IP, mx_port, "partial")
        b = RoostServer(hostname="mx1.sts.test", listen_host=B_IP, port_map={"smtp": mx_port},
                        extra_config=f"[tls]\ncert = {b_chain}\nkey = {b_key}\n")
        servers.append(b)
        b.start()
        a = RoostServer(hostname="mx.a.test", listen_host="127.0.0.59", outbound=True,
                        extra_config=f"""
[outbound]
resolver = 127.0.0.1@{dns.port}
dnssec_trust_anchor = none
smtp_port = {mx_port}
tls_ca_file = {ca_pem}
mta_sts_port = {https_port}
timeout_percent = 5
idle_seconds = 0

[queue]
retry_schedule = 1h
""")
        preseed(str(a.data), "cached.test", "old1", STALE)
        preseed(str(a.data), "changed.test", "old1", STALE)
        servers.append(a)
        a.start()
        a.user, a.pw = "alice@a.test", random_password()
        a.make_account(a.user, a.pw)
        for dom in MX:
            if MX[dom] != "notls.sts.test":
                b.make_account(f"u@{dom}", random_password())
        b.make_account("u@dsts.test", random_password())
        yield {"a": a, "b": b, "https": https, "fakes": fakes, "data": str(a.data), "dns": dns,
               "mx_port": mx_port, "https_port": https_port, "ca_pem": ca_pem, "b_key": b_key,
               "tmp": tmp}
    finally:
        try:
            stop_world(servers, fakes.values(), dns)
        finally:
            if https:
                https.stop()
            shutil.rmtree(tmp, ignore_errors=True)


def deferred_line(a, rcpt):
    return wait_log(a, "event=attempt", f'rcpt="{rcpt}"', "outcome=deferred", timeout=30)[0]


def plain_delivered(world, rcpt):
    a, fake = world["a"], world["fakes"]["notls"]
    line = wait_log(a, "event=attempt", f'rcpt="{rcpt}"', "outcome=delivered", timeout=30)[0]
    assert "tls=none" in line, line
    wait_until(lambda: any(rcpt in r for _, rs, _ in fake.messages for r in rs), 10,
               what=f"{rcpt} at the fake MX")
    return line


def test_enforce_matching_mx_delivered(world):
    a, b = world["a"], world["b"]
    submit(a, a.user, a.pw, ["u@enf.test"], subject="sts enforce")
    assert b"sts enforce" in b.fetch_one("u@enf.test", timeout=30)
    line = wait_log(a, "event=attempt", 'rcpt="u@enf.test"', "outcome=delivered")[0]
    assert "/mta-sts" in line and "mx1.sts.test" in line, line
    wait_log(a, "event=mta-sts-fetched", "domain=enf.test", "id=1", "mode=enforce")
    # cached: a second message does not fetch the policy again
    n = world["https"].count("enf.test")
    assert n == 1
    submit(a, a.user, a.pw, ["u@enf.test"], subject="sts enforce again")
    b.wait_for_message("u@enf.test", 2, timeout=30)
    assert world["https"].count("enf.test") == 1
    path = os.path.join(world["data"], "queue", "mta-sts", "enf.test")
    wait_until(lambda: os.path.exists(path), 10, what="the cache file")
    text = open(path).read()
    assert "id: 1\n" in text and "mode: enforce" in text, text


def test_enforce_mx_not_in_policy_deferred(world):
    a, b = world["a"], world["b"]
    submit(a, a.user, a.pw, ["u@nomx.test"], subject="sts nomx")
    line = deferred_line(a, "u@nomx.test")
    assert "4.7.5" in line and "MTA-STS" in line, line
    wait_log(a, "event=mta-sts", "domain=nomx.test", "outcome=mx-skipped", 'host="mx1.sts.test"')
    wait_log(a, "event=mta-sts", "domain=nomx.test", "outcome=deferred")
    assert "u@nomx.test" in a.queue_list()
    assert b.mailbox_rows("u@nomx.test") == []


def test_enforce_without_starttls_never_plain(world):
    a, fake = world["a"], world["fakes"]["notls"]
    submit(a, a.user, a.pw, ["u@notls.test"], subject="sts notls")
    line = deferred_line(a, "u@notls.test")
    assert "4.7.5" in line and "STARTTLS" in line and "MTA-STS" in line, line
    wait_log(a, "event=mta-sts", "domain=notls.test", "outcome=deferred")
    assert not any("notls.test" in r for _, rs, _ in fake.messages for r in rs)
    assert "u@notls.test" in a.queue_list()


def test_enforce_certificate_for_another_name_deferred(world):
    a, b = world["a"], world["b"]
    submit(a, a.user, a.pw, ["u@wrongcert.test"], subject="sts wrongcert")
    line = deferred_line(a, "u@wrongcert.test")
    assert "4.7.5" in line and "MTA-STS" in line and "certificate" in line, line
    failed = wait_log(a, "event=tls-failed", "other.sts.test")[0]
    assert "MTA-STS" in failed, failed
    assert b.mailbox_rows("u@wrongcert.test") == []


def test_testing_mode_delivers_and_logs(world):
    a, b = world["a"], world["b"]
    submit(a, a.user, a.pw, ["u@testing.test"], subject="sts testing")
    assert b"sts testing" in b.fetch_one("u@testing.test", timeout=30)
    line = wait_log(a, "event=mta-sts", "domain=testing.test", "mode=testing",
                    "outcome=would-defer")[0]
    assert "other.sts.test" in line and "certificate" in line, line
    d = wait_log(a, "event=attempt", 'rcpt="u@testing.test"', "outcome=delivered")[0]
    assert "/mta-sts" not in d, d


def test_no_txt_record_as_before(world):
    a = world["a"]
    submit(a, a.user, a.pw, ["u@notxt.test"], subject="sts notxt")
    plain_delivered(world, "u@notxt.test")
    assert not log_lines(a, "event=mta-sts", "domain=notxt.test")
    assert world["https"].count("notxt.test") == 0


@pytest.mark.parametrize("dom,why", [("fetchfail.test", "HTTP 404"),
                                     ("redirect.test", "HTTP 301"),
                                     ("badhttps.test", "certificate"),
                                     ("big.test", "64 KiB"),
                                     ("slow.test", "timed out")])
def test_fetch_fails_without_cache_no_policy(world, dom, why):
    a = world["a"]
    submit(a, a.user, a.pw, [f"u@{dom}"], subject=f"sts {dom}")
    plain_delivered(world, f"u@{dom}")
    line = wait_log(a, "event=mta-sts", f"domain={dom}", "outcome=fetch-failed")[0]
    assert why in line and "policy=none" in line, line


def test_cached_policy_used_when_fetch_fails(world):
    """A cache file from an earlier run (id old1); the TXT id is new2 but the
    fetch fails: the unexpired cached policy stays in force (RFC 8461 5.1)."""
    a, b = world["a"], world["b"]
    submit(a, a.user, a.pw, ["u@cached.test"], subject="sts cached")
    line = deferred_line(a, "u@cached.test")
    assert "4.7.5" in line, line
    f = wait_log(a, "event=mta-sts", "domain=cached.test", "outcome=fetch-failed")[0]
    assert "policy=cached" in f, f
    wait_log(a, "event=mta-sts", "domain=cached.test", "outcome=mx-skipped")
    assert world["https"].count("cached.test") == 1
    assert b.mailbox_rows("u@cached.test") == []


def test_changed_id_refetches(world):
    """The cached policy (id old1) would refuse B; the TXT id is new2, so A
    fetches again, the new policy names B: delivered, the cache file updated."""
    a, b = world["a"], world["b"]
    submit(a, a.user, a.pw, ["u@changed.test"], subject="sts changed")
    assert b"sts changed" in b.fetch_one("u@changed.test", timeout=30)
    wait_log(a, "event=mta-sts-fetched", "domain=changed.test", "id=new2")
    assert world["https"].count("changed.test") == 1
    path = os.path.join(world["data"], "queue", "mta-sts", "changed.test")
    wait_until(lambda: "id: new2\n" in open(path).read(), 10, what="the updated cache file")
    assert "mx: *.sts.test" in open(path).read()


def test_mta_sts_off(world):
    """[outbound] mta_sts = no: no TXT lookup, no fetch; a domain whose
    policy would refuse B (off.test) gets its mail as before."""
    b, https = world["b"], world["https"]

    a2 = RoostServer(hostname="mx.a2.test", listen_host="127.0.0.63", outbound=True,
                     extra_config=f"""
[outbound]
resolver = 127.0.0.1@{world["dns"].port}
dnssec_trust_anchor = none
smtp_port = {world["mx_port"]}
tls_ca_file = {world["ca_pem"]}
mta_sts = no
mta_sts_port = {world["https_port"]}
timeout_percent = 5
idle_seconds = 0
""")
    try:
        a2.start()
        user, pw = "carol@a2.test", random_password()
        a2.make_account(user, pw)
        submit(a2, user, pw, ["u@off.test"], subject="sts off")
        wait_log(a2, "event=attempt", 'rcpt="u@off.test"', "outcome=delivered", timeout=30)
        assert b"sts off" in b.fetch_one("u@off.test", timeout=30)
        assert not log_lines(a2, "mta-sts")
        assert https.count("off.test") == 0
    finally:
        _finish(a2)


def test_dane_host_is_judged_by_dane(world):
    """RFC 8461 2: an MX host with usable DANE TLSA records is used under
    DANE even though the domain's enforce policy does not name it."""
    b, https = world["b"], world["https"]
    with open(world["b_key"], "rb") as f:
        key = serialization.load_pem_private_key(f.read(), None)
    spki = spki_der(key)
    tl = f"_{world['mx_port']}._tcp"
    zone = Zone("dsts.test.", [("@", "MX", "10 mx-d"), ("mx-d", "A", B_IP),
                               (f"{tl}.mx-d", "TLSA", f"3 1 1 {hashlib.sha256(spki).hexdigest()}"),
                               ("_mta-sts", "TXT", '"v=STSv1; id=1"'),
                               ("mta-sts", "A", HTTPS_IP)])
    sdns = SignedDNS([zone])
    anchor = sdns.trust_anchor_file(os.path.join(world["tmp"], "dsts-anchor.key"))
    a3 = RoostServer(hostname="mx.a3.test", listen_host="127.0.0.64", outbound=True,
                     extra_config=f"""
[outbound]
resolver = 127.0.0.1@{sdns.port}
dnssec_trust_anchor = {anchor}
smtp_port = {world["mx_port"]}
tls_ca_file = {world["ca_pem"]}
mta_sts_port = {world["https_port"]}
timeout_percent = 5
idle_seconds = 0
""")
    try:
        a3.start()
        user, pw = "dave@a3.test", random_password()
        a3.make_account(user, pw)
        submit(a3, user, pw, ["u@dsts.test"], subject="sts dane")
        assert b"sts dane" in b.fetch_one("u@dsts.test", timeout=30)
        line = wait_log(a3, "event=attempt", 'rcpt="u@dsts.test"', "outcome=delivered")[0]
        assert "/dane" in line, line
        wait_log(a3, "event=mta-sts-fetched", "domain=dsts.test", "mode=enforce")
        assert not log_lines(a3, "outcome=mx-skipped")
        assert https.count("dsts.test") >= 1
    finally:
        try:
            _finish(a3)
        finally:
            sdns.stop()
