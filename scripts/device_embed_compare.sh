#!/usr/bin/env bash
# Second device step of docs/embedding.md: the whole command at a larger size (FRAMES_LARGE, default 100000),
# first and second run, and the previous main (wheels/old_main.tar.gz, made with `git archive HEAD`) at
# FRAMES (default 20000), first and second run, on the same machine. Run after scripts/device_embed_bench.sh
# (which installs the wheels); logs to $OUT.
set -uo pipefail
OUT=${OUT:-/tmp/out}
export PYTHONUNBUFFERED=1 PYTHONPATH=$PWD/wheels/shim${PYTHONPATH:+:$PYTHONPATH}
W=${WORKERS:-8}; B=${BATCH:-256}; M=${MODEL:-chgnet-0.3.0}
T=$(mktemp -d)
embed() {  # label, file, numba cache dir
  local s=$(date +%s.%N)
  NUMBA_CACHE_DIR=$3 python3 -m monoculture embed "$2" --model "$M" --out "$T/o.parquet" --device cuda \
    --batch-size "$B" --workers "$W" ${JSON:+--json "$OUT/$1.json"} > "$T/log" 2>&1 || tail -5 "$T/log"
  echo "$1: $(python3 -c "print(f'{$(date +%s.%N) - $s:.1f}')") s; $(tail -1 "$T/log" | cut -c1-60)... $(grep -o '[0-9.]* s ([0-9]* structures/s).*' "$T/log")"
}
python3 -m monoculture synth --like mptrj --frames "${FRAMES_LARGE:-100000}" --mean-atoms 31 --out "$T/large.json" --seed 5 >/dev/null
python3 -m monoculture synth --like mptrj --frames "${FRAMES:-20000}" --mean-atoms 31 --out "$T/small.json" --seed 5 >/dev/null
JSON=1 embed "new_${FRAMES_LARGE:-100000}_first" "$T/large.json" "$T/nc_new"
JSON=1 embed "new_${FRAMES_LARGE:-100000}_second" "$T/large.json" "$T/nc_new"
mkdir -p "$T/old" && tar -xzf wheels/old_main.tar.gz -C "$T/old"
python3 -m pip install -q --no-index --no-deps --no-build-isolation -e "$T/old" 2>&1 | grep -v WARNING | tail -2
(cd "$T" && embed "previous_main_${FRAMES:-20000}_first" "$T/small.json" "$T/nc_old")
(cd "$T" && embed "previous_main_${FRAMES:-20000}_second" "$T/small.json" "$T/nc_old")
python3 -m pip install -q --no-index --no-deps --no-build-isolation -e . 2>&1 | grep -v WARNING | tail -2
