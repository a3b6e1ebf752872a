#!/usr/bin/env bash
# The main job on the embedded default: a real busybox pod run by podlog (as root), its exit code,
# the pod list and the pod's history from the event log (SQLite in the default data dir).
set -euo pipefail
cd "$(dirname "$0")/.."
bash fixtures/build.sh
uuid_file=$(mktemp)
set +e
bin/podlog run --uuid-file-save "$uuid_file" fixtures/build/aci/busybox-gzip.aci \
  --exec /bin/sh -- -c 'echo "hello from $(hostname), pid $$ in a pod of $(ps | wc -l) processes"; exit 3'
code=$?
set -e
echo "podlog run exited with $code (the app's code)"
bin/podlog list
bin/podlog events --pod "$(cat "$uuid_file")"
rm -f "$uuid_file"
