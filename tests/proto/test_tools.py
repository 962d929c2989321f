"""The client tools against a real `roost serve`: `roost send` (MIME with
attachments over 465 and 587, transcript, bad password, bad inputs),
`roost check` (healthy SMTP/IMAP/POP3 ports, and the fix it names for each
deliberately wrong set-up) and `roost sendmail` (the pickup directory:
-t, argument recipients, -f, -i, git send-email)."""
import email
import email.policy
import os
import shutil
import subprocess
import time

import pytest

from conftest import DOMAIN, free_ports, unique



@pytest.fixture(scope="module")
def srv(all_server):
    return all_server


@pytest.fixture
def tmp(tmp_path):
    return tmp_path


def run(srv, args, input=None, env=None, timeout=60):
    """`roost ARGS` (no --data unless given); returns CompletedProcess with text."""
    e = dict(os.environ)
    e.pop("ROOST_PASSWORD", None)
    if env:
        e.update(env)
    cp = subprocess.run([srv.bin, *[str(a) for a in args]], input=input, capture_output=True,
                        timeout=timeout, env=e)
    for m in (b"ERROR: AddressSanitizer", b"runtime error:", b"ERROR: LeakSanitizer"):
        assert m not in cp.stderr, cp.stderr.decode("utf-8", "replace")
    return cp


def pwfile(tmp, pw, name="pw"):
    p = tmp / name
    p.write_text(pw + "\n")
    p.chmod(0o600)
    return p


def send_args(srv, port, user, pw_path, *extra, tls=None):
    a = ["send", "--server", f"127.0.0.1:{port}", "--ca-file", srv.cert,
         "--user", user, "--password-file", pw_path, "--from", user]
    a += ["--tls", tls or ("implicit" if port == srv.submissions else "starttls")]
    return a + list(extra)


def parts_of(stored):
    msg = email.message_from_bytes(stored, policy=email.policy.default)
    return msg, [p for p in msg.iter_attachments()]


# ------------------------------------------------------------------ roost send

@pytest.mark.parametrize("which,tls", [("submissions", "implicit"), ("submission", "starttls")])
def test_send_two_attachments_byte_identical(srv, tmp, which, tls):
    user, pw = srv.new_account("send")
    binary = os.urandom(100 * 1024)
    (tmp / "random.bin").write_bytes(binary)
    text = "Grüße aus Köln — 日本語 ✓\r\nsecond line € \r\n.a line with a dot\r\n".encode()
    (tmp / "notes.txt").write_bytes(text)
    cp = run(srv, send_args(srv, srv.ports[which], user, pwfile(tmp, pw), "--to", user,
                            "--subject", "Zwei Anhänge", "--body", "Hallo,\nanbei zwei Dateien.\n",
                            "--attach", tmp / "random.bin", "--attach", tmp / "notes.txt",
                            tls=tls))
    assert cp.returncode == 0, cp.stderr.decode()
    assert cp.stdout.startswith(b"sent: 250 2.0.0 OK ")
    stored = srv.fetch_one(user)
    msg, atts = parts_of(stored)
    assert msg["Subject"] == "Zwei Anhänge"
    assert msg["MIME-Version"] == "1.0"
    assert msg["Message-ID"] and msg["Date"]
    assert msg.get_content_type() == "multipart/mixed"
    body = msg.get_body(("plain",))
    assert body.get_content() .replace("\r\n", "\n") == "Hallo,\nanbei zwei Dateien.\n"
    assert [a.get_filename() for a in atts] == ["random.bin", "notes.txt"]
    assert atts[0].get_content_type() == "application/octet-stream"
    assert atts[0]["Content-Transfer-Encoding"] == "base64"
    assert atts[0].get_payload(decode=True) == binary
    assert atts[1].get_content_type() == "text/plain"
    assert atts[1]["Content-Transfer-Encoding"] == "quoted-printable"
    assert atts[1].get_param("charset") == "utf-8"
    assert atts[1].get_payload(decode=True) == text


def test_send_content_types_and_lf_text(srv, tmp):
    user, pw = srv.new_account("types")
    (tmp / "pic.PNG").write_bytes(b"\x89PNG\r\n\x1a\n" + os.urandom(64))
    (tmp / "unix.txt").write_bytes(b"lf only\nline two\n")
    (tmp / "doc.pdf").write_bytes(b"%PDF-1.4\n" + os.urandom(64))
    (tmp / "noext").write_bytes(b"\x00\x01\x02")
    cp = run(srv, send_args(srv, srv.submissions, user, pwfile(tmp, pw), "--to", user,
                            "--attach", tmp / "pic.PNG", "--attach", tmp / "unix.txt",
                            "--attach", tmp / "doc.pdf", "--attach", tmp / "noext"),
             input=b"body from stdin\n")
    assert cp.returncode == 0, cp.stderr.decode()
    msg, atts = parts_of(srv.fetch_one(user))
    assert [a.get_content_type() for a in atts] == [
        "image/png", "text/plain", "application/pdf", "application/octet-stream"]
    # An LF text file keeps its exact bytes: base64, not CRLF-converted.
    assert atts[1]["Content-Transfer-Encoding"] == "base64"
    assert atts[1].get_payload(decode=True) == b"lf only\nline two\n"
    for a, name in zip(atts, ["pic.PNG", "unix.txt", "doc.pdf", "noext"]):
        assert a.get_payload(decode=True) == (tmp / name).read_bytes()
    assert "body from stdin" in msg.get_body(("plain",)).get_content()


def test_send_verbose_transcript_hides_password(srv, tmp):
    user, pw = srv.new_account("verbose")
    cp = run(srv, send_args(srv, srv.submission, user, pwfile(tmp, pw), "--to", user,
                            "--cc", user, "--body", "x", "-v"))
    assert cp.returncode == 0, cp.stderr.decode()
    err = cp.stderr.decode()
    assert "C: EHLO " in err and "C: STARTTLS" in err and "C: AUTH PLAIN ********" in err
    assert "S: 235 2.7.0 Accepted" in err
    assert pw not in err and pw not in cp.stdout.decode()
    import base64
    assert base64.b64encode(b"\0" + user.encode() + b"\0" + pw.encode()).decode() not in err
    srv.fetch_one(user)


def test_send_env_password_and_login_mech(srv, tmp):
    user, pw = srv.new_account("envpw")
    a = ["send", "--server", f"127.0.0.1:{srv.submissions}", "--tls", "implicit",
         "--ca-file", srv.cert, "--user", user, "--from", user, "--to", user, "--body", "env"]
    cp = run(srv, a, env={"ROOST_PASSWORD": pw})
    assert cp.returncode == 0, cp.stderr.decode()
    srv.fetch_one(user)


def test_send_bad_password_535(srv, tmp):
    user, pw = srv.new_account("badpw")
    cp = run(srv, send_args(srv, srv.submissions, user, pwfile(tmp, pw + "x"), "--to", user,
                            "--body", "x"))
    assert cp.returncode == 5
    assert "535 5.7.8 Username and Password not accepted" in cp.stderr.decode()
    assert srv.mailbox_rows(user) == []


def test_send_two_factor_534(srv, tmp):
    user, pw = srv.new_account("send2fa")
    srv.ok("account", "set", user, "--two-factor", "on")
    cp = run(srv, send_args(srv, srv.submissions, user, pwfile(tmp, pw), "--to", user,
                            "--body", "x"))
    assert cp.returncode == 5
    err = cp.stderr.decode()
    assert "534 5.7.9" in err and "app-password create" in err


def test_send_rejected_recipient_and_sender(srv, tmp):
    user, pw = srv.new_account("rej")
    p = pwfile(tmp, pw)
    cp = run(srv, send_args(srv, srv.submissions, user, p, "--to", f"nobody-{unique()}@{DOMAIN}",
                            "--body", "x"))
    assert cp.returncode == 6, cp.stderr.decode()
    assert "recipient" in cp.stderr.decode() and "550" in cp.stderr.decode()
    a = send_args(srv, srv.submissions, user, p, "--to", user, "--body", "x")
    a[a.index("--from") + 1] = "someone-else@remote.test"
    cp = run(srv, a)
    assert cp.returncode == 6 and "553 5.7.1" in cp.stderr.decode()


def test_send_connection_and_tls_errors(srv, tmp):
    user, pw = srv.new_account("conn")
    p = pwfile(tmp, pw)
    dead = free_ports(1)[0]
    cp = run(srv, ["send", "--server", f"127.0.0.1:{dead}", "--from", user, "--to", user,
                   "--body", "x"])
    assert cp.returncode == 3 and "Connection refused" in cp.stderr.decode()
    # Verification is on by default: the self-signed certificate is refused.
    cp = run(srv, ["send", "--server", f"127.0.0.1:{srv.submissions}", "--tls", "implicit",
                   "--user", user, "--password-file", p, "--from", user, "--to", user,
                   "--body", "x"])
    assert cp.returncode == 4 and "certificate" in cp.stderr.decode()
    cp = run(srv, ["send", "--server", f"127.0.0.1:{srv.submissions}", "--tls", "implicit",
                   "--insecure", "--user", user, "--password-file", p, "--from", user,
                   "--to", user, "--body", "insecure"])
    assert cp.returncode == 0, cp.stderr.decode()
    srv.fetch_one(user)
    # Implicit TLS against a STARTTLS port.
    cp = run(srv, send_args(srv, srv.submission, user, p, "--to", user, "--body", "x",
                            tls="implicit"))
    assert cp.returncode == 4 and "--tls starttls" in cp.stderr.decode()


def test_send_bad_inputs(srv, tmp):
    user, pw = srv.new_account("badin")
    p = pwfile(tmp, pw)
    base = send_args(srv, srv.submissions, user, p, "--to", user, "--body", "x")
    cp = run(srv, base + ["--attach", tmp / "missing.bin"])
    assert cp.returncode == 1 and "missing.bin" in cp.stderr.decode()
    for bad in (tmp / "no-such-file", tmp):   # missing; a directory (unreadable as a file)
        a = list(base)
        a[a.index("--password-file") + 1] = str(bad)
        cp = run(srv, a)
        assert cp.returncode == 1 and "cannot read the password file" in cp.stderr.decode()
    cp = run(srv, ["send", "--server", f"127.0.0.1:{srv.submissions}", "--from", user,
                   "--body", "x"])
    assert cp.returncode == 2 and "no recipients" in cp.stderr.decode()
    cp = run(srv, base + ["--password", pw])
    assert cp.returncode == 2 and "command line" in cp.stderr.decode()
    cp = run(srv, base + ["--to", "not an address"])
    assert cp.returncode == 2
    cp = run(srv, ["send", "--server", f"127.0.0.1:{srv.submissions}", "--user", user,
                   "--from", user, "--to", user, "--body", "x"])
    assert cp.returncode == 1 and "password" in cp.stderr.decode()
    # A huge line in the body goes out quoted-printable and arrives intact.
    long_line = "y" * 20000 + "\n"
    cp = run(srv, base[:-2] + ["--body", long_line, "--insecure"])
    assert cp.returncode == 0, cp.stderr.decode()
    msg, _ = parts_of(srv.fetch_one(user))
    assert msg.get_body(("plain",)).get_content().replace("\r\n", "\n") == long_line
    assert srv.mailbox_rows(user) and len(srv.mailbox_rows(user)) == 1


# ------------------------------------------------------------------ roost check

def check(srv, port, *extra, env=None):
    cp = run(srv, ["check", f"127.0.0.1:{port}", *extra], env=env)
    return cp.returncode, cp.stdout.decode() + cp.stderr.decode()


@pytest.mark.parametrize("which,tls", [("submissions", "implicit"), ("submission", "starttls"),
                                       ("imaps", "implicit"), ("imap", "starttls"),
                                       ("pop3s", "implicit"), ("pop3", "starttls")])
def test_check_healthy(srv, tmp, which, tls):
    user, pw = srv.new_account("healthy")
    rc, out = check(srv, srv.ports[which], "--tls", tls, "--ca-file", srv.cert,
                    "--user", user, "--password-file", pwfile(tmp, pw))
    assert rc == 0, out
    assert "result: OK, no problem found" in out
    assert "chain         trusted" in out and "matches the certificate" in out
    assert "login" in out and "ok" in out
    proto = {"sub": "220 ", "ima": "* OK", "pop": "+OK"}[which[:3]]
    assert f"greeting      {proto}" in out
    assert "TLSv1." in out and "days left" in out


def test_check_implicit_expected_on_starttls_port(srv):
    rc, out = check(srv, srv.submission, "--tls", "implicit", "--ca-file", srv.cert)
    assert rc == 1, out
    assert "this port uses STARTTLS: set your app to STARTTLS / port 587" in out


def test_check_starttls_expected_on_implicit_port(srv):
    rc, out = check(srv, srv.submissions, "--tls", "starttls", "--ca-file", srv.cert)
    assert rc == 1, out
    assert "this port uses SSL/TLS from the first byte: set your app to SSL/TLS / port 465" in out
    rc, out = check(srv, srv.ports["imaps"], "--tls", "starttls", "--ca-file", srv.cert)
    assert rc == 1 and "SSL/TLS / port 993" in out, out


def test_check_starttls_required_before_auth(srv, tmp):
    user, pw = srv.new_account("notls")
    rc, out = check(srv, srv.submission, "--tls", "none", "--user", user,
                    "--password-file", pwfile(tmp, pw))
    assert rc == 1, out
    assert "530 5.7.0 Must issue a STARTTLS command first" in out
    assert "this server requires STARTTLS before login" in out


def test_check_wrong_password(srv, tmp):
    user, pw = srv.new_account("wrongpw")
    rc, out = check(srv, srv.submissions, "--tls", "implicit", "--ca-file", srv.cert,
                    "--user", user, "--password-file", pwfile(tmp, "not-" + pw))
    assert rc == 1, out
    assert "535 5.7.8" in out and "wrong password" in out
    assert pw not in out


def test_check_app_password_required(srv, tmp):
    user, pw = srv.new_account("twofa")
    srv.ok("account", "set", user, "--two-factor", "on")
    rc, out = check(srv, srv.submissions, "--tls", "implicit", "--ca-file", srv.cert,
                    "--user", user, env={"ROOST_PASSWORD": pw})
    assert rc == 1, out
    assert "534 5.7.9" in out
    assert f"create an app password with roost app-password create {user}" in out


def test_check_nothing_listening(srv):
    rc, out = check(srv, free_ports(1)[0])
    assert rc == 1, out
    assert "connection refused" in out and "wrong port or server down" in out


def test_check_unresolvable_name(srv):
    cp = run(srv, ["check", "no-such-host.invalid:465"])
    assert cp.returncode == 1
    assert b"cannot resolve no-such-host.invalid" in cp.stdout
    assert b"A or AAAA record" in cp.stdout


def test_check_daily_limit_send_test(srv, tmp):
    user, pw = srv.new_account("limit")
    p = pwfile(tmp, pw)
    rc, out = check(srv, srv.submissions, "--tls", "implicit", "--ca-file", srv.cert,
                    "--user", user, "--password-file", p, "--send-test")
    assert rc == 0, out
    assert "send test" in out
    srv.fetch_one(user)
    srv.ok("account", "set", user, "--daily-limit", "1")
    rc, out = check(srv, srv.submissions, "--tls", "implicit", "--ca-file", srv.cert,
                    "--user", user, "--password-file", p, "--send-test")
    assert rc == 1, out
    assert "550 5.4.5 Daily user sending limit exceeded" in out
    assert "the daily sending limit is reached" in out and "--daily-limit" in out


def test_check_imap_disabled(srv, tmp):
    user, pw = srv.new_account("noimap")
    srv.ok("account", "set", user, "--imap", "off")
    rc, out = check(srv, srv.ports["imaps"], "--tls", "implicit", "--ca-file", srv.cert,
                    "--user", user, "--password-file", pwfile(tmp, pw))
    assert rc == 1, out
    assert "IMAP is turned off for this account" in out and f"{user} --imap on" in out


def test_check_pop_disabled(srv, tmp):
    user, pw = srv.new_account("nopop")
    srv.ok("account", "set", user, "--pop", "off")
    rc, out = check(srv, srv.ports["pop3s"], "--tls", "implicit", "--ca-file", srv.cert,
                    "--user", user, "--password-file", pwfile(tmp, pw))
    assert rc == 1, out
    assert "POP is turned off for this account" in out and f"{user} --pop on" in out


def test_check_untrusted_certificate(srv):
    rc, out = check(srv, srv.submissions, "--tls", "implicit")
    assert rc == 1, out
    assert "the certificate is not trusted" in out and "--ca-file" in out


def test_check_certificate_for_another_name(make_server, tmp):
    """A server whose certificate names only wrong.example.net: checking it
    as 127.0.0.1 names the mismatch."""
    if not shutil.which("openssl"):
        pytest.skip("openssl not installed")
    cert, key = tmp / "wrong.pem", tmp / "wrong.key"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", str(key), "-out",
                    str(cert), "-days", "30", "-subj", "/CN=wrong.example.net",
                    "-addext", "subjectAltName=DNS:wrong.example.net"],
                   check=True, capture_output=True, timeout=30)
    s = make_server(extra_config=f"\n[tls]\ncert = {cert}\nkey = {key}\n")
    rc, out = check(s, s.submissions, "--tls", "implicit", "--ca-file", cert)
    assert rc == 1, out
    assert "the certificate is for another name" in out
    assert "check the name" in out
    assert "chain         trusted" in out


def test_check_bad_usage(srv):
    assert run(srv, ["check"]).returncode == 2
    assert run(srv, ["check", "127.0.0.1:1", "--tls", "maybe"]).returncode == 2
    cp = run(srv, ["check", f"127.0.0.1:{srv.submissions}", "--user", "a@b.c"])
    assert cp.returncode == 2 and b"password" in cp.stderr


# ------------------------------------------------------------------ roost sendmail

def sendmail(srv, args, data, env=None, prefix=()):
    e = dict(os.environ)
    if env:
        e.update(env)
    cp = subprocess.run([*prefix, srv.bin, "--data", str(srv.data), "sendmail", *args],
                        input=data, capture_output=True, timeout=60, env=e)
    for m in (b"ERROR: AddressSanitizer", b"runtime error:", b"ERROR: LeakSanitizer"):
        assert m not in cp.stderr, cp.stderr.decode("utf-8", "replace")
    return cp


def header_block(stored):
    return stored.split(b"\r\n\r\n", 1)[0].decode("utf-8", "replace")


def test_sendmail_t_bcc_removed(srv):
    a, _ = srv.new_account("smt")
    b, _ = srv.new_account("smb")
    msg = (f"To: Someone <{a}>\nBcc: {b}\nSubject: cron report\n\nall is well\n.\n"
           "not part of the message\n").encode()
    cp = sendmail(srv, ["-t", "-odi"], msg)
    assert cp.returncode == 0, cp.stderr.decode()
    for who in (a, b):
        stored = srv.fetch_one(who)
        hdr = header_block(stored)
        assert "Bcc:" not in hdr and "Subject: cron report" in hdr
        assert "Date: " in hdr and "Message-ID: <" in hdr and "From: " in hdr
        assert "Received: by mx.example.test (Roost, from userid 0)" in hdr
        body = stored.split(b"\r\n\r\n", 1)[1]
        assert body == b"all is well\r\n"     # a lone "." ended the input


def test_sendmail_args_f_and_i(srv):
    a, _ = srv.new_account("smarg")
    msg = (f"From: Me <{a}>\r\nSubject: dots\r\n\r\nline\r\n.\r\n..two\r\nend\r\n").encode()
    cp = sendmail(srv, ["-i", "-f", a, a], msg)
    assert cp.returncode == 0, cp.stderr.decode()
    stored = srv.fetch_one(a)
    assert stored.split(b"\r\n\r\n", 1)[1] == b"line\r\n.\r\n..two\r\nend\r\n"
    assert f"From: Me <{a}>" in header_block(stored)
    log = (srv.data / "log" / "roost.log").read_text(errors="replace")
    assert f'from="{a}"' in log


def test_sendmail_mail_style_and_fullname(srv):
    a, _ = srv.new_account("smmail")
    cp = sendmail(srv, ["-F", "Backup Job", "-oi", "-oem", "-v", a], b"Subject: x\n\nhello\n")
    assert cp.returncode == 0, cp.stderr.decode()
    hdr = header_block(srv.fetch_one(a))
    assert "From: Backup Job <root@" in hdr


def test_sendmail_symlink_name(srv, tmp):
    a, _ = srv.new_account("smlink")
    link = tmp / "sendmail"
    link.symlink_to(srv.bin)
    cp = subprocess.run([str(link), "-t"], input=f"To: {a}\nSubject: via link\n\nx\n".encode(),
                        capture_output=True, timeout=60,
                        env={**os.environ, "ROOST_DATA": str(srv.data),
                             "ROOST_CONFIG": str(srv.conf)})
    assert cp.returncode == 0, cp.stderr.decode()
    assert "Subject: via link" in header_block(srv.fetch_one(a))


def test_sendmail_bad_inputs(srv):
    a, _ = srv.new_account("smbad")
    cp = sendmail(srv, ["-t"], b"Subject: nobody\n\nx\n")
    assert cp.returncode == 64 and b"no recipients" in cp.stderr
    cp = sendmail(srv, [a], b"Subject: long\n\n" + b"x" * 999 + b"\n")
    assert cp.returncode == 65 and b"longer than 998" in cp.stderr
    cp = sendmail(srv, [a], b"Subject: ok\n\n" + b"x" * 998 + b"\n")
    assert cp.returncode == 0, cp.stderr.decode()
    cp = sendmail(srv, [f"nobody-{unique()}@{DOMAIN}"], b"Subject: x\n\nx\n")
    assert cp.returncode == 67 and b"no such user" in cp.stderr
    cp = sendmail(srv, ["-bp"], b"")
    assert cp.returncode == 64
    cp = sendmail(srv, ["-f"], b"")
    assert cp.returncode == 64
    cp = sendmail(srv, ["bad address@x"], b"x\n")
    assert cp.returncode == 64
    srv.wait_for_message(a, 1)
    time.sleep(0.5)   # the refused ones must not arrive late
    assert len(srv.mailbox_rows(a)) == 1


def test_sendmail_no_pickup_dir(tmp, roost_binary):
    data = tmp / "empty-data"
    data.mkdir()
    cp = subprocess.run([roost_binary, "--data", str(data), "sendmail", "x@example.test"],
                        input=b"x\n", capture_output=True, timeout=60)
    assert cp.returncode == 69 and b"start roost serve" in cp.stderr


def test_sendmail_corrupt_file_quarantined(srv):
    bad = srv.data / "pickup" / f"forged{unique()}"
    bad.write_bytes(b"NOT A PICKUP FILE\n")
    log = srv.data / "log" / "roost.log"
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and bad.exists():
        time.sleep(0.1)
    assert not bad.exists()
    assert (srv.data / "pickup" / "corrupt" / bad.name).exists()
    assert "event=corrupt" in log.read_text(errors="replace")


def test_pickup_handwritten_file_normalized(srv):
    """A pickup file not written by roost sendmail (bare LF, bare CR) is
    stored with CRLF line ends only."""
    a, _ = srv.new_account("smhand")
    tmpf = srv.data / "pickup" / f".tmp-hand{unique()}"
    tmpf.write_bytes(f"ROOST-PICKUP 1\nR {a}\n\nSubject: hand\nX: y\r\rbody\n".encode())
    tmpf.rename(srv.data / "pickup" / tmpf.name[5:])
    stored = srv.fetch_one(a)
    _, rest = stored.split(b"Subject: hand", 1)
    assert rest == b"\r\nX: y\r\n\r\nbody\r\n"


def test_sendmail_untrusted_user(srv):
    """A user who is neither root nor the data directory's owner: the -f
    sender is replaced by LOGIN@hostname and remote recipients are dropped;
    local ones are delivered."""
    if os.geteuid() != 0 or not shutil.which("setpriv"):
        pytest.skip("needs root and setpriv to run as nobody")
    a, _ = srv.new_account("smnobody")
    prefix = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
    cp = sendmail(srv, ["-f", "ceo@" + DOMAIN, a, "someone@remote.test"],
                  b"Subject: from nobody\n\nhi\n", prefix=prefix)
    assert cp.returncode == 0, cp.stderr.decode()
    stored = srv.fetch_one(a)
    assert b"from userid 65534" in stored
    log = (srv.data / "log" / "roost.log").read_text(errors="replace")
    assert 'to=nobody@mx.example.test' in log
    assert 'rcpt="someone@remote.test" reason=not-local' in log
    assert "someone@remote.test" not in srv.queue_list()


def test_git_send_email(srv, tmp):
    if not shutil.which("git") or b"send-email" not in subprocess.run(
            ["git", "send-email", "-h"], capture_output=True).stdout + subprocess.run(
            ["git", "send-email", "-h"], capture_output=True).stderr:
        pytest.skip("git send-email not installed (Debian package git-email)")
    a, _ = srv.new_account("git")
    repo = tmp / "repo"
    repo.mkdir()
    env = {**os.environ, "GIT_AUTHOR_NAME": "Dev", "GIT_AUTHOR_EMAIL": a,
           "GIT_COMMITTER_NAME": "Dev", "GIT_COMMITTER_EMAIL": a, "HOME": str(tmp)}

    def git(*args):
        cp = subprocess.run(["git", *args], cwd=repo, capture_output=True, env=env, timeout=60)
        assert cp.returncode == 0, cp.stderr.decode()
        return cp

    git("init", "-q")
    (repo / "hello.c").write_text("int main(void) { return 0; }\n")
    git("add", "hello.c")
    git("commit", "-q", "-m", "Add hello.c")
    patch = git("format-patch", "-1", "-o", str(tmp / "out")).stdout.decode().strip()
    git("send-email", f"--sendmail-cmd={srv.bin} --data {srv.data} sendmail",
        f"--to={a}", f"--from=Dev <{a}>", "--confirm=never", "--quiet", patch)
    stored = srv.fetch_one(a)
    assert b"Subject: [PATCH] Add hello.c" in stored
    assert b"+int main(void) { return 0; }" in stored
