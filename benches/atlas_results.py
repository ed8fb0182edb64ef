#!/usr/bin/env python3
"""Writes a large file of synthetic RIPE Atlas traceroute results (JSON Lines)
for benches/analyze_throughput.sh.

Usage: atlas_results.py OUTPUT SIZE_MB HOME MMDB...

The results look like what the Atlas API publishes, in the firmware mix of
real downloads (see ../shared/data/atlas): about a tenth from old firmware
(4460-4570: no `hop` key, no `lts`/`endtime`), the rest from 4790-5080;
3 replies per hop with `ttl` and `size`; 10-20 hops; silent hops (`x: "*"`),
partly silent hops, per-packet load balancing (two responders at a TTL),
`late` and `dup` replies, MPLS `icmpext` objects, `err`, `edst`, `ittl`, the
hop-255 probe after silence, and a few results whose name never resolved
(no `dst_addr`).

Addresses are public and known to the given MMDB files (drawn at random,
kept when a database locates them), so every lookup of the benchmark finds
a record, and they are grouped by the country the databases give, so that
paths are plausible: every probe is in HOME; about half the paths stay at
home, a quarter cross a neighbour and come back (foreign transit), a quarter
end abroad. Routers repeat across results as they do in real data (probes
share their access network; transit routers are drawn from a pool).

The output is deterministic (fixed seed) and is written until it holds
SIZE_MB megabytes (10^6 bytes), whole lines only.
"""

import ipaddress
import json
import random
import sys

import maxminddb

SEED = 20261126
POOL_V4 = 40000
POOL_V6 = 8000
PROBES = 1500
DESTINATIONS = 4000
V6_SHARE = 0.2
ABROAD = ["NL", "FR", "GB", "US", "AT", "CH", "PL", "SE", "IT", "ES"]


def located(readers, addr):
    for reader in readers:
        try:
            record = reader.get(addr)
        except ValueError:
            continue
        if not record:
            continue
        # Flat (ip-location-db) or nested (MaxMind, `geo build`) layout.
        cc = record.get("country_code") or (record.get("country") or {}).get("iso_code")
        if cc:
            return cc
    return None


def draw_pools(rng, readers):
    """Public addresses the databases locate, by country, per family."""
    pools = {4: {}, 6: {}}
    tries = 0
    found = {4: 0, 6: 0}
    while found[4] < POOL_V4 and tries < POOL_V4 * 20:
        tries += 1
        addr = ipaddress.IPv4Address(rng.getrandbits(32))
        if not addr.is_global or addr.is_multicast:
            continue
        cc = located(readers, str(addr))
        if cc:
            pools[4].setdefault(cc, []).append(str(addr))
            found[4] += 1
    # IPv6: inside the RIRs' big allocations, where most routed space is.
    v6_blocks = [0x2001, 0x2003, 0x2400, 0x2401, 0x2404, 0x2600, 0x2604, 0x2605,
                 0x2800, 0x2803, 0x2a00, 0x2a01, 0x2a02, 0x2a03, 0x2a05, 0x2c0f]
    tries = 0
    while found[6] < POOL_V6 and tries < POOL_V6 * 200:
        tries += 1
        high = rng.choice(v6_blocks)
        addr = ipaddress.IPv6Address((high << 112) | rng.getrandbits(112))
        if not addr.is_global:
            continue
        cc = located(readers, str(addr))
        if cc:
            pools[6].setdefault(cc, []).append(str(addr))
            found[6] += 1
    return pools


class Generator:
    def __init__(self, rng, pools, home):
        self.rng = rng
        self.pools = pools
        self.home = home
        for af in (4, 6):
            if not pools[af].get(home):
                raise SystemExit(f"no IPv{af} address of {home} found; choose another HOME")
        self.abroad = {af: [c for c in ABROAD if c in pools[af] and c != home] for af in (4, 6)}
        self.everywhere = {af: [c for c in pools[af] if c != home] for af in (4, 6)}
        self.probes = []
        for prb in range(PROBES):
            af_access = {
                4: [rng.choice(pools[4][home]) for _ in range(rng.randint(1, 3))],
                6: [rng.choice(pools[6][home]) for _ in range(rng.randint(1, 3))],
            }
            self.probes.append({
                "prb_id": 1000 + prb * 7,
                "gateway4": f"192.168.{rng.randint(0, 255)}.1",
                "gateway6": f"fe80::{rng.getrandbits(16):x}",
                "src4": f"192.168.{rng.randint(0, 255)}.{rng.randint(2, 254)}",
                "from4": rng.choice(pools[4][home]),
                "access": af_access,
                "fw": self.firmware(),
            })
        self.destinations = []
        for i in range(DESTINATIONS):
            kind = rng.random()
            self.destinations.append({
                "name": f"svc{i}.example.{rng.choice(['org', 'net', 'com'])}",
                "kind": "domestic" if kind < 0.5 else ("transit" if kind < 0.75 else "abroad"),
                "msm_id": 5000000 + i,
            })

    def firmware(self):
        r = self.rng.random()
        if r < 0.1:
            return self.rng.choice([4460, 4480, 4520, 4540, 4560, 4570])
        return self.rng.choice([4790, 4900, 5000, 5020, 5040, 5080])

    def addr(self, af, country):
        return self.rng.choice(self.pools[af][country])

    def path(self, probe, dest, af):
        """Router addresses per TTL (None for a router that never answers)
        and the destination address."""
        rng = self.rng
        home = self.home
        hops = [probe["gateway4"] if af == 4 else probe["gateway6"]]
        hops += probe["access"][af]
        length = rng.randint(10, 20)
        middle = length - len(hops) - 1
        if dest["kind"] == "abroad":
            there = rng.choice(self.everywhere[af])
            via = rng.choice(self.abroad[af]) if self.abroad[af] else there
            split = rng.randint(1, max(1, middle - 1))
            routers = [self.addr(af, home) for _ in range(split // 2)]
            routers += [self.addr(af, via) for _ in range(split - split // 2)]
            routers += [self.addr(af, there) for _ in range(middle - split)]
            target = self.addr(af, there)
        elif dest["kind"] == "transit":
            via = rng.choice(self.abroad[af]) if self.abroad[af] else rng.choice(self.everywhere[af])
            out = rng.randint(1, max(1, middle // 3))
            away = rng.randint(1, max(1, middle // 3))
            routers = [self.addr(af, home) for _ in range(out)]
            routers += [self.addr(af, via) for _ in range(away)]
            routers += [self.addr(af, home) for _ in range(max(0, middle - out - away))]
            target = self.addr(af, home)
        else:
            routers = [self.addr(af, home) for _ in range(middle)]
            target = self.addr(af, home)
        return hops + routers, target

    def reply(self, fw, addr, ttl, rtt):
        r = {"from": addr, "ttl": ttl, "size": 76 if ":" not in addr else 96, "rtt": round(rtt, 3)}
        if fw < 4700:
            r.pop("ttl")
        return r

    def result(self, index):
        rng = self.rng
        probe = rng.choice(self.probes)
        dest = rng.choice(self.destinations)
        af = 6 if rng.random() < V6_SHARE else 4
        fw = probe["fw"]
        timestamp = 1600000000 + index * 17
        routers, target = self.path(probe, dest, af)
        reached = rng.random() < 0.7
        rec = {
            "fw": fw,
            "lts": rng.randint(5, 200),
            "endtime": timestamp + rng.randint(2, 60),
            "dst_name": dest["name"],
            "dst_addr": target,
            "src_addr": probe["src4"] if af == 4 else "2001:db8::2",
            "proto": rng.choice(["ICMP", "ICMP", "UDP", "TCP"]),
            "af": af,
            "size": 48,
            "paris_id": rng.randint(1, 16),
            "result": [],
            "msm_id": dest["msm_id"],
            "prb_id": probe["prb_id"],
            "timestamp": timestamp,
            "msm_name": "Traceroute",
            "from": probe["from4"],
            "type": "traceroute",
            "group_id": dest["msm_id"],
        }
        if fw < 4700:
            for key in ("lts", "endtime", "paris_id"):
                rec.pop(key)
        if rng.random() < 0.002:
            # The probe never resolved the name: no address, one error hop.
            rec.pop("dst_addr")
            rec["result"] = [{"error": "name resolution failed: non-recoverable failure in name resolution"}]
            return rec
        rtt = rng.uniform(0.3, 2.0)
        silent_run = 0
        entries = []
        for ttl, router in enumerate(routers, start=1):
            rtt += rng.uniform(0.1, 8.0)
            roll = rng.random()
            if roll < 0.08:
                replies = [{"x": "*"}, {"x": "*"}, {"x": "*"}]
                silent_run += 1
            else:
                silent_run = 0
                replies = []
                other = self.addr(af, self.home) if roll > 0.95 else None
                for n in range(3):
                    if roll < 0.12 and n == 1:
                        replies.append({"x": "*"})
                        continue
                    who = other if (other and n == 2) else router
                    replies.append(self.reply(fw, who, 255 - ttl, rtt + rng.uniform(0, 1.5)))
                if rng.random() < 0.05 and 3 < ttl < len(routers) - 1:
                    for r in replies:
                        if "from" in r:
                            r["icmpext"] = {"version": 2, "rfc4884": 0, "obj": [
                                {"class": 1, "type": 1, "mpls": [
                                    {"label": rng.randint(16, 1048575), "exp": 0, "s": 1, "ttl": 1}]}]}
                if rng.random() < 0.004:
                    replies.append(dict(replies[0], dup=True) if "from" in replies[0] else {"x": "*"})
                if rng.random() < 0.006:
                    replies.append({"from": self.addr(af, self.home), "late": rng.randint(1, 3),
                                    "ttl": 250, "size": 76})
                if rng.random() < 0.003 and "from" in replies[0]:
                    replies[0]["ittl"] = 0
            entry = {"hop": ttl, "result": replies}
            if fw < 4500:
                entry.pop("hop")
            entries.append(entry)
        final_ttl = len(routers) + 1
        if reached:
            rtt += rng.uniform(0.1, 4.0)
            replies = [self.reply(fw, target, 64 - final_ttl, rtt + rng.uniform(0, 1.0)) for _ in range(3)]
            if rec["proto"] == "UDP" and rng.random() < 0.5:
                for r in replies:
                    r["err"] = "P"
            if rng.random() < 0.01:
                replies[0]["edst"] = target
            entries.append({"hop": final_ttl, "result": replies})
        else:
            for extra in range(rng.randint(1, 5)):
                entries.append({"hop": final_ttl + extra, "result": [{"x": "*"}, {"x": "*"}, {"x": "*"}]})
            if rng.random() < 0.3 and fw >= 4500:
                # Atlas' last try at the maximum TTL after silence.
                answer = rng.random() < 0.3
                replies = ([self.reply(fw, target, 60, rtt + 5.0)] + [{"x": "*"}, {"x": "*"}]
                           if answer else [{"x": "*"}, {"x": "*"}, {"x": "*"}])
                entries.append({"hop": 255, "result": replies})
        rec["result"] = entries
        return rec


def main():
    if len(sys.argv) < 5:
        raise SystemExit(__doc__)
    output, size_mb, home, files = sys.argv[1], float(sys.argv[2]), sys.argv[3], sys.argv[4:]
    readers = [maxminddb.open_database(f) for f in files]
    rng = random.Random(SEED)
    pools = draw_pools(rng, readers)
    gen = Generator(rng, pools, home)
    limit = int(size_mb * 1_000_000)
    written = 0
    count = 0
    with open(output, "w", encoding="utf-8") as out:
        while written < limit:
            line = json.dumps(gen.result(count), separators=(",", ":")) + "\n"
            out.write(line)
            written += len(line)
            count += 1
    print(f"{count} results, {written} bytes", file=sys.stderr)


if __name__ == "__main__":
    main()
