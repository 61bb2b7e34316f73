// Control side: conf/tagwall.yaml -> validated ApplianceConfig, and the EAL argv derived from it.
//
// The walk follows src/rules/policy_loader.cpp: every node is type-checked before use, every error is
// recorded and the walk goes on, scalars are parsed by hand (yaml-cpp's conversions are not trusted).
// Config files are small and written by hand, so there is no visit budget; the size limit and the
// error cap bound the work.
#include "dataplane/config.hpp"

#include <sched.h>
#include "rules/yaml_reader.hpp"

#include <unistd.h>

#include <algorithm>
#include <array>
#include <bit>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <unordered_map>

#include <fmt/format.h>
#include <yaml-cpp/yaml.h>

namespace tagwall::dataplane {

using rules::Diagnostics;
using rules::SourcePos;

namespace {

constexpr size_t kMaxFileBytes = 1u << 20;  // a config is a page of YAML
constexpr size_t kMaxErrors = 200;
constexpr size_t kVisitBudget = 1'000'000;  // nodes: a config is small, whatever its aliases expand to
constexpr uint64_t kMaxTimeoutSeconds = 30ull * 86400;

// The configurable timeouts: the FlowTimeouts member each key sets.
struct TimeoutKey {
    const char* key;
    uint64_t FlowTimeouts::*field;
};
constexpr std::array kTimeoutKeys{
    TimeoutKey{"tcp_syn_sent", &FlowTimeouts::tcp_syn_sent},
    TimeoutKey{"tcp_syn_recv", &FlowTimeouts::tcp_syn_recv},
    TimeoutKey{"tcp_established", &FlowTimeouts::tcp_established},
    TimeoutKey{"tcp_fin_wait", &FlowTimeouts::tcp_fin_wait},
    TimeoutKey{"tcp_close_wait", &FlowTimeouts::tcp_close_wait},
    TimeoutKey{"tcp_last_ack", &FlowTimeouts::tcp_last_ack},
    TimeoutKey{"tcp_time_wait", &FlowTimeouts::tcp_time_wait},
    TimeoutKey{"tcp_close", &FlowTimeouts::tcp_close},
    TimeoutKey{"udp_unreplied", &FlowTimeouts::udp_unreplied},
    TimeoutKey{"udp_replied", &FlowTimeouts::udp_replied},
    TimeoutKey{"icmp", &FlowTimeouts::icmp},
    TimeoutKey{"other", &FlowTimeouts::other},
};

bool valid_port_name(std::string_view s) {
    if (s.empty() || s.size() > 32) return false;
    return std::all_of(s.begin(), s.end(), [](char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_';
    });
}

// A virtual device's name: "net_af_packet0", "net_pcap1", "net_memif" (letters, digits, '_').
bool valid_vdev_name(std::string_view s) {
    if (s.empty() || !((s[0] >= 'a' && s[0] <= 'z') || (s[0] >= 'A' && s[0] <= 'Z'))) return false;
    return std::all_of(s.begin(), s.end(), [](char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
    });
}

std::string_view device_of(std::string_view devargs) { return devargs.substr(0, devargs.find(',')); }

class ConfigLoader : public rules::YamlReader {
public:
    ConfigLoader(std::string file, Diagnostics& diag) : YamlReader(std::move(file), diag, kMaxErrors, kVisitBudget) {
        config_.file = file_;
    }
    std::optional<ApplianceConfig> load(const YAML::Node& root);

private:

    void load_dataplane(const YAML::Node& n);
    void load_ports(const YAML::Node& n);
    void load_port(const YAML::Node& n);
    void load_pairs(const YAML::Node& n);
    void check_pairs(const KeyMap& keys);
    void load_flows(const YAML::Node& n);
    void load_control(const YAML::Node& n);
    void load_log(const YAML::Node& n);
    void load_policy(const YAML::Node& n);

    std::optional<std::string> one_of(const YAML::Node& n, const std::string& what, const Keys& choices);
    std::optional<std::vector<uint32_t>> id_list(const YAML::Node& n, const std::string& what);

    ApplianceConfig config_;
    std::vector<std::string> port_names_;  // every well-named port, even one with other errors (no cascades)
    std::vector<std::pair<YAML::Node, YAML::Node>> pair_nodes_;
};

// ---------------------------------------------------------------------------------------------------
// Sections

std::optional<ApplianceConfig> ConfigLoader::load(const YAML::Node& root) {
    if (!root.IsDefined() || root.IsNull()) {
        diag_.error({file_, 1, 1}, "the config is empty; it needs at least 'dataplane: {ports: ...}' and 'policy'");
        return std::nullopt;
    }
    if (!expect(root, YAML::NodeType::Map, "the config file")) return std::nullopt;
    const auto keys = keys_of(root, {"dataplane", "control", "log", "policy"}, "the config");
    if (const auto it = keys.find("dataplane"); it != keys.end()) load_dataplane(it->second);
    else diag_.error(pos(root), "missing 'dataplane' (at least 'dataplane: {ports: [...]}')");
    if (const auto it = keys.find("control"); it != keys.end()) load_control(it->second);
    if (const auto it = keys.find("log"); it != keys.end()) load_log(it->second);
    if (const auto it = keys.find("policy"); it != keys.end()) load_policy(it->second);
    else diag_.error(pos(root), "missing 'policy' (the policy file, e.g. 'policy: demo/policy.yaml')");
    if (diag_.has_errors()) return std::nullopt;
    return std::move(config_);
}

void ConfigLoader::load_dataplane(const YAML::Node& n) {
    if (!expect(n, YAML::NodeType::Map, "'dataplane'")) return;
    const auto keys = keys_of(n, {"workers", "hugepages", "ports", "forwarding", "pairs", "flows"}, "'dataplane'");
    auto& dp = config_.dataplane;
    if (const auto it = keys.find("workers"); it != keys.end())
        if (const auto v = number(it->second, "'workers'", 1, DataplaneConfig::kMaxWorkers))
            dp.workers = static_cast<unsigned>(*v);
    if (const auto it = keys.find("hugepages"); it != keys.end()) {
        dp.hugepages_pos = pos(it->second);
        if (const auto v = one_of(it->second, "'hugepages'", {"auto", "required", "off"}))
            dp.hugepages = *v == "auto" ? HugepageMode::automatic
                         : *v == "required" ? HugepageMode::required : HugepageMode::off;
    } else {
        dp.hugepages_pos = pos(n);
    }
    if (const auto it = keys.find("ports"); it != keys.end()) load_ports(it->second);
    else error(n, "'dataplane' is missing 'ports' (a list of {name, role, devargs})");
    if (const auto it = keys.find("forwarding"); it != keys.end())
        if (const auto v = one_of(it->second, "'forwarding'", {"wire", "switch"}))
            dp.forwarding = *v == "wire" ? ForwardingMode::wire : ForwardingMode::l2_switch;
    if (const auto it = keys.find("pairs"); it != keys.end()) load_pairs(it->second);
    check_pairs(keys);
    if (const auto it = keys.find("flows"); it != keys.end()) load_flows(it->second);
}

void ConfigLoader::load_ports(const YAML::Node& n) {
    if (!expect(n, YAML::NodeType::Sequence, "'ports' (a list of {name, role, devargs})")) return;
    for (const auto& item : n)
        if (expect(item, YAML::NodeType::Map, "a port ({name: inside, role: workload, devargs: ...})")) load_port(item);
    if (n.size() == 0) error(n, "'ports' is empty; the appliance needs at least one port");
}

void ConfigLoader::load_port(const YAML::Node& n) {
    const auto keys = keys_of(n, {"name", "role", "devargs", "description"}, "a port");
    PortSpec port{.pos = pos(n)};
    bool ok = true;
    const auto field = [&](const char* key) -> std::optional<YAML::Node> {
        if (const auto it = keys.find(key); it != keys.end()) return it->second;
        error(n, fmt::format("a port is missing '{}'", key));
        ok = false;
        return std::nullopt;
    };
    if (const auto node = field("name")) {
        const auto name = scalar(*node, "port name");
        if (!name) {
            ok = false;
        } else if (!valid_port_name(*name)) {
            error(*node, fmt::format("port name '{}' is not a valid name (1-32 characters: letters, digits, '-', '_')",
                                     *name));
            ok = false;
        } else if (const auto dup = std::find_if(config_.dataplane.ports.begin(), config_.dataplane.ports.end(),
                                                 [&](const PortSpec& p) { return p.name == *name; });
                   dup != config_.dataplane.ports.end()) {
            error(*node, fmt::format("duplicate port name '{}' (first defined at {})", *name, dup->pos.str()));
            ok = false;
        } else {
            port.name = *name;
            port_names_.push_back(*name);
        }
    }
    if (const auto node = field("role")) {
        const auto role = one_of(*node, "'role'", {"workload", "uplink"});
        ok = ok && role.has_value();
        port.role = role == "uplink" ? PortRole::uplink : PortRole::workload;
    }
    if (const auto node = field("devargs")) {
        const auto devargs = scalar(*node, "'devargs'");
        if (!devargs) {
            ok = false;
        } else if (!is_pci_address(*devargs) && !valid_vdev_name(device_of(*devargs))) {
            error(*node, fmt::format("devargs '{}' is neither a PCI address (0000:3b:00.0) nor a virtual device "
                                     "(net_af_packet0,iface=veth-in)", *devargs));
            ok = false;
        } else if (const auto dup = std::find_if(config_.dataplane.ports.begin(), config_.dataplane.ports.end(),
                                                 [&](const PortSpec& p) {
                                                     return device_of(p.devargs) == device_of(*devargs);
                                                 });
                   dup != config_.dataplane.ports.end()) {
            error(*node, fmt::format("device '{}' is already port '{}'; each port needs its own device (virtual "
                                     "devices are numbered: net_af_packet0, net_af_packet1)",
                                     device_of(*devargs), dup->name));
            ok = false;
        } else {
            port.devargs = *devargs;
        }
    }
    if (const auto it = keys.find("description"); it != keys.end()) (void)scalar(it->second, "'description'");
    if (ok) config_.dataplane.ports.push_back(std::move(port));
}

void ConfigLoader::load_pairs(const YAML::Node& n) {
    if (n.IsNull()) return;
    if (!expect(n, YAML::NodeType::Sequence, "'pairs' (a list of [port, port])")) return;
    for (const auto& item : n) {
        if (!item.IsSequence() || item.size() != 2) {
            error(item, fmt::format("a pair must be a list of two port names ([inside, outside]), not {}",
                                    item.IsSequence() ? fmt::format("{} names", item.size()) : kind_name(item)));
            continue;
        }
        const auto a = scalar(item[0], "a port in a pair");
        const auto b = scalar(item[1], "a port in a pair");
        if (!a || !b) continue;
        pair_nodes_.emplace_back(item[0], item[1]);
    }
}

// Wire mode: every pair names two existing, different ports, and every port is in exactly one pair.
// Switch mode: no pairs.
void ConfigLoader::check_pairs(const KeyMap& keys) {
    auto& dp = config_.dataplane;
    const auto pairs_it = keys.find("pairs");
    if (dp.forwarding == ForwardingMode::l2_switch) {
        if (pairs_it != keys.end() && pairs_it->second.IsSequence() && pairs_it->second.size() > 0)
            error(pairs_it->second, "'pairs' is for 'forwarding: wire'; a switch forwards among all its ports "
                                    "(remove 'pairs' or set 'forwarding: wire')");
        return;
    }
    std::map<std::string, SourcePos> paired;  // port -> where it was paired first
    for (const auto& [na, nb] : pair_nodes_) {
        bool ok = true;
        for (const auto* node : {&na, &nb}) {
            const std::string name = node->Scalar();
            if (std::find(port_names_.begin(), port_names_.end(), name) == port_names_.end()) {
                const auto hint = rules::closest_match(name, port_names_);
                error(*node, hint.empty() ? fmt::format("unknown port '{}' in 'pairs'", name)
                                          : fmt::format("unknown port '{}' in 'pairs' (did you mean '{}'?)", name, hint));
                ok = false;
                continue;
            }
            if (const auto [it, fresh] = paired.emplace(name, pos(*node)); !fresh) {
                error(*node, fmt::format("port '{}' is already in a pair (at {}); in wire mode each port is in "
                                         "exactly one pair", name, it->second.str()));
                ok = false;
            }
        }
        if (ok && na.Scalar() == nb.Scalar()) {
            error(nb, fmt::format("port '{}' is paired with itself", na.Scalar()));
            ok = false;
        }
        if (ok) dp.pairs.emplace_back(na.Scalar(), nb.Scalar());
    }
    for (const auto& p : dp.ports)
        if (!paired.contains(p.name))
            diag_.error(p.pos, fmt::format("port '{}' is in no pair; in wire mode every port is in exactly one "
                                           "pair (pairs: [[{}, OTHER]])", p.name, p.name));
}

void ConfigLoader::load_flows(const YAML::Node& n) {
    if (!expect(n, YAML::NodeType::Map, "'flows'")) return;
    const auto keys = keys_of(n, {"capacity", "timeouts"}, "'flows'");
    auto& flows = config_.dataplane.flows;
    if (const auto it = keys.find("capacity"); it != keys.end()) {
        if (const auto v = number(it->second, "'capacity'", FlowsConfig::kMinCapacity, FlowsConfig::kMaxCapacity)) {
            flows.capacity = std::bit_ceil(static_cast<uint32_t>(*v));
            if (flows.capacity != *v)
                diag_.warning(pos(it->second), fmt::format("'capacity' {} is not a power of two; using {}", *v,
                                                           flows.capacity));
        }
    }
    const auto it = keys.find("timeouts");
    if (it == keys.end() || it->second.IsNull()) return;
    Keys allowed;
    for (const auto& k : kTimeoutKeys) allowed.emplace_back(k.key);
    if (!expect(it->second, YAML::NodeType::Map, "'timeouts' (a map of state: seconds)")) return;
    for (const auto& [key, value] : keys_of(it->second, allowed, "'timeouts'")) {
        const auto seconds = number(value, fmt::format("timeout '{}'", key), 1, kMaxTimeoutSeconds);
        if (!seconds) continue;
        for (const auto& k : kTimeoutKeys)
            if (key == k.key) flows.timeouts.*k.field = *seconds * FlowTimeouts::kSecond;
    }
}

void ConfigLoader::load_control(const YAML::Node& n) {
    if (!expect(n, YAML::NodeType::Map, "'control'")) return;
    const auto keys = keys_of(n, {"socket", "socket_mode", "allowed_gids", "allowed_uids"}, "'control'");
    auto& c = config_.control;
    if (const auto it = keys.find("socket"); it != keys.end())
        if (const auto v = scalar(it->second, "'socket'")) {
            if (v->empty() || v->size() > 107)  // sun_path holds 108 bytes with the NUL
                error(it->second, fmt::format("'socket' must be a path of 1 to 107 characters, not '{}'", *v));
            else
                c.socket = *v;
        }
    if (const auto it = keys.find("socket_mode"); it != keys.end())
        if (const auto v = scalar(it->second, "'socket_mode'")) {
            unsigned mode = 0;
            const auto [end, ec] = std::from_chars(v->data(), v->data() + v->size(), mode, 8);
            const bool ok = (v->size() == 3 || (v->size() == 4 && (*v)[0] == '0')) && ec == std::errc{} &&
                            end == v->data() + v->size();
            if (!ok) {
                error(it->second, fmt::format("'socket_mode' must be an octal mode like \"0660\", not '{}'", *v));
            } else {
                c.socket_mode = mode;
                if (mode & 0006)
                    diag_.warning(pos(it->second), fmt::format("'socket_mode' {} lets every local user reach the "
                                                               "control socket", *v));
            }
        }
    if (const auto it = keys.find("allowed_gids"); it != keys.end())
        if (auto v = id_list(it->second, "'allowed_gids'")) c.allowed_gids = std::move(*v);
    if (const auto it = keys.find("allowed_uids"); it != keys.end())
        if (auto v = id_list(it->second, "'allowed_uids'")) c.allowed_uids = std::move(*v);
}

void ConfigLoader::load_log(const YAML::Node& n) {
    if (!expect(n, YAML::NodeType::Map, "'log' ({path: FILE})")) return;
    const auto keys = keys_of(n, {"path"}, "'log'");
    if (const auto it = keys.find("path"); it != keys.end())
        if (const auto v = scalar(it->second, "'path' of 'log'")) {
            if (v->empty()) error(it->second, "'path' of 'log' is empty");
            else config_.log.path = *v;
        }
}

void ConfigLoader::load_policy(const YAML::Node& n) {
    const auto v = scalar(n, "'policy'");
    if (!v) return;
    if (v->empty()) return error(n, "'policy' is empty; name the policy file");
    std::filesystem::path p(*v);
    if (p.is_relative()) p = std::filesystem::path(file_).parent_path() / p;
    config_.policy = p.lexically_normal().string();
    config_.policy_pos = pos(n);
}

// ---------------------------------------------------------------------------------------------------
// Typed accessors of the config only (the common ones are YamlReader's)

std::optional<std::string> ConfigLoader::one_of(const YAML::Node& n, const std::string& what, const Keys& choices) {
    const auto s = scalar(n, what);
    if (!s) return std::nullopt;
    if (std::find(choices.begin(), choices.end(), *s) != choices.end()) return s;
    std::string list;
    for (size_t i = 0; i < choices.size(); ++i)
        list += (i == 0 ? "" : i + 1 == choices.size() ? " or " : ", ") + choices[i];
    const auto hint = rules::closest_match(*s, choices);
    error(n, hint.empty() ? fmt::format("{} must be {}, not '{}'", what, list, *s)
                          : fmt::format("{} must be {}, not '{}' (did you mean '{}'?)", what, list, *s, hint));
    return std::nullopt;
}

std::optional<std::vector<uint32_t>> ConfigLoader::id_list(const YAML::Node& n, const std::string& what) {
    if (n.IsNull()) return std::vector<uint32_t>{};
    if (!expect(n, YAML::NodeType::Sequence, fmt::format("{} (a list of numeric ids, e.g. [0, 1001])", what)))
        return std::nullopt;
    std::vector<uint32_t> out;
    bool ok = true;
    for (const auto& item : n) {
        const auto v = number(item, fmt::format("an id in {}", what), 0, 0xfffffffeu);  // (uint32_t)-1 is "no id"
        if (v) out.push_back(static_cast<uint32_t>(*v));
        else ok = false;
    }
    if (!ok) return std::nullopt;
    return out;
}

ConfigLoadResult parse_and_load(const std::string& text, const std::string& name) {
    ConfigLoadResult result;
    const auto root = rules::parse_yaml(text, name, result.diagnostics);
    if (!root) return result;
    try {
        ConfigLoader loader(name, result.diagnostics);
        result.config = loader.load(*root);
    } catch (const std::exception& e) {  // yaml-cpp can still throw on odd documents; never crash
        result.diagnostics.error({name, 1, 1}, fmt::format("cannot read the config: {}", e.what()));
        result.config.reset();
    }
    return result;
}

}  // namespace

// ---------------------------------------------------------------------------------------------------

ConfigLoadResult load_config_text(const std::string& text, const std::string& name) {
    ConfigLoadResult r;
    if (!rules::within_size_limit(text.size(), name, kMaxFileBytes, "config", r.diagnostics)) return r;
    return parse_and_load(text, name);
}

ConfigLoadResult load_config_file(const std::string& path) {
    ConfigLoadResult r;
    const auto text = rules::read_yaml_file(path, kMaxFileBytes, "config", r.diagnostics);
    if (!text) return r;
    return parse_and_load(*text, path);
}

bool is_pci_address(std::string_view devargs) noexcept {
    const auto addr = device_of(devargs);
    // [DDDD:]BB:DD.F, hex digits
    const auto hex = [](std::string_view s) {
        return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) {
            return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
        });
    };
    std::string_view rest = addr;
    if (rest.size() == 12) {
        if (!hex(rest.substr(0, 4)) || rest[4] != ':') return false;
        rest.remove_prefix(5);
    }
    return rest.size() == 7 && hex(rest.substr(0, 2)) && rest[2] == ':' && hex(rest.substr(3, 2)) && rest[5] == '.' &&
           rest[6] >= '0' && rest[6] <= '7';
}

namespace {

// The lcore placement of eal_args_for (config.hpp says which form when).
void place_lcores(const ApplianceConfig& config, const EalEnvironment& env, EalArgs& out) {
    const auto& dp = config.dataplane;
    auto& a = out.args;
    const unsigned lcores = dp.workers + 1;
    const std::vector<unsigned> cpus = !env.cpu_ids.empty() ? env.cpu_ids : allowed_cpus();
    const unsigned have = !env.cpu_ids.empty() ? static_cast<unsigned>(env.cpu_ids.size()) : env.cpus;
    if (!env.cpu_ids.empty() && have >= lcores) {
        bool identity = true;
        for (unsigned i = 0; i < lcores; ++i) identity = identity && cpus[i] == i;
        if (identity) {
            a.push_back("-l");
            a.push_back(dp.workers == 0 ? "0" : fmt::format("0-{}", dp.workers));
            return;
        }
        std::string map;
        for (unsigned i = 0; i < lcores; ++i) map += fmt::format("{}{}@{}", i == 0 ? "" : ",", i, cpus[i]);
        a.push_back("--lcores");
        a.push_back(map);
        return;
    }
    if (!env.cpu_ids.empty() && have == dp.workers && dp.workers > 0) {
        std::string map = fmt::format("0@{}", cpus[0]);
        for (unsigned i = 1; i < lcores; ++i) map += fmt::format(",{}@{}", i, cpus[i - 1]);
        a.push_back("--lcores");
        a.push_back(map);
        out.diagnostics.warning(rules::SourcePos{config.file, 0, 0},
                                fmt::format("{} worker{} on {} CPU{}: the control thread shares CPU {} with worker 1",
                                            dp.workers, dp.workers == 1 ? "" : "s", have, have == 1 ? "" : "s", cpus[0]));
        return;
    }
    if (have != 0 && have < lcores) {
        std::string set;
        for (size_t i = 0; i < cpus.size() && i < have; ++i) set += fmt::format("{}{}", set.empty() ? "" : ",", cpus[i]);
        if (set.empty()) set = "0";
        a.push_back("--lcores");
        a.push_back(fmt::format("(0-{})@({})", dp.workers, set));
        out.diagnostics.warning(rules::SourcePos{config.file, 0, 0},
                                fmt::format("{} workers and the control thread need {} CPUs, this process may use {}: "
                                            "they float over them (poll-mode workers share cores; fine for tests, "
                                            "not for throughput)",
                                            dp.workers, lcores, have));
        return;
    }
    a.push_back("-l");
    a.push_back(dp.workers == 0 ? "0" : fmt::format("0-{}", dp.workers));
}

}  // namespace

EalArgs eal_args_for(const ApplianceConfig& config, const EalEnvironment& env) {
    EalArgs out;
    const auto& dp = config.dataplane;
    switch (dp.hugepages) {
    case HugepageMode::off: break;
    case HugepageMode::required:
        if (!env.hugepages_available) {
            out.diagnostics.error(dp.hugepages_pos, "'hugepages: required' but no hugepages are available (no free "
                                                    "hugepages, or no writable hugetlbfs mount): reserve some with "
                                                    "scripts/setup.sh, or write 'hugepages: auto'");
            return out;
        }
        out.hugepages = true;
        break;
    case HugepageMode::automatic:
        out.hugepages = env.hugepages_available;
        if (!out.hugepages)
            out.diagnostics.warning(dp.hugepages_pos, fmt::format("hugepages not available: running with --no-huge "
                                                                  "-m {} (4 KB pages: lookups are slower)",
                                                                  env.no_huge_mb));
        break;
    }
    auto& a = out.args;
    a.push_back(env.program);
    place_lcores(config, env, out);
    a.push_back(fmt::format("--file-prefix=tagwall-{}",
                            env.file_prefix.empty() ? std::to_string(getpid()) : env.file_prefix));
    if (!out.hugepages) a.insert(a.end(), {"--no-huge", "-m", std::to_string(env.no_huge_mb)});
    const bool any_pci = std::any_of(dp.ports.begin(), dp.ports.end(),
                                     [](const PortSpec& p) { return is_pci_address(p.devargs); });
    if (!any_pci) a.push_back("--no-pci");
    for (const auto& p : dp.ports) {
        a.push_back(is_pci_address(p.devargs) ? "-a" : "--vdev");
        a.push_back(p.devargs);
    }
    a.insert(a.end(), env.extra_args.begin(), env.extra_args.end());
    return out;
}

std::vector<unsigned> allowed_cpus() {
    std::vector<unsigned> out;
    cpu_set_t set;
    CPU_ZERO(&set);
    if (sched_getaffinity(0, sizeof set, &set) == 0)
        for (unsigned cpu = 0; cpu < CPU_SETSIZE; ++cpu)
            if (CPU_ISSET(cpu, &set)) out.push_back(cpu);
    return out;
}

std::string_view to_string(PortRole r) noexcept { return r == PortRole::uplink ? "uplink" : "workload"; }
std::string_view to_string(ForwardingMode m) noexcept { return m == ForwardingMode::wire ? "wire" : "switch"; }
std::string_view to_string(HugepageMode m) noexcept {
    switch (m) {
    case HugepageMode::automatic: return "auto";
    case HugepageMode::required: return "required";
    case HugepageMode::off: return "off";
    }
    return "?";
}

}  // namespace tagwall::dataplane
