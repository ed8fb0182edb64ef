#!/usr/bin/env python3
"""A delay line: one lab link with a real propagation delay.

    delay_line.py NS_A NS_B IFNAME DELAY_MS PIDFILE

Opens a TUN device IFNAME in network namespace NS_A and one in NS_B (both
named as `ip netns` names them, /run/netns/NAME) and forwards every IP packet
from one to the other after DELAY_MS milliseconds, both ways. The delay is
fixed, so each direction is a first-in first-out queue: no packet is lost or
reordered by the line itself. The devices exist while this process runs;
lab.sh configures their addresses once PIDFILE appears (written when both
devices exist) and stops the line with SIGTERM. The line also stops by itself
when either namespace is deleted, so a lab torn down without lab.sh leaves no
process behind.

The lab's kernels have no netem; TUN and this file (Python 3.11 standard
library only) give the same effect for the lab's light load.
"""

import collections
import ctypes
import errno
import fcntl
import os
import select
import signal
import struct
import sys
import time

TUNSETIFF = 0x400454CA
IFF_TUN = 0x0001
IFF_NO_PI = 0x1000
CLONE_NEWNET = 0x40000000
# How often the line looks whether its namespaces still exist, in seconds.
WATCH_S = 0.5
# Largest IP packet a TUN read returns (the devices' MTU is 1500).
READ_MAX = 65536

libc = ctypes.CDLL(None, use_errno=True)


def setns(fd):
    if libc.setns(fd, CLONE_NEWNET) != 0:
        e = ctypes.get_errno()
        raise OSError(e, f"setns: {os.strerror(e)}")


def open_tun(name):
    fd = os.open("/dev/net/tun", os.O_RDWR | os.O_NONBLOCK | os.O_CLOEXEC)
    ifr = struct.pack("16sH22x", name.encode(), IFF_TUN | IFF_NO_PI)
    fcntl.ioctl(fd, TUNSETIFF, ifr)
    return fd


def tun_in(netns, name):
    """A TUN device NAME created inside namespace NETNS (its fd stays valid
    in any namespace afterwards)."""
    ns = os.open(f"/run/netns/{netns}", os.O_RDONLY | os.O_CLOEXEC)
    try:
        setns(ns)
        return open_tun(name)
    finally:
        os.close(ns)


def main():
    if len(sys.argv) != 6:
        sys.exit("usage: delay_line.py NS_A NS_B IFNAME DELAY_MS PIDFILE")
    ns_a, ns_b, name, delay_ms, pidfile = sys.argv[1:]
    delay = float(delay_ms) / 1000.0
    if not 0.0 <= delay <= 10.0:
        sys.exit(f"delay_line.py: DELAY_MS must be 0-10000, got {delay_ms}")

    home = os.open("/proc/self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    a = tun_in(ns_a, name)
    b = tun_in(ns_b, name)
    setns(home)
    os.close(home)

    def on_term(_sig, _frame):
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)

    tmp = f"{pidfile}.tmp"
    with open(tmp, "w") as f:
        f.write(f"{os.getpid()}\n")
    os.rename(tmp, pidfile)

    try:
        forward(a, b, delay, [f"/run/netns/{ns_a}", f"/run/netns/{ns_b}"])
    finally:
        try:
            os.unlink(pidfile)
        except FileNotFoundError:
            pass


def forward(a, b, delay, watched):
    """Forward packets between TUN fds A and B after DELAY seconds until a
    path of WATCHED (the namespaces) disappears."""
    # One queue per direction of (due time, packet); the delay is the same
    # for every packet, so arrival order is due order.
    queues = {a: collections.deque(), b: collections.deque()}
    peer = {a: b, b: a}
    next_watch = time.monotonic() + WATCH_S
    while True:
        now = time.monotonic()
        # Send what is due, oldest first on each direction.
        for out, q in queues.items():
            while q and q[0][0] <= now:
                _, packet = q.popleft()
                try:
                    os.write(out, packet)
                except OSError as e:
                    # The device is down or its queue is full: the packet is
                    # lost, as on a real link; the line goes on.
                    if e.errno not in (errno.EIO, errno.ENOBUFS, errno.EAGAIN, errno.EINVAL):
                        raise
        if now >= next_watch:
            if not all(os.path.exists(p) for p in watched):
                break
            next_watch = now + WATCH_S
        due = [q[0][0] for q in queues.values() if q]
        wake = min(due + [next_watch])
        ready, _, _ = select.select([a, b], [], [], max(0.0, wake - time.monotonic()))
        for fd in ready:
            due_at = time.monotonic() + delay
            q = queues[peer[fd]]
            while True:
                try:
                    packet = os.read(fd, READ_MAX)
                except BlockingIOError:
                    break
                except OSError as e:
                    if e.errno == errno.EIO:  # device not up yet
                        break
                    raise
                q.append((due_at, packet))


if __name__ == "__main__":
    main()
