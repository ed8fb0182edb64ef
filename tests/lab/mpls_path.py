#!/usr/bin/env python3
"""An emulated label-switched path: routers that quote MPLS label stacks.

    mpls_path.py NETNS IFNAME PIDFILE

Opens a TUN device IFNAME in network namespace NETNS (/run/netns/NETNS) and
answers the IPv4 ICMP echo requests and UDP datagrams routed into it the
way a path of routers would, where 192.0.2.1, .2 and .3 are routers and
192.0.2.4 the destination:

- a probe with TTL k below 4 gets an ICMP Time Exceeded from 192.0.2.k
  quoting the probe; the routers at TTL 2 and 3 are inside an LSP, so their
  replies carry an RFC 4884 extension structure holding an RFC 4950 MPLS
  Label Stack object (class 1, c-type 1): the quoted datagram padded to 128
  bytes, the RFC 4884 length field set, the extension checksummed. TTL 2
  quotes two labels (24001 then 16, traffic class 5, bottom of stack), TTL 3
  one (24002). TTL 1 is an ordinary router: no extension;
- a probe with TTL 4 or more gets an answer from 192.0.2.4: an echo reply,
  or for UDP an ICMP port unreachable quoting it.

The kernels of the lab have no mpls_router module, so no Linux router can
add these objects; this file (Python 3 standard library only) writes them
as routers do. It writes PIDFILE once the device exists (the caller then
gives it addresses and routes), stops on SIGTERM, and stops by itself when
the namespace is deleted, so a test that fails leaves no process behind.
"""

import ctypes
import errno
import fcntl
import os
import select
import signal
import struct
import sys

TUNSETIFF = 0x400454CA
IFF_TUN = 0x0001
IFF_NO_PI = 0x1000
CLONE_NEWNET = 0x40000000
# How often the namespace's existence is checked, in seconds.
WATCH_S = 0.5
READ_MAX = 65536

# The path: TTL -> the label stack its router quotes, top first, as
# (label, traffic class, TTL); the bottom-of-stack bit is set on the last.
ROUTERS = {1: [], 2: [(24001, 0, 1), (16, 5, 1)], 3: [(24002, 0, 1)]}
DESTINATION_TTL = 4
NET = bytes([192, 0, 2])
# RFC 4884: the original datagram is padded to (at least) 128 bytes when an
# extension follows it.
ORIGINAL_LEN = 128

libc = ctypes.CDLL(None, use_errno=True)


def checksum(data):
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def ipv4(src, dst, payload):
    header = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(payload), 0, 0, 64, 1, 0, src, dst)
    header = header[:10] + struct.pack("!H", checksum(header)) + header[12:]
    return header + payload


def icmp(kind, code, rest, body):
    message = struct.pack("!BBH", kind, code, 0) + rest + body
    return message[:2] + struct.pack("!H", checksum(message)) + message[4:]


def mpls_extension(stack):
    """An RFC 4884 extension structure with one RFC 4950 object."""
    entries = b""
    for i, (label, tc, ttl) in enumerate(stack):
        bottom = 1 if i == len(stack) - 1 else 0
        entries += struct.pack("!I", (label << 12) | (tc << 9) | (bottom << 8) | ttl)
    obj = struct.pack("!HBB", 4 + len(entries), 1, 1) + entries
    header = struct.pack("!BBH", 0x20, 0, 0)
    structure = header + obj
    return structure[:2] + struct.pack("!H", checksum(structure)) + structure[4:]


def time_exceeded(router, probe, stack):
    if stack:
        original = probe[:ORIGINAL_LEN].ljust(ORIGINAL_LEN, b"\0")
        # Byte 5 of the header: the original datagram's length in words.
        rest = struct.pack("!BBH", 0, ORIGINAL_LEN // 4, 0)
        body = original + mpls_extension(stack)
    else:
        rest = b"\0\0\0\0"
        body = probe[:ORIGINAL_LEN]
    return ipv4(router, probe[12:16], icmp(11, 0, rest, body))


def answer(probe):
    """The reply to one packet read from the device, or None."""
    if len(probe) < 28 or probe[0] >> 4 != 4 or probe[9] not in (1, 17):
        return None
    ihl = (probe[0] & 0xF) * 4
    udp = probe[9] == 17
    if not udp and probe[ihl] != 8:  # of ICMP, only echo requests
        return None
    ttl = probe[8]
    if ttl < DESTINATION_TTL:
        return time_exceeded(NET + bytes([ttl]), probe, ROUTERS[ttl])
    if udp:
        unreachable = icmp(3, 3, b"\0\0\0\0", probe[:ORIGINAL_LEN])
        return ipv4(probe[16:20], probe[12:16], unreachable)
    echo = probe[ihl:]
    return ipv4(probe[16:20], probe[12:16], icmp(0, 0, echo[4:8], echo[8:]))


def setns(fd):
    if libc.setns(fd, CLONE_NEWNET) != 0:
        e = ctypes.get_errno()
        raise OSError(e, f"setns: {os.strerror(e)}")


def main():
    if len(sys.argv) != 4:
        sys.exit("usage: mpls_path.py NETNS IFNAME PIDFILE")
    netns, name, pidfile = sys.argv[1:]
    watched = f"/run/netns/{netns}"
    ns = os.open(watched, os.O_RDONLY | os.O_CLOEXEC)
    setns(ns)
    os.close(ns)
    fd = os.open("/dev/net/tun", os.O_RDWR | os.O_NONBLOCK | os.O_CLOEXEC)
    fcntl.ioctl(fd, TUNSETIFF, struct.pack("16sH22x", name.encode(), IFF_TUN | IFF_NO_PI))

    def on_term(_sig, _frame):
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)
    tmp = f"{pidfile}.tmp"
    with open(tmp, "w") as f:
        f.write(f"{os.getpid()}\n")
    os.rename(tmp, pidfile)

    try:
        serve(fd, watched)
    finally:
        try:
            os.unlink(pidfile)
        except FileNotFoundError:
            pass


def serve(fd, watched):
    """Answer what the device reads until the namespace WATCHED is gone."""
    while os.path.exists(watched):
        ready, _, _ = select.select([fd], [], [], WATCH_S)
        if not ready:
            continue
        while True:
            try:
                packet = os.read(fd, READ_MAX)
            except BlockingIOError:
                break
            reply = answer(packet)
            if reply is None:
                continue
            try:
                os.write(fd, reply)
            except OSError as e:
                if e.errno not in (errno.EIO, errno.ENOBUFS, errno.EAGAIN, errno.EINVAL):
                    raise


if __name__ == "__main__":
    main()
