// tagwallctl: the operator CLI (SPEC §6).  A thin main: it turns a command line into one JSON request,
// sends it over the daemon's unix socket (tools/ctl_client.hpp), and prints the answer as tables
// (tools/ctl_print.hpp) or, with --json, as JSON for scripts.
//
// Protocol: one request line {"cmd": NAME, ...}; one answer line {"ok": true, "result": {...}} or
// {"ok": false, "error": MESSAGE, "errors": [FILE:LINE:COL: error: ...]}.  `events --follow` is answered
// with {"ok": true, "result": {"following": true}} and then one event object per line.
//
// Exit status: 0 success; 1 the daemon refused or failed the request (ok: false); 2 usage error; 3 the
// daemon cannot be reached (no socket, refused, permission) or the connection broke without an answer.
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <boost/program_options.hpp>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "tools/ctl_client.hpp"
#include "tools/ctl_print.hpp"

namespace po = boost::program_options;
using nlohmann::json;
using tagwall::tools::CtlView;

namespace {

constexpr int kExitFailed = 1;
constexpr int kExitUsage = 2;
constexpr int kExitConnect = 3;
constexpr const char* kDefaultSocket = "/run/tagwall/tagwall.sock";

const char* const kOverview = R"(tagwallctl - talk to a running tagwall appliance over its control socket

Usage:
  tagwallctl [--socket PATH] [--json] [--timeout SEC] COMMAND [ARGS...]
  tagwallctl COMMAND --help          details and examples for one command

Commands:
  status                             version, uptime, workers, ports, the policy in force
      tagwallctl status
  stats                              packet counters: totals, by drop reason, per worker
      tagwallctl stats
  ports                              each port: role, driver, MAC, rx/tx/dropped counters
      tagwallctl ports
  rules                              the rule table with hits, bytes and last hit
      tagwallctl rules
  policy show                        which policy file is in force, its generation and size
      tagwallctl policy show
  policy load [--dry-run] FILE       compile FILE and swap it in atomically (or, with --dry-run,
                                     list the live connections it would cut, changing nothing)
      tagwallctl policy load --dry-run /etc/tagwall/policy.yaml
      tagwallctl policy load /etc/tagwall/policy.yaml
  endpoint list                      endpoints with their segment, addresses, MAC and tags
      tagwallctl endpoint list
  endpoint tag NAME KEY=VALUE...     set tags on an endpoint (a new policy generation)
      tagwallctl endpoint tag web-1 quarantine=yes
  endpoint untag NAME KEY...         remove tags from an endpoint
      tagwallctl endpoint untag web-1 quarantine
  flows [KEY=VALUE...]               live connections; filters: segment= proto= addr= port= rule=
      tagwallctl flows segment=prod proto=tcp port=5432
  flows flush                        forget every tracked connection
      tagwallctl flows flush
  trace SEG SRC DST PROTO [SPORT DPORT]
                                     which rule decides such a packet, and why (nothing is sent)
      tagwallctl trace prod 10.0.1.10 10.0.2.20 tcp 40000 5432
  events --follow                    stream drop, reject and logged-allow events until Ctrl-C
      tagwallctl events --follow
      tagwallctl --json events --follow | jq 'select(.verdict == "drop")'

Output: tables for people; with --json, the daemon's `result` object as JSON (the whole answer,
{"ok": false, "error": ...}, when the request fails; events: one JSON object per line).

Exit status: 0 success, 1 the daemon refused or failed the request (its errors on stderr),
             2 usage error, 3 cannot reach the daemon (which socket, and why, on stderr).
)";

struct CommandHelp {
    const char* usage;
    const char* text;
};

const std::map<std::string, CommandHelp> kCommandHelp = {
    {"status", {"status", "Shows the daemon's version, pid, uptime, workers, forwarding mode, ports, whether hugepages "
                          "are in use,\nand the policy in force (file, generation, rules, load time).\n\nExample:\n"
                          "  tagwallctl status\n  tagwallctl --json status | jq .policy.generation\n"}},
    {"stats", {"stats", "Packet counters since start: totals (rx, tx, dropped, allow, drop, reject, flows, events lost),\n"
                        "every non-zero drop reason, and each worker's share.\n\nExample:\n  tagwallctl stats\n"}},
    {"ports", {"ports", "Each port with its role, DPDK driver, MAC and counters (rx, tx, dropped, tx ring full, "
                        "rejects sent).\n\nExample:\n  tagwallctl ports\n"}},
    {"rules", {"rules", "The rule table in force, in order, with packets (hits) and bytes each rule decided and when it "
                        "last did.\n\nExample:\n  tagwallctl rules\n"}},
    {"policy", {"policy show | policy load [--dry-run] FILE",
                "show: the policy in force (file, generation, load time, rules, endpoints, segments, default).\n"
                "load FILE: parse, compile and publish FILE as the next generation; a packet sees either the old\n"
                "  or the new rules, never a mix.  On any error nothing changes and every error is printed as\n"
                "  FILE:LINE:COL: error: ... (exit 1).  Established connections the new policy no longer allows\n"
                "  are closed on their next packet.\n"
                "load --dry-run FILE: compile FILE and list the live connections it would cut; changes nothing.\n"
                "FILE is sent as an absolute path: the daemon reads it.\n\nExamples:\n"
                "  tagwallctl policy show\n  tagwallctl policy load --dry-run conf/demo/policy.yaml\n"
                "  tagwallctl policy load conf/demo/policy.yaml\n"}},
    {"endpoint", {"endpoint list | endpoint tag NAME KEY=VALUE... | endpoint untag NAME KEY...",
                  "list: every endpoint with its segment, addresses, MAC and tags.\n"
                  "tag / untag: change an endpoint's tags at run time; the policy is recompiled and published as a\n"
                  "  new generation, and connections it no longer allows are closed.\n\nExamples:\n"
                  "  tagwallctl endpoint list\n  tagwallctl endpoint tag web-1 quarantine=yes owner=alice\n"
                  "  tagwallctl endpoint untag web-1 quarantine\n"}},
    {"flows", {"flows [KEY=VALUE...] | flows flush",
               "Live connections of every worker: initiator, responder, state, deciding rule, policy generation,\n"
               "packets and bytes each way (original/reply), idle time.  Filters (all must match):\n"
               "  segment=NAME  proto=tcp|udp|icmp|...  addr=ADDRESS (either side)  port=N (either side)  rule=ID\n"
               "flush: forget every tracked connection (the next packet of each is classified afresh).\n\n"
               "Examples:\n  tagwallctl flows\n  tagwallctl flows proto=tcp port=5432\n  tagwallctl flows flush\n"}},
    {"trace", {"trace SEG SRC DST PROTO [SPORT DPORT]",
               "Asks the policy in force which rule decides a packet from SRC to DST in segment SEG, and why:\n"
               "each address's endpoint and groups, the first matching rule (or the default).  No packet is sent.\n"
               "PROTO: tcp, udp, icmp, icmpv6, sctp or a number; SPORT and DPORT: 0-65535 (tcp, udp, sctp).\n\n"
               "Examples:\n  tagwallctl trace prod 10.0.1.10 10.0.2.20 tcp 40000 5432\n"
               "  tagwallctl trace prod 10.0.1.10 10.0.2.20 icmp\n"}},
    {"events", {"events --follow",
                "Streams events as they happen (drops, rejects, allows of rules with log: true) until Ctrl-C:\n"
                "  TIME VERDICT SRC -> DST PROTO/DPORT RULE/REASON\n"
                "With --json, each event as the daemon sends it: one JSON object per line.\n\nExamples:\n"
                "  tagwallctl events --follow\n  tagwallctl --json events --follow | jq -c 'select(.reason == \"revoked\")'\n"}},
};

struct UsageError : std::runtime_error {
    using std::runtime_error::runtime_error;
};

struct Globals {
    std::string socket = kDefaultSocket;
    bool json_output = false;
    double timeout_s = 30;
};

// What a command line asks for: the request, and how to print its result.
struct Plan {
    json request;
    CtlView view = CtlView::status;
    bool follow = false;
};

// Parses a command's own arguments: --help, the options in `extra`, and the positional words.
struct SubArgs {
    po::variables_map vm;
    std::vector<std::string> words;
};

SubArgs parse_sub(const std::string& command, const std::vector<std::string>& args,
                  const po::options_description& extra = po::options_description()) {
    po::options_description opts;
    opts.add_options()("help,h", "this command's help");
    opts.add(extra);
    po::options_description hidden;
    hidden.add_options()("words", po::value<std::vector<std::string>>(), "");
    po::options_description all;
    all.add(opts).add(hidden);
    po::positional_options_description pos;
    pos.add("words", -1);
    SubArgs out;
    try {
        po::store(po::command_line_parser(args).options(all).positional(pos).run(), out.vm);
        po::notify(out.vm);
    } catch (const po::error& e) {
        throw UsageError(fmt::format("{}: {}", command, e.what()));
    }
    if (out.vm.count("words")) out.words = out.vm["words"].as<std::vector<std::string>>();
    return out;
}

void expect_words(const std::string& command, const SubArgs& a, size_t n) {
    if (a.words.size() > n)
        throw UsageError(fmt::format("{}: unexpected argument '{}'", command, a.words[n]));
}

std::pair<std::string, std::string> split_kv(const std::string& command, const std::string& word) {
    const auto eq = word.find('=');
    if (eq == std::string::npos || eq == 0)
        throw UsageError(fmt::format("{}: '{}' is not KEY=VALUE", command, word));
    return {word.substr(0, eq), word.substr(eq + 1)};
}

Plan plan_policy(const std::vector<std::string>& args) {
    po::options_description extra;
    extra.add_options()("dry-run,n", "load: compile and report what would be cut; change nothing");
    const SubArgs a = parse_sub("policy", args, extra);
    const std::string action = a.words.empty() ? "show" : a.words[0];
    if (action == "show") {
        expect_words("policy show", a, 1);
        if (a.vm.count("dry-run")) throw UsageError("policy show: --dry-run goes with 'policy load'");
        return {{{"cmd", "policy"}, {"action", "show"}}, CtlView::policy_show};
    }
    if (action != "load") throw UsageError(fmt::format("policy: unknown action '{}' (show or load)", action));
    if (a.words.size() < 2) throw UsageError("policy load: which file? (tagwallctl policy load [--dry-run] FILE)");
    expect_words("policy load", a, 2);
    const bool dry = a.vm.count("dry-run") > 0;
    const std::string file = std::filesystem::absolute(a.words[1]).lexically_normal().string();
    return {{{"cmd", "policy"}, {"action", "load"}, {"file", file}, {"dry_run", dry}},
            dry ? CtlView::policy_dry_run : CtlView::policy_load};
}

Plan plan_endpoint(const std::vector<std::string>& args) {
    const SubArgs a = parse_sub("endpoint", args);
    const std::string action = a.words.empty() ? "list" : a.words[0];
    if (action == "list") {
        expect_words("endpoint list", a, 1);
        return {{{"cmd", "endpoint"}, {"action", "list"}}, CtlView::endpoint_list};
    }
    if (action != "tag" && action != "untag")
        throw UsageError(fmt::format("endpoint: unknown action '{}' (list, tag or untag)", action));
    const std::string cmd = fmt::format("endpoint {}", action);
    if (a.words.size() < 2) throw UsageError(fmt::format("{}: which endpoint? (tagwallctl {} NAME ...)", cmd, cmd));
    if (a.words.size() < 3)
        throw UsageError(fmt::format("{}: which tags? (tagwallctl {} NAME {})", cmd, cmd,
                                     action == "tag" ? "KEY=VALUE..." : "KEY..."));
    json request = {{"cmd", "endpoint"}, {"action", action}, {"name", a.words[1]}};
    if (action == "tag") {
        json tags = json::object();
        for (size_t i = 2; i < a.words.size(); ++i) {
            const auto [k, v] = split_kv(cmd, a.words[i]);
            tags[k] = v;
        }
        request["tags"] = tags;
    } else {
        json keys = json::array();
        for (size_t i = 2; i < a.words.size(); ++i) {
            if (a.words[i].find('=') != std::string::npos)
                throw UsageError(fmt::format("{}: give tag keys, not KEY=VALUE ('{}')", cmd, a.words[i]));
            keys.push_back(a.words[i]);
        }
        request["keys"] = keys;
    }
    return {request, CtlView::endpoint_tags};
}

Plan plan_flows(const std::vector<std::string>& args) {
    const SubArgs a = parse_sub("flows", args);
    if (!a.words.empty() && a.words[0] == "flush") {
        expect_words("flows flush", a, 1);
        return {{{"cmd", "flows"}, {"action", "flush"}}, CtlView::flows_flush};
    }
    json filter = json::object();
    for (const auto& w : a.words) {
        const auto [k, v] = split_kv("flows", w);
        if (k != "segment" && k != "proto" && k != "addr" && k != "port" && k != "rule")
            throw UsageError(fmt::format("flows: unknown filter '{}' (segment=, proto=, addr=, port=, rule=)", k));
        filter[k] = v;
    }
    return {{{"cmd", "flows"}, {"filter", filter}}, CtlView::flows};
}

uint16_t port_number(const std::string& what, const std::string& word) {
    size_t used = 0;
    unsigned long n = 0;
    try {
        n = std::stoul(word, &used, 10);
    } catch (const std::exception&) {
        used = 0;
    }
    if (used != word.size() || word.empty() || word[0] == '-' || n > 65535)
        throw UsageError(fmt::format("trace: {} must be a port number 0-65535, not '{}'", what, word));
    return static_cast<uint16_t>(n);
}

Plan plan_trace(const std::vector<std::string>& args) {
    const SubArgs a = parse_sub("trace", args);
    const auto& w = a.words;
    if (w.size() != 4 && w.size() != 6)
        throw UsageError(fmt::format("trace: expected SEG SRC DST PROTO [SPORT DPORT], got {} argument{}", w.size(),
                                     w.size() == 1 ? "" : "s"));
    json request = {{"cmd", "trace"}, {"segment", w[0]}, {"src", w[1]}, {"dst", w[2]}, {"proto", w[3]}};
    if (w.size() == 6) {
        request["sport"] = port_number("SPORT", w[4]);
        request["dport"] = port_number("DPORT", w[5]);
    }
    return {request, CtlView::trace};
}

Plan plan_events(const std::vector<std::string>& args) {
    po::options_description extra;
    extra.add_options()("follow,f", "stream events until interrupted");
    const SubArgs a = parse_sub("events", args, extra);
    expect_words("events", a, 0);
    if (!a.vm.count("follow")) throw UsageError("events: only 'events --follow' exists (a live stream)");
    Plan p{{{"cmd", "events"}, {"follow", true}}, CtlView::status};
    p.follow = true;
    return p;
}

Plan plan_simple(const std::string& command, CtlView view, const std::vector<std::string>& args) {
    const SubArgs a = parse_sub(command, args);
    expect_words(command, a, 0);
    return {{{"cmd", command}}, view};
}

// The request for COMMAND ARGS, or nullopt after printing the command's help.
std::optional<Plan> plan(const std::string& command, const std::vector<std::string>& args) {
    const auto help = kCommandHelp.find(command);
    if (help == kCommandHelp.end())
        throw UsageError(fmt::format("unknown command '{}' (status, stats, ports, rules, policy, endpoint, flows, "
                                     "trace, events)",
                                     command));
    for (const auto& a : args)
        if (a == "--help" || a == "-h") {
            fmt::print("Usage: tagwallctl [--socket PATH] [--json] [--timeout SEC] {}\n\n{}", help->second.usage,
                       help->second.text);
            return std::nullopt;
        }
    if (command == "status") return plan_simple(command, CtlView::status, args);
    if (command == "stats") return plan_simple(command, CtlView::stats, args);
    if (command == "ports") return plan_simple(command, CtlView::ports, args);
    if (command == "rules") return plan_simple(command, CtlView::rules, args);
    if (command == "policy") return plan_policy(args);
    if (command == "endpoint") return plan_endpoint(args);
    if (command == "flows") return plan_flows(args);
    if (command == "trace") return plan_trace(args);
    return plan_events(args);
}

// Prints a failed answer: with --json the whole answer on stdout; else the error and every positioned
// error on stderr.  Returns the exit status.
int report_failure(const Globals& g, const json& answer) {
    if (g.json_output) fmt::print("{}\n", answer.dump(2));
    const auto error = answer.find("error");
    fmt::print(stderr, "tagwallctl: {}\n",
               error != answer.end() && error->is_string() ? error->get<std::string>() : std::string("request failed"));
    if (const auto errors = answer.find("errors"); errors != answer.end() && errors->is_array())
        for (const auto& e : *errors) fmt::print(stderr, "{}\n", e.is_string() ? e.get<std::string>() : e.dump());
    return kExitFailed;
}

json parse_answer(const Globals& g, const std::optional<std::string>& line) {
    if (!line)
        throw tagwall::tools::CtlConnectError(
            fmt::format("{}: the daemon closed the connection without an answer", g.socket));
    const json answer = json::parse(*line, nullptr, false);
    if (!answer.is_object() || !answer.contains("ok") || !answer["ok"].is_boolean())
        throw tagwall::tools::CtlConnectError(
            fmt::format("{}: not a tagwall answer: {}", g.socket, line->substr(0, 200)));
    return answer;
}

volatile bool g_interrupted = false;

extern "C" void on_interrupt(int) { g_interrupted = true; }

int follow_events(const Globals& g, tagwall::tools::CtlConnection& conn) {
    struct sigaction sa {};
    sa.sa_handler = on_interrupt;  // no SA_RESTART: a blocked read returns EINTR
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, nullptr);
    sigaction(SIGTERM, &sa, nullptr);
    // Blocked except while read_line waits: a Ctrl-C while a line is printed is acted on at the next wait.
    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGINT);
    sigaddset(&stop, SIGTERM);
    sigprocmask(SIG_BLOCK, &stop, nullptr);
    conn.set_timeout(0);
    if (!g.json_output) fmt::print(stderr, "tagwallctl: following events on {} (Ctrl-C to stop)\n", g.socket);
    while (!g_interrupted) {
        const auto line = conn.read_line(&g_interrupted);
        if (!line) {
            if (g_interrupted) break;
            fmt::print(stderr, "tagwallctl: {}: the daemon closed the event stream\n", g.socket);
            return kExitConnect;
        }
        if (g.json_output) {
            fmt::print("{}\n", *line);
        } else {
            const json event = json::parse(*line, nullptr, false);
            fmt::print("{}\n", event.is_object() ? tagwall::tools::describe_event_line(event) : *line);
        }
        std::fflush(stdout);
    }
    return 0;
}

int run(const Globals& g, const Plan& p) {
    tagwall::tools::CtlConnection conn(g.socket, g.timeout_s);
    conn.send_line(p.request.dump());
    const json answer = parse_answer(g, conn.read_line());
    if (!answer["ok"].get<bool>()) return report_failure(g, answer);
    const json result = answer.contains("result") ? answer["result"] : json::object();
    if (p.follow) return follow_events(g, conn);
    if (g.json_output) fmt::print("{}\n", result.dump(2));
    else tagwall::tools::print_result(p.view, result, stdout);
    return 0;
}

std::string g_command;  // the command being parsed, for the usage hint

int usage_error(const std::string& msg) {
    fmt::print(stderr, "tagwallctl: {}\nTry 'tagwallctl {}--help'.\n", msg, g_command.empty() ? "" : g_command + " ");
    return kExitUsage;
}

int run_main(int argc, char** argv) {
    po::options_description opts("tagwallctl options");
    opts.add_options()
        ("help,h", "show this help")
        ("socket,s", po::value<std::string>()->default_value(kDefaultSocket), "the daemon's control socket")
        ("json,j", "print JSON (the answer's result) instead of tables")
        ("timeout,t", po::value<double>()->default_value(30), "seconds to wait for an answer");
    // Global options come before COMMAND; everything from COMMAND on belongs to it.
    int split = 1;
    for (; split < argc; ++split) {
        const std::string a = argv[split];
        if (a.empty() || a[0] != '-' || a == "-") break;
        if ((a == "--socket" || a == "-s" || a == "--timeout" || a == "-t") && split + 1 < argc) ++split;
    }
    po::variables_map vm;
    po::store(po::command_line_parser(split, argv).options(opts).run(), vm);
    po::notify(vm);
    if (vm.count("help") || argc == 1) {
        if (argc == 1) return usage_error("which command? (status, stats, ports, rules, policy, endpoint, flows, trace, events)");
        fmt::print("{}\n", kOverview);
        std::cout << opts << '\n';
        return 0;
    }
    Globals g;
    g.socket = vm["socket"].as<std::string>();
    g.json_output = vm.count("json") > 0;
    g.timeout_s = vm["timeout"].as<double>();
    if (!(g.timeout_s > 0) || g.timeout_s > 86400) return usage_error("--timeout must be between 0 and 86400 seconds");
    if (split >= argc) return usage_error("which command? (status, stats, ports, rules, policy, endpoint, flows, trace, events)");
    const std::string command = argv[split];
    std::vector<std::string> args(argv + split + 1, argv + argc);
    // --json after the command is accepted too: `tagwallctl status --json` reads naturally.
    std::erase_if(args, [&](const std::string& a) {
        if (a != "--json" && a != "-j") return false;
        g.json_output = true;
        return true;
    });
    if (kCommandHelp.count(command)) g_command = command;
    const auto p = plan(command, args);
    if (!p) return 0;
    return run(g, *p);
}

}  // namespace

int main(int argc, char** argv) {
    try {
        return run_main(argc, argv);
    } catch (const UsageError& e) {
        return usage_error(e.what());
    } catch (const po::error& e) {
        return usage_error(e.what());
    } catch (const tagwall::tools::CtlConnectError& e) {
        fmt::print(stderr, "tagwallctl: {}\n", e.what());
        return kExitConnect;
    } catch (const std::exception& e) {
        fmt::print(stderr, "tagwallctl: {}\n", e.what());
        return kExitFailed;
    }
}
