#!/usr/bin/python3
"""Writes the adversarial pcap suite: pcaps/adversarial/NNN-name.pcap, .verdicts and .reasons (and, for
the fragment flood, .stats), plus the pcaps/adversarial/policy.yaml they all run under.

What a firewall lets through when someone tries is what these captures check: TCP desynchronisation
(forged RSTs, SYNs on established connections, wrong acks), hostile fragments (tiny, overlapping, too
many, orphaned, RFC 7112 header chains, the CVE-2019-5597 pattern, ping of death, a fragment flood),
lying length fields and frames cut at every byte, ICMP errors that quote someone else's connection
(the CVE-2019-5598 pattern), ICMP echo identifier confusion (the CVE-2024-6640 pattern) and
SpoofGuard evasion (wrong MAC, wrong VLAN, lying ARP and neighbour discovery).

Every packet is written together with the verdict line tagwall must give it (SPEC §7:
`PORT INDEX VERDICT REASON`) and the fine-grained reason counter it must land in; both are reasoned by
hand from SPEC §4/§5, the policy below and the documented choices in src/dataplane/*.hpp (quoted next
to each case), never by running tagwall.  The `.reasons` file is the exact `reasons` object that
`tagwall-bench replay --json` must print: every counter that is not zero, and nothing else.

scripts/test.sh (runner `pcap`) replays each capture with

    tagwall-bench replay --policy pcaps/adversarial/policy.yaml --pcap FILE --json --verdicts OUT

and compares OUT with .verdicts and the JSON's `reasons` with .reasons (and the keys of .stats, when
there is one, with the same keys of the JSON).  A `.verdicts` file whose first line starts with
`# partial` lists only the packets whose verdict does not depend on tagwall's random hash seeds (the
fragment flood: which flood datagrams find room depends on the seeded hash; how many do does not).

Every capture arrives on the `workload` port (both ends are workloads, so SpoofGuard checks every
source).  Addresses only from 198.18.0.0/15 and 2001:db8::/32.  Deterministic output (fixed
timestamps, seeded randomness).  Regenerate with:  /usr/bin/python3 scripts/make-adversarial-pcaps.py
"""
import json
import logging
import os
import random
import struct
import sys

from scapy.all import (ARP, IPOption_EOL, IPOption_NOP, Dot1Q, Ether, ICMP, ICMPv6DestUnreach, ICMPv6EchoReply, ICMPv6EchoRequest,
                       ICMPv6ND_NA, ICMPv6ND_NS, ICMPv6ND_RA, ICMPv6NDOptDstLLAddr, ICMPv6NDOptSrcLLAddr,
                       ICMPv6PacketTooBig, ICMPv6TimeExceeded, IP, IPv6, IPv6ExtHdrDestOpt, IPv6ExtHdrFragment,
                       IPv6ExtHdrHopByHop, Raw, TCP, UDP, PcapWriter)

logging.getLogger("scapy").setLevel(logging.ERROR)  # raw frames: "inconsistent linktypes", no underlayer

HERE = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "pcaps", "adversarial")

POLICY = """\
# The policy every pcaps/adversarial/NNN-*.pcap runs under (written by scripts/make-adversarial-pcaps.py).
version: 1
segments:
  - {name: prod, vlan: 0}
  - {name: lab, vlan: 20}
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
  # A third workload of the segment: the "router" that sends ICMP errors, and an attacker.
  - name: app-1
    segment: prod
    ip: [198.18.20.11, "2001:db8:20::11"]
    mac: "52:54:00:00:20:11"
    tags: {app: shop, tier: app}
  # A workload of another segment (VLAN 20).
  - name: lab-1
    segment: lab
    ip: [198.18.40.11, "2001:db8:40::11"]
    mac: "52:54:00:00:40:11"
    tags: {app: lab}
groups:
  shop-web: {tags: {app: shop, tier: web}}
  shop-db:  {tags: {app: shop, tier: db}}
  lab:      {tags: {app: lab}}
services:
  postgres: [tcp/5432]
  dns:      [udp/53]
  ping:     [icmp/echo-request, icmpv6/echo-request]
rules:
  - {id: web-db,   from: shop-web, to: shop-db, services: [postgres], action: allow}
  - {id: web-dns,  from: shop-web, to: shop-db, services: [dns],      action: allow}
  - {id: web-ping, from: shop-web, to: shop-db, services: [ping],     action: allow}
  - {id: lab-dns,  from: lab,      to: shop-db, services: [dns],      action: allow}
default: drop
"""

WEB_MAC, DB_MAC, APP_MAC, LAB_MAC = "52:54:00:00:10:11", "52:54:00:00:30:11", "52:54:00:00:20:11", "52:54:00:00:40:11"
WEB4, DB4, APP4, LAB4 = "198.18.10.11", "198.18.30.11", "198.18.20.11", "198.18.40.11"
WEB6, DB6, APP6, LAB6 = "2001:db8:10::11", "2001:db8:30::11", "2001:db8:20::11", "2001:db8:40::11"
WEB_LL = "fe80::5054:ff:fe00:1011"   # EUI-64 link-local of web-1's MAC
DB_LL = "fe80::5054:ff:fe00:3011"    # ... and of db-1's
STRANGER_MAC = "02:00:00:00:00:99"
BCAST = "ff:ff:ff:ff:ff:ff"

# Initial sequence numbers far from 0, so that sequence 0 is outside every window.
WEB_ISN, DB_ISN = 1_000_000_000, 3_000_000_000
WINDOW = 65535  # every segment here advertises it; no window scaling (no SYN carries the option)

# The fine-grained counter -> the coarse word of the REASON column (src/dataplane/reasons.hpp).
WORD = {
    "rule": None, "default": "default", "established": "established", "related": "related",
    "rst_in_window": "established", "arp_nd": "arp-nd", "unknown_segment": "unknown-segment",
    "unsupported_ethertype": "unsupported", "spoofed_ip": "spoofed", "spoofed_mac": "spoofed",
    "spoofed_arp": "spoofed", "spoofed_nd": "spoofed", "invalid_no_flow": "invalid",
    "invalid_tcp_state": "invalid", "invalid_tcp_window": "invalid", "rst_out_of_window": "invalid",
    "related_no_flow": "invalid", "invalid_icmp_no_flow": "invalid", "fragment_no_first": "invalid",
    "fragment_table_full": "invalid",
}
MALFORMED = ["fragment_tiny", "fragment_overlap", "fragment_too_many", "fragment_bad_length", "ipv6_l4_not_in_first",
             "truncated_ethernet", "truncated_vlan", "qinq", "truncated_arp", "truncated_ipv4", "bad_ipv4_version",
             "bad_ipv4_ihl", "bad_ipv4_length", "truncated_ipv6", "bad_ipv6_version", "bad_ipv6_length",
             "truncated_ipv6_ext", "ipv6_ext_chain_too_long", "ipv6_fragment_repeated", "bad_ip_proto",
             "truncated_tcp", "bad_tcp_data_offset", "truncated_udp", "bad_udp_length", "truncated_icmp"]
WORD.update({m: "malformed" for m in MALFORMED})

# The fragment table's documented limits (src/dataplane/fragments.hpp): FragmentConfig defaults and
# FragmentTable constants.  The replay uses the defaults.
FRAG_CAPACITY = 4096          # datagrams (512 buckets of 8 slots)
FRAG_ENTRY_BYTES = 100        # kEntryBytes: an entry and its tag
FRAG_MAX_FRAGMENTS = 64       # per datagram, the first included
FRAG_MAX_RANGES = 6           # kMaxRanges: disjoint pieces per datagram
FRAG_IDLE_EVICTABLE_S = 1.0   # an allowed datagram idle this long may be evicted


class Capture:
    """Packets on the workload port, each with its verdict line and reason counter."""

    def __init__(self, name, step=0.001):
        self.name = name
        self.step = step
        self.t = 1_700_000_000.0
        self.packets = []
        self.lines = []      # (index, line)
        self.asserted = []   # indices whose verdict line is written (all, unless partial)
        self.reasons = {}
        self.partial = None

    def add(self, pkt, verdict, counter, rule=None, assert_verdict=True, at=None):
        word = rule if counter == "rule" else WORD[counter]
        assert (counter == "rule") == (rule is not None), (counter, rule)
        self.t = at if at is not None else self.t + self.step
        pkt.time = self.t
        index = len(self.packets)
        self.packets.append(pkt)
        if assert_verdict:
            self.lines.append(f"workload {index} {verdict} {word}")
        self.reasons[counter] = self.reasons.get(counter, 0) + 1
        return index

    def rule(self, pkt, rule, **kw):
        return self.add(pkt, "allow", "rule", rule, **kw)

    def allow(self, pkt, counter="established", **kw):
        return self.add(pkt, "allow", counter, **kw)

    def drop(self, pkt, counter, **kw):
        return self.add(pkt, "drop", counter, **kw)

    def write(self, stats=None):
        path = os.path.join(HERE, self.name)
        with PcapWriter(path + ".pcap", linktype=1, sync=False) as w:
            for p in self.packets:
                w.write(p)
        with open(path + ".verdicts", "w") as f:
            if self.partial:
                f.write(f"# partial: {self.partial}\n")
            f.write("\n".join(self.lines) + "\n")
        with open(path + ".reasons", "w") as f:
            f.write(json.dumps(dict(sorted(self.reasons.items())), indent=1) + "\n")
        if stats is not None:
            with open(path + ".stats", "w") as f:
                f.write(json.dumps(stats, indent=1, sort_keys=True) + "\n")
        elif os.path.exists(path + ".stats"):
            os.remove(path + ".stats")


# --- frames ---------------------------------------------------------------------------------------

def eth(src_mac, dst_mac, vlan=None):
    e = Ether(src=src_mac, dst=dst_mac)
    return e / Dot1Q(vlan=vlan) if vlan is not None else e


def v4(src, dst, **kw):
    return IP(src=src, dst=dst, **kw)


def v6(src, dst, **kw):
    return IPv6(src=src, dst=dst, **kw)


def e4(src_mac=WEB_MAC, dst_mac=DB_MAC):
    """Ethernet for raw IPv4 bytes (Raw payloads do not set the ethertype)."""
    return Ether(src=src_mac, dst=dst_mac, type=0x0800)


def e6(src_mac=WEB_MAC, dst_mac=DB_MAC):
    return Ether(src=src_mac, dst=dst_mac, type=0x86DD)


def web_to_db(l4, six=False):
    return eth(WEB_MAC, DB_MAC) / (v6(WEB6, DB6) if six else v4(WEB4, DB4)) / l4


def db_to_web(l4, six=False):
    return eth(DB_MAC, WEB_MAC) / (v6(DB6, WEB6) if six else v4(DB4, WEB4)) / l4


def tcp(sport, dport, flags, seq, ack=0, data=b""):
    seg = TCP(sport=sport, dport=dport, flags=flags, seq=seq % 2**32, ack=ack % 2**32, window=WINDOW)
    return seg / Raw(data) if data else seg


def handshake(c, sport, six=False, isn=(WEB_ISN, DB_ISN)):
    """web-1 -> db-1:5432, allowed by rule web-db; returns the next sequence numbers (web, db)."""
    w, d = isn
    c.rule(web_to_db(tcp(sport, 5432, "S", w), six), "web-db")
    c.allow(db_to_web(tcp(5432, sport, "SA", d, w + 1), six))
    c.allow(web_to_db(tcp(sport, 5432, "A", w + 1, d + 1), six))
    return w + 1, d + 1


def l4_bytes(ip_layer, l4):
    """The bytes after the IP header of ip_layer/l4, with the L4 checksum computed over that header."""
    b = bytes(ip_layer / l4)
    return b[40:] if isinstance(ip_layer, IPv6) else b[(b[0] & 0x0F) * 4:]


def piece(data, off, length, fill=b"F"):
    chunk = data[off:off + length]
    return chunk + fill * (length - len(chunk))


def frag4(src_mac, dst_mac, src, dst, proto, ipid, data, off, length, more):
    """One IPv4 fragment: bytes [off, off+length) of the datagram's payload `data` (filler past its end)."""
    ip = IP(src=src, dst=dst, id=ipid, proto=proto, flags="MF" if more else 0, frag=off // 8)
    return Ether(src=src_mac, dst=dst_mac) / ip / Raw(piece(data, off, length))


def frag6(src_mac, dst_mac, src, dst, nh, fid, data, off, length, more):
    """One IPv6 fragment: bytes [off, off+length) of the fragmentable part `data`, whose first header is nh."""
    return (eth(src_mac, dst_mac) / IPv6(src=src, dst=dst, nh=44) /
            IPv6ExtHdrFragment(nh=nh, offset=off // 8, m=int(more), id=fid) / Raw(piece(data, off, length)))


def echo4(ident, size):
    """An ICMP echo request web-1 -> db-1 (the IP payload bytes) with `size` bytes of data."""
    return l4_bytes(v4(WEB4, DB4), ICMP(type=8, id=ident, seq=1) / Raw(b"e" * size))


def echo6(ident, size, dstopts=False):
    """The fragmentable part of an ICMPv6 echo request web-1 -> db-1, optionally behind destination options."""
    l4 = ICMPv6EchoRequest(id=ident, seq=1, data=b"e" * size)
    return l4_bytes(v6(WEB6, DB6), IPv6ExtHdrDestOpt(nh=58) / l4 if dstopts else l4)


def w4frag(ipid, data, off, length, more, proto=1):
    return frag4(WEB_MAC, DB_MAC, WEB4, DB4, proto, ipid, data, off, length, more)


def w6frag(fid, data, off, length, more, nh=58):
    return frag6(WEB_MAC, DB_MAC, WEB6, DB6, nh, fid, data, off, length, more)


# --- 001: forged RSTs -----------------------------------------------------------------------------

def tcp_rst():
    """conntrack_tcp.hpp: an RST whose sequence number is exactly the one its receiver expects closes
    the connection; one inside the window but not exact is passed and changes nothing (the endpoint
    answers it with a challenge ACK, RFC 5961 §3.2), counted as `rst_in_window`; one outside the window
    is `rst_out_of_window`: dropped, not obeyed.  After a valid RST, segments inside the window still
    pass (stragglers, as in nf_conntrack's CLOSE and pf's TIME_WAIT); a SYN reopens the port."""
    c = Capture("001-tcp-rst")
    w, d = handshake(c, 41000)
    # Windows after the handshake: web-1 may send [w, w + 65535], db-1 [d, d + 65535].
    c.drop(db_to_web(tcp(5432, 41000, "R", 0)), "rst_out_of_window")           # seq 0: 3e9 away
    c.drop(web_to_db(tcp(41000, 5432, "R", w + 100_000_000)), "rst_out_of_window")
    c.drop(web_to_db(tcp(41000, 5432, "R", w - 100_000)), "rst_out_of_window")  # behind the window
    c.allow(web_to_db(tcp(41000, 5432, "R", w + 1000)), "rst_in_window")        # in the window, not exact
    c.allow(web_to_db(tcp(41000, 5432, "RA", w + 1000, d)), "rst_in_window")
    c.allow(db_to_web(tcp(5432, 41000, "R", d + 30_000)), "rst_in_window")
    # db-1's challenge ACK passes, and the connection goes on both ways
    c.allow(db_to_web(tcp(5432, 41000, "A", d, w)))
    c.allow(web_to_db(tcp(41000, 5432, "PA", w, d, b"q" * 10)))
    w += 10
    c.allow(db_to_web(tcp(5432, 41000, "A", d, w)))
    # the real RST, at exactly web-1's next sequence number: closes
    c.allow(web_to_db(tcp(41000, 5432, "R", w)))
    # data after the valid RST: in the window it passes (state kept: CLOSE), beyond it does not
    c.allow(web_to_db(tcp(41000, 5432, "PA", w, d, b"s" * 10)))
    w += 10
    c.allow(db_to_web(tcp(5432, 41000, "PA", d, w, b"t" * 5)))
    d += 5
    c.drop(web_to_db(tcp(41000, 5432, "PA", w + 200_000, d, b"u" * 10)), "invalid_tcp_window")
    # in CLOSE a SYN starts a new connection on the same ports: the policy is asked again
    handshake(c, 41000, isn=(WEB_ISN + 5_000_000, DB_ISN + 5_000_000))
    # the same over IPv6
    w6, d6 = handshake(c, 41001, six=True)
    c.drop(db_to_web(tcp(5432, 41001, "R", 0), True), "rst_out_of_window")
    c.allow(db_to_web(tcp(5432, 41001, "R", d6 + 100), True), "rst_in_window")
    c.allow(db_to_web(tcp(5432, 41001, "R", d6), True))                          # exact: closes
    c.allow(web_to_db(tcp(41001, 5432, "A", w6, d6), True))                      # a straggler
    c.write()


# --- 002: TCP desynchronisation -------------------------------------------------------------------

def tcp_desync():
    """conntrack_tcp.hpp: a SYN on a synchronized connection is `invalid_tcp_state` (pf's choice: a
    forged SYN must neither tear down nor re-seed tracking); the responder may repeat its exact
    SYN+ACK; acks outside [peer's end - (window + slack), peer's end] and data outside the window are
    `invalid_tcp_window`; NULL, bare FIN, SYN+FIN, Xmas and SYN+RST are `invalid_tcp_state`; without an
    entry only a SYN may open (`invalid_no_flow`); in SYN_SENT only the responder's exact SYN+ACK or an
    RST+ACK acknowledging the SYN count (no simultaneous open)."""
    c = Capture("002-tcp-desync")
    w, d = handshake(c, 42000)
    c.drop(web_to_db(tcp(42000, 5432, "S", WEB_ISN)), "invalid_tcp_state")        # the old SYN again
    c.drop(web_to_db(tcp(42000, 5432, "S", WEB_ISN + 12345)), "invalid_tcp_state")  # a new ISN
    c.allow(db_to_web(tcp(5432, 42000, "SA", DB_ISN, w)))                          # the exact SYN+ACK again
    c.drop(db_to_web(tcp(5432, 42000, "SA", DB_ISN + 999, w)), "invalid_tcp_state")
    c.drop(web_to_db(tcp(42000, 5432, "A", w, d + 100_000)), "invalid_tcp_window")  # acks unsent data
    # IV: ack >= d - (65535 + 65535 + 1500): 200000 back is too old
    c.drop(web_to_db(tcp(42000, 5432, "A", w, d - 200_000)), "invalid_tcp_window")
    c.drop(web_to_db(tcp(42000, 5432, "PA", w + 70_000, d, b"x" * 10)), "invalid_tcp_window")  # beyond
    c.drop(web_to_db(tcp(42000, 5432, "PA", w - 70_000, d, b"x" * 10)), "invalid_tcp_window")  # behind
    for flags in ("", "F", "SF", "FPU", "SR"):                  # NULL, bare FIN, SYN+FIN, Xmas, SYN+RST
        c.drop(web_to_db(tcp(42000, 5432, flags, w, d)), "invalid_tcp_state")
    c.allow(web_to_db(tcp(42000, 5432, "PA", w, d, b"q" * 20)))  # the connection is unharmed
    w += 20
    c.allow(db_to_web(tcp(5432, 42000, "A", d, w)))
    # no entry: only a SYN may open
    for flags in ("A", "SA", "R", "F", "FA"):
        c.drop(web_to_db(tcp(42001, 5432, flags, WEB_ISN, 1)), "invalid_no_flow")
    # SYN_SENT
    c.rule(web_to_db(tcp(42002, 5432, "S", WEB_ISN)), "web-db")
    c.drop(web_to_db(tcp(42002, 5432, "A", WEB_ISN + 1, 1)), "invalid_tcp_state")   # ACK before SYN+ACK
    c.drop(db_to_web(tcp(5432, 42002, "S", DB_ISN)), "invalid_tcp_state")           # simultaneous open
    c.drop(db_to_web(tcp(5432, 42002, "SA", DB_ISN, WEB_ISN + 7)), "invalid_tcp_window")  # wrong ack
    c.drop(db_to_web(tcp(5432, 42002, "R", 0)), "rst_out_of_window")                 # RST without ACK
    c.drop(db_to_web(tcp(5432, 42002, "RA", 0, WEB_ISN + 7)), "rst_out_of_window")   # acks nothing sent
    c.drop(web_to_db(tcp(42002, 5432, "R", WEB_ISN + 5)), "rst_out_of_window")       # not the SYN's end
    c.allow(db_to_web(tcp(5432, 42002, "RA", 0, WEB_ISN + 1)))                      # refused: closes
    c.drop(db_to_web(tcp(5432, 42002, "SA", DB_ISN, WEB_ISN + 1)), "invalid_tcp_state")  # too late
    c.rule(web_to_db(tcp(42002, 5432, "S", WEB_ISN + 100)), "web-db")              # the port again
    c.write()


# --- 003/004: fragments ---------------------------------------------------------------------------

def frag_v4():
    """fragments.hpp: a later fragment follows its datagram's first fragment; any overlap (an exact
    duplicate, a repeated first fragment) kills the datagram (`fragment_overlap`, also for its later
    fragments); more than 64 fragments or more than kMaxRanges disjoint pieces is `fragment_too_many`;
    lengths that do not add up (not 8-aligned, empty, past 65535, past the declared end, two ends)
    are `fragment_bad_length`; an orphan is `fragment_no_first` and leaves no state; a complete
    datagram is forgotten.  parser.hpp: a first fragment too short for its L4 header is
    `fragment_tiny` (RFC 1858) and an IPv4 TCP fragment at offset 8 is `fragment_overlap`."""
    c = Capture("003-frag-v4")
    data = echo4(0x301, 4000)                       # 4008 bytes: 1480 + 1480 + 1048
    c.rule(w4frag(3001, data, 0, 1480, True), "web-ping")
    c.allow(w4frag(3001, data, 1480, 1480, True))
    c.drop(w4frag(3001, data, 1472, 1480, True), "fragment_overlap")     # overlaps both
    c.drop(w4frag(3001, data, 2960, 1048, False), "fragment_overlap")    # the datagram is dead
    c.allow(db_to_web(ICMP(type=0, id=0x301, seq=1) / Raw(b"r" * 32)))   # the echo connection lives on
    # an exact duplicate is an overlap too (the table never sees the bytes)
    data = echo4(0x302, 4000)
    c.rule(w4frag(3002, data, 0, 1480, True), "web-ping")
    c.allow(w4frag(3002, data, 1480, 1480, True))
    c.drop(w4frag(3002, data, 1480, 1480, True), "fragment_overlap")
    c.drop(w4frag(3002, data, 2960, 1048, False), "fragment_overlap")
    # a repeated first fragment
    data = echo4(0x303, 2000)
    c.rule(w4frag(3003, data, 0, 1480, True), "web-ping")
    c.drop(w4frag(3003, data, 0, 1480, True), "fragment_overlap")
    c.drop(w4frag(3003, data, 1480, 528, False), "fragment_overlap")
    # tiny first fragments (RFC 1858): 8 bytes of TCP, 4 of UDP, none of ICMP
    seg = l4_bytes(v4(WEB4, DB4), tcp(43000, 5432, "S", WEB_ISN) / Raw(b"z" * 40))
    c.drop(w4frag(3004, seg, 0, 8, True, proto=6), "fragment_tiny")
    c.drop(w4frag(3004, seg, 8, 16, True, proto=6), "fragment_overlap")   # TCP at offset 8 (RFC 1858)
    c.drop(w4frag(3004, seg, 24, 36, False, proto=6), "fragment_no_first")
    dgram = l4_bytes(v4(WEB4, DB4), UDP(sport=43001, dport=53) / Raw(b"d" * 40))
    c.drop(w4frag(3005, dgram, 0, 4, True, proto=17), "fragment_tiny")
    c.drop(w4frag(3006, b"", 0, 0, True), "fragment_tiny")
    # 65 fragments of 8 bytes: the 65th is one too many
    data = echo4(0x307, 512)                        # 520 bytes
    c.rule(w4frag(3007, data, 0, 8, True), "web-ping")
    for off in range(8, 512, 8):
        c.allow(w4frag(3007, data, off, 8, True))
    c.drop(w4frag(3007, data, 512, 8, False), "fragment_too_many")
    # more disjoint pieces than kMaxRanges: 0, 16, 32 ... each 8 bytes with a hole after it
    data = echo4(0x308, 512)
    c.rule(w4frag(3008, data, 0, 8, True), "web-ping")
    for k in range(1, FRAG_MAX_RANGES):
        c.allow(w4frag(3008, data, 16 * k, 8, True))
    c.drop(w4frag(3008, data, 16 * FRAG_MAX_RANGES, 8, True), "fragment_too_many")
    c.drop(w4frag(3008, data, 8, 8, True), "fragment_too_many")          # filling a hole: too late
    # ping of death: a fragment ending past 65535
    data = echo4(0x309, 2000)
    c.rule(w4frag(3009, data, 0, 1480, True), "web-ping")
    c.drop(w4frag(3009, data, 65528, 16, False), "fragment_bad_length")
    c.drop(w4frag(3009, data, 1480, 528, False), "fragment_bad_length")
    # a middle fragment that is not a multiple of 8 bytes; an empty one
    data = echo4(0x30A, 64)
    c.rule(w4frag(3010, data, 0, 24, True), "web-ping")
    c.drop(w4frag(3010, data, 24, 12, True), "fragment_bad_length")
    data = echo4(0x30B, 64)
    c.rule(w4frag(3011, data, 0, 24, True), "web-ping")
    c.drop(w4frag(3011, data, 24, 0, True), "fragment_bad_length")
    # past the declared end; two different ends
    data = echo4(0x30C, 64)
    c.rule(w4frag(3012, data, 0, 24, True), "web-ping")
    c.allow(w4frag(3012, data, 40, 16, False))                           # the end: 56
    c.drop(w4frag(3012, data, 48, 16, True), "fragment_bad_length")      # reaches 64
    data = echo4(0x30D, 64)
    c.rule(w4frag(3013, data, 0, 24, True), "web-ping")
    c.allow(w4frag(3013, data, 40, 8, False))                            # the end: 48
    c.drop(w4frag(3013, data, 24, 8, False), "fragment_bad_length")      # another end: 32
    # the first fragment after its later one: the early one is an orphan, the first is decided
    data = echo4(0x30E, 2000)
    c.drop(w4frag(3014, data, 1480, 528, False), "fragment_no_first")
    c.rule(w4frag(3014, data, 0, 1480, True), "web-ping")
    # a denied first fragment (db-1 -> web-1 echo: no rule): its later fragment drops the same way
    data = l4_bytes(v4(DB4, WEB4), ICMP(type=8, id=0x30F, seq=1) / Raw(b"g" * 2000))
    c.drop(frag4(DB_MAC, WEB_MAC, DB4, WEB4, 1, 3015, data, 0, 1480, True), "default")
    c.drop(frag4(DB_MAC, WEB_MAC, DB4, WEB4, 1, 3015, data, 1480, 528, False), "default")
    # a complete datagram is forgotten: a late copy of its last fragment is an orphan
    data = echo4(0x310, 2000)
    c.rule(w4frag(3016, data, 0, 1480, True), "web-ping")
    c.allow(w4frag(3016, data, 1480, 528, False))
    c.drop(w4frag(3016, data, 1480, 528, False), "fragment_no_first")
    c.write()


def frag_v6():
    """The IPv6 side of fragments.hpp and parser.hpp: overlaps; the CVE-2019-5597 pattern (two Fragment
    headers in one chain: `ipv6_fragment_repeated`); RFC 7112 first fragments whose header chain or L4
    header continues in the next fragment (`ipv6_l4_not_in_first`); an extension header after the
    Fragment header counts as fragment data (RFC 8200 §4.5: offsets start after the Fragment header),
    so an overlap into it is seen and such a datagram completes; atomic fragments are whole packets
    (RFC 6946); chains that are too long, cut, or carry hop-by-hop late are malformed."""
    c = Capture("004-frag-v6")
    data = echo6(0x401, 4000)                       # 4008 bytes: 1448 + 1448 + 1112
    c.rule(w6frag(0x4001, data, 0, 1448, True), "web-ping")
    c.allow(w6frag(0x4001, data, 1448, 1448, True))
    c.drop(w6frag(0x4001, data, 1440, 1448, True), "fragment_overlap")
    c.drop(w6frag(0x4001, data, 2896, 1112, False), "fragment_overlap")
    c.allow(db_to_web(ICMPv6EchoReply(id=0x401, seq=1), True))
    # CVE-2019-5597: a second Fragment header in the chain, after the first or behind other headers
    echo = ICMPv6EchoRequest(id=0x402, seq=1, data=b"e" * 16)
    c.drop(web_to_db(IPv6ExtHdrFragment(offset=0, m=1, id=0x4002) / IPv6ExtHdrFragment(offset=0, m=0, id=0x4002) /
                     echo, True), "ipv6_fragment_repeated")
    c.drop(web_to_db(IPv6ExtHdrFragment(offset=0, m=1, id=0x4003) / IPv6ExtHdrDestOpt() /
                     IPv6ExtHdrFragment(offset=2, m=0, id=0x4003) / echo, True), "ipv6_fragment_repeated")
    c.drop(w6frag(0x4002, bytes(48), 24, 24, False), "fragment_no_first")
    # RFC 7112: the header chain must be whole in the first fragment
    opts = bytes([6, 2]) + bytes(22)                # destination options announcing 24 bytes
    c.drop(w6frag(0x4004, opts, 0, 16, True, nh=60), "ipv6_l4_not_in_first")   # the header itself is cut
    seg = l4_bytes(v6(WEB6, DB6), IPv6ExtHdrDestOpt(nh=6) / tcp(44000, 5432, "S", WEB_ISN))
    c.drop(w6frag(0x4005, seg, 0, 16, True, nh=60), "ipv6_l4_not_in_first")    # 8 bytes of TCP
    c.drop(w6frag(0x4005, seg, 16, 12, False, nh=60), "fragment_no_first")
    data = echo6(0x406, 64, dstopts=True)
    c.drop(w6frag(0x4006, data, 0, 8, True, nh=60), "ipv6_l4_not_in_first")    # no ICMPv6 header at all
    # headers before the Fragment header are fine
    c.rule(web_to_db(IPv6ExtHdrHopByHop() / IPv6ExtHdrFragment(offset=0, m=1, id=0x4007) /
                     ICMPv6EchoRequest(id=0x407, seq=1, data=b"e" * 40), True), "web-ping")
    # destination options after the Fragment header are fragment data: an overlap into them is seen
    data = echo6(0x408, 64, dstopts=True)           # 8 + 8 + 64 = 80 bytes
    c.rule(w6frag(0x4008, data, 0, 80, True, nh=60), "web-ping")
    c.drop(w6frag(0x4008, data, 72, 16, True, nh=60), "fragment_overlap")
    c.drop(w6frag(0x4008, data, 88, 8, False, nh=60), "fragment_overlap")
    # ... and such a datagram completes: a late copy of its last fragment is an orphan
    data = echo6(0x409, 104, dstopts=True)          # 8 + 8 + 104 = 120 bytes
    c.rule(w6frag(0x4009, data, 0, 80, True, nh=60), "web-ping")
    c.allow(w6frag(0x4009, data, 80, 40, False, nh=60))
    c.drop(w6frag(0x4009, data, 80, 40, False, nh=60), "fragment_no_first")
    # an atomic fragment is a whole packet
    c.rule(web_to_db(IPv6ExtHdrFragment(offset=0, m=0, id=0x400A) / ICMPv6EchoRequest(id=0x40A, seq=1), True),
           "web-ping")
    # ping of death
    data = echo6(0x40B, 2000)
    c.rule(w6frag(0x400B, data, 0, 1448, True), "web-ping")
    c.drop(w6frag(0x400B, data, 65528, 16, False), "fragment_bad_length")
    # chains: nine extension headers; hop-by-hop after another header; a header cut short
    chain = IPv6ExtHdrDestOpt()
    for _ in range(8):
        chain = chain / IPv6ExtHdrDestOpt()
    c.drop(web_to_db(chain / ICMPv6EchoRequest(id=0x40C), True), "ipv6_ext_chain_too_long")
    c.drop(web_to_db(IPv6ExtHdrDestOpt() / IPv6ExtHdrHopByHop() / ICMPv6EchoRequest(id=0x40D), True), "bad_ip_proto")
    c.drop(web_to_db(IPv6ExtHdrDestOpt(nh=58, len=4) / Raw(bytes(6)), True), "truncated_ipv6_ext")
    c.drop(w6frag(0x400E, bytes(64), 8, 16, True), "fragment_no_first")
    c.write()


# --- 005/006: lying lengths and cut frames --------------------------------------------------------

def raw_ip4(pkt_l3, **fields):
    """IPv4 packet bytes with header fields overwritten after checksumming: version/ihl byte, total."""
    b = bytearray(bytes(pkt_l3))
    if "vihl" in fields:
        b[0] = fields["vihl"]
    if "total" in fields:
        b[2:4] = struct.pack("!H", fields["total"])
    if "proto" in fields:
        b[9] = fields["proto"]
    return bytes(b)


def lengths():
    """parser.hpp: no length field is trusted.  The IP total length (or 40 + payload length) ends the
    packet and must fit the frame (Ethernet padding after it is ignored); IHL below 5 words or past the
    packet, a TCP data offset below 5 or past the segment, a UDP length below 8 or past the datagram,
    IPv4 protocol 0 and a zero IPv6 payload length (a jumbogram Ethernet cannot carry) are dropped,
    each with its own counter.  A UDP length shorter than the datagram is accepted (RFC 768: the rest
    is padding)."""
    c = Capture("005-lengths")
    syn = tcp(45000, 5432, "S", WEB_ISN)
    ip_syn = v4(WEB4, DB4) / syn
    e = eth(WEB_MAC, DB_MAC)
    for vihl in (0x44, 0x40, 0x43):
        c.drop(e4() / Raw(raw_ip4(ip_syn, vihl=vihl)), "bad_ipv4_ihl")
    c.drop(e4() / Raw(raw_ip4(ip_syn, vihl=0x4F)), "bad_ipv4_ihl")           # 60 bytes of header in 40
    options = [IPOption_NOP(), IPOption_NOP(), IPOption_NOP(), IPOption_EOL()]
    c.rule(e / v4(WEB4, DB4, options=options) / syn, "web-db")               # IHL 6
    for total in (1000, 41, 19, 0):
        c.drop(e4() / Raw(raw_ip4(ip_syn, total=total)), "bad_ipv4_length")
    # 20 bytes of Ethernet padding after the packet: ignored
    c.rule(e4() / Raw(bytes(v4(WEB4, DB4) / tcp(45001, 5432, "S", WEB_ISN)) + b"\xEE" * 20), "web-db")
    c.drop(e4() / Raw(raw_ip4(ip_syn, vihl=0x65)), "bad_ipv4_version")
    c.drop(e4() / Raw(raw_ip4(ip_syn, proto=0)), "bad_ip_proto")
    ip6 = bytearray(bytes(v6(WEB6, DB6) / tcp(45002, 5432, "S", WEB_ISN)))
    for payload, counter in ((1000, "bad_ipv6_length"), (21, "bad_ipv6_length"), (0, "bad_ipv6_length")):
        b = bytearray(ip6)
        b[4:6] = struct.pack("!H", payload)
        c.drop(e6() / Raw(bytes(b)), counter)
    b = bytearray(ip6)
    b[0] = 0x45
    c.drop(e6() / Raw(bytes(b)), "bad_ipv6_version")
    # TCP data offset: below 5 words, past the segment
    for offset in (0, 4, 6, 15):
        seg = bytearray(bytes(tcp(45003, 5432, "S", WEB_ISN)))
        seg[12] = offset << 4
        c.drop(e / v4(WEB4, DB4, proto=6) / Raw(bytes(seg)), "bad_tcp_data_offset")
    c.rule(e / v4(WEB4, DB4) / TCP(sport=45004, dport=5432, flags="S", seq=WEB_ISN, window=WINDOW,
                                   options=[("MSS", 1460)]), "web-db")
    # UDP length: below 8, past the datagram (v4 and v6), shorter than it (accepted)
    for length in (0, 7, 9, 100):
        c.drop(e / v4(WEB4, DB4) / UDP(sport=45005, dport=53, len=length), "bad_udp_length")
    c.drop(e / v6(WEB6, DB6) / UDP(sport=45005, dport=53, len=200) / Raw(b"x" * 4), "bad_udp_length")
    c.rule(e / v4(WEB4, DB4) / UDP(sport=45006, dport=53, len=8) / Raw(b"x" * 20), "web-dns")
    # what is not IP
    c.drop(e / Dot1Q(vlan=0, type=0x8100) / Dot1Q(vlan=10) / v4(WEB4, DB4) / syn, "qinq")
    c.drop(Ether(src=WEB_MAC, dst=DB_MAC, type=0x88A8) / Dot1Q(vlan=0, type=0x8100) / Dot1Q(vlan=10) /
           v4(WEB4, DB4) / syn, "qinq")
    # an 802.1ad tag alone is a VLAN tag (parser.hpp): VLAN 0, so web-1's SYN passes
    c.rule(Ether(src=WEB_MAC, dst=DB_MAC, type=0x88A8) / Dot1Q(vlan=0) / v4(WEB4, DB4) / tcp(45007, 5432, "S", WEB_ISN),
           "web-db")
    c.drop(Ether(src=WEB_MAC, dst="01:80:c2:00:00:0e", type=0x88CC) / Raw(bytes(20)), "unsupported_ethertype")
    c.drop(Ether(src=WEB_MAC, dst=BCAST, type=0x0806) / Raw(bytes(ARP(psrc=WEB4, pdst=DB4, hwsrc=WEB_MAC))[:20]),
           "truncated_arp")
    c.drop(Ether(src=WEB_MAC, dst=BCAST) / ARP(hwtype=6, psrc=WEB4, pdst=DB4, hwsrc=WEB_MAC), "truncated_arp")
    c.drop(eth(WEB_MAC, DB_MAC, vlan=30) / v4(WEB4, DB4) / syn, "unknown_segment")
    ns = bytes(ICMPv6ND_NS(tgt=DB6))[:16]           # an NS cut before its target
    c.drop(e / v6(WEB6, DB6, nh=58, hlim=255) / Raw(ns), "truncated_icmp")
    c.drop(e / v4(WEB4, DB4, proto=1) / Raw(b"\x08\x00\x00\x00"), "truncated_icmp")  # 4 bytes of ICMP
    c.write()


def cuts(c, frame, first_reasons, consistent=None, full=None):
    """Every prefix of `frame` (0 .. len-1 bytes), each with the reason from first_reasons, a list of
    (prefix-length limit, counter): the first entry whose limit exceeds the prefix length applies.
    `consistent`: (l3_offset, family, l4_reasons) - the same cuts with the IP length field rewritten
    to end at the cut, for every cut inside the L4 header."""
    raw = bytes(frame)
    for n in range(len(raw)):
        counter = next(r for limit, r in first_reasons if n < limit)
        c.drop(Raw(raw[:n]), counter)
    if consistent:
        l3, family, l4_reasons = consistent
        l4 = l3 + (20 if family == 4 else 40)
        for n in range(l4, len(raw)):
            b = bytearray(raw[:n])
            if family == 4:
                b[l3 + 2:l3 + 4] = struct.pack("!H", n - l3)
            else:
                b[l3 + 4:l3 + 6] = struct.pack("!H", n - l4)
            counter = next(r for limit, r in l4_reasons if n - l4 < limit)
            c.drop(Raw(bytes(b)), counter)
    if full:
        full(frame)


def truncated():
    """Five frames cut at every byte (parser.hpp): shorter than 14 bytes is `truncated_ethernet`, a cut
    802.1Q tag `truncated_vlan`, a cut IP header `truncated_ipv4`/`truncated_ipv6`; once the IP header
    is whole, its length field runs past the cut frame (`bad_ipv4_length`/`bad_ipv6_length`).  With the
    IP length rewritten to end at the cut, the L4 header is what is cut: `truncated_tcp`,
    `truncated_udp`, `truncated_icmp`, and for UDP a whole header whose length field is too long
    (`bad_udp_length`); an IPv6 payload length of 0 stays `bad_ipv6_length`.  Each whole frame passes."""
    c = Capture("006-truncated")
    tcp4 = web_to_db(tcp(46000, 5432, "S", WEB_ISN))                       # 54 bytes
    cuts(c, tcp4, [(14, "truncated_ethernet"), (34, "truncated_ipv4"), (54, "bad_ipv4_length")],
         (14, 4, [(20, "truncated_tcp")]), lambda f: c.rule(f, "web-db"))
    udp4 = web_to_db(UDP(sport=46001, dport=53) / Raw(b"dns?"))            # 46 bytes
    cuts(c, udp4, [(14, "truncated_ethernet"), (34, "truncated_ipv4"), (46, "bad_ipv4_length")],
         (14, 4, [(8, "truncated_udp"), (12, "bad_udp_length")]), lambda f: c.rule(f, "web-dns"))
    icmp4 = web_to_db(ICMP(type=8, id=0x600, seq=1))                       # 42 bytes
    cuts(c, icmp4, [(14, "truncated_ethernet"), (34, "truncated_ipv4"), (42, "bad_ipv4_length")],
         (14, 4, [(8, "truncated_icmp")]), lambda f: c.rule(f, "web-ping"))
    tcp6 = web_to_db(tcp(46002, 5432, "S", WEB_ISN), True)                 # 74 bytes
    cuts(c, tcp6, [(14, "truncated_ethernet"), (54, "truncated_ipv6"), (74, "bad_ipv6_length")],
         (14, 6, [(1, "bad_ipv6_length"), (20, "truncated_tcp")]), lambda f: c.rule(f, "web-db"))
    vlan = eth(LAB_MAC, DB_MAC, vlan=20) / v4(LAB4, DB4) / UDP(sport=46003, dport=53) / Raw(b"dns?")  # 50
    cuts(c, vlan, [(14, "truncated_ethernet"), (18, "truncated_vlan"), (38, "truncated_ipv4"),
                   (50, "bad_ipv4_length")], None, lambda f: c.rule(f, "lab-dns"))
    c.write()


# --- 007/008: ICMP --------------------------------------------------------------------------------

def quoted4(src, dst, l4):
    return Raw(bytes(v4(src, dst) / l4))


def quoted6(src, dst, l4):
    return Raw(bytes(v6(src, dst) / l4))


def icmp_related():
    """conntrack.hpp: an ICMP error passes only as `related`: its quoted header must belong to a live
    connection of this segment, and the error must be addressed to whoever sent the quoted packet.  A
    router (here app-1) may send it; an error about web-1's connection sent to db-1, one quoting a
    packet web-1 never sent, one with other ports or another protocol, one whose quote is cut, and one
    from another segment are `related_no_flow` (the CVE-2019-5598 pattern: pf matched the quote
    without checking where the error was going)."""
    c = Capture("007-icmp-related")
    handshake(c, 47000)
    fwd = tcp(47000, 5432, "A", WEB_ISN + 1, DB_ISN + 1)      # a packet of the connection, web-1 -> db-1
    rev = tcp(5432, 47000, "A", DB_ISN + 1, WEB_ISN + 1)      # ... and one of db-1's replies
    icmp = lambda src_mac, dst_mac, src, dst, t, code, quote, vlan=None: (
        eth(src_mac, dst_mac, vlan) / v4(src, dst) / ICMP(type=t, code=code) / quote)
    c.allow(icmp(DB_MAC, WEB_MAC, DB4, WEB4, 3, 3, quoted4(WEB4, DB4, fwd)), "related")    # from the peer
    c.allow(icmp(APP_MAC, WEB_MAC, APP4, WEB4, 11, 0, quoted4(WEB4, DB4, fwd)), "related")  # from a router
    c.allow(icmp(APP_MAC, WEB_MAC, APP4, WEB4, 5, 1, quoted4(WEB4, DB4, fwd)), "related")   # a redirect
    c.allow(icmp(APP_MAC, DB_MAC, APP4, DB4, 3, 1, quoted4(DB4, WEB4, rev)), "related")     # db-1's reply
    c.drop(icmp(APP_MAC, DB_MAC, APP4, DB4, 3, 3, quoted4(WEB4, DB4, fwd)), "related_no_flow")  # to db-1
    c.drop(icmp(APP_MAC, WEB_MAC, APP4, WEB4, 3, 1, quoted4(DB4, WEB4, rev)), "related_no_flow")  # swapped
    c.drop(icmp(APP_MAC, WEB_MAC, APP4, WEB4, 3, 3, quoted4(WEB4, DB4, tcp(47999, 5432, "A", 1))),
           "related_no_flow")                                                               # other port
    c.drop(icmp(APP_MAC, WEB_MAC, APP4, WEB4, 3, 3, quoted4(WEB4, DB4, UDP(sport=47000, dport=5432))),
           "related_no_flow")                                                               # other protocol
    c.drop(icmp(APP_MAC, WEB_MAC, APP4, WEB4, 3, 3, Raw(bytes(v4(WEB4, DB4) / fwd)[:24])), "related_no_flow")
    c.drop(icmp(APP_MAC, WEB_MAC, APP4, WEB4, 3, 3, Raw(bytes(v4(WEB4, DB4) / fwd)[:12])), "related_no_flow")
    c.drop(icmp(APP_MAC, WEB_MAC, APP4, WEB4, 3, 3, quoted6(WEB6, DB6, fwd)), "related_no_flow")  # v6 quote
    c.drop(icmp(LAB_MAC, WEB_MAC, LAB4, WEB4, 11, 0, quoted4(WEB4, DB4, fwd), vlan=20), "related_no_flow")
    # IPv6
    handshake(c, 47001, six=True)
    icmp6 = lambda src_mac, dst_mac, src, dst, msg: eth(src_mac, dst_mac) / v6(src, dst) / msg
    c.allow(icmp6(DB_MAC, WEB_MAC, DB6, WEB6, ICMPv6DestUnreach(code=4) / quoted6(WEB6, DB6, fwd_port(fwd, 47001))),
            "related")
    c.allow(icmp6(APP_MAC, WEB_MAC, APP6, WEB6, ICMPv6PacketTooBig(mtu=1280) / quoted6(WEB6, DB6, fwd_port(fwd, 47001))),
            "related")
    c.drop(icmp6(APP_MAC, DB_MAC, APP6, DB6, ICMPv6PacketTooBig(mtu=1280) / quoted6(WEB6, DB6, fwd_port(fwd, 47001))),
           "related_no_flow")
    c.drop(icmp6(APP_MAC, WEB_MAC, APP6, WEB6, ICMPv6DestUnreach(code=4) / quoted4(WEB4, DB4, fwd_port(fwd, 47001))),
           "related_no_flow")
    c.write()


def fwd_port(seg, sport):
    s = seg.copy()
    s.sport = sport
    return s


def icmp_echo_id():
    """flow_table.hpp: an echo key is (requester, responder, id), so "A pings B" and "B pings A" with
    the same id (0 included) are different exchanges, and only a request opens one.  An ICMP error
    quoting an echo is related only to the exchange that quoted message belongs to: a quoted request
    from the responder, or a quoted non-echo ICMP message whose identifier bytes happen to match, is
    `related_no_flow` (the CVE-2024-6640 pattern: pf matched ICMPv6 messages of the wrong type to an
    echo state)."""
    c = Capture("008-icmp-echo-id")
    for six in (False, True):
        req = (lambda i: ICMPv6EchoRequest(id=i, seq=1)) if six else (lambda i: ICMP(type=8, id=i, seq=1))
        rep = (lambda i: ICMPv6EchoReply(id=i, seq=1)) if six else (lambda i: ICMP(type=0, id=i, seq=1))
        quote = quoted6 if six else quoted4
        web, db, app = (WEB6, DB6, APP6) if six else (WEB4, DB4, APP4)
        err = ((lambda q: ICMPv6TimeExceeded() / q) if six else (lambda q: ICMP(type=11, code=0) / q))
        from_app = lambda dst_mac, dst, q: eth(APP_MAC, dst_mac) / (v6(app, dst) if six else v4(app, dst)) / err(q)
        c.rule(web_to_db(req(0), six), "web-ping")
        c.allow(db_to_web(rep(0), six))
        c.drop(db_to_web(rep(0x55), six), "invalid_icmp_no_flow")          # a reply to nothing
        c.drop(web_to_db(rep(0), six), "invalid_icmp_no_flow")             # a reply the wrong way
        c.drop(db_to_web(req(0), six), "default")                          # db-1 pings web-1: no rule
        c.allow(from_app(WEB_MAC, web, quote(web, db, req(0))), "related")  # about web-1's request
        c.allow(from_app(DB_MAC, db, quote(db, web, rep(0))), "related")    # about db-1's reply
        c.drop(from_app(DB_MAC, db, quote(db, web, req(0))), "related_no_flow")  # a request db-1 never sent
        c.drop(from_app(WEB_MAC, web, quote(web, db, rep(0))), "related_no_flow")  # a reply web-1 never sent
        # a quoted non-echo message whose identifier bytes are 0: an unreachable, a neighbour solicitation
        other = ICMPv6ND_NS(tgt=db) if six else ICMP(type=3, code=1)
        c.drop(from_app(WEB_MAC, web, quote(web, db, other)), "related_no_flow")
        c.rule(web_to_db(req(0x99), six), "web-ping")
        c.allow(db_to_web(rep(0x99), six))
    c.write()


# --- 009: SpoofGuard ------------------------------------------------------------------------------

def spoofing():
    """identity.hpp, SpoofGuard on a workload port: the source address must be bound to an endpoint of
    the packet's segment, from its bound MAC (`spoofed_ip`, `spoofed_mac`); ARP senders likewise, and
    the ARP sender MAC must be the frame's (`spoofed_arp`), also for gratuitous ARP and ARP probes; a
    neighbour advertisement may only claim the sender's own addresses with its own MAC, a DAD
    solicitation only probe an address the frame could claim (`spoofed_nd`); router advertisements
    from a workload's link-local address are not infrastructure a workload needs (`spoofed_ip`)."""
    c = Capture("009-spoofing")
    syn = tcp(48000, 5432, "S", WEB_ISN)
    c.drop(eth(STRANGER_MAC, DB_MAC) / v4(WEB4, DB4) / syn, "spoofed_mac")
    c.drop(eth(DB_MAC, DB_MAC) / v4(WEB4, DB4) / syn, "spoofed_mac")             # db-1's MAC
    c.drop(eth(WEB_MAC, DB_MAC, vlan=20) / v4(WEB4, DB4) / syn, "spoofed_ip")    # web-1 is not in VLAN 20
    c.drop(eth(WEB_MAC, DB_MAC, vlan=30) / v4(WEB4, DB4) / syn, "unknown_segment")
    c.drop(eth(WEB_MAC, DB_MAC) / v4("198.18.10.99", DB4) / syn, "spoofed_ip")  # bound to nobody
    c.drop(eth(STRANGER_MAC, DB_MAC) / v6(WEB6, DB6) / syn, "spoofed_mac")
    c.drop(eth(LAB_MAC, DB_MAC) / v4(LAB4, DB4) / UDP(sport=48001, dport=53), "spoofed_ip")  # lab-1 untagged
    arp = lambda src_mac, op, hwsrc, psrc, pdst, vlan=None: (
        eth(src_mac, BCAST, vlan) / ARP(op=op, hwsrc=hwsrc, psrc=psrc, hwdst="00:00:00:00:00:00", pdst=pdst))
    c.drop(arp(WEB_MAC, 2, WEB_MAC, DB4, WEB4), "spoofed_arp")           # a reply claiming db-1's address
    c.drop(arp(WEB_MAC, 2, DB_MAC, DB4, WEB4), "spoofed_arp")            # ... with db-1's MAC inside
    c.drop(arp(WEB_MAC, 1, WEB_MAC, DB4, DB4), "spoofed_arp")            # gratuitous, for db-1's address
    c.allow(arp(WEB_MAC, 1, WEB_MAC, WEB4, WEB4), "arp_nd")              # gratuitous, for its own
    c.drop(arp(WEB_MAC, 1, WEB_MAC, "0.0.0.0", DB4), "spoofed_arp")      # a probe for db-1's address
    c.allow(arp(WEB_MAC, 1, WEB_MAC, "0.0.0.0", WEB4), "arp_nd")         # a probe for its own
    c.drop(arp(LAB_MAC, 2, LAB_MAC, LAB4, WEB4), "spoofed_arp")          # lab-1's address outside VLAN 20
    c.allow(arp(LAB_MAC, 2, LAB_MAC, LAB4, "198.18.40.1", vlan=20), "arp_nd")
    nd = lambda src, dst, msg, src_mac=WEB_MAC: eth(src_mac, DB_MAC) / v6(src, dst, hlim=255) / msg
    na = lambda tgt, ll: ICMPv6ND_NA(tgt=tgt, R=0, S=1, O=1) / ICMPv6NDOptDstLLAddr(lladdr=ll)
    c.drop(nd(WEB6, DB6, na(DB6, WEB_MAC)), "spoofed_nd")                # db-1's address
    c.drop(nd(WEB6, DB6, na("2001:db8:10::99", WEB_MAC)), "spoofed_nd")  # an address bound to nobody
    c.drop(nd(WEB6, DB6, na(WEB6, DB_MAC)), "spoofed_nd")                # its own, with db-1's MAC
    c.allow(nd(WEB6, DB6, na(WEB6, WEB_MAC)), "arp_nd")
    c.allow(nd(WEB_LL, DB6, na(WEB6, WEB_MAC)), "arp_nd")                # from its EUI-64 link-local
    dad = lambda tgt: nd("::", "ff02::1:ff00:11", ICMPv6ND_NS(tgt=tgt))
    c.drop(dad(DB6), "spoofed_nd")
    c.drop(dad("2001:db8:10::99"), "spoofed_nd")
    c.allow(dad(WEB6), "arp_nd")
    c.allow(nd(WEB6, DB6, ICMPv6ND_NS(tgt=DB6) / ICMPv6NDOptSrcLLAddr(lladdr=WEB_MAC)), "arp_nd")  # resolution
    c.drop(nd(WEB6, DB6, ICMPv6ND_NS(tgt=DB6) / ICMPv6NDOptSrcLLAddr(lladdr=STRANGER_MAC)), "spoofed_nd")
    c.drop(nd(WEB_LL, "ff02::1", ICMPv6ND_RA()), "spoofed_ip")           # a rogue router advertisement
    c.drop(nd(DB_LL, DB6, na(DB6, DB_MAC)), "spoofed_mac")               # db-1's link-local from web-1
    c.rule(web_to_db(syn), "web-db")                                     # the real web-1
    c.write()


# --- 010: fragment flood --------------------------------------------------------------------------

def fragment_flood():
    """fragments.hpp: the table holds FRAG_CAPACITY datagrams in FRAG_CAPACITY * FRAG_ENTRY_BYTES of
    memory allocated at start.  A flood of allowed first fragments that never complete (16384 distinct
    datagrams in 0.6 s, none idle for FRAG_IDLE_EVICTABLE_S) fills it: exactly FRAG_CAPACITY of them
    find a slot (nothing frees one during the flood: no datagram completes or times out), every other
    one is `fragment_table_full`.  Which ones find a slot depends on the seeded hash, so their verdicts
    are not asserted one by one; the first 256 are (a quarter of a bucket on average: no bucket pair
    can be full).  8192 orphan later fragments of other datagrams (another protocol) take no room:
    `fragment_no_first` each.  Two seconds later the flood is idle and evictable: a legitimate
    fragmented echo request passes and completes, and its reply passes."""
    c = Capture("010-fragment-flood", step=25e-6)
    c.partial = "which flood datagrams find room depends on the seeded hash (fragments.hpp); the counts do not"
    rng = random.Random(1858)
    firsts, orphans = 16384, 8192
    kinds = ["first"] * firsts + ["orphan"] * orphans
    rng.shuffle(kinds)
    kinds.remove("first")
    kinds.insert(0, "first")                        # the first packet opens the echo connection
    head = Raw(l4_bytes(v4(WEB4, DB4), ICMP(type=8, id=0x1000, seq=1) / Raw(b"f" * 8))[:8])  # the header only
    seen_first = 0
    for kind in kinds:
        if kind == "first":
            seen_first += 1
            ipid = seen_first                        # 1 .. 16384: distinct datagrams
            pkt = Ether(src=WEB_MAC, dst=DB_MAC) / IP(src=WEB4, dst=DB4, id=ipid, flags="MF", proto=1) / head
            if seen_first == 1:
                c.rule(pkt, "web-ping")
            elif seen_first <= 256:
                c.allow(pkt)
            else:
                # established or fragment_table_full: counted below, not asserted one by one
                c.add(pkt, "?", "established", assert_verdict=False)
        else:
            off = rng.randrange(1, 8000) * 8
            pkt = frag4(WEB_MAC, DB_MAC, WEB4, DB4, 17, rng.randrange(65536), b"", off, 8, rng.random() < 0.9)
            c.drop(pkt, "fragment_no_first")
    # exactly FRAG_CAPACITY flood datagrams found a slot (the first one's counter is `rule`)
    assert c.reasons["established"] == firsts - 1
    c.reasons["established"] = FRAG_CAPACITY - 1
    c.reasons["fragment_table_full"] = firsts - FRAG_CAPACITY
    # two seconds later
    data = echo4(0x2000, 2000)
    c.rule(w4frag(60000, data, 0, 1480, True), "web-ping", at=c.t + 2.0)
    c.allow(w4frag(60000, data, 1480, 528, False))
    c.allow(db_to_web(ICMP(type=0, id=0x2000, seq=1) / Raw(b"r" * 32)))
    stats = {"fragment_table": {"capacity": FRAG_CAPACITY, "high_water": FRAG_CAPACITY,
                                "in_use": FRAG_CAPACITY - 1,  # the legitimate one completed and left
                                "memory_bytes": FRAG_CAPACITY * FRAG_ENTRY_BYTES}}
    c.write(stats)



# --- 011: fragmented TCP --------------------------------------------------------------------------

def frag_tcp():
    """A TCP segment may arrive fragmented (IPv4 without DF; IPv6 fragmented at the source).  tagwall
    never reassembles: the first fragment is tracked with the bytes it carries, and the later ones
    extend the segment as they pass (fragments.hpp), so the receiver's acknowledgement of the whole
    segment is inside the window.  A forged second first fragment (here carrying RST at the exact
    sequence number) is an overlap and is dropped before connection tracking sees it: the connection
    stays ESTABLISHED, and a SYN on its ports is still `invalid_tcp_state`."""
    c = Capture("011-frag-tcp")
    w, d = handshake(c, 49000)
    seg = l4_bytes(v4(WEB4, DB4), tcp(49000, 5432, "PA", w, d, b"a" * 2000))   # 2020 bytes
    c.allow(w4frag(1101, seg, 0, 1480, True, proto=6))
    c.allow(w4frag(1101, seg, 1480, 540, False, proto=6))
    w += 2000
    c.allow(db_to_web(tcp(5432, 49000, "A", d, w)))                  # acknowledges the whole segment
    c.allow(web_to_db(tcp(49000, 5432, "PA", w, d, b"b" * 10)))
    w += 10
    c.allow(db_to_web(tcp(5432, 49000, "A", d, w)))
    seg = l4_bytes(v4(WEB4, DB4), tcp(49000, 5432, "PA", w, d, b"c" * 2000))
    c.allow(w4frag(1102, seg, 0, 1480, True, proto=6))
    forged = l4_bytes(v4(WEB4, DB4), tcp(49000, 5432, "RA", w, d, b"c" * 1460))  # exact sequence number
    c.drop(w4frag(1102, forged, 0, 1480, True, proto=6), "fragment_overlap")
    c.drop(w4frag(1102, seg, 1480, 540, False, proto=6), "fragment_overlap")
    c.drop(web_to_db(tcp(49000, 5432, "S", WEB_ISN + 9_000_000)), "invalid_tcp_state")
    c.allow(web_to_db(tcp(49000, 5432, "PA", w, d, b"c" * 10)))     # the sender retransmits
    # IPv6, with destination options after the Fragment header (fragment data too)
    w6, d6 = handshake(c, 49001, six=True)
    part = l4_bytes(v6(WEB6, DB6), IPv6ExtHdrDestOpt(nh=6) / tcp(49001, 5432, "PA", w6, d6, b"v" * 1000))  # 1028
    c.allow(w6frag(0x1103, part, 0, 512, True, nh=60))
    c.allow(w6frag(0x1103, part, 512, 516, False, nh=60))
    c.allow(db_to_web(tcp(5432, 49001, "A", d6, w6 + 1000), True))
    c.write()


def main():
    os.makedirs(HERE, exist_ok=True)
    with open(os.path.join(HERE, "policy.yaml"), "w") as f:
        f.write(POLICY)
    tcp_rst()
    tcp_desync()
    frag_v4()
    frag_v6()
    lengths()
    truncated()
    icmp_related()
    icmp_echo_id()
    spoofing()
    fragment_flood()
    frag_tcp()


if __name__ == "__main__":
    sys.exit(main())
