// The appliance config loader (SPEC §3) and the EAL arguments derived from it (SPEC §2).  As in
// tests/rules/test_loader.cpp, every error class asserts its message and its FILE:LINE:COL, found from the
// offending token in the test's own YAML.
#include <catch2/catch.hpp>

#include <algorithm>
#include <string>

#include "dataplane/config.hpp"

using namespace tagwall::dataplane;
using tagwall::rules::Diagnostic;
using tagwall::rules::Severity;

namespace {

// 1-based line and column of the `nth` (0-based) occurrence of `token` in `text`.
std::pair<int, int> position_of(const std::string& text, const std::string& token, int nth = 0) {
    auto at = text.find(token);
    for (int i = 0; i < nth && at != std::string::npos; ++i) at = text.find(token, at + 1);
    REQUIRE(at != std::string::npos);
    const auto line_start = text.rfind('\n', at);
    const int line = 1 + static_cast<int>(std::count(text.begin(), text.begin() + static_cast<long>(at), '\n'));
    const int col = static_cast<int>(at - (line_start == std::string::npos ? 0 : line_start + 1)) + 1;
    return {line, col};
}

std::string dump(const ConfigLoadResult& r) {
    std::string out;
    for (const auto& d : r.diagnostics.sorted()) out += d.str() + "\n";
    return out;
}

bool has_diagnostic(const tagwall::rules::Diagnostics& diag, Severity severity, int line, int col,
                    const std::string& message) {
    for (const auto& d : diag.items())
        if (d.severity == severity && d.pos.line == line && d.pos.col == col &&
            d.message.find(message) != std::string::npos)
            return true;
    return false;
}

// Loading `yaml` fails with an error at the `nth` `token` whose message contains `message`.
void require_error_at(const std::string& yaml, const std::string& token, const std::string& message, int nth = 0) {
    const auto r = load_config_text(yaml, "c.yaml");
    INFO("diagnostics:\n" << dump(r));
    CHECK_FALSE(r.config);
    const auto [line, col] = position_of(yaml, token, nth);
    INFO("expected c.yaml:" << line << ":" << col << ": error: ..." << message << "...");
    CHECK(has_diagnostic(r.diagnostics, Severity::error, line, col, message));
}

const std::string kPorts = R"(  ports:
    - {name: inside,  role: workload, devargs: "net_af_packet0,iface=veth-in"}
    - {name: outside, role: uplink,   devargs: "net_af_packet1,iface=veth-out"}
)";

// A valid config with `dataplane_extra` added to the dataplane section and `tail` after it.
std::string config(const std::string& dataplane_extra = "  pairs: [[inside, outside]]\n",
                   const std::string& tail = "policy: p.yaml\n") {
    return "dataplane:\n  workers: 2\n" + kPorts + dataplane_extra + tail;
}

ApplianceConfig load_ok(const std::string& yaml) {
    auto r = load_config_text(yaml, "/etc/tagwall/c.yaml");
    INFO("diagnostics:\n" << dump(r));
    REQUIRE(r.config);
    return std::move(*r.config);
}

}  // namespace

TEST_CASE("config: the example conf/tagwall.yaml loads", "[config]") {
    const std::string path = std::string(TAGWALL_SOURCE_ROOT) + "/conf/tagwall.yaml";
    const auto r = load_config_file(path);
    INFO("diagnostics:\n" << dump(r));
    REQUIRE(r.config);
    CHECK_FALSE(r.diagnostics.has_errors());
    const auto& c = *r.config;
    CHECK(c.dataplane.workers == 1);
    CHECK(c.dataplane.hugepages == HugepageMode::automatic);
    REQUIRE(c.dataplane.ports.size() == 2);
    CHECK(c.dataplane.ports[0].name == "inside");
    CHECK(c.dataplane.ports[0].role == PortRole::workload);
    CHECK(c.dataplane.ports[1].devargs == "net_af_packet1,iface=veth-out");
    CHECK(c.dataplane.ports[1].role == PortRole::uplink);
    CHECK(c.dataplane.forwarding == ForwardingMode::wire);
    REQUIRE(c.dataplane.pairs.size() == 1);
    CHECK(c.dataplane.pairs[0] == std::pair<std::string, std::string>{"inside", "outside"});
    CHECK(c.dataplane.flows.capacity == 1048576);
    CHECK(c.control.socket == "/run/tagwall/tagwall.sock");
    CHECK(c.control.socket_mode == 0660);
    CHECK(c.control.allowed_gids == std::vector<uint32_t>{0});
    CHECK_FALSE(c.control.allowed_uids);
    CHECK(c.log.path == "/var/log/tagwall/events.jsonl");
    CHECK(c.policy == std::string(TAGWALL_SOURCE_ROOT) + "/conf/demo/policy.yaml");  // relative to conf/
}

TEST_CASE("config: defaults, timeouts, capacity rounding, absolute policy", "[config]") {
    const auto c = load_ok(config("  pairs: [[inside, outside]]\n"
                                  "  flows: {capacity: 5000, timeouts: {tcp_established: 3600, udp_unreplied: 10}}\n",
                                  "control: {allowed_uids: [1000]}\npolicy: /srv/p.yaml\n"));
    CHECK(c.dataplane.workers == 2);
    CHECK(c.dataplane.flows.capacity == 8192);
    CHECK(c.dataplane.flows.timeouts.tcp_established == 3600 * FlowTimeouts::kSecond);
    CHECK(c.dataplane.flows.timeouts.udp_unreplied == 10 * FlowTimeouts::kSecond);
    CHECK(c.dataplane.flows.timeouts.tcp_syn_sent == FlowTimeouts{}.tcp_syn_sent);
    CHECK(c.control.socket_mode == 0660);
    REQUIRE(c.control.allowed_uids);
    CHECK(*c.control.allowed_uids == std::vector<uint32_t>{1000});
    CHECK(c.policy == "/srv/p.yaml");

    const std::string yaml = config("  pairs: [[inside, outside]]\n  flows: {capacity: 5000}\n");
    const auto r = load_config_text(yaml, "c.yaml");
    const auto [line, col] = position_of(yaml, "5000");
    CHECK(has_diagnostic(r.diagnostics, Severity::warning, line, col, "not a power of two; using 8192"));
}

TEST_CASE("config: relative policy resolves against the config's directory", "[config]") {
    CHECK(load_ok(config()).policy == "/etc/tagwall/p.yaml");
}

TEST_CASE("config: switch mode needs no pairs", "[config]") {
    const auto c = load_ok(config("  forwarding: switch\n  pairs: []\n"));
    CHECK(c.dataplane.forwarding == ForwardingMode::l2_switch);
    CHECK(c.dataplane.pairs.empty());
    CHECK(load_ok(config("  forwarding: switch\n")).dataplane.pairs.empty());
}

TEST_CASE("config: unknown keys, with suggestions", "[config]") {
    require_error_at(config("  pairs: [[inside, outside]]\n  wokers: 3\n"), "wokers",
                     "unknown key 'wokers' in 'dataplane' (did you mean 'workers'?)");
    require_error_at(config() + "contrl: {socket: /tmp/s}\n", "contrl",
                     "unknown key 'contrl' in the config (did you mean 'control'?)");
    require_error_at(config("  pairs: [[inside, outside]]\n  flows: {timeouts: {tcp_establish: 5}}\n"),
                     "tcp_establish", "unknown key 'tcp_establish' in 'timeouts' (did you mean 'tcp_established'?)");
}

TEST_CASE("config: port errors", "[config]") {
    SECTION("bad role") {
        const std::string yaml = "dataplane:\n  ports:\n    - {name: a, role: workloads, devargs: net_tap0}\n"
                                 "  forwarding: switch\npolicy: p.yaml\n";
        require_error_at(yaml, "workloads", "'role' must be workload or uplink, not 'workloads' (did you mean 'workload'?)");
    }
    SECTION("duplicate name") {
        const std::string yaml = "dataplane:\n  ports:\n    - {name: a, role: workload, devargs: net_tap0}\n"
                                 "    - {name: a, role: uplink, devargs: net_tap1}\n  forwarding: switch\npolicy: p.yaml\n";
        require_error_at(yaml, "a, role: uplink", "duplicate port name 'a' (first defined at c.yaml:3:7)");
    }
    SECTION("invalid name") {
        const std::string yaml = "dataplane:\n  ports:\n    - {name: 'a b', role: workload, devargs: net_tap0}\n"
                                 "  forwarding: switch\npolicy: p.yaml\n";
        require_error_at(yaml, "'a b'", "port name 'a b' is not a valid name");
    }
    SECTION("bad devargs, and the same device twice") {
        const std::string yaml = "dataplane:\n  ports:\n    - {name: a, role: workload, devargs: 'iface=veth0'}\n"
                                 "    - {name: b, role: workload, devargs: 'net_tap0'}\n"
                                 "    - {name: c, role: workload, devargs: 'net_tap0,iface=x'}\n"
                                 "  forwarding: switch\npolicy: p.yaml\n";
        require_error_at(yaml, "'iface=veth0'", "neither a PCI address");
        require_error_at(yaml, "'net_tap0,iface=x'", "device 'net_tap0' is already port 'b'");
    }
    SECTION("missing devargs") {
        const std::string yaml = "dataplane:\n  ports:\n    - {name: a, role: workload}\n  forwarding: switch\npolicy: p.yaml\n";
        require_error_at(yaml, "{name: a", "a port is missing 'devargs'");
    }
}

TEST_CASE("config: pair errors", "[config]") {
    SECTION("a pair naming an unknown port") {
        require_error_at(config("  pairs: [[inside, outsid]]\n"), "outsid]",
                         "unknown port 'outsid' in 'pairs' (did you mean 'outside'?)");
    }
    SECTION("a port in two pairs") {
        const std::string yaml = "dataplane:\n  ports:\n    - {name: a, role: workload, devargs: net_tap0}\n"
                                 "    - {name: b, role: uplink, devargs: net_tap1}\n"
                                 "    - {name: c, role: uplink, devargs: net_tap2}\n"
                                 "  pairs: [[a, b], [a, c]]\npolicy: p.yaml\n";
        require_error_at(yaml, "a, c", "port 'a' is already in a pair (at c.yaml:6:12)");
    }
    SECTION("a port in no pair, wire mode") {
        const std::string yaml = config("  pairs: []\n");
        require_error_at(yaml, "{name: inside", "port 'inside' is in no pair");
        require_error_at(yaml, "{name: outside", "port 'outside' is in no pair");
    }
    SECTION("no pairs at all in wire mode") {
        require_error_at(config(""), "{name: inside", "port 'inside' is in no pair");
    }
    SECTION("pairs in switch mode") {
        require_error_at(config("  forwarding: switch\n  pairs: [[inside, outside]]\n"), "[[inside",
                         "'pairs' is for 'forwarding: wire'");
    }
    SECTION("a pair of three, a port with itself") {
        require_error_at(config("  pairs: [[inside, outside, inside]]\n"), "[inside, outside, inside]",
                         "a pair must be a list of two port names");
        require_error_at(config("  pairs: [[inside, inside], [outside, outside]]\n"), "inside]",
                         "port 'inside' is already in a pair");
    }
}

TEST_CASE("config: number and enum errors", "[config]") {
    require_error_at("dataplane:\n  workers: 0\n" + kPorts + "  pairs: [[inside, outside]]\npolicy: p.yaml\n", "0\n",
                     "'workers' must be a number from 1 to 128, not '0'");
    require_error_at("dataplane:\n  workers: 129\n" + kPorts + "  pairs: [[inside, outside]]\npolicy: p.yaml\n", "129",
                     "'workers' must be a number from 1 to 128");
    require_error_at(config("  pairs: [[inside, outside]]\n  flows: {capacity: 1000}\n"), "1000",
                     "'capacity' must be a number from 1024 to 67108864, not '1000'");
    require_error_at(config("  pairs: [[inside, outside]]\n  flows: {capacity: 134217728}\n"), "134217728",
                     "'capacity' must be a number from 1024 to 67108864");
    require_error_at(config("  pairs: [[inside, outside]]\n  hugepages: sometimes\n"), "sometimes",
                     "'hugepages' must be auto, required or off, not 'sometimes'");
    require_error_at(config("  pairs: [[inside, outside]]\n  forwarding: bridge\n"), "bridge",
                     "'forwarding' must be wire or switch, not 'bridge'");
    require_error_at(config("  pairs: [[inside, outside]]\n  flows: {timeouts: {icmp: 0}}\n"), "0}",
                     "timeout 'icmp' must be a number from 1 to");
}

TEST_CASE("config: control errors", "[config]") {
    for (const char* bad : {"\"rw-rw----\"", "\"0668\"", "\"1660\"", "\"66\"", "\"06600\""}) {
        INFO(bad);
        require_error_at(config() + "control: {socket_mode: " + bad + "}\n", bad,
                         "'socket_mode' must be an octal mode like \"0660\"");
    }
    CHECK(load_ok(config() + "control: {socket_mode: \"0600\"}\n").control.socket_mode == 0600);
    CHECK(load_ok(config() + "control: {socket_mode: 640}\n").control.socket_mode == 0640);
    require_error_at(config() + "control: {allowed_gids: [0, staff]}\n", "staff",
                     "an id in 'allowed_gids' must be a number");
    const std::string yaml = config() + "control: {socket_mode: \"0666\"}\n";
    const auto r = load_config_text(yaml, "c.yaml");
    const auto [line, col] = position_of(yaml, "\"0666\"");
    CHECK(has_diagnostic(r.diagnostics, Severity::warning, line, col, "every local user"));
}

TEST_CASE("config: wrong types", "[config]") {
    require_error_at("dataplane:\n  workers: [1, 2]\n" + kPorts + "  pairs: [[inside, outside]]\npolicy: p.yaml\n", "[1, 2]",
                     "'workers' must be a single value, not a list");
    require_error_at("dataplane:\n  ports: {name: a}\npolicy: p.yaml\n", "{name: a}",
                     "'ports' (a list of {name, role, devargs}) must be a list, not a map");
    require_error_at("dataplane:\n  ports: [inside]\n  forwarding: switch\npolicy: p.yaml\n", "inside",
                     "a port ({name: inside, role: workload, devargs: ...}) must be a map, not a scalar");
    require_error_at(config() + "control: /run/s.sock\n", "/run/s.sock", "'control' must be a map, not a scalar");
    require_error_at(config("  pairs: [[inside, outside]]\n", "policy: [a, b]\n"), "[a, b]",
                     "'policy' must be a single value, not a list");
    require_error_at(config() + "log: {path: {a: b}}\n", "{a: b}", "'path' of 'log' must be a single value, not a map");
    require_error_at("- a\n- b\n", "- a", "the config file must be a map, not a list");
}

TEST_CASE("config: every error is reported, empty and broken files never crash", "[config]") {
    const std::string yaml = "dataplane:\n  workers: 0\n  hugepages: maybe\n" + kPorts +
                             "  pairs: [[inside, nowhere]]\ncontrol: {socket_mode: abc}\n";
    const auto r = load_config_text(yaml, "c.yaml");
    INFO(dump(r));
    CHECK_FALSE(r.config);
    // workers, hugepages, unknown port, 'outside' in no pair, socket_mode, missing policy
    CHECK(r.diagnostics.error_count() == 6);

    for (const char* text : {"", "~", "[", "dataplane: {ports: [{name: [x]}]}", "{{", "dataplane: &a [*a]", "\t"}) {
        INFO(text);
        const auto b = load_config_text(text, "c.yaml");
        CHECK_FALSE(b.config);
        CHECK(b.diagnostics.has_errors());
    }
    const auto missing = load_config_file("/nonexistent/tagwall.yaml");
    CHECK_FALSE(missing.config);
    CHECK(missing.diagnostics.has_errors());
}

TEST_CASE("config: PCI addresses", "[config]") {
    CHECK(is_pci_address("0000:3b:00.0"));
    CHECK(is_pci_address("3b:00.1"));
    CHECK(is_pci_address("0000:AF:1f.7,rxq_pkt_pad=1"));
    CHECK_FALSE(is_pci_address("net_af_packet0,iface=veth-in"));
    CHECK_FALSE(is_pci_address("0000:3b:00.8"));
    CHECK_FALSE(is_pci_address("0000:3b:00"));
    CHECK_FALSE(is_pci_address(""));
}

namespace {

bool contains_sequence(const std::vector<std::string>& args, const std::vector<std::string>& seq) {
    return std::search(args.begin(), args.end(), seq.begin(), seq.end()) != args.end();
}
bool contains(const std::vector<std::string>& args, const std::string& a) {
    return std::find(args.begin(), args.end(), a) != args.end();
}

}  // namespace

TEST_CASE("eal_args_for: af_packet vdevs", "[config]") {
    const auto c = load_ok(config());
    const auto eal = eal_args_for(c, {.hugepages_available = true, .file_prefix = "t1", .extra_args = {"--log-level=8"}});
    REQUIRE(eal.ok());
    CHECK(eal.hugepages);
    CHECK(eal.args == std::vector<std::string>{"tagwall", "-l", "0-2", "--file-prefix=tagwall-t1", "--no-pci",
                                               "--vdev", "net_af_packet0,iface=veth-in", "--vdev",
                                               "net_af_packet1,iface=veth-out", "--log-level=8"});
    CHECK(eal.diagnostics.items().empty());
}

TEST_CASE("eal_args_for: more workers than CPUs float over the CPUs there are, with a warning", "[config]") {
    const auto c = load_ok(config());  // two workers: three lcores
    const auto enough = eal_args_for(c, {.hugepages_available = true, .file_prefix = "t", .cpus = 3});
    CHECK(enough.args[1] == "-l");
    CHECK(enough.args[2] == "0-2");
    CHECK(enough.diagnostics.items().empty());
    const auto few = eal_args_for(c, {.hugepages_available = true, .file_prefix = "t", .cpus = 2});
    REQUIRE(few.ok());
    CHECK(few.args[1] == "--lcores");
    CHECK(few.args[2].rfind("(0-2)@(", 0) == 0);
    REQUIRE(few.diagnostics.items().size() == 1);
    CHECK(few.diagnostics.items()[0].message.find("float") != std::string::npos);
}

TEST_CASE("eal_args_for: lcores go on the CPUs the process may use", "[config]") {
    const auto c = load_ok(config());  // two workers: three lcores
    SECTION("CPUs 0..W: the plain list") {
        const auto eal = eal_args_for(c, {.hugepages_available = true, .file_prefix = "t", .cpu_ids = {0, 1, 2, 3}});
        CHECK(contains_sequence(eal.args, {"-l", "0-2"}));
        CHECK(eal.diagnostics.items().empty());
    }
    SECTION("other CPUs (taskset -c 4-6): lcore i on the i-th of them, never on CPUs outside the set") {
        const auto eal = eal_args_for(c, {.hugepages_available = true, .file_prefix = "t", .cpu_ids = {4, 5, 6}});
        CHECK(contains_sequence(eal.args, {"--lcores", "0@4,1@5,2@6"}));
        CHECK_FALSE(contains(eal.args, "-l"));
        CHECK(eal.diagnostics.items().empty());
    }
    SECTION("one CPU per worker: the control thread shares the first worker's CPU, with a warning") {
        const auto eal = eal_args_for(c, {.hugepages_available = true, .file_prefix = "t", .cpu_ids = {1, 3}});
        REQUIRE(eal.ok());
        CHECK(contains_sequence(eal.args, {"--lcores", "0@1,1@1,2@3"}));
        REQUIRE(eal.diagnostics.items().size() == 1);
        CHECK(eal.diagnostics.items()[0].message.find("shares CPU 1 with worker 1") != std::string::npos);
    }
    SECTION("fewer CPUs than workers: the lcores float over them") {
        const auto eal = eal_args_for(c, {.hugepages_available = true, .file_prefix = "t", .cpu_ids = {7}});
        CHECK(contains_sequence(eal.args, {"--lcores", "(0-2)@(7)"}));
        REQUIRE(eal.diagnostics.items().size() == 1);
        CHECK(eal.diagnostics.items()[0].message.find("float") != std::string::npos);
    }
}

TEST_CASE("eal_args_for: a PCI port is allow-listed and PCI is scanned", "[config]") {
    const auto c = load_ok("dataplane:\n  ports:\n    - {name: nic, role: uplink, devargs: '0000:3b:00.0'}\n"
                           "    - {name: tap, role: workload, devargs: 'net_tap0,iface=tw0'}\n"
                           "  pairs: [[nic, tap]]\npolicy: p.yaml\n");
    const auto eal = eal_args_for(c, {.hugepages_available = true, .file_prefix = "x"});
    REQUIRE(eal.ok());
    CHECK_FALSE(contains(eal.args, "--no-pci"));
    CHECK(contains_sequence(eal.args, {"-a", "0000:3b:00.0"}));
    CHECK(contains_sequence(eal.args, {"--vdev", "net_tap0,iface=tw0"}));
    CHECK(contains_sequence(eal.args, {"-l", "0-1"}));
}

TEST_CASE("eal_args_for: hugepage modes", "[config]") {
    SECTION("auto, available") {
        const auto eal = eal_args_for(load_ok(config()), {.hugepages_available = true});
        REQUIRE(eal.ok());
        CHECK(eal.hugepages);
        CHECK_FALSE(contains(eal.args, "--no-huge"));
        CHECK(eal.diagnostics.items().empty());
    }
    SECTION("auto, not available: --no-huge and a warning") {
        const auto eal = eal_args_for(load_ok(config()), {.hugepages_available = false});
        REQUIRE(eal.ok());
        CHECK_FALSE(eal.hugepages);
        CHECK(contains_sequence(eal.args, {"--no-huge", "-m", "1024"}));
        REQUIRE(eal.diagnostics.items().size() == 1);
        CHECK(eal.diagnostics.items()[0].severity == Severity::warning);
        CHECK(eal.diagnostics.items()[0].message.find("--no-huge") != std::string::npos);
    }
    SECTION("required, not available: an error at the 'hugepages' value") {
        const std::string yaml = config("  pairs: [[inside, outside]]\n  hugepages: required\n");
        const auto c = load_ok(yaml);
        const auto eal = eal_args_for(c, {.hugepages_available = false});
        CHECK_FALSE(eal.ok());
        CHECK(eal.args.empty());
        const auto [line, col] = position_of(yaml, "required");
        CHECK(has_diagnostic(eal.diagnostics, Severity::error, line, col, "'hugepages: required' but no hugepages"));
        const auto with = eal_args_for(c, {.hugepages_available = true});
        CHECK(with.ok());
        CHECK(with.hugepages);
    }
    SECTION("off: --no-huge even when available, no warning") {
        const auto c = load_ok(config("  pairs: [[inside, outside]]\n  hugepages: off\n"));
        const auto eal = eal_args_for(c, {.hugepages_available = true, .no_huge_mb = 512});
        REQUIRE(eal.ok());
        CHECK_FALSE(eal.hugepages);
        CHECK(contains_sequence(eal.args, {"--no-huge", "-m", "512"}));
        CHECK(eal.diagnostics.items().empty());
    }
    SECTION("the default file prefix carries the pid") {
        const auto eal = eal_args_for(load_ok(config()), {.hugepages_available = true});
        CHECK(std::any_of(eal.args.begin(), eal.args.end(),
                          [](const std::string& a) { return a.rfind("--file-prefix=tagwall-", 0) == 0; }));
    }
}
