#!/usr/bin/env bash
# Train a study's variants with WORKERS one-thread processes pulling from one queue (default 2: on a
# 2-core CPU two one-thread runs do ~1.4x the work of one two-thread run), then write the report.
#   bash experiments/study_workers.sh experiments/blocks_fair_m4c16_x4.yaml [WORKERS]
# Finished variants (run folder or the report's committed variants/*.json) are skipped; an interrupted
# one resumes. Run from the repository root with ../shared/data present (and, for studies on the
# held-out split, after `python experiments/holdout_split.py`).
set -euo pipefail
study=$1
workers=${2:-2}
queue=$(mktemp)
trap 'rm -f "$queue" "$queue.lock"' EXIT
python - "$study" > "$queue" <<'PY'
import sys
from repsr.study import load_study
for v in load_study(sys.argv[1]).variants:
    print(v.name)
PY
export OMP_NUM_THREADS=1
worker() {
  while true; do
    v=$(flock "$queue.lock" bash -c 'v=$(head -n1 "$0"); [ -n "$v" ] && sed -i 1d "$0"; echo "$v"' "$queue")
    [ -z "$v" ] && return 0
    repsr study "$study" --only "$v" > /dev/null
    echo "finished $v ($(date +%T))"
  done
}
for _ in $(seq "$workers"); do worker & done
wait
unset OMP_NUM_THREADS
repsr study "$study"   # nothing left to train: side-by-side costs, reference rows, the report
