"""A small authoritative DNS server with DNSSEC, for test_dane.py.

Zones are built in memory from a few records and, when signed, signed at
start with a fresh ECDSA P-256 key (algorithm 13) through dnspython: every
RRset gets an RRSIG, the zone an NSEC chain, so that libunbound can validate
answers, NODATA and NXDOMAIN alike, down from a trust anchor (the zone's DS,
written by trust_anchor_file()). Unsigned zones are served as they are
(insecure: no trust anchor covers them).

Ways to make a zone bogus, for the negative tests: expired=True signs every
RRset with signatures that expired yesterday; bad_sigs={(name, type)} signs
those RRsets with another key, one that is not in the zone's DNSKEY set.

The server answers on 127.0.0.1 (a free port) over UDP and TCP from daemon
threads; stop() closes the sockets. Roost's [outbound] resolver points at it
(libunbound forwards to it, asking with the DO bit)."""
import socket
import struct
import threading
import time

import dns.dnssec
import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rrset
from cryptography.hazmat.primitives.asymmetric import ec

IN = dns.rdataclass.IN
TTL = 300


class Zone:
    def __init__(self, origin, records, signed=True, expired=False, bad_sigs=()):
        """RECORDS: (owner, type, rdata text) with owners relative to
        ORIGIN ("@" for the apex) or absolute (ending in ".")."""
        self.origin = dns.name.from_text(origin)
        self.signed = signed
        self.rrsets = {}            # name -> {rdtype: RRset}
        self.sigs = {}              # (name, rdtype) -> RRset of RRSIG
        self._add("@", "SOA", f"ns.{origin} hostmaster.{origin} 1 3600 600 86400 {TTL}")
        self._add("@", "NS", f"ns.{origin}")
        for owner, rtype, text in records:
            self._add(owner, rtype, text)
        self.key = self.dnskey = None
        if signed:
            self.key = ec.generate_private_key(ec.SECP256R1())
            self.dnskey = dns.dnssec.make_dnskey(self.key.public_key(),
                                                 dns.dnssec.Algorithm.ECDSAP256SHA256,
                                                 flags=257)
            rr = dns.rrset.RRset(self.origin, IN, dns.rdatatype.DNSKEY)
            rr.update_ttl(TTL)
            rr.add(self.dnskey)
            self.rrsets[self.origin][dns.rdatatype.DNSKEY] = rr
            self._nsec_chain()
            self._sign(expired, {(self._name(n), dns.rdatatype.from_text(t))
                                 for n, t in bad_sigs})
        self.names = sorted(self.rrsets)

    def _name(self, owner):
        if owner == "@":
            return self.origin
        return dns.name.from_text(owner, self.origin)

    def _add(self, owner, rtype, text):
        name = self._name(owner)
        rdtype = dns.rdatatype.from_text(rtype)
        node = self.rrsets.setdefault(name, {})
        rr = node.get(rdtype)
        if rr is None:
            rr = node[rdtype] = dns.rrset.RRset(name, IN, rdtype)
            rr.update_ttl(TTL)
        rr.add(dns.rdata.from_text(IN, rdtype, text, origin=self.origin, relativize=False))

    def _nsec_chain(self):
        names = sorted(self.rrsets)
        for i, name in enumerate(names):
            nxt = names[(i + 1) % len(names)]
            types = sorted(set(self.rrsets[name]) | {dns.rdatatype.RRSIG, dns.rdatatype.NSEC})
            text = nxt.to_text() + " " + " ".join(dns.rdatatype.to_text(t) for t in types)
            rr = dns.rrset.RRset(name, IN, dns.rdatatype.NSEC)
            rr.update_ttl(TTL)
            rr.add(dns.rdata.from_text(IN, dns.rdatatype.NSEC, text))
            self.rrsets[name][dns.rdatatype.NSEC] = rr

    def _sign(self, expired, bad):
        now = int(time.time())
        inception, expiration = (now - 2 * 86400, now - 86400) if expired else (now - 3600, now + 86400)
        other = ec.generate_private_key(ec.SECP256R1())
        other_key = dns.dnssec.make_dnskey(other.public_key(),
                                           dns.dnssec.Algorithm.ECDSAP256SHA256, flags=256)
        for name, node in self.rrsets.items():
            for rdtype, rr in node.items():
                key, dnskey = (other, other_key) if (name, rdtype) in bad else (self.key, self.dnskey)
                sig = dns.dnssec.sign(rr, key, self.origin, dnskey, inception=inception,
                                      expiration=expiration)
                srr = dns.rrset.RRset(name, IN, dns.rdatatype.RRSIG, rdtype)
                srr.update_ttl(TTL)
                srr.add(sig)
                self.sigs[(name, rdtype)] = srr

    def ds_text(self):
        ds = dns.dnssec.make_ds(self.origin, self.dnskey, "SHA256")
        return f"{self.origin.to_text()} {TTL} IN DS {ds.to_text()}"

    # -- answering
    def _with_sig(self, section, rr, do):
        section.append(rr)
        if do and self.signed:
            section.append(self.sigs[(rr.name, rr.rdtype)])

    def _covering(self, name):
        """The owner of the NSEC that covers NAME (the last owner before it)."""
        prev = self.names[-1]
        for n in self.names:
            if n < name:
                prev = n
            else:
                break
        return prev

    def _exists(self, name):
        """NAME owns records, or is an empty non-terminal."""
        return name in self.rrsets or any(n.is_subdomain(name) for n in self.names)

    def answer(self, q, r, do):
        qname, qtype = q.question[0].name, q.question[0].rdtype
        r.flags |= dns.flags.AA
        node = self.rrsets.get(qname)
        soa = self.rrsets[self.origin][dns.rdatatype.SOA]
        if node and qtype in node:
            self._with_sig(r.answer, node[qtype], do)
            return
        if node and dns.rdatatype.CNAME in node:
            self._with_sig(r.answer, node[dns.rdatatype.CNAME], do)
            return
        self._with_sig(r.authority, soa, do)
        owners = []
        if node:                                    # NODATA
            owners.append(qname)
        elif self._exists(qname):                   # an empty non-terminal: NODATA
            owners.append(self._covering(qname))
        else:                                       # NXDOMAIN: the name and the wildcard
            r.set_rcode(dns.rcode.NXDOMAIN)
            ce = qname.parent()
            while not self._exists(ce):
                ce = ce.parent()
            owners.append(self._covering(qname))
            wild = dns.name.Name((b"*",) + ce.labels)
            if self._covering(wild) not in owners:
                owners.append(self._covering(wild))
        if do and self.signed:
            for o in owners:
                self._with_sig(r.authority, self.rrsets[o][dns.rdatatype.NSEC], do)


class SignedDNS:
    """The server for ZONES on 127.0.0.1, UDP and TCP on one free port."""

    def __init__(self, zones):
        self.zones = zones
        self.queries = []
        self.lock = threading.Lock()
        self.udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.udp.bind(("127.0.0.1", 0))
        self.port = self.udp.getsockname()[1]
        self.tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.tcp.bind(("127.0.0.1", self.port))
        self.tcp.listen(16)
        self.udp.settimeout(0.2)
        self.tcp.settimeout(0.2)
        self.stopping = False
        self.threads = [threading.Thread(target=self._serve_udp, daemon=True),
                        threading.Thread(target=self._serve_tcp, daemon=True)]
        for t in self.threads:
            t.start()

    def trust_anchor_file(self, path):
        """Writes the DS records of the signed zones (a libunbound trust
        anchor file) to PATH."""
        lines = [z.ds_text() for z in self.zones if z.signed]
        with open(path, "w") as f:
            f.write("\n".join(lines) + "\n")
        return path

    def _response(self, wire, max_size):
        try:
            q = dns.message.from_wire(wire)
        except Exception:
            return None
        r = dns.message.make_response(q)
        if len(q.question) != 1:
            r.set_rcode(dns.rcode.FORMERR)
            return r.to_wire()
        do = bool(q.ednsflags & dns.flags.DO)
        if do:
            r.want_dnssec(True)
        qname = q.question[0].name
        with self.lock:
            self.queries.append((qname.to_text(), dns.rdatatype.to_text(q.question[0].rdtype)))
        zone = max((z for z in self.zones if qname.is_subdomain(z.origin)),
                   key=lambda z: len(z.origin), default=None)
        if zone is None:
            r.set_rcode(dns.rcode.REFUSED)
        else:
            zone.answer(q, r, do)
        if q.edns >= 0:
            max_size = max(512, min(q.payload, 4096)) if max_size else None
        try:
            return r.to_wire(max_size=max_size or 65535)
        except dns.exception.TooBig:
            t = dns.message.make_response(q)
            t.flags |= dns.flags.TC
            return t.to_wire()

    def _serve_udp(self):
        while not self.stopping:
            try:
                wire, peer = self.udp.recvfrom(65535)
            except socket.timeout:
                continue
            except OSError:
                return
            out = self._response(wire, 512)
            if out:
                try:
                    self.udp.sendto(out, peer)
                except OSError:
                    pass

    def _serve_tcp(self):
        while not self.stopping:
            try:
                c, _ = self.tcp.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            threading.Thread(target=self._tcp_conn, args=(c,), daemon=True).start()

    def _tcp_conn(self, c):
        c.settimeout(5)
        try:
            while True:
                hdr = self._read(c, 2)
                if not hdr:
                    return
                wire = self._read(c, struct.unpack("!H", hdr)[0])
                if not wire:
                    return
                out = self._response(wire, None)
                if out:
                    c.sendall(struct.pack("!H", len(out)) + out)
        except OSError:
            pass
        finally:
            c.close()

    @staticmethod
    def _read(c, n):
        buf = b""
        while len(buf) < n:
            chunk = c.recv(n - len(buf))
            if not chunk:
                return None
            buf += chunk
        return buf

    def stop(self):
        self.stopping = True
        self.udp.close()
        self.tcp.close()
        for t in self.threads:
            t.join(5)
