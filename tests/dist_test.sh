#!/usr/bin/env bash
# The process group with several local ranks (dist_check): Gloo collectives and the bucketed
# gradient all-reduce against single-process arithmetic, and the failures a job meets: a peer
# that never arrives, a master that never answers, a rank that dies mid-job. Each must end with
# a clear error within the timeout, not hang.
# Environment: DIST_CHECK (the dist_check binary).
set -u
CHECK=${DIST_CHECK:?}
failures=0
passes=0

check() {  # check NAME EXPECTED_STATUS PATTERN MAX_SECONDS -- command...
  local name=$1 expected=$2 pattern=$3 limit=$4
  shift 5
  local output status start elapsed
  start=$(date +%s%N)
  output=$("$@" 2>&1)
  status=$?
  elapsed=$((($(date +%s%N) - start) / 1000000))  # ms
  if [[ $status -ne $expected ]]; then
    echo "FAIL $name: exit $status, expected $expected"; echo "$output" | tail -5
    failures=$((failures + 1))
  elif [[ -n $pattern ]] && ! grep -qE -- "$pattern" <<<"$output"; then
    echo "FAIL $name: output lacks /$pattern/"; echo "$output" | tail -5
    failures=$((failures + 1))
  elif ((elapsed > limit * 1000)); then
    echo "FAIL $name: took ${elapsed} ms, more than ${limit} s"
    failures=$((failures + 1))
  else
    echo "ok   $name (${elapsed} ms)"
    passes=$((passes + 1))
  fi
}

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

check gloo-2-ranks 0 "rank 1 of 2 \(gloo, cpu\).*ok" 60 -- "$CHECK" --backend gloo --nproc 2
check gloo-3-ranks 0 "rank 2 of 3 \(gloo, cpu\).*ok" 60 -- "$CHECK" --backend gloo --nproc 3

# Rank 0 waits for a rank 1 that never comes.
port=$(free_port)
check missing-peer 1 "rank 0 of 2 at 127.0.0.1:$port: not every rank arrived within .*\(3 s\)" 15 -- \
  env RANK=0 WORLD_SIZE=2 MASTER_ADDR=127.0.0.1 MASTER_PORT="$port" "$CHECK" --timeout 3
# Rank 1 looks for a rank 0 that never comes.
port=$(free_port)
check missing-master 1 "rank 1 of 2 at 127.0.0.1:$port: not every rank arrived" 15 -- \
  env RANK=1 WORLD_SIZE=2 MASTER_ADDR=127.0.0.1 MASTER_PORT="$port" "$CHECK" --timeout 3
# Rank 1 dies once the group is formed; rank 0's first collective must fail, not wait forever.
port=$(free_port)
check dead-peer 1 "rank 0: all-reduce failed \(a peer died or stalled" 20 -- bash -c "
  RANK=1 WORLD_SIZE=2 MASTER_ADDR=127.0.0.1 MASTER_PORT=$port '$CHECK' --timeout 5 --exit-rank 1 &
  RANK=0 WORLD_SIZE=2 MASTER_ADDR=127.0.0.1 MASTER_PORT=$port '$CHECK' --timeout 5 --exit-rank 1
  status=\$?; wait; exit \$status"
# Under --nproc the launcher stops the others and passes the dead rank's status on.
check launcher-propagates 3 "rank 1 failed \(exit status 3\)" 30 -- \
  "$CHECK" --nproc 2 --exit-rank 1 --timeout 10
check bad-world-size 2 "WORLD_SIZE=two" 5 -- env WORLD_SIZE=two RANK=0 "$CHECK"
# A launcher killed by a signal (SIGKILL: it can do nothing) takes its ranks down with it rather
# than leaving them to run on: none is alive (or more than a zombie) 10 s after the kill (pgrep:
# procps, which scripts/setup.sh installs).
check ranks-end-with-launcher 0 "ranks gone" 40 -- bash -c '
  "$0" --nproc 2 --hold 60 >/dev/null 2>&1 &
  launcher=$!
  for _ in $(seq 200); do
    ranks=$(pgrep -P "$launcher" | tr "\n" " ")
    [[ $(wc -w <<<"$ranks") -eq 2 ]] && break
    sleep 0.1
  done
  [[ $(wc -w <<<"$ranks") -eq 2 ]] || { echo "the ranks did not start"; exit 1; }
  kill -KILL "$launcher"
  for _ in $(seq 100); do
    alive=0
    for pid in $ranks; do
      state=$(awk "{print \$3}" "/proc/$pid/stat" 2>/dev/null || true)
      [[ -n $state && $state != Z ]] && alive=1
    done
    ((alive)) || { echo "ranks gone"; exit 0; }
    sleep 0.1
  done
  echo "ranks still running: $ranks"; kill -KILL $ranks; exit 1' "$CHECK"

echo "$passes passed, $failures failed"
[[ $failures -eq 0 ]]
