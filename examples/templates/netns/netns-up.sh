#!/bin/sh
# Creates (or repairs) a workspace's network namespace: a veth pair with a
# /30 of its own, a default route through the host, MASQUERADE for traffic
# leaving through any other interface, and a resolv.conf. Idempotent: run
# again after a partial failure, it finishes the job. Needs root, ip and
# iptables. Environment: NS, HOST_IF, NS_IF, DIR, STATE_DIR, PREFIX,
# NAMESERVERS (see main.tf).
set -eu
for tool in ip iptables; do
	command -v "$tool" >/dev/null 2>&1 || { echo "netns template: $tool is not installed" >&2; exit 1; }
done
[ "$(id -u)" = 0 ] || { echo "netns template: must run as root (the coordinator runs terraform)" >&2; exit 1; }
mkdir -p "$STATE_DIR/slots" "$DIR/home"
chmod 0700 "$DIR"

# A /30 for this workspace: slot N of the /16 (mkdir is atomic, so two
# builds never get the same slot).
if [ -f "$DIR/slot" ]; then
	slot=$(cat "$DIR/slot")
else
	slot=
	i=1
	while [ "$i" -le 16383 ]; do
		if mkdir "$STATE_DIR/slots/$i" 2>/dev/null; then
			echo "$NS" >"$STATE_DIR/slots/$i/owner"
			slot=$i
			break
		fi
		i=$((i + 1))
	done
	[ -n "$slot" ] || { echo "netns template: no free /30 left in $PREFIX.0.0/16" >&2; exit 1; }
	echo "$slot" >"$DIR/slot"
fi
c=$((slot / 64))
d=$(((slot % 64) * 4))
net=$PREFIX.$c.$d/30
host_ip=$PREFIX.$c.$((d + 1))
ns_ip=$PREFIX.$c.$((d + 2))

[ -e "/var/run/netns/$NS" ] || ip netns add "$NS"
if ! ip link show "$HOST_IF" >/dev/null 2>&1; then
	ip link add "$HOST_IF" type veth peer name "$NS_IF" netns "$NS"
fi
ip addr replace "$host_ip/30" dev "$HOST_IF"
ip link set "$HOST_IF" up
ip -n "$NS" link set lo up
if ip -n "$NS" link show "$NS_IF" >/dev/null 2>&1; then
	ip -n "$NS" link set "$NS_IF" name eth0
fi
ip -n "$NS" addr replace "$ns_ip/30" dev eth0
ip -n "$NS" link set eth0 up
ip -n "$NS" route replace default via "$host_ip"

# NAT: the namespace's traffic leaves the host under the host's address.
if [ "$(cat /proc/sys/net/ipv4/ip_forward)" != 1 ] && ! echo 1 >/proc/sys/net/ipv4/ip_forward 2>/dev/null; then
	echo "netns template: warning: cannot enable IP forwarding; the namespace reaches only this host" >&2
fi
tag="devmesh-$NS"
rule() { # rule TABLE CHAIN ARGS...: add the rule unless it is there
	table=$1 chain=$2
	shift 2
	iptables -t "$table" -C "$chain" "$@" -m comment --comment "$tag" 2>/dev/null ||
		iptables -t "$table" -I "$chain" 1 "$@" -m comment --comment "$tag"
}
rule nat POSTROUTING -s "$net" ! -o "$HOST_IF" -j MASQUERADE
rule filter FORWARD -i "$HOST_IF" -j ACCEPT
rule filter FORWARD -o "$HOST_IF" -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT

mkdir -p "/etc/netns/$NS"
: >"/etc/netns/$NS/resolv.conf"
for s in $NAMESERVERS; do
	echo "nameserver $s" >>"/etc/netns/$NS/resolv.conf"
done
echo "$ns_ip" >"$DIR/address"
echo "namespace $NS: $ns_ip/30 behind $host_ip (NAT)"
