// The daemon's unix socket: control side only (allocates, throws from the constructor only).  See
// socket_server.hpp for the contract; here: set-up, the poll loop, then the per-client helpers.
#include "control/socket_server.hpp"

#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <pwd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <stdexcept>
#include <string_view>

#include <fmt/format.h>
#include <fmt/ranges.h>

namespace tagwall::control {

namespace {

constexpr size_t kReadChunk = 16 * 1024;
constexpr int kReadRounds = 8;                       // chunks read from one client per poll() at most
constexpr int kListenBacklog = 64;
constexpr uint64_t kAcceptPause = 100'000'000;       // ns the listener rests after accept() fails (EMFILE)
constexpr size_t kKeepCapacity = 64 * 1024;          // a buffer larger than this is freed once empty

uint64_t monotonic_ns() {
    timespec ts{};
    ::clock_gettime(CLOCK_MONOTONIC, &ts);
    return static_cast<uint64_t>(ts.tv_sec) * 1'000'000'000ull + static_cast<uint64_t>(ts.tv_nsec);
}

double seconds(uint64_t ns) { return static_cast<double>(ns) / 1e9; }

std::string errno_text(int err) { return std::strerror(err); }

[[noreturn]] void fail(const std::string& path, const std::string& what, int err) {
    throw std::runtime_error(fmt::format("control socket {}: {}: {}", path, what, errno_text(err)));
}

nlohmann::json error_reply(const std::string& message) { return {{"ok", false}, {"error", message}}; }

std::string dump_line(const nlohmann::json& j) {
    // replace: a handler's string with invalid UTF-8 must not throw here.
    return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
}

sockaddr_un address_of(const std::string& path) {
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    if (path.empty()) throw std::runtime_error("control socket: no path given");
    if (path.size() >= sizeof addr.sun_path)
        throw std::runtime_error(fmt::format("control socket {}: path too long ({} bytes, the limit is {})", path,
                                             path.size(), sizeof addr.sun_path - 1));
    std::memcpy(addr.sun_path, path.data(), path.size());
    return addr;
}

// True when some process accepts connections on the socket file at `addr`.
bool socket_is_live(const sockaddr_un& addr) {
    const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) return false;
    const int rc = ::connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr);
    const int err = errno;
    ::close(fd);
    return rc == 0 || err == EAGAIN || err == EINPROGRESS;
}

// Removes a stale socket file at `path`; refuses anything else that is there.
void clear_stale_socket(const std::string& path, const sockaddr_un& addr) {
    struct stat st{};
    if (::lstat(path.c_str(), &st) != 0) {
        if (errno == ENOENT) return;
        fail(path, "cannot inspect the existing file", errno);
    }
    if (!S_ISSOCK(st.st_mode))
        throw std::runtime_error(
            fmt::format("control socket {}: a file that is not a socket is in the way; refusing to replace it", path));
    if (socket_is_live(addr))
        throw std::runtime_error(
            fmt::format("control socket {}: another process is listening on it (is tagwall already running?)", path));
    if (::unlink(path.c_str()) != 0) fail(path, "cannot remove the stale socket file", errno);
}

void create_parent_dir(const std::string& path) {
    const auto parent = std::filesystem::path(path).parent_path();
    if (parent.empty()) return;
    std::error_code ec;
    std::filesystem::create_directories(parent, ec);
    if (ec)
        throw std::runtime_error(
            fmt::format("control socket {}: cannot create directory {}: {}", path, parent.string(), ec.message()));
}

// The supplementary groups of `uid`'s user (empty when the uid has no passwd entry).
std::vector<gid_t> groups_of(uid_t uid, gid_t gid) {
    std::vector<char> buf(16384);
    passwd pw{};
    passwd* found = nullptr;
    if (::getpwuid_r(uid, &pw, buf.data(), buf.size(), &found) != 0 || found == nullptr) return {};
    int count = 32;
    std::vector<gid_t> groups(static_cast<size_t>(count));
    while (::getgrouplist(pw.pw_name, gid, groups.data(), &count) < 0) groups.resize(static_cast<size_t>(count));
    groups.resize(static_cast<size_t>(count));
    return groups;
}

template <typename Id>
std::string list(const std::vector<Id>& v) {
    return v.empty() ? std::string("none") : fmt::format("{}", fmt::join(v, ","));
}

// A connection that is not admitted: one error line, best effort (its socket buffer is empty), closed.
void refuse(int fd, const std::string& error) {
    const std::string line = dump_line(error_reply(error));
    (void)::send(fd, line.data(), line.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
    ::close(fd);
}

bool contains(const std::vector<uint32_t>& v, uint32_t x) { return std::find(v.begin(), v.end(), x) != v.end(); }

}  // namespace

std::optional<std::string> precheck_request(std::string_view line, size_t max_depth) {
    if (const auto nul = line.find('\0'); nul != std::string_view::npos)
        return fmt::format("a NUL byte at offset {}", nul);
    size_t depth = 0;
    bool in_string = false, escaped = false;
    for (const char ch : line) {
        if (in_string) {
            if (escaped) escaped = false;
            else if (ch == '\\') escaped = true;
            else if (ch == '"') in_string = false;
        } else if (ch == '"') {
            in_string = true;
        } else if (ch == '[' || ch == '{') {
            if (++depth > max_depth) return fmt::format("nested deeper than {} levels", max_depth);
        } else if ((ch == ']' || ch == '}') && depth > 0) {
            --depth;
        }
    }
    return std::nullopt;
}

bool peer_allowed(uint32_t uid, uint32_t gid, const std::vector<gid_t>& groups, const SocketOptions& options) {
    if (uid == 0) return true;
    if (options.allowed_uids && contains(*options.allowed_uids, uid)) return true;
    if (contains(options.allowed_gids, gid)) return true;
    return std::any_of(groups.begin(), groups.end(),
                       [&](gid_t g) { return contains(options.allowed_gids, static_cast<uint32_t>(g)); });
}

SocketServer::SocketServer(const SocketOptions& options) : options_(options) {
    const sockaddr_un addr = address_of(options_.path);
    create_parent_dir(options_.path);
    clear_stale_socket(options_.path, addr);
    listen_fd_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (listen_fd_ < 0) fail(options_.path, "socket()", errno);
    // Between bind() and chmod() the file has the umask's mode; the SO_PEERCRED check still guards it.
    if (::bind(listen_fd_, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0 ||
        ::chmod(options_.path.c_str(), static_cast<mode_t>(options_.mode)) != 0 ||
        ::listen(listen_fd_, kListenBacklog) != 0) {
        const int err = errno;
        ::close(listen_fd_);
        fail(options_.path, "cannot bind, chmod or listen", err);
    }
    struct stat st{};
    if (::stat(options_.path.c_str(), &st) == 0) {
        socket_dev_ = st.st_dev;
        socket_ino_ = st.st_ino;
    }
}

SocketServer::~SocketServer() {
    for (auto& [id, c] : clients_) ::close(c.fd);
    ::close(listen_fd_);
    // Only our own file: a newer daemon may have replaced it since.
    struct stat st{};
    if (::lstat(options_.path.c_str(), &st) == 0 && st.st_dev == socket_dev_ && st.st_ino == socket_ino_)
        ::unlink(options_.path.c_str());
}

void SocketServer::poll(int timeout_ms, const Handler& handler) {
    std::vector<pollfd> fds;
    std::vector<int> ids;
    bool waiting = false;  // requests left from the last call: look at the sockets, but do not sleep
    const bool listening = clock_now() >= accept_paused_until_;
    fds.push_back({listening ? listen_fd_ : -1, POLLIN, 0});  // a negative fd is skipped by poll(2)
    for (const auto& [id, c] : clients_) {
        if (c.dead) continue;
        const bool request = has_request(c);
        waiting |= request;
        // Input is read only when no request waits: the rest stays in the kernel (backpressure).
        short events = c.read_closed || request ? 0 : POLLIN;
        if (c.out_sent < c.out.size()) events |= POLLOUT;
        fds.push_back({c.fd, events, 0});
        ids.push_back(id);
    }
    const int n = ::poll(fds.data(), fds.size(), waiting ? 0 : timeout_ms);
    const uint64_t started = clock_now();

    in_poll_ = true;
    for (size_t i = 1; n > 0 && i < fds.size(); ++i) {
        const short revents = fds[i].revents;
        if (revents == 0) continue;
        auto it = clients_.find(ids[i - 1]);
        if (it == clients_.end() || it->second.dead) continue;
        Client& c = it->second;
        if (revents & POLLOUT) flush(c);
        if (!c.dead && !c.read_closed && !has_request(c) && (revents & (POLLIN | POLLHUP | POLLERR)))
            read_client(c, started);
        // The peer is gone, or half-closed and no longer readable: nothing more will be taken.
        if ((revents & POLLERR) || ((revents & POLLHUP) && c.read_closed)) kill(c);
    }
    handle_requests(handler, started);
    if (n > 0 && (fds[0].revents & POLLIN)) accept_clients(started);
    expire(clock_now());
    in_poll_ = false;
    reap();
}

void SocketServer::follow(int client) {
    auto it = clients_.find(client);
    if (it != clients_.end()) it->second.follower = true;
}

void SocketServer::send_to_followers(const std::string& line) {
    const bool has_newline = !line.empty() && line.back() == '\n';
    for (auto& [id, c] : clients_) {
        if (!c.follower || c.dead) continue;
        queue_raw(c, line);
        if (!has_newline) queue_raw(c, "\n");
        flush(c);
    }
    if (!in_poll_) reap();
}

size_t SocketServer::followers() const {
    return static_cast<size_t>(std::count_if(clients_.begin(), clients_.end(),
                                             [](const auto& kv) { return kv.second.follower && !kv.second.dead; }));
}

size_t SocketServer::buffered_bytes() const {
    size_t total = 0;
    for (const auto& [id, c] : clients_) total += c.in.size() + (c.out.size() - c.out_sent);
    return total;
}

// ---------------------------------------------------------------------------------------------------
// Helpers

uint64_t SocketServer::clock_now() const { return options_.clock ? options_.clock() : monotonic_ns(); }

void SocketServer::accept_clients(uint64_t now) {
    for (size_t i = 0; i < options_.accepts_per_poll; ++i) {
        const int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED) continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK) return;  // all taken
            // EMFILE, ENFILE, ENOBUFS, ENOMEM: the connection waits in the backlog; poll() must not spin
            // on a listener that stays readable, so it is left alone for a while.
            ++counters_.accept_errors;
            accept_paused_until_ = now + kAcceptPause;
            return;
        }
        admit(fd, now);
    }
}

void SocketServer::admit(int fd, uint64_t now) {
    ucred cred{};
    socklen_t len = sizeof cred;
    if (::getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) {
        ++counters_.refused_peers;
        refuse(fd, fmt::format("permission denied: cannot read the peer's credentials: {}", errno_text(errno)));
        return;
    }
    // The supplementary groups (a passwd and group lookup) only when uid and gid do not decide.
    bool allowed = cred.uid == ::geteuid() || peer_allowed(cred.uid, cred.gid, {}, options_);
    if (!allowed) {
        const auto groups = groups_of(cred.uid, cred.gid);
        allowed = peer_allowed(cred.uid, cred.gid, groups, options_);
        if (!allowed) {
            ++counters_.refused_peers;
            refuse(fd, fmt::format("permission denied: uid {} gid {} (groups {}) is not allowed on {}; allowed "
                                   "gids: {}; allowed uids: {}",
                                   cred.uid, cred.gid, list(groups), options_.path, list(options_.allowed_gids),
                                   options_.allowed_uids ? list(*options_.allowed_uids) : std::string("none")));
            return;
        }
    }
    if (live_clients_ >= options_.max_clients) {
        ++counters_.refused_full;
        refuse(fd, fmt::format("too many clients (limit {}); try again later", options_.max_clients));
        return;
    }
    Client c;
    c.fd = fd;
    c.uid = cred.uid;
    c.gid = cred.gid;
    c.last_activity = now;
    clients_.emplace(next_id_++, std::move(c));
    ++live_clients_;
    ++counters_.accepted;
}

bool SocketServer::has_request(const Client& c) const {
    return c.in.find('\n', c.in_start) != std::string::npos;
}

// Reads until a request is complete (then stops: the next is read once this one is handled), the
// kernel has nothing more, or kReadRounds chunks were taken.
void SocketServer::read_client(Client& c, uint64_t now) {
    char buf[kReadChunk];
    for (int round = 0; round < kReadRounds && !c.dead; ++round) {
        const ssize_t got = ::recv(c.fd, buf, sizeof buf, MSG_DONTWAIT);
        if (got < 0) {
            if (errno == EINTR) continue;
            if (errno != EAGAIN && errno != EWOULDBLOCK) kill(c);
            break;
        }
        if (got == 0) {
            c.read_closed = true;
            // A last request without its '\n' still counts: it becomes a line like the others.
            if (c.in.size() > c.in_start) c.in.push_back('\n');
            c.partial_since = 0;
            finish_if_done(c);
            return;
        }
        c.in.append(buf, static_cast<size_t>(got));
        c.last_activity = now;
        if (std::memchr(buf, '\n', static_cast<size_t>(got)) != nullptr) break;
        if (c.in.size() - c.in_start > options_.max_request) {
            ++counters_.oversized;
            reject_and_close(c, fmt::format("request too large (limit {} bytes)", options_.max_request));
            return;
        }
    }
    if (c.partial_since == 0 && c.in.size() > c.in_start && !has_request(c)) c.partial_since = now;
}

// Round robin over the clients with a complete request, from next_turn_ on: each gets up to
// requests_per_poll; no request starts once poll_budget_ns has passed (the first one always does).
void SocketServer::handle_requests(const Handler& handler, uint64_t started) {
    std::vector<int> turn;
    for (auto it = clients_.lower_bound(next_turn_); it != clients_.end(); ++it)
        if (!it->second.dead && has_request(it->second)) turn.push_back(it->first);
    for (auto it = clients_.begin(); it != clients_.end() && it->first < next_turn_; ++it)
        if (!it->second.dead && has_request(it->second)) turn.push_back(it->first);
    if (turn.empty()) return;
    next_turn_ = turn.front() + 1;  // the next poll() starts with the one after this one's first
    const uint64_t deadline = started + options_.poll_budget_ns;
    bool first = true;
    for (const int id : turn) {
        auto it = clients_.find(id);
        if (it == clients_.end() || it->second.dead) continue;
        if (!first && clock_now() >= deadline) {
            next_turn_ = id;  // out of time: this one goes first next time
            return;
        }
        handle_some(id, it->second, handler, deadline, first);
    }
}

// Handles up to requests_per_poll complete lines of one client (at least one when `first`).
void SocketServer::handle_some(int id, Client& c, const Handler& handler, uint64_t deadline, bool& first) {
    size_t handled = 0;
    while (!c.dead && handled < options_.requests_per_poll) {
        const size_t nl = c.in.find('\n', c.in_start);
        if (nl == std::string::npos) break;
        if (!first && clock_now() >= deadline) break;
        first = false;
        const std::string_view line(c.in.data() + c.in_start, nl - c.in_start);
        c.in_start = nl + 1;
        c.partial_since = 0;
        handle_line(id, c, line, handler);  // never touches c.in: `line` stays valid
        ++handled;
    }
    if (c.dead) return;
    c.in.erase(0, c.in_start);
    c.in_start = 0;
    if (c.in.empty() && c.in.capacity() > kKeepCapacity) std::string().swap(c.in);
    const uint64_t t = clock_now();
    c.last_activity = t;
    if (!c.in.empty() && !has_request(c)) c.partial_since = t;  // the next line has begun
    finish_if_done(c);
}

void SocketServer::handle_line(int id, Client& c, std::string_view line, const Handler& handler) {
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.find_first_not_of(" \t") == std::string_view::npos) return;  // blank lines are ignored
    if (line.size() > options_.max_request) {
        ++counters_.oversized;
        reject_and_close(c, fmt::format("request too large (limit {} bytes)", options_.max_request));
        return;
    }
    if (const auto why = precheck_request(line, options_.max_depth)) {
        ++counters_.malformed;
        queue(c, error_reply(fmt::format("malformed request: {}", *why)));
        return;
    }
    nlohmann::json body;
    try {
        body = nlohmann::json::parse(line);
    } catch (const nlohmann::json::exception& e) {  // parse_error, and out_of_range for 1e999
        ++counters_.malformed;
        std::string what = e.what();
        if (const auto close = what.find("] "); what.rfind("[json.exception", 0) == 0 && close != std::string::npos)
            what.erase(0, close + 2);
        queue(c, error_reply(fmt::format("malformed request: {}", what)));
        return;
    }
    if (!body.is_object()) {
        ++counters_.malformed;
        queue(c, error_reply(fmt::format("malformed request: expected a JSON object like {{\"cmd\":\"status\"}}, "
                                         "got a {}",
                                         body.type_name())));
        return;
    }
    ++counters_.requests;
    nlohmann::json reply;
    try {
        reply = handler(Request{id, std::move(body), c.uid, c.gid});
    } catch (const std::exception& e) {
        reply = error_reply(fmt::format("internal error: {}", e.what()));
    } catch (...) {
        reply = error_reply("internal error: an unknown exception");
    }
    if (!reply.is_null()) queue(c, reply);
}

// The timeouts, for clients that owe the server something (a request still waiting is the server's
// debt, not theirs).
void SocketServer::expire(uint64_t now) {
    for (auto& [id, c] : clients_) {
        if (c.dead || has_request(c)) continue;
        if (c.partial_since != 0 && now - c.partial_since >= options_.request_timeout_ns) {
            ++counters_.timed_out;
            reject_and_close(c, fmt::format("request timeout: a request line must end with a newline within {} s "
                                            "of its first byte",
                                            seconds(options_.request_timeout_ns)));
        } else if (c.out_sent < c.out.size()) {
            if (now - c.out_moved >= options_.idle_timeout_ns) {
                ++counters_.dropped_slow;  // it stopped reading: its output has not moved
                kill(c);
            }
        } else if (!c.follower && c.partial_since == 0 && now - c.last_activity >= options_.idle_timeout_ns) {
            ++counters_.idle_closed;
            reject_and_close(c, fmt::format("idle for {} s: closing the connection", seconds(options_.idle_timeout_ns)));
        }
    }
}

void SocketServer::queue(Client& c, const nlohmann::json& reply) {
    queue_raw(c, dump_line(reply));
    flush(c);
}

void SocketServer::queue_raw(Client& c, std::string_view bytes) {
    if (c.dead) return;
    const size_t owed = c.out.size() - c.out_sent;
    if (owed > options_.max_output) {
        ++counters_.dropped_slow;
        kill(c);  // it does not read: forget what it was owed
        return;
    }
    if (owed == 0) c.out_moved = clock_now();  // the stall clock starts with the first byte owed
    c.out.append(bytes);
}

void SocketServer::flush(Client& c) {
    bool moved = false;
    while (!c.dead && c.out_sent < c.out.size()) {
        const ssize_t sent = ::send(c.fd, c.out.data() + c.out_sent, c.out.size() - c.out_sent, MSG_DONTWAIT | MSG_NOSIGNAL);
        if (sent < 0) {
            if (errno == EINTR) continue;
            if (errno != EAGAIN && errno != EWOULDBLOCK) kill(c);  // EPIPE, ECONNRESET: gone
            break;
        }
        c.out_sent += static_cast<size_t>(sent);
        moved = true;
    }
    if (c.dead) return;
    if (moved) c.out_moved = clock_now();
    if (c.out_sent == c.out.size()) {
        c.out.clear();
        c.out_sent = 0;
        if (c.out.capacity() > kKeepCapacity) std::string().swap(c.out);
        finish_if_done(c);
    } else if (c.out_sent > c.out.size() / 2) {
        c.out.erase(0, c.out_sent);  // keep the buffer from creeping: the sent half goes
        c.out_sent = 0;
    }
}

// A client that half-closed is closed once every request is answered and every byte is sent
// (a follower keeps its stream).
void SocketServer::finish_if_done(Client& c) {
    if (c.read_closed && !c.follower && !has_request(c) && c.out_sent == c.out.size()) kill(c);
}

// One error line after whatever is already queued, then the connection is closed (what the kernel will
// not take at once is lost: a client that is being thrown out gets no buffer).
void SocketServer::reject_and_close(Client& c, const std::string& error) {
    if (c.dead) return;
    c.out.append(dump_line(error_reply(error)));
    flush(c);
    kill(c);
}

void SocketServer::kill(Client& c) {
    if (c.dead) return;
    c.dead = true;
    --live_clients_;
}

void SocketServer::reap() {
    for (auto it = clients_.begin(); it != clients_.end();) {
        if (it->second.dead) {
            ::close(it->second.fd);
            it = clients_.erase(it);
        } else {
            ++it;
        }
    }
}

}  // namespace tagwall::control
