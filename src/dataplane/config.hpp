// The appliance configuration (SPEC §3, `tagwall --config conf/tagwall.yaml`) and the EAL command line
// derived from it (SPEC §2: nobody types EAL arguments).
//
// Control side only; may allocate.  The loader follows the policy loader's rules: it walks the whole
// document, reports every problem with its FILE:LINE:COL (unknown keys with "did you mean", wrong types,
// broken references between ports and pairs), and never crashes or throws on bad content.
// eal_args_for() is a pure function of the config and an EalEnvironment (is there hugepage memory? which
// file prefix?), so that it is tested without touching the machine.
//
// Defaults, for keys the file may leave out:
//   dataplane: {workers: 1, hugepages: auto, forwarding: wire, flows: {capacity: 1048576}}
//              (ports are required; flow timeouts default to FlowTimeouts in flow_table.hpp)
//   control:   {socket: /run/tagwall/tagwall.sock, socket_mode: "0660", allowed_gids: [0]}
//              (allowed_uids: absent = no uid is allowed on its own; root is checked by gid 0)
//   log:       {path: /var/log/tagwall/events.jsonl}
//   policy:    required; a relative path is relative to the config file's directory.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "dataplane/eal.hpp"
#include "dataplane/flow_table.hpp"
#include "dataplane/port_role.hpp"
#include "rules/diagnostics.hpp"

namespace tagwall::dataplane {

enum class ForwardingMode { wire, l2_switch };  // `forwarding: wire | switch`

struct PortSpec {
    std::string name;
    PortRole role = PortRole::workload;
    std::string devargs;  // "0000:3b:00.0[,args]" (PCI) or "net_af_packet0,iface=veth-in" (virtual device)
    rules::SourcePos pos;
};

struct FlowsConfig {
    static constexpr uint32_t kMinCapacity = 1024;
    static constexpr uint32_t kMaxCapacity = 1u << 26;
    uint32_t capacity = 1u << 20;  // a power of two (the loader rounds up, with a warning)
    FlowTimeouts timeouts{};
};

struct DataplaneConfig {
    static constexpr unsigned kMaxWorkers = 128;
    unsigned workers = 1;
    HugepageMode hugepages = HugepageMode::automatic;
    rules::SourcePos hugepages_pos;  // where `hugepages:` was written (for eal_args_for's errors)
    std::vector<PortSpec> ports;
    ForwardingMode forwarding = ForwardingMode::wire;
    std::vector<std::pair<std::string, std::string>> pairs;  // wire mode: port names, each port in one pair
    FlowsConfig flows;
};

struct ControlConfig {
    std::string socket = "/run/tagwall/tagwall.sock";
    unsigned socket_mode = 0660;
    std::vector<uint32_t> allowed_gids{0};
    std::optional<std::vector<uint32_t>> allowed_uids;
};

struct LogConfig {
    std::string path = "/var/log/tagwall/events.jsonl";
};

struct ApplianceConfig {
    std::string file;  // the config file it was read from (as named to the loader)
    DataplaneConfig dataplane;
    ControlConfig control;
    LogConfig log;
    std::string policy;  // resolved against the config file's directory
    rules::SourcePos policy_pos;
};

struct ConfigLoadResult {
    std::optional<ApplianceConfig> config;  // set when there are no errors
    rules::Diagnostics diagnostics;         // errors and warnings, in any case
};

// Reads and validates FILE.  Never throws for bad content; I/O failures are diagnostics too.
ConfigLoadResult load_config_file(const std::string& path);
// Same, from text in memory; `name` is used in positions and its directory resolves a relative policy.
ConfigLoadResult load_config_text(const std::string& text, const std::string& name);

// ---------------------------------------------------------------------------------------------------
// EAL arguments

struct EalEnvironment {
    bool hugepages_available = false;      // hugepages_available() on the real machine
    std::string program = "tagwall";       // argv[0]
    std::string file_prefix;               // "" = "tagwall-<pid>"
    size_t no_huge_mb = 1024;              // heap without hugepages
    unsigned cpus = 0;                     // CPUs this process may use (0: unknown; see eal_args_for)
    std::vector<unsigned> cpu_ids;         // which ones, in order (allowed_cpus()); empty: not known
    std::vector<std::string> extra_args;   // an expert's raw EAL arguments (after `--`), appended as is
};

struct EalArgs {
    std::vector<std::string> args;  // argv for rte_eal_init, program name first; empty on error
    bool hugepages = false;         // whether the EAL will use hugepages
    rules::Diagnostics diagnostics; // the --no-huge fallback warning; `required` without hugepages (error)
    bool ok() const noexcept { return !diagnostics.has_errors(); }
};

//   PROGRAM (-l 0-W | --lcores MAP) --file-prefix=PREFIX [--no-huge -m MB]
//           (--no-pci | -a PCI...) [--vdev DEVARGS...] [EXTRA...]
// with W = workers (lcore 0 is the control thread).  Where the lcores run, when env.cpu_ids says which
// CPUs the process may use (taskset, cpuset):
//   - at least W + 1 of them: lcore i on the i-th (`-l 0-W` when those are CPUs 0..W, else
//     `--lcores 0@C0,1@C1,...`), so that `taskset -c 4-6 tagwall` runs its workers on 5 and 6;
//   - exactly W: each worker on a CPU of its own, the control thread (which sleeps between its 20 ms
//     polls) on the first worker's CPU (`--lcores 0@C0,1@C0,2@C1,...`), with a warning;
//   - fewer than W: the lcores float over the CPUs it has (`--lcores (0-W)@(C0,C1...)`), with a
//     warning: poll-mode workers then share cores (the idle sleep keeps that usable for tests and small
//     VMs, not for throughput).
// Without cpu_ids, `-l 0-W`, or the floating form when env.cpus is known and smaller than W + 1.
// PCI ports are allow-listed; every other port is a --vdev.  Hugepages: auto uses them when
// available, else --no-huge with a warning; required fails without them; off always runs --no-huge.
EalArgs eal_args_for(const ApplianceConfig& config, const EalEnvironment& env);

// The CPUs this process may run on (sched_getaffinity), in order.
std::vector<unsigned> allowed_cpus();

// True for "0000:3b:00.0" and "3b:00.0" (the part before any ',' of a devargs string).
bool is_pci_address(std::string_view devargs) noexcept;

std::string_view to_string(PortRole r) noexcept;
std::string_view to_string(ForwardingMode m) noexcept;
std::string_view to_string(HugepageMode m) noexcept;

}  // namespace tagwall::dataplane
