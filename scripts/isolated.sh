#!/bin/sh
# Runs a command (the tests, the benchmarks, the demo) in network and mount namespaces of its own,
# which play "the host" for the pods it starts: CNI networks put their veths, routes, nat rules and
# leases there and nowhere else. Loopback is up and forwarding on, as on a host that routes for its
# pods; host-local's leases (/run/podlog) are on a tmpfs of this namespace. Nothing of the real
# host's network configuration is read or changed, and every mount made below goes with the namespace.
set -eu
# Tests that make networks check that they are not in this one.
PODLOG_OUTER_NETNS=$(readlink /proc/self/ns/net)
export PODLOG_OUTER_NETNS
exec unshare --net --mount --propagation private -- sh -euc '
  ip link set lo up
  sysctl -qw net.ipv4.ip_forward=1
  mkdir -p /run/podlog
  mount -t tmpfs -o mode=0755,size=16m podlog-isolated /run/podlog
  exec "$@"' isolated "$@"
