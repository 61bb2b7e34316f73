#!/usr/bin/python3
"""Writes the pcap integration tests: pcaps/NNN-name.pcap and pcaps/NNN-name.verdicts, plus the
shared pcaps/policy.yaml they run under.

Every packet is crafted together with the verdict line tagwall must give it (SPEC §7:
`PORT INDEX VERDICT REASON`), reasoned by hand from the policy below and SPEC §4/§5, never by
running tagwall.  scripts/test.sh (runner `pcap`) replays each pcap with

    tagwall-bench replay --policy pcaps/policy.yaml --pcap FILE --verdicts OUT

and diffs OUT against the .verdicts file.  A bare --pcap FILE is what arrived on the `workload`
port, so both directions of every conversation here are between two workloads of one segment
(web-1 and db-1): both sides pass SpoofGuard, and the policy alone decides.

Addresses only from 198.18.0.0/15 and 2001:db8::/32.  Regenerate with:  /usr/bin/python3 scripts/make-pcaps.py
The outputs are deterministic (fixed timestamps, no random fields) and small; they are checked in.
"""
import os
import sys

from scapy.all import ARP, fragment, ICMP, IP, TCP, UDP, Ether, ICMPv6EchoReply, ICMPv6EchoRequest, IPv6, Raw, wrpcap

HERE = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "pcaps")

POLICY = """\
# The policy every pcaps/NNN-*.pcap runs under (written by make-pcaps.py).
version: 1
segments:
  - {name: prod, vlan: 0}
endpoints:
  - name: web-1
    segment: prod
    ip: [198.18.10.11, "2001:db8:10::11"]
    mac: "52:54:00:00:10:11"
    tags: {app: shop, tier: web}
  - name: db-1
    segment: prod
    ip: [198.18.30.11, "2001:db8:30::11"]
    mac: "52:54:00:00:30:11"
    tags: {app: shop, tier: db}
groups:
  shop-web: {tags: {app: shop, tier: web}}
  shop-db:  {tags: {app: shop, tier: db}}
services:
  postgres: [tcp/5432]
  ping:     [icmp/echo-request, icmpv6/echo-request]
  ssh:      [tcp/22]
rules:
  - {id: web-db,   from: shop-web, to: shop-db, services: [postgres], action: allow}
  - {id: web-ping, from: shop-web, to: shop-db, services: [ping],     action: allow}
  - {id: no-ssh,   from: shop-db,  to: shop-web, services: [ssh],      action: reject}
default: drop
"""

WEB_MAC, DB_MAC = "52:54:00:00:10:11", "52:54:00:00:30:11"
WEB4, DB4 = "198.18.10.11", "198.18.30.11"
WEB6, DB6 = "2001:db8:10::11", "2001:db8:30::11"
STRANGER_MAC = "02:00:00:00:00:99"
BCAST = "ff:ff:ff:ff:ff:ff"

# Initial sequence numbers far from 0, so that sequence 0 is outside every window.
WEB_ISN, DB_ISN = 1_000_000_000, 3_000_000_000


def web_to_db(l4, v6=False):
    return Ether(src=WEB_MAC, dst=DB_MAC) / (IPv6(src=WEB6, dst=DB6) if v6 else IP(src=WEB4, dst=DB4)) / l4


def db_to_web(l4, v6=False):
    return Ether(src=DB_MAC, dst=WEB_MAC) / (IPv6(src=DB6, dst=WEB6) if v6 else IP(src=DB4, dst=WEB4)) / l4


def tcp(sport, dport, flags, seq, ack=0, data=b""):
    seg = TCP(sport=sport, dport=dport, flags=flags, seq=seq % 2**32, ack=ack % 2**32, window=65535)
    return seg / Raw(data) if data else seg


class Capture:
    """Packets on the workload port, each with the verdict line it must get."""

    def __init__(self, name):
        self.name = name
        self.packets = []
        self.lines = []

    def add(self, pkt, verdict, reason):
        pkt.time = 1_700_000_000 + len(self.packets) / 1000  # 1 ms apart, fixed
        self.lines.append(f"workload {len(self.packets)} {verdict} {reason}")
        self.packets.append(pkt)

    def write(self):
        path = os.path.join(HERE, self.name)
        wrpcap(path + ".pcap", self.packets)
        with open(path + ".verdicts", "w") as f:
            f.write("\n".join(self.lines) + "\n")
        size = os.path.getsize(path + ".pcap")
        if size >= 10_000:
            sys.exit(f"{self.name}.pcap is {size} bytes: keep the checked-in pcaps under 10 KB")


def handshake(c, sport=40000):
    """web-1 -> db-1:5432, allowed by rule web-db; returns the next sequence numbers (web, db)."""
    c.add(web_to_db(tcp(sport, 5432, "S", WEB_ISN)), "allow", "web-db")
    c.add(db_to_web(tcp(5432, sport, "SA", DB_ISN, WEB_ISN + 1)), "allow", "established")
    c.add(web_to_db(tcp(sport, 5432, "A", WEB_ISN + 1, DB_ISN + 1)), "allow", "established")
    return WEB_ISN + 1, DB_ISN + 1


def tcp_allowed():
    c = Capture("001-tcp-allowed")
    w, d = handshake(c)
    c.add(web_to_db(tcp(40000, 5432, "PA", w, d, b"q" * 100)), "allow", "established")
    w += 100
    c.add(db_to_web(tcp(5432, 40000, "PA", d, w, b"r" * 50)), "allow", "established")
    d += 50
    c.add(web_to_db(tcp(40000, 5432, "A", w, d)), "allow", "established")
    # teardown: FIN from each side, each acknowledged
    c.add(web_to_db(tcp(40000, 5432, "FA", w, d)), "allow", "established")
    w += 1
    c.add(db_to_web(tcp(5432, 40000, "FA", d, w)), "allow", "established")
    d += 1
    c.add(web_to_db(tcp(40000, 5432, "A", w, d)), "allow", "established")
    # the same over IPv6
    c.add(web_to_db(tcp(40001, 5432, "S", WEB_ISN), v6=True), "allow", "web-db")
    c.add(db_to_web(tcp(5432, 40001, "SA", DB_ISN, WEB_ISN + 1), v6=True), "allow", "established")
    c.add(web_to_db(tcp(40001, 5432, "A", WEB_ISN + 1, DB_ISN + 1), v6=True), "allow", "established")
    c.write()


def denied():
    c = Capture("002-denied")
    # no rule allows web -> db on 22: the default (drop)
    c.add(web_to_db(tcp(40000, 22, "S", WEB_ISN)), "drop", "default")
    # web-db allows web -> db only, not db -> web
    c.add(db_to_web(tcp(41000, 5432, "S", DB_ISN)), "drop", "default")
    # the denied connection's next segment has no connection: invalid, not classified
    c.add(web_to_db(tcp(40000, 22, "A", WEB_ISN + 1, 1)), "drop", "invalid")
    # a UDP datagram no rule allows
    c.add(web_to_db(UDP(sport=40002, dport=53) / Raw(b"x" * 20)), "drop", "default")
    c.write()


def spoofed():
    c = Capture("003-spoofed")
    # a source address bound to no endpoint, on the workload port
    pkt = Ether(src=WEB_MAC, dst=DB_MAC) / IP(src="198.18.10.99", dst=DB4) / tcp(40000, 5432, "S", WEB_ISN)
    c.add(pkt, "drop", "spoofed")
    # web-1's address from another MAC
    pkt = Ether(src=STRANGER_MAC, dst=DB_MAC) / IP(src=WEB4, dst=DB4) / tcp(40000, 5432, "S", WEB_ISN)
    c.add(pkt, "drop", "spoofed")
    # db-1's address from web-1's MAC
    pkt = Ether(src=WEB_MAC, dst=WEB_MAC) / IP(src=DB4, dst=WEB4) / tcp(40000, 5432, "S", WEB_ISN)
    c.add(pkt, "drop", "spoofed")
    # the real web-1 is allowed
    c.add(web_to_db(tcp(40000, 5432, "S", WEB_ISN)), "allow", "web-db")
    # ARP: the real web-1 passes, a sender claiming an unbound address does not
    arp = Ether(src=WEB_MAC, dst=BCAST) / ARP(op=1, hwsrc=WEB_MAC, psrc=WEB4, hwdst="00:00:00:00:00:00", pdst=DB4)
    c.add(arp, "allow", "arp-nd")
    arp = Ether(src=WEB_MAC, dst=BCAST) / ARP(op=1, hwsrc=WEB_MAC, psrc="198.18.10.99", hwdst="00:00:00:00:00:00",
                                               pdst=DB4)
    c.add(arp, "drop", "spoofed")
    c.write()


def rst_attacks():
    c = Capture("004-rst-attacks")
    w, d = handshake(c)
    # RST at sequence 0: far outside db-1's window (its ISN is 3e9): ignored, not obeyed
    c.add(db_to_web(tcp(5432, 40000, "R", 0)), "drop", "invalid")
    # RST far beyond web-1's window
    c.add(web_to_db(tcp(40000, 5432, "R", w + 100_000_000)), "drop", "invalid")
    # ... and the connection keeps working both ways
    c.add(web_to_db(tcp(40000, 5432, "PA", w, d, b"q" * 10)), "allow", "established")
    w += 10
    c.add(db_to_web(tcp(5432, 40000, "A", d, w)), "allow", "established")
    c.write()


def icmp():
    c = Capture("005-icmp")
    c.add(web_to_db(ICMP(type=8, code=0, id=0x1234, seq=1) / Raw(b"p" * 32)), "allow", "web-ping")
    c.add(db_to_web(ICMP(type=0, code=0, id=0x1234, seq=1) / Raw(b"p" * 32)), "allow", "established")
    # a time exceeded about web-1's echo request, sent back to web-1: related to the echo connection
    quoted = IP(src=WEB4, dst=DB4, ttl=1) / ICMP(type=8, code=0, id=0x1234, seq=1)
    c.add(db_to_web(ICMP(type=11, code=0) / quoted), "allow", "related")
    # a port unreachable about a UDP datagram web-1 never sent (no connection): invalid
    quoted = IP(src=WEB4, dst=DB4) / UDP(sport=40000, dport=53) / Raw(b"x" * 8)
    c.add(db_to_web(ICMP(type=3, code=3) / quoted), "drop", "invalid")
    # db -> web echo: no rule allows it
    c.add(db_to_web(ICMP(type=8, code=0, id=0x4321, seq=1)), "drop", "default")
    # an echo reply nobody asked for
    c.add(db_to_web(ICMP(type=0, code=0, id=0x5555, seq=1)), "drop", "invalid")
    # ICMPv6 echo and reply
    c.add(web_to_db(ICMPv6EchoRequest(id=0x1234, seq=1), v6=True), "allow", "web-ping")
    c.add(db_to_web(ICMPv6EchoReply(id=0x1234, seq=1), v6=True), "allow", "established")
    c.write()


def reject():
    c = Capture("006-reject")
    # db -> web on 22: rule no-ssh rejects (the answer is not sent yet; the verdict is `reject`)
    c.add(db_to_web(tcp(41000, 22, "S", DB_ISN)), "reject", "no-ssh")
    # a reject opens nothing: the next segment has no connection
    c.add(db_to_web(tcp(41000, 22, "A", DB_ISN + 1, 1)), "drop", "invalid")
    # web -> db on 22 is not what no-ssh selects: the default
    c.add(web_to_db(tcp(40000, 22, "S", WEB_ISN)), "drop", "default")
    c.write()


def fragments():
    c = Capture("007-fragments")
    # an echo request in two fragments: the first (with the ICMP header) is classified, the second follows it
    big = IP(src=WEB4, dst=DB4, id=77) / ICMP(type=8, code=0, id=0x1234, seq=1) / Raw(b"f" * 1600)
    first, second = fragment(big, fragsize=1480)
    c.add(Ether(src=WEB_MAC, dst=DB_MAC) / first, "allow", "web-ping")
    c.add(Ether(src=WEB_MAC, dst=DB_MAC) / second, "allow", "established")
    c.add(db_to_web(ICMP(type=0, code=0, id=0x1234, seq=1) / Raw(b"r" * 32)), "allow", "established")
    # a denied first fragment (db -> web echo: no rule): its later fragment drops with the same reason
    big = IP(src=DB4, dst=WEB4, id=78) / ICMP(type=8, code=0, id=0x4321, seq=1) / Raw(b"g" * 1600)
    first, second = fragment(big, fragsize=1480)
    c.add(Ether(src=DB_MAC, dst=WEB_MAC) / first, "drop", "default")
    c.add(Ether(src=DB_MAC, dst=WEB_MAC) / second, "drop", "default")
    # a later fragment whose first fragment never came
    big = IP(src=WEB4, dst=DB4, id=79) / ICMP(type=8, code=0, id=0x1235, seq=1) / Raw(b"h" * 1600)
    _, orphan = fragment(big, fragsize=1480)
    c.add(Ether(src=WEB_MAC, dst=DB_MAC) / orphan, "drop", "invalid")
    c.write()


def main():
    with open(os.path.join(HERE, "policy.yaml"), "w") as f:
        f.write(POLICY)
    tcp_allowed()
    denied()
    spoofed()
    rst_attacks()
    icmp()
    reject()
    fragments()


if __name__ == "__main__":
    main()
