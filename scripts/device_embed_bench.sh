#!/usr/bin/env bash
# Whole-command embedding benchmark on a GPU machine without network (the device runs of docs/embedding.md).
# Run from the repository root with the wheels of scripts/build_device_wheels.sh under wheels/. Installs them
# and this checkout into the machine's python3, then runs benchmarks/embed_command.py; logs and JSON go to
# $OUT (default /tmp/out). Environment: FRAMES (20000), MODELS ("chgnet-0.3.0 sevennet-0"), WORKERS (8),
# BATCH (256).
set -uo pipefail
OUT=${OUT:-/tmp/out}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1
t0=$(date +%s)
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir wheels/*.whl 2>&1 | grep -v WARNING | tail -3
export PYTHONPATH=$PWD/wheels/shim${PYTHONPATH:+:$PYTHONPATH}
python3 -m pip install -q --no-index --no-deps --no-build-isolation -e . 2>&1 | grep -v WARNING | tail -3
echo "install: $(( $(date +%s) - t0 )) s"
python3 -c "import torch, chgnet, sevenn, monoculture.cli; print('torch', torch.__version__, torch.cuda.get_device_name(), 'cpus', __import__('os').cpu_count())" 2>&1 | tail -2
for m in ${MODELS:-chgnet-0.3.0 sevennet-0}; do
  timeout 270 python3 benchmarks/embed_command.py --device cuda --frames "${FRAMES:-20000}" --batch-size "${BATCH:-256}" \
    --workers "${WORKERS:-8}" --models "$m" --json "$OUT/embed_command_$m.json" 2>&1 | tee "$OUT/embed_command_$m.log"
done
echo "total: $(( $(date +%s) - t0 )) s"
