"""The HTTP listener of `roost serve` ([http], docs/http.md): /metrics in the
Prometheus text format (parsed here, and counters that move with real
smtplib / imaplib / poplib traffic), /healthz, Thunderbird autoconfig,
Outlook Autodiscover, Apple .mobileconfig, the MTA-STS policy, bad requests,
HTTPS with the server's certificate, and `roost dns DOMAIN`; the remote
delivery counters and queue depth on a real MX delivery, a 550 and a dead MX.
"""
import hashlib
import http.client
import imaplib
import math
import plistlib
import poplib
import re
import smtplib
import socket
import ssl
import time
import urllib.parse
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from conftest import (ALL_LISTENERS, DOMAIN, client_context, free_ports,
                      make_message, wait_until)
from testca import spki_der

TB = "/mail/config-v1.1.xml"
TB_WELL_KNOWN = "/.well-known/autoconfig/mail/config-v1.1.xml"
AD_REQ_NS = "http://schemas.microsoft.com/exchange/autodiscover/outlook/requestschema/2006"
AD_RESP_NS = "http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a"
AD_ROOT_NS = "http://schemas.microsoft.com/exchange/autodiscover/responseschema/2006"


@pytest.fixture(scope="module")
def srv(all_server):
    return all_server


def request(port, method, path, body=None, headers=None, timeout=15, tls_ctx=None):
    """(status, headers dict with lower-case names, body bytes)."""
    if tls_ctx is not None:
        c = http.client.HTTPSConnection("127.0.0.1", port, timeout=timeout, context=tls_ctx)
    else:
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        c.request(method, path, body=body, headers=headers or {})
        r = c.getresponse()
        data = r.read()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, data
    finally:
        c.close()


def get(srv, path, **kw):
    return request(srv.http_port, "GET", path, **kw)


def wait_http(port, timeout=20, tls_ctx=None):
    deadline = time.monotonic() + timeout
    while True:
        try:
            st, _, _ = request(port, "GET", "/healthz", timeout=5, tls_ctx=tls_ctx)
            if st == 200:
                return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise AssertionError(f"HTTP listener on {port} not healthy after {timeout}s")
        time.sleep(0.1)


# --------------------------------------------------------------------------
# A small Prometheus text format 0.0.4 parser

NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
LABEL = r'[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\["\\n])*"'
SAMPLE_RE = re.compile(rf"^({NAME})(?:\{{((?:{LABEL})(?:,{LABEL})*)?,?\}})? (\S+)(?: -?\d+)?$")
LABEL_RE = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\["\\n])*)"')


def parse_metrics(text):
    """{"types": {family: type}, "help": {family: text},
    "samples": {(name, frozenset(labels.items())): float}}; asserts the
    format on the way."""
    types, helps, samples = {}, {}, {}
    assert text.endswith("\n"), "exposition must end with a newline"
    for line in text.split("\n")[:-1]:
        assert line, "no empty lines expected"
        if line.startswith("# HELP "):
            name, _, h = line[7:].partition(" ")
            assert re.fullmatch(NAME, name) and h, line
            assert name not in helps, f"duplicate HELP {name}"
            helps[name] = h
            continue
        if line.startswith("# TYPE "):
            name, _, t = line[7:].partition(" ")
            assert re.fullmatch(NAME, name), line
            assert t in ("counter", "gauge", "histogram", "summary", "untyped"), line
            assert name not in types, f"duplicate TYPE {name}"
            assert name in helps, f"TYPE before HELP for {name}"
            types[name] = t
            continue
        assert not line.startswith("#"), f"unexpected comment {line!r}"
        m = SAMPLE_RE.match(line)
        assert m, f"malformed sample line {line!r}"
        name, labels_s, value = m.groups()
        labels = dict(LABEL_RE.findall(labels_s or ""))
        v = float(value)  # also accepts +Inf / NaN spellings
        family = name
        for suffix in ("_bucket", "_sum", "_count"):
            if name.endswith(suffix) and name[: -len(suffix)] in types and \
                    types[name[: -len(suffix)]] == "histogram":
                family = name[: -len(suffix)]
        assert family in types, f"sample {name} before its # TYPE"
        if types[family] == "counter":
            assert name.endswith("_total"), f"counter {name} must end in _total"
            assert v >= 0 and not math.isinf(v)
        key = (name, frozenset(labels.items()))
        assert key not in samples, f"duplicate series {line!r}"
        samples[key] = v
    return {"types": types, "help": helps, "samples": samples}


def check_histograms(parsed):
    for family, t in parsed["types"].items():
        if t != "histogram":
            continue
        series = {}
        for (name, labels), v in parsed["samples"].items():
            if name == family + "_bucket":
                d = dict(labels)
                le = d.pop("le")
                series.setdefault(frozenset(d.items()), []).append((le, v))
        assert series, f"histogram {family} has no buckets"
        for rest, buckets in series.items():
            bounds = [(float("inf") if le == "+Inf" else float(le), v) for le, v in buckets]
            bounds.sort()
            assert bounds[-1][0] == float("inf"), f"{family}: no +Inf bucket"
            counts = [v for _, v in bounds]
            assert counts == sorted(counts), f"{family}: buckets not cumulative: {bounds}"
            count = parsed["samples"][(family + "_count", rest)]
            assert bounds[-1][1] == count, f"{family}: +Inf bucket != _count"
            assert (family + "_sum", rest) in parsed["samples"], f"{family}: no _sum"


def metrics(srv):
    st, h, body = get(srv, "/metrics")
    assert st == 200, body
    assert h["content-type"].startswith("text/plain; version=0.0.4")
    parsed = parse_metrics(body.decode("utf-8"))
    check_histograms(parsed)
    return parsed


def value(parsed, name, **labels):
    key = (name, frozenset(labels.items()))
    assert key in parsed["samples"], f"no series {name}{labels}"
    return parsed["samples"][key]


# --------------------------------------------------------------------------
# /metrics

def test_metrics_format_and_every_family(srv):
    p = metrics(srv)
    t = p["types"]
    assert t["roost_connections_total"] == "counter"
    assert t["roost_tls_handshakes_total"] == "counter"
    assert t["roost_logins_total"] == "counter"
    assert t["roost_messages_accepted_total"] == "counter"
    assert t["roost_messages_rejected_total"] == "counter"
    assert t["roost_deliveries_total"] == "counter"
    assert t["roost_queue_messages"] == "gauge"
    assert t["roost_queue_recipients"] == "gauge"
    assert t["roost_queue_journal_commits_total"] == "counter"
    assert t["roost_queue_journal_messages_total"] == "counter"
    assert t["roost_accept_latency_seconds"] == "histogram"
    assert t["roost_delivery_latency_seconds"] == "histogram"
    for proto in ALL_LISTENERS:
        value(p, "roost_connections_total", protocol=proto)
        value(p, "roost_tls_handshakes_total", protocol=proto, result="ok")
        value(p, "roost_tls_handshakes_total", protocol=proto, result="failed")
    for proto in ("submission", "submissions", "imap", "imaps", "pop3", "pop3s"):
        for outcome in ("ok", "bad_password", "app_password_required", "throttled", "disabled"):
            value(p, "roost_logins_total", protocol=proto, outcome=outcome)
    for reason in ("size", "relay", "rate_limit", "quota", "policy"):
        value(p, "roost_messages_rejected_total", protocol="smtp", reason=reason)
    value(p, "roost_deliveries_total", route="local", outcome="delivered")
    value(p, "roost_deliveries_total", route="local", outcome="failed")
    value(p, "roost_queue_messages", state="queued")


def test_metrics_parser_rejects_bad_expositions():
    """The checker itself catches what it should (so the tests above mean something)."""
    good = ("# HELP a_total x\n# TYPE a_total counter\na_total{k=\"v\"} 1\n")
    parse_metrics(good)
    for bad in ("a_total 1\n",                                   # no TYPE
                "# HELP a x\n# TYPE a counter\na 1\n",           # counter without _total
                "# HELP a_total x\n# TYPE a_total counter\na_total{k=v} 1\n",
                "# HELP a_total x\n# TYPE a_total counter\na_total 1"):
        with pytest.raises(AssertionError):
            parse_metrics(bad)
    hist = ("# HELP h x\n# TYPE h histogram\nh_bucket{le=\"1\"} 2\nh_bucket{le=\"+Inf\"} 1\n"
            "h_sum 1\nh_count 1\n")
    with pytest.raises(AssertionError):
        check_histograms(parse_metrics(hist))


def test_metrics_counters_move_with_real_clients(srv):
    addr, pw = srv.new_account("metrics")
    before = metrics(srv)

    # One message submitted over 465 with smtplib, delivered locally.
    msg = make_message(addr, addr, subject="metrics test")
    with smtplib.SMTP_SSL("127.0.0.1", srv.submissions, context=client_context(), timeout=30) as s:
        s.login(addr, pw)
        s.sendmail(addr, [addr], msg)
    srv.wait_for_message(addr, 1)

    # IMAP over TLS: one good login, one bad password.
    m = imaplib.IMAP4_SSL("127.0.0.1", srv.ports["imaps"], ssl_context=client_context(), timeout=30)
    m.login(addr, pw)
    m.logout()
    m = imaplib.IMAP4_SSL("127.0.0.1", srv.ports["imaps"], ssl_context=client_context(), timeout=30)
    with pytest.raises(imaplib.IMAP4.error):
        m.login(addr, pw + "wrong")
    m.logout()

    # POP3 over TLS: one good login.
    p3 = poplib.POP3_SSL("127.0.0.1", srv.ports["pop3s"], context=client_context(), timeout=30)
    p3.user(addr)
    p3.pass_(pw)
    p3.quit()

    # Port 25: a relay attempt, refused.
    with smtplib.SMTP("127.0.0.1", srv.smtp, timeout=30) as s:
        s.ehlo("client.example.net")
        s.mail("someone@remote.test")
        code, _ = s.rcpt("other@elsewhere.test")
        assert code == 550

    def grew(name, n, **labels):
        return value(after, name, **labels) - value(before, name, **labels) == n

    deadline = time.monotonic() + 20
    while True:
        after = metrics(srv)
        if grew("roost_deliveries_total", 1, route="local", outcome="delivered"):
            break
        assert time.monotonic() < deadline, "delivery counter did not move"
        time.sleep(0.1)
    assert grew("roost_connections_total", 1, protocol="submissions")
    assert grew("roost_tls_handshakes_total", 1, protocol="submissions", result="ok")
    assert grew("roost_logins_total", 1, protocol="submissions", outcome="ok")
    assert grew("roost_messages_accepted_total", 1, protocol="submissions")
    assert grew("roost_connections_total", 2, protocol="imaps")
    assert grew("roost_tls_handshakes_total", 2, protocol="imaps", result="ok")
    assert grew("roost_logins_total", 1, protocol="imaps", outcome="ok")
    assert grew("roost_logins_total", 1, protocol="imaps", outcome="bad_password")
    assert grew("roost_connections_total", 1, protocol="pop3s")
    assert grew("roost_logins_total", 1, protocol="pop3s", outcome="ok")
    assert grew("roost_connections_total", 1, protocol="smtp")
    assert grew("roost_messages_rejected_total", 1, protocol="smtp", reason="relay")
    assert grew("roost_messages_accepted_total", 0, protocol="smtp")
    assert grew("roost_accept_latency_seconds_count", 1)
    assert grew("roost_delivery_latency_seconds_count", 1)
    # the local message went through the queue journal: one group commit
    assert grew("roost_queue_journal_messages_total", 1)
    assert grew("roost_queue_journal_commits_total", 1)
    assert value(after, "roost_accept_latency_seconds_sum") > value(
        before, "roost_accept_latency_seconds_sum")


def test_metrics_login_outcomes_and_size_rejection(srv):
    tfa, tfa_pw = srv.new_account("twofactor")
    srv.ok("account", "set", tfa, "--two-factor", "on")
    off, off_pw = srv.new_account("imapoff")
    srv.ok("account", "set", off, "--imap", "off")
    before = metrics(srv)
    for address, pw in ((tfa, tfa_pw), (off, off_pw)):
        m = imaplib.IMAP4_SSL("127.0.0.1", srv.ports["imaps"], ssl_context=client_context(),
                              timeout=30)
        with pytest.raises(imaplib.IMAP4.error):
            m.login(address, pw)
        m.logout()
    # STARTTLS on 587, then an account password for the two-factor account: 534.
    with smtplib.SMTP("127.0.0.1", srv.submission, timeout=30) as s:
        s.starttls(context=client_context())
        s.ehlo("client.example.net")
        s.user, s.password = tfa, tfa_pw
        with pytest.raises(smtplib.SMTPAuthenticationError) as ei:
            s.auth("PLAIN", s.auth_plain)     # one mechanism: one attempt
        assert ei.value.smtp_code == 534
    # SIZE= beyond the limit on port 25.
    with smtplib.SMTP("127.0.0.1", srv.smtp, timeout=30) as s:
        s.ehlo("client.example.net")
        code, _ = s.mail("someone@remote.test", ["SIZE=999999999999"])
        assert code == 552
    after = metrics(srv)

    def grew(name, **labels):
        return value(after, name, **labels) - value(before, name, **labels)

    assert grew("roost_logins_total", protocol="imaps", outcome="app_password_required") == 1
    assert grew("roost_logins_total", protocol="imaps", outcome="disabled") == 1
    assert grew("roost_logins_total", protocol="imaps", outcome="ok") == 0
    assert grew("roost_logins_total", protocol="submission", outcome="app_password_required") == 1
    assert grew("roost_tls_handshakes_total", protocol="submission", result="ok") == 1
    assert grew("roost_messages_rejected_total", protocol="smtp", reason="size") == 1


def test_tls_handshake_failure_is_counted(srv):
    before = metrics(srv)
    with socket.create_connection(("127.0.0.1", srv.ports["imaps"]), timeout=10) as s:
        s.sendall(b"this is not a TLS ClientHello\r\n" * 4)
        s.settimeout(10)
        try:
            while s.recv(4096):
                pass
        except OSError:
            pass
    deadline = time.monotonic() + 10
    while True:
        after = metrics(srv)
        if value(after, "roost_tls_handshakes_total", protocol="imaps", result="failed") == \
                value(before, "roost_tls_handshakes_total", protocol="imaps", result="failed") + 1:
            break
        assert time.monotonic() < deadline, "failed handshake not counted"
        time.sleep(0.1)


# --------------------------------------------------------------------------
# /healthz

def test_healthz(srv):
    st, h, body = get(srv, "/healthz")
    assert st == 200
    assert h["content-type"] == "application/json"
    import json
    j = json.loads(body)
    assert j["status"] == "ok" and j["queue"] == "running" and j["directory"] == "ok"
    st, _, body = request(srv.http_port, "HEAD", "/healthz")
    assert st == 200 and body == b""


# --------------------------------------------------------------------------
# Thunderbird

def servers(root, tag):
    out = []
    for e in root.iter(tag):
        out.append({"type": e.get("type"), "hostname": e.findtext("hostname"),
                    "port": int(e.findtext("port")), "socketType": e.findtext("socketType"),
                    "authentication": e.findtext("authentication"),
                    "username": e.findtext("username")})
    return out


@pytest.mark.parametrize("path", [TB, TB_WELL_KNOWN])
def test_thunderbird_autoconfig(srv, path):
    q = urllib.parse.urlencode({"emailaddress": f"someone@{DOMAIN}"})
    st, h, body = get(srv, f"{path}?{q}")
    assert st == 200, body
    assert h["content-type"].startswith("application/xml")
    root = ET.fromstring(body)
    assert root.tag == "clientConfig" and root.get("version") == "1.1"
    prov = root.find("emailProvider")
    assert prov.get("id") == DOMAIN
    assert prov.findtext("domain") == DOMAIN
    assert prov.findtext("displayName")
    inc = servers(prov, "incomingServer")
    out = servers(prov, "outgoingServer")
    p = srv.ports
    assert [(s["type"], s["port"], s["socketType"]) for s in inc] == [
        ("imap", p["imaps"], "SSL"), ("imap", p["imap"], "STARTTLS"),
        ("pop3", p["pop3s"], "SSL"), ("pop3", p["pop3"], "STARTTLS")]
    assert [(s["type"], s["port"], s["socketType"]) for s in out] == [
        ("smtp", p["submissions"], "SSL"), ("smtp", p["submission"], "STARTTLS")]
    for s in inc + out:
        assert s["hostname"] == srv.hostname
        assert s["username"] == "%EMAILADDRESS%"
        assert s["authentication"] == "password-cleartext"


def test_thunderbird_host_header_and_errors(srv):
    # No emailaddress: the Host header autoconfig.DOMAIN names the domain.
    st, _, body = get(srv, TB, headers={"Host": f"autoconfig.{DOMAIN}"})
    assert st == 200 and ET.fromstring(body).find("emailProvider").get("id") == DOMAIN
    st, _, _ = get(srv, TB + "?emailaddress=someone%40not-served.test")
    assert st == 404
    st, _, _ = get(srv, TB + "?emailaddress=not-an-address")
    assert st == 400
    st, _, _ = get(srv, TB + "?emailaddress=a%40b%3Cscript%3E.test")
    assert st == 400
    st, _, _ = get(srv, TB)           # Host is 127.0.0.1:port: no domain at all
    assert st == 400
    st, _, _ = get(srv, TB + "?emailaddress=" + "a" * 300 + "%40example.test")
    assert st == 400


def test_uppercase_address_domain_is_served(srv):
    st, _, body = get(srv, TB + "?emailaddress=Some.One%40EXAMPLE.TEST")
    assert st == 200
    assert ET.fromstring(body).find("emailProvider").get("id") == DOMAIN


# --------------------------------------------------------------------------
# Outlook Autodiscover

def autodiscover_body(address):
    return (f'<?xml version="1.0" encoding="utf-8"?>\r\n'
            f'<Autodiscover xmlns="{AD_REQ_NS}">\r\n'
            f'  <Request>\r\n'
            f'    <EMailAddress>{address}</EMailAddress>\r\n'
            f'    <AcceptableResponseSchema>{AD_RESP_NS}</AcceptableResponseSchema>\r\n'
            f'  </Request>\r\n'
            f'</Autodiscover>\r\n').encode()


@pytest.mark.parametrize("path", ["/autodiscover/autodiscover.xml",
                                  "/Autodiscover/Autodiscover.xml"])
def test_autodiscover(srv, path):
    address = f"outlook.user@{DOMAIN}"
    st, h, body = request(srv.http_port, "POST", path, body=autodiscover_body(address),
                          headers={"Content-Type": "text/xml"})
    assert st == 200, body
    assert h["content-type"].startswith("application/xml")
    root = ET.fromstring(body)
    assert root.tag == f"{{{AD_ROOT_NS}}}Autodiscover"
    ns = {"r": AD_RESP_NS}
    acct = root.find("r:Response/r:Account", ns)
    assert acct.findtext("r:AccountType", namespaces=ns) == "email"
    assert acct.findtext("r:Action", namespaces=ns) == "settings"
    protos = []
    for pr in acct.findall("r:Protocol", ns):
        f = {k: pr.findtext(f"r:{k}", namespaces=ns) for k in
             ("Type", "Server", "Port", "SSL", "Encryption", "LoginName", "SPA", "AuthRequired")}
        protos.append(f)
        assert f["Server"] == srv.hostname
        assert f["LoginName"] == address
        assert f["SPA"] == "off" and f["AuthRequired"] == "on" and f["SSL"] == "on"
    p = srv.ports
    assert [(x["Type"], int(x["Port"]), x["Encryption"]) for x in protos] == [
        ("IMAP", p["imaps"], "SSL"), ("IMAP", p["imap"], "TLS"),
        ("POP3", p["pop3s"], "SSL"), ("POP3", p["pop3"], "TLS"),
        ("SMTP", p["submissions"], "SSL"), ("SMTP", p["submission"], "TLS")]


def test_autodiscover_bad_requests(srv):
    path = "/autodiscover/autodiscover.xml"
    post = lambda b: request(srv.http_port, "POST", path, body=b,
                             headers={"Content-Type": "text/xml"})[0]
    assert post(autodiscover_body("someone@not-served.test")) == 404
    assert post(b"") == 400
    assert post(b"not xml at all") == 400
    assert post(autodiscover_body(f"a@{DOMAIN}")[:-40]) == 400          # truncated
    assert post(autodiscover_body("no-at-sign")) == 400
    assert post(autodiscover_body(f"a&amp;b@{DOMAIN}")) == 400
    xxe = (b'<?xml version="1.0"?><!DOCTYPE a [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
           b'<Autodiscover><Request><EMailAddress>&x;</EMailAddress></Request></Autodiscover>')
    assert post(xxe) == 400
    assert post(b"\x00\xff" * 100) == 400
    st, h, _ = request(srv.http_port, "GET", path)
    assert st == 405 and "POST" in h.get("allow", "")
    assert get(srv, "/healthz")[0] == 200


# --------------------------------------------------------------------------
# Apple

def test_mobileconfig(srv):
    address = f"apple.user@{DOMAIN}"
    st, h, body = get(srv, "/apple/mobileconfig?" + urllib.parse.urlencode({"emailaddress": address}))
    assert st == 200, body
    assert h["content-type"] == "application/x-apple-aspen-config"
    assert "attachment" in h["content-disposition"]
    pl = plistlib.loads(body)
    assert pl["PayloadType"] == "Configuration" and pl["PayloadVersion"] == 1
    mail = pl["PayloadContent"][0]
    assert mail["PayloadType"] == "com.apple.mail.managed"
    assert re.fullmatch(r"[0-9A-F]{8}-[0-9A-F]{4}-4[0-9A-F]{3}-[89AB][0-9A-F]{3}-[0-9A-F]{12}",
                        mail["PayloadUUID"])
    assert mail["PayloadUUID"] != pl["PayloadUUID"]
    assert mail["EmailAccountType"] == "EmailTypeIMAP"
    assert mail["EmailAddress"] == address
    assert mail["IncomingMailServerHostName"] == srv.hostname
    assert mail["IncomingMailServerPortNumber"] == srv.ports["imaps"]
    assert mail["IncomingMailServerUseSSL"] is True
    assert mail["IncomingMailServerUsername"] == address
    assert mail["IncomingMailServerAuthentication"] == "EmailAuthPassword"
    assert mail["OutgoingMailServerHostName"] == srv.hostname
    assert mail["OutgoingMailServerPortNumber"] == srv.submissions
    assert mail["OutgoingMailServerUseSSL"] is True
    assert mail["OutgoingMailServerUsername"] == address
    assert mail["OutgoingMailServerAuthentication"] == "EmailAuthPassword"
    # Stable identity: the same address gets the same UUIDs.
    _, _, again = get(srv, "/apple/mobileconfig?" + urllib.parse.urlencode({"emailaddress": address}))
    assert plistlib.loads(again)["PayloadUUID"] == pl["PayloadUUID"]


def test_mobileconfig_errors(srv):
    assert get(srv, "/apple/mobileconfig")[0] == 400
    assert get(srv, "/apple/mobileconfig?emailaddress=")[0] == 400
    assert get(srv, "/apple/mobileconfig?emailaddress=x%40not-served.test")[0] == 404
    # An atext character that XML must escape still yields a valid plist.
    st, _, body = get(srv, "/apple/mobileconfig?emailaddress=o'neil%26co%40" + DOMAIN)
    assert st == 200
    assert plistlib.loads(body)["PayloadContent"][0]["EmailAddress"] == f"o'neil&co@{DOMAIN}"


# --------------------------------------------------------------------------
# MTA-STS

def test_mta_sts_policy(srv):
    st, h, body = get(srv, "/.well-known/mta-sts.txt")
    assert st == 200
    assert h["content-type"].startswith("text/plain")
    lines = body.decode().split("\r\n")
    assert lines == ["version: STSv1", "mode: testing", f"mx: {srv.hostname}",
                     "max_age: 604800", ""]


def test_mta_sts_enforce_and_config_check(make_server, tmp_path):
    port = free_ports(1)[0]
    s = make_server(extra_config=f"[http]\nlisten = 127.0.0.1:{port}\nmta_sts_mode = enforce\n"
                                 f"mta_sts_max_age = 86400\n")
    s.http_port = port
    wait_http(port)
    st, _, body = get(s, "/.well-known/mta-sts.txt")
    assert st == 200 and b"mode: enforce\r\n" in body and b"max_age: 86400\r\n" in body
    bad = tmp_path / "bad.conf"
    bad.write_text("[http]\nlisten = nowhere\ntls = maybe\nmetrics = everyone\n"
                   "mta_sts_mode = strict\nmta_sts_max_age = 99999999999\nwhat = 1\n")
    r = s.roost("config", "check", str(bad))
    assert r.rc == 1
    errs = r.stderr.strip().splitlines()
    assert any(":2: listen: 'nowhere' is not ADDRESS:PORT" in e for e in errs), errs
    assert any(":3: tls: 'maybe' is not on or off" in e for e in errs), errs
    assert any(":4: metrics: 'everyone'" in e for e in errs), errs
    assert any(":5: mta_sts_mode: 'strict'" in e for e in errs), errs
    assert any(":6: mta_sts_max_age" in e for e in errs), errs
    assert any(":7: unknown key 'what' in [http]" in e for e in errs), errs


# --------------------------------------------------------------------------
# Bad requests

def raw_http(port, data, timeout=10):
    """Sends DATA and returns whatever the server answers until it closes."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        try:
            s.sendall(data)
        except OSError:
            pass
        out = b""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                chunk = s.recv(65536)
            except OSError:
                break
            if not chunk:
                break
            out += chunk
            if b"\r\n\r\n" in out and b"Content-Length: 0" not in out and len(out) > 20:
                # one response is enough
                head, _, rest = out.partition(b"\r\n\r\n")
                m = re.search(rb"Content-Length: (\d+)", head)
                if m and len(rest) >= int(m.group(1)):
                    break
        return out


def status_of(resp):
    m = re.match(rb"HTTP/1\.[01] (\d{3}) ", resp)
    return int(m.group(1)) if m else None


def test_bad_requests(srv):
    port = srv.http_port
    assert get(srv, "/nope")[0] == 404
    assert get(srv, "/")[0] == 404
    for path in ("/../../../etc/passwd", "/metrics/../healthz", "/.well-known/../metrics",
                 "/%2e%2e/%2e%2e/etc/passwd", "/.well-known/mta-sts.txt/../../etc/passwd"):
        st = status_of(raw_http(port, f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode()))
        assert st == 404, path
    for method in ("DELETE", "PUT", "OPTIONS", "TRACE"):
        st, _, _ = request(port, method, "/metrics")
        assert st == 405, method
    # Headers beyond the connection's memory limit: refused, never served.
    huge = "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + "a" * 100000 + "\r\n\r\n"
    st = status_of(raw_http(port, huge.encode()))
    assert st in (None, 431), st          # None: closed while we were still sending
    long_uri = "GET /" + "a" * 40000 + " HTTP/1.1\r\nHost: x\r\n\r\n"
    st = status_of(raw_http(port, long_uri.encode()))
    assert st in (None, 414), st
    # A body bigger than any Autodiscover request: 413 (announced or sent).
    st, _, _ = request(port, "POST", "/autodiscover/autodiscover.xml", body=b"<" * 100000)
    assert st == 413
    chunked = (b"POST /autodiscover/autodiscover.xml HTTP/1.1\r\nHost: x\r\n"
               b"Transfer-Encoding: chunked\r\n\r\n" +
               b"".join(b"4000\r\n" + b"x" * 0x4000 + b"\r\n" for _ in range(4)) + b"0\r\n\r\n")
    assert status_of(raw_http(port, chunked)) == 413
    # Past 1 MiB of a chunked body the connection is just closed.
    endless = (b"POST /autodiscover/autodiscover.xml HTTP/1.1\r\nHost: x\r\n"
               b"Transfer-Encoding: chunked\r\n\r\n" +
               b"".join(b"10000\r\n" + b"x" * 0x10000 + b"\r\n" for _ in range(40)))
    assert status_of(raw_http(port, endless)) is None
    # Garbage request line.
    st = status_of(raw_http(port, b"\x16\x03\x01garbage\r\n\r\n"))
    assert st is None or st >= 400
    # Still fine.
    assert get(srv, "/healthz")[0] == 200


# --------------------------------------------------------------------------
# HTTPS

def test_https_with_the_server_certificate(make_server):
    port = free_ports(1)[0]
    s = make_server(extra_config=f"[http]\nlisten = 127.0.0.1:{port}\ntls = on\n")
    ctx = ssl.create_default_context(cafile=str(s.cert))
    ctx.check_hostname = False
    wait_http(port, tls_ctx=ctx)
    st, _, body = request(port, "GET", "/.well-known/mta-sts.txt", tls_ctx=ctx)
    assert st == 200 and body.startswith(b"version: STSv1\r\n")
    # Plain HTTP to the TLS port gets nothing useful.
    assert status_of(raw_http(port, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n", timeout=5)) is None
    st, _, _ = request(port, "GET", "/healthz", tls_ctx=ctx)
    assert st == 200


def test_http_listener_disabled(make_server):
    s = make_server(extra_config="[http]\nlisten =\n")
    with pytest.raises(OSError):
        request(s.http_port, "GET", "/healthz", timeout=3)


# --------------------------------------------------------------------------
# roost dns

def dns_lines(srv, domain):
    # --config: the host name and ports come from the server's configuration.
    r = srv.roost("--config", str(srv.conf), "dns", domain)
    assert r.rc == 0, r
    return [l for l in r.stdout.splitlines() if l and not l.startswith(";")], r.stdout


def spki_sha256(cert_path):
    """DANE-EE SPKI SHA-256 (TLSA 3 1 1) of a PEM certificate, computed by
    Python's cryptography, independently of Roost."""
    from cryptography import x509
    cert = x509.load_pem_x509_certificate(Path(cert_path).read_bytes())
    return hashlib.sha256(spki_der(cert)).hexdigest()


def test_roost_dns(srv):
    domain = "dns-zone.example.test"
    srv.ensure_domain(domain)
    h, p = srv.hostname, srv.ports
    records, text = dns_lines(srv, domain)
    assert "roost dkim generate " + domain in text
    sts_id = None
    for l in records:
        m = re.fullmatch(rf'_mta-sts\.{re.escape(domain)}\. 3600 IN TXT "v=STSv1; id=([0-9a-f]{{16}})"', l)
        if m:
            sts_id = m.group(1)
    assert sts_id, records
    expected = [
        f"{domain}. 3600 IN MX 10 {h}.",
        f'{domain}. 3600 IN TXT "v=spf1 mx -all"',
        f'_dmarc.{domain}. 3600 IN TXT "v=DMARC1; p=quarantine; rua=mailto:postmaster@{domain}"',
        f'_mta-sts.{domain}. 3600 IN TXT "v=STSv1; id={sts_id}"',
        f"mta-sts.{domain}. 3600 IN CNAME {h}.",
        f'_smtp._tls.{domain}. 3600 IN TXT "v=TLSRPTv1; rua=mailto:postmaster@{domain}"',
        f"_25._tcp.{h}. 3600 IN TLSA 3 1 1 {spki_sha256(srv.cert)}",
        f"autoconfig.{domain}. 3600 IN CNAME {h}.",
        f"autodiscover.{domain}. 3600 IN CNAME {h}.",
        f"_submissions._tcp.{domain}. 3600 IN SRV 0 1 {p['submissions']} {h}.",
        f"_submission._tcp.{domain}. 3600 IN SRV 5 1 {p['submission']} {h}.",
        f"_imaps._tcp.{domain}. 3600 IN SRV 0 1 {p['imaps']} {h}.",
        f"_imap._tcp.{domain}. 3600 IN SRV 5 1 {p['imap']} {h}.",
        f"_pop3s._tcp.{domain}. 3600 IN SRV 10 1 {p['pop3s']} {h}.",
        f"_pop3._tcp.{domain}. 3600 IN SRV 20 1 {p['pop3']} {h}.",
    ]
    assert records == expected

    # With a key: the same record `roost dkim show` prints, between SPF and DMARC.
    srv.ok("dkim", "generate", domain, "--ed25519", "--selector", "zone1")
    show = srv.ok("dkim", "show", domain).stdout
    value = re.search(r"^value: (.*)$", show, re.M).group(1)
    records2, text2 = dns_lines(srv, domain)
    assert "roost dkim generate" not in text2
    assert records2[:2] == expected[:2]
    assert records2[2] == f'zone1._domainkey.{domain}. 3600 IN TXT "{value}"'
    assert records2[3:] == expected[2:]
    # Upper case and a trailing dot name the same domain.
    assert dns_lines(srv, domain.upper() + ".")[0] == records2


def test_roost_dns_rsa_key_is_split(srv):
    domain = "dns-rsa.example.test"
    srv.ensure_domain(domain)
    srv.ok("dkim", "generate", domain, "--selector", "big")
    records, _ = dns_lines(srv, domain)
    line = [l for l in records if l.startswith(f"big._domainkey.{domain}.")][0]
    parts = re.findall(r'"([^"]*)"', line)
    assert len(parts) >= 2 and all(len(x) <= 255 for x in parts)
    assert "".join(parts).startswith("v=DKIM1; k=rsa; p=")


def test_roost_dns_errors(srv):
    r = srv.roost("dns", "not-served.example.org")
    assert r.rc == 1 and "not a domain served here" in r.stderr and r.stdout == ""
    r = srv.roost("dns", "bad_name!")
    assert r.rc == 1 and "not a valid domain name" in r.stderr
    r = srv.roost("dns")
    assert r.rc == 2 and "usage: roost dns DOMAIN" in r.stderr
    r = srv.roost("dns", "a.test", "b.test")
    assert r.rc == 2
    r = srv.roost("help")
    assert "dns DOMAIN" in r.stdout


# --------------------------------------------------------------------------
# remote delivery metrics, on the MX world of test_log_remote.py

@pytest.fixture(scope="module")
def remote(roost_binary):
    from test_log_remote import remote_world
    with remote_world() as w:
        yield w


def test_metrics_remote_delivery_and_bounce(remote):
    """A real MX delivery (250), a recipient refused with 550 (bounce and
    DSN), and an unreachable MX (deferred, then held) move the remote
    counters and the queue depth by state."""
    from test_log_remote import submit
    a, b = remote["a"], remote["b"]
    before = metrics(a)
    fam = before["types"]
    assert fam["roost_dsns_total"] == "counter" and fam["roost_queue_depth"] == "gauge"
    for outcome in ("delivered", "deferred", "failed"):
        value(before, "roost_deliveries_total", route="remote", outcome=outcome)
    for state in ("pending_local", "pending_remote", "held"):
        assert value(before, "roost_queue_depth", state=state) == 0

    submit(a, "bob@b.test", "metrics: delivered")
    submit(a, "nobody@b.test", "metrics: refused")
    dead = submit(a, "x@dead.test", "metrics: deferred")
    b.wait_for_message("bob@b.test", 1, timeout=30)

    def moved(p, name, **labels):
        return value(p, name, **labels) - value(before, name, **labels)

    def settled():
        p = metrics(a)
        ok = (moved(p, "roost_deliveries_total", route="remote", outcome="delivered") == 1 and
              moved(p, "roost_deliveries_total", route="remote", outcome="failed") == 1 and
              moved(p, "roost_deliveries_total", route="remote", outcome="deferred") >= 1 and
              moved(p, "roost_dsns_total", kind="failed") == 1 and
              value(p, "roost_queue_depth", state="pending_remote") == 1)
        return p if ok else None
    after = wait_until(settled, 30, 0.2, "remote counters to move")
    # the DSN went to alice's INBOX: one local delivery, nothing delayed
    assert moved(after, "roost_deliveries_total", route="local", outcome="delivered") == 1
    # timed: bob's remote delivery and the DSN's local one
    assert moved(after, "roost_delivery_latency_seconds_count") == 2
    assert moved(after, "roost_dsns_total", kind="delayed") == 0
    assert value(after, "roost_queue_depth", state="held") == 0
    assert value(after, "roost_queue_messages", state="queued") == 1
    assert value(after, "roost_queue_recipients", state="remote_pending") == 1

    # held by the administrator: it moves from pending_remote to held
    a.ok("queue", "hold", dead)
    wait_until(lambda: value(metrics(a), "roost_queue_depth", state="held") == 1, 20, 0.2,
               "the held message in roost_queue_depth")
    p = metrics(a)
    assert value(p, "roost_queue_depth", state="pending_remote") == 0
    a.ok("queue", "delete", dead)
    wait_until(lambda: value(metrics(a), "roost_queue_messages", state="queued") == 0, 20, 0.2,
               "the deleted message gone")
    p = metrics(a)
    for state in ("pending_local", "pending_remote", "held"):
        assert value(p, "roost_queue_depth", state=state) == 0
