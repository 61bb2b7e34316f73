#!/usr/bin/python3
"""A stand-in for the tagwall daemon's control socket, for tagwallctl's formatting tests (ctl-fake.sh).

usage: fake_tagwall.py SOCKET REQUEST_LOG

Listens on the unix socket SOCKET, answers each request line with a canned answer (SPEC §6 protocol),
and appends every request it receives to REQUEST_LOG, re-serialised with sorted keys so that the tests
can compare requests exactly.  Stdlib only.  Runs until killed.
"""
import json
import os
import socketserver
import sys

EVENTS = [
    {"time": "2026-11-22T10:00:00.001Z", "verdict": "drop", "rule": None, "generation": 1, "reason": "default",
     "detail": "default_drop", "segment": "prod", "port": "p0", "src": "10.0.1.10", "dst": "10.0.2.20",
     "proto": "tcp", "sport": 40000, "dport": 22, "src_endpoint": "web-1", "dst_endpoint": "db-1"},
    {"time": "2026-11-22T10:00:00.002Z", "verdict": "reject", "rule": "no-ssh", "generation": 1, "reason": "rule",
     "detail": "rule", "segment": "prod", "port": "p0", "src": "10.0.1.10", "dst": "10.0.2.20", "proto": "tcp",
     "sport": 40001, "dport": 2222, "src_endpoint": "web-1", "dst_endpoint": "db-1"},
    {"time": "2026-11-22T10:00:00.003Z", "verdict": "drop", "rule": None, "generation": 2, "reason": "spoofed",
     "detail": "spoofed_ip", "segment": "prod", "port": "p0", "src": "10.9.9.9", "dst": "10.0.2.20", "proto": "icmp",
     "icmp_type": 8, "icmp_code": 0, "src_endpoint": None, "dst_endpoint": "db-1"},
]

FLOW = {"worker": 0, "id": "1a2b", "segment": "prod", "proto": "tcp", "initiator": "10.0.1.10:40000",
        "responder": "10.0.2.20:5432", "state": "established", "rule": "web-to-db", "generation": 3,
        "packets": [12, 10], "bytes": [1500, 98765], "age_s": 12.5, "idle_s": 0.25}


def ok(result):
    return {"ok": True, "result": result}


def answer(req):
    cmd, action = req.get("cmd"), req.get("action")
    if cmd == "status":
        return ok({"version": "0.1.0", "pid": 4242, "uptime_s": 3725.5, "workers": 2, "forwarding": "wire",
                   "ports": 2, "hugepages": False,
                   "policy": {"file": "/etc/tagwall/policy.yaml", "generation": 3, "rules": 7,
                              "loaded_at": "2026-11-22T09:00:00.000Z"}})
    if cmd == "stats":
        return ok({"totals": {"rx": 1234567, "tx": 1200000, "dropped": 34567, "allow": 1200000, "drop": 34000,
                              "reject": 567, "flows": 42, "events_lost": 0},
                   "reasons": {"default_drop": 30000, "rule_drop": 4000, "spoofed_ip": 567, "invalid_tcp_flags": 0},
                   "workers": [{"worker": 0, "lcore": 1, "rx": 600000, "allow": 590000, "drop": 10000, "reject": 0,
                                "flows": 20},
                               {"worker": 1, "lcore": 2, "rx": 634567, "allow": 610000, "drop": 24000, "reject": 567,
                                "flows": 22}]})
    if cmd == "ports":
        return ok({"ports": [{"name": "p0", "role": "inside", "driver": "net_af_packet", "mac": "02:00:00:00:00:01",
                              "rx": 1000, "tx": 2000, "dropped": 3, "tx_full": 0, "rejects": 1},
                             {"name": "uplink", "role": "outside", "driver": "net_ixgbe",
                              "mac": "02:00:00:00:00:02", "rx": 123456789, "tx": 5, "dropped": 0, "tx_full": 7,
                              "rejects": 0}]})
    if cmd == "rules":
        return ok({"generation": 3, "default": "drop",
                   "rules": [{"id": "web-to-db", "action": "allow", "line": 12, "hits": 5000, "bytes": 7500000,
                              "last_hit": "2026-11-22T09:59:59.000Z"},
                             {"id": "no-ssh", "action": "reject", "line": 20, "hits": 0, "bytes": 0,
                              "last_hit": None}]})
    if cmd == "policy" and action == "show":
        return ok({"file": "/etc/tagwall/policy.yaml", "generation": 3, "loaded_at": "2026-11-22T09:00:00.000Z",
                   "rules": 7, "endpoints": 5, "segments": 2, "default": "drop"})
    if cmd == "policy" and action == "load":
        if "broken" in req.get("file", ""):
            return {"ok": False, "error": "policy %s: INVALID (2 errors); nothing changed" % req["file"],
                    "errors": ["%s:3:5: error: unknown key 'alow'" % req["file"],
                               "%s:9:1: error: rule 'x' names no group" % req["file"]]}
        if req.get("dry_run"):
            return ok({"dry_run": True, "checked": 17, "would_cut": [dict(FLOW, new_action="drop", new_rule=None)]})
        return ok({"generation": 4, "compile_ms": 1.25, "publish_ms": 0.5, "ack_ms": 0.75, "revoked": 1})
    if cmd == "endpoint" and action == "list":
        return ok({"endpoints": [{"name": "web-1", "segment": "prod", "ips": ["10.0.1.10", "fd00::10"],
                                  "mac": "02:00:00:00:01:10", "tags": {"tier": "web", "env": "prod"}},
                                 {"name": "db-1", "segment": "prod", "ips": ["10.0.2.20"], "mac": None,
                                  "tags": {"tier": "db"}}]})
    if cmd == "endpoint" and action in ("tag", "untag"):
        if req.get("name") == "nosuch":
            return {"ok": False, "error": "no endpoint named 'nosuch'"}
        tags = {"tier": "web"}
        tags.update(req.get("tags", {}))
        return ok({"generation": 5, "endpoint": req.get("name"), "tags": tags})
    if cmd == "flows" and action == "flush":
        return ok({"flushed": 42})
    if cmd == "flows":
        result = {"total": 42, "shown": 1, "flows": [FLOW]}
        if req.get("filter"):
            result["matched"] = 3
        return ok(result)
    if cmd == "trace":
        return ok({"action": "allow", "rule": "web-to-db", "reason": "rule",
                   "src": {"address": req.get("src"), "endpoint": "web-1", "groups": ["web"]},
                   "dst": {"address": req.get("dst"), "endpoint": None, "groups": []},
                   "explanation": "rule 'web-to-db' (line 12) is the first that matches"})
    return {"ok": False, "error": "unknown command '%s'" % cmd}


class Handler(socketserver.StreamRequestHandler):
    def handle(self):
        for raw in self.rfile:
            try:
                req = json.loads(raw)
            except ValueError as e:
                self.send({"ok": False, "error": "malformed request: %s" % e})
                continue
            with open(self.server.log, "a") as log:
                log.write(json.dumps(req, sort_keys=True, separators=(",", ":")) + "\n")
            if req.get("cmd") == "events" and req.get("follow"):
                self.send(ok({"following": True}))
                for e in EVENTS:
                    self.send(e)
                if os.environ.get("FAKE_EVENTS_CLOSE"):
                    return
                self.rfile.readline()  # keep the stream open, as the daemon does, until the client goes
                return
            else:
                self.send(answer(req))

    def send(self, obj):
        self.wfile.write((json.dumps(obj) + "\n").encode())
        self.wfile.flush()


class Server(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True


def main():
    path, log = sys.argv[1], sys.argv[2]
    for stale in (path, path + ".tmp"):
        if os.path.exists(stale):
            os.unlink(stale)
    # Bound and listening under a temporary name first: the socket file appears (the tests wait for it)
    # only once a connect to it succeeds.
    server = Server(path + ".tmp", Handler)
    os.rename(path + ".tmp", path)
    server.log = log
    server.serve_forever()


if __name__ == "__main__":
    main()
