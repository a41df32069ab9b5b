#!/bin/sh
# Stops the workspace's agent, then ends every process the workspace
# started: nothing keeps running in a stopped workspace, or in the
# directory a delete removes. Run by a destroy-time local-exec (and by
# start.sh, for an agent left from an earlier start) with DIR (the
# workspace directory).
#
# 1. The agent: SIGTERM (it tells the coordinator it is going), SIGKILL
#    after 10 seconds.
# 2. The rest: with the cgroup start.sh made (root, cgroup v2), every
#    process in it; without one, the agent's process group (the startup
#    script and what it started) and every process whose environment has
#    the workspace's HOME (SSH sessions, which run in sessions of their
#    own). SIGTERM, then SIGKILL after 2 seconds.
set -u
pidfile=$DIR/agent.pid
home=$DIR/home
cg=
[ -f "$DIR/cgroup" ] && cg=$(cat "$DIR/cgroup")
pid=
[ -f "$pidfile" ] && pid=$(cat "$pidfile")

# alive PID: whether PID runs (a zombie does not count).
alive() {
	kill -0 "$1" 2>/dev/null || return 1
	[ -r "/proc/$1/stat" ] || return 0
	state=$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -c1)
	[ "$state" != Z ]
}

if [ -n "$pid" ] && kill "$pid" 2>/dev/null; then
	i=0
	while alive "$pid"; do
		i=$((i + 1))
		if [ "$i" -ge 50 ]; then
			kill -9 "$pid" 2>/dev/null || true
			break
		fi
		sleep 0.2
	done
fi

# strays lists the workspace's processes still running.
strays() {
	if [ -n "$cg" ] && [ -f "$cg/cgroup.procs" ]; then
		cat "$cg/cgroup.procs"
	fi
	if [ -n "$pid" ]; then
		ps -e -o pid= -o pgid= 2>/dev/null | awk -v g="$pid" '$2 == g { print $1 }'
	fi
	if [ -d /proc/self ]; then
		grep -lzxF -- "HOME=$home" /proc/[0-9]*/environ 2>/dev/null | sed -n 's|^/proc/\([0-9]*\)/environ$|\1|p'
	fi
}

# signal SIG: sends SIG to every stray but this script; false if none
# is left.
signal() {
	found=1
	for p in $(strays | sort -u); do
		[ "$p" != "$$" ] || continue
		alive "$p" || continue
		kill "-$1" "$p" 2>/dev/null && found=0
	done
	return $found
}

if signal TERM; then
	i=0
	while signal 0; do
		i=$((i + 1))
		if [ "$i" -ge 10 ]; then
			if [ -n "$cg" ] && [ -f "$cg/cgroup.kill" ]; then
				echo 1 >"$cg/cgroup.kill" 2>/dev/null || true
			fi
			signal KILL || true
		fi
		if [ "$i" -ge 50 ]; then
			echo "stop.sh: processes of the workspace survive SIGKILL: $(strays | sort -u | tr '\n' ' ')" >&2
			break
		fi
		sleep 0.2
	done
fi
if [ -n "$cg" ] && [ -d "$cg" ]; then
	rmdir "$cg" 2>/dev/null || true
	rmdir "$(dirname "$cg")" 2>/dev/null || true
fi
rm -f "$pidfile" "$DIR/cgroup"
