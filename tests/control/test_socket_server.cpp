// The control socket (control/socket_server.hpp): a real unix socket in a temporary directory, its clients
// in this same process (plain connect(2) to the path).  The server never blocks, so each test drives it
// by calling poll() between the client's steps; no sleeps, only bounded poll rounds.
#include <catch2/catch.hpp>

#include <fcntl.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <grp.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "control/socket_server.hpp"

using nlohmann::json;
using tagwall::control::peer_allowed;
using tagwall::control::Request;
using tagwall::control::SocketOptions;
using tagwall::control::SocketServer;

namespace {

struct TempDir {
    std::string path;
    TempDir() {
        std::string tmpl = (std::filesystem::temp_directory_path() / "tagwall-sock.XXXXXX").string();
        REQUIRE(::mkdtemp(tmpl.data()) != nullptr);
        path = tmpl;
    }
    ~TempDir() {
        std::error_code ec;
        std::filesystem::remove_all(path, ec);
    }
};

SocketOptions options_in(const TempDir& dir) {
    SocketOptions o;
    o.path = dir.path + "/tagwall.sock";
    return o;
}

// A client end: blocking connect, non-blocking reads.
struct Client {
    int fd = -1;
    std::string pending;  // received, not yet returned as a line

    explicit Client(const std::string& path) {
        fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        REQUIRE(fd >= 0);
        sockaddr_un addr{};
        addr.sun_family = AF_UNIX;
        std::strncpy(addr.sun_path, path.c_str(), sizeof addr.sun_path - 1);
        REQUIRE(::connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) == 0);
    }
    ~Client() { close(); }
    Client(const Client&) = delete;
    Client& operator=(const Client&) = delete;

    void close() {
        if (fd >= 0) ::close(fd);
        fd = -1;
    }
    void send(const std::string& bytes) const {
        REQUIRE(::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(bytes.size()));
    }
    // Reads what is there without waiting.  Returns false at EOF or on an error (ECONNRESET).
    bool receive() {
        char buf[65536];
        for (;;) {
            const ssize_t got = ::recv(fd, buf, sizeof buf, MSG_DONTWAIT);
            if (got > 0) {
                pending.append(buf, static_cast<size_t>(got));
                continue;
            }
            if (got < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return true;
            return false;
        }
    }
    std::optional<std::string> take_line() {
        const auto nl = pending.find('\n');
        if (nl == std::string::npos) return std::nullopt;
        std::string line = pending.substr(0, nl);
        pending.erase(0, nl + 1);
        return line;
    }
};

// The test handler: echoes the request; {"cmd":"follow"} makes the client a follower; {"cmd":"boom"} throws;
// {"cmd":"big"} answers with `size` bytes of padding; {"cmd":"quiet"} answers nothing.
struct EchoHandler {
    SocketServer& server;
    std::vector<Request> seen;

    json operator()(const Request& r) {
        seen.push_back(r);
        const std::string cmd = r.body.value("cmd", "");
        if (cmd == "follow") {
            server.follow(r.client);
            return {{"ok", true}, {"result", {{"following", true}}}};
        }
        if (cmd == "boom") throw std::runtime_error("kaboom");
        if (cmd == "quiet") return nullptr;
        if (cmd == "big") return {{"ok", true}, {"result", std::string(r.body.value("size", 1000u), 'x')}};
        return {{"ok", true}, {"result", {{"echo", r.body}}}};
    }
};

// Polls the server until `client` has a complete line (or a bounded number of rounds pass).
std::optional<std::string> read_line(SocketServer& server, EchoHandler& handler, Client& client, int rounds = 200) {
    auto h = [&](const Request& r) { return handler(r); };
    for (int i = 0; i < rounds; ++i) {
        if (auto line = client.take_line()) return line;
        server.poll(5, h);
        client.receive();
    }
    return client.take_line();
}

json read_json(SocketServer& server, EchoHandler& handler, Client& client) {
    const auto line = read_line(server, handler, client);
    REQUIRE(line.has_value());
    return json::parse(*line);
}

// Polls until the server has closed `client` (EOF or reset on the client's side).
bool closed_by_server(SocketServer& server, EchoHandler& handler, Client& client, int rounds = 200) {
    auto h = [&](const Request& r) { return handler(r); };
    for (int i = 0; i < rounds; ++i) {
        server.poll(5, h);
        if (!client.receive()) return true;
    }
    return false;
}

void pump(SocketServer& server, EchoHandler& handler, int rounds = 5) {
    auto h = [&](const Request& r) { return handler(r); };
    for (int i = 0; i < rounds; ++i) server.poll(1, h);
}

}  // namespace

TEST_CASE("socket: a request gets its response, with the peer's credentials", "[socket]") {
    TempDir dir;
    SocketServer server(options_in(dir));
    EchoHandler handler{server, {}};
    Client c(server.path());
    c.send(R"({"cmd":"status"})" "\n");
    const json reply = read_json(server, handler, c);
    CHECK(reply["ok"] == true);
    CHECK(reply["result"]["echo"]["cmd"] == "status");
    REQUIRE(handler.seen.size() == 1);
    CHECK(handler.seen[0].uid == ::geteuid());
    CHECK(handler.seen[0].gid == ::getegid());
    CHECK(server.clients() == 1);

    SECTION("a second request on the same connection") {
        c.send(R"({"cmd":"stats"})" "\n");
        CHECK(read_json(server, handler, c)["result"]["echo"]["cmd"] == "stats");
    }
    SECTION("blank lines and CRLF are tolerated") {
        c.send("\n  \n{\"cmd\":\"ports\"}\r\n");
        CHECK(read_json(server, handler, c)["result"]["echo"]["cmd"] == "ports");
        CHECK(server.malformed() == 0);
    }
    SECTION("a handler that answers null sends nothing") {
        c.send(R"({"cmd":"quiet"})" "\n" R"({"cmd":"after"})" "\n");
        CHECK(read_json(server, handler, c)["result"]["echo"]["cmd"] == "after");
    }
    SECTION("a handler that throws answers an internal error, and the server goes on") {
        c.send(R"({"cmd":"boom"})" "\n");
        const json err = read_json(server, handler, c);
        CHECK(err["ok"] == false);
        CHECK(err["error"] == "internal error: kaboom");
        c.send(R"({"cmd":"status"})" "\n");
        CHECK(read_json(server, handler, c)["ok"] == true);
    }
}

TEST_CASE("socket: two requests in one write are answered in order", "[socket]") {
    TempDir dir;
    SocketServer server(options_in(dir));
    EchoHandler handler{server, {}};
    Client c(server.path());
    c.send(R"({"cmd":"one"})" "\n" R"({"cmd":"two"})" "\n");
    CHECK(read_json(server, handler, c)["result"]["echo"]["cmd"] == "one");
    CHECK(read_json(server, handler, c)["result"]["echo"]["cmd"] == "two");
    CHECK(handler.seen.size() == 2);
}

TEST_CASE("socket: a request split across writes is answered once complete", "[socket]") {
    TempDir dir;
    SocketServer server(options_in(dir));
    EchoHandler handler{server, {}};
    Client c(server.path());
    c.send(R"({"cmd":)");
    pump(server, handler);
    c.send(R"("sta)");
    pump(server, handler);
    c.receive();
    CHECK(c.pending.empty());
    CHECK(handler.seen.empty());
    c.send("tus\"}\n");
    CHECK(read_json(server, handler, c)["result"]["echo"]["cmd"] == "status");
}

TEST_CASE("socket: a last request without a newline counts when the client half-closes", "[socket]") {
    TempDir dir;
    SocketServer server(options_in(dir));
    EchoHandler handler{server, {}};
    Client c(server.path());
    c.send(R"({"cmd":"status"})");
    REQUIRE(::shutdown(c.fd, SHUT_WR) == 0);
    CHECK(read_json(server, handler, c)["result"]["echo"]["cmd"] == "status");
    CHECK(closed_by_server(server, handler, c));
    CHECK(server.clients() == 0);
}

TEST_CASE("socket: malformed requests get an error and keep the connection", "[socket]") {
    TempDir dir;
    SocketServer server(options_in(dir));
    EchoHandler handler{server, {}};
    Client c(server.path());

    c.send("this is not json\n");
    json err = read_json(server, handler, c);
    CHECK(err["ok"] == false);
    CHECK_THAT(err["error"].get<std::string>(), Catch::StartsWith("malformed request: "));
    CHECK_THAT(err["error"].get<std::string>(), !Catch::Contains("[json.exception"));

    c.send("[1, 2, 3]\n");
    err = read_json(server, handler, c);
    CHECK_THAT(err["error"].get<std::string>(), Catch::StartsWith("malformed request: expected a JSON object"));

    c.send("{\"cmd\": \"status\"\n");  // an unterminated object
    CHECK_THAT(read_json(server, handler, c)["error"].get<std::string>(), Catch::StartsWith("malformed request: "));

    c.send("\xff\xfe\n");  // not UTF-8: the error text itself must still be valid JSON
    CHECK(read_json(server, handler, c)["ok"] == false);

    // A number too large for a double is not a parse_error but an out_of_range: it once escaped poll()
    // and ended the daemon (found by tests/fuzz/fuzz_ctl.cpp).
    c.send("1e999\n");
    CHECK_THAT(read_json(server, handler, c)["error"].get<std::string>(), Catch::Contains("number overflow"));
    c.send(R"({"cmd": "status", "n": -1e999})" "\n");
    CHECK_THAT(read_json(server, handler, c)["error"].get<std::string>(), Catch::StartsWith("malformed request: "));

    CHECK(server.malformed() == 6);
    CHECK(handler.seen.empty());
    c.send(R"({"cmd":"status"})" "\n");
    CHECK(read_json(server, handler, c)["ok"] == true);
}

TEST_CASE("socket: an oversized request gets an error and the connection is closed", "[socket]") {
    TempDir dir;
    auto opts = options_in(dir);
    opts.max_request = 1024;
    SocketServer server(opts);
    EchoHandler handler{server, {}};

    SECTION("no newline within the limit") {
        Client c(server.path());
        c.send(std::string(4000, 'x'));
        const json err = read_json(server, handler, c);
        CHECK(err["ok"] == false);
        CHECK(err["error"] == "request too large (limit 1024 bytes)");
        CHECK(closed_by_server(server, handler, c));
    }
    SECTION("a complete line longer than the limit") {
        Client c(server.path());
        c.send(R"({"cmd":"status","pad":")" + std::string(2000, 'y') + "\"}\n");
        CHECK(read_json(server, handler, c)["error"] == "request too large (limit 1024 bytes)");
        CHECK(closed_by_server(server, handler, c));
    }
    CHECK(handler.seen.empty());
    CHECK(server.clients() == 0);
    Client other(server.path());  // the server is unharmed
    other.send(R"({"cmd":"status"})" "\n");
    CHECK(read_json(server, handler, other)["ok"] == true);
}

TEST_CASE("socket: many clients are served; one beyond max_clients is turned away", "[socket]") {
    TempDir dir;
    auto opts = options_in(dir);
    opts.max_clients = 40;
    SocketServer server(opts);
    EchoHandler handler{server, {}};
    std::vector<std::unique_ptr<Client>> clients;
    for (int i = 0; i < 40; ++i) clients.push_back(std::make_unique<Client>(server.path()));
    pump(server, handler);
    CHECK(server.clients() == 40);
    for (size_t i = 0; i < clients.size(); ++i) clients[i]->send(json{{"cmd", "n"}, {"i", i}}.dump() + "\n");
    for (size_t i = 0; i < clients.size(); ++i)
        CHECK(read_json(server, handler, *clients[i])["result"]["echo"]["i"] == i);

    Client extra(server.path());
    const json err = read_json(server, handler, extra);
    CHECK(err["ok"] == false);
    CHECK_THAT(err["error"].get<std::string>(), Catch::StartsWith("too many clients (limit 40)"));
    CHECK(closed_by_server(server, handler, extra));
    CHECK(server.refused() == 1);
    CHECK(server.counters().refused_full == 1);
    CHECK(server.counters().refused_peers == 0);
    CHECK(server.clients() == 40);

    clients.pop_back();  // one leaves: room for a newcomer
    pump(server, handler);
    CHECK(server.clients() == 39);
    Client newcomer(server.path());
    newcomer.send(R"({"cmd":"status"})" "\n");
    CHECK(read_json(server, handler, newcomer)["ok"] == true);
}

TEST_CASE("socket: a client that goes away before its reply does not hurt the server", "[socket]") {
    TempDir dir;
    SocketServer server(options_in(dir));
    EchoHandler handler{server, {}};
    {
        Client c(server.path());
        c.send(R"({"cmd":"big","size":200000})" "\n");
    }  // closed before reading: the server's send hits EPIPE, never SIGPIPE
    pump(server, handler, 20);
    CHECK(server.clients() == 0);
    Client c(server.path());
    c.send(R"({"cmd":"status"})" "\n");
    CHECK(read_json(server, handler, c)["ok"] == true);
}

TEST_CASE("socket: followers receive every line sent to followers", "[socket]") {
    TempDir dir;
    SocketServer server(options_in(dir));
    EchoHandler handler{server, {}};
    Client follower(server.path());
    Client bystander(server.path());
    follower.send(R"({"cmd":"follow"})" "\n");
    CHECK(read_json(server, handler, follower)["result"]["following"] == true);
    CHECK(server.followers() == 1);

    server.send_to_followers(R"({"verdict":"drop","n":1})");
    server.send_to_followers("{\"verdict\":\"allow\",\"n\":2}\n");
    CHECK(read_json(server, handler, follower)["n"] == 1);
    CHECK(read_json(server, handler, follower)["n"] == 2);
    pump(server, handler);
    bystander.receive();
    CHECK(bystander.pending.empty());

    SECTION("a follower that half-closes keeps its stream") {
        REQUIRE(::shutdown(follower.fd, SHUT_WR) == 0);
        pump(server, handler);
        server.send_to_followers(R"({"n":3})");
        CHECK(read_json(server, handler, follower)["n"] == 3);
        CHECK(server.followers() == 1);
    }
    follower.close();
    pump(server, handler);
    CHECK(server.followers() == 0);
    server.send_to_followers("{}");  // nobody left: nothing happens
    CHECK(server.dropped_slow() == 0);
}

TEST_CASE("socket: a follower that does not read is dropped, never waited for", "[socket]") {
    TempDir dir;
    auto opts = options_in(dir);
    opts.max_output = 64 * 1024;
    SocketServer server(opts);
    EchoHandler handler{server, {}};
    Client slow(server.path());
    Client fast(server.path());
    slow.send(R"({"cmd":"follow"})" "\n");
    fast.send(R"({"cmd":"follow"})" "\n");
    CHECK(read_json(server, handler, slow)["ok"] == true);
    CHECK(read_json(server, handler, fast)["ok"] == true);

    const std::string line = json{{"pad", std::string(1000, 'e')}}.dump();
    size_t fast_lines = 0;
    int sent = 0;
    for (; sent < 20000 && server.dropped_slow() == 0; ++sent) {
        server.send_to_followers(line);
        fast.receive();  // the fast one keeps up
        while (fast.take_line()) ++fast_lines;
    }
    CHECK(server.dropped_slow() == 1);
    CHECK(sent < 20000);
    CHECK(server.followers() == 1);
    CHECK(closed_by_server(server, handler, slow));

    server.send_to_followers(R"({"last":true})");
    json last;
    while (auto l = read_line(server, handler, fast)) {
        ++fast_lines;
        last = json::parse(*l);
        if (last.contains("last")) break;
    }
    CHECK(last["last"] == true);
    CHECK(fast_lines == static_cast<size_t>(sent) + 1);
}

TEST_CASE("socket: a client that never reads its replies is dropped at max_output", "[socket]") {
    TempDir dir;
    auto opts = options_in(dir);
    opts.max_output = 64 * 1024;
    SocketServer server(opts);
    EchoHandler handler{server, {}};
    Client greedy(server.path());
    const std::string req = R"({"cmd":"big","size":8000})" "\n";
    for (int i = 0; i < 400 && server.dropped_slow() == 0; ++i) {
        if (::send(greedy.fd, req.data(), req.size(), MSG_NOSIGNAL | MSG_DONTWAIT) < 0) break;
        pump(server, handler, 1);
    }
    CHECK(server.dropped_slow() == 1);
    CHECK(server.clients() == 0);
}

TEST_CASE("socket: the socket file has the configured mode and is removed at the end", "[socket]") {
    TempDir dir;
    auto opts = options_in(dir);
    opts.path = dir.path + "/run/tagwall/ctl.sock";  // the parent directories are created
    const unsigned mode = GENERATE(0660u, 0600u, 0666u);
    opts.mode = mode;
    {
        SocketServer server(opts);
        struct stat st{};
        REQUIRE(::stat(opts.path.c_str(), &st) == 0);
        CHECK(S_ISSOCK(st.st_mode));
        CHECK((st.st_mode & 07777) == mode);
    }
    CHECK_FALSE(std::filesystem::exists(opts.path));
}

TEST_CASE("socket: a stale socket file is replaced; other files and live sockets are refused", "[socket]") {
    TempDir dir;
    const auto opts = options_in(dir);

    SECTION("stale socket left by a dead daemon") {
        const int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
        sockaddr_un addr{};
        addr.sun_family = AF_UNIX;
        std::strncpy(addr.sun_path, opts.path.c_str(), sizeof addr.sun_path - 1);
        REQUIRE(::bind(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) == 0);
        ::close(fd);
        REQUIRE(std::filesystem::is_socket(opts.path));
        SocketServer server(opts);
        EchoHandler handler{server, {}};
        Client c(server.path());
        c.send(R"({"cmd":"status"})" "\n");
        CHECK(read_json(server, handler, c)["ok"] == true);
    }
    SECTION("a regular file is not replaced") {
        std::ofstream(opts.path) << "precious\n";
        CHECK_THROWS_WITH(SocketServer(opts), Catch::Contains(opts.path) && Catch::Contains("not a socket"));
        CHECK(std::filesystem::is_regular_file(opts.path));
    }
    SECTION("a socket with a live listener is not taken over") {
        SocketServer first(opts);
        CHECK_THROWS_WITH(SocketServer(opts), Catch::Contains("another process is listening"));
        EchoHandler handler{first, {}};
        Client c(first.path());  // the first server still works
        c.send(R"({"cmd":"status"})" "\n");
        CHECK(read_json(first, handler, c)["ok"] == true);
    }
    SECTION("a path too long for sun_path") {
        auto bad = opts;
        bad.path = dir.path + "/" + std::string(200, 's');
        CHECK_THROWS_WITH(SocketServer(bad), Catch::Contains("path too long"));
    }
}

TEST_CASE("socket: peer_allowed decides by uid, gid and supplementary groups", "[socket]") {
    struct Row {
        const char* why;
        uint32_t uid, gid;
        std::vector<gid_t> groups;
        std::vector<uint32_t> allowed_gids;
        std::optional<std::vector<uint32_t>> allowed_uids;
        bool allowed;
    };
    const std::vector<Row> rows = {
        {"root always", 0, 0, {}, {}, std::nullopt, true},
        {"root even with nothing allowed", 0, 1234, {}, {}, std::vector<uint32_t>{}, true},
        {"default: only gid 0", 1000, 1000, {1000}, {0}, std::nullopt, false},
        {"primary gid 0 (not root)", 1000, 0, {}, {0}, std::nullopt, true},
        {"primary gid allowed", 1000, 1500, {1500}, {1500}, std::nullopt, true},
        {"supplementary group allowed", 1000, 1000, {1000, 27, 1500}, {1500}, std::nullopt, true},
        {"no group matches", 1000, 1000, {1000, 27}, {0, 1500}, std::nullopt, false},
        {"uid listed", 1001, 1001, {}, {0}, std::vector<uint32_t>{1001, 1002}, true},
        {"uid not listed, no group", 1003, 1003, {1003}, {0}, std::vector<uint32_t>{1001}, false},
        {"uid not listed but group allowed", 1003, 1003, {1003, 1500}, {1500}, std::vector<uint32_t>{1001}, true},
        {"empty allow lists", 1000, 1000, {1000}, {}, std::vector<uint32_t>{}, false},
        {"nobody", 65534, 65534, {65534}, {0}, std::nullopt, false},
    };
    for (const auto& r : rows) {
        SocketOptions o;
        o.allowed_gids = r.allowed_gids;
        o.allowed_uids = r.allowed_uids;
        INFO(r.why);
        CHECK(peer_allowed(r.uid, r.gid, r.groups, o) == r.allowed);
    }
}

TEST_CASE("socket: a peer refused by SO_PEERCRED gets one error line and is closed", "[socket]") {
    if (::geteuid() != 0) {
        WARN("not root: cannot connect as another user; peer_allowed() is table-tested instead");
        return;
    }
    TempDir dir;
    ::chmod(dir.path.c_str(), 0755);
    auto opts = options_in(dir);
    opts.mode = 0666;  // the file mode lets nobody in; the credential check must not
    opts.allowed_gids = {0};
    SocketServer server(opts);
    EchoHandler handler{server, {}};

    int out[2];
    REQUIRE(::pipe(out) == 0);
    const pid_t pid = ::fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {  // the child: become nobody, connect, relay what the server says, exit
        ::close(out[0]);
        if (::setgroups(0, nullptr) != 0 || ::setgid(65534) != 0 || ::setuid(65534) != 0) ::_exit(2);
        const int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
        sockaddr_un addr{};
        addr.sun_family = AF_UNIX;
        std::strncpy(addr.sun_path, opts.path.c_str(), sizeof addr.sun_path - 1);
        if (::connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0) ::_exit(3);
        const std::string req = "{\"cmd\":\"status\"}\n";
        (void)::send(fd, req.data(), req.size(), MSG_NOSIGNAL);
        char buf[4096];
        ssize_t got;
        while ((got = ::read(fd, buf, sizeof buf)) > 0) (void)::write(out[1], buf, static_cast<size_t>(got));
        ::_exit(0);
    }
    ::close(out[1]);
    std::string relayed;
    auto h = [&](const Request& r) { return handler(r); };
    for (int i = 0; i < 1000; ++i) {
        server.poll(5, h);
        pollfd p{out[0], POLLIN, 0};
        if (::poll(&p, 1, 0) > 0) {
            char buf[4096];
            const ssize_t got = ::read(out[0], buf, sizeof buf);
            if (got <= 0) break;
            relayed.append(buf, static_cast<size_t>(got));
        }
    }
    ::close(out[0]);
    int status = 0;
    ::waitpid(pid, &status, 0);
    CHECK(WIFEXITED(status));
    CHECK(WEXITSTATUS(status) == 0);
    INFO(relayed);
    REQUIRE(relayed.find('\n') != std::string::npos);
    const json err = json::parse(relayed.substr(0, relayed.find('\n')));
    CHECK(err["ok"] == false);
    CHECK_THAT(err["error"].get<std::string>(), Catch::StartsWith("permission denied: uid 65534"));
    CHECK(server.refused() == 1);
    CHECK(handler.seen.empty());
    CHECK(server.clients() == 0);
}

// ---------------------------------------------------------------------------------------------------
// Hostile input (SPEC §6: "never crash or stall the daemon").  Time is a fake clock the tests move.

namespace {

struct FakeClock {
    uint64_t now = 1'000'000'000;
    std::function<uint64_t()> fn() {
        return [this] { return now; };
    }
    void advance_s(double s) { now += static_cast<uint64_t>(s * 1e9); }
};

SocketOptions options_with_clock(const TempDir& dir, FakeClock& clock) {
    SocketOptions o = options_in(dir);
    o.clock = clock.fn();
    return o;
}

}  // namespace

TEST_CASE("socket: precheck_request refuses NUL bytes and deep nesting, and only those", "[socket][hostile]") {
    struct Row {
        const char* why;
        std::string line;
        bool refused;
    };
    const std::vector<Row> rows = {
        {"a plain request", R"({"cmd":"status"})", false},
        {"a NUL after the object", std::string(R"({"cmd":"status"})") + '\0' + "junk", true},
        {"a NUL alone", std::string(1, '\0'), true},
        {"depth 3", R"({"a":[{"b":1}]})", false},
        {"depth 32", std::string(32, '[') + std::string(32, ']'), false},
        {"depth 33", std::string(33, '[') + std::string(33, ']'), true},
        {"33 open brackets inside a string", R"({"s":")" + std::string(33, '[') + R"("})", false},
        {"an escaped quote does not end the string", R"({"s":"\")" + std::string(40, '{') + R"("})", false},
        {"an escaped backslash does end it", R"({"s":"\\"})" + std::string(40, '['), true},
        {"closing brackets do not go below zero", std::string(100, ']') + std::string(32, '['), false},
    };
    for (const auto& r : rows) {
        INFO(r.why);
        CHECK(tagwall::control::precheck_request(r.line, 32).has_value() == r.refused);
    }
    CHECK(*tagwall::control::precheck_request(std::string("ab") + '\0', 32) == "a NUL byte at offset 2");
    CHECK(*tagwall::control::precheck_request(std::string(40, '['), 32) == "nested deeper than 32 levels");
}

TEST_CASE("socket: lines nlohmann would accept or throw on are malformed requests, the server goes on",
          "[socket][hostile]") {
    TempDir dir;
    SocketServer server(options_in(dir));
    EchoHandler handler{server, {}};
    Client c(server.path());
    const std::vector<std::pair<std::string, std::string>> lines = {
        // out_of_range, not parse_error: it used to escape poll() and end the daemon.
        {"1e999999", "malformed request: number overflow"},
        {R"({"cmd":"status","n":-1e400})", "malformed request: number overflow"},
        {std::string(R"({"cmd":"status"})") + '\0' + "garbage", "malformed request: a NUL byte at offset 16"},
        {R"({"cmd":"status","x":)" + std::string(20000, '[') + std::string(20000, ']') + "}",
         "malformed request: nested deeper than 32 levels"},
    };
    for (const auto& [line, error] : lines) {
        INFO(line.substr(0, 60));
        c.send(line + "\n");
        const json err = read_json(server, handler, c);
        CHECK(err["ok"] == false);
        CHECK_THAT(err["error"].get<std::string>(), Catch::StartsWith(error));
    }
    CHECK(handler.seen.empty());
    CHECK(server.counters().malformed == lines.size());
    c.send(R"({"cmd":"status"})" "\n");
    CHECK(read_json(server, handler, c)["ok"] == true);
    CHECK(server.counters().requests == 1);
}

TEST_CASE("socket: a request line must be complete within request_timeout", "[socket][hostile]") {
    TempDir dir;
    FakeClock clock;
    SocketServer server(options_with_clock(dir, clock));
    EchoHandler handler{server, {}};
    Client c(server.path());

    SECTION("a request without its newline, then silence: an error, then closed") {
        c.send(R"({"cmd":"status"})");
        pump(server, handler);
        clock.advance_s(4.9);
        pump(server, handler);
        c.receive();
        CHECK(c.pending.empty());
        CHECK(server.clients() == 1);
        clock.advance_s(0.2);
        const json err = read_json(server, handler, c);
        CHECK_THAT(err["error"].get<std::string>(), Catch::StartsWith("request timeout"));
        CHECK(closed_by_server(server, handler, c));
        CHECK(server.counters().timed_out == 1);
    }
    SECTION("slowloris: bytes trickling in do not move the deadline") {
        const std::string req = R"({"cmd":"status"})" "\n";
        size_t i = 0;
        for (; i + 1 < req.size(); ++i) {  // one byte a second, never the newline
            c.send(req.substr(i, 1));
            pump(server, handler);
            if (server.counters().timed_out != 0) break;
            clock.advance_s(1.0);
        }
        CHECK(i == 5);  // the first byte at 0 s, cut at 5 s
        CHECK(server.counters().timed_out == 1);
        CHECK(handler.seen.empty());
        CHECK_THAT(read_json(server, handler, c)["error"].get<std::string>(), Catch::StartsWith("request timeout"));
    }
    SECTION("a line completed in time is served, and the next line gets a deadline of its own") {
        c.send(R"({"cmd":"one"})");
        pump(server, handler);
        clock.advance_s(4.5);
        c.send("\n" R"({"cmd":)");
        CHECK(read_json(server, handler, c)["result"]["echo"]["cmd"] == "one");
        clock.advance_s(4.5);  // 9 s after the first line began, 4.5 s after the second did
        c.send(R"("two"})" "\n");
        CHECK(read_json(server, handler, c)["result"]["echo"]["cmd"] == "two");
        CHECK(server.counters().timed_out == 0);
    }
}

TEST_CASE("socket: idle clients are closed after idle_timeout; followers are not", "[socket][hostile]") {
    TempDir dir;
    FakeClock clock;
    SocketServer server(options_with_clock(dir, clock));
    EchoHandler handler{server, {}};
    Client idle(server.path());
    Client busy(server.path());
    Client follower(server.path());
    follower.send(R"({"cmd":"follow"})" "\n");
    CHECK(read_json(server, handler, follower)["ok"] == true);
    pump(server, handler);
    CHECK(server.clients() == 3);
    for (int i = 0; i < 7; ++i) {  // 70 s: busy asks something every 10 s
        clock.advance_s(10);
        busy.send(R"({"cmd":"status"})" "\n");
        CHECK(read_json(server, handler, busy)["ok"] == true);
    }
    const json bye = read_json(server, handler, idle);
    CHECK_THAT(bye["error"].get<std::string>(), Catch::StartsWith("idle for 60 s"));
    CHECK(closed_by_server(server, handler, idle));
    CHECK(server.counters().idle_closed == 1);
    CHECK(server.clients() == 2);
    CHECK(server.followers() == 1);
}

TEST_CASE("socket: a client whose output does not move for idle_timeout is dropped", "[socket][hostile]") {
    TempDir dir;
    FakeClock clock;
    SocketServer server(options_with_clock(dir, clock));
    EchoHandler handler{server, {}};
    Client stuck(server.path());
    // One reply far larger than the socket buffers: most of it waits in the server for a reader.
    stuck.send(R"({"cmd":"big","size":2000000})" "\n");
    pump(server, handler);
    CHECK(server.buffered_bytes() > 0);
    clock.advance_s(59);
    pump(server, handler);
    CHECK(server.clients() == 1);
    clock.advance_s(2);
    pump(server, handler);
    CHECK(server.clients() == 0);
    CHECK(server.counters().dropped_slow == 1);
    CHECK(server.buffered_bytes() == 0);
}

TEST_CASE("socket: one reply larger than max_output still reaches a client that reads", "[socket][hostile]") {
    TempDir dir;
    auto opts = options_in(dir);
    opts.max_output = 64 * 1024;
    SocketServer server(opts);
    EchoHandler handler{server, {}};
    Client c(server.path());
    c.send(R"({"cmd":"big","size":1000000})" "\n");
    const auto line = read_line(server, handler, c, 5000);
    REQUIRE(line.has_value());
    CHECK(json::parse(*line)["result"].get<std::string>().size() == 1000000);
    CHECK(server.dropped_slow() == 0);
}

TEST_CASE("socket: a client that pipelines thousands of requests neither starves the others nor fills memory",
          "[socket][hostile]") {
    TempDir dir;
    FakeClock clock;
    auto opts = options_with_clock(dir, clock);
    opts.requests_per_poll = 16;
    SocketServer server(opts);
    EchoHandler handler{server, {}};
    Client greedy(server.path());
    Client polite(server.path());
    pump(server, handler);
    std::string flood;
    for (int i = 0; i < 5000; ++i) flood += json{{"cmd", "n"}, {"i", i}}.dump() + "\n";
    size_t sent = 0;  // as much as the kernel takes
    while (sent < flood.size()) {
        const ssize_t n = ::send(greedy.fd, flood.data() + sent, flood.size() - sent, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n <= 0) break;
        sent += static_cast<size_t>(n);
    }
    polite.send(R"({"cmd":"polite"})" "\n");
    auto h = [&](const Request& r) { return handler(r); };
    server.poll(5, h);
    server.poll(5, h);
    // Two polls: at most 16 of the flood each, and the polite client's one request.
    CHECK(handler.seen.size() <= 2 * 16 + 1);
    CHECK(std::any_of(handler.seen.begin(), handler.seen.end(),
                      [](const Request& r) { return r.body.value("cmd", "") == "polite"; }));
    // The flood's unread bytes stay in the kernel: the server holds little of it.
    CHECK(server.buffered_bytes() < opts.max_request + 8 * 16 * 1024);
    // Every request is answered in order, as the greedy client reads.
    for (int i = 0; i < 200; ++i) CHECK(read_json(server, handler, greedy)["result"]["echo"]["i"] == i);
}

TEST_CASE("socket: poll() stops starting requests once its time budget is spent", "[socket][hostile]") {
    TempDir dir;
    FakeClock clock;
    auto opts = options_with_clock(dir, clock);
    opts.poll_budget_ns = 20'000'000;
    SocketServer server(opts);
    std::vector<int> order;
    // Each request takes 15 ms of (fake) time.
    auto slow = [&](const Request& r) -> json {
        clock.now += 15'000'000;
        order.push_back(r.body.value("i", -1));
        return {{"ok", true}};
    };
    Client a(server.path());
    Client b(server.path());
    std::string batch;
    for (int i = 0; i < 10; ++i) batch += json{{"cmd", "n"}, {"i", i}}.dump() + "\n";
    a.send(batch);
    b.send(batch);
    for (int i = 0; i < 3; ++i) server.poll(5, slow);  // reads both, then works within the budget
    const size_t after_three = order.size();
    CHECK(after_three >= 3);
    CHECK(after_three <= 6);  // 2 per poll at most: the second one starts before 20 ms, a third not
    for (int i = 0; i < 40 && order.size() < 20; ++i) server.poll(5, slow);
    CHECK(order.size() == 20);  // nothing lost, just spread over polls
}

TEST_CASE("socket: when accept() runs out of file descriptors the listener rests instead of spinning",
          "[socket][hostile]") {
    TempDir dir;
    FakeClock clock;
    SocketServer server(options_with_clock(dir, clock));
    EchoHandler handler{server, {}};
    Client c(server.path());  // waits in the backlog
    rlimit saved{};
    REQUIRE(::getrlimit(RLIMIT_NOFILE, &saved) == 0);
    const int lowest_free = ::dup(0);
    REQUIRE(lowest_free >= 0);
    ::close(lowest_free);
    struct Restore {
        rlimit limit;
        ~Restore() { ::setrlimit(RLIMIT_NOFILE, &limit); }
    } restore{saved};
    rlimit tight = saved;
    tight.rlim_cur = static_cast<rlim_t>(lowest_free);  // every new descriptor fails with EMFILE
    REQUIRE(::setrlimit(RLIMIT_NOFILE, &tight) == 0);

    pump(server, handler, 1);
    CHECK(server.counters().accept_errors == 1);
    pump(server, handler, 20);  // the clock stands still: the listener is not polled, accept() not retried
    CHECK(server.counters().accept_errors == 1);
    clock.advance_s(0.2);
    pump(server, handler, 1);
    CHECK(server.counters().accept_errors == 2);

    REQUIRE(::setrlimit(RLIMIT_NOFILE, &saved) == 0);
    clock.advance_s(0.2);
    c.send(R"({"cmd":"status"})" "\n");
    CHECK(read_json(server, handler, c)["ok"] == true);
    CHECK(server.clients() == 1);
}

TEST_CASE("socket: a half-closed client whose request has no answer is closed, not kept", "[socket][hostile]") {
    TempDir dir;
    SocketServer server(options_in(dir));
    EchoHandler handler{server, {}};
    Client c(server.path());
    c.send(R"({"cmd":"quiet"})");
    REQUIRE(::shutdown(c.fd, SHUT_WR) == 0);
    CHECK(closed_by_server(server, handler, c));
    CHECK(handler.seen.size() == 1);
    CHECK(server.clients() == 0);
}
