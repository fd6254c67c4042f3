#!/usr/bin/env bash
# Start-up time of `atwh`, against `python -c "import typer"` (the floor), with hyperfine.
#
#   . /tmp/dev/bin/activate && [MIN_RUNS=30] [WARMUP=5] bash bench/startup.sh [extra hyperfine options]
#
# Writes bench/results/startup.md and startup.json, prints each command's ratio to the
# floor (goals: --version <= 1.5x, --help <= 2.5x), then the 15 slowest imports (cumulative)
# of `import atwh.cli` and whether graphql, httpx or rich load at start-up (graphql and
# httpx must not). Runs nothing over the network.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
results="$here/results"
mkdir -p "$results"

py="$(command -v python)"
atwh="$(dirname "$py")/atwh"
if [[ ! -x "$atwh" ]]; then
    echo "no atwh beside $py: activate the dev venv first (. /tmp/dev/bin/activate)" >&2
    exit 2
fi
if ! command -v hyperfine >/dev/null; then
    echo "hyperfine is missing: apt-get update && apt-get install -y hyperfine" >&2
    exit 2
fi

# No user config or debug switches in the way. Bytecode cached as an installed atwh has it
# (PYTHONDONTWRITEBYTECODE=1 would recompile src/atwh on every run), kept under results/ so
# src/ stays untouched; the warm-up runs fill it.
export ATWH_CONFIG="$results/no-config.toml" ATWH_CACHE_DIR="$results/cache"
export PYTHONPYCACHEPREFIX="$results/pycache"
unset ATWH_DEBUG ATWH_API_URL ATWH_TOKEN ATWH_WEBHOOK_ID PYTHONDONTWRITEBYTECODE

hyperfine --shell=none --warmup "${WARMUP:-5}" --min-runs "${MIN_RUNS:-30}" \
    --export-markdown "$results/startup.md" \
    --export-json "$results/startup.json" \
    -n floor "$py -c 'import typer'" \
    -n version "$atwh --version" \
    -n help "$atwh --help" \
    "$@"

"$py" - "$results/startup.json" <<'EOF'
import json, sys

runs = {r["command"]: r for r in json.load(open(sys.argv[1]))["results"]}
floor = runs["floor"]["median"]
goals = {"version": 1.5, "help": 2.5}
print(f"\n{'command':<8} {'median ms':>10} {'mean ms':>9} {'± ms':>6} {'x floor':>8}  goal")
for name in ("floor", "version", "help"):
    r = runs[name]
    ratio = r["median"] / floor
    goal = goals.get(name)
    verdict = "" if goal is None else f"<= {goal}x  {'PASS' if ratio <= goal else 'MISS'}"
    print(f"{name:<8} {r['median'] * 1e3:>10.1f} {r['mean'] * 1e3:>9.1f} "
          f"{r['stddev'] * 1e3:>6.1f} {ratio:>7.2f}x  {verdict}")
EOF

echo
echo "python -X importtime -c 'import atwh.cli': top 15 by cumulative time (us)"
trace="$results/importtime-atwh.cli.txt"
"$py" -X importtime -c "import atwh.cli" 2>"$trace"
grep '^import time:' "$trace" | grep -v 'self \[us\]' | sort -t'|' -k2 -n -r | head -15 || true

check_heavy() {  # $1: label, $2: importtime trace
    local found=()
    for mod in gql graphql httpx rich; do
        if grep -Eq "\|[[:space:]]+${mod}(\.|$)" "$2"; then found+=("$mod"); fi
    done
    echo "$1: ${found[*]:-none of gql/graphql/httpx/rich}"
}
echo
echo "Heavy imports at start-up (gql, graphql, httpx must not load):"
check_heavy "  import atwh.cli" "$trace"
for args in --version --help; do
    t="$results/importtime-atwh${args}.txt"
    "$py" -X importtime -m atwh "$args" >/dev/null 2>"$t"
    check_heavy "  atwh $args" "$t"
done
