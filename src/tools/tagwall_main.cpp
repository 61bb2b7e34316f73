// tagwall: the appliance daemon, and `tagwall check` for offline policy validation.  A thin main: option
// parsing and dispatch only; the work lives in src/rules (and src/dataplane, src/control as they land).
#include <cstdio>
#include <iostream>
#include <string>
#include <vector>

#include <boost/program_options.hpp>
#include <fmt/format.h>

#include "control/daemon.hpp"
#include "dataplane/config.hpp"
#include "dataplane/eal.hpp"
#include "rules/policy_loader.hpp"
#include "tools/check_report.hpp"

namespace po = boost::program_options;

namespace {

constexpr int kExitUsage = 2;

const char* const kOverview = R"(tagwall - zero-trust micro-segmentation firewall (DPDK appliance)

Usage:
  tagwall check [options] POLICY.yaml     validate and analyse a policy offline (no root, no DPDK)
  tagwall --config CONF.yaml [options] [-- EAL...]
                                          run the appliance in the foreground (root: DPDK ports)
  tagwall --config CONF.yaml --dry-run    validate the config and its policy, show what would start
  tagwall --help | --version

A policy says which workloads may talk, by their tags ("tier: web may reach tier: db on tcp/5432"),
never by their addresses.  `tagwall check` reads it exactly as the appliance would and reports:
  - every error, as FILE:LINE:COL: error: message (exit 1);
  - rules that can never match because earlier rules cover them (shadowed), rules whose removal
    changes no verdict (redundant), groups that match nothing or that no rule uses (warnings);
  - a summary: segments, endpoints, group members, the ordered rule table and the default.

The appliance (`--config`) opens the ports the config names (any DPDK port: a PCI NIC, or
net_af_packet / net_pcap / net_tap / net_memif virtual devices), derives every EAL argument from the
config (nobody types them; an expert may append raw ones after --), and forwards between them in
`wire` mode (pairs) or `switch` mode (the VLAN-aware L2 switch of its ports), filtering every packet
against the policy.  It prints `tagwall: ready ...` once forwarding, appends every drop, reject and
logged allow to the event log (log.path, JSON lines), and on SIGINT/SIGTERM stops and prints its
counters per port and per reason.

Examples:
  tagwall check conf/demo/policy.yaml
  tagwall check --quiet policy.yaml && echo "safe to load"
  tagwall --config conf/tagwall.yaml --dry-run
  sudo tagwall --config conf/tagwall.yaml --events     # run; print each event as it happens

Exit status: check: 0 valid (warnings allowed), 1 invalid, 2 usage error.
             --config: 0 after a clean stop (or a valid --dry-run), 1 on any failure, 2 usage error.
)";

int usage_error(const std::string& msg) {
    fmt::print(stderr, "tagwall: {}\nTry 'tagwall --help'.\n", msg);
    return kExitUsage;
}

int run_check_command(const std::vector<std::string>& args) {
    po::options_description opts("tagwall check options");
    opts.add_options()
        ("help,h", "show this help")
        ("quiet,q", "print only diagnostics and the verdict, not the summary tables")
        ("max-size", po::value<size_t>()->default_value(32), "refuse policy files larger than this many MB");
    po::options_description hidden;
    hidden.add_options()("policy", po::value<std::vector<std::string>>(), "policy file");
    po::options_description all;
    all.add(opts).add(hidden);
    po::positional_options_description pos;
    pos.add("policy", -1);
    po::variables_map vm;
    po::store(po::command_line_parser(args).options(all).positional(pos).run(), vm);
    po::notify(vm);
    if (vm.count("help")) {
        fmt::print("Usage: tagwall check [options] POLICY.yaml\n\nValidates POLICY.yaml (policy language v1) "
                   "and analyses it: positioned errors,\nshadowed and redundant rules, empty and unused groups, "
                   "and a summary.\nExit status: 0 valid, 1 invalid, 2 usage error.\n\n");
        std::cout << opts << '\n';
        return 0;
    }
    if (!vm.count("policy")) return usage_error("check: which policy? (tagwall check POLICY.yaml)");
    const auto files = vm["policy"].as<std::vector<std::string>>();
    if (files.size() != 1) return usage_error("check: give exactly one policy file");
    const size_t max_mb = vm["max-size"].as<size_t>();
    if (max_mb == 0 || max_mb > 4096) return usage_error("check: --max-size must be 1..4096 (MB)");
    return tagwall::tools::run_check({files[0], vm.count("quiet") > 0, max_mb}, stdout);
}

void print_diagnostics(const tagwall::rules::Diagnostics& diag) {
    for (const auto& d : diag.sorted()) fmt::print(stderr, "{}\n", d.str());
}

std::string join(const std::vector<std::string>& args) {
    std::string out;
    for (const auto& a : args) out += (out.empty() ? "" : " ") + a;
    return out;
}

// `tagwall --config FILE --dry-run`: validates the config and the policy it names, prints what it would start.
int validate_appliance(const std::string& config_path, const std::vector<std::string>& eal_extra) {
    namespace dp = tagwall::dataplane;
    const auto loaded = dp::load_config_file(config_path);
    print_diagnostics(loaded.diagnostics);
    if (!loaded.config) {
        fmt::print(stderr, "tagwall: {}: INVALID ({} error(s))\n", config_path, loaded.diagnostics.error_count());
        return 1;
    }
    const auto& config = *loaded.config;
    const auto policy = tagwall::rules::load_policy_file(config.policy);
    print_diagnostics(policy.diagnostics);
    if (!policy.policy) {
        fmt::print(stderr, "tagwall: policy {} (named at {}): INVALID ({} error(s))\n", config.policy,
                   config.policy_pos.str(), policy.diagnostics.error_count());
        return 1;
    }
    const auto eal = dp::eal_args_for(config, {.hugepages_available = dp::hugepages_available(),
                                               .cpus = static_cast<unsigned>(dp::allowed_cpus().size()),
                                               .cpu_ids = dp::allowed_cpus(),
                                               .extra_args = eal_extra});
    print_diagnostics(eal.diagnostics);
    if (!eal.ok()) return 1;

    const auto& d = config.dataplane;
    fmt::print("{}: valid.  tagwall would start:\n", config_path);
    fmt::print("  workers:    {} (lcore{} {}; lcore 0 is the control thread)\n", d.workers, d.workers == 1 ? "" : "s",
               d.workers == 1 ? std::string("1") : fmt::format("1-{}", d.workers));
    fmt::print("  forwarding: {}\n", dp::to_string(d.forwarding));
    for (const auto& p : d.ports)
        fmt::print("  port {:<12} {:<8} {} ({})\n", p.name, dp::to_string(p.role), p.devargs,
                   dp::is_pci_address(p.devargs) ? "PCI" : "virtual device");
    for (const auto& [a, b] : d.pairs) fmt::print("  pair:       {} <-> {}\n", a, b);
    fmt::print("  flows:      {} per appliance\n", d.flows.capacity);
    fmt::print("  hugepages:  {} ({})\n", dp::to_string(d.hugepages), eal.hugepages ? "in use" : "not used");
    fmt::print("  EAL:        {}\n", join(eal.args));
    fmt::print("  policy:     {} ({} rules)\n", config.policy, policy.policy->rules.size());
    fmt::print("  control:    {} (mode {:04o})\n", config.control.socket, config.control.socket_mode);
    fmt::print("  log:        {}\n", config.log.path);
    return 0;
}

int run_main(int argc, char** argv) {
    po::options_description opts("tagwall options");
    opts.add_options()
        ("help,h", "show this help")
        ("version", "print the version")
        ("config,c", po::value<std::string>(), "appliance configuration (conf/tagwall.yaml)")
        ("dry-run", "with --config: validate and show what would start, start nothing")
        ("events", "with --config: also print every event (drop, reject, logged allow) on stdout")
        ("engine", po::value<std::string>()->default_value("trie"), "classifier engine: trie, rte_acl or linear");
    po::options_description hidden;
    hidden.add_options()("eal", po::value<std::vector<std::string>>(), "raw EAL arguments after --");
    po::options_description all;
    all.add(opts).add(hidden);
    po::positional_options_description pos;
    pos.add("eal", -1);
    po::variables_map vm;
    const auto parsed = po::command_line_parser(argc, argv).options(all).positional(pos).run();
    po::store(parsed, vm);
    po::notify(vm);
    if (vm.count("help")) {
        fmt::print("{}\n", kOverview);
        std::cout << opts << '\n';
        return 0;
    }
    if (vm.count("version")) {
        fmt::print("tagwall {}\n", TAGWALL_VERSION);
        return 0;
    }
    if (!vm.count("config")) return usage_error("nothing to do: give 'check POLICY.yaml' or '--config CONF.yaml'");
    std::vector<std::string> eal_extra;
    if (vm.count("eal")) eal_extra = vm["eal"].as<std::vector<std::string>>();
    // Only what follows `--` is EAL's; a stray word before it is a mistake.
    bool after_dashes = false;
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        if (a == "--") { after_dashes = true; break; }
    }
    if (!eal_extra.empty() && !after_dashes)
        return usage_error(fmt::format("unexpected argument '{}' (raw EAL arguments go after --)", eal_extra[0]));
    if (vm.count("dry-run")) return validate_appliance(vm["config"].as<std::string>(), eal_extra);
    const std::string engine = vm["engine"].as<std::string>();
    if (engine != "trie" && engine != "rte_acl" && engine != "linear")
        return usage_error(fmt::format("--engine must be trie, rte_acl or linear, not '{}'", engine));
    return tagwall::control::run_daemon(
        {.config_path = vm["config"].as<std::string>(), .eal_extra = eal_extra, .events_to_stdout = vm.count("events") > 0,
         .engine = engine});
}

}  // namespace

int main(int argc, char** argv) {
    try {
        if (argc >= 2 && std::string(argv[1]) == "check")
            return run_check_command(std::vector<std::string>(argv + 2, argv + argc));
        return run_main(argc, argv);
    } catch (const po::error& e) {
        return usage_error(e.what());
    } catch (const std::exception& e) {
        fmt::print(stderr, "tagwall: {}\n", e.what());
        return 1;
    }
}
