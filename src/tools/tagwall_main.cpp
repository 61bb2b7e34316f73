// tagwall: the appliance daemon, and `tagwall check` for offline policy validation.  A thin main: option
// parsing and dispatch only; the work lives in src/rules (and src/dataplane, src/control as they land).
#include <cstdio>
#include <iostream>
#include <string>
#include <vector>

#include <boost/program_options.hpp>
#include <fmt/format.h>

#include "tools/check_report.hpp"

namespace po = boost::program_options;

namespace {

constexpr int kExitUsage = 2;

const char* const kOverview = R"(tagwall - zero-trust micro-segmentation firewall (DPDK appliance)

Usage:
  tagwall check [options] POLICY.yaml     validate and analyse a policy offline (no root, no DPDK)
  tagwall --config CONF.yaml [-- EAL...]  run the appliance (dataplane: not built yet, see below)
  tagwall --help | --version

A policy says which workloads may talk, by their tags ("tier: web may reach tier: db on tcp/5432"),
never by their addresses.  `tagwall check` reads it exactly as the appliance would and reports:
  - every error, as FILE:LINE:COL: error: message (exit 1);
  - rules that can never match because earlier rules cover them (shadowed), rules whose removal
    changes no verdict (redundant), groups that match nothing or that no rule uses (warnings);
  - a summary: segments, endpoints, group members, the ordered rule table and the default.

Examples:
  tagwall check conf/demo/policy.yaml
  tagwall check --quiet policy.yaml && echo "safe to load"

Exit status: 0 valid (warnings allowed), 1 invalid, 2 usage error.
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

int run_daemon(int argc, char** argv) {
    po::options_description opts("tagwall options");
    opts.add_options()
        ("help,h", "show this help")
        ("version", "print the version")
        ("config,c", po::value<std::string>(), "appliance configuration (conf/tagwall.yaml)");
    po::variables_map vm;
    po::store(po::command_line_parser(argc, argv).options(opts).run(), vm);
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
    fmt::print(stderr, "tagwall: the dataplane (poll-mode workers, ports) is not built yet; this build can only\n"
                       "validate policies: tagwall check POLICY.yaml\n");
    return 1;
}

}  // namespace

int main(int argc, char** argv) {
    try {
        if (argc >= 2 && std::string(argv[1]) == "check")
            return run_check_command(std::vector<std::string>(argv + 2, argv + argc));
        return run_daemon(argc, argv);
    } catch (const po::error& e) {
        return usage_error(e.what());
    } catch (const std::exception& e) {
        fmt::print(stderr, "tagwall: {}\n", e.what());
        return 1;
    }
}
