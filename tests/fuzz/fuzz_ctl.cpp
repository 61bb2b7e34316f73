// fuzz-ctl: bytes a client sends on the control socket, through the daemon's real socket server
// (control/socket_server.hpp: line framing, size limit, JSON parsing, replies) into the real command
// dispatcher (control/commands.hpp handle_command) of a small live appliance.
//
// The appliance (built once, at start-up): the DPDK EAL without hugepages (--no-huge, --no-shconf, its
// own file prefix, no PCI), two net_pcap ports in a wire pair, one worker, under pcaps/policy.yaml.  The
// worker is started once so that pcaps/001-tcp-allowed.pcap (on the workload port) and pcaps/005-icmp.pcap
// (on the uplink) pass through the real worker loop: the appliance then holds connections, counters,
// rule hits and a published policy, as a running daemon does.  It is then stopped (ports stopped, worker
// joined) so that every input meets the same state and runs on one thread: the commands run against the
// stopped appliance exactly as in the daemon, except that publishing needs no worker acknowledgement.
// After an input that changed the state it is put back: a new policy generation is replaced by the
// original one (published again as generation 1), flushed connections are replayed (start, the pcaps
// again, stop).
//
// The input is what one client writes before it half-closes its end (several lines, any bytes).  The
// server's request limit is set to 1024 bytes here (64 KiB in the daemon) so that the fuzzer reaches it.
// A `policy load` of a relative file is resolved against the repository root, as if the daemon ran
// there (conf/demo/policy.yaml, conf/demo/policy-broken.yaml, pcaps/policy.yaml, ...).
//
// FUZZ_CTL_VERBOSE=1 prints every reply line on stderr (to see what an input did).
//
// Invariants:
//   - the server answers every non-blank line with exactly one reply line, in order, and closes the
//     connection after the replies (after an oversized line: with that error, and nothing after it);
//     it never stalls (a bounded number of poll rounds) and keeps no client after the input;
//   - every reply is a JSON object with a boolean "ok"; a refusal has a non-empty "error" string; a
//     success has a "result";
//   - the appliance is left consistent: every worker's pipeline runs the published generation.
#include <fcntl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "control/commands.hpp"
#include "control/event_log.hpp"
#include "control/socket_server.hpp"
#include "dataplane/appliance.hpp"
#include "dataplane/config.hpp"
#include "dataplane/eal.hpp"
#include "fuzz_support.hpp"
#include "rules/classifier_policy.hpp"

#ifndef TAGWALL_SOURCE_ROOT
#error "TAGWALL_SOURCE_ROOT must name the repository root"
#endif

namespace {

using namespace tagwall;
namespace dp = tagwall::dataplane;

constexpr size_t kMaxRequest = 1024;
constexpr int kMaxRounds = 400;

std::string source_root() {
    const char* env = std::getenv("TAGWALL_ROOT");
    return env != nullptr && *env != '\0' ? env : TAGWALL_SOURCE_ROOT;
}

size_t pcap_packets(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    const std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    return fuzz::read_capture(bytes, SIZE_MAX).packets.size();
}

struct World {
    std::string root = source_root();
    std::filesystem::path dir;
    std::shared_ptr<const rules::PolicyClassifier> original;
    std::unique_ptr<dp::Appliance> app;
    std::unique_ptr<control::SocketServer> server;
    std::unique_ptr<control::CommandContext> ctx;
    std::string policy_file;
    size_t expected_rx = 0;   // frames the pcaps deliver per start
    size_t flows = 0;         // connections the appliance holds after them

    World() {
        char tmpl[] = "/tmp/tagwall-fuzz-ctl-XXXXXX";
        FUZZ_CHECK(mkdtemp(tmpl) != nullptr, "mkdtemp: {}", std::strerror(errno));
        dir = tmpl;
        const std::string inside = root + "/pcaps/001-tcp-allowed.pcap", outside = root + "/pcaps/005-icmp.pcap";
        expected_rx = pcap_packets(inside) + pcap_packets(outside);
        policy_file = root + "/pcaps/policy.yaml";
        const std::string text = fmt::format(R"(dataplane:
  workers: 1
  hugepages: off
  ports:
    - {{name: inside, role: workload, devargs: "net_pcap0,rx_pcap={},tx_pcap=/dev/null"}}
    - {{name: outside, role: uplink, devargs: "net_pcap1,rx_pcap={},tx_pcap=/dev/null"}}
  forwarding: wire
  pairs: [[inside, outside]]
  flows: {{capacity: 4096}}
control: {{socket: {}/ctl.sock}}
log: {{path: {}/events.jsonl}}
policy: {}
)", inside, outside, dir.string(), dir.string(), policy_file);
        const auto loaded = dp::load_config_text(text, (dir / "tagwall.yaml").string());
        FUZZ_CHECK(loaded.config.has_value(), "the harness's appliance config does not load");
        const dp::ApplianceConfig& config = *loaded.config;
        const auto eal = dp::eal_args_for(config, {.hugepages_available = false,
                                                   .program = "fuzz-ctl",
                                                   .file_prefix = fmt::format("tagwall-fuzz-ctl-{}", getpid()),
                                                   .no_huge_mb = 256,
                                                   .cpus = static_cast<unsigned>(dp::allowed_cpus().size()),
                                                   .extra_args = {"--no-shconf", "--log-level=lib.*:error"}});
        FUZZ_CHECK(eal.ok(), "no EAL arguments for the harness's config");
        dp::init_eal_with_args(eal.args, false);

        const auto rs = rules::RuleSet::compile(rules::load_policy_or_throw(policy_file));
        app = std::make_unique<dp::Appliance>(config, rs, dp::ApplianceOptions{.policy_file = policy_file});
        original = app->policy().classifier;
        replay_traffic();
        flows = flow_count();
        FUZZ_CHECK(flows > 0, "the pcaps left no connection in the appliance");

        server = std::make_unique<control::SocketServer>(control::SocketOptions{
            .path = config.control.socket, .mode = 0600, .allowed_gids = {0}, .max_request = kMaxRequest});
        ctx = std::make_unique<control::CommandContext>(control::CommandContext{
            .appliance = *app,
            .started_wall_ns = control::clock_ns(CLOCK_REALTIME),
            .wall_origin_ns = control::clock_ns(CLOCK_REALTIME),
            .hugepages = false,
            .forwarding = "wire"});
    }

    ~World() {
        server.reset();
        app.reset();
        dp::cleanup_eal();
        std::error_code ec;
        std::filesystem::remove_all(dir, ec);
    }

    size_t flow_count() const {
        size_t n = 0;
        for (size_t w = 0; w < app->worker_count(); ++w) n += app->pipeline(w).conntrack().table().size();
        return n;
    }

    uint64_t rx_total() const {
        uint64_t rx = 0;
        for (size_t p = 0; p < app->ports().size(); ++p) rx += app->port_totals(p).rx;
        return rx;
    }

    // Starts the worker until the pcaps have been delivered again, then stops it.
    void replay_traffic() {
        const uint64_t want = rx_total() + expected_rx;
        app->start();
        const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
        while (rx_total() < want && std::chrono::steady_clock::now() < deadline)
            std::this_thread::sleep_for(std::chrono::milliseconds(1));
        app->stop();
        FUZZ_CHECK(rx_total() >= want, "the worker received {} of {} frames", rx_total(), want);
    }

    // Back to the state every input starts from.
    void restore() {
        if (app->policy().generation != 1 || app->policy().classifier != original)
            app->publish(dp::PolicyBundle::make(original, 1, app->worker_count(), policy_file));
        if (flow_count() != flows) {
            const size_t left = app->flush_flows();
            (void)left;
            replay_traffic();
            FUZZ_CHECK(flow_count() == flows, "{} connections after the replay, {} at the start", flow_count(), flows);
        }
    }
};

World& world() {
    static World w;
    return w;
}

// The requests a conforming server must answer: the non-blank lines, up to and including the first one
// over the limit (answered with an error, after which the connection is closed).
struct Expected {
    size_t replies = 0;
    bool too_large = false;
};

Expected expected_replies(std::string_view in) {
    Expected e;
    while (!in.empty()) {
        const size_t nl = in.find('\n');
        std::string_view line = in.substr(0, nl);
        in = nl == std::string_view::npos ? std::string_view() : in.substr(nl + 1);
        if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
        if (line.size() > kMaxRequest) {
            ++e.replies;
            e.too_large = true;
            return e;
        }
        if (line.find_first_not_of(" \t") != std::string_view::npos) ++e.replies;
    }
    return e;
}

void check_reply(const std::string& line, bool last_is_too_large) {
    const auto j = nlohmann::json::parse(line, nullptr, false);
    FUZZ_CHECK(j.is_object(), "a reply that is not a JSON object: {}", line);
    FUZZ_CHECK(j.contains("ok") && j["ok"].is_boolean(), "a reply without a boolean ok: {}", line);
    if (!j["ok"].get<bool>()) {
        FUZZ_CHECK(j.contains("error") && j["error"].is_string() && !j["error"].get<std::string>().empty(),
                   "a refusal without an error message: {}", line);
    } else {
        FUZZ_CHECK(j.contains("result"), "a success without a result: {}", line);
        FUZZ_CHECK(!last_is_too_large, "an oversized request was answered ok: {}", line);
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    World& w = world();
    const std::string_view input(reinterpret_cast<const char*>(data), size);
    bool following = false;
    const control::SocketServer::Handler handler = [&](const control::Request& r) -> nlohmann::json {
        nlohmann::json body = r.body;
        // The daemon's working directory, for the files a request names: the repository root.
        if (auto f = body.find("file"); f != body.end() && f->is_string() && !f->get<std::string>().empty() &&
                                        f->get<std::string>()[0] != '/')
            *f = w.root + "/" + f->get<std::string>();
        nlohmann::json response = control::handle_command(body, *w.ctx);
        const auto cmd = body.find("cmd");
        if (cmd != body.end() && *cmd == "events" && response.value("ok", false)) {
            w.server->follow(r.client);
            following = true;
        }
        return response;
    };

    const int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    FUZZ_CHECK(fd >= 0, "socket: {}", std::strerror(errno));
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strncpy(addr.sun_path, w.server->path().c_str(), sizeof addr.sun_path - 1);
    FUZZ_CHECK(connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) == 0, "connect: {}",
               std::strerror(errno));
    size_t sent = 0;
    std::string got;
    bool eof = false;
    int rounds = 0, quiet = 0;
    auto pump = [&] {
        w.server->poll(0, handler);
        char buf[65536];
        bool any = false;
        for (;;) {
            const ssize_t n = recv(fd, buf, sizeof buf, 0);
            if (n > 0) {
                got.append(buf, static_cast<size_t>(n));
                any = true;
                continue;
            }
            if (n == 0) eof = true;
            break;
        }
        quiet = any ? 0 : quiet + 1;
    };
    while (sent < size && rounds++ < kMaxRounds) {
        const ssize_t n = send(fd, data + sent, size - sent, MSG_NOSIGNAL);
        if (n > 0) sent += static_cast<size_t>(n);
        else if (errno != EAGAIN && errno != EWOULDBLOCK) break;  // the server closed on us (oversized line)
        pump();
    }
    shutdown(fd, SHUT_WR);
    // Until the server closes (a follower is never closed by the server: stop once it has gone quiet).
    while (!eof && rounds++ < kMaxRounds && !(following && quiet > 20)) pump();
    FUZZ_CHECK(eof || following, "the server did not answer and close within {} poll rounds ({} bytes back)",
               kMaxRounds, got.size());
    close(fd);
    if (following) w.server->send_to_followers("{}");  // finds the closed follower
    for (int i = 0; i < 50 && w.server->clients() != 0; ++i) w.server->poll(0, handler);
    FUZZ_CHECK(w.server->clients() == 0, "{} clients left after the input", w.server->clients());

    const Expected want = expected_replies(input.substr(0, sent));
    std::vector<std::string> lines;
    for (size_t start = 0; start < got.size();) {
        const size_t nl = got.find('\n', start);
        FUZZ_CHECK(nl != std::string::npos, "a reply line without its newline");
        lines.push_back(got.substr(start, nl - start));
        start = nl + 1;
    }
    FUZZ_CHECK(lines.size() == want.replies || (sent < size && lines.size() <= want.replies),
               "{} replies to {} requests", lines.size(), want.replies);
    static const bool verbose = std::getenv("FUZZ_CTL_VERBOSE") != nullptr;  // print the replies (debugging)
    for (size_t i = 0; i < lines.size(); ++i) {
        if (verbose) std::fprintf(stderr, "reply: %s\n", lines[i].c_str());
        check_reply(lines[i], want.too_large && i + 1 == want.replies);
    }
    if (want.too_large && lines.size() == want.replies)
        FUZZ_CHECK(lines.back().find("request too large") != std::string::npos, "the oversized line got {}",
                   lines.back());

    for (size_t k = 0; k < w.app->worker_count(); ++k)
        FUZZ_CHECK(w.app->pipeline(k).generation() == w.app->policy().generation,
                   "worker {} runs generation {}, {} is published", k, w.app->pipeline(k).generation(),
                   w.app->policy().generation);
    w.restore();
    return 0;
}
