#!/bin/sh
# Starts the workspace's agent inside its namespace, in the background.
# Environment: NS, DIR, INIT_SCRIPT (devmesh_agent.init_script) and
# DEVMESH_AGENT_TOKEN. The agent's output goes to $DIR/agent.log.
set -eu
mkdir -p "$DIR/home"
pidfile=$DIR/agent.pid
log=$DIR/agent.log
if [ -f "$pidfile" ]; then
	kill "$(cat "$pidfile")" 2>/dev/null || true
	rm -f "$pidfile"
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
cd "$DIR/home"
# A session of its own, so that the agent outlives terraform and misses the
# signals sent to terraform's process group. The token stays in the
# environment, off every command line.
setsid ip netns exec "$NS" nohup sh "$DIR/init.sh" >>"$log" 2>&1 </dev/null &
echo $! >"$pidfile"
sleep 1
if ! kill -0 "$(cat "$pidfile")" 2>/dev/null; then
	echo "devmesh agent exited at once; last lines of $log:" >&2
	tail -n 20 "$log" >&2
	exit 1
fi
