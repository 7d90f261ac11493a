#!/usr/bin/env bash
# Wheels for running `monoculture embed` with CHGNet and SevenNet on a GPU machine that has no network but has
# Python 3.12 with torch, torch-geometric, e3nn, numpy, scipy, pandas, pyarrow, numba and scikit-learn (the
# device image described in docs/embedding.md). Downloads into wheels/ (ignored by git), pins the versions of
# this checkout's .venv, and shrinks the sevenn wheel by dropping the checkpoints that are not run.
#
# Usage: scripts/build_device_wheels.sh [DEST=wheels] [KEEP_SEVENNET=SevenNet_0__11Jul2024]
# On the device (scripts/device_embed_bench.sh does this): python3 -m pip install --no-index --no-deps wheels/*.whl
# (into the machine's python3, not --target: pymatgen and pymatgen-core share the pymatgen/ folder), then
# PYTHONPATH=wheels/shim python3 -m pip install --no-index --no-deps --no-build-isolation -e .
# See docs/embedding.md, "Running on a GPU machine without network".
set -euo pipefail
DEST=$(realpath -m "${1:-wheels}")
KEEP=${2:-SevenNet_0__11Jul2024}
VENV_PY=$(realpath -s "${VENV_PY:-.venv/bin/python}")
mkdir -p "$DEST" "$DEST/shim"
ver() { "$VENV_PY" -c "import importlib.metadata as m; print(m.version('$1'))" 2>/dev/null; }
PKGS=(chgnet pymatgen pymatgen-core monty ruamel.yaml ruamel.yaml.clib spglib uncertainties orjson palettable
      ase ijson sevenn matscipy braceexpand)
SPECS=()
for p in "${PKGS[@]}"; do v=$(ver "$p") && SPECS+=("$p==$v") || echo "skipped $p (not installed here)"; done
python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
  --platform manylinux2014_x86_64 --platform manylinux1_x86_64 --platform any -d "$DEST" "${SPECS[@]}"
# chgnet imports nvidia_smi, published only as the nvidia-ml-py3 source archive: carry its one file.
"$VENV_PY" - "$DEST/shim" <<'PY'
import shutil, sys, nvidia_smi
shutil.copy(nvidia_smi.__file__, sys.argv[1])
PY
# sevenn ships every pretrained checkpoint (~43 MB); keep only $KEEP.
SEVENN=$(ls "$DEST"/sevenn-*.whl)
if unzip -l "$SEVENN" | grep -q "pretrained_potentials/" ; then
  TMP=$(mktemp -d)
  unzip -q "$SEVENN" -d "$TMP"
  for d in "$TMP"/sevenn/pretrained_potentials/*/; do
    [ "$(basename "$d")" = "$KEEP" ] || rm -rf "$d"
  done
  REC=$(ls "$TMP"/sevenn-*.dist-info/RECORD)
  grep -v "pretrained_potentials/" "$REC" > "$REC.new" || true
  grep "pretrained_potentials/$KEEP/\|pretrained_potentials/__init__" "$REC" >> "$REC.new" || true
  mv "$REC.new" "$REC"
  rm "$SEVENN"
  (cd "$TMP" && "$VENV_PY" -c "import shutil; shutil.make_archive('w', 'zip', '.')" && mv w.zip "$SEVENN")
  rm -rf "$TMP"
fi
du -ch "$DEST"/*.whl "$DEST"/shim/* | tail -1
