"""Hostile clients of tagwall's control socket (SPEC §6), for tests/cli/ctl-abuse.sh and
tests/e2e/ctl-abuse.sh.  Python 3 standard library only (/usr/bin/python3).

    ctl_abuse.py CASE SOCKET [ARGS...]

Each case plays one kind of abuse against the daemon's unix socket and judges what the daemon did about
it.  It prints one line per observation and a last line `ok: ...` or `FAIL: ...`; exit status 0 when
the daemon behaved as SPEC §6 and src/control/socket_server.hpp say, 1 when it did not, 2 on a usage
error.  Every case bounds its own waiting (WAIT seconds, or the argument it is given), so that a daemon
that stalls makes the case fail instead of hanging the test.

Cases:
  refused                  connect, send a request: expect exactly one error line "permission denied: ..."
                           and the connection closed (run it as a user the daemon does not admit)
  garbage                  binary bytes, NULs, invalid UTF-8, invalid JSON, JSON of the wrong types,
                           unknown commands, deep nesting: one error line each, the connection stays open,
                           and a valid request on it is still answered
  oversized MAX_REQUEST    a complete line longer than MAX_REQUEST, and a 64 MiB stream without any
                           newline: one error line "request too large", then closed, long before 64 MiB
  partial                  half a line then close; half a line then half-close; a request without its
                           newline, then the client hangs: the daemon closes it with "request timeout"
  pipeline N               N requests in one write: N answers, in order
  many N SERVED            N clients connected at once, then each sends a request: SERVED of them are
                           answered, every other one gets "too many clients" and is closed; none hangs
  noreader                 floods requests and never reads: the daemon cuts it off (bounded bytes sent)
  nofollow SECONDS         follows events and never reads: the daemon cuts it off within SECONDS (the
                           test makes events flow meanwhile)
  slowloris N              N clients each sending one byte of a request per second: each is closed with
                           "request timeout" before its request completes
  status                   one {"cmd":"status"} request: ok

Traffic through the appliance while the socket is abused (tests/e2e/ctl-abuse.sh; run in a namespace):
  stream-serve ADDR PORT SEED      accepts one connection and sends a paced pseudo-random stream (seeded)
                                   until the client goes away
  stream-fetch ADDR PORT SEED STOP PROGRESS
                                   connects, checks every byte against the same seeded stream, writes the
                                   byte count to PROGRESS twice a second, stops once the file STOP exists:
                                   `ok: N bytes, every byte as sent`, or FAIL at the first wrong byte or
                                   when nothing arrives for WAIT seconds
  udp-flood ADDR PORT PPS STOP     UDP datagrams at PPS until STOP exists (events for the followers)
"""
import json
import os
import random
import resource
import select
import selectors
import signal
import socket
import sys
import time

WAIT = 30.0  # the longest any single step waits for the daemon


class Failed(Exception):
    pass


def say(text):
    print(text, flush=True)


def connect(path, timeout=WAIT):
    """A blocking connect: it waits while the daemon's listen backlog is full (a non-blocking one would
    fail with EAGAIN there); the callers that open many bound it with an alarm."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(path)
    s.settimeout(timeout)
    return s


def on_alarm(signum, frame):
    raise Failed(f"still connecting after {WAIT:.0f} s: the daemon does not accept")


def bounded(seconds):
    """SIGALRM after `seconds`: raises Failed in whatever blocking call the case is in."""
    signal.signal(signal.SIGALRM, on_alarm)
    signal.alarm(int(seconds))


def send_all(s, data):
    """Sends data; returns the bytes sent before the daemon closed (EPIPE / ECONNRESET)."""
    sent = 0
    view = memoryview(data)
    while sent < len(data):
        try:
            n = s.send(view[sent:])
        except (BrokenPipeError, ConnectionResetError):
            return sent
        sent += n
    return sent


class Reader:
    """Line reader over a socket with a deadline per line."""

    def __init__(self, s):
        self.s = s
        self.buf = b""
        self.eof = False

    def line(self, timeout=WAIT):
        """The next line (bytes, no newline), or None at EOF.  Raises Failed on a timeout."""
        deadline = time.monotonic() + timeout
        while b"\n" not in self.buf:
            if self.eof:
                if self.buf:
                    rest, self.buf = self.buf, b""
                    return rest
                return None
            left = deadline - time.monotonic()
            if left <= 0:
                raise Failed(f"no answer within {timeout:.0f} s (the daemon stalls?)")
            self.s.settimeout(left)
            try:
                chunk = self.s.recv(65536)
            except socket.timeout:
                continue
            except ConnectionResetError:
                chunk = b""
            if not chunk:
                self.eof = True
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return line

    def json(self, timeout=WAIT):
        raw = self.line(timeout)
        if raw is None:
            raise Failed("the daemon closed the connection without an answer")
        try:
            return json.loads(raw)
        except ValueError:
            raise Failed(f"not JSON from the daemon: {raw[:200]!r}")

    def closed(self, timeout=WAIT):
        """True when the daemon closes the connection (EOF) within timeout, after at most stray lines."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            try:
                if self.line(left) is None:
                    return True
            except Failed:
                return False


def expect_error(answer, starts, what):
    """`starts`: the error's beginning, or a tuple of possible beginnings."""
    err = answer.get("error", "") if isinstance(answer, dict) else ""
    if not isinstance(answer, dict) or answer.get("ok") is not False or not err.startswith(starts):
        raise Failed(f"{what}: expected an error starting with {starts!r}, got {answer!r}"[:400])
    say(f"  {what}: {err[:120]}")


def expect_ok(answer, what):
    if not isinstance(answer, dict) or answer.get("ok") is not True:
        raise Failed(f"{what}: expected ok, got {answer!r}"[:400])
    say(f"  {what}: ok")


STATUS = b'{"cmd":"status"}\n'

# --- the cases -------------------------------------------------------------------------------------


def case_status(path):
    s = connect(path)
    s.sendall(STATUS)
    expect_ok(Reader(s).json(), "status")
    s.close()
    return "status answered"


def case_refused(path):
    try:
        s = connect(path)
    except PermissionError as e:
        raise Failed(f"cannot even connect ({e}); this case needs a socket mode that lets this user in")
    send_all(s, STATUS)
    r = Reader(s)
    expect_error(r.json(), "permission denied", f"uid {os.getuid()}")
    if not r.closed():
        raise Failed("the refused connection was not closed")
    return "refused with one error line, then closed"


def garbage_lines():
    """(bytes without the newline, expected error prefix, what)"""
    rnd = random.Random(6)
    binary = bytes(b for b in rnd.randbytes(4096) if b != 10)
    binary_no_nul = bytes(b for b in binary if b != 0)
    deep = b'{"cmd":"status","x":' + b"[" * 20000 + b"]" * 20000 + b"}"
    return [
        (binary, "malformed request", "4 KiB of random binary"),
        (binary_no_nul, "malformed request", "random binary without NULs"),
        (b"\x00" * 100, "malformed request", "NUL bytes"),
        (b'{"cmd":"status"}\x00', "malformed request", "a request followed by a NUL"),
        (b"\xff\xfe\xfd\xc3\x28", "malformed request", "invalid UTF-8"),
        (b'{"cmd":"\xc3\x28"}', "malformed request", "invalid UTF-8 inside a JSON string"),
        (b'{"cmd":', "malformed request", "truncated JSON"),
        (b"{cmd: status}", "malformed request", "not JSON"),
        (b'{"cmd":"status"}{"cmd":"status"}', "malformed request", "two objects on one line"),
        (b"[1, 2, 3]", "malformed request: expected a JSON object", "an array"),
        (b'"status"', "malformed request: expected a JSON object", "a string"),
        (b"null", "malformed request: expected a JSON object", "null"),
        (b"1e999999", "malformed request", "a number out of range"),
        (b"{}", "malformed request", "an object without cmd"),
        (b'{"cmd":5}', "malformed request", "cmd of the wrong type"),
        (b'{"cmd":["status"]}', "malformed request", "cmd as an array"),
        (b'{"cmd":"no-such-command"}', "unknown command", "an unknown command"),
        (b'{"cmd":"status; rm -rf /"}', "unknown command", "shell in a command"),
        (b'{"cmd":"policy","action":"load","file":[1]}', "policy load: which file", "policy load, file of the wrong type"),
        (b'{"cmd":"policy","action":"load","file":"/dev/zero"}', "/dev/zero: invalid", "policy load /dev/zero"),
        (b'{"cmd":"policy","action":"explode"}', "policy: unknown action", "an unknown action"),
        (b'{"cmd":"trace","segment":{},"src":1,"dst":null,"proto":[]}', "trace:", "trace with the wrong types"),
        (b'{"cmd":"flows","filter":{"bogus":"1"}}', "flows: unknown filter", "flows, unknown filter"),
        (b'{"cmd":"endpoint","action":"tag","name":7,"tags":"x"}', "no endpoint named", "endpoint tag, wrong types"),
        (b'{"cmd":"endpoint","action":"untag","name":"client","keys":{"a":1}}', ("endpoint untag:", "no endpoint named"),
         "untag, wrong types"),
        (deep, "malformed request", "JSON nested 20000 deep"),
        (b"[" * 30000, "malformed request", "30000 unclosed brackets"),
        (b'{"cmd":"' + b"A" * 60000 + b'"}', "unknown command", "a 60 KB command name"),
    ]


def case_garbage(path):
    """Every line is tried (on a new connection when the daemon closed the last one), so that one run
    lists every way the daemon got it wrong."""
    s = connect(path)
    r = Reader(s)
    wrong = []
    cases = garbage_lines()
    for line, starts, what in cases:
        try:
            if send_all(s, line + b"\n") != len(line) + 1:
                raise Failed(f"{what}: the daemon closed the connection")
            expect_error(r.json(), starts, what)
        except (Failed, OSError) as e:
            say(f"  WRONG: {e}")
            wrong.append(what)
            s.close()
            s = connect(path)
            r = Reader(s)
    s.sendall(STATUS)
    expect_ok(r.json(), "status on the same connection afterwards")
    s.close()
    if wrong:
        raise Failed(f"{len(wrong)} of {len(cases)} bad requests not answered as expected: {'; '.join(wrong)}")
    return f"{len(cases)} bad requests each got one error line; the connection stayed usable"


def case_oversized(path, max_request):
    max_request = int(max_request)
    # 1. A complete line longer than the limit.
    s = connect(path)
    line = b'{"cmd":"status","pad":"' + b"y" * (max_request + 1000) + b'"}\n'
    send_all(s, line)
    r = Reader(s)
    expect_error(r.json(), "request too large", f"a {len(line)}-byte line")
    if not r.closed():
        raise Failed("not closed after an oversized line")
    # 2. A huge stream without a newline: the daemon must not buffer it.
    s = connect(path)
    s.settimeout(WAIT)
    chunk = b"x" * 65536
    sent, total = 0, 64 << 20
    while sent < total:
        try:
            n = s.send(chunk)
        except (BrokenPipeError, ConnectionResetError):
            break
        except socket.timeout:
            raise Failed(f"the daemon neither reads nor closes (stuck after {sent} bytes)")
        sent += n
    if sent >= total:
        raise Failed(f"the daemon took {total >> 20} MiB without a newline and did not close")
    say(f"  a line without newline: cut off after {sent} bytes were sent (limit {max_request})")
    r = Reader(s)
    first = r.line()
    if first is not None:  # the error line may be lost in the reset; when it arrives it must say why
        expect_error(json.loads(first), "request too large", "the endless line")
    if not r.closed():
        raise Failed("not closed after the endless line")
    return "oversized requests refused and closed"


def case_partial(path):
    # 1. Half a line, then close: nothing to answer, nothing to break.
    s = connect(path)
    s.sendall(b'{"cmd":"sta')
    s.close()
    # 2. Half a line, then half-close: it is the last request, malformed.
    s = connect(path)
    s.sendall(b'{"cmd":"sta')
    s.shutdown(socket.SHUT_WR)
    r = Reader(s)
    expect_error(r.json(), "malformed request", "half a line, then half-close")
    if not r.closed():
        raise Failed("not closed after the half-closed half line")
    # 3. A whole request without its newline, then the client waits: it is not a request yet; the
    #    daemon must not keep the connection forever.
    s = connect(path)
    s.sendall(STATUS.rstrip(b"\n"))
    r = Reader(s)
    expect_error(r.json(timeout=WAIT), "request timeout", "a request without newline, client hangs")
    if not r.closed():
        raise Failed("not closed after the request timeout")
    return "partial lines: answered or timed out, never held"


def case_pipeline(path, n):
    n = int(n)
    reqs = []
    for i in range(n):
        reqs.append(STATUS if i % 2 == 0 else json.dumps({"cmd": f"nope-{i}"}).encode() + b"\n")
    s = connect(path)
    sel = selectors.DefaultSelector()
    data = b"".join(reqs)
    s.setblocking(False)
    r_buf, sent, answers = b"", 0, []
    # One write as far as the kernel takes it; read meanwhile so that the daemon never has to hold
    # more than a socket buffer of answers for us.
    sel.register(s, selectors.EVENT_READ | selectors.EVENT_WRITE)
    deadline = time.monotonic() + WAIT
    while len(answers) < n:
        if time.monotonic() > deadline:
            raise Failed(f"{len(answers)} of {n} answers within {WAIT} s")
        for _, ev in sel.select(1.0):
            if ev & selectors.EVENT_WRITE and sent < len(data):
                try:
                    sent += s.send(data[sent:])
                except BlockingIOError:
                    pass
                if sent == len(data):
                    sel.modify(s, selectors.EVENT_READ)
            if ev & selectors.EVENT_READ:
                chunk = s.recv(1 << 20)
                if not chunk:
                    raise Failed(f"closed after {len(answers)} of {n} answers")
                r_buf += chunk
                *lines, r_buf = r_buf.split(b"\n")
                answers.extend(json.loads(x) for x in lines)
    for i, a in enumerate(answers):
        if i % 2 == 0:
            if a.get("ok") is not True:
                raise Failed(f"answer {i}: expected the status, got {a}")
        elif f"nope-{i}" not in a.get("error", ""):
            raise Failed(f"answer {i} out of order: {a}")
    say(f"  {n} requests in {len(data)} bytes, one write: {n} answers in order")
    s.close()
    return "pipelined requests answered in order"


def raise_fd_limit(n):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = min(hard, max(soft, n + 64))
    resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    if want < n + 16:
        raise Failed(f"this process may open only {want} files; {n} clients need more (ulimit -Hn)")


def case_many(path, n, served):
    n, served = int(n), int(served)
    raise_fd_limit(n)
    bounded(WAIT)
    socks = []
    for i in range(n):
        socks.append(connect(path))  # blocks while the listen backlog is full: the daemon accepts
    signal.alarm(0)
    say(f"  {n} clients connected")
    for s in socks:
        send_all(s, STATUS)
    ok = too_many = 0
    for i, s in enumerate(socks):
        a = Reader(s).json()
        if a.get("ok") is True:
            ok += 1
        elif a.get("error", "").startswith("too many clients"):
            too_many += 1
        else:
            raise Failed(f"client {i}: unexpected answer {a}")
    for s in socks:
        s.close()
    say(f"  {ok} served, {too_many} refused with 'too many clients'")
    if ok != served or too_many != n - served:
        raise Failed(f"expected {served} served and {n - served} refused")
    return f"{n} concurrent clients: {ok} served, {too_many} refused cleanly"


def case_noreader(path):
    s = connect(path)
    s.settimeout(WAIT)
    req = b'{"cmd":"rules"}\n{"cmd":"stats"}\n{"cmd":"status"}\n' * 50
    sent, limit = 0, 256 << 20
    while sent < limit:
        try:
            n = s.send(req)
        except (BrokenPipeError, ConnectionResetError):
            break
        except socket.timeout:
            raise Failed(f"the daemon stopped reading but did not cut us off ({sent} bytes sent)")
        sent += n
    if sent >= limit:
        raise Failed(f"sent {limit >> 20} MiB of requests without reading, still connected")
    say(f"  cut off after {sent} bytes of requests (about {sent * 150 // len(req)} requests) without reading")
    s.close()
    return "a client that never reads is cut off"


def case_nofollow(path, seconds):
    seconds = float(seconds)
    s = connect(path)
    s.sendall(b'{"cmd":"events","follow":true}\n')
    # We never read.  The only way to learn that the daemon cut us: the peer end is gone, which
    # poll() on the socket reports as POLLHUP without our reading anything.
    p = select.poll()
    p.register(s, select.POLLRDHUP if hasattr(select, "POLLRDHUP") else 0)
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        for _, ev in p.poll(500):
            if ev & (select.POLLHUP | getattr(select, "POLLRDHUP", 0)):
                say("  the daemon closed the follower that never reads")
                s.close()
                return "a follower that never reads is cut off"
    raise Failed(f"a follower that never reads was still connected after {seconds:.0f} s")


def case_slowloris(path, n):
    n = int(n)
    raise_fd_limit(n)
    bounded(WAIT)
    socks = [connect(path) for _ in range(n)]
    signal.alarm(0)
    readers = [Reader(s) for s in socks]
    req = STATUS
    pos = 0
    answered, timed_out = 0, 0
    alive = set(range(n))
    deadline = time.monotonic() + WAIT
    while alive and time.monotonic() < deadline:
        # One more byte on each live connection, then a second's pause: the classic slowloris.
        for i in list(alive):
            if pos < len(req) - 1:  # never the final newline: the request never completes
                if send_all(socks[i], req[pos:pos + 1]) == 0:
                    pass
        pos += 1
        time.sleep(1.0)
        for i in list(alive):
            s = socks[i]
            s.setblocking(False)
            try:
                chunk = s.recv(65536)
            except BlockingIOError:
                chunk = None
            except ConnectionResetError:
                chunk = b""
            s.setblocking(True)
            if chunk is None:
                continue
            readers[i].buf += chunk
            if b"\n" in readers[i].buf:
                a = json.loads(readers[i].buf.split(b"\n", 1)[0])
                if a.get("ok") is False and a.get("error", "").startswith("request timeout"):
                    timed_out += 1
                else:
                    answered += 1
                alive.discard(i)
            elif chunk == b"":
                alive.discard(i)
    for s in socks:
        s.close()
    say(f"  {n} slow clients: {timed_out} closed with 'request timeout', {answered} other answers, "
        f"{len(alive)} still open after {WAIT:.0f} s")
    if timed_out != n:
        raise Failed("every slow client must be closed with 'request timeout'")
    return "slowloris clients are timed out"


# --- traffic (run inside the lab's namespaces) -------------------------------------------------------

STREAM_BLOCK = 16384
STREAM_RATE = 1 << 20  # bytes per second: enough to notice a stall, little CPU on a shared machine


def stream_blocks(seed):
    rnd = random.Random(int(seed))
    while True:
        yield rnd.randbytes(STREAM_BLOCK)


def inet(addr):
    return socket.AF_INET6 if ":" in addr else socket.AF_INET


def case_stream_serve(addr, port, seed):
    ls = socket.socket(inet(addr), socket.SOCK_STREAM)
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind((addr, int(port)))
    ls.listen(1)
    s, peer = ls.accept()
    say(f"  stream to {peer}")
    sent = 0
    start = time.monotonic()
    try:
        for block in stream_blocks(seed):
            s.sendall(block)
            sent += len(block)
            ahead = sent / STREAM_RATE - (time.monotonic() - start)
            if ahead > 0:
                time.sleep(ahead)
    except (BrokenPipeError, ConnectionResetError):
        pass
    return f"the client went away after {sent} bytes were sent"


def case_stream_fetch(addr, port, seed, stop, progress):
    s = socket.socket(inet(addr), socket.SOCK_STREAM)
    s.settimeout(WAIT)
    s.connect((addr, int(port)))
    blocks = stream_blocks(seed)
    expected = b""
    got = 0
    last_note = 0.0
    while not os.path.exists(stop):
        try:
            chunk = s.recv(65536)
        except socket.timeout:
            raise Failed(f"nothing arrived for {WAIT:.0f} s after {got} bytes: forwarding stalled")
        if not chunk:
            raise Failed(f"the stream ended after {got} bytes")
        while len(expected) < len(chunk):
            expected += next(blocks)
        if chunk != expected[:len(chunk)]:
            bad = next(i for i in range(len(chunk)) if chunk[i] != expected[i])
            raise Failed(f"byte {got + bad} differs from what the server sent")
        expected = expected[len(chunk):]
        got += len(chunk)
        now = time.monotonic()
        if now - last_note >= 0.5:
            last_note = now
            with open(progress + ".tmp", "w") as f:
                f.write(f"{got}\n")
            os.replace(progress + ".tmp", progress)
    s.close()
    with open(progress, "w") as f:
        f.write(f"{got}\n")
    return f"{got} bytes, every byte as sent"


def case_udp_flood(addr, port, pps, stop):
    s = socket.socket(inet(addr), socket.SOCK_DGRAM)
    interval = 1.0 / float(pps)
    sent = 0
    next_at = time.monotonic()
    while not os.path.exists(stop):
        try:
            s.sendto(b"tagwall ctl-abuse event source %d" % sent, (addr, int(port)))
        except OSError:
            pass  # an ICMP error from an earlier datagram: keep going
        sent += 1
        next_at += interval
        pause = next_at - time.monotonic()
        if pause > 0:
            time.sleep(pause)
    return f"{sent} datagrams"


CASES = {
    "status": case_status,
    "refused": case_refused,
    "garbage": case_garbage,
    "oversized": case_oversized,
    "partial": case_partial,
    "pipeline": case_pipeline,
    "many": case_many,
    "noreader": case_noreader,
    "nofollow": case_nofollow,
    "slowloris": case_slowloris,
    "stream-serve": case_stream_serve,
    "stream-fetch": case_stream_fetch,
    "udp-flood": case_udp_flood,
}


def main(argv):
    if len(argv) < 3 or argv[1] not in CASES:
        print(__doc__, file=sys.stderr)
        return 2
    case, path, args = argv[1], argv[2], argv[3:]
    say(f"{case}:")
    try:
        summary = CASES[case](path, *args)
    except Failed as e:
        say(f"FAIL: {case}: {e}")
        return 1
    except OSError as e:
        say(f"FAIL: {case}: {e}")
        return 1
    say(f"ok: {case}: {summary}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
