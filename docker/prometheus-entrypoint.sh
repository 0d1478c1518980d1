#!/bin/sh
# Prometheus entrypoint for the swarm stack (POSIX sh: busybox in prom/prometheus, dash offline).
# The Docker engine's metrics listen on this node's docker_gwbridge gateway
# (dockerd --metrics-addr GATEWAY:9323, see docs/SWARM.md).  A container on an overlay
# network routes by default through docker_gwbridge, so that gateway is our default route:
# read it from /proc/net/route and write it as a file_sd target.
set -eu
gw=""
while read -r iface dest gateway rest; do
  if [ "$dest" = "00000000" ]; then gw=$gateway; break; fi
done < /proc/net/route
targets=/tmp/docker-engine.json
if [ -n "$gw" ]; then
  # /proc/net/route stores the address as little-endian hex.
  a=$((0x$(echo "$gw" | cut -c7-8))); b=$((0x$(echo "$gw" | cut -c5-6)))
  c=$((0x$(echo "$gw" | cut -c3-4))); d=$((0x$(echo "$gw" | cut -c1-2)))
  printf '[{"targets": ["%s.%s.%s.%s:%s"], "labels": {"node": "%s"}}]\n' \
    "$a" "$b" "$c" "$d" "${DOCKER_METRICS_PORT:-9323}" "$(hostname)" > "$targets"
else
  echo '[]' > "$targets"
fi
exec /bin/prometheus "$@"
