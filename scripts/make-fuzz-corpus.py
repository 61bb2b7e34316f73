#!/usr/bin/env python3
"""Writes the seed corpora of the fuzz targets, tests/fuzz/corpus/<target>/, from what the project
already has: the captures of pcaps/, the policies of conf/ and pcaps/ and the unit tests, and one
example of every request tagwallctl sends.  The files are committed; run this again after pcaps/ or the
request protocol changes (it replaces each seed directory's *.seed files, and leaves the regression
inputs, regress-*, alone).

Formats (see the header comment of each tests/fuzz/fuzz_*.cpp):
  fuzz-packet       6-byte header (flags, time step, reply seq) + one Ethernet frame
  fuzz-pipeline     a pcap file
  fuzz-policy       a policy YAML file
  fuzz-ctl          request lines, as a client writes them on the control socket
  fuzz-policy-pcap  policy YAML, "\\n#pcap\\n", a pcap file

usage: scripts/make-fuzz-corpus.py [--check]   (--check: exit 1 if the committed seeds differ)
"""
import hashlib
import json
import re
import struct
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT / "tests" / "fuzz" / "corpus"
SEPARATOR = b"\n#pcap\n"


def pcap_records(path):
    """(header bytes, [(record header, frame)]) of a classic little- or big-endian pcap."""
    data = path.read_bytes()
    magic = data[:4]
    endian = "<" if magic in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1") else ">"
    records, off = [], 24
    while off + 16 <= len(data):
        sec, frac, incl, orig = struct.unpack(endian + "IIII", data[off:off + 16])
        records.append((data[off:off + 16], data[off + 16:off + 16 + incl]))
        off += 16 + incl
    return data[:24], records, endian


def with_sigfigs(header, endian, value):
    return header[:12] + struct.pack(endian + "I", value) + header[16:]


def with_port(record_header, endian, port):
    """The record header with its sub-second field's low two bits set to `port` (tests/fuzz/fuzz_replay.hpp)."""
    sec, frac, incl, orig = struct.unpack(endian + "IIII", record_header)
    return struct.pack(endian + "IIII", sec, (frac & ~3) | port, incl, orig)


def unit_test_policies():
    """Every string literal of the unit tests that is a policy (starts with `version: 1`): raw ones as
    they are, ordinary ones with their escapes decoded."""
    out = []
    for path in sorted((ROOT / "tests").glob("*/*.cpp")):
        if path.parent.name == "fuzz":
            continue
        text = path.read_text()
        for m in re.finditer(r'R"\((version: 1.*?)\)"', text, re.S):
            out.append((f"{path.stem}", m.group(1).encode()))
        for m in re.finditer(r'(?<![R\w])"(version: 1(?:[^"\\]|\\.)*)"', text):
            out.append((f"{path.stem}-inline", m.group(1).encode().decode("unicode_escape").encode()))
    return out


def ctl_requests():
    """One line per request tagwallctl makes (src/tools/tagwallctl_main.cpp), and a few a client might."""
    reqs = [
        {"cmd": "status"}, {"cmd": "stats"}, {"cmd": "ports"}, {"cmd": "rules"},
        {"cmd": "policy", "action": "show"},
        {"cmd": "policy", "action": "load", "file": "pcaps/policy.yaml", "dry_run": True},
        {"cmd": "policy", "action": "load", "file": "conf/demo/policy.yaml", "dry_run": True},
        {"cmd": "policy", "action": "load", "file": "conf/demo/policy-broken.yaml", "dry_run": False},
        {"cmd": "policy", "action": "load", "file": "conf/demo/policy.yaml", "dry_run": False},
        {"cmd": "endpoint", "action": "list"},
        {"cmd": "endpoint", "action": "tag", "name": "web-1", "tags": {"tier": "quarantine"}},
        {"cmd": "endpoint", "action": "untag", "name": "db-1", "keys": ["tier"]},
        {"cmd": "flows", "filter": {}},
        {"cmd": "flows", "filter": {"proto": "tcp", "port": "5432"}},
        {"cmd": "flows", "filter": {"segment": "prod", "addr": "198.18.10.11", "rule": "web-db"}},
        {"cmd": "flows", "action": "flush"},
        {"cmd": "trace", "segment": "prod", "src": "198.18.10.11", "dst": "198.18.30.11", "proto": "tcp",
         "sport": 40000, "dport": 5432},
        {"cmd": "trace", "segment": "prod", "src": "2001:db8:30::11", "dst": "2001:db8:10::11", "proto": "icmpv6"},
        {"cmd": "trace", "segment": "prod", "src": "198.18.30.11", "dst": "198.18.10.11", "proto": "47"},
        {"cmd": "events", "follow": True},
    ]
    seeds = [(f"{r['cmd']}-{r.get('action', 'x')}-{i}", (json.dumps(r) + "\n").encode()) for i, r in enumerate(reqs)]
    seeds += [
        ("pipelined", b'{"cmd":"status"}\n{"cmd":"rules"}\r\n\n  \n{"cmd":"flows","filter":{"proto":"tcp"}}'),
        ("malformed", b'{"cmd":\n[1,2]\n"status"\n{"cmd":"nope"}\n{}\n'),
        ("oversized", b'{"cmd":"status","pad":"' + b"x" * 1100 + b'"}\n{"cmd":"status"}\n'),
    ]
    return seeds


def seeds():
    """(target, name, bytes) for every seed."""
    out = []
    pcaps = sorted((ROOT / "pcaps").glob("[0-9][0-9][0-9]-*.pcap"))
    # fuzz-packet: every distinct frame of pcaps/, on a workload port and (mirrored) from the uplink.
    frames = {}
    for p in pcaps:
        _, records, _ = pcap_records(p)
        for i, (_, frame) in enumerate(records):
            frames.setdefault(frame, f"{p.stem}-{i}")
    for frame, name in frames.items():
        out.append(("fuzz-packet", name, bytes([0x06, 20, 0, 0, 0x10, 0]) + frame))
        out.append(("fuzz-packet", name + "-up", bytes([0x0f, 30, 0, 1, 0, 0]) + frame))
    # fuzz-pipeline: the captures as they are, one in switch mode, one spread over the three ports.
    for p in pcaps:
        out.append(("fuzz-pipeline", p.stem, p.read_bytes()))
    header, records, endian = pcap_records(ROOT / "pcaps" / "001-tcp-allowed.pcap")
    out.append(("fuzz-pipeline", "001-switch", with_sigfigs(header, endian, 1) + b"".join(h + f for h, f in records)))
    spread = b"".join(with_port(h, endian, i % 4) + f for i, (h, f) in enumerate(records))
    out.append(("fuzz-pipeline", "001-ports", header + spread))
    # fuzz-policy: the project's policies and the unit tests'.
    policies = [("demo", (ROOT / "conf/demo/policy.yaml").read_bytes()),
                ("demo-broken", (ROOT / "conf/demo/policy-broken.yaml").read_bytes()),
                ("pcaps", (ROOT / "pcaps/policy.yaml").read_bytes())]
    policies += unit_test_policies()
    for name, text in policies:
        out.append(("fuzz-policy", name, text))
    # fuzz-ctl
    for name, line in ctl_requests():
        out.append(("fuzz-ctl", name, line))
    # fuzz-policy-pcap: the pcap tests' captures under their own policy, under one that revokes the
    # allowed connections mid-stream, and under the demo's.
    pcaps_policy = (ROOT / "pcaps/policy.yaml").read_bytes()
    revoking = pcaps_policy.replace(b"services: [postgres], action: allow", b"services: [postgres], action: reject")
    for p in pcaps:
        for pname, ptext in (("same", pcaps_policy), ("revoke", revoking)):
            out.append(("fuzz-policy-pcap", f"{p.stem}-{pname}", ptext + SEPARATOR + p.read_bytes()))
    out.append(("fuzz-policy-pcap", "001-demo", (ROOT / "conf/demo/policy.yaml").read_bytes() + SEPARATOR +
                (ROOT / "pcaps/001-tcp-allowed.pcap").read_bytes()))
    return out


def main():
    check = "--check" in sys.argv[1:]
    wanted = {}
    for target, name, data in seeds():
        digest = hashlib.sha1(data).hexdigest()[:8]
        wanted[CORPUS / target / f"{name}-{digest}.seed"] = data
    have = {p: p.read_bytes() for p in CORPUS.glob("*/*.seed")}
    if check:
        if set(have) != set(wanted) or any(have[p] != d for p, d in wanted.items()):
            print("tests/fuzz/corpus is not what scripts/make-fuzz-corpus.py writes: run it and commit", file=sys.stderr)
            return 1
        return 0
    for p in set(have) - set(wanted):
        p.unlink()
    for p, d in wanted.items():
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(d)
    counts = {}
    for p in wanted:
        counts[p.parent.name] = counts.get(p.parent.name, 0) + 1
    for target, n in sorted(counts.items()):
        print(f"{target}: {n} seeds")
    return 0


if __name__ == "__main__":
    sys.exit(main())
