"""TLS on the SMTP listeners: protocol versions, the certificate from the
config, reloading it on SIGHUP (and keeping the old one when the new files
are broken), and the TLS details in the Received: field."""
import signal
import socket
import ssl
import subprocess
import time

import pytest

from conftest import DOMAIN, make_message, split_return_path, wait_until


def make_cert(path_prefix, cn):
    cert, key = f"{path_prefix}.crt", f"{path_prefix}.key"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2",
                    "-subj", f"/CN={cn}", "-keyout", key, "-out", cert],
                   check=True, capture_output=True, timeout=30)
    return cert, key


def peer_cn(port, minimum=None, maximum=None):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    if minimum:
        ctx.minimum_version = minimum
    if maximum:
        ctx.maximum_version = maximum
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        with ctx.wrap_socket(raw) as t:
            der = t.getpeercert(binary_form=True)
            version = t.version()
            banner = t.recv(200)
    pem = ssl.DER_cert_to_PEM_cert(der)
    out = subprocess.run(["openssl", "x509", "-noout", "-subject"], input=pem.encode(),
                         capture_output=True, check=True).stdout.decode()
    return out, version, banner


@pytest.fixture
def tls_server(make_server, tmp_path_factory):
    d = tmp_path_factory.mktemp("certs")
    cert, key = make_cert(str(d / "one"), "one.example.test")
    srv = make_server(extra_config=f"\n[tls]\ncert = {cert}\nkey = {key}\n")
    srv.cert_files = (cert, key)
    srv.cert_dir = d
    return srv


def test_tls12_and_tls13_negotiate_and_old_versions_refused(tls_server):
    _, v13, banner = peer_cn(tls_server.submissions, minimum=ssl.TLSVersion.TLSv1_3)
    assert v13 == "TLSv1.3" and banner.startswith(b"220 ")
    _, v12, banner = peer_cn(tls_server.submissions, maximum=ssl.TLSVersion.TLSv1_2)
    assert v12 == "TLSv1.2" and banner.startswith(b"220 ")
    # TLS 1.1 is refused by the server (minimum 1.2). The local OpenSSL may
    # refuse to offer it at all; either way no session comes up.
    with pytest.raises((ssl.SSLError, ConnectionResetError, OSError)):
        peer_cn(tls_server.submissions, minimum=ssl.TLSVersion.TLSv1,
                maximum=ssl.TLSVersion.TLSv1_1)
    # the server is still fine
    _, v, _ = peer_cn(tls_server.submissions)
    assert v in ("TLSv1.2", "TLSv1.3")


def test_configured_certificate_is_served_and_reloaded_on_sighup(tls_server):
    subj, _, _ = peer_cn(tls_server.submissions)
    assert "one.example.test" in subj
    cert, key = tls_server.cert_files
    new_cert, new_key = make_cert(str(tls_server.cert_dir / "two"), "two.example.test")
    # replace the files in place, as certbot's renewal does
    with open(new_cert, "rb") as f:
        data = f.read()
    with open(cert, "wb") as f:
        f.write(data)
    with open(new_key, "rb") as f:
        data = f.read()
    with open(key, "wb") as f:
        f.write(data)
    tls_server.proc.send_signal(signal.SIGHUP)

    def reloaded():
        return "two.example.test" in peer_cn(tls_server.submissions)[0]
    wait_until(reloaded, 10, what="new certificate after SIGHUP")
    assert b"event=tls-reloaded" in tls_server.stderr_text()

    # A broken certificate file: the reload fails, the old certificate stays.
    with open(cert, "w") as f:
        f.write("not a certificate\n")
    tls_server.proc.send_signal(signal.SIGHUP)
    wait_until(lambda: b"event=tls-reload-failed" in tls_server.stderr_text(), 10,
               what="reload failure logged")
    subj, _, _ = peer_cn(tls_server.submissions)
    assert "two.example.test" in subj
    assert tls_server.running()


def test_received_field_names_tls_version_and_authenticated_protocol(tls_server):
    address, pw = tls_server.new_account("tlsrcv")
    c = tls_server.submit_session(address, pw, which="submissions")
    with c:
        r = c.mail_transaction(address, [address], make_message(address, address))
        assert r.code == 250
    return_path, stored = split_return_path(tls_server.fetch_one(address))
    assert return_path == address
    head = stored.split(b"\r\n\r\n", 1)[0]
    first = head.split(b"\r\n")[0]
    assert first.startswith(b"Received: from client.example.net ([127.0.0.1])")
    assert b"with ESMTPSA id " in head
    assert b"(version=TLSv1.3 cipher=" in head or b"(version=TLSv1.2 cipher=" in head
    assert f"for <{address}>".encode() in head
