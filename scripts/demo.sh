#!/usr/bin/env bash
# The main job on the embedded default: a real busybox pod run by podlog (as root), its exit code,
# the pod list and the pod's history from the event log (SQLite in the default data dir). The pod is
# on rkt's default network (CNI ptp), in network and mount namespaces that play the host
# (scripts/isolated.sh), so the demo changes nothing in this machine's network configuration.
set -euo pipefail
cd "$(dirname "$0")/.."
bash fixtures/build.sh
uuid_file=$(mktemp)
set +e
scripts/isolated.sh bin/podlog run --uuid-file-save "$uuid_file" fixtures/build/aci/busybox-gzip.aci \
  --exec /bin/sh -- -c 'echo "hello from $(hostname) at $(ip -4 -o addr show eth0 | awk "{ print \$4 }"), pid $$ in a pod of $(ps | wc -l) processes"; exit 3'
code=$?
set -e
echo "podlog run exited with $code (the app's code)"
bin/podlog list
bin/podlog events --pod "$(cat "$uuid_file")"
rm -f "$uuid_file"
