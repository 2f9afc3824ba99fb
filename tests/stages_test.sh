#!/usr/bin/env bash
# scripts/lib/stages.sh, the pipelines' stage runner: a finished stage is reused for the same
# command and recipe, redone (with everything after it) when either changes, never stamped when it
# fails, and always redone under FRESH=1.
set -euo pipefail
SRC=${SRC:-$(cd "$(dirname "$0")/.." && pwd)}
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
cd "$WORK"
fail() { echo "FAIL: $*" >&2; exit 1; }

# A stand-in stage program: appends its name to a log each time it really runs.
run_step() { echo "$1" >>ran.log; mkdir -p "$2"; echo done >"$2/out"; }
pipeline() {
  STAGE_CHAIN=seed
  source "$SRC/scripts/lib/stages.sh"
  STAGE_CHAIN=seed
  stage a a.yaml run_step a a >/dev/null
  stage b b.yaml run_step b b >/dev/null
}
ran() { tr '\n' ' ' <ran.log; }

echo x: 1 >a.yaml
echo y: 1 >b.yaml
(pipeline)
[[ $(ran) == "a b " ]] || fail "first run: $(ran)"
(pipeline)
[[ $(ran) == "a b " ]] || fail "a re-run redid finished stages: $(ran)"
echo y: 2 >b.yaml
(pipeline)
[[ $(ran) == "a b b " ]] || fail "a changed recipe of the last stage: $(ran)"
echo x: 2 >a.yaml
(pipeline)
[[ $(ran) == "a b b a b " ]] || fail "a changed first recipe must redo what follows: $(ran)"
(FRESH=1 pipeline)
[[ $(ran) == "a b b a b a b " ]] || fail "FRESH=1: $(ran)"

# A failing stage leaves no stamp, so the next run does it again; its stale folder is removed.
: >ran.log
broken() { echo "$1" >>ran.log; mkdir -p "$2"; echo partial >"$2/out"; return 3; }
(
  source "$SRC/scripts/lib/stages.sh"
  stage c - broken c c >/dev/null
) && fail "a failing stage must fail the pipeline"
[[ ! -f c/.stage ]] || fail "a failed stage was stamped"
(
  source "$SRC/scripts/lib/stages.sh"
  stage c - run_step c c >/dev/null
)
[[ $(cat c/out) == done && -f c/.stage ]] || fail "the failed stage was not redone"
echo "stages_test: ok"
