// The daemon's unix socket (SPEC §6): line-delimited JSON requests and responses.
//
// Concurrency: control thread only.  The SocketServer has no thread of its own and no locks: the
// control thread owns it and calls poll() from its loop, between draining event rings and publishing
// policies.  Nothing here ever blocks longer than poll()'s timeout: every socket is non-blocking
// (accept4 SOCK_NONBLOCK|SOCK_CLOEXEC, send MSG_DONTWAIT|MSG_NOSIGNAL, so SIGPIPE never fires).
//
// Design.  Each client has an input buffer (bytes up to the next '\n') and an output buffer (reply
// lines the kernel has not taken yet).  One complete line is one request: a JSON object, handed to the
// caller's handler with the peer's credentials; the handler's answer (unless null) goes back as one
// line.  A client can hurt nobody but itself:
//   - a line that is not a JSON object gets {"ok":false,"error":"malformed request: ..."}, and the
//     connection stays open;
//   - a request longer than max_request bytes gets {"ok":false,"error":"request too large ..."} and
//     the connection is closed;
//   - a client whose unread output passes max_output (it never reads its replies, or follows events
//     faster than it reads them) is dropped and counted in dropped_slow();
//   - a connection beyond max_clients, or from a peer the SO_PEERCRED check refuses, gets one error
//     line and is closed, counted in refused().
// A client may half-close (shutdown(SHUT_WR)) after its request: it still gets its replies (a follower
// keeps getting its stream until it closes), and a final request without a trailing '\n' still counts.
//
// Who may connect: root; the daemon's own user (it could ptrace the daemon anyway); a uid listed in
// allowed_uids; a peer whose primary gid, or any supplementary group of its user (getgrouplist), is in
// allowed_gids.  peer_allowed() is that decision as a pure function.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace tagwall::control {

struct SocketOptions {
    std::string path;
    unsigned mode = 0660;
    std::vector<uint32_t> allowed_gids{0};
    std::optional<std::vector<uint32_t>> allowed_uids;
    size_t max_request = 64 * 1024;
    size_t max_output = 4 << 20;
    size_t max_clients = 64;
};

// One parsed request line, with the credentials of the peer that sent it.
struct Request {
    int client;
    nlohmann::json body;
    uint32_t uid, gid;
};

// The SO_PEERCRED decision as a pure function: uid 0 always; otherwise uid in allowed_uids, or gid or
// any of `groups` (the peer user's supplementary groups) in allowed_gids.  (The server also admits its
// own euid before asking this.)
bool peer_allowed(uint32_t uid, uint32_t gid, const std::vector<gid_t>& groups, const SocketOptions& options);

class SocketServer {
public:
    // Creates the parent directory if missing, replaces a stale socket file (refuses a file that is not
    // a socket, and a socket some process still listens on), binds, sets the file's mode, listens.
    // Throws std::runtime_error naming the path and the reason.
    explicit SocketServer(const SocketOptions& options);
    // Closes every client and removes the socket file (if it is still the one this server created).
    ~SocketServer();
    SocketServer(const SocketServer&) = delete;
    SocketServer& operator=(const SocketServer&) = delete;

    using Handler = std::function<nlohmann::json(const Request&)>;

    // Waits at most timeout_ms for activity, accepts and checks new clients, reads, calls `handler`
    // once per complete request line (in arrival order per client), queues and flushes the replies.
    // A handler that throws gets its client an {"ok":false,"error":"internal error: ..."} line.
    void poll(int timeout_ms, const Handler& handler);

    // Streaming (`tagwallctl events --follow`): marks a client as a follower; send_to_followers() queues
    // one line (a '\n' is appended when missing) to each follower, dropping those that cannot keep up.
    // Both may be called from inside the handler.
    void follow(int client);
    void send_to_followers(const std::string& line);

    size_t clients() const;
    size_t followers() const;
    uint64_t refused() const { return refused_; }
    uint64_t malformed() const { return malformed_; }
    uint64_t dropped_slow() const { return dropped_slow_; }
    const std::string& path() const { return options_.path; }

private:
    struct Client {
        int fd = -1;
        uint32_t uid = 0, gid = 0;
        std::string in;            // bytes received, not yet a complete line
        std::string out;           // bytes queued, from out_sent on not yet taken by the kernel
        size_t out_sent = 0;
        bool follower = false;
        bool read_closed = false;  // the peer half-closed: answer what is queued, then close
        bool dead = false;         // to be closed by reap()
    };

    void accept_clients();
    void admit(int fd);
    void read_client(int id, Client& c, const Handler& handler);
    void handle_line(int id, Client& c, std::string_view line, const Handler& handler);
    void queue(Client& c, const nlohmann::json& reply);
    void queue_raw(Client& c, std::string_view bytes);
    void flush(Client& c);
    void reject_and_close(Client& c, const std::string& error);
    void reap();

    SocketOptions options_;
    int listen_fd_ = -1;
    dev_t socket_dev_ = 0;
    ino_t socket_ino_ = 0;
    int next_id_ = 1;
    bool in_poll_ = false;  // closes wait for poll()'s end, so that a handler never erases a client
    std::map<int, Client> clients_;  // by client id (never reused, unlike fds)
    uint64_t refused_ = 0, malformed_ = 0, dropped_slow_ = 0;
};

}  // namespace tagwall::control
