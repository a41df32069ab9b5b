#!/bin/sh
# Starts the workspace's agent in the background. Run by local-exec with
# DIR (the workspace directory), INIT_SCRIPT (devmesh_agent.init_script)
# and DEVMESH_AGENT_TOKEN in the environment. Output of this script is
# hidden by terraform (the token makes the provisioner sensitive) unless
# it fails; the agent's own output goes to $DIR/agent.log.
set -eu
mkdir -p "$DIR/home"
pidfile=$DIR/agent.pid
log=$DIR/agent.log

# An agent left from an earlier start (say, a failed stop) goes first,
# with everything it started.
if [ -f "$pidfile" ]; then
	sh "$(dirname "$0")/stop.sh"
fi

printf '%s\n' "$INIT_SCRIPT" >"$DIR/init.sh"
unset INIT_SCRIPT
# The agent keeps its SSH host key and tailnet node in a state directory
# of its own per token: a new token (the coordinator rotates it on a start
# after a stop, and removes the old agent's node) is a new agent, which
# registers afresh instead of reviving the removed node. The SSH host key
# is the workspace's, though: it moves to the new directory, so that SSH
# clients (config-ssh's known hosts) keep trusting the workspace.
key=$(printf '%s' "$DEVMESH_AGENT_TOKEN" | cksum | cut -d' ' -f1)
hostkey=devmesh-agent/ssh_host_ed25519_key
for old in "$DIR"/state/*; do
	[ "$old" != "$DIR/state/$key" ] || continue
	if [ -f "$old/$hostkey" ] && [ ! -f "$DIR/state/$key/$hostkey" ]; then
		(umask 077 && mkdir -p "$DIR/state/$key/devmesh-agent" && cp -p "$old/$hostkey" "$DIR/state/$key/$hostkey")
	fi
	rm -rf -- "$old"
done
XDG_STATE_HOME=$DIR/state/$key
export XDG_STATE_HOME
# ~ is the workspace's home for the agent, its sessions and its startup
# script (the template sets HOME in the agent's env for the last two).
HOME=$DIR/home
export HOME
cd "$DIR/home"

# Everything the workspace starts goes into a cgroup of its own when we
# can make one (root, cgroup v2 mounted writable): stop.sh then ends it
# all, sessions that left the agent's process group included. Its path is
# kept in $DIR/cgroup.
rm -f "$DIR/cgroup"
cg=
cgroot=$(awk '$3 == "cgroup2" { print $2; exit }' /proc/self/mounts 2>/dev/null || true)
if [ "$(id -u)" = 0 ] && [ -n "$cgroot" ] && [ -w "$cgroot" ]; then
	cg=$cgroot/devmesh/$(basename "$DIR")
	if mkdir -p "$cg" 2>/dev/null; then
		printf '%s\n' "$cg" >"$DIR/cgroup"
	else
		cg=
	fi
fi

# A session (and process group) of its own: the agent must outlive
# terraform and not get the signals sent to terraform's process group;
# stop.sh signals the group. The subshell joins the cgroup (writing 0
# moves the writer) and then becomes the agent (exec keeps the pid).
(
	if [ -n "$cg" ]; then
		echo 0 >"$cg/cgroup.procs" || true
	fi
	if command -v setsid >/dev/null 2>&1; then
		exec setsid nohup sh "$DIR/init.sh"
	fi
	exec nohup sh "$DIR/init.sh"
) >>"$log" 2>&1 </dev/null &
echo $! >"$pidfile"

# Fail the build, with the agent's log, if it dies at once (for example
# when devmesh cannot be found or downloaded).
sleep 1
if ! kill -0 "$(cat "$pidfile")" 2>/dev/null; then
	echo "devmesh agent exited at once; last lines of $log:" >&2
	tail -n 20 "$log" >&2
	exit 1
fi
