// The appliance's control thread, foreground mode: see daemon.hpp.
#include "control/daemon.hpp"

#include <signal.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>

#include <fmt/format.h>

#include "control/commands.hpp"
#include "control/event_log.hpp"
#include "control/socket_server.hpp"
#include "dataplane/appliance.hpp"
#include "dataplane/config.hpp"
#include "dataplane/eal.hpp"
#include "rules/policy_loader.hpp"
#include "rules/ruleset.hpp"

namespace tagwall::control {

namespace {

namespace dp = tagwall::dataplane;

std::atomic<int> g_stop_signal{0};
std::atomic<int> g_hup{0};

void on_stop(int sig) { g_stop_signal.store(sig); }
void on_hup(int) { g_hup.fetch_add(1); }

void print_diagnostics(const rules::Diagnostics& diag) {
    for (const auto& d : diag.sorted()) fmt::print(stderr, "{}\n", d.str());
}

// Drains every worker's ring into the log (and stdout, and the `events --follow` clients); returns how
// many events it wrote.
size_t drain(dp::Appliance& app, std::ofstream& log, bool to_stdout, const std::vector<std::string>& port_names,
             uint64_t wall_origin, SocketServer* server, EventLimiter& limiter) {
    size_t n = 0;
    dp::Event e;
    for (size_t w = 0; w < app.worker_count(); ++w) {
        while (app.events(w).pop(e)) {
            if (!limiter.admit(e, e.time_ns)) continue;
            const std::string line = format_event(e, app.ruleset(), port_names, wall_origin);
            log << line << '\n';
            if (server != nullptr) server->send_to_followers(line);
            if (to_stdout) fmt::print("event: {}\n", describe_event(e, app.ruleset(), port_names));
            ++n;
        }
    }
    // Once a second at most: what the limiter held back, one line per rule or reason.
    static uint64_t last_report = 0;
    const uint64_t now = clock_ns(CLOCK_REALTIME);
    if (limiter.suppressed_total() != 0 && now - last_report >= 1'000'000'000ull) {
        last_report = now;
        for (const auto& [key, count] : limiter.take_suppressed(app.ruleset())) {
            nlohmann::json j{{"time_ns", now}, {"suppressed", count}, {"key", key},
                             {"why", "event rate limit (100/s per rule or reason)"}};
            log << j.dump() << '\n';
            ++n;
        }
    }
    if (n != 0) {
        log.flush();
        if (to_stdout) std::fflush(stdout);
    }
    return n;
}

void print_summary(const dp::Appliance& app) {
    const auto& ports = app.ports();
    fmt::print("tagwall: stopped.  Counters since start:\n");
    fmt::print("  {:<12} {:>12} {:>12} {:>12} {:>10} {:>10}\n", "port", "rx", "tx", "dropped", "tx-full", "rejects");
    for (size_t p = 0; p < ports.size(); ++p) {
        const dp::PortTotals t = app.port_totals(p);
        fmt::print("  {:<12} {:>12} {:>12} {:>12} {:>10} {:>10}\n", ports[p].name, t.rx, t.tx, t.dropped, t.tx_full,
                   t.rejects);
    }
    uint64_t allow = 0, drop = 0, reject = 0, flows = 0, lost = 0;
    std::array<uint64_t, dp::kReasonCount> reasons{};
    for (size_t w = 0; w < app.worker_count(); ++w) {
        const auto& pipe = app.pipeline(w);
        allow += pipe.verdict_counters().allow;
        drop += pipe.verdict_counters().drop;
        reject += pipe.verdict_counters().reject;
        flows += pipe.conntrack().table().size();
        lost += app.events_lost(w);
        for (size_t r = 0; r < dp::kReasonCount; ++r) reasons[r] += pipe.reason_counters()[r];
    }
    fmt::print("  verdicts: {} allowed, {} dropped, {} rejected; {} connections in the tables; {} events lost\n",
               allow, drop, reject, flows, lost);
    const auto& policy = app.policy();
    const auto& rules = policy.rules->rules();
    fmt::print("  rule hits, policy generation {} (packets a rule decided; established packets not counted):\n",
               policy.generation);
    for (size_t r = 0; r < rules.size(); ++r) {
        uint64_t hits = 0;
        for (const auto& c : policy.counters) hits += c[r].packets;
        fmt::print("    {:<24} {:<7} {:>12}\n", rules[r].id, rules::action_name(rules[r].action), hits);
    }
    fmt::print("  by reason:\n");
    for (size_t r = 0; r < dp::kReasonCount; ++r)
        if (reasons[r] != 0)
            fmt::print("    {:<24} {:>12}  {}\n", dp::kReasons[r].counter, reasons[r], dp::kReasons[r].text);
}

}  // namespace

int run_daemon(const DaemonOptions& options) {
    const auto loaded = dp::load_config_file(options.config_path);
    print_diagnostics(loaded.diagnostics);
    if (!loaded.config) {
        fmt::print(stderr, "tagwall: {}: INVALID ({} error(s)); nothing started\n", options.config_path,
                   loaded.diagnostics.error_count());
        return 1;
    }
    const dp::ApplianceConfig& config = *loaded.config;
    const auto policy = rules::load_policy_file(config.policy);
    print_diagnostics(policy.diagnostics);
    if (!policy.policy) {
        fmt::print(stderr, "tagwall: policy {} (named at {}): INVALID ({} error(s)); nothing started\n", config.policy,
                   config.policy_pos.str(), policy.diagnostics.error_count());
        return 1;
    }
    const auto ruleset = rules::RuleSet::compile(*policy.policy);

    std::error_code ec;
    const std::filesystem::path log_path(config.log.path);
    if (log_path.has_parent_path()) std::filesystem::create_directories(log_path.parent_path(), ec);
    std::ofstream log(config.log.path, std::ios::app);
    if (!log) {
        fmt::print(stderr, "tagwall: cannot open the event log {} (log.path): {}; nothing started\n", config.log.path,
                   std::strerror(errno));
        return 1;
    }

    const auto eal = dp::eal_args_for(config, {.hugepages_available = dp::hugepages_available(),
                                               .cpus = static_cast<unsigned>(dp::allowed_cpus().size()),
                                               .cpu_ids = dp::allowed_cpus(),
                                               .extra_args = options.eal_extra});
    print_diagnostics(eal.diagnostics);
    if (!eal.ok()) return 1;
    std::string joined;
    for (const auto& a : eal.args) joined += (joined.empty() ? "" : " ") + a;
    fmt::print("tagwall: EAL {}\n", joined);
    std::fflush(stdout);
    dp::init_eal_with_args(eal.args, eal.hugepages);

    struct sigaction stop_action{};
    stop_action.sa_handler = on_stop;
    sigemptyset(&stop_action.sa_mask);
    sigaction(SIGINT, &stop_action, nullptr);
    sigaction(SIGTERM, &stop_action, nullptr);
    struct sigaction hup_action{};
    hup_action.sa_handler = on_hup;
    sigemptyset(&hup_action.sa_mask);
    sigaction(SIGHUP, &hup_action, nullptr);

    int status = 0;
    {
        std::unique_ptr<dp::Appliance> app;
        try {
            app = std::make_unique<dp::Appliance>(
                config, ruleset, dp::ApplianceOptions{.engine = options.engine, .policy_file = config.policy});
            for (const auto& line : app->describe()) fmt::print("tagwall: {}\n", line);
            for (const auto& w : app->warnings()) fmt::print(stderr, "tagwall: warning: {}\n", w);
            app->start();
        } catch (const std::exception& e) {
            fmt::print(stderr, "tagwall: {}; nothing started\n", e.what());
            app.reset();
            dp::cleanup_eal();
            return 1;
        }
        std::vector<std::string> port_names;
        for (const auto& p : app->ports()) port_names.push_back(p.name);
        const uint64_t wall_origin = clock_ns(CLOCK_REALTIME) - (clock_ns(CLOCK_MONOTONIC) - app->clock_origin_ns());
        fmt::print("tagwall: ready: {} port{}, {} worker{}, {} forwarding, policy {} ({} rules, generation 1), "
                   "events to {}\n",
                   port_names.size(), port_names.size() == 1 ? "" : "s", app->worker_count(),
                   app->worker_count() == 1 ? "" : "s", dp::to_string(config.dataplane.forwarding), config.policy,
                   ruleset->rules().size(), config.log.path);
        std::fflush(stdout);

        std::unique_ptr<SocketServer> server;
        try {
            server = std::make_unique<SocketServer>(SocketOptions{.path = config.control.socket,
                                                                  .mode = config.control.socket_mode,
                                                                  .allowed_gids = config.control.allowed_gids,
                                                                  .allowed_uids = config.control.allowed_uids});
            fmt::print("tagwall: control socket {} (mode {:04o})\n", config.control.socket, config.control.socket_mode);
        } catch (const std::exception& e) {
            fmt::print(stderr, "tagwall: warning: no control socket: {} (tagwallctl will not reach this appliance)\n",
                       e.what());
        }
        std::fflush(stdout);
        CommandContext ctx{.appliance = *app,
                           .started_wall_ns = clock_ns(CLOCK_REALTIME),
                           .wall_origin_ns = wall_origin,
                           .hugepages = eal.hugepages,
                           .forwarding = std::string(dp::to_string(config.dataplane.forwarding)),
                           .socket = server.get()};

        EventLimiter limiter;
        int hups_seen = 0;
        while (g_stop_signal.load() == 0) {
            const size_t drained = drain(*app, log, options.events_to_stdout, port_names, wall_origin, server.get(), limiter);
            if (server) {
                server->poll(drained != 0 ? 0 : 20, [&](const Request& r) -> nlohmann::json {
                    nlohmann::json response = handle_command(r.body, ctx);
                    const auto cmd = r.body.find("cmd");
                    if (cmd != r.body.end() && *cmd == "events" && response.value("ok", false)) server->follow(r.client);
                    return response;
                });
            } else if (drained == 0) {
                const timespec pause{0, 20'000'000};
                nanosleep(&pause, nullptr);
            }
            if (const int h = g_hup.load(); h != hups_seen) {
                hups_seen = h;
                const nlohmann::json r = load_policy(ctx, config.policy, false);
                if (r.value("ok", false)) {
                    fmt::print("tagwall: SIGHUP: {} loaded as generation {}\n", config.policy,
                               r["result"].value("generation", 0u));
                } else {
                    fmt::print(stderr, "tagwall: SIGHUP: {}\n", r.value("error", std::string("reload failed")));
                    if (r.contains("errors"))
                        for (const auto& line : r["errors"]) fmt::print(stderr, "{}\n", line.get<std::string>());
                }
                std::fflush(stdout);
            }
        }
        fmt::print("tagwall: {} received, stopping\n", g_stop_signal.load() == SIGINT ? "SIGINT" : "SIGTERM");
        app->stop();
        drain(*app, log, options.events_to_stdout, port_names, wall_origin, server.get(), limiter);
        server.reset();  // the socket file goes with it
        print_summary(*app);
        std::fflush(stdout);
    }
    dp::cleanup_eal();
    return status;
}

}  // namespace tagwall::control
