#!/usr/bin/env bash
# Builds Examples/instrumented-service (an outside package that links only EventEmitter), checks that the binary
# needs neither liblz4 nor libxxhash, runs it against a real grid-eventd in a temporary directory and checks
# through the HTTP API that every event it printed was stored. Bounded in time; cleans up after itself.
# Usage: Tools/check-example.sh [BIN]   (BIN: where grid-eventd is, default .build/debug)
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${1:-.build/debug}
SWIFT=${SWIFT:-swift}

(cd Examples/instrumented-service && timeout 1200 "$SWIFT" build)
EXAMPLE=Examples/instrumented-service/.build/debug/instrumented-service

# The emitter links no storage engine: no liblz4, no libxxhash (xxHash is compiled in from its header).
if ldd "$EXAMPLE" | grep -E 'liblz4|libxxhash'; then
    echo "check-example: $EXAMPLE links a C library of the storage engine" >&2
    exit 1
fi

work=$(mktemp -d /tmp/grid-example.XXXXXX)
daemon=""
cleanup() {
    if [ -n "$daemon" ]; then kill "$daemon" 2>/dev/null || true; wait "$daemon" 2>/dev/null || true; fi
    rm -rf "$work"
}
trap cleanup EXIT

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"$BIN/grid-eventd" --data-dir "$work/data" --socket "$work/eventd.sock" --http "127.0.0.1:$port" \
    --log-level warning 2>"$work/eventd.log" &
daemon=$!
for _ in $(seq 200); do
    [ -S "$work/eventd.sock" ] && curl -sf "http://127.0.0.1:$port/api/stats" >/dev/null && break
    sleep 0.1
done
[ -S "$work/eventd.sock" ] || { echo "check-example: grid-eventd did not start" >&2; cat "$work/eventd.log" >&2; exit 1; }

EVENT_STORAGE="unix://$work/eventd.sock" EVENT_SPOOL_DIR="$work/spool" timeout 60 "$EXAMPLE" >"$work/ids"
count=$(wc -l <"$work/ids")
[ "$count" -eq 4 ] || { echo "check-example: expected 4 event ids, got $count" >&2; cat "$work/ids" >&2; exit 1; }
while read -r id; do
    body=$(curl -sf "http://127.0.0.1:$port/api/events/$id") || { echo "check-example: $id not stored" >&2; exit 1; }
    grep -q "\"$id\"" <<<"$body" || { echo "check-example: $id answered with $body" >&2; exit 1; }
done <"$work/ids"
grep -q checkout_completed "$work/ids" || { echo "check-example: no custom event id" >&2; exit 1; }
echo "check-example: 4 events from an outside package stored and read back; no liblz4/libxxhash linked"
