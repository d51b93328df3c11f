#!/usr/bin/env bash
# Run one benchmark on two source trees, alternating, N times each: a before/after figure on a noisy machine.
#
#   bench/compare_trees.sh OLD_TREE NEW_TREE N bench/startup_10k.py [ARGS...]
#
# OLD_TREE is typically a worktree of an older commit (git worktree add /tmp/old <commit>); both trees run with this
# checkout's virtualenv. Prints one line per run: the tree, the benchmark's summary line(s), and the process CPU time.
set -euo pipefail
old=$(cd "$1" && pwd); new=$(cd "$2" && pwd); n=$3; shift 3
python=$(cd "$(dirname "$0")/.." && pwd)/.venv/bin/python
run() {
  local tree=$1; shift
  local out
  out=$(cd "$tree" && /usr/bin/time -f "cpu_user=%Us cpu_sys=%Ss" env PYTHONPATH="$tree" "$python" "$@" 2>&1 || true)
  echo "$tree: $(echo "$out" | grep -E '^[a-z_0-9]+: |ratio  |under load|cpu_user' | tr '\n' ' ')"
}
for _ in $(seq "$n"); do
  run "$old" "$@"
  run "$new" "$@"
done
