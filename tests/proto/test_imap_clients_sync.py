"""Real IMAP clients nobody here wrote, against a real `roost serve` (the
h/tests counterpart of test_imap_clients.py, with its own account and
checks: mbsync's protocol trace, X-TUID, fetchmail over both ports):

- mbsync (isync): two-way sync of a 1,000-message account into a Maildir,
  run twice (the second run transfers nothing: its own counters and its
  protocol trace say so, and no local file changes); a flag set locally
  reaches the server, a flag set on the server reaches the local copy, a
  message created locally is uploaded.
- offlineimap (offlineimap3): one-shot sync of the INBOX into a Maildir.
- curl: imap:// with --ssl-reqd (STARTTLS on 143) and imaps:// (993):
  LIST, a message fetched by UID, SEARCH.
- fetchmail: protocol IMAP over 993 (ssl) and 143 (STARTTLS), keep and
  no keep, into an MDA that writes one file per message.

Every downloaded message is compared byte for byte with what the server
stores (the SMTP data plus the server's Received: field; clients that
store Maildir files with LF line ends are compared after the same
conversion).  Config files live in the test's tmp dir, clients run with
timeouts, stdin closed and HOME pointed at a tmp dir."""
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from conftest import (CRLF, DOMAIN, IMAP_LISTENERS, RoostServer, _finish, assert_stored_exactly,
                      deliver_bulk, imap_login, make_message, message_id_of)
from test_pop3_clients import varied_messages

N_MESSAGES = 1000
BIG_AT = 500
CLIENT_TIMEOUT = 300


def need(tool):
    assert shutil.which(tool), f"{tool} is not installed: run scripts/install-deps"


def run(cmd, home, timeout=CLIENT_TIMEOUT, extra_env=None):
    env = dict(os.environ, HOME=str(home), FETCHMAILHOME=str(home), LC_ALL="C.UTF-8")
    env.pop("MAILDIR", None)
    if extra_env:
        env.update(extra_env)
    return subprocess.run([str(c) for c in cmd], stdin=subprocess.DEVNULL,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout,
                          env=env, cwd=str(home))


def describe(cp):
    return (f"{cp.args!r} exited {cp.returncode}\nstdout:\n"
            f"{cp.stdout.decode('utf-8', 'replace')[-3000:]}\nstderr:\n"
            f"{cp.stderr.decode('utf-8', 'replace')[-3000:]}")


def lf(data):
    return data.replace(CRLF, b"\n")


class Account:
    def __init__(self, srv, address, password, stored):
        self.srv = srv
        self.address = address
        self.password = password
        self.stored = stored          # Message-ID -> bytes as the server stores them

    @property
    def imap(self):
        return self.srv.ports["imap"]

    @property
    def imaps(self):
        return self.srv.ports["imaps"]

    def check(self, got, client, convert=lambda b: b, expect=None):
        """got: downloaded messages (bytes).  Each must equal the stored
        message (after convert), every message exactly once."""
        want = {k: convert(v) for k, v in self.stored.items()}
        if expect is not None:
            want = {k: want[k] for k in expect}
        seen = {}
        problems = []
        for data in got:
            mid = message_id_of(data)
            if mid in seen:
                problems.append(f"{mid} twice")
            seen[mid] = data
        if set(seen) != set(want):
            problems.append(f"missing {len(set(want) - set(seen))}, unknown "
                            f"{sorted(set(seen) - set(want))[:3]}")
        for mid, data in seen.items():
            if mid in want and data != want[mid]:
                w = want[mid]
                i = next((k for k in range(min(len(data), len(w))) if data[k] != w[k]),
                         min(len(data), len(w)))
                problems.append(f"{mid} differs at byte {i}: got {data[max(0, i - 40):i + 40]!r}"
                                f" stored {w[max(0, i - 40):i + 40]!r}")
        assert not problems, f"{client}: " + "\n".join(problems[:10])


@pytest.fixture(scope="module")
def acct(roost_binary):
    srv = RoostServer(listeners=IMAP_LISTENERS)
    try:
        srv.start()
        srv.ensure_domain(DOMAIN)
        address, pw = srv.new_account("clients")
        # dot lines, 8-bit UTF-8, long and folded lines, "From " lines,
        # empty bodies, MIME, one message of 1 MiB (test_pop3_clients)
        msgs = varied_messages(address, N_MESSAGES, big_at=BIG_AT)
        deliver_bulk(srv, address, msgs)
        rows = srv.wait_for_message(address, N_MESSAGES, timeout=120)
        assert len(rows) == N_MESSAGES
        sent = {message_id_of(m): m for m in msgs}
        # what the server stores: over IMAP once, each checked to be the
        # Received: field plus exactly the bytes sent; a sample via the CLI
        m = imap_login(srv, address, pw)
        m.select("INBOX", readonly=True)
        typ, data = m.fetch("1:*", "(BODY.PEEK[])")
        m.logout()
        stored = {}
        for d in data:
            if isinstance(d, tuple):
                stored[message_id_of(d[1])] = d[1]
        assert set(stored) == set(sent), "FETCH 1:* BODY[] does not return every message"
        for mid, b in stored.items():
            assert_stored_exactly(b, sent[mid])
        for r in rows[::250]:
            b = srv.cat(address, r["uid"])
            assert stored[message_id_of(b)] == b, "IMAP BODY[] differs from `mailbox cat`"
    except BaseException:
        _finish(srv)
        raise
    yield Account(srv, address, pw, stored)
    _finish(srv)


def server_flags(acct, mailbox="INBOX"):
    """{Message-ID: set(flags)} over imaplib."""
    m = imap_login(acct.srv, acct.address, acct.password)
    m.select(mailbox, readonly=True)
    typ, data = m.fetch("1:*", "(FLAGS BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)])")
    m.logout()
    out = {}
    for d in data:
        if isinstance(d, tuple):
            f = re.search(rb"FLAGS \(([^)]*)\)", d[0])
            out[message_id_of(d[1])] = set(f.group(1).decode().split()) if f else None
        elif d and d != b")" and b"FLAGS" in d:
            pass
    return out


# ---------------------------------------------------------------- mbsync

def maildir_files(md):
    out = {}
    for sub in ("cur", "new"):
        d = Path(md) / sub
        if d.is_dir():
            for p in d.iterdir():
                out[p.name] = p
    return out


def no_tuid(data):
    return re.sub(rb"(?im)^X-TUID: [^\r\n]*\r?\n", b"", data, count=1)


def mbsync_config(tmp, acct):
    md = tmp / "mail"
    md.mkdir(exist_ok=True)
    cfg = tmp / "mbsyncrc"
    cfg.write_text(
        "IMAPAccount roost\n"
        "Host localhost\n"   # the certificate names it (mbsync checks DNS names only)
        f"Port {acct.imaps}\n"
        f"User {acct.address}\n"
        f"Pass {acct.password}\n"
        "SSLType IMAPS\n"
        f"CertificateFile {acct.srv.cert}\n"
        "PipelineDepth 50\n"
        "\n"
        "IMAPStore remote\n"
        "Account roost\n"
        "\n"
        "MaildirStore local\n"
        f"Path {md}/\n"
        f"Inbox {md}/INBOX\n"
        "SubFolders Verbatim\n"
        "\n"
        "Channel roost\n"
        "Far :remote:\n"
        "Near :local:\n"
        "Patterns INBOX\n"
        "Create Both\n"
        "Expunge Both\n"
        f"SyncState {tmp}/state/\n"
        "Sync All\n")
    (tmp / "state").mkdir(exist_ok=True)
    os.chmod(cfg, 0o600)
    return cfg, md / "INBOX"


def mbsync(tmp, cfg, trace=False):
    need("mbsync")
    cmd = ["mbsync", "-c", cfg, "-V"] + (["-Dn"] if trace else []) + ["roost"]
    cp = run(cmd, tmp)
    assert cp.returncode == 0, describe(cp)
    return cp, (cp.stdout + cp.stderr).decode("utf-8", "replace")


def mbsync_counters(out):
    """'Near: +N *N #N -N' / 'Far: +N *N #N -N' (new, flag updates,
    trashed, expunged) when this mbsync prints them (isync 1.4 does so
    only on a terminal): (None, None) otherwise, and the protocol trace
    (-Dn) is the proof."""
    near = re.findall(r"Near: \+(\d+) \*(\d+) #(\d+) -(\d+)", out)
    far = re.findall(r"Far: \+(\d+) \*(\d+) #(\d+) -(\d+)", out)
    return ([tuple(map(int, x)) for x in near][-1:] or [None])[0], \
        ([tuple(map(int, x)) for x in far][-1:] or [None])[0]


def test_mbsync_two_way(acct, tmp_path):
    cfg, inbox = mbsync_config(tmp_path, acct)
    cp, out = mbsync(tmp_path, cfg)
    files = maildir_files(inbox)
    assert len(files) == N_MESSAGES, f"{len(files)} files after the first run\n{out[-2000:]}"
    # mbsync writes LF line ends and adds its own X-TUID: field (isync
    # tracks messages in flight with it); nothing else may differ
    acct.check([no_tuid(p.read_bytes()) for p in files.values()], "mbsync", convert=lf)
    near, far = mbsync_counters(out)
    if near is not None:
        assert near[0] == N_MESSAGES, f"first run: Near {near}\n{out[-1500:]}"

    # the second run transfers nothing
    before = {n: (p.stat().st_ino, p.stat().st_mtime_ns) for n, p in files.items()}
    cp, out2 = mbsync(tmp_path, cfg, trace=True)
    near, far = mbsync_counters(out2)
    if near is not None:
        assert near == (0, 0, 0, 0) and far == (0, 0, 0, 0), f"second run: {near} {far}"
    assert "FETCH" in out2, f"no protocol trace from mbsync -Dn:\n{out2[-1500:]}"
    fetched_bodies = re.findall(r"(?i)(BODY\.PEEK\[\]|BODY\[\]|RFC822[^.]|BINARY\.PEEK\[\])", out2)
    assert not fetched_bodies, f"second run downloaded messages again:\n{out2[-3000:]}"
    assert not re.search(r"(?i)\bAPPEND\b", out2), f"second run uploaded:\n{out2[-3000:]}"
    after = {n: (p.stat().st_ino, p.stat().st_mtime_ns)
             for n, p in maildir_files(inbox).items()}
    assert after == before, "the second run changed local files"

    # a flag set locally (Maildir info ":2,F") reaches the server
    by_mid = {message_id_of(p.read_bytes()): p for p in maildir_files(inbox).values()}
    local_mid = sorted(by_mid)[10]
    p = by_mid[local_mid]
    base, _, info = p.name.partition(":2,")
    newname = p.parent.parent / "cur" / (base + ":2," + "".join(sorted(set(info + "F"))))
    p.rename(newname)
    # and a flag set on the server reaches the local copy
    remote_mid = sorted(by_mid)[20]
    m = imap_login(acct.srv, acct.address, acct.password)
    m.select("INBOX")
    typ, data = m.search(None, "HEADER", "Message-ID", f'"{remote_mid}"')
    seq = data[0].split()
    assert len(seq) == 1, data
    assert m.store(seq[0].decode(), "+FLAGS", "(\\Seen \\Answered)")[0] == "OK"
    m.logout()
    # and a message written locally is uploaded
    new_msg = make_message("me@remote.test", acct.address, subject="written locally",
                           body="Composed offline.\r\n")
    new_mid = message_id_of(new_msg)
    (inbox / "new" / "1700000000.local.roosttest").write_bytes(lf(new_msg))

    cp, out3 = mbsync(tmp_path, cfg)
    flags = server_flags(acct)
    assert "\\Flagged" in flags[local_mid], f"local flag not on the server: {flags[local_mid]}"
    assert new_mid in flags, f"the local message was not uploaded\n{out3[-2000:]}"
    local = {message_id_of(q.read_bytes()): q for q in maildir_files(inbox).values()}
    info = local[remote_mid].name.partition(":2,")[2]
    assert "S" in info and "R" in info, f"server flags not local: {local[remote_mid].name}"
    assert len(local) == N_MESSAGES + 1
    # the uploaded message is on the server byte for byte (CRLF)
    m = imap_login(acct.srv, acct.address, acct.password)
    m.select("INBOX", readonly=True)
    typ, data = m.search(None, "HEADER", "Message-ID", f'"{new_mid}"')
    typ, data = m.fetch(data[0].split()[0].decode(), "(BODY.PEEK[])")
    m.logout()
    up = data[0][1]
    assert up.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n") == up, "bare LF stored"
    # mbsync may add an X-TUID: field while uploading; the rest is intact
    assert no_tuid(up) == new_msg, up[:400]
    # cleanup of the shared account: the uploaded message goes
    m = imap_login(acct.srv, acct.address, acct.password)
    m.select("INBOX")
    typ, data = m.search(None, "HEADER", "Message-ID", f'"{new_mid}"')
    m.store(data[0].split()[0].decode(), "+FLAGS", "(\\Deleted)")
    m.expunge()
    m.store("1:*", "-FLAGS", "(\\Seen \\Answered \\Flagged)")
    m.logout()


# ---------------------------------------------------------------- offlineimap

def test_offlineimap(acct, tmp_path):
    need("offlineimap")
    local = tmp_path / "oimap"
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
        f"localfolders = {local}\n"
        "\n"
        "[Repository remote]\n"
        "type = IMAP\n"
        "remotehost = localhost\n"   # a DNS name of the certificate
        f"remoteport = {acct.imaps}\n"
        f"remoteuser = {acct.address}\n"
        f"remotepass = {acct.password}\n"
        "ssl = yes\n"
        f"sslcacertfile = {acct.srv.cert}\n"
        "folderfilter = lambda f: f == 'INBOX'\n"
        "readonly = True\n"
        "maxconnections = 2\n")
    cp = run(["offlineimap", "-c", rc, "-o", "-u", "basic"], tmp_path)
    assert cp.returncode == 0, describe(cp)
    files = [p for p in (local / "INBOX").rglob("*") if p.is_file() and p.parent.name in
             ("cur", "new")]
    assert len(files) == N_MESSAGES, f"{len(files)} files; {describe(cp)}"
    got = [p.read_bytes() for p in files]
    crlf = all(b"\r\n" in g for g in got)
    acct.check(got, "offlineimap", convert=(lambda b: b) if crlf else lf)
    # once more: nothing new
    cp = run(["offlineimap", "-c", rc, "-o", "-u", "basic"], tmp_path)
    assert cp.returncode == 0, describe(cp)
    files2 = [p for p in (local / "INBOX").rglob("*") if p.is_file() and p.parent.name in
              ("cur", "new")]
    assert len(files2) == N_MESSAGES


# ---------------------------------------------------------------- curl

def curl(acct, tmp_path, scheme, path="", extra=()):
    need("curl")
    port = acct.imap if scheme == "imap" else acct.imaps
    cmd = ["curl", "-sS", "--max-time", "120", "--cacert", acct.srv.cert,
           "-u", f"{acct.address}:{acct.password}"]
    if scheme == "imap":
        cmd.append("--ssl-reqd")
    cmd += list(extra) + [f"{scheme}://127.0.0.1:{port}/{path}"]
    cp = run(cmd, tmp_path)
    assert cp.returncode == 0, describe(cp)
    return cp.stdout


@pytest.mark.parametrize("scheme", ["imap", "imaps"])
def test_curl(acct, tmp_path, scheme):
    out = curl(acct, tmp_path, scheme)
    names = [l.rsplit(" ", 1)[-1].strip('"') for l in out.decode().splitlines()]
    assert "INBOX" in names and "Sent" in names, out
    rows = acct.srv.mailbox_rows(acct.address)
    for r in (rows[0], rows[499], rows[-1]):
        body = curl(acct, tmp_path, scheme, f"INBOX;UID={r['uid']}")
        want = acct.srv.cat(acct.address, r["uid"])
        assert body == want, f"curl {scheme} UID {r['uid']}: {body[:200]!r}"
    out = curl(acct, tmp_path, scheme, "INBOX?SUBJECT%20%22download%20999%22")
    assert re.fullmatch(rb"\* SEARCH \d+\r?\n", out), out
    seq = int(out.split()[2])
    out = curl(acct, tmp_path, scheme, "INBOX", ["-X", "UID SEARCH ALL"])
    uids = [int(x) for x in out.split()[2:]]
    assert uids == [r["uid"] for r in rows], "UID SEARCH ALL over curl"
    assert 1 <= seq <= N_MESSAGES


def test_curl_imap_without_tls_cannot_log_in(acct, tmp_path):
    need("curl")
    cp = run(["curl", "-sS", "--max-time", "60", "-u", f"{acct.address}:{acct.password}",
              f"imap://127.0.0.1:{acct.imap}/INBOX;UID=1"], tmp_path)
    assert cp.returncode != 0, describe(cp)
    assert b"Received:" not in cp.stdout


# ---------------------------------------------------------------- fetchmail

def fetchmail(acct, tmp_path, tls, keep, limit=None):
    need("fetchmail")
    out = tmp_path / "out"
    out.mkdir(exist_ok=True)
    if tls == "ssl":
        port, tlsopt = acct.imaps, "ssl"
    else:
        port, tlsopt = acct.imap, "sslproto tls1.2+"
    rc = tmp_path / "fetchmailrc"
    rc.write_text(
        "set no syslog\n"
        "set invisible\n"
        "set no bouncemail\n"
        f"poll localhost with proto IMAP service {port} auth password timeout 120\n"
        f'  user "{acct.address}" there with password "{acct.password}" is "root" here\n'
        f"  options {tlsopt} sslcertck sslcertfile \"{acct.srv.cert}\" "
        f"{'keep' if keep else 'no keep'} fetchall no rewrite no stripcr\n"
        + (f"  fetchlimit {limit}\n" if limit else "") +
        f"  mda \"/bin/sh -c 'cat > {out}/msg.$$'\"\n")
    os.chmod(rc, 0o600)
    cp = run(["fetchmail", "-f", rc, "--idfile", tmp_path / "ids", "--pidfile",
              tmp_path / "fetchmail.pid", "--nodetach", "-v"],
             tmp_path)
    return cp, [p.read_bytes() for p in sorted(out.iterdir())]


@pytest.mark.parametrize("tls", ["ssl", "starttls"])
def test_fetchmail_keep(acct, tmp_path, tls):
    cp, got = fetchmail(acct, tmp_path, tls, keep=True)
    assert cp.returncode == 0, describe(cp)
    if tls == "starttls":
        assert b"STARTTLS" in cp.stdout + cp.stderr, describe(cp)
    acct.check(got, f"fetchmail IMAP keep ({tls})")
    assert len(acct.srv.mailbox_rows(acct.address)) == N_MESSAGES


def test_fetchmail_no_keep_last(acct, tmp_path):
    """Runs last in this module: fetchmail downloads and deletes (STORE
    \\Deleted + EXPUNGE); the INBOX is then empty."""
    assert len(acct.srv.mailbox_rows(acct.address)) == N_MESSAGES
    cp, got = fetchmail(acct, tmp_path, "ssl", keep=False)
    assert cp.returncode == 0, describe(cp)
    acct.check(got, "fetchmail IMAP no keep")
    assert acct.srv.mailbox_rows(acct.address) == [], "fetchmail no keep left messages"
    again = tmp_path / "again"
    again.mkdir()
    cp, got = fetchmail(acct, again, "starttls", keep=False)
    assert got == [] and cp.returncode == 1, describe(cp)
