#!/usr/bin/env bash
# Remote rewards in real runs, served on this machine (docs/rewards.md):
#   - the unified stage trained with the reference server's geneval scorer (scripts/
#     reward_server.py, a remote reward named "judge") logs the built-in geneval's rewards and ends
#     with its weights, bit for bit; so do two ranks, each asking for its own rollouts;
#   - killed past a checkpoint and resumed, the remote run ends as the uninterrupted one;
#   - a server that goes away stops the run at that step: exit 1, a message naming the URL and the
#     step, the steps before it logged and checkpointed, nothing trained on the failed step; and
#     --resume with the server back ends as a run that never stopped.
# Environment: CORL (the binary), SRC (the source tree).
set -u
CORL=${CORL:?} SRC=${SRC:?}
source "$SRC/tests/lib/runs.sh"
SERVERS=()
trap 'for pid in "${SERVERS[@]}"; do kill "$pid" 2>/dev/null; done; rm -rf "$WORK"' EXIT

# Starts a server (python3 SCRIPT ARGS...) on a free port of 127.0.0.1; sets URL.
serve() {  # NAME SCRIPT ARGS...
  local name=$1
  shift
  rm -f "$WORK/$name.port"
  python3 "$@" --port-file "$WORK/$name.port" >"$WORK/$name.server.log" 2>&1 &
  SERVERS+=($!)
  local tries=0
  until [[ -s $WORK/$name.port ]]; do
    sleep 0.05
    tries=$((tries + 1))
    if ((tries > 400)); then
      echo "FAIL $name: the server did not start"
      cat "$WORK/$name.server.log"
      exit 1
    fi
  done
  URL="http://127.0.0.1:$(cat "$WORK/$name.port")/score"
}

# The remote run's metrics equal the built-in run's, reward/judge standing for reward/geneval;
# the final weights are the same bits.
same_as_built_in() {  # NAME BUILT_IN REMOTE
  local name=$1 built_in=$2 remote=$3
  if ! "$PY" - "$built_in" "$remote" <<'PYEOF'; then
import json, sys
def rows(run, rename):
    out = []
    for line in open(run + "/metrics.jsonl"):
        row = json.loads(line)
        row = {rename.get(k, k): v for k, v in row.items()
               if not (k == "time" or k.startswith("time_") or k == "tokens_per_s"
                       or k.startswith("reward/judge/"))}
        out.append(row)
    return out
a = rows(sys.argv[1], {})
b = rows(sys.argv[2], {"reward/judge": "reward/geneval"})
assert a == b, "metrics differ:\n%s\n%s" % (a, b)
assert any("reward/geneval" in r for r in a)
PYEOF
    fail "$name-metrics"
  else
    echo "ok   $name-metrics: the built-in geneval's rewards, advantages and losses"
  fi
  if cmp -s "$built_in/final/model.safetensors" "$remote/final/model.safetensors"; then
    echo "ok   $name-weights: bit for bit"
  else
    fail "$name-weights: final model.safetensors differs from the built-in reward's run"
  fi
}

quiet "$CORL" "${PRETRAIN[@]}" --out "$WORK/pre"
# Every reward of the shipped unified recipe; the server's judge in the built-in geneval's place.
FUNCS=(--set "grpo.max_steps=6")
quiet "$CORL" "${TRAIN[@]}" "${FUNCS[@]}" --out "$WORK/built_in"

serve judge "$SRC/scripts/reward_server.py" --scorer geneval --corl "$CORL" --port 0
JUDGE=("${FUNCS[@]}"
  --set "grpo.reward_funcs=[judge, cycle, tim, accuracy, format, perception, options]"
  --set "reward.remote.judge.url=$URL" --set reward.remote.judge.batch_size=1
  --set reward.remote.judge.timeout_s=60)
quiet "$CORL" "${TRAIN[@]}" "${JUDGE[@]}" --out "$WORK/remote"
same_as_built_in remote "$WORK/built_in" "$WORK/remote"
if grep -q '"reward/judge/correct"' "$WORK/remote/metrics.jsonl"; then
  echo "ok   remote-sub-scores: the server's sub-score is logged"
else
  fail "remote-sub-scores: no reward/judge/correct in metrics.jsonl"
fi

# Two ranks, each scoring its own rollouts, against the built-in reward's two ranks.
DP=(--nproc 2 --set grpo.max_steps=3)
quiet "$CORL" "${TRAIN[@]}" "${DP[@]}" --out "$WORK/built_in_dp"
quiet "$CORL" "${TRAIN[@]}" "${JUDGE[@]}" "${DP[@]}" --out "$WORK/remote_dp"
same_as_built_in remote-two-ranks "$WORK/built_in_dp" "$WORK/remote_dp"

# Killed past a checkpoint, resumed: the uninterrupted remote run's metrics and weights.
if kill_past_checkpoint remote "$WORK/remote_killed" -- "$CORL" "${TRAIN[@]}" "${JUDGE[@]}"; then
  quiet "$CORL" "${TRAIN[@]}" "${JUDGE[@]}" --out "$WORK/remote_killed" --resume
  same_as_whole remote "$WORK/remote" "$WORK/remote_killed" 6
fi

# A server that answers four requests (steps 1-4: one request a step) and goes away.
serve flaky "$SRC/tests/reward_fault_server.py" ok --exit-after 4
DOWN_URL=$URL
FAULT=(--set "grpo.reward_funcs=[judge, accuracy]" --set "grpo.reward_weights=[1, 1]"
  --set reward.remote.judge.retries=1 --set reward.remote.judge.retry_delay_s=0.05)
status=0
"$CORL" "${TRAIN[@]}" "${FAULT[@]}" --set "reward.remote.judge.url=$DOWN_URL" \
  --out "$WORK/down" >"$WORK/down.log" 2>&1 || status=$?
if [[ $status != 1 ]]; then
  fail "server-down: exit $status, expected 1"
  tail -5 "$WORK/down.log"
elif ! grep -q "remote reward 'judge' ($DOWN_URL), step 5: .*tried 2 times.*step 5 was not trained on" \
  "$WORK/down.log"; then
  fail "server-down: the message names no URL and step"
  tail -5 "$WORK/down.log"
else
  echo "ok   server-down: exit 1, $(grep -o "remote reward 'judge'.*" "$WORK/down.log" | head -1)"
fi
if [[ $(last_logged "$WORK/down") == 4 && $(latest_checkpoint "$WORK/down") == 3 &&
  ! -d $WORK/down/final ]]; then
  echo "ok   server-down-state: steps 1-4 logged, checkpoint 3 whole, no final model"
else
  fail "server-down-state: logged $(last_logged "$WORK/down"), checkpoint $(latest_checkpoint "$WORK/down")"
fi
# The same scorer back (a deterministic one): --resume ends as a run that never stopped.
serve steady "$SRC/tests/reward_fault_server.py" ok
quiet "$CORL" "${TRAIN[@]}" "${FAULT[@]}" --set "reward.remote.judge.url=$URL" \
  --out "$WORK/down" --resume
quiet "$CORL" "${TRAIN[@]}" "${FAULT[@]}" --set "reward.remote.judge.url=$URL" \
  --out "$WORK/steady"
same_as_whole server-down-resumed "$WORK/steady" "$WORK/down" 12

[[ $failures -eq 0 ]] && echo "all passed"
[[ $failures -eq 0 ]]
