#!/usr/bin/env bash
# Starts a replicated grid on loopback: a three-node NATS JetStream cluster, three host grid-eventd's (each its own
# data directory and socket, replicating to NATS as host-1..3), one aggregator grid-eventd serving the dashboard
# (the cluster view), grid-master, and one grid-agent per host whose events go to that host's store.
# Ctrl-C (or SIGTERM) stops everything, agents first, NATS last. Needs nats-server (apt-get install nats-server).
set -euo pipefail
DATA_DIR=${DATA_DIR:-./data/cluster}
BIN=${BIN:-.build/release}
NATS=${NATS:-$(command -v nats-server || echo /usr/sbin/nats-server)}
[ -x "$NATS" ] || { echo "nats-server not found: apt-get install nats-server"; exit 1; }
mkdir -p "$DATA_DIR"
pids=()
stop() {
  trap - INT TERM
  echo; echo "stopping the cluster..."
  for ((i=${#pids[@]}-1; i>=0; i--)); do kill -TERM "${pids[$i]}" 2>/dev/null || true; wait "${pids[$i]}" 2>/dev/null || true; done
  echo "stopped."
  exit 0
}
trap stop INT TERM
wait_for() { for _ in $(seq 1 150); do eval "$1" && return 0; sleep 0.1; done; echo "timed out waiting for: $1"; stop; }

# NATS: client ports 4222-4224, cluster routes 6222-6224, JetStream stores under $DATA_DIR/nats/nN.
ROUTES="nats://127.0.0.1:6222,nats://127.0.0.1:6223,nats://127.0.0.1:6224"
for i in 1 2 3; do
  mkdir -p "$DATA_DIR/nats/n$i"
  "$NATS" -a 127.0.0.1 -p $((4221 + i)) --server_name "n$i" -js -sd "$DATA_DIR/nats/n$i" \
    --cluster_name sgev --cluster "nats://127.0.0.1:$((6221 + i))" --routes "$ROUTES" \
    > "$DATA_DIR/nats/n$i.log" 2>&1 & pids+=($!)
done
URLS="nats://127.0.0.1:4222,nats://127.0.0.1:4223,nats://127.0.0.1:4224"

# The aggregator first (it serves the dashboard on 7780), then the hosts (HTTP on 7781-7783).
mkdir -p "$DATA_DIR/aggregator"
"$BIN/grid-eventd" --data-dir "$DATA_DIR/aggregator" --aggregate "$URLS" --host-id aggregator --http 127.0.0.1:7780 \
  > "$DATA_DIR/aggregator.log" 2>&1 & pids+=($!)
for i in 1 2 3; do
  mkdir -p "$DATA_DIR/host-$i"
  "$BIN/grid-eventd" --data-dir "$DATA_DIR/host-$i" --replicate "$URLS" --host-id "$i" --http "127.0.0.1:$((7780 + i))" \
    > "$DATA_DIR/host-$i.log" 2>&1 & pids+=($!)
done
for i in 1 2 3; do wait_for "[ -S $DATA_DIR/host-$i/grid-eventd.sock ]"; done

EVENT_STORAGE="$DATA_DIR/host-1/grid-eventd.sock" EVENT_SPOOL_DIR="$DATA_DIR/spool-master" \
  "$BIN/grid-master" > "$DATA_DIR/master.log" 2>&1 & pids+=($!)
sleep 1
for i in 1 2 3; do
  sed -e "s#^agent_id = .*#agent_id = \"agent-00$i\"#" -e "s#^listen = .*#listen = \"127.0.0.1:$((7100 + i))\"#" \
      -e "s#^node_binary = .*#node_binary = \"$BIN/grid-eventd\"#" -e "s#^storage_root = .*#storage_root = \"$DATA_DIR/host-$i/nodes\"#" \
      -e "s#^port_range = .*#port_range = \"5${i}000-5${i}999\"#" agent-config.example.toml > "$DATA_DIR/agent-$i.toml"
  EVENT_STORAGE="$DATA_DIR/host-$i/grid-eventd.sock" EVENT_SPOOL_DIR="$DATA_DIR/spool-agent-$i" \
    "$BIN/grid-agent" --config "$DATA_DIR/agent-$i.toml" > "$DATA_DIR/agent-$i.log" 2>&1 & pids+=($!)
done
sleep 1
cat <<MSG

  The replicated grid is up.
    cluster dashboard (aggregator)   http://127.0.0.1:7780/
    host stores                      http://127.0.0.1:7781/ .. :7783/  (sockets $DATA_DIR/host-N/grid-eventd.sock)
    NATS                             $URLS
    master API                       http://127.0.0.1:7000/api/agents
    logs                             $DATA_DIR/*.log
  Try, in another terminal:
    $BIN/grid-cli spawn --agent agent-002 --node node-7 --port 52001 --storage-path node-7
    $BIN/grid-cli list-nodes                       # note node-7's pid, then: kill -9 <pid>
    curl -s 'http://127.0.0.1:7780/api/entities/node-7/events?limit=20'
    curl -s -X POST http://127.0.0.1:7780/api/grid/events/query -d '{"query":"what happened to node-7"}'
    curl -s 'http://127.0.0.1:7780/api/events?entity=host-2&limit=5'    # everything host 2 replicated
    curl -s http://127.0.0.1:7780/api/stats | python3 -m json.tool | sed -n '/aggregation/,\$p'
  Ctrl-C stops everything.

MSG
wait
