#!/usr/bin/env bash
# Loads the same ATT&CK bundle with Hindsight and with MITRE's mitreattack-python
# (MitreAttackData), in one run on one machine, and prints time and peak memory of each.
#
#   pip install mitreattack-python==6.3.1
#   cargo build --release
#   bash benches/compare_mitreattack.sh [../shared/attack/enterprise-attack-18.1.json] [runs]
set -euo pipefail
cd "$(dirname "$0")/.."
bundle=${1:-../shared/attack/enterprise-attack-18.1.json}
runs=${2:-3}
bin=target/release/hindsight
[ -x "$bin" ] || { echo "build first: cargo build --release" >&2; exit 1; }
python3 -c 'import mitreattack' 2>/dev/null || { echo "install first: pip install mitreattack-python==6.3.1" >&2; exit 1; }
state=$(mktemp -d); trap 'rm -rf "$state"' EXIT

median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

echo "bundle: $bundle ($(stat -c %s "$bundle") bytes); $runs runs each; $(nproc) cores"
h_time=(); h_rss=(); p_load=(); p_rss=(); p_base=()
for i in $(seq "$runs"); do
  # Hindsight: the whole process (start, stream-parse, index, print) as `catalog info --catalog` runs it.
  /usr/bin/time -o "$state/time" -f "%e %M" "$bin" --state-dir "$state" catalog info --catalog "$bundle" >/dev/null
  out=$(cat "$state/time"); h_time+=("${out% *}"); h_rss+=("${out#* }")
  # mitreattack-python: only the MitreAttackData(...) call is timed (its imports are not);
  # peak RSS is the whole process, and the RSS it had before loading is reported beside it.
  out=$(/usr/bin/time -o "$state/time" -f "%M" python3 - "$bundle" 2>/dev/null <<'PY'
import resource, sys, time
from mitreattack.stix20 import MitreAttackData
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
t = time.perf_counter()
MitreAttackData(sys.argv[1])
print(f"{time.perf_counter() - t:.3f} {base}")
PY
)
  load_base=$(echo "$out" | tail -1)
  p_load+=("${load_base% *}"); p_base+=("${load_base#* }"); p_rss+=("$(cat "$state/time")")
done
ht=$(printf '%s\n' "${h_time[@]}" | median); hr=$(printf '%s\n' "${h_rss[@]}" | median)
pt=$(printf '%s\n' "${p_load[@]}" | median); pr=$(printf '%s\n' "${p_rss[@]}" | median); pb=$(printf '%s\n' "${p_base[@]}" | median)
echo "hindsight catalog info --catalog: median ${ht} s, peak RSS ${hr} KiB (whole process)"
echo "MitreAttackData(bundle):          median ${pt} s, peak RSS ${pr} KiB (whole process; ${pb} KiB before loading)"
awk -v ht="$ht" -v pt="$pt" -v hr="$hr" -v pr="$pr" -v pb="$pb" 'BEGIN {
  printf "speed-up: %.1fx; peak memory: %.1f%% of MitreAttackData (%.1f%% of what its load added)\n", pt/ht, 100*hr/pr, 100*hr/(pr-pb) }'
