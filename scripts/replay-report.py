#!/usr/bin/python3
"""Writes docs/performance.md, docs/perf/replay.json and docs/perf/replay-*.png from the records of
scripts/bench-replay.sh (one JSON object per line: kind, dut, apps, workers, mix, generator = the JSON of
`tagwall-bench generate`, dut_stats_before/after).  Every figure in the document comes from those records;
nothing is typed by hand.  Called by bench-replay.sh; not meant to be run alone."""
import argparse
import datetime
import json
import os
import platform
import subprocess

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

DUT_NAMES = {"testpmd": "dpdk-testpmd (io forward)", "tagwall": "tagwall", "ovs": "OVS-DPDK + conntrack"}
MIX_NAMES = {"established": "established, 64 B", "imix": "established, IMIX", "new-conn": "new connections"}
TARGETS = {"established": 2.0, "new-conn": 3.0}  # tagwall / OVS


def sh(*cmd):
    try:
        return subprocess.run(cmd, capture_output=True, text=True, check=False).stdout.strip()
    except OSError:
        return ""


def machine():
    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
    mem = next((int(l.split()[1]) for l in open("/proc/meminfo") if l.startswith("MemTotal")), 0)
    return f"{cpu}, {os.cpu_count()} CPUs, {mem / 1048576:.0f} GiB RAM, Linux {platform.release()}"


def cpu_set(text):
    """'0,2-4' -> {0, 2, 3, 4}"""
    out = set()
    for item in filter(None, text.split(",")):
        lo, _, hi = item.partition("-")
        out.update(range(int(lo), int(hi or lo) + 1))
    return out


def rules_of(apps):
    return 3 * apps + 3


def nodrop(rec):
    """(no-drop frames/s forwarded, connections/s or None, the trial) of a record; zeros when none."""
    g = rec["generator"]
    t = g.get("no_drop")
    if not t:
        return 0.0, (0.0 if rec["mix"] == "new-conn" else None), None
    cps = t.get("connections_completed_per_s") if rec["mix"] == "new-conn" else None
    return t["forwarded_pps"], cps, t


def limit_of(rec):
    g = rec["generator"]
    first = g["max"]
    if rec["dut"] == "testpmd" or first["zero_loss"]:
        lost_pct = 100.0 * first["lost"] / first["offered"] if first["offered"] else 0.0
        if first["zero_loss"]:
            return "generator: the device lost nothing at the generator's top rate"
        return f"harness: {lost_pct:.1f}% lost at the generator's top rate through a plain io forward"
    lost_pct = 100.0 * first["lost"] / first["offered"] if first["offered"] else 0.0
    return f"device: lost {lost_pct:.1f}% at the generator's top rate ({first['offered_pps'] / 1e6:.2f} Mpps offered)"


def label(rec):
    return DUT_NAMES[rec["dut"]] + ("" if rec["dut"] == "testpmd" else f", {rules_of(rec['apps'])} rules")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out-dir", required=True)
    ap.add_argument("--from-json", help="render again from a replay.json this script wrote (its meta and records)")
    for k in ("results", "command", "build", "load-before", "load-after", "seconds", "gen-cpus", "dut-cpus",
              "testpmd-version", "ovs-version"):
        ap.add_argument("--" + k)
    ap.add_argument("--load-max", default="", help="the highest 1-minute load average seen after a run")
    ap.add_argument("--restarts", default="", help="devices restarted after a crash, e.g. 'testpmd x2'")
    a = ap.parse_args()
    perf = os.path.join(a.out_dir, "perf")
    os.makedirs(perf, exist_ok=True)
    if a.from_json:
        saved = json.load(open(a.from_json))
        meta, recs = saved["meta"], saved["records"]
    else:
        recs = [json.loads(l) for l in open(a.results) if l.strip()]
        commit = sh("git", "rev-parse", "--short", "HEAD") or "?"
        if sh("git", "status", "--porcelain"):
            commit += " + uncommitted changes"
        meta = {"date": datetime.datetime.now().strftime("%Y-%m-%d %H:%M"), "commit": commit, "machine": machine(),
                "cpus": os.cpu_count(), "build": a.build, "command": a.command, "gen_cpus": a.gen_cpus,
                "dut_cpus": a.dut_cpus, "load_before": a.load_before, "load_after": a.load_after,
                "load_max": a.load_max, "restarts": a.restarts, "seconds": int(a.seconds), "dpdk": a.testpmd_version,
                "ovs": a.ovs_version}
        json.dump({"meta": meta, "records": recs}, open(os.path.join(perf, "replay.json"), "w"), indent=1)
    render(meta, recs, a.out_dir)


def render(meta, recs, out_dir):
    perf = os.path.join(out_dir, "perf")
    cpus = meta.get("cpus") or os.cpu_count() or 1
    mixes = [r for r in recs if r.get("kind") == "mix"]
    caps = [r for r in recs if r.get("kind") == "capacity"]
    when, commit = meta["date"], meta["commit"]

    workers = sorted({r["workers"] for r in mixes})
    w0 = workers[0] if workers else 1
    trial_s = recs[0]["generator"]["trial_seconds"] if recs else 0
    flows = next((r["generator"].get("flows") for r in mixes if r["mix"] == "established"), "?")
    md = ["# Performance: real I/O against OVS-DPDK and testpmd", "",
          "<!-- Generated by scripts/bench-replay.sh (scripts/replay-report.py): do not edit by hand. -->", "",
          f"Generated on {when}, commit {commit}, `{meta['build']}` build, in {meta['seconds']} s.  ",
          f"Machine: {meta['machine']}.  ",
          f"Generator on CPU(s) {meta['gen_cpus']}, device under test on CPU(s) {meta['dut_cpus']} (the first W of them for "
          f"W workers).  Load average before / after: {meta['load_before']} / {meta['load_after']}"
          + (f", highest after a run: {meta.get('load_max', '')}" if meta.get('load_max', '') else "") + ".  ",
          f"DPDK {meta['dpdk']} (dpdk-testpmd), Open vSwitch {meta['ovs']} (ovs-vswitchd-dpdk).", "",
          "Command:", "", "```sh", meta['command'], "```", ""]
    loads = [float(x.split()[0]) for x in (meta['load_before'], meta['load_after'], meta.get('load_max', '')) if x.strip()]
    busy = max(loads) if loads else 0
    # The harness itself keeps its generator and device CPUs busy (spinning pollers): more than that,
    # plus a quarter of the machine, means other work shared the CPUs.
    own = min(len(cpu_set(meta['gen_cpus']) | cpu_set(meta['dut_cpus'])), cpus)
    crowded = busy > own + 0.25 * (cpus)
    # bench-replay.sh's build_kind: "release, LTO" (and ", -march=native") is what figures come from.
    release_lto = meta['build'].startswith("release, LTO")
    smoke = crowded or not release_lto or trial_s < 10
    stamp = " (SMOKE FIGURES, not final: see docs/performance.md)" if smoke else ""
    if smoke:
        why = []
        if crowded:
            why.append(f"the machine was busy with other work (load average up to {busy:g} on {cpus} CPUs, "
                       f"{own} of them the harness's own: the device and the generator did not have their CPUs to "
                       "themselves)")
        if not release_lto:
            why.append(f"a `{meta['build']}` build, not `release, LTO`")
        if trial_s < 10:
            why.append(f"{trial_s} s trials")
        md += ["> **Smoke figures, not final:** " + "; ".join(why) + ".  They show that the harness works end to "
               "end and how it reports; quote only a run on a quiet machine with a release build with LTO and long trials.", ""]
    md += [
          "## How it is measured", "",
          "A generator process (`tagwall-bench generate`) offers traffic to the device under test over "
          "`net_memif` (the device is the memif server of one port per side of each wire pair, the generator "
          "the client) and counts what the device forwards back to it.  Generator and device run on separate "
          "CPUs; every device gets the same CPUs, the same traffic and the same ports:",
          "",
          "- **dpdk-testpmd** in io forwarding: no parsing, no state; the ceiling of the harness.",
          "- **tagwall** `--config` in wire mode, a pair per worker, on a `scripts/gen-policy.py` policy (tag "
          "groups, a staging-to-prod deny at the top, per-app web/app/db rules, monitoring and admin rules).",
          "- **OVS-DPDK** with the same policy translated by `scripts/ovs-flows.py` into an OpenStack-style "
          "stateful pipeline: SpoofGuard flows, `ct(zone=VLAN)`, `+est`/`+rel` pass, `+new` classified through "
          "identity registers and conjunctive matches, `ct(commit)` for allowed tuples, else drop.  PMD threads on "
          "the worker CPUs, each pair's receive queues pinned to its PMD; everything else of the process on "
          "the same CPUs.",
          "",
          f"Mixes: **established** ({flows} TCP connections, handshakes sent first and untimed, then one 64-byte "
          "ACK each way per connection, looped); **IMIX** (the same connections, frames of 64/594/1518 bytes "
          "with FCS in proportions 7:4:1); **new connections** (RFC 9411 CPS: SYN, SYN-ACK, ACK, RST, each "
          "segment answered by the generator only once the previous one came through, new 5-tuples for every "
          "connection; the devices' connection tables are flushed before each trial).  Conversations are those "
          "the policy allows outside logged rules (a logged rule would measure the event log).",
          "",
          f"Each figure is an RFC 2544 search: a first trial as fast as the generator can, then bisection to "
          f"the highest rate with **zero loss** (loss tolerance {recs[0]['generator']['loss_tolerance'] if recs else 0:g} of "
          f"the offered frames) over a {trial_s} s trial (RFC 2544 asks for 60 s: pass "
          "`--trial-seconds 60` for figures to quote).  Offered = every frame the schedule sent to the device, "
          "including those its full receive ring refused (on a memif the sender sees what a NIC counts as "
          "rx_missed); forwarded = frames that came back with the generator's marker on the right pair and side "
          "(nothing else counts); new connections count only when all four segments came through.  Mpps below "
          "are forwarded frames per second at the zero-loss rate (new connections: all four segments).", ""]

    def rec(dut, apps, w, mix, kind="mix"):
        for r in recs:
            if r.get("kind") == kind and r["dut"] == dut and r["workers"] == w and r["mix"] == mix and (
                    dut == "testpmd" or r["apps"] == apps):
                return r
        return None

    apps_list = sorted({r["apps"] for r in mixes if r["dut"] != "testpmd"})
    mix_list = [m for m in ("established", "imix", "new-conn") if any(r["mix"] == m for r in mixes)]
    md += [f"## Results, {w0} worker{'s' if w0 > 1 else ''}", ""]
    for mix in mix_list:
        ceiling = rec("testpmd", None, w0, mix)
        ceil_pps = nodrop(ceiling)[0] if ceiling else 0
        md += [f"### {MIX_NAMES[mix]}", "",
               "| device | zero-loss Mpps | " + ("connections/s | " if mix == "new-conn" else "")
               + ("Gbps (with preamble and gap) | " if mix == "imix" else "")
               + "vs testpmd | max forwarded Mpps (offered) | what limits it |",
               "|---|---:|" + ("---:|" if mix in ("new-conn", "imix") else "") + "---:|---:|---|"]
        rows = ([ceiling] if ceiling else []) + [rec(d, ap_, w0, mix) for d in ("tagwall", "ovs") for ap_ in apps_list]
        for r in rows:
            if not r:
                continue
            pps, cps, best = nodrop(r)
            first = r["generator"]["max"]
            ratio = f"{pps / ceil_pps:.2f}" if ceil_pps else "—"
            md.append(f"| {label(r)} | {pps / 1e6:.3f} | " + (f"{cps:,.0f} | " if mix == "new-conn" else "")
                      + (f"{best['forwarded_gbps'] if best else 0:.2f} | " if mix == "imix" else "")
                      + f"{ratio} | {first['forwarded_pps'] / 1e6:.3f} ({first['offered_pps'] / 1e6:.3f}) | {limit_of(r)} |")
        md.append("")
        above = [r for r in rows if r and r["dut"] != "testpmd" and ceil_pps and nodrop(r)[0] > 1.05 * ceil_pps]
        if above:
            md += [f"**The ceiling run was disturbed:** {'; '.join(label(r) for r in above)} beat plain io "
                   "forwarding, which does strictly less work per frame.  A zero-loss rate is set by the worst stall "
                   "in a trial, and other work on the machine stalled the ceiling's trials more than these; the ratios "
                   "to testpmd of this mix say nothing here.", ""]

    # tagwall / OVS and the targets.
    md += ["## tagwall / OVS-DPDK and the targets", "",
           "Zero-loss rates, and beside them the ratio of the rates forwarded at the generator's top rate (each "
           "device overloaded: less sensitive to short stalls than a zero-loss rate).", "",
           "| mix | rules | tagwall Mpps | OVS Mpps | tagwall / OVS | tagwall / OVS, overloaded | "
           "target | tagwall / testpmd | |", "|---|---:|---:|---:|---:|---:|---|---:|---|"]
    for mix in mix_list:
        ceiling = rec("testpmd", None, w0, mix)
        ceil_pps = nodrop(ceiling)[0] if ceiling else 0
        for ap_ in apps_list:
            t, o = rec("tagwall", ap_, w0, mix), rec("ovs", ap_, w0, mix)
            if not t:
                continue
            tp = nodrop(t)[0]
            op = nodrop(o)[0] if o else 0
            ratio = tp / op if op else float("inf") if tp else 0
            target = TARGETS.get(mix)
            verdict = []
            if target and o:
                verdict.append(f"≥ {target:g}x OVS {'met' if ratio >= target else 'NOT met'}")
            if mix == "established" and ceil_pps:
                verdict.append("≥ 0.80 of testpmd: not measured (the ceiling run was disturbed)" if tp > 1.05 * ceil_pps
                               else f"≥ 0.80 of testpmd {'met' if tp / ceil_pps >= 0.8 else 'NOT met'}")
            tmax = t["generator"]["max"]["forwarded_pps"]
            omax = o["generator"]["max"]["forwarded_pps"] if o else 0
            md.append(f"| {MIX_NAMES[mix]} | {rules_of(ap_)} | {tp / 1e6:.3f} | {op / 1e6:.3f} | "
                      f"{'—' if not o else (f'{ratio:.2f}' if op else '∞ (OVS: no zero-loss rate)')} | "
                      f"{f'{tmax / omax:.2f}' if omax else '—'} | "
                      f"{'≥ ' + format(target, 'g') + 'x' if target else '—'} | "
                      f"{(tp / ceil_pps) if ceil_pps else 0:.2f} | {'; '.join(verdict)} |")
    md.append("")

    # Plot: mixes.
    if mix_list:
        fig, axes = plt.subplots(1, len(mix_list), figsize=(4.2 * len(mix_list), 3.8))
        axes = axes if len(mix_list) > 1 else [axes]
        for ax, mix in zip(axes, mix_list):
            rows = [rec("testpmd", None, w0, mix)] + [rec(d, ap_, w0, mix) for d in ("tagwall", "ovs") for ap_ in apps_list]
            rows = [r for r in rows if r]
            names = [("testpmd" if r["dut"] == "testpmd" else f"{r['dut']}\n{rules_of(r['apps'])} rules") for r in rows]
            vals = [nodrop(r)[0] / 1e6 for r in rows]
            bars = ax.bar(range(len(vals)), vals, color=["#888888" if r["dut"] == "testpmd" else
                                                          "#2a7ab9" if r["dut"] == "tagwall" else "#d9822b" for r in rows])
            for b, v in zip(bars, vals):
                ax.text(b.get_x() + b.get_width() / 2, v, f"{v:.2f}", ha="center", va="bottom", fontsize=8)
            ax.set_xticks(range(len(vals)))
            ax.set_xticklabels(names, fontsize=7)
            ax.set_title(MIX_NAMES[mix], fontsize=10)
            ax.set_ylabel("zero-loss Mpps")
        fig.suptitle(f"Zero-loss forwarding rate, {w0} worker(s), real I/O over memif{stamp}", fontsize=10)
        fig.tight_layout()
        fig.savefig(os.path.join(perf, "replay-mixes.png"), dpi=110)
        plt.close(fig)
        md += ["![zero-loss rate per mix](perf/replay-mixes.png)", ""]

    # Scaling.
    md += ["## Scaling", ""]
    if len(workers) < 2:
        md += [f"Only {', '.join(map(str, workers)) or 'no'} worker count was run (this machine has {cpus} CPUs): the scaling "
               "curve needs `--workers 1,2,4,8,14` on a machine with 16 cores (`--gen-cpus 0,1 --dut-cpus 2-15`).", ""]
    md += ["| device | mix | " + " | ".join(f"{w} W Mpps" for w in workers) + " | efficiency per added worker |",
           "|---|---|" + "---:|" * len(workers) + "---|"]
    series = {}
    for d in ("testpmd", "tagwall", "ovs"):
        for ap_ in ([None] if d == "testpmd" else apps_list):
            for mix in mix_list:
                vals = [rec(d, ap_, w, mix) for w in workers]
                if not any(vals):
                    continue
                pps = [nodrop(v)[0] if v else None for v in vals]
                eff = []
                for i in range(1, len(workers)):
                    if pps[i] is None or pps[i - 1] is None or not pps[0]:
                        continue
                    per_worker = pps[0] / workers[0]
                    eff.append(f"{workers[i - 1]}→{workers[i]}: "
                               f"{(pps[i] - pps[i - 1]) / ((workers[i] - workers[i - 1]) * per_worker):.0%}")
                name = DUT_NAMES[d] + ("" if ap_ is None else f", {rules_of(ap_)} rules")
                series[(name, mix)] = (workers, pps)
                md.append(f"| {name} | {MIX_NAMES[mix]} | " + " | ".join("—" if p is None else f"{p / 1e6:.3f}" for p in pps)
                          + f" | {', '.join(eff) or '—'} |")
    md += ["", "Efficiency per added worker: (Mpps(W2) − Mpps(W1)) / ((W2 − W1) × Mpps per worker at the "
           "smallest count); target ≥ 85% up to 8 workers.", ""]
    if any(mix == "established" for _, mix in series):
        fig, ax = plt.subplots(figsize=(6.5, 4))
        for (name, mix), (ws, pps) in series.items():
            if mix != "established":
                continue
            pts = [(w, p / 1e6) for w, p in zip(ws, pps) if p is not None]
            ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", label=name)
        ax.set_xlabel("workers (one CPU each)")
        ax.set_ylabel("zero-loss Mpps, established 64 B")
        ax.set_title(stamp.strip(" ()"), fontsize=8)
        ax.set_xticks(workers)
        ax.legend(fontsize=7)
        ax.grid(alpha=0.3)
        fig.tight_layout()
        fig.savefig(os.path.join(perf, "replay-scaling.png"), dpi=110)
        plt.close(fig)
        md += ["![scaling](perf/replay-scaling.png)", ""]

    # Capacity.
    if caps:
        md += ["## Concurrent connections", "",
               f"Established 64-byte traffic over growing numbers of open connections ({caps[0]['workers']} "
               f"worker(s), {rules_of(caps[0]['apps'])} rules): how many handshakes the device let through "
               "(its connection table; tagwall's `flows.capacity` and OVS's `ct-set-maxconns` are both set to "
               "the harness's --flow-capacity), and the zero-loss rate over all of them.", "",
               "| device | connections offered | established through the device | zero-loss Mpps | max forwarded Mpps |",
               "|---|---:|---:|---:|---:|"]
        fig, ax = plt.subplots(figsize=(6.5, 4))
        for d in ("tagwall", "ovs"):
            rows = sorted((r for r in caps if r["dut"] == d), key=lambda r: r["generator"]["flows"])
            for r in rows:
                g = r["generator"]
                md.append(f"| {DUT_NAMES[d]} | {g['flows']:,} | {g.get('established_flows', 0):,} | "
                          f"{nodrop(r)[0] / 1e6:.3f} | {g['max']['forwarded_pps'] / 1e6:.3f} |")
            if rows:
                ax.plot([r["generator"]["flows"] for r in rows], [nodrop(r)[0] / 1e6 for r in rows], marker="o",
                        label=DUT_NAMES[d])
        ax.set_xscale("log")
        ax.set_xlabel("open connections")
        ax.set_ylabel("zero-loss Mpps, established 64 B")
        ax.set_title(stamp.strip(" ()"), fontsize=8)
        ax.legend(fontsize=8)
        ax.grid(alpha=0.3)
        fig.tight_layout()
        fig.savefig(os.path.join(perf, "replay-capacity.png"), dpi=110)
        plt.close(fig)
        md += ["", "![concurrent connections](perf/replay-capacity.png)", ""]

    # Limits.
    limited = [r for r in recs if r["generator"].get("no_drop") and r["generator"]["no_drop"].get("generator_limited")]
    md += ["## What limits these numbers", "",
           "- **The generator.**  One generator core copies every frame into an mbuf, then memif copies it again "
           "into the shared ring, and the same core receives and checks every frame that comes back.  Where the "
           "testpmd ceiling lost nothing at the generator's top rate, the ceiling is the generator's, not the "
           "harness's memif or testpmd's; the `what limits it` column says which, per figure."
           + (f"  {len(limited)} zero-loss trial(s) could not be offered at the requested rate (generator-limited)."
              if limited else ""),
           "- **memif**: every frame is copied once on each side of each hop (no zero-copy): a cost that a NIC "
           "with DMA does not have, the same for every device.",
           "- **Shared CPUs.**  On a small VM the device's control threads (tagwall's control thread, OVS's "
           "main, handler and revalidator threads, testpmd's main lcore) share the device's CPU with its "
           "poll-mode workers, and other work on the machine shares the cores and the last-level cache "
           "(see the load averages above).",
           "- **Trial length**: " + f"{trial_s} s trials catch losses that last longer than a ring's worth of frames; "
           "RFC 2544's 60 s trials also catch rarer stalls (timers, table maintenance).",
           "- **New connections**: each connection's four segments cross the device, and the generator answers "
           "each one: the generator does four times the work per connection, and the connection tables hold every "
           "connection of a trial (closed entries age out after tagwall's `tcp_close` timeout, 10 s, and OVS's own "
           "close timeout), so they are flushed before each trial.", ""]
    if meta.get('restarts', ''):
        md += [f"- **Crashes.**  A device died when a generator run ended and its memif client disconnected, and "
               f"was started again before the next run: {meta.get('restarts', '')}.  The DPDK 22.11 memif PMD unmaps a "
               "disconnected peer's rings while the poller may still read them; every memif server is exposed, "
               "tagwall included.", ""]
    md += ["Raw data: [perf/replay.json](perf/replay.json) (every trial of every search, and tagwall's counters "
           "before and after each run).", ""]
    open(os.path.join(out_dir, "performance.md"), "w").write("\n".join(md))


if __name__ == "__main__":
    main()
