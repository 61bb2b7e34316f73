#!/usr/bin/python3
"""Generates a large, realistic tag policy (policy language v1) for benchmarks and scale tests.

Each of --apps applications has three tiers (web, app, db) of --per-tier endpoints each, every endpoint
with an IPv4 and an IPv6 address in 198.18.0.0/15 and 2001:db8::/32, tags {app, tier, env}; env is prod
for all but every --staging-every'th endpoint.  Rules, first match wins:
  - staging may never reach prod (one deny at the top, over env groups);
  - per app: internet -> web https, web -> app tcp/8080, app -> db tcp/5432 (logged);
  - monitoring -> every endpoint on tcp/9100; admins -> every endpoint on ssh.
So there are 3 * apps + 3 rules.  Usage: gen-policy.py --apps 3333 > policy.yaml
"""
import argparse
import ipaddress
import sys


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--apps", type=int, default=10)
    ap.add_argument("--per-tier", type=int, default=1)
    ap.add_argument("--staging-every", type=int, default=10)
    a = ap.parse_args()
    tiers = ("web", "app", "db")
    out = sys.stdout.write
    out("version: 1\nsegments:\n  - {name: outside, vlan: 0}\n")
    for i, t in enumerate(tiers):
        out(f"  - {{name: {t}, vlan: {10 * (i + 1)}}}\n")
    out("  - {name: mgmt, vlan: 40}\nendpoints:\n")
    base4 = int(ipaddress.IPv4Address("198.18.0.0"))
    base6 = int(ipaddress.IPv6Address("2001:db8::"))
    n = 0
    for app in range(a.apps):
        for t in tiers:
            for k in range(a.per_tier):
                n += 1
                env = "staging" if n % a.staging_every == 0 else "prod"
                v4 = ipaddress.IPv4Address(base4 + n)
                v6 = ipaddress.IPv6Address(base6 + n)
                out(f"  - {{name: a{app}-{t}-{k}, segment: {t}, ip: [{v4}, \"{v6}\"], "
                    f"tags: {{app: a{app}, tier: {t}, env: {env}}}}}\n")
    out("  - {name: prometheus, segment: mgmt, ip: [198.19.255.1, \"2001:db8:ffff::1\"], tags: {role: monitoring}}\n")
    out("groups:\n  internet: {cidr: [\"0.0.0.0/0\", \"::/0\"]}\n  admins: {cidr: [198.19.200.0/24]}\n"
        "  monitoring: {tags: {role: monitoring}}\n  prod: {tags: {env: prod}}\n  staging: {tags: {env: staging}}\n")
    for app in range(a.apps):
        for t in tiers:
            out(f"  a{app}-{t}: {{tags: {{app: a{app}, tier: {t}}}}}\n")
    out("services:\n  https: [tcp/443]\n  api: [tcp/8080]\n  postgres: [tcp/5432]\n  exporter: [tcp/9100]\n"
        "  ssh: [tcp/22]\nrules:\n  - {id: no-staging-to-prod, from: staging, to: prod, action: drop, log: true}\n")
    for app in range(a.apps):
        out(f"  - {{id: a{app}-in, from: internet, to: a{app}-web, services: [https], action: allow}}\n")
        out(f"  - {{id: a{app}-web-app, from: a{app}-web, to: a{app}-app, services: [api], action: allow}}\n")
        out(f"  - {{id: a{app}-app-db, from: a{app}-app, to: a{app}-db, services: [postgres], action: allow, log: true}}\n")
    out("  - {id: monitor, from: monitoring, to: any, services: [exporter], action: allow}\n"
        "  - {id: admin-ssh, from: admins, to: any, services: [ssh], action: allow, log: true}\ndefault: drop\n")


if __name__ == "__main__":
    main()
