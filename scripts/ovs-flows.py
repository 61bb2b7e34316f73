#!/usr/bin/python3
"""Translates a tagwall policy (policy language v1) into an Open vSwitch OpenFlow pipeline with the same
meaning, for the OVS-DPDK peer of scripts/bench-replay.sh: stateful, conntrack-based, in the manner of
OpenStack's security groups (ct(), ct_state +new commit for allowed tuples, +est/+rel pass, registers for
identities and conjunctive matches for group x group rules).  Writes `ovs-ofctl add-flows` input on stdout.

Tables (reg2: 1 = came in on a workload port; reg3: the ofport of its wire peer; reg4: VLAN = ct zone;
reg0 / reg1: source / destination endpoint number, 0 = external):
  0  in_port -> reg2, reg3 (wire pairs given by --pair WORKLOAD_OFPORT:UPLINK_OFPORT)
  1  ARP passes; SpoofGuard: on a workload port an IP source must be bound to an endpoint of the frame's
     segment (VLAN), with its MAC when bound; on an uplink any source; a VLAN that names no segment drops
  2  ct(zone=VLAN, table=3)
  3  +trk+est / +trk+rel: output to the peer; +trk+inv: drop; +trk+new: classify (4, 5, 6)
  4  source identity: an endpoint's address loads its number into reg0 (the rest stay external)
  5  destination identity into reg1
  6  the rules, first match wins (priority falls with the rule index): from x to x services as a
     conjunction of the non-`any` dimensions; allow = ct(commit) + output, drop and reject = drop (OVS
     sends no RST of its own); then the policy's default
Identity follows the policy language: a cidr group holds external addresses only (reg = 0 and the
prefix), tag and segment groups hold endpoints only.  Not translated (the benchmark's policies do not use
them, the script says so and stops): the unspecified and EUI-64 link-local sources SpoofGuard accepts for
DHCP/DAD, ND target checks, fragments (OVS reassembles in ct).

Usage: ovs-flows.py POLICY.yaml --pair 1:2 [--pair 3:4 ...] > flows.txt
"""
import argparse
import ipaddress
import sys

import yaml

ICMP4 = {"echo-reply": 0, "destination-unreachable": 3, "source-quench": 4, "redirect": 5, "echo-request": 8,
         "router-advertisement": 9, "router-solicitation": 10, "time-exceeded": 11, "parameter-problem": 12,
         "timestamp-request": 13, "timestamp-reply": 14}
ICMP6 = {"destination-unreachable": 1, "packet-too-big": 2, "time-exceeded": 3, "parameter-problem": 4,
         "echo-request": 128, "echo-reply": 129, "mld-query": 130, "mld-report": 131, "mld-done": 132,
         "router-solicitation": 133, "router-advertisement": 134, "neighbor-solicitation": 135,
         "neighbor-advertisement": 136, "redirect": 137, "mldv2-report": 143}
L4 = {"tcp": ("tcp", "tcp6"), "udp": ("udp", "udp6"), "sctp": ("sctp", "sctp6")}


def port_masks(lo, hi):
    """[lo, hi] as value/mask pairs (the classic prefix split)."""
    out = []
    while lo <= hi:
        size = 1
        while lo % (size * 2) == 0 and lo + size * 2 - 1 <= hi:
            size *= 2
        out.append(f"{lo}" if size == 1 else f"{lo:#06x}/{0xffff & ~(size - 1):#06x}")
        lo += size
    return out


def service_matches(item):
    """One service item ('tcp/443', 'udp', 'icmp/echo-request', 'proto/47') as OVS match strings."""
    item = str(item).strip()
    proto, _, arg = item.partition("/")
    proto = "icmpv6" if proto == "ipv6-icmp" else proto
    if proto in L4:
        v4, v6 = L4[proto]
        if not arg:
            return [v4, v6]
        lo, _, hi = arg.partition("-")
        masks = port_masks(int(lo), int(hi or lo))
        return [f"{p},tp_dst={m}" for p in (v4, v6) for m in masks]
    if proto == "icmp":
        return ["icmp"] if not arg else [f"icmp,icmp_type={ICMP4[arg] if arg in ICMP4 else int(arg)}"]
    if proto == "icmpv6":
        return ["icmp6"] if not arg else [f"icmp6,icmp_type={ICMP6[arg] if arg in ICMP6 else int(arg)}"]
    if proto == "proto":
        return [f"ip,nw_proto={int(arg)}", f"ipv6,nw_proto={int(arg)}"]
    sys.exit(f"ovs-flows: service item '{item}' is not translated")


def as_list(x):
    return x if isinstance(x, list) else [x]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("policy")
    ap.add_argument("--pair", action="append", required=True, help="WORKLOAD_OFPORT:UPLINK_OFPORT")
    a = ap.parse_args()
    pol = yaml.load(open(a.policy), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    vlan_of = {s["name"]: int(s.get("vlan", 0)) for s in pol.get("segments", [])}
    endpoints = pol.get("endpoints", [])
    groups = pol.get("groups", {}) or {}
    services = pol.get("services", {}) or {}
    flows = []
    emit = flows.append

    def vlan_match(v):
        return f"dl_vlan={v}" if v else "vlan_tci=0x0000/0x1fff"

    # 0: which side, which peer.
    for pair in a.pair:
        w, u = (int(x) for x in pair.split(":"))
        emit(f"table=0,priority=10,in_port={w},actions=load:1->NXM_NX_REG2[],load:{u}->NXM_NX_REG3[],resubmit(,1)")
        emit(f"table=0,priority=10,in_port={u},actions=load:0->NXM_NX_REG2[],load:{w}->NXM_NX_REG3[],resubmit(,1)")
    emit("table=0,priority=0,actions=drop")

    # 1: ARP, SpoofGuard, segments.
    emit("table=1,priority=300,arp,actions=output:NXM_NX_REG3[]")
    for e in endpoints:
        v = vlan_of[e["segment"]]
        mac = f",dl_src={e['mac']}" if e.get("mac") else ""
        for addr in as_list(e["ip"]):
            ip = ipaddress.ip_address(str(addr))
            m = f"ip,nw_src={ip}" if ip.version == 4 else f"ipv6,ipv6_src={ip}"
            emit(f"table=1,priority=200,reg2=1,{vlan_match(v)}{mac},{m},"
                 f"actions=load:{v}->NXM_NX_REG4[],resubmit(,2)")
    for v in sorted(set(vlan_of.values())):
        for t in ("ip", "ipv6"):
            emit(f"table=1,priority=100,reg2=0,{vlan_match(v)},{t},actions=load:{v}->NXM_NX_REG4[],resubmit(,2)")
    emit("table=1,priority=0,actions=drop")

    # 2, 3: connection tracking.
    for t in ("ip", "ipv6"):
        emit(f"table=2,priority=10,{t},actions=ct(table=3,zone=NXM_NX_REG4[0..15])")
    emit("table=3,priority=300,ct_state=+trk+inv,actions=drop")
    emit("table=3,priority=200,ct_state=+trk+est,actions=output:NXM_NX_REG3[]")
    emit("table=3,priority=200,ct_state=+trk+rel,actions=output:NXM_NX_REG3[]")
    emit("table=3,priority=100,ct_state=+trk+new,actions=resubmit(,4)")
    emit("table=3,priority=0,actions=drop")

    # 4, 5: identities (endpoint number = position + 1).
    number = {}
    for i, e in enumerate(endpoints, start=1):
        number[e["name"]] = i
        for addr in as_list(e["ip"]):
            ip = ipaddress.ip_address(str(addr))
            s, d = ("nw_src", "nw_dst") if ip.version == 4 else ("ipv6_src", "ipv6_dst")
            t = "ip" if ip.version == 4 else "ipv6"
            emit(f"table=4,priority=10,{t},{s}={ip},actions=load:{i}->NXM_NX_REG0[],resubmit(,5)")
            emit(f"table=5,priority=10,{t},{d}={ip},actions=load:{i}->NXM_NX_REG1[],resubmit(,6)")
    emit("table=4,priority=0,actions=resubmit(,5)")
    emit("table=5,priority=0,actions=resubmit(,6)")

    by_tag, by_segment = {}, {}
    for e in endpoints:
        by_segment.setdefault(e["segment"], set()).add(number[e["name"]])
        for k, v in (e.get("tags") or {}).items():
            by_tag.setdefault((str(k), str(v)), set()).add(number[e["name"]])
    group_numbers = {}

    def numbers_of(g, spec):
        """The endpoint numbers of a tag or segment group (computed once per group)."""
        if g not in group_numbers:
            if "tags" in spec:
                sets = [by_tag.get((str(k), str(v)), set()) for k, v in spec["tags"].items()]
                group_numbers[g] = set.intersection(*sets) if sets else set()
            else:
                group_numbers[g] = by_segment.get(spec["segment"], set())
        return group_numbers[g]

    def members(group_names, reg, addr_side):
        """Match strings for a rule's from/to; None = any."""
        if group_names == "any" or "any" in as_list(group_names):
            return None
        out = []
        for g in as_list(group_names):
            spec = groups[g]
            if "tags" in spec or "segment" in spec:
                out += [f"{reg}={n}" for n in sorted(numbers_of(g, spec))]
            elif "cidr" in spec:
                for c in as_list(spec["cidr"]):
                    net = ipaddress.ip_network(str(c), strict=False)
                    if net.version == 4:
                        out.append(f"ip,{reg}=0" + ("" if net.prefixlen == 0 else f",nw_{addr_side}={net}"))
                    else:
                        out.append(f"ipv6,{reg}=0" + ("" if net.prefixlen == 0 else f",ipv6_{addr_side}={net}"))
            else:
                sys.exit(f"ovs-flows: group {g} is not translated")
        return sorted(set(out))

    def service_items(rule):
        svc = rule.get("services", "any")
        if svc == "any" or "any" in as_list(svc):
            return None
        out = []
        for s in as_list(svc):
            for item in as_list(services[s]) if s in services else [s]:
                out += service_matches(item)
        return sorted(set(out))

    def action_of(what):
        return "ct(commit,zone=NXM_NX_REG4[0..15]),output:NXM_NX_REG3[]" if what == "allow" else "drop"

    rules = pol.get("rules", []) or []
    conj = 0
    for index, r in enumerate(rules):
        prio = 60000 - index
        dims = [d for d in (members(r["from"], "reg0", "src"), members(r["to"], "reg1", "dst"), service_items(r))
                if d is not None]
        if any(len(d) == 0 for d in dims):
            continue  # a dimension that matches nothing: the rule never matches
        act = action_of(r["action"])
        if not dims:
            for t in ("ip", "ipv6"):
                emit(f"table=6,priority={prio},{t},actions={act}")
        elif len(dims) == 1:
            for m in dims[0]:
                need_ip = "" if m.split(",")[0] in ("ip", "ipv6", "tcp", "tcp6", "udp", "udp6", "sctp", "sctp6",
                                                    "icmp", "icmp6") else "ip,"
                if need_ip:  # a bare register match: once per family, so that ct(commit) has its prerequisite
                    for t in ("ip", "ipv6"):
                        emit(f"table=6,priority={prio},{t},{m},actions={act}")
                else:
                    emit(f"table=6,priority={prio},{m},actions={act}")
        else:
            conj += 1
            for k, d in enumerate(dims, start=1):
                for m in d:
                    emit(f"table=6,priority={prio},{m},actions=conjunction({conj},{k}/{len(dims)})")
            for t in ("ip", "ipv6"):
                emit(f"table=6,priority={prio},conj_id={conj},{t},actions={act}")
    default = pol.get("default", "drop")
    for t in ("ip", "ipv6"):
        emit(f"table=6,priority=0,{t},actions={action_of(default)}")
    emit("table=6,priority=0,actions=drop")
    sys.stdout.write("\n".join(flows) + "\n")
    print(f"ovs-flows: {len(rules)} rules, {len(endpoints)} endpoints -> {len(flows)} OpenFlow flows "
          f"({conj} conjunctions)", file=sys.stderr)


if __name__ == "__main__":
    main()
