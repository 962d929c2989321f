"""kill -9 in the middle of a load: every message that got a 250 is
delivered exactly once after a restart, and nothing is duplicated."""
import re
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from conftest import SMTP, dot_stuff, make_message, QUEUE_ID_RE, unique

THREADS = 20
PER_THREAD = 25          # upper bound of messages per client
KILL_AFTER_ACKS = 60     # kill once this many messages were acknowledged...
KILL_AFTER_SECONDS = 15  # ...or after this long, whichever comes first
DRAIN_TIMEOUT = 120
SENDER = "load@remote.test"


def msgid_of(raw):
    m = re.search(rb"^Message-ID:\s*(<[^>\r\n]+>)", raw, re.M | re.I)
    return m.group(1).decode() if m else None


def test_kill9_mid_load(make_server):
    srv = make_server()
    rcpt, _ = srv.new_account("crash")
    acked = {}        # Message-ID -> queue id
    sent_any = set()  # every Message-ID whose final dot was sent
    lock = threading.Lock()
    errors = []
    stop = threading.Event()
    first_ack = threading.Event()

    def worker(n):
        try:
            c = SMTP(srv.smtp, timeout=15)
            r = c.ehlo(f"load{n}.example.net")
            if r.code != 250:
                return
        except Exception:
            return
        try:
            for i in range(PER_THREAD):
                if stop.is_set():
                    return
                mid = f"<{unique(f't{n}m{i}')}@load.example.net>"
                msg = make_message(SENDER, rcpt, subject=f"load {n}/{i}", msgid=mid,
                                   body=f"message {i} from client {n}\r\n.dot line\r\n"
                                        + "x" * (n * 37 % 400) + "\r\n")
                try:
                    r = c.cmd(f"MAIL FROM:<{SENDER}>")
                    if r.code != 250:
                        errors.append(f"MAIL: {r.text}")
                        return
                    r = c.cmd(f"RCPT TO:<{rcpt}>")
                    if r.code != 250:
                        errors.append(f"RCPT: {r.text}")
                        return
                    r = c.cmd("DATA")
                    if r.code != 354:
                        errors.append(f"DATA: {r.text}")
                        return
                    with lock:
                        sent_any.add(mid)
                    c.send(dot_stuff(msg))
                    r = c.reply()
                except Exception:
                    return  # the server went away
                m = QUEUE_ID_RE.match(r.last)
                if r.code != 250 or not m:
                    errors.append(f"end of data: {r.text}")
                    return
                with lock:
                    acked[mid] = m.group(1)
                first_ack.set()
        finally:
            c.close()

    threads = [threading.Thread(target=worker, args=(n,), daemon=True) for n in range(THREADS)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + KILL_AFTER_SECONDS
    while time.monotonic() < deadline:
        with lock:
            if len(acked) >= KILL_AFTER_ACKS:
                break
        if not any(t.is_alive() for t in threads):
            break
        time.sleep(0.02)
    srv.kill9()
    stop.set()
    for t in threads:
        t.join(30)
    assert not any(t.is_alive() for t in threads), "client threads did not finish"
    assert not errors, f"unexpected replies under load: {errors[:5]}"
    assert acked, "no message was acknowledged before the kill"
    n_acked = len(acked)

    srv.start()
    # every acknowledged queue id leaves the queue and shows up in the mailbox
    want_qids = set(acked.values())
    assert len(want_qids) == n_acked, "the same queue id was given to two messages"
    deadline = time.monotonic() + DRAIN_TIMEOUT
    rows, stable_since, last_count = [], None, -1
    while True:
        rows = srv.mailbox_rows(rcpt)
        queue = srv.queue_list()
        have = {r["qid"] for r in rows}
        drained = want_qids <= have and not any(q in queue for q in want_qids)
        if len(rows) != last_count:
            last_count, stable_since = len(rows), time.monotonic()
        if drained and time.monotonic() - stable_since > 2.0:
            break
        if time.monotonic() > deadline:
            missing = want_qids - have
            raise AssertionError(
                f"after {DRAIN_TIMEOUT}s: {len(missing)} of {n_acked} acknowledged messages "
                f"not in the mailbox (e.g. {sorted(missing)[:5]}); mailbox has {len(rows)}; "
                f"queue list:\n{queue[-2000:]}")
        time.sleep(0.5)

    qids = [r["qid"] for r in rows]
    dup_q = {q for q in qids if qids.count(q) > 1}
    assert not dup_q, f"queue ids delivered more than once: {sorted(dup_q)[:10]}"

    with ThreadPoolExecutor(4) as ex:
        raws = list(ex.map(lambda r: srv.cat(rcpt, r["uid"]), rows))
    mids = [msgid_of(raw) for raw in raws]
    assert None not in mids, "a stored message has no Message-ID"
    seen = {}
    for m in mids:
        seen[m] = seen.get(m, 0) + 1
    dups = {m: k for m, k in seen.items() if k > 1}
    assert not dups, f"messages stored more than once: {list(dups.items())[:10]}"
    missing = set(acked) - set(seen)
    assert not missing, (f"{len(missing)} of {n_acked} acknowledged messages lost after kill -9: "
                         f"{sorted(missing)[:5]}")
    unknown = set(seen) - sent_any
    assert not unknown, f"messages in the mailbox that were never sent: {sorted(unknown)[:5]}"
    # each acknowledged message is stored under the queue id of its 250
    for row, mid in zip(rows, mids):
        if mid in acked:
            assert row["qid"] == acked[mid], f"{mid}: mailbox qid {row['qid']} != {acked[mid]}"
    print(f"kill -9 after {n_acked} acknowledged; mailbox holds {len(rows)} "
          f"({len(sent_any)} had their final dot sent)")
