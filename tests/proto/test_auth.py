"""AUTH on the submission ports: mechanisms, wrong passwords, two-factor
accounts and app passwords, throttling, and where AUTH is refused."""
import pytest

from conftest import DOMAIN, check

ACCEPTED = "235 2.7.0 Accepted"
BADPASS = "535 5.7.8 Username and Password not accepted"
NEED_APP = "534 5.7.9 Application-specific password required"
THROTTLED = "454 4.7.0 Too many login attempts, please try again later"


def session(server, which="submission", source=None):
    c = server.connect(which, source=source)
    c.ehlo()
    if which == "submission":
        c.starttls()
        c.ehlo()
    return c


def last_line(res):
    lines = [l for l in res.stdout.splitlines() if l.strip()]
    assert lines, f"no output: {res!r}"
    return lines[-1].strip()


def try_plain(server, user, password, which="submission", source=None):
    with session(server, which, source) as c:
        return c.auth_plain(user, password).text


# ---------------------------------------------------------------- mechanisms

@pytest.mark.parametrize("which", ["submission", "submissions"])
@pytest.mark.parametrize("mech,initial", [("PLAIN", True), ("PLAIN", False),
                                          ("LOGIN", True), ("LOGIN", False)])
def test_auth_mechanisms(server, which, mech, initial):
    address, pw = server.new_account("mech")
    with session(server, which) as c:
        if mech == "PLAIN":
            r = c.auth_plain(address, pw, initial=initial)
        else:
            r = c.auth_login(address, pw, initial=initial)
        assert r.text == ACCEPTED, r.text
        check(c.cmd(f"MAIL FROM:<{address}>"), 250, "2.1.0", "OK")
        check(c.cmd("RSET"), 250, "2.1.5", "Flushed")
        # a second AUTH in the same session is a sequence error
        check(c.auth_plain(address, pw), 503)


def test_wrong_password(server):
    address, pw = server.new_account("wrong")
    with session(server) as c:
        r = c.auth_plain(address, pw + "x")
        assert r.text == BADPASS, r.text
        r = c.auth_login(address, "not-the-password")
        assert r.text == BADPASS, r.text
        # still usable, and the right password then works
        check(c.cmd("NOOP"), 250)
        r = c.auth_plain(address, pw)
        assert r.text == ACCEPTED, r.text


def test_unknown_user(server):
    with session(server, "submissions") as c:
        r = c.auth_plain(f"nobody-here@{DOMAIN}", "whatever-password")
        assert r.text == BADPASS, r.text
        check(c.cmd("NOOP"), 250)


def test_auth_cancelled(server):
    address, pw = server.new_account("cancel")
    with session(server) as c:
        check(c.cmd("AUTH LOGIN"), 334)
        check(c.cmd("*"), 501)
        check(c.cmd("NOOP"), 250)
        assert c.auth_plain(address, pw).text == ACCEPTED


def test_auth_before_starttls(server):
    address, pw = server.new_account("early")
    with server.connect("submission") as c:
        c.ehlo()
        r = c.auth_plain(address, pw)
        assert r.text == "530 5.7.0 Must issue a STARTTLS command first", r.text
        r = c.cmd("AUTH LOGIN")
        assert r.text == "530 5.7.0 Must issue a STARTTLS command first", r.text
        check(c.cmd("NOOP"), 250)


@pytest.mark.parametrize("tls", [False, True])
def test_auth_refused_on_smtp_listener(server, tls):
    address, pw = server.new_account("mx")
    with server.connect("smtp") as c:
        c.ehlo()
        if tls:
            c.starttls()
            c.ehlo()
        r = c.auth_plain(address, pw)
        assert 500 <= r.code <= 599, f"AUTH on the smtp listener: {r.text}"
        check(c.cmd("NOOP"), 250)
        # and the session is not authenticated: relaying is still denied
        check(c.cmd("MAIL FROM:<sender@remote.test>"), 250, "2.1.0", "OK")
        r = c.cmd("RCPT TO:<someone@elsewhere.invalid>")
        assert r.text.startswith("550 5.7.1 Relaying denied"), r.text


# ---------------------------------------------------------------- two-factor, app passwords

def two_factor_account(server):
    address, pw = server.new_account("tfa")
    server.ok("account", "set", address, "--two-factor", "on")
    return address, pw


def create_app_password(server, address, name):
    res = server.ok("app-password", "create", address, name)
    ap = last_line(res)
    assert len(ap) == 16 and ap.isalpha(), f"app password is not 16 letters: {ap!r} ({res!r})"
    return ap


def test_two_factor_main_password_534(server):
    address, pw = two_factor_account(server)
    for which in ("submission", "submissions"):
        with session(server, which) as c:
            r = c.auth_plain(address, pw)
            assert r.text == NEED_APP, r.text
            r = c.auth_login(address, pw)
            assert r.text == NEED_APP, r.text
            check(c.cmd("NOOP"), 250)


def test_two_factor_wrong_password_is_535(server):
    address, pw = two_factor_account(server)
    assert try_plain(server, address, pw + "nope") == BADPASS


def test_app_password_works(server):
    address, pw = two_factor_account(server)
    ap = create_app_password(server, address, "phone")
    with session(server, "submissions") as c:
        assert c.auth_plain(address, ap).text == ACCEPTED
        check(c.cmd(f"MAIL FROM:<{address}>"), 250, "2.1.0", "OK")
    with session(server, "submission") as c:
        assert c.auth_login(address, ap).text == ACCEPTED
    lst = server.ok("app-password", "list", address)
    assert "phone" in lst.stdout, lst
    assert ap not in lst.stdout, "app password shown again by list"


def test_app_password_with_spaces(server):
    address, pw = two_factor_account(server)
    ap = create_app_password(server, address, "laptop")
    spaced = " ".join(ap[i:i + 4] for i in range(0, 16, 4))  # "abcd efgh ijkl mnop"
    assert try_plain(server, address, spaced) == ACCEPTED
    assert try_plain(server, address, spaced, "submissions") == ACCEPTED


def test_app_password_revoke(server):
    address, pw = two_factor_account(server)
    ap1 = create_app_password(server, address, "one")
    ap2 = create_app_password(server, address, "two")
    assert try_plain(server, address, ap1) == ACCEPTED
    server.ok("app-password", "revoke", address, "one")
    # at once, on a new connection
    assert try_plain(server, address, ap1) == BADPASS
    assert try_plain(server, address, ap2) == ACCEPTED
    lst = server.ok("app-password", "list", address)
    assert "two" in lst.stdout


def test_passwd_revokes_all_app_passwords(server):
    address, pw = two_factor_account(server)
    aps = [create_app_password(server, address, f"dev{i}") for i in range(2)]
    for ap in aps:
        assert try_plain(server, address, ap) == ACCEPTED
    newpw = "a-new-long-password-42"
    server.ok("account", "passwd", address, "--password-stdin", input=newpw + "\n")
    for ap in aps:
        assert try_plain(server, address, ap) == BADPASS
    # two-factor is still on: the new main password needs an app password
    assert try_plain(server, address, newpw) == NEED_APP
    assert try_plain(server, address, pw) == BADPASS


def test_passwd_changes_password(server):
    address, pw = server.new_account("pw")
    newpw = "another-long-password-7"
    server.ok("account", "passwd", address, "--password-stdin", input=newpw + "\n")
    assert try_plain(server, address, pw) == BADPASS
    assert try_plain(server, address, newpw) == ACCEPTED


def test_two_factor_off_again(server):
    address, pw = two_factor_account(server)
    assert try_plain(server, address, pw) == NEED_APP
    server.ok("account", "set", address, "--two-factor", "off")
    assert try_plain(server, address, pw) == ACCEPTED


# ---------------------------------------------------------------- throttling (own servers)

def test_throttle_per_account(make_server):
    srv = make_server()
    address, pw = srv.new_account("thr")
    other, opw = srv.new_account("thr")
    got = [try_plain(srv, address, f"wrong-password-{i}", "submissions") for i in range(10)]
    assert got == [BADPASS] * 10, got
    # the right password is refused now
    assert try_plain(srv, address, pw, "submissions") == THROTTLED
    assert try_plain(srv, address, pw, "submission") == THROTTLED
    # per account: from another client address too
    assert try_plain(srv, address, pw, "submissions", source="127.0.0.2") == THROTTLED
    # another account from the same address is not affected (10 < 20)
    assert try_plain(srv, other, opw, "submissions") == ACCEPTED


def test_throttle_per_address(make_server):
    srv = make_server()
    accounts = [srv.new_account("thra") for _ in range(4)]
    fresh, fpw = srv.new_account("thrf")
    got = []
    for i in range(20):
        a, _ = accounts[i % 4]  # 5 failures per account: below the account limit
        got.append(try_plain(srv, a, f"wrong-{i}", "submissions"))
    assert got == [BADPASS] * 20, got
    assert try_plain(srv, fresh, fpw, "submissions") == THROTTLED
    assert try_plain(srv, fresh, fpw, "submission") == THROTTLED
    # another client address is not throttled
    assert try_plain(srv, fresh, fpw, "submissions", source="127.0.0.2") == ACCEPTED
