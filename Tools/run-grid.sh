#!/usr/bin/env bash
# Starts the local grid: grid-eventd (data in $DATA_DIR), grid-master, one grid-agent whose events go to the
# store. Ctrl-C (or SIGTERM) stops the agent (which stops its nodes), then the master, then the store.
set -euo pipefail
DATA_DIR=${DATA_DIR:-./data}
BIN=${BIN:-.build/release}
mkdir -p "$DATA_DIR"
export EVENT_STORAGE="$DATA_DIR/grid-eventd.sock"
export EVENT_SPOOL_DIR="$DATA_DIR/spool"
CONFIG=agent-config.toml
if [ ! -f "$CONFIG" ]; then
  CONFIG="$DATA_DIR/agent-config.toml"
  sed -e "s#^node_binary = .*#node_binary = \"$BIN/grid-eventd\"#" -e "s#^storage_root = .*#storage_root = \"$DATA_DIR/nodes\"#" \
    agent-config.example.toml > "$CONFIG"
fi
pids=()
stop() {
  trap - INT TERM
  echo; echo "stopping the grid..."
  for ((i=${#pids[@]}-1; i>=0; i--)); do kill -TERM "${pids[$i]}" 2>/dev/null || true; wait "${pids[$i]}" 2>/dev/null || true; done
  echo "stopped."
  exit 0
}
trap stop INT TERM
"$BIN/grid-eventd" --data-dir "$DATA_DIR" & pids+=($!)
for _ in $(seq 1 100); do [ -S "$EVENT_STORAGE" ] && break; sleep 0.1; done
"$BIN/grid-master" & pids+=($!)
sleep 1
"$BIN/grid-agent" --config "$CONFIG" & pids+=($!)
sleep 1
cat <<MSG

  The grid is up.
    dashboard      http://127.0.0.1:7780/
    master API     http://127.0.0.1:7000/api/agents
    store socket   $EVENT_STORAGE
  Try, in another terminal:
    $BIN/grid-cli list-agents
    $BIN/grid-cli spawn --agent agent-001 --node node-1 --port 50051 --storage-path node-1          # below storage_root ($DATA_DIR/nodes)
    $BIN/grid-cli list-nodes            # then kill -9 the node's pid and watch it restart
    $BIN/grid-cli query "what happened to node-1"
  Ctrl-C stops everything.

MSG
wait
