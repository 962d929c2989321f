"""Real IMAP clients nobody here wrote, against a real `roost serve` holding
a 1,000-message account: mbsync (isync) two-way sync run twice (the second
run transfers nothing) with flag changes and a new message in both
directions, offlineimap, curl imap:// (STARTTLS) and imaps://, and
fetchmail over IMAP (keep and no keep). Every downloaded message is compared
byte for byte with what the store holds (`roost mailbox cat`).

Each client runs with HOME pointed at the test's tmp dir, stdin closed and
a timeout; its config lives in the tmp dir."""
import imaplib
import os
import re
from pathlib import Path

import pytest

from conftest import (DOMAIN, RoostServer, _finish, assert_stored_exactly, client_context,
                      deliver_many, message_id_of)
from test_pop3_clients import Bulk, describe, need, read_dir, run, varied_messages

N_MESSAGES = 1000
LISTENERS = ("smtp", "submission", "submissions", "imap", "imaps")


class IBulk(Bulk):
    @property
    def imap(self):
        return self.srv.ports["imap"]

    @property
    def imaps(self):
        return self.srv.ports["imaps"]

    def imaplib(self):
        m = imaplib.IMAP4_SSL("127.0.0.1", self.imaps, ssl_context=client_context(), timeout=60)
        m.login(self.address, self.password)
        return m


@pytest.fixture(scope="module")
def ibulk(roost_binary):
    srv = RoostServer(listeners=LISTENERS)
    try:
        srv.start()
        srv.ensure_domain(DOMAIN)
        address, pw = srv.new_account("ibulk")
        msgs = varied_messages(address, N_MESSAGES, big_at=N_MESSAGES // 2)
        deliver_many(srv, address, msgs, threads=4)
        rows = srv.wait_for_message(address, N_MESSAGES, timeout=180)
        assert len(rows) == N_MESSAGES
        sent = {message_id_of(m): m for m in msgs}
        stored = {message_id_of(data): data for data in srv.export(address).values()}
        assert set(stored) == set(sent)
        for mid, data in stored.items():
            assert_stored_exactly(data, sent[mid])
    except BaseException:
        _finish(srv)
        raise
    yield IBulk(srv, address, pw, sent, stored)
    _finish(srv)


def maildir_messages(folder):
    out = []
    for sub in ("cur", "new"):
        d = Path(folder) / sub
        if d.is_dir():
            out += [p for p in sorted(d.iterdir()) if p.is_file()]
    return out


# ---------------------------------------------------------------- curl

@pytest.mark.parametrize("scheme", ["imap", "imaps"])
def test_curl(ibulk, tmp_path, scheme):
    need("curl")
    port = ibulk.imap if scheme == "imap" else ibulk.imaps
    base = ["curl", "-sS", "-k", "--max-time", "150", "-u", f"{ibulk.address}:{ibulk.password}"]
    if scheme == "imap":
        base.append("--ssl-reqd")   # STARTTLS before LOGIN (LOGINDISABLED otherwise)
    url = f"{scheme}://127.0.0.1:{port}"
    cp = run(base + [url + "/"])   # LIST
    assert cp.returncode == 0, describe(cp)
    for name in (b'"INBOX"', b'"Sent"', b'"Trash"'):
        assert name in cp.stdout, cp.stdout
    mid = sorted(ibulk.stored)[7]
    cp = run(base + ["-X", f"SEARCH HEADER Message-ID \"{mid}\"", url + "/INBOX"])
    assert cp.returncode == 0, describe(cp)
    found = re.search(rb"\* SEARCH ([\d ]+)", cp.stdout)
    assert found and len(found.group(1).split()) == 1, cp.stdout
    seq = found.group(1).split()[0].decode()
    cp = run(base + [f"{url}/INBOX;MAILINDEX={seq}"])
    assert cp.returncode == 0, describe(cp)
    assert cp.stdout == ibulk.stored[mid]
    out = tmp_path / "msgs"
    out.mkdir()
    cp = run(base + [f"{url}/INBOX;UID=[1-40]", "-o", f"{out}/#1"])
    assert cp.returncode == 0, describe(cp)
    got = read_dir(out)
    assert len(got) == 40
    for data in got:
        assert data == ibulk.stored[message_id_of(data)], message_id_of(data)


def test_curl_imap_without_tls_cannot_log_in(ibulk):
    need("curl")
    cp = run(["curl", "-sS", "--max-time", "60", "-u", f"{ibulk.address}:{ibulk.password}",
              f"imap://127.0.0.1:{ibulk.imap}/INBOX;UID=1"])
    assert cp.returncode != 0, describe(cp)
    assert b"Received:" not in cp.stdout


# ---------------------------------------------------------------- mbsync

def mbsync_config(ibulk, tmp_path):
    mail = tmp_path / "mail"
    mail.mkdir()
    rc = tmp_path / "mbsyncrc"
    rc.write_text(
        "IMAPAccount roost\n"
        "Host localhost\n"   # the certificate names localhost; mbsync checks DNS names
        f"Port {ibulk.imaps}\n"
        f"User {ibulk.address}\n"
        f"Pass {ibulk.password}\n"
        "SSLType IMAPS\n"
        f"CertificateFile {ibulk.srv.cert}\n"
        "PipelineDepth 50\n"
        "\n"
        "IMAPStore remote\n"
        "Account roost\n"
        "\n"
        "MaildirStore local\n"
        f"Path {mail}/\n"
        f"Inbox {mail}/INBOX\n"
        "SubFolders Verbatim\n"
        "\n"
        "Channel all\n"
        "Far :remote:\n"
        "Near :local:\n"
        "Patterns INBOX Archive\n"
        "Create Both\n"
        "Expunge Both\n"
        "Sync All\n"
        "SyncState *\n")
    os.chmod(rc, 0o600)
    return rc, mail


def mbsync(rc, tmp_path):
    env = dict(os.environ, HOME=str(tmp_path))
    cp = run(["mbsync", "-c", str(rc), "-V", "all"], env=env, timeout=300)
    assert cp.returncode == 0, describe(cp)
    return cp.stdout.decode("utf-8", "replace") + cp.stderr.decode("utf-8", "replace")


def check_unix_maildir(ibulk, files, client):
    """mbsync and offlineimap write their Maildir with Unix line ends (and
    mbsync adds its X-TUID header): every other byte as the store holds it."""
    got = {}
    for p in files:
        data = re.sub(rb"^X-TUID: [^\n]*\n", b"", p.read_bytes(), flags=re.M)
        got[message_id_of(data)] = data
    assert set(got) == set(ibulk.stored), f"{client}: not the same messages"
    for mid, data in got.items():
        assert data == ibulk.stored[mid].replace(b"\r\n", b"\n"), f"{client}: {mid} differs"


def mbsync_bytes_out(ibulk):
    """Octets the server sent to the last IMAP session that ended (its
    disconnect log line): how much a sync run transferred."""
    lines = [l for l in ibulk.srv.stderr_text().decode("utf-8", "replace").splitlines()
             if "comp=imap event=disconnect" in l and ibulk.address in l]
    assert lines
    return int(re.search(r"bytes_out=(\d+)", lines[-1]).group(1))


def local_state(mail):
    return sorted(p.name for p in maildir_messages(mail / "INBOX"))


def test_mbsync_two_way_twice(ibulk, tmp_path):
    need("mbsync")
    rc, mail = mbsync_config(ibulk, tmp_path)
    total = sum(len(v) for v in ibulk.stored.values())
    out = mbsync(rc, tmp_path)
    files = maildir_messages(mail / "INBOX")
    assert len(files) == N_MESSAGES, out[-2000:]
    check_unix_maildir(ibulk, files, "mbsync")
    assert mbsync_bytes_out(ibulk) > total
    # the second run transfers nothing: no local change, and the server sent
    # only the UID/FLAGS listing (well under 5% of the mail)
    before = local_state(mail)
    out = mbsync(rc, tmp_path)
    assert local_state(mail) == before, out[-2000:]
    assert mbsync_bytes_out(ibulk) < total // 20, out[-2000:]
    # a flag set locally reaches the server ...
    target = files[10]
    mid = message_id_of(target.read_bytes())
    base, _, flags = target.name.partition(":2,")
    target.rename(target.with_name(f"{base}:2,{''.join(sorted(flags + 'F'))}"))
    # ... one set on the server reaches the local copy ...
    m = ibulk.imaplib()
    m.select("INBOX")
    mid20 = message_id_of(files[20].read_bytes())
    typ, data = m.search(None, "HEADER", "Message-ID", mid20)
    seq20 = data[0].split()[0]
    m.store(seq20, "+FLAGS", r"(\Seen \Answered)")
    # ... and a new message written locally is uploaded
    newmsg = (b"From: me@example.test\r\nTo: you@example.test\r\nSubject: written offline\r\n"
              b"Message-ID: <offline.1@example.test>\r\n\r\nDraft text.\r\n")
    (mail / "INBOX" / "new" / "1700000000.offline.host").write_bytes(newmsg)
    out = mbsync(rc, tmp_path)
    typ, data = m.search(None, "HEADER", "Message-ID", mid)
    typ, data = m.fetch(data[0].split()[0], "(FLAGS)")
    assert b"\\Flagged" in data[0], data
    typ, data = m.search(None, "SUBJECT", '"written offline"')
    assert data[0], "the offline message is not on the server"
    local20 = [p for p in maildir_messages(mail / "INBOX")
               if message_id_of(p.read_bytes()) == mid20]
    assert local20 and local20[0].name.endswith(":2,RS"), [p.name for p in local20]
    # clean up what this test added: other clients see the 1,000 messages
    typ, data = m.search(None, "SUBJECT", '"written offline"')
    m.store(data[0].split()[0], "+FLAGS", r"(\Deleted)")
    m.expunge()
    m.logout()
    out = mbsync(rc, tmp_path)
    assert len(maildir_messages(mail / "INBOX")) == N_MESSAGES, out[-2000:]
    before = local_state(mail)
    out = mbsync(rc, tmp_path)
    assert local_state(mail) == before and mbsync_bytes_out(ibulk) < total // 20


# ---------------------------------------------------------------- offlineimap

def test_offlineimap(ibulk, tmp_path):
    need("offlineimap")
    mail = tmp_path / "mail"
    rc = tmp_path / "offlineimaprc"
    rc.write_text(
        "[general]\n"
        "accounts = roost\n"
        f"metadata = {tmp_path}/meta\n"
        "ui = basic\n"
        "\n"
        "[Account roost]\n"
        "localrepository = local\n"
        "remoterepository = remote\n"
        "\n"
        "[Repository local]\n"
        "type = Maildir\n"
        f"localfolders = {mail}\n"
        "\n"
        "[Repository remote]\n"
        "type = IMAP\n"
        "remotehost = localhost\n"
        f"remoteport = {ibulk.imaps}\n"
        f"remoteuser = {ibulk.address}\n"
        f"remotepass = {ibulk.password}\n"
        "ssl = yes\n"
        f"sslcacertfile = {ibulk.srv.cert}\n"
        "folderfilter = lambda f: f == 'INBOX'\n"
        "readonly = True\n")
    env = dict(os.environ, HOME=str(tmp_path))
    for _ in range(2):
        cp = run(["offlineimap", "-c", str(rc), "-o", "-1"], env=env, timeout=400)
        assert cp.returncode == 0, describe(cp)
        assert b"ERROR" not in cp.stdout + cp.stderr, describe(cp)
    files = maildir_messages(mail / "INBOX")
    assert len(files) == N_MESSAGES
    check_unix_maildir(ibulk, files, "offlineimap")


# ---------------------------------------------------------------- fetchmail

@pytest.mark.parametrize("keep", [True])
def test_fetchmail_imap_keep(ibulk, tmp_path, keep):
    need("fetchmail")
    out = tmp_path / "out"
    out.mkdir()
    rc = tmp_path / "fetchmailrc"
    rc.write_text(
        "set no syslog\n"
        "set invisible\n"
        "set no bouncemail\n"
        f"poll 127.0.0.1 with proto IMAP service {ibulk.imaps} auth password timeout 120\n"
        f'  user "{ibulk.address}" there with password "{ibulk.password}" is "root" here\n'
        "  options ssl no sslcertck keep fetchall no rewrite no stripcr\n"
        f"  mda \"/bin/sh -c 'cat > {out}/msg.$$'\"\n")
    os.chmod(rc, 0o600)
    env = dict(os.environ, HOME=str(tmp_path))
    cp = run(["fetchmail", "-f", str(rc), "--idfile", str(tmp_path / "ids"),
              "--pidfile", str(tmp_path / "fetchmail.pid"), "--nodetach", "-v"],
             env=env, timeout=400)
    assert cp.returncode == 0, describe(cp)
    ibulk.check(read_dir(out), "fetchmail IMAP keep")
    assert ibulk.inbox_count() == N_MESSAGES


N_NO_KEEP = 100


def test_fetchmail_imap_starttls_no_keep(ibulk, tmp_path):
    """fetchmail over 143 with STARTTLS, deleting what it fetched, on an
    account of its own (the shared one keeps its 1,000 messages)."""
    need("fetchmail")
    srv = ibulk.srv
    address, pw = srv.new_account("nokeep")
    msgs = varied_messages(address, N_NO_KEEP)
    deliver_many(srv, address, msgs, threads=2)
    rows = srv.wait_for_message(address, N_NO_KEEP, timeout=120)
    assert len(rows) == N_NO_KEEP
    stored = {message_id_of(data): data for data in srv.export(address).values()}
    out = tmp_path / "out"
    out.mkdir()
    rc = tmp_path / "fetchmailrc"
    rc.write_text(
        "set no syslog\n"
        "set invisible\n"
        "set no bouncemail\n"
        f"poll 127.0.0.1 with proto IMAP service {ibulk.imap} auth password timeout 120\n"
        f'  user "{address}" there with password "{pw}" is "root" here\n'
        "  options sslproto tls1.2+ no sslcertck no keep fetchall no rewrite no stripcr\n"
        f"  mda \"/bin/sh -c 'cat > {out}/msg.$$'\"\n")
    os.chmod(rc, 0o600)
    env = dict(os.environ, HOME=str(tmp_path))
    cp = run(["fetchmail", "-f", str(rc), "--idfile", str(tmp_path / "ids"),
              "--pidfile", str(tmp_path / "fetchmail.pid"), "--nodetach", "-v"],
             env=env, timeout=400)
    assert cp.returncode == 0, describe(cp)
    got = {message_id_of(d): d for d in read_dir(out)}
    assert got == stored
    assert len(srv.mailbox_rows(address)) == 0
