#!/usr/bin/env bash
# The transitwatch lab: a small internet of network namespaces whose kernel
# routers answer real probes. Used by the lab tests (through tests/support),
# the benchmarks and the README demo.
#
#   lab.sh up PREFIX             build the lab; namespaces are named PREFIX-<node>
#   lab.sh down PREFIX           delete every namespace and file of that lab
#   lab.sh route PREFIX ls|za [DEST...]
#                                send traffic for the domestic services (or
#                                only the DEST prefixes) via LS or via ZA
#   lab.sh ecmp PREFIX on|off [DEST...]
#                                on: give r1 two equal-cost next hops for the
#                                domestic services (or the DEST prefixes),
#                                ls2 and za1, hashed per flow on L4 ports
#                                (fib_multipath_hash_policy=1): one flow stays
#                                in LS, another crosses ZA; off: back via LS
#   lab.sh silence PREFIX on|off drop the time-exceeded replies of router ls2
#   lab.sh exec PREFIX NODE CMD  run CMD inside a node (vantage is "v")
#   lab.sh addrs                 print the lab's well-known addresses as KEY=VALUE
#   lab.sh names                 print the lab's PTR names as ADDRESS NAME
#
# Topology (IPv4 198.18.0.0/15 links, IPv6 2001:db8::/32, services in
# 198.51.100.0/24 and 203.0.113.0/24, one nameserver in 198.18.210.0/24):
#
#   v ── r1 ─┬─ ls2 ──────────── gw ── dom   (domestic service, LS)
#            ├─ za1 ── za2 ───── gw          (alternative route via ZA)
#            └─ ie1 ── ie                    (foreign service, IE)
#
# Link N is 198.18.N.0/24 and 2001:db8:N::/64; the left node is .1/::1, the
# right node .2/::2. Routers answer from the address of the interface a probe
# came in on (icmp_errors_use_inbound_ifaddr), as most real routers do.
#
# Geography: v, r1, ls2, gw and dom are in Maseru; za1 and za2 in
# Johannesburg; ie1 and ie in Dublin. The links that leave Maseru carry a
# real one-way delay (DELAYS below) through a delay line (delay_line.py: two
# TUN devices and a queue; this kernel has no netem): r1-za1 and za2-gw
# 2.5 ms each (Maseru-Johannesburg is 370 km, at least 3.7 ms round trip),
# r1-ie1 80 ms (Maseru-Dublin is 9,750 km, at least 97.6 ms round trip).
# The domestic links are plain veth pairs (microseconds). Return traffic
# from gw takes the LS route (rp_filter is off), so hops behind the ZA
# route answer 5 ms further away, the IE hops 160 ms.
#
# Link 3 (ls2-gw) is the LAN of a national exchange in Maseru and link 5
# (za1-za2) the LAN of an exchange in Johannesburg (lab-peeringdb.json).
#
# A DNS server (unbound, when installed) runs at the vantage on DNS_V4 and
# DNS_V6 port 53, as an ISP's recursive resolver would. It answers PTR (and
# forward) queries for every lab address with carrier-style names (NAMES
# below) from local data, and resolves three zones (ZONES below) from their
# own authoritative servers (nsd, when installed), so that resolving a
# service's name can cross other countries than reaching the service does:
#   gov.ls.test    served at home, on dom, from the domestic service range:
#                  queries to it take whatever route the services take (LS,
#                  or ZA after `lab.sh route PREFIX za`);
#   bank.ls.test   served on dom too, but from 198.18.210.0/24, which r1
#                  always sends via ZA (route_set leaves it alone): the
#                  bank is reached at home, its name only through South
#                  Africa;
#   cloud.ie.test  served in Dublin on ie: id.gov.ls.test is a CNAME to
#                  ls-id.cloud.ie.test, a national name whose address and
#                  nameserver are abroad.
# Two more zones are delegated to servers that cannot answer for them
# (FAULT_ZONES), for the faults a daemon must survive: dark.ls.test to an
# address nobody answers (198.18.200.53, dropped on dom), lame.ls.test to
# gov.ls.test's nsd, which refuses it (the resolver then says SERVFAIL).
# Their services' addresses are in the vantage's hosts file, so they are
# traced all the same.
# Every other name is refused; nothing outside the lab is ever asked. The
# vantage's resolv.conf does not point at it: only what is configured to ask
# it does (the tracer reads the vantage's hosts file).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

NODES=(v r1 ls2 gw dom za1 za2 ie1 ie)
# link number, left node, right node
LINKS=(
  "1 v r1"
  "2 r1 ls2"
  "3 ls2 gw"
  "4 r1 za1"
  "5 za1 za2"
  "6 za2 gw"
  "7 gw dom"
  "8 r1 ie1"
  "9 ie1 ie"
)
# link number, one-way delay in ms: the links carried by a delay line
DELAYS=(
  "4 2.5"
  "6 2.5"
  "8 80"
)
# link number, side (1 = left node, 2 = right node), PTR name of that
# address, IPv4 and IPv6 alike. The names follow carriers' conventions: an
# interface, a router, its site (the city's IATA code and a number), the
# country and the operator's domain.
NAMES=(
  "1 1 probe1.msu1.ls.lab-isp.net"
  "1 2 xe-0-0-1.cr1.msu1.ls.lab-isp.net"
  "2 1 xe-0-0-2.cr1.msu1.ls.lab-isp.net"
  "2 2 ae2.core1.msu2.ls.lab-isp.net"
  "3 1 lsix.core1.msu2.ls.lab-isp.net"
  "3 2 lsix-gw.msu.ls.lab-isp.net"
  "4 1 xe-0-0-4.cr1.msu1.ls.lab-isp.net"
  "4 2 ae-1.jnb1.za.lab-transit.net"
  "5 1 ae-2.jnb1.za.lab-transit.net"
  "5 2 be10.jnb2.za.lab-transit.net"
  "6 1 be11.jnb2.za.lab-transit.net"
  "6 2 xe-0-0-6.gw1.msu.ls.lab-isp.net"
  "7 1 xe-0-0-7.gw1.msu.ls.lab-isp.net"
  "7 2 dom1.msu.ls.lab-isp.net"
  "8 1 xe-0-0-8.cr1.msu1.ls.lab-isp.net"
  "8 2 et-0-0-0.dub1.ie.lab-carrier.net"
  "9 1 et-0-0-1.dub1.ie.lab-carrier.net"
  "9 2 shop1.dub1.ie.lab-carrier.net"
)
# The services' own names (also in the vantage's hosts file, where the
# cloud host ls-id.cloud.ie.test goes by its national name id.gov.ls.test)
# and the nameservers' names.
SERVICE_NAMES=(
  "198.51.100.10 portal.gov.ls.test"
  "2001:db8:100::10 portal.gov.ls.test"
  "198.51.100.20 bank.ls.test"
  "203.0.113.10 shop.ie.test"
  "2001:db8:113::10 shop.ie.test"
  "203.0.113.20 ls-id.cloud.ie.test"
  "2001:db8:113::20 ls-id.cloud.ie.test"
  "198.51.100.53 ns1.gov.ls.test"
  "2001:db8:100::53 ns1.gov.ls.test"
  "198.18.210.53 ns1.bank.ls.test"
  "2001:db8:210::53 ns1.bank.ls.test"
  "203.0.113.53 ns1.cloud.ie.test"
  "2001:db8:113::53 ns1.cloud.ie.test"
)
# zone, node, IPv4 and IPv6 address of its one authoritative server (nsd).
# Names under these zones get only PTR records from the vantage's unbound:
# their A and AAAA come from the zone's server (zone_records below).
ZONES=(
  "gov.ls.test dom 198.51.100.53 2001:db8:100::53"
  "bank.ls.test dom 198.18.210.53 2001:db8:210::53"
  "cloud.ie.test ie 203.0.113.53 2001:db8:113::53"
)
# zone, the address its stub points at (none of them answers for it)
FAULT_ZONES=(
  "dark.ls.test 198.18.200.53"
  "lame.ls.test 198.51.100.53"
)
DNS_V4=198.18.0.53
DNS_V6=2001:db8::53

addrs() {
  cat <<'EOF'
VANTAGE_V4=198.18.1.1
VANTAGE_V6=2001:db8:1::1
DOMESTIC_V4=198.51.100.10
DOMESTIC_V6=2001:db8:100::10
DOMESTIC_PREFIX_V4=198.51.100.0/24
FOREIGN_V4=203.0.113.10
FOREIGN_V6=2001:db8:113::10
UNANSWERED_V4=198.18.200.1
SCALE_PREFIX_V4=198.19.0.0/16
UNROUTABLE_V4=192.0.2.1
UNROUTABLE_V6=2001:db8:dead::1
R1_V4=198.18.1.2
LS2_V4=198.18.2.2
GW_VIA_LS_V4=198.18.3.2
ZA1_V4=198.18.4.2
ZA2_V4=198.18.5.2
GW_VIA_ZA_V4=198.18.6.2
IE1_V4=198.18.8.2
R1_V6=2001:db8:1::2
LS2_V6=2001:db8:2::2
GW_VIA_LS_V6=2001:db8:3::2
ZA1_V6=2001:db8:4::2
ZA2_V6=2001:db8:5::2
GW_VIA_ZA_V6=2001:db8:6::2
IE1_V6=2001:db8:8::2
DNS_V4=198.18.0.53
DNS_V6=2001:db8::53
R1_NAME=xe-0-0-1.cr1.msu1.ls.lab-isp.net
LS2_NAME=ae2.core1.msu2.ls.lab-isp.net
GW_VIA_LS_NAME=lsix-gw.msu.ls.lab-isp.net
ZA1_NAME=ae-1.jnb1.za.lab-transit.net
ZA2_NAME=be10.jnb2.za.lab-transit.net
GW_VIA_ZA_NAME=xe-0-0-6.gw1.msu.ls.lab-isp.net
IE1_NAME=et-0-0-0.dub1.ie.lab-carrier.net
ZA_DELAY_MS=2.5
IE_DELAY_MS=80
DOMESTIC_HOST=portal.gov.ls.test
FOREIGN_HOST=shop.ie.test
NS_GOV_V4=198.51.100.53
NS_GOV_V6=2001:db8:100::53
NS_BANK_V4=198.18.210.53
NS_BANK_V6=2001:db8:210::53
NS_CLOUD_V4=203.0.113.53
NS_CLOUD_V6=2001:db8:113::53
CLOUD_V4=203.0.113.20
CLOUD_V6=2001:db8:113::20
CLOUD_HOST=id.gov.ls.test
BANK_HOST=bank.ls.test
EOF
}

ns() { echo "$1-$2"; }
# Where a lab keeps its processes' pid files, logs and configuration.
run_dir() { echo "/run/transitwatch-lab/$1"; }
in_ns() { local p=$1 n=$2; shift 2; ip netns exec "$(ns "$p" "$n")" "$@"; }

sysctls() {
  local p=$1 n=$2
  # Every node forwards, answers every probe without rate limits and accepts
  # asymmetric return paths (the ZA route returns via LS).
  in_ns "$p" "$n" sh -c '
    for kv in \
      net.ipv4.ip_forward=1 \
      net.ipv4.conf.all.rp_filter=0 \
      net.ipv4.conf.default.rp_filter=0 \
      net.ipv4.icmp_ratelimit=0 \
      net.ipv4.icmp_ratemask=0 \
      net.ipv4.icmp_msgs_per_sec=10000000 \
      net.ipv4.icmp_msgs_burst=10000000 \
      net.ipv4.icmp_errors_use_inbound_ifaddr=1 \
      net.ipv4.ping_group_range="0 2147483647" \
      net.ipv6.conf.all.forwarding=1 \
      net.ipv6.conf.default.accept_dad=0 \
      net.ipv6.conf.all.accept_dad=0 \
      net.ipv6.icmp.ratelimit=0; do
      sysctl -qw "$kv" 2>/dev/null || true
    done'
}

# route_set PREFIX ls|za [DEST...]: send traffic for DEST prefixes (default:
# the whole domestic service range, IPv4 and IPv6) via ls2 or via za1.
route_set() {
  local p=$1 via=$2 v4 v6 pfx
  shift 2
  case "$via" in
    ls) v4=198.18.2.2; v6=2001:db8:2::2 ;;
    za) v4=198.18.4.2; v6=2001:db8:4::2 ;;
    *) echo "lab.sh: route must be ls or za, got '$via'" >&2; exit 2 ;;
  esac
  local dests=("$@")
  [ ${#dests[@]} -gt 0 ] || dests=(198.51.100.0/24 198.18.7.0/24 2001:db8:100::/64 2001:db8:7::/64)
  for pfx in "${dests[@]}"; do
    case "$pfx" in
      *:*) in_ns "$p" r1 ip -6 route replace "$pfx" via "$v6" ;;
      *) in_ns "$p" r1 ip route replace "$pfx" via "$v4" ;;
    esac
  done
}

# ecmp_set PREFIX on|off [DEST...]: on, r1 balances traffic for DEST
# prefixes (default: the whole domestic service range, IPv4 and IPv6) over
# ls2 and za1 with equal weight, per flow (addresses, protocol and ports:
# fib_multipath_hash_policy=1; ICMP echo identifiers are not hashed); off,
# sends it via ls2 again.
ecmp_set() {
  local p=$1 on=$2 pfx
  shift 2
  case "$on" in
    on|off) ;;
    *) echo "lab.sh: ecmp must be on or off, got '$on'" >&2; exit 2 ;;
  esac
  local dests=("$@")
  [ ${#dests[@]} -gt 0 ] || dests=(198.51.100.0/24 198.18.7.0/24 2001:db8:100::/64 2001:db8:7::/64)
  if [ "$on" = off ]; then
    route_set "$p" ls "${dests[@]}"
    return
  fi
  in_ns "$p" r1 sysctl -qw net.ipv4.fib_multipath_hash_policy=1
  in_ns "$p" r1 sysctl -qw net.ipv6.fib_multipath_hash_policy=1
  for pfx in "${dests[@]}"; do
    case "$pfx" in
      *:*) in_ns "$p" r1 ip -6 route replace "$pfx" \
             nexthop via 2001:db8:2::2 weight 1 nexthop via 2001:db8:4::2 weight 1 ;;
      *) in_ns "$p" r1 ip route replace "$pfx" \
           nexthop via 198.18.2.2 weight 1 nexthop via 198.18.4.2 weight 1 ;;
    esac
  done
}

up() {
  local p=$1
  down "$p" 2>/dev/null || true
  for n in "${NODES[@]}"; do
    ip netns add "$(ns "$p" "$n")"
    in_ns "$p" "$n" ip link set lo up
    sysctls "$p" "$n"
  done
  mkdir -p "$(run_dir "$p")"
  local l a b ms
  # The delay lines start side by side (each takes an interpreter's start).
  for link in "${LINKS[@]}"; do
    read -r l a b <<<"$link"
    ms=$(delay_of "$l")
    if [ -n "$ms" ]; then
      delay_line "$p" "$l" "$a" "$b" "$ms"
    else
      ip link add "l$l" netns "$(ns "$p" "$a")" type veth peer name "l$l" netns "$(ns "$p" "$b")"
    fi
  done
  for link in "${LINKS[@]}"; do
    read -r l a b <<<"$link"
    [ -z "$(delay_of "$l")" ] || delay_line_wait "$p" "$l"
  done
  for link in "${LINKS[@]}"; do
    read -r l a b <<<"$link"
    in_ns "$p" "$a" ip addr add "198.18.$l.1/24" dev "l$l"
    in_ns "$p" "$b" ip addr add "198.18.$l.2/24" dev "l$l"
    in_ns "$p" "$a" ip -6 addr add "2001:db8:$l::1/64" dev "l$l" nodad
    in_ns "$p" "$b" ip -6 addr add "2001:db8:$l::2/64" dev "l$l" nodad
    in_ns "$p" "$a" ip link set "l$l" up
    in_ns "$p" "$b" ip link set "l$l" up
  done

  # Default routes point back towards the vantage.
  in_ns "$p" v ip route add default via 198.18.1.2
  in_ns "$p" v ip -6 route add default via 2001:db8:1::2
  # 192.0.2.0/24 and 2001:db8:dead::/48 are unroutable from the vantage: the
  # kernel refuses to send there at all.
  in_ns "$p" v ip route add unreachable 192.0.2.0/24
  in_ns "$p" v ip -6 route add unreachable 2001:db8:dead::/48
  local n gw4 gw6
  for spec in "ls2 2" "za1 4" "ie1 8"; do
    read -r n l <<<"$spec"
    in_ns "$p" "$n" ip route add default via "198.18.$l.1"
    in_ns "$p" "$n" ip -6 route add default via "2001:db8:$l::1"
  done
  for spec in "za2 5" "gw 3" "dom 7" "ie 9"; do
    read -r n l <<<"$spec"
    gw4="198.18.$l.1"; gw6="2001:db8:$l::1"
    in_ns "$p" "$n" ip route add default via "$gw4"
    in_ns "$p" "$n" ip -6 route add default via "$gw6"
  done

  # The services: whole prefixes answered by one host (AnyIP), so tests and
  # benchmarks may use as many service addresses as they like.
  in_ns "$p" dom ip route add local 198.51.100.0/24 dev lo
  in_ns "$p" dom ip -6 route add local 2001:db8:100::/64 dev lo
  in_ns "$p" ie ip route add local 203.0.113.0/24 dev lo
  in_ns "$p" ie ip -6 route add local 2001:db8:113::/64 dev lo
  # IPv6 answers errors from an AnyIP address only when it is assigned.
  for a in 2001:db8:100::10 2001:db8:100::20; do
    in_ns "$p" dom ip -6 addr add "$a/128" dev lo
  done
  for a in 2001:db8:113::10 2001:db8:113::20; do
    in_ns "$p" ie ip -6 addr add "$a/128" dev lo
  done
  # The nameservers' addresses are assigned (nsd binds to them, and an AnyIP
  # range does not let it bind IPv6).
  local z a4 a6
  for spec in "${ZONES[@]}"; do
    read -r z n a4 a6 <<<"$spec"
    in_ns "$p" "$n" ip addr add "$a4/32" dev lo
    in_ns "$p" "$n" ip -6 addr add "$a6/128" dev lo nodad
  done

  # Forward routes towards the services.
  in_ns "$p" r1 ip route add 198.18.3.0/24 via 198.18.2.2
  in_ns "$p" r1 ip route add 198.18.5.0/24 via 198.18.4.2
  in_ns "$p" r1 ip route add 198.18.6.0/24 via 198.18.4.2
  in_ns "$p" r1 ip route add 198.18.9.0/24 via 198.18.8.2
  in_ns "$p" r1 ip route add 203.0.113.0/24 via 198.18.8.2
  in_ns "$p" r1 ip -6 route add 2001:db8:3::/64 via 2001:db8:2::2
  in_ns "$p" r1 ip -6 route add 2001:db8:5::/64 via 2001:db8:4::2
  in_ns "$p" r1 ip -6 route add 2001:db8:6::/64 via 2001:db8:4::2
  in_ns "$p" r1 ip -6 route add 2001:db8:9::/64 via 2001:db8:8::2
  in_ns "$p" r1 ip -6 route add 2001:db8:113::/64 via 2001:db8:8::2
  for pfx in 198.51.100.0/24 198.18.7.0/24; do
    in_ns "$p" ls2 ip route add "$pfx" via 198.18.3.2
    in_ns "$p" za1 ip route add "$pfx" via 198.18.5.2
    in_ns "$p" za2 ip route add "$pfx" via 198.18.6.2
  done
  in_ns "$p" za1 ip route add 198.18.6.0/24 via 198.18.5.2
  for pfx in 2001:db8:100::/64 2001:db8:7::/64; do
    in_ns "$p" ls2 ip -6 route add "$pfx" via 2001:db8:3::2
    in_ns "$p" za1 ip -6 route add "$pfx" via 2001:db8:5::2
    in_ns "$p" za2 ip -6 route add "$pfx" via 2001:db8:6::2
  done
  in_ns "$p" za1 ip -6 route add 2001:db8:6::/64 via 2001:db8:5::2
  in_ns "$p" gw ip route add 198.51.100.0/24 via 198.18.7.2
  in_ns "$p" gw ip -6 route add 2001:db8:100::/64 via 2001:db8:7::2
  in_ns "$p" ie1 ip route add 203.0.113.0/24 via 198.18.9.2
  in_ns "$p" ie1 ip -6 route add 2001:db8:113::/64 via 2001:db8:9::2
  # 198.18.210.0/24 (bank.ls.test's nameserver on dom) is routed via ZA
  # always, outside route_set: a domestic name that only resolves through
  # South Africa while the service itself stays on the LS route. Answers
  # return by the default routes, via LS.
  for spec in "r1 4" "za1 5" "za2 6" "gw 7"; do
    read -r n l <<<"$spec"
    in_ns "$p" "$n" ip route add 198.18.210.0/24 via "198.18.$l.2"
    in_ns "$p" "$n" ip -6 route add 2001:db8:210::/64 via "2001:db8:$l::2"
  done
  # 198.19.0.0/16 is a block of 65,534 more domestic service addresses on
  # dom (via the LS route), for scale tests and benchmarks.
  in_ns "$p" dom ip route add local 198.19.0.0/16 dev lo
  in_ns "$p" r1 ip route add 198.19.0.0/16 via 198.18.2.2
  in_ns "$p" ls2 ip route add 198.19.0.0/16 via 198.18.3.2
  in_ns "$p" gw ip route add 198.19.0.0/16 via 198.18.7.2
  # 198.18.200.0/24 is routed to dom, which silently drops it: a target
  # that never answers.
  in_ns "$p" r1 ip route add 198.18.200.0/24 via 198.18.2.2
  in_ns "$p" ls2 ip route add 198.18.200.0/24 via 198.18.3.2
  in_ns "$p" gw ip route add 198.18.200.0/24 via 198.18.7.2
  in_ns "$p" dom ip route add blackhole 198.18.200.0/24

  route_set "$p" ls
  settle "$p"

  # Names inside the lab resolve from files only (ip netns exec bind-mounts
  # /etc/netns/NAME/*); nothing ever asks a real DNS server.
  local etc="/etc/netns/$(ns "$p" v)"
  mkdir -p "$etc"
  cat >"$etc/hosts" <<EOF
127.0.0.1 localhost
::1 localhost
198.51.100.10 portal.gov.ls.test
2001:db8:100::10 portal.gov.ls.test
198.51.100.20 bank.ls.test
203.0.113.10 shop.ie.test
2001:db8:113::10 shop.ie.test
203.0.113.20 id.gov.ls.test
2001:db8:113::20 id.gov.ls.test
198.18.200.1 silent.ls.test
198.51.100.30 www.dark.ls.test
198.51.100.31 www.lame.ls.test
EOF
  echo "nameserver 127.0.0.1" >"$etc/resolv.conf"

  nameservers "$p"
  dns "$p"
}

# The one-way delay of link $1 in ms; empty for a plain veth link.
delay_of() {
  local spec l ms
  for spec in "${DELAYS[@]}"; do
    read -r l ms <<<"$spec"
    if [ "$l" = "$1" ]; then
      echo "$ms"
      return
    fi
  done
}

# delay_line PREFIX LINK LEFT RIGHT MS: start linking LINK as TUN devices
# "lLINK" in both nodes joined by a delay line of MS ms each way.
delay_line() {
  local p=$1 l=$2 a=$3 b=$4 ms=$5 dir
  dir=$(run_dir "$p")
  setsid python3 "$here/delay_line.py" "$(ns "$p" "$a")" "$(ns "$p" "$b")" "l$l" "$ms" \
    "$dir/delay-l$l.pid" </dev/null >>"$dir/delay-l$l.log" 2>&1 &
  echo $! >"$dir/delay-l$l.starting"
}

# delay_line_wait PREFIX LINK: wait until link LINK's devices exist (its
# line writes its pid file then); hang guard 10 s.
delay_line_wait() {
  local p=$1 l=$2 dir pid i
  dir=$(run_dir "$p")
  pid=$(cat "$dir/delay-l$l.starting")
  rm -f "$dir/delay-l$l.starting"
  for i in $(seq 200); do
    [ -s "$dir/delay-l$l.pid" ] && return 0
    alive "$pid" || break
    sleep 0.05
  done
  echo "lab.sh: the delay line of link $l did not start: $(cat "$dir/delay-l$l.log")" >&2
  exit 1
}

# Print "ADDRESS NAME" for every named lab address.
names() {
  local spec l side name
  for spec in "${NAMES[@]}"; do
    read -r l side name <<<"$spec"
    echo "198.18.$l.$side $name"
    echo "2001:db8:$l::$side $name"
  done
  printf '%s\n' "${SERVICE_NAMES[@]}"
}

# The zones' authoritative servers: one nsd per zone of ZONES, in the
# zone's node on its nameserver's two addresses, everything in the run
# directory. Without nsd the zones have no servers (a note on stderr) and
# the vantage's unbound answers their services' names from local data.
nameservers() {
  local p=$1 dir spec z n a4 a6 base
  if ! command -v nsd >/dev/null; then
    echo "lab.sh: nsd is not installed, the lab's zones have no authoritative servers (scripts/setup.sh installs it)" >&2
    return 0
  fi
  dir=$(run_dir "$p")
  for spec in "${ZONES[@]}"; do
    read -r z n a4 a6 <<<"$spec"
    base="$dir/nsd-$z"
    zone_records "$z" "$a4" "$a6" >"$base.zone"
    # No database, no privilege drop, no control channel: the server's whole
    # state is this directory, which down removes.
    cat >"$base.conf" <<EOF
server:
  ip-address: $a4
  ip-address: $a6
  port: 53
  server-count: 1
  username: ""
  chroot: ""
  zonesdir: ""
  database: ""
  zonelistfile: "$base.zonelist"
  xfrdfile: "$base.xfrd"
  xfrdir: "$dir"
  pidfile: ""
  logfile: "$base.log"
  verbosity: 0
remote-control:
  control-enable: no
zone:
  name: "$z"
  zonefile: "$base.zone"
EOF
    # `ip netns exec` and setsid exec: $! is nsd itself (in the foreground
    # it becomes "nsd: xfrd", parent of the rest, and stops them on TERM).
    ip netns exec "$(ns "$p" "$n")" setsid nsd -d -c "$base.conf" </dev/null >>"$base.log" 2>&1 &
    echo $! >"$base.pid"
  done
  for spec in "${ZONES[@]}"; do
    read -r z n a4 a6 <<<"$spec"
    base="$dir/nsd-$z"
    listening "$p" "$n" "$base.pid" "$a4" "$a6" ||
      { echo "lab.sh: nsd for $z did not start: $(cat "$base.log")" >&2; exit 1; }
  done
}

# zone_records ZONE NS_V4 NS_V6: the zone file of ZONE, whose one
# nameserver ns1.ZONE has the addresses NS_V4 and NS_V6.
zone_records() {
  local z=$1 a4=$2 a6=$3
  cat <<EOF
\$ORIGIN $z.
\$TTL 300
@ IN SOA ns1.$z. hostmaster.$z. 1 3600 600 86400 300
@ IN NS ns1.$z.
ns1 IN A $a4
ns1 IN AAAA $a6
EOF
  case "$z" in
    gov.ls.test)
      cat <<'EOF'
portal IN A 198.51.100.10
portal IN AAAA 2001:db8:100::10
id IN CNAME ls-id.cloud.ie.test.
EOF
      ;;
    bank.ls.test) echo "@ IN A 198.51.100.20" ;;
    cloud.ie.test)
      cat <<'EOF'
ls-id IN A 203.0.113.20
ls-id IN AAAA 2001:db8:113::20
EOF
      ;;
  esac
}

# Whether name $1 is in one of the ZONES (served by its own nameserver).
in_zones() {
  local spec z
  for spec in "${ZONES[@]}"; do
    read -r z _ <<<"$spec"
    case "$1" in "$z" | *".$z") return 0 ;; esac
  done
  return 1
}

# listening PREFIX NODE PIDFILE ADDRESS...: wait until the process of
# PIDFILE listens on UDP port 53 of every ADDRESS inside NODE (hang guard:
# 10 s); fails if it exits or does not.
listening() {
  local p=$1 n=$2 file=$3 a i
  shift 3
  local want=$# pats=()
  for a in "$@"; do
    case "$a" in
      *:*) pats+=(-e "[$a]:53") ;;
      *) pats+=(-e "$a:53") ;;
    esac
  done
  for i in $(seq 200); do
    [ "$(in_ns "$p" "$n" ss -Hlnu 'sport = :53' | grep -cF "${pats[@]}")" -ge "$want" ] && return 0
    alive "$(cat "$file")" || return 1
    sleep 0.05
  done
  return 1
}

# The lab's DNS server: unbound at the vantage on DNS_V4 and DNS_V6,
# answering from local data and, when their nsd servers run, resolving the
# ZONES from them. Without unbound the lab has no DNS server (a note on
# stderr; the tests that need one skip).
dns() {
  local p=$1 dir conf addr name spec z n a4 a6 delegated=""
  if ! command -v unbound >/dev/null; then
    echo "lab.sh: unbound is not installed, the lab has no DNS server (scripts/setup.sh installs it)" >&2
    return 0
  fi
  dir=$(run_dir "$p")
  [ -s "$dir/nsd-${ZONES[0]%% *}.pid" ] && delegated=yes
  conf="$dir/unbound.conf"
  in_ns "$p" v ip addr add "$DNS_V4/32" dev lo
  in_ns "$p" v ip -6 addr add "$DNS_V6/128" dev lo nodad
  {
    cat <<EOF
server:
  interface: $DNS_V4
  interface: $DNS_V6
  port: 53
  do-daemonize: no
  chroot: ""
  username: ""
  directory: "$dir"
  pidfile: ""
  use-syslog: no
  logfile: ""
  verbosity: 0
  num-threads: 1
  module-config: "iterator"
  do-not-query-localhost: yes
  access-control: 127.0.0.0/8 allow
  access-control: ::1/128 allow
  access-control: 198.18.0.0/15 allow
  access-control: 2001:db8::/32 allow
  # Local data, and the lab's own zones from their servers: every other
  # name is refused; nothing outside the lab is ever asked.
  local-zone: "." refuse
  local-zone: "18.198.in-addr.arpa." static
  local-zone: "100.51.198.in-addr.arpa." static
  local-zone: "113.0.203.in-addr.arpa." static
  local-zone: "8.b.d.0.1.0.0.2.ip6.arpa." static
  local-zone: "lab-isp.net." static
  local-zone: "lab-transit.net." static
  local-zone: "lab-carrier.net." static
  local-zone: "test." static
EOF
    if [ -n "$delegated" ]; then
      # The zones are resolved, not answered here (transparent: no local
      # data of theirs exists, so every query goes to the stub's server).
      for spec in "${ZONES[@]}" "${FAULT_ZONES[@]}"; do
        read -r z _ <<<"$spec"
        echo "  local-zone: \"$z.\" transparent"
      done
    fi
    while read -r addr name; do
      echo "  local-data-ptr: \"$addr $name\""
      # An A or AAAA here would mask the zone's own answer.
      [ -n "$delegated" ] && in_zones "$name" && continue
      case "$addr" in
        *:*) echo "  local-data: \"$name. AAAA $addr\"" ;;
        *) echo "  local-data: \"$name. A $addr\"" ;;
      esac
    done < <(names)
    if [ -n "$delegated" ]; then
      for spec in "${ZONES[@]}"; do
        read -r z n a4 a6 <<<"$spec"
        printf 'stub-zone:\n  name: "%s."\n  stub-addr: %s\n  stub-addr: %s\n' "$z" "$a4" "$a6"
      done
      for spec in "${FAULT_ZONES[@]}"; do
        read -r z a4 <<<"$spec"
        printf 'stub-zone:\n  name: "%s."\n  stub-addr: %s\n' "$z" "$a4"
      done
    fi
    printf 'remote-control:\n  control-enable: no\n'
  } >"$conf"
  # `ip netns exec` and setsid exec: $! is unbound itself.
  ip netns exec "$(ns "$p" v)" setsid unbound -d -c "$conf" </dev/null >>"$dir/unbound.log" 2>&1 &
  echo $! >"$dir/unbound.pid"
  # Ready once it listens on both addresses.
  listening "$p" v "$dir/unbound.pid" "$DNS_V4" "$DNS_V6" && return 0
  echo "lab.sh: unbound did not start: $(cat "$dir/unbound.log")" >&2
  exit 1
}

# Stop a process of lab PREFIX by its pid file. Its command line must name
# the lab's run directory or namespaces, so a stale pid never hits another
# process.
stop_pid() {
  local p=$1 file=$2 pid i
  [ -s "$file" ] || return 0
  pid=$(cat "$file")
  if tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -e "$(run_dir "$p")" -e "$p-"; then
    kill -TERM "$pid" 2>/dev/null || true
    for i in $(seq 40); do
      alive "$pid" || return 0
      sleep 0.05
    done
    kill -KILL "$pid" 2>/dev/null || true
  fi
}

# Whether process $1 runs (an exited one that its new parent has not reaped
# yet, a zombie, does not). The state follows the command name in
# parentheses, which may hold spaces (nsd renames its processes "nsd: xfrd").
alive() {
  local stat state
  stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
  state=${stat##*) }
  state=${state%% *}
  [ -n "$state" ] && [ "$state" != Z ]
}

# IPv6 on a veth starts only after the kernel has seen its carrier come up
# (linkwatch may take up to a second) and given it a link-local address;
# until then the lab drops IPv6. Wait for every link-local, at most 10 s.
settle() {
  local p=$1 n want have i
  for n in "${NODES[@]}"; do
    want=$(in_ns "$p" "$n" ip -o link show type veth | wc -l)
    for i in $(seq 100); do
      have=$(in_ns "$p" "$n" ip -o -6 addr show scope link -tentative | wc -l)
      [ "$have" -ge "$want" ] && break
      sleep 0.1
    done
    [ "$have" -ge "$want" ] || { echo "lab.sh: IPv6 on $(ns "$p" "$n") did not come up" >&2; exit 1; }
  done
}

silence() {
  local p=$1 on=$2
  in_ns "$p" ls2 nft delete table inet twlab 2>/dev/null || true
  if [ "$on" = on ]; then
    in_ns "$p" ls2 nft -f - <<'EOF'
table inet twlab {
  chain out {
    type filter hook output priority 0; policy accept;
    icmp type time-exceeded drop
    icmpv6 type time-exceeded drop
  }
}
EOF
  fi
}

down() {
  local p=$1 n f dir
  dir=$(run_dir "$p")
  if [ -d "$dir" ]; then
    for f in "$dir"/*.pid "$dir"/*.starting; do
      [ -e "$f" ] && stop_pid "$p" "$f"
    done
  fi
  for n in "${NODES[@]}"; do
    ip netns delete "$(ns "$p" "$n")" 2>/dev/null || true
  done
  rm -rf "/etc/netns/$(ns "$p" v)" "$dir"
}

cmd=${1:-}
case "$cmd" in
  up) up "${2:?prefix}" ;;
  down) down "${2:?prefix}" ;;
  route) p=${2:?prefix}; via=${3:?ls|za}; shift 3; route_set "$p" "$via" "$@" ;;
  silence) silence "${2:?prefix}" "${3:?on|off}" ;;
  ecmp) p=${2:?prefix}; on=${3:?on|off}; shift 3; ecmp_set "$p" "$on" "$@" ;;
  exec) p=${2:?prefix}; n=${3:?node}; shift 3; in_ns "$p" "$n" "$@" ;;
  addrs) addrs ;;
  names) names ;;
  *) echo "usage: lab.sh up|down|route|ecmp|silence|exec|addrs|names ..." >&2; exit 2 ;;
esac
