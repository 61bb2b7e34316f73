// tagwallctl's socket client: see ctl_client.hpp.
#include "tools/ctl_client.hpp"

#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstring>

#include <fmt/format.h>

namespace tagwall::tools {

namespace {

constexpr size_t kMaxLine = 512u << 20;  // a sanity bound on one answer

std::string why_not(int err, const std::string& path) {
    switch (err) {
        case ENOENT:
            return "no such socket (is tagwall running? is this its control.socket?)";
        case ECONNREFUSED:
            return "connection refused: the socket file is there but nothing listens (tagwall stopped or crashed?)";
        case EACCES:
        case EPERM:
            return fmt::format("permission denied (tagwallctl needs root or a group allowed on {}; try sudo)", path);
        case ENOTSOCK:
            return "not a socket";
        default:
            return std::strerror(err);
    }
}

[[noreturn]] void connect_failed(const std::string& path, const std::string& why) {
    throw CtlConnectError(fmt::format(
        "cannot connect to {}: {}\n  Check that tagwall runs, or give its socket with --socket PATH "
        "(the daemon's control.socket).",
        path, why));
}

// poll() on `p` with SIGINT and SIGTERM unblocked for just the wait (ppoll swaps the mask atomically).
int wait_unblocked(pollfd& p, int timeout_ms) {
    sigset_t during;
    pthread_sigmask(SIG_SETMASK, nullptr, &during);
    sigdelset(&during, SIGINT);
    sigdelset(&during, SIGTERM);
    timespec limit{timeout_ms / 1000, static_cast<long>(timeout_ms % 1000) * 1000000L};
    return ::ppoll(&p, 1, timeout_ms < 0 ? nullptr : &limit, &during);
}

int to_ms(double seconds) { return seconds <= 0 ? -1 : static_cast<int>(std::ceil(seconds * 1000)); }

}  // namespace

CtlConnection::CtlConnection(const std::string& path, double timeout_s) : path_(path), timeout_ms_(to_ms(timeout_s)) {
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    if (path.empty()) connect_failed(path, "the socket path is empty");
    if (path.size() >= sizeof addr.sun_path)
        connect_failed(path, fmt::format("the path is too long ({} bytes; a unix socket path holds at most {})",
                                         path.size(), sizeof addr.sun_path - 1));
    std::memcpy(addr.sun_path, path.data(), path.size());
    fd_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd_ < 0) connect_failed(path, std::strerror(errno));
    if (::connect(fd_, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0) {
        const int err = errno;
        ::close(fd_);
        fd_ = -1;
        connect_failed(path, why_not(err, path));
    }
}

CtlConnection::~CtlConnection() {
    if (fd_ >= 0) ::close(fd_);
}

void CtlConnection::set_timeout(double timeout_s) { timeout_ms_ = to_ms(timeout_s); }

void CtlConnection::send_line(const std::string& line) {
    const std::string bytes = line + "\n";
    size_t sent = 0;
    while (sent < bytes.size()) {
        pollfd p{fd_, POLLOUT, 0};
        const int ready = ::poll(&p, 1, timeout_ms_);
        if (ready == 0) throw CtlConnectError(fmt::format("{}: the daemon does not take the request (timed out)", path_));
        if (ready < 0 && errno == EINTR) continue;
        const ssize_t n = ::send(fd_, bytes.data() + sent, bytes.size() - sent, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n < 0) {
            if (errno == EAGAIN || errno == EINTR) continue;
            // The daemon may have refused us with an error line before closing: the caller reads it.
            if (errno == EPIPE || errno == ECONNRESET) return;
            throw CtlConnectError(fmt::format("{}: sending the request failed: {}", path_, std::strerror(errno)));
        }
        sent += static_cast<size_t>(n);
    }
}

std::optional<std::string> CtlConnection::read_line(const volatile bool* interrupted) {
    for (;;) {
        if (const auto nl = pending_.find('\n'); nl != std::string::npos) {
            std::string line = pending_.substr(0, nl);
            pending_.erase(0, nl + 1);
            return line;
        }
        if (pending_.size() > kMaxLine)
            throw CtlConnectError(fmt::format("{}: an answer longer than {} MB; giving up", path_, kMaxLine >> 20));
        pollfd p{fd_, POLLIN, 0};
        int ready;
        if (interrupted) {
            // The caller keeps the interrupting signals blocked; they get in only during ppoll, so a
            // signal that came while we parsed or printed is seen here, never lost before a wait forever.
            if (*interrupted) return std::nullopt;
            ready = wait_unblocked(p, timeout_ms_);
        } else {
            ready = ::poll(&p, 1, timeout_ms_);
        }
        if (ready < 0 && errno == EINTR) {
            if (interrupted && *interrupted) return std::nullopt;
            continue;
        }
        if (ready == 0)
            throw CtlConnectError(fmt::format("{}: no answer within {} s (raise --timeout, or check the daemon)", path_,
                                              timeout_ms_ / 1000.0));
        char buf[65536];
        const ssize_t got = ::recv(fd_, buf, sizeof buf, 0);
        if (got > 0) {
            pending_.append(buf, static_cast<size_t>(got));
            continue;
        }
        if (got < 0 && errno == EINTR) {
            if (interrupted && *interrupted) return std::nullopt;
            continue;
        }
        // EOF, or a reset after the daemon's last words: a final unterminated line still counts.
        if (!pending_.empty()) {
            std::string line = std::move(pending_);
            pending_.clear();
            return line;
        }
        if (got == 0 || errno == ECONNRESET) return std::nullopt;
        throw CtlConnectError(fmt::format("{}: reading the answer failed: {}", path_, std::strerror(errno)));
    }
}

}  // namespace tagwall::tools
