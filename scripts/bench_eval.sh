#!/usr/bin/env bash
# Speed of the default evaluation suites: prompts/s of the geneval suite, questions/s of the mcq
# and oe suites, and the wall time of the whole run. Given several checkpoints, the same run twice:
# one checkpoint at a time on run.threads threads, then side by side on one thread each
# (checkpoints_at_once), with the ratio of the two times and whether their figures agree.
#   scripts/bench_eval.sh [CHECKPOINT...] (default runs/pretrain)
set -euo pipefail
cd "$(dirname "$0")/.."
CKPTS=("${@:-runs/pretrain}")
OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT
run() {  # run NAME AT_ONCE: seconds
  local start=$SECONDS
  "${BUILD_DIR:-build}"/corl eval --config configs/eval.yaml --suite all "${CKPTS[@]/#/--ckpt=}" \
    --set report.plotter=none --set checkpoints_at_once="$2" --out "$OUT/$1" >"$OUT/$1.log" 2>&1
  echo $((SECONDS - start))
}
echo "bench_eval: $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) cores"
one=$(run in-turn 1)
grep -hE "prompts in|questions in|overall|accuracy" "$OUT/in-turn.log" | cut -d' ' -f3-
echo "bench_eval: default suites on ${#CKPTS[@]} checkpoint(s) in turn: $one s"
((${#CKPTS[@]} > 1)) || exit 0
both=$(run side-by-side 0)
grep -h "at once" "$OUT/side-by-side.log" | cut -d' ' -f3-
python3 - "$OUT" "$one" "$both" <<'PY'
import json, sys
out, one, both = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
a = json.load(open(f"{out}/in-turn/results.json"))
b = json.load(open(f"{out}/side-by-side/results.json"))
same = all(a[m][s]["items"] == b[m][s]["items"] for m in a for s in a[m] if s != "checkpoint")
print(f"bench_eval: side by side {both} s, {one / both:.2f}x faster; every item "
      + ("the same" if same else "NOT the same (the two runs used different thread counts)"))
PY
