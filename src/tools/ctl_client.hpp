// tagwallctl's end of the control socket (SPEC §6): connect, send one JSON line, read JSON lines.
//
// Single-threaded, blocking with a deadline: every read and write waits at most the timeout given at
// connect (0: no limit, for `events --follow`).  Failures to reach or to talk to the daemon throw
// CtlConnectError (tagwallctl exits 3 on it); what the daemon answers is the caller's business.
#pragma once

#include <optional>
#include <stdexcept>
#include <string>

namespace tagwall::tools {

// Cannot connect, or the connection broke before a complete answer.  The message names the socket path.
struct CtlConnectError : std::runtime_error {
    using std::runtime_error::runtime_error;
};

class CtlConnection {
public:
    // Connects to the unix socket at `path`; `timeout_s` bounds each later read and write (0: none).
    CtlConnection(const std::string& path, double timeout_s);
    ~CtlConnection();
    CtlConnection(const CtlConnection&) = delete;
    CtlConnection& operator=(const CtlConnection&) = delete;

    // Sends `line` and a '\n'.
    void send_line(const std::string& line);
    // The next line (without its '\n'); nullopt when the daemon closed the connection cleanly.  Throws
    // CtlConnectError on a timeout or an error.  With `interrupted`, the caller keeps SIGINT and SIGTERM
    // (whose handlers set it) blocked: they are let in only while this waits, and it returns nullopt as
    // soon as `*interrupted` is set, so a signal that arrives between two waits is never lost.
    std::optional<std::string> read_line(const volatile bool* interrupted = nullptr);
    // Changes the per-read limit (events --follow waits forever once the stream is acknowledged).
    void set_timeout(double timeout_s);

private:
    std::string path_;
    int fd_ = -1;
    int timeout_ms_ = -1;
    std::string pending_;
};

}  // namespace tagwall::tools
