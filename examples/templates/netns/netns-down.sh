#!/bin/sh
# Removes a workspace's network namespace and everything netns-up.sh made:
# processes still inside are killed (TERM, then KILL), the NAT rules, the
# veth pair, the namespace, its resolv.conf, its subnet slot and the
# workspace directory. Idempotent. Environment: NS, HOST_IF, DIR, STATE_DIR.
set -eu
if [ -e "/var/run/netns/$NS" ]; then
	pids=$(ip netns pids "$NS" 2>/dev/null || true)
	if [ -n "$pids" ]; then
		kill $pids 2>/dev/null || true
		i=0
		while [ -n "$(ip netns pids "$NS" 2>/dev/null || true)" ] && [ "$i" -lt 50 ]; do
			sleep 0.2
			i=$((i + 1))
		done
		pids=$(ip netns pids "$NS" 2>/dev/null || true)
		[ -z "$pids" ] || kill -9 $pids 2>/dev/null || true
	fi
fi
tag="devmesh-$NS"
for table in nat filter; do
	iptables -t "$table" -S 2>/dev/null | grep -F -- "--comment $tag " | sed 's/^-A /-D /' | while read -r spec; do
		# shellcheck disable=SC2086 # spec is iptables' own words, no quoting
		iptables -t "$table" $spec || true
	done
done
ip link del "$HOST_IF" 2>/dev/null || true
[ ! -e "/var/run/netns/$NS" ] || ip netns del "$NS"
rm -rf "/etc/netns/$NS"
if [ -f "$DIR/slot" ]; then
	rm -rf "$STATE_DIR/slots/$(cat "$DIR/slot")"
fi
rm -rf -- "$DIR"
