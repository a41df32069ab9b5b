#!/bin/sh
# Stops the workspace's agent: SIGTERM, then SIGKILL after 10 seconds.
# Environment: DIR.
set -eu
pidfile=$DIR/agent.pid
[ -f "$pidfile" ] || exit 0
pid=$(cat "$pidfile")
if kill "$pid" 2>/dev/null; then
	i=0
	while kill -0 "$pid" 2>/dev/null; do
		i=$((i + 1))
		if [ "$i" -ge 50 ]; then
			kill -9 "$pid" 2>/dev/null || true
			break
		fi
		sleep 0.2
	done
fi
rm -f "$pidfile"
