// The daemon's unix socket (SPEC §6): line-delimited JSON requests and responses.
//
// Concurrency: control thread only.  The SocketServer has no thread of its own and no locks: the
// control thread owns it and calls poll() from its loop, between draining event rings and publishing
// policies.  Nothing here ever blocks: every socket is non-blocking (accept4 SOCK_NONBLOCK|SOCK_CLOEXEC,
// send MSG_DONTWAIT|MSG_NOSIGNAL, so SIGPIPE never fires), and one poll() call does a bounded amount of
// work whatever the clients do, so that the control loop gets back to the workers' event rings soon:
//   - at most accepts_per_poll new connections are accepted;
//   - a client's input is read only while it has no complete request waiting (a client that pipelines
//     thousands of requests is served a few at a time, and its unread bytes stay in the kernel);
//   - at most requests_per_poll requests of each client are handled, clients taken in turn (round robin),
//     and no new request is started once poll_budget_ns has passed since poll() began; what is left is
//     handled by the next poll(), which then does not sleep.
// (A handler itself may take long: a policy load compiles and waits for the workers.  That is the
// operator's request, bounded by the policy's size; the dataplane workers never wait for this thread.)
//
// Design.  Each client has an input buffer (bytes up to the next '\n') and an output buffer (reply
// lines the kernel has not taken yet).  One complete line is one request: a JSON object, handed to the
// caller's handler with the peer's credentials; the handler's answer (unless null) goes back as one
// line.  A client can hurt nobody but itself; every way of being thrown out is counted (counters()):
//   - a line that is not a JSON object (or holds a NUL byte, or nests deeper than max_depth) gets
//     {"ok":false,"error":"malformed request: ..."}, and the connection stays open        (malformed);
//   - a request longer than max_request bytes gets {"ok":false,"error":"request too large ..."} and
//     the connection is closed                                                            (oversized);
//   - a request line not complete request_timeout_ns after its first byte (slowloris; a client that
//     hangs halfway) gets {"ok":false,"error":"request timeout ..."} and is closed          (timed_out);
//   - a client with nothing to say, nothing owed and no request for idle_timeout_ns is closed; so is
//     a client whose pending output has not moved for idle_timeout_ns (it stopped reading)
//                                                                                (idle_closed / dropped_slow);
//   - a client that owes more than max_output bytes of unread output when a new line is queued (it never
//     reads its replies, or follows events faster than it reads them) is dropped     (dropped_slow).  A
//     single reply larger than max_output is still delivered to a client that reads;
//   - a connection from a peer the SO_PEERCRED check refuses gets one error line and is closed
//                                                                                     (refused_peers);
//   - a connection beyond max_clients gets one error line and is closed                 (refused_full).
// Memory is therefore bounded by max_clients x (max_request + max_output + the largest reply).
// When accept() fails for lack of file descriptors, the listening socket is left alone for
// kAcceptPause (so that poll() does not spin on it) and the failure is counted (accept_errors).
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
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

namespace tagwall::control {

// The limits (docs/operations.md lists them for operators).
struct SocketOptions {
    std::string path;
    unsigned mode = 0660;
    std::vector<uint32_t> allowed_gids{0};
    std::optional<std::vector<uint32_t>> allowed_uids;
    size_t max_request = 64 * 1024;                  // bytes in one request line (tagwallctl's are < 1 KiB)
    size_t max_output = 256 * 1024;                  // unread output a client may owe (~600 events)
    size_t max_clients = 64;                         // connections at once
    size_t max_depth = 32;                           // JSON nesting of a request (requests use 3)
    uint64_t request_timeout_ns = 5'000'000'000;     // first byte of a line to its '\n'
    uint64_t idle_timeout_ns = 60'000'000'000;       // silence, or output that does not move
    size_t accepts_per_poll = 64;
    size_t requests_per_poll = 16;                   // per client
    uint64_t poll_budget_ns = 20'000'000;            // handling time per poll() before it yields
    std::function<uint64_t()> clock;                 // monotonic ns; empty: CLOCK_MONOTONIC (tests inject one)
};

// What the server turned away or cut off, since it started (`tagwallctl status` shows them).
struct SocketCounters {
    uint64_t accepted = 0;       // connections admitted
    uint64_t requests = 0;       // request lines handed to the handler
    uint64_t refused_peers = 0;  // SO_PEERCRED said no
    uint64_t refused_full = 0;   // beyond max_clients
    uint64_t malformed = 0;      // not a JSON object, NUL bytes, too deep (the connection stays)
    uint64_t oversized = 0;      // longer than max_request (closed)
    uint64_t timed_out = 0;      // a request incomplete after request_timeout (closed)
    uint64_t idle_closed = 0;    // silent for idle_timeout (closed)
    uint64_t dropped_slow = 0;   // did not read its output: past max_output, or stuck for idle_timeout
    uint64_t accept_errors = 0;  // accept() failed (EMFILE, ENFILE, ENOMEM ...)
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

// Why `line` may not be parsed as a request, before nlohmann sees it: a NUL byte (nlohmann stops at one
// and would accept `{"cmd":"status"}\0garbage`), or brackets nested deeper than max_depth outside
// strings (a deep value is cheap to parse but recursive to copy or print).  nullopt: go ahead.
std::optional<std::string> precheck_request(std::string_view line, size_t max_depth);

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

    // Waits at most timeout_ms for activity (not at all while requests are waiting from the last call),
    // accepts and checks new clients, reads, calls `handler` once per complete request line (in arrival
    // order per client, within the per-poll limits above), queues and flushes the replies, and closes
    // the clients whose timeouts have passed.  A handler that throws gets its client an
    // {"ok":false,"error":"internal error: ..."} line.
    void poll(int timeout_ms, const Handler& handler);

    // Streaming (`tagwallctl events --follow`): marks a client as a follower; send_to_followers() queues
    // one line (a '\n' is appended when missing) to each follower, dropping those that cannot keep up.
    // Both may be called from inside the handler.
    void follow(int client);
    void send_to_followers(const std::string& line);

    size_t clients() const { return live_clients_; }
    size_t followers() const;
    // Bytes held in the clients' buffers (input not yet handled, output not yet taken by the kernel).
    size_t buffered_bytes() const;
    const SocketCounters& counters() const { return counters_; }
    uint64_t refused() const { return counters_.refused_peers + counters_.refused_full; }
    uint64_t malformed() const { return counters_.malformed; }
    uint64_t dropped_slow() const { return counters_.dropped_slow; }
    const std::string& path() const { return options_.path; }
    const SocketOptions& options() const { return options_; }

private:
    struct Client {
        int fd = -1;
        uint32_t uid = 0, gid = 0;
        std::string in;              // bytes received: complete lines from in_start on, then a partial one
        size_t in_start = 0;         // where the next unhandled line begins
        std::string out;             // bytes queued, from out_sent on not yet taken by the kernel
        size_t out_sent = 0;
        uint64_t partial_since = 0;  // when the first byte of the incomplete line arrived (0: none)
        uint64_t last_activity = 0;  // the last byte in, or the last request answered
        uint64_t out_moved = 0;      // when the kernel last took output (or output was first queued)
        bool follower = false;
        bool read_closed = false;    // the peer half-closed: answer what is queued, then close
        bool dead = false;           // to be closed by reap()
    };

    uint64_t clock_now() const;
    void accept_clients(uint64_t now);
    void admit(int fd, uint64_t now);
    void read_client(Client& c, uint64_t now);
    bool has_request(const Client& c) const;
    void handle_requests(const Handler& handler, uint64_t started);
    void handle_some(int id, Client& c, const Handler& handler, uint64_t deadline, bool& first);
    void handle_line(int id, Client& c, std::string_view line, const Handler& handler);
    void expire(uint64_t now);
    void queue(Client& c, const nlohmann::json& reply);
    void queue_raw(Client& c, std::string_view bytes);
    void flush(Client& c);
    void finish_if_done(Client& c);
    void reject_and_close(Client& c, const std::string& error);
    void kill(Client& c);
    void reap();

    SocketOptions options_;
    int listen_fd_ = -1;
    dev_t socket_dev_ = 0;
    ino_t socket_ino_ = 0;
    int next_id_ = 1;
    int next_turn_ = 0;              // round robin: the client id handle_requests() starts from
    bool in_poll_ = false;           // closes wait for poll()'s end, so that a handler never erases a client
    uint64_t accept_paused_until_ = 0;
    size_t live_clients_ = 0;        // clients_ not marked dead
    std::map<int, Client> clients_;  // by client id (never reused, unlike fds)
    SocketCounters counters_;
};

}  // namespace tagwall::control
