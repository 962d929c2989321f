"""Real clients nobody here wrote: Python's smtplib, swaks, curl, msmtp.
For each one the message must arrive in the recipient's INBOX byte for
byte: the server's Received: field followed by exactly what the client sent
(dot-unstuffed).  The messages carry a line starting with "." and 8-bit
UTF-8 text."""
import os
import shutil
import smtplib
import subprocess

import pytest

from conftest import (HOSTNAME, assert_stored_exactly, client_context, make_message)

CLIENT_TIMEOUT = 90


def run(cmd, input=None, env=None):
    cp = subprocess.run(cmd, input=input, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                        timeout=CLIENT_TIMEOUT, env=env)
    return cp


def describe(cp):
    return (f"{cp.args!r} exited {cp.returncode}\nstdout:\n"
            f"{cp.stdout.decode('utf-8', 'replace')[-3000:]}\nstderr:\n"
            f"{cp.stderr.decode('utf-8', 'replace')[-3000:]}")


def need(tool):
    if shutil.which(tool) is None:
        pytest.skip(f"{tool} not installed")


@pytest.fixture
def pair(server):
    """(sender address, sender password, recipient address): fresh accounts."""
    sender, pw = server.new_account("from")
    rcpt, _ = server.new_account("to")
    return sender, pw, rcpt


# ---------------------------------------------------------------- smtplib

def test_smtplib_smtp_ssl_submissions(server, pair):
    sender, pw, rcpt = pair
    msg = make_message(sender, rcpt, subject="smtplib SMTP_SSL")
    with smtplib.SMTP_SSL("127.0.0.1", server.submissions, context=client_context(),
                          timeout=30) as s:
        s.ehlo("client.example.net")
        s.login(sender, pw)
        refused = s.sendmail(sender, [rcpt], msg, mail_options=["BODY=8BITMIME"])
        assert refused == {}
    assert_stored_exactly(server.fetch_one(rcpt), msg)


def test_smtplib_smtp_ssl_verified_with_cafile(server, pair):
    sender, pw, rcpt = pair
    msg = make_message(sender, rcpt, subject="smtplib verified")
    ctx = client_context(cafile=server.cert)
    with smtplib.SMTP_SSL("127.0.0.1", server.submissions, context=ctx, timeout=30) as s:
        s.login(sender, pw)
        s.sendmail(sender, [rcpt], msg, mail_options=["BODY=8BITMIME"])
    assert_stored_exactly(server.fetch_one(rcpt), msg)


def test_smtplib_starttls_submission(server, pair):
    sender, pw, rcpt = pair
    msg = make_message(sender, rcpt, subject="smtplib STARTTLS")
    with smtplib.SMTP("127.0.0.1", server.submission, timeout=30) as s:
        s.ehlo("client.example.net")
        assert s.has_extn("starttls")
        assert not s.has_extn("auth"), "AUTH advertised before STARTTLS"
        s.starttls(context=client_context())
        s.ehlo("client.example.net")
        assert "PLAIN" in s.esmtp_features.get("auth", "").upper()
        # LOGIN, explicitly
        s.user, s.password = sender, pw
        code, resp = s.auth("LOGIN", s.auth_login, initial_response_ok=False)
        assert (code, resp) == (235, b"2.7.0 Accepted")
        s.sendmail(sender, [rcpt], msg, mail_options=["BODY=8BITMIME"])
    assert_stored_exactly(server.fetch_one(rcpt), msg)


def test_smtplib_inbound_smtp_listener(server):
    rcpt, _ = server.new_account("inbound")
    sender = "someone@remote.test"
    msg = make_message(sender, rcpt, subject="smtplib inbound")
    with smtplib.SMTP("127.0.0.1", server.smtp, timeout=30) as s:
        code, banner = s.ehlo("client.example.net")
        assert code == 250
        assert s.does_esmtp and s.has_extn("size") and s.has_extn("8bitmime")
        s.sendmail(sender, [rcpt], msg, mail_options=["BODY=8BITMIME"])
    assert_stored_exactly(server.fetch_one(rcpt), msg)


def test_smtplib_inbound_starttls(server):
    rcpt, _ = server.new_account("inbound")
    sender = "someone@remote.test"
    msg = make_message(sender, rcpt, subject="smtplib inbound STARTTLS")
    with smtplib.SMTP("127.0.0.1", server.smtp, timeout=30) as s:
        s.starttls(context=client_context())
        s.sendmail(sender, [rcpt], msg, mail_options=["BODY=8BITMIME"])
    assert_stored_exactly(server.fetch_one(rcpt), msg)


def test_smtplib_send_message_smtputf8(server):
    """smtplib's own serialisation of a str message (SMTPUTF8): whatever it
    sent arrives unchanged."""
    from email.message import EmailMessage
    from email import policy
    rcpt, _ = server.new_account("utf8")
    m = EmailMessage(policy=policy.SMTPUTF8)
    m["From"] = "José <jose@remote.test>"
    m["To"] = rcpt
    m["Subject"] = "Grüße über SMTPUTF8"
    m["Message-ID"] = "<utf8-test@client.example.net>"
    m.set_content("Straße, ça, 日本語.\n.leading dot\n", cte="8bit")
    wire = m.as_bytes(policy=policy.SMTPUTF8.clone(linesep="\r\n"))
    with smtplib.SMTP("127.0.0.1", server.smtp, timeout=30) as s:
        s.ehlo("client.example.net")
        assert s.has_extn("smtputf8")
        s.sendmail("jose@remote.test", [rcpt], wire, mail_options=["SMTPUTF8", "BODY=8BITMIME"])
    assert_stored_exactly(server.fetch_one(rcpt), wire)


# ---------------------------------------------------------------- swaks

SWAKS_CASES = [
    ("PLAIN", "tls", False),
    ("LOGIN", "tls", False),
    ("PLAIN", "tlsc", False),
    ("LOGIN", "tlsc", False),
    ("PLAIN", "tls", True),
    ("LOGIN", "tlsc", True),
]


@pytest.mark.parametrize("auth,tls,pipeline", SWAKS_CASES,
                         ids=[f"{a}-{t}{'-pipeline' if p else ''}" for a, t, p in SWAKS_CASES])
def test_swaks(server, pair, tmp_path, auth, tls, pipeline):
    need("swaks")
    sender, pw, rcpt = pair
    msg = make_message(sender, rcpt, subject=f"swaks {auth} {tls}")
    # swaks appends CRLF "." itself: give it the message without its last CRLF
    f = tmp_path / "msg.eml"
    f.write_bytes(msg[:-2])
    port = server.submission if tls == "tls" else server.submissions
    cmd = ["swaks", "--server", "127.0.0.1", "--port", str(port), "--helo", "client.example.net",
           "--from", sender, "--to", rcpt, f"--{tls}", "--auth", auth, "--auth-user", sender,
           "--auth-password", pw, "--data", f"@{f}", "--timeout", "30"]
    if pipeline:
        cmd.append("--pipeline")
    cp = run(cmd)
    assert cp.returncode == 0, describe(cp)
    assert b"250 2.0.0 OK" in cp.stdout, describe(cp)
    assert_stored_exactly(server.fetch_one(rcpt), msg)


def test_swaks_inbound_pipeline(server, tmp_path):
    need("swaks")
    rcpt, _ = server.new_account("swin")
    sender = "someone@remote.test"
    msg = make_message(sender, rcpt, subject="swaks inbound")
    f = tmp_path / "msg.eml"
    f.write_bytes(msg[:-2])
    cp = run(["swaks", "--server", "127.0.0.1", "--port", str(server.smtp), "--helo",
              "client.example.net", "--from", sender, "--to", rcpt, "--pipeline",
              "--data", f"@{f}", "--timeout", "30"])
    assert cp.returncode == 0, describe(cp)
    assert_stored_exactly(server.fetch_one(rcpt), msg)


# ---------------------------------------------------------------- curl

@pytest.mark.parametrize("scheme", ["smtp", "smtps"])
def test_curl(server, pair, tmp_path, scheme):
    need("curl")
    sender, pw, rcpt = pair
    msg = make_message(sender, rcpt, subject=f"curl {scheme}")
    f = tmp_path / "msg.eml"
    f.write_bytes(msg)
    port = server.submission if scheme == "smtp" else server.submissions
    cmd = ["curl", "-sS", "-v", "-k", "--max-time", "60", "--url",
           f"{scheme}://127.0.0.1:{port}/client.example.net",
           "--user", f"{sender}:{pw}", "--mail-from", sender, "--mail-rcpt", rcpt,
           "--upload-file", str(f)]
    if scheme == "smtp":
        cmd.insert(1, "--ssl-reqd")
    cp = run(cmd)
    assert cp.returncode == 0, describe(cp)
    assert_stored_exactly(server.fetch_one(rcpt), msg)


def test_curl_plaintext_submission_refuses_login(server, pair, tmp_path):
    """curl without --ssl-reqd on 587: AUTH is not offered before TLS, so a
    login attempt cannot succeed in plaintext."""
    need("curl")
    sender, pw, rcpt = pair
    f = tmp_path / "msg.eml"
    f.write_bytes(make_message(sender, rcpt))
    cp = run(["curl", "-sS", "-v", "--max-time", "60", "--url",
              f"smtp://127.0.0.1:{server.submission}/client.example.net",
              "--user", f"{sender}:{pw}", "--mail-from", sender, "--mail-rcpt", rcpt,
              "--upload-file", str(f)])
    assert cp.returncode != 0, describe(cp)
    assert server.mailbox_rows(rcpt) == []


# ---------------------------------------------------------------- msmtp

@pytest.mark.parametrize("starttls", ["on", "off"])
def test_msmtp(server, pair, tmp_path, starttls):
    need("msmtp")
    sender, pw, rcpt = pair
    msg = make_message(sender, rcpt, subject=f"msmtp starttls {starttls}")
    port = server.submission if starttls == "on" else server.submissions
    conf = tmp_path / "msmtprc"
    conf.write_text("\n".join([
        "defaults",
        "logfile -",
        "syslog off",
        "",
        "account roost",
        "host 127.0.0.1",
        f"port {port}",
        "domain client.example.net",
        f"from {sender}",
        "auth on",
        f"user {sender}",
        f"password {pw}",
        "tls on",
        f"tls_starttls {starttls}",
        "tls_certcheck off",
        "timeout 30",
        "",
    ]))
    os.chmod(conf, 0o600)
    cp = run(["msmtp", "-C", str(conf), "-a", "roost", "-d", rcpt], input=msg,
             env=dict(os.environ, HOME=str(tmp_path)))
    assert cp.returncode == 0, describe(cp)
    assert_stored_exactly(server.fetch_one(rcpt), msg)


# ---------------------------------------------------------------- openssl s_client

def test_openssl_s_client_starttls(server):
    """openssl's STARTTLS implementation for SMTP negotiates with the smtp
    listener and sees the certificate."""
    need("openssl")
    cp = subprocess.run(["openssl", "s_client", "-connect", f"127.0.0.1:{server.smtp}",
                         "-starttls", "smtp", "-name", "client.example.net", "-quiet",
                         "-verify_quiet"],
                        input=b"EHLO client.example.net\r\nQUIT\r\n",
                        stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=30)
    out = cp.stdout.decode("utf-8", "replace")
    assert "221" in out and "250" in out, describe(cp)
    assert "STARTTLS" not in out, f"STARTTLS offered after TLS: {out}"


def test_openssl_s_client_implicit(server):
    """openssl s_client on the implicit-TLS port, typing like a person: it
    waits for the greeting before each command."""
    need("openssl")
    import select
    import time
    p = subprocess.Popen(["openssl", "s_client", "-connect", f"127.0.0.1:{server.submissions}",
                          "-quiet", "-verify_quiet", "-crlf"],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out = b""

    def read_until(token, timeout=20):
        nonlocal out
        deadline = time.monotonic() + timeout
        while token not in out and time.monotonic() < deadline:
            r, _, _ = select.select([p.stdout], [], [], 0.2)
            if r:
                chunk = os.read(p.stdout.fileno(), 65536)
                if not chunk:
                    break
                out += chunk
        return token in out

    try:
        assert read_until(f"220 {HOSTNAME} ESMTP Roost".encode()), out
        p.stdin.write(b"EHLO client.example.net\n")
        p.stdin.flush()
        assert read_until(b"250 "), out
        p.stdin.write(b"QUIT\n")
        p.stdin.flush()
        assert read_until(b"221"), out
    finally:
        try:
            p.stdin.close()
        except OSError:
            pass
        try:
            p.wait(10)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(5)
    text = out.decode("utf-8", "replace")
    assert "AUTH" in text and "PLAIN" in text, text
