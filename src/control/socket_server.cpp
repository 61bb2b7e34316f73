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
constexpr int kListenBacklog = 64;

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
    fds.push_back({listen_fd_, POLLIN, 0});
    for (const auto& [id, c] : clients_) {
        short events = c.read_closed ? 0 : POLLIN;
        if (c.out_sent < c.out.size()) events |= POLLOUT;
        fds.push_back({c.fd, events, 0});
        ids.push_back(id);
    }
    const int n = ::poll(fds.data(), fds.size(), timeout_ms);
    if (n <= 0) return;  // timeout, or EINTR (a signal for the control loop to look at)

    in_poll_ = true;
    for (size_t i = 1; i < fds.size(); ++i) {
        if (fds[i].revents == 0) continue;
        auto it = clients_.find(ids[i - 1]);
        if (it == clients_.end() || it->second.dead) continue;
        Client& c = it->second;
        if (fds[i].revents & POLLOUT) flush(c);
        if (!c.dead && !c.read_closed && (fds[i].revents & (POLLIN | POLLHUP | POLLERR)))
            read_client(it->first, c, handler);
        // The peer is gone, or half-closed and no longer readable: nothing more will be taken.
        if (fds[i].revents & POLLERR) c.dead = true;
        if ((fds[i].revents & POLLHUP) && c.read_closed) c.dead = true;
    }
    if (fds[0].revents & POLLIN) accept_clients();
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

size_t SocketServer::clients() const {
    return static_cast<size_t>(std::count_if(clients_.begin(), clients_.end(), [](const auto& kv) { return !kv.second.dead; }));
}

size_t SocketServer::followers() const {
    return static_cast<size_t>(std::count_if(clients_.begin(), clients_.end(),
                                             [](const auto& kv) { return kv.second.follower && !kv.second.dead; }));
}

// ---------------------------------------------------------------------------------------------------
// Helpers

void SocketServer::accept_clients() {
    for (;;) {
        const int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED) continue;
            return;  // EAGAIN: all taken; EMFILE and friends: retried on the next poll
        }
        admit(fd);
    }
}

void SocketServer::admit(int fd) {
    Client c;
    c.fd = fd;
    ucred cred{};
    socklen_t len = sizeof cred;
    if (::getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) {
        ++refused_;
        refuse(fd, fmt::format("permission denied: cannot read the peer's credentials: {}", errno_text(errno)));
        return;
    }
    c.uid = cred.uid;
    c.gid = cred.gid;
    const auto groups = groups_of(cred.uid, cred.gid);
    if (cred.uid != ::geteuid() && !peer_allowed(cred.uid, cred.gid, groups, options_)) {
        ++refused_;
        refuse(fd, fmt::format("permission denied: uid {} gid {} (groups {}) is not allowed on {}; allowed "
                                        "gids: {}; allowed uids: {}",
                                        cred.uid, cred.gid, list(groups), options_.path, list(options_.allowed_gids),
                                        options_.allowed_uids ? list(*options_.allowed_uids) : std::string("none")));
        return;
    }
    if (clients() >= options_.max_clients) {
        ++refused_;
        refuse(fd, fmt::format("too many clients (limit {}); try again later", options_.max_clients));
        return;
    }
    clients_.emplace(next_id_++, std::move(c));
}

void SocketServer::read_client(int id, Client& c, const Handler& handler) {
    char buf[kReadChunk];
    // At most a few chunks per poll, so that one chatty client cannot starve the others.
    for (int round = 0; round < 8 && !c.dead; ++round) {
        const ssize_t got = ::recv(c.fd, buf, sizeof buf, MSG_DONTWAIT);
        if (got < 0) {
            if (errno == EINTR) continue;
            if (errno != EAGAIN && errno != EWOULDBLOCK) c.dead = true;
            return;
        }
        if (got == 0) {
            c.read_closed = true;
            // A last request without its '\n' still counts.
            if (!c.in.empty()) {
                const std::string last = std::move(c.in);
                c.in.clear();
                handle_line(id, c, last, handler);
            }
            // Closed once its replies are flushed; a follower half-closed (socat, nc -N) keeps streaming.
            if (c.out_sent == c.out.size() && !c.follower) c.dead = true;
            return;
        }
        c.in.append(buf, static_cast<size_t>(got));
        size_t start = 0;
        for (size_t nl; !c.dead && (nl = c.in.find('\n', start)) != std::string::npos; start = nl + 1)
            handle_line(id, c, std::string_view(c.in).substr(start, nl - start), handler);
        c.in.erase(0, start);
        if (!c.dead && c.in.size() > options_.max_request) {
            reject_and_close(c, fmt::format("request too large (limit {} bytes)", options_.max_request));
            return;
        }
    }
}

void SocketServer::handle_line(int id, Client& c, std::string_view line, const Handler& handler) {
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.find_first_not_of(" \t") == std::string_view::npos) return;  // blank lines are ignored
    if (line.size() > options_.max_request) {
        reject_and_close(c, fmt::format("request too large (limit {} bytes)", options_.max_request));
        return;
    }
    nlohmann::json body;
    try {
        body = nlohmann::json::parse(line);
    } catch (const nlohmann::json::exception& e) {  // parse_error, and out_of_range for a number like 1e999
        ++malformed_;
        std::string what = e.what();
        if (const auto close = what.find("] "); what.rfind("[json.exception", 0) == 0 && close != std::string::npos)
            what.erase(0, close + 2);
        queue(c, error_reply("malformed request: " + what));
        return;
    }
    if (!body.is_object()) {
        ++malformed_;
        queue(c, error_reply(fmt::format("malformed request: expected a JSON object like {{\"cmd\":\"status\"}}, "
                                             "got a {}",
                                             body.type_name())));
        return;
    }
    nlohmann::json reply;
    try {
        reply = handler(Request{id, std::move(body), c.uid, c.gid});
    } catch (const std::exception& e) {
        reply = error_reply(fmt::format("internal error: {}", e.what()));
    }
    if (!reply.is_null()) queue(c, reply);
}

void SocketServer::queue(Client& c, const nlohmann::json& reply) {
    queue_raw(c, dump_line(reply));
    flush(c);
}

void SocketServer::queue_raw(Client& c, std::string_view bytes) {
    if (c.dead) return;
    c.out.append(bytes);
    if (c.out.size() - c.out_sent > options_.max_output) {
        ++dropped_slow_;
        c.dead = true;  // it does not read: forget what it was owed
    }
}

void SocketServer::flush(Client& c) {
    while (!c.dead && c.out_sent < c.out.size()) {
        const ssize_t sent = ::send(c.fd, c.out.data() + c.out_sent, c.out.size() - c.out_sent, MSG_DONTWAIT | MSG_NOSIGNAL);
        if (sent < 0) {
            if (errno == EINTR) continue;
            if (errno != EAGAIN && errno != EWOULDBLOCK) c.dead = true;  // EPIPE, ECONNRESET: gone
            break;
        }
        c.out_sent += static_cast<size_t>(sent);
    }
    if (c.out_sent == c.out.size()) {
        c.out.clear();
        c.out_sent = 0;
        if (c.read_closed && !c.follower) c.dead = true;
    } else if (c.out_sent > c.out.size() / 2) {
        c.out.erase(0, c.out_sent);  // keep the buffer from creeping: the sent half goes
        c.out_sent = 0;
    }
}

// One error line after whatever is already queued, then the connection is closed (what the kernel will
// not take at once is lost: a client that is being thrown out gets no buffer).
void SocketServer::reject_and_close(Client& c, const std::string& error) {
    queue_raw(c, dump_line(error_reply(error)));
    flush(c);
    c.dead = true;
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
