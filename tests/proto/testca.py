"""A throwaway certificate authority for protocol tests (python3-cryptography).

test_dane.py and test_mta_sts.py give their servers certificates from it:
make_ca() makes the CA, issue() a leaf for some DNS names, written as a
chain file (leaf, then CA) and a key file (0600)."""
import datetime
import os

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

VALID_DAYS = 30


def _validity(builder):
    now = datetime.datetime.now(datetime.timezone.utc)
    return (builder.serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=VALID_DAYS)))


def make_ca(common_name):
    """(CA certificate, CA key): P-256, self-signed, may sign certificates."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    cert = (_validity(x509.CertificateBuilder().subject_name(name).issuer_name(name)
                      .public_key(key.public_key()))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False,
                                         key_encipherment=False, data_encipherment=False,
                                         key_agreement=False, key_cert_sign=True, crl_sign=True,
                                         encipher_only=False, decipher_only=False),
                           critical=True)
            .sign(key, hashes.SHA256()))
    return cert, key


def write_pem(cert, path):
    with open(path, "wb") as f:
        f.write(cert.public_bytes(serialization.Encoding.PEM))
    return path


def issue(ca, ca_key, names, directory, stem):
    """A leaf for NAMES (the first is also the CN) signed by CA: returns
    (chain file, key file, leaf key) under DIRECTORY/STEM-*.pem."""
    key = ec.generate_private_key(ec.SECP256R1())
    leaf = (_validity(x509.CertificateBuilder()
                      .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME,
                                                                  names[0])]))
                      .issuer_name(ca.subject).public_key(key.public_key()))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in names]),
                           critical=False)
            .sign(ca_key, hashes.SHA256()))
    chain = os.path.join(directory, f"{stem}-chain.pem")
    keyfile = os.path.join(directory, f"{stem}-key.pem")
    with open(chain, "wb") as f:
        f.write(leaf.public_bytes(serialization.Encoding.PEM))
        f.write(ca.public_bytes(serialization.Encoding.PEM))
    with open(keyfile, "wb") as f:
        f.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption()))
    os.chmod(keyfile, 0o600)
    return chain, keyfile, key


def spki_der(owner):
    """The DER SubjectPublicKeyInfo (what TLSA selector 1 hashes) of OWNER's
    public key: OWNER is a private key or a certificate."""
    return owner.public_key().public_bytes(serialization.Encoding.DER,
                                         serialization.PublicFormat.SubjectPublicKeyInfo)
