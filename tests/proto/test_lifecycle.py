"""Process lifecycle: SIGTERM with a transaction in flight, config check,
idle timeout, per-address connection limit."""
import signal
import socket
import subprocess
import time

import pytest

from conftest import (CLI_TIMEOUT, SMTP, SMTPClosed, assert_stored_exactly, check, dot_stuff, make_message,
                      queue_id, roost_bin)

EXT_SENDER = "sender@remote.test"


def greets(port, source=None, timeout=3.0):
    """True if a new connection gets a 220 greeting."""
    try:
        c = SMTP(port, timeout=timeout, source=source, read_greeting=False)
    except OSError:
        return False
    try:
        r = c.reply(timeout)
        return r.code == 220
    except AssertionError:
        return False
    finally:
        c.close()


# ---------------------------------------------------------------- SIGTERM

def test_sigterm_lets_transaction_finish(make_server):
    srv = make_server()
    rcpt, _ = srv.new_account("term")
    msg = make_message(EXT_SENDER, rcpt, subject="in flight at SIGTERM")
    data = dot_stuff(msg)
    half = len(data) // 2
    c = srv.connect("smtp")
    try:
        c.ehlo()
        check(c.cmd(f"MAIL FROM:<{EXT_SENDER}>"), 250, "2.1.0", "OK")
        check(c.cmd(f"RCPT TO:<{rcpt}>"), 250, "2.1.5", "OK")
        check(c.cmd("DATA"), 354, None, "Go ahead")
        c.send(data[:half])
        time.sleep(0.3)
        srv.proc.send_signal(signal.SIGTERM)
        time.sleep(1.0)
        assert srv.proc.poll() is None, \
            f"server exited ({srv.proc.returncode}) with a transaction in flight"
        # it stops accepting
        assert not greets(srv.smtp), "new connection greeted after SIGTERM"
        c.send(data[half:])
        qid = queue_id(c.reply())
        r = c.cmd("QUIT")
        assert r.code in (221, 421), r.text
    finally:
        c.close()
    try:
        rc = srv.proc.wait(30)
    except subprocess.TimeoutExpired:
        pytest.fail("server still running 30s after SIGTERM and the last transaction")
    assert rc == 0, f"exit status after SIGTERM: {rc}; stderr: {srv.stderr_tail()}"
    rows = srv.mailbox_rows(rcpt)
    if not rows:
        srv.start()
        rows = srv.wait_for_message(rcpt, 1, timeout=30)
    assert len(rows) == 1 and rows[0]["qid"] == qid, rows
    assert_stored_exactly(srv.cat(rcpt, rows[0]["uid"]), msg)


def test_sigterm_idle_server_exits_0(make_server):
    srv = make_server()
    srv.proc.send_signal(signal.SIGTERM)
    try:
        rc = srv.proc.wait(20)
    except subprocess.TimeoutExpired:
        pytest.fail("idle server did not exit within 20s of SIGTERM")
    assert rc == 0, f"exit status {rc}; stderr: {srv.stderr_tail()}"


def test_sigterm_with_idle_connection(make_server):
    """An idle session (no transaction) does not keep the server alive."""
    srv = make_server()
    c = srv.connect("smtp")
    c.ehlo()
    srv.proc.send_signal(signal.SIGTERM)
    try:
        rc = srv.proc.wait(30)
    except subprocess.TimeoutExpired:
        pytest.fail("server kept running 30s after SIGTERM because of an idle connection")
    finally:
        c.close()
    assert rc == 0, f"exit status {rc}"


def test_restart_keeps_accounts_and_mail(make_server):
    srv = make_server()
    rcpt, pw = srv.new_account("persist")
    msg = make_message(EXT_SENDER, rcpt, subject="before restart")
    with srv.connect("smtp") as c:
        c.ehlo()
        queue_id(c.mail_transaction(EXT_SENDER, [rcpt], msg))
    srv.wait_for_message(rcpt, 1)
    assert srv.terminate() == 0
    srv.start()
    with srv.submit_session(rcpt, pw, "submissions") as c:
        check(c.cmd("NOOP"), 250)
    assert_stored_exactly(srv.fetch_one(rcpt), msg)


def test_second_server_on_the_same_data_directory_refused(make_server, tmp_path):
    """A second `roost serve` on a running server's data directory stops
    at once with a message naming the running one, whatever its ports (the
    default ones here, not the first server's), and the first goes on."""
    srv = make_server()
    conf = tmp_path / "second.conf"
    conf.write_text(f"[server]\nhostname = second.test\ndata_dir = {srv.data}\nuser =\n")
    cp = subprocess.run([roost_bin(), "serve", "--config", str(conf)], stdin=subprocess.DEVNULL,
                        stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=CLI_TIMEOUT,
                        cwd=str(tmp_path))
    err = cp.stderr.decode("utf-8", "replace")
    assert cp.returncode != 0, err
    assert f"another roost serve (pid {srv.proc.pid}) is running on the data directory" in err, err
    assert greets(srv.ports["smtp"])
    # once the first has stopped, the data directory is free again
    assert srv.terminate() == 0
    srv.start()
    assert greets(srv.ports["smtp"])


# ---------------------------------------------------------------- config check

def config_check(path, cwd):
    cp = subprocess.run([roost_bin(), "config", "check", str(path)], stdout=subprocess.PIPE,
                        stderr=subprocess.PIPE, timeout=CLI_TIMEOUT, cwd=str(cwd))
    return cp.returncode, (cp.stdout + cp.stderr).decode("utf-8", "replace")


def test_config_check_good(roost_binary, tmp_path):
    f = tmp_path / "good.conf"
    f.write_text("[server]\nhostname = mx.example.test\n"
                 f"data_dir = {tmp_path / 'data'}\nuser =\n\n"
                 "[listeners]\nsmtp = 127.0.0.1:2525\nsubmission = 127.0.0.1:2587\n"
                 "submissions = 127.0.0.1:2465\n\n"
                 "[limits]\nmax_message_size = 35882577\nmax_recipients = 100\n"
                 "max_connections = 1000\nmax_connections_per_ip = 30\nidle_timeout = 300\n")
    rc, out = config_check(f, tmp_path)
    assert rc == 0, f"config check on a good file: rc={rc}\n{out}"


def test_config_check_server_config(make_server):
    srv = make_server(start=False)
    rc, out = config_check(srv.conf, srv.base)
    assert rc == 0, f"rc={rc}\n{out}"


def test_config_check_two_errors(roost_binary, tmp_path):
    f = tmp_path / "bad.conf"
    lines = [
        "[server]",                       # 1
        "hostname = mx.example.test",     # 2
        f"data_dir = {tmp_path / 'd'}",   # 3
        "no_such_key = 1",                # 4  error
        "",                               # 5
        "[listeners]",                    # 6
        "smtp = 127.0.0.1:2525",          # 7
        "",                               # 8
        "[limits]",                       # 9
        "max_recipients = lots",          # 10 error
        "idle_timeout = 300",             # 11
    ]
    f.write_text("\n".join(lines) + "\n")
    rc, out = config_check(f, tmp_path)
    assert rc == 1, f"rc={rc}\n{out}"
    assert f"{f}:4:" in out, f"error on line 4 not reported as FILE:4: ...\n{out}"
    assert f"{f}:10:" in out, f"error on line 10 not reported as FILE:10: ...\n{out}"


def test_config_check_usage(roost_binary, tmp_path):
    cp = subprocess.run([roost_bin(), "config", "check"], stdout=subprocess.PIPE,
                        stderr=subprocess.PIPE, timeout=CLI_TIMEOUT, cwd=str(tmp_path))
    assert cp.returncode == 2, cp


# ---------------------------------------------------------------- idle timeout

def test_idle_timeout(make_server):
    srv = make_server(limits={"idle_timeout": 2})
    with srv.connect("smtp") as c:
        t0 = time.monotonic()
        r = c.reply(timeout=10)
        took = time.monotonic() - t0
        assert r.code == 421 and r.last.startswith("421 4.4.2"), r.text
        assert 1.5 <= took <= 8, f"421 after {took:.1f}s with idle_timeout = 2"
        assert c.expect_closed(5), "connection not closed after 421 4.4.2"


def test_idle_timeout_resets_on_activity(make_server):
    srv = make_server(limits={"idle_timeout": 2})
    with srv.connect("smtp") as c:
        c.ehlo()
        check(c.cmd(f"MAIL FROM:<{EXT_SENDER}>"), 250, "2.1.0", "OK")
        for _ in range(5):  # 5 s of activity, 1 s apart
            time.sleep(1.0)
            check(c.cmd("NOOP"), 250)
        r = c.reply(timeout=10)
        assert r.code == 421 and r.last.startswith("421 4.4.2"), r.text
        assert c.expect_closed(5)


def test_idle_timeout_in_data_and_tls(make_server):
    srv = make_server(limits={"idle_timeout": 2})
    rcpt, pw = srv.new_account("idle")
    with srv.submit_session(rcpt, pw, "submissions") as c:
        check(c.cmd(f"MAIL FROM:<{rcpt}>"), 250, "2.1.0", "OK")
        check(c.cmd(f"RCPT TO:<{rcpt}>"), 250, "2.1.5", "OK")
        check(c.cmd("DATA"), 354, None, "Go ahead")
        c.send(b"Subject: half\r\n")
        r = c.reply(timeout=10)
        assert r.code == 421 and r.last.startswith("421 4.4.2"), r.text
        assert c.expect_closed(5)
    time.sleep(0.5)
    assert srv.mailbox_rows(rcpt) == []


# ---------------------------------------------------------------- connection limits

def test_per_ip_connection_limit(make_server):
    srv = make_server(limits={"max_connections_per_ip": 3})
    time.sleep(1.0)  # let the readiness probes' connections close
    conns = [srv.connect("smtp") for _ in range(3)]
    try:
        for c in conns:
            assert c.greeting.code == 220, c.greeting.text
        extra = SMTP(srv.smtp, read_greeting=False)
        try:
            r = extra.reply(timeout=10)
            assert r.code == 421 and r.last.startswith("421 4.7.0"), r.text
            assert extra.expect_closed(5), "over-limit connection not closed"
        finally:
            extra.close()
        # the limit counts all listeners
        # (on the implicit-TLS port a refusal may come before the handshake)
        try:
            extra = SMTP(srv.submissions, tls=True, read_greeting=False)
        except OSError:
            extra = None
        if extra is not None:
            try:
                r = extra.reply(timeout=10)
                assert r.code == 421 and r.last.startswith("421 4.7.0"), r.text
            except SMTPClosed:
                pass
            finally:
                extra.close()
        # another client address is not affected
        assert greets(srv.smtp, source="127.0.0.2"), "127.0.0.2 refused: limit is not per IP"
        # established sessions keep working
        for c in conns:
            check(c.cmd("NOOP"), 250)
        # closing one frees a slot
        conns.pop().close()
        ok = False
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and not ok:
            ok = greets(srv.smtp)
            if not ok:
                time.sleep(0.2)
        assert ok, "no slot freed after closing a connection"
    finally:
        for c in conns:
            c.close()
