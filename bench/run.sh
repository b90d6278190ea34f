#!/usr/bin/env bash
# Runs fleetdeck's benchmarks and prints the figures recorded in
# docs/benchmarks.md. Needs Go, tmux and the Consul agent (built on first
# use). Takes about 20 minutes on 2 cores. The inventory and Ansible figures
# have their own commands: go run ./bench/inventory, go run ./bench/ansible.
#
#   ./bench/run.sh            everything
#   NODES=2000 ./bench/run.sh a smaller fleet, for a quick look
set -euo pipefail
cd "$(dirname "$0")/.."
NODES=${NODES:-10000}
out=bench/out
mkdir -p "$out"

echo "# $(date -u +%F) on $(uname -m), $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), load $(cut -d' ' -f1-3 /proc/loadavg)"
FLEETDECK_CONSUL_BIN=${FLEETDECK_CONSUL_BIN:-$(go run ./internal/consulagent/cmd/consulbin)}
export FLEETDECK_CONSUL_BIN

echo
echo "## console (go test -bench, synthetic 10,000-node snapshots)"
go test -run '^$' -bench . -benchmem -count 3 ./tui/ | tee "$out/tui.txt" | grep -E '^Benchmark'

echo
echo "## incident logs (go test -bench: Buffer search/add/memory, local endpoint listing, log simulator backfill)"
go test -run '^$' -bench . -benchmem -count 1 ./logview/ ./internal/logserver/ | tee "$out/logs.txt" | grep -E '^Benchmark'
go test -run '^$' -bench LogSimBackfill -benchtime 1x -count 1 ./internal/fleetsim/ | tee "$out/logsim.txt" | grep -E '^Benchmark'

echo
echo "## change → snapshot latency, requests per change, watcher memory (real Consul, $NODES nodes)"
go run ./bench/latency -nodes "$NODES" -changes 40 2>"$out/latency.log" | tee "$out/latency.txt"

echo
echo "## resident memory of the real console with $NODES nodes (tmux, ps)"
go build -o "$out/fleetdeck" ./cmd/fleetdeck
"$out/fleetdeck" demo --headless --scale --nodes "$NODES" >"$out/demo.log" 2>&1 &
demo=$!
sock=fleetdeck-bench-$$
cleanup() { tmux -L "$sock" kill-server 2>/dev/null || true; kill "$demo" 2>/dev/null || true; wait "$demo" 2>/dev/null || true; }
trap cleanup EXIT
for _ in $(seq 300); do grep -q "running headless" "$out/demo.log" && break; sleep 1; done
addr=$(grep -o 'CONSUL_HTTP_ADDR=[0-9.:]*' "$out/demo.log" | cut -d= -f2)
tmux -L "$sock" new-session -d -s fd -x 200 -y 50 "env CONSUL_HTTP_ADDR=$addr $out/fleetdeck"
want=$((NODES + 1))
for _ in $(seq 300); do tmux -L "$sock" capture-pane -p -t fd | grep -q "nodes $want" && break; sleep 1; done
sleep 20 # let the occasional full check read and the simulation run
pid=$(pgrep -f "^$out/fleetdeck\$" | head -1)
grep -E 'VmRSS|VmHWM' "/proc/$pid/status" | tr -s ' ' | sed 's/^/  fleetdeck console: /'
tmux -L "$sock" capture-pane -p -t fd | head -2 | sed 's/^/  screen: /'

echo
echo "## cold start at $NODES nodes: the real console on a pseudo-terminal vs consul catalog nodes and the UI's fetch (production-mode Consul)"
go run ./bench/coldstart -nodes "$NODES" -runs 5 -shape bench 2>"$out/coldstart.log" | tee "$out/coldstart.txt"
go run ./bench/coldstart -nodes "$NODES" -runs 5 -shape one 2>"$out/coldstart-one.log" | tee "$out/coldstart-one.txt"

echo
echo "## liveness: SIGSTOP/SIGCONT of the agent, a black-holed and healed path (real Consul, times logged by the tests)"
go test -count=1 -v -run 'TestWatcherCallsAFrozenConsulUnresponsiveAndRecovers|TestWatcherRecoversFromABlackHole' ./fleet/ | tee "$out/liveness.txt" | grep -E '→|after'

echo
echo "## lock loss → run killed, against the TTL (SIGSTOP of the agent mid-run, 5 trials)"
FLEETDECK_TEST_LOCKLOSS_TRIALS=5 go test -count=1 -v -run TestLockLostRunKilledBeforeTTL ./provision/ | tee "$out/lockloss.txt" | grep -iE 'trial|lost|gone|ttl' | head -20

echo
echo "## memory of noisy runs: one 50 MB output line, a 20,000-event loop"
FLEETDECK_TEST_LOOP_EVENTS=20000 go test -count=1 -v -timeout 30m -run TestManagerMemoryBoundedOnNoisyRuns ./provision/ | tee "$out/noisy.txt" | grep -iE 'heap|MiB' | head -10

echo
echo "## Cloud Logging tail: fault → stalled, heal → live (default settings)"
go test -run '^$' -bench TailStall -benchtime 1x ./logview/ | tee "$out/tailstall.txt" | grep -E '^Benchmark'
