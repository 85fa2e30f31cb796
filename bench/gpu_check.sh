#!/usr/bin/env bash
# One GPU check for sparkframes, for a fresh GPU machine with this repository and, optionally, a
# folder of wheels; no network. In one run, everything into one output folder:
#
#   1. the driver, GPUs and NVIDIA libraries found (nvidia-smi, the loader; driver.txt)
#   2. Python packages: from the wheels folder into a fresh environment (--wheels), or the given
#      Python as it is (pip-freeze.txt)
#   3. what sparkframes makes of it: each driver library, and why each GPU mode cannot run, if
#      it cannot (gpu-gaps.json)
#   4. the GPU test clips, small and colourful, encoded with PyAV (clips/, clips.txt)
#   5. the GPU tests; where a GPU is present a skip fails them (SPARKFRAMES_REQUIRE_GPU=1), where
#      none is they must skip, saying why (gpu-tests.log, gpu-tests.xml)
#   6. the GPU benchmark, 1/4/8 processes per GPU mode against the CPU on all cores; without a
#      GPU only its CPU baseline, in a tiny setting (bench/gpu_bench.json, bench/dmon-*.txt)
#   7. a summary (summary.txt); the exit code is 0 when every step did what this machine allows
#
# Usage: bash bench/gpu_check.sh [--out DIR] [--wheels DIR] [--python PYTHON] [--quick]
#   --out     output folder (default: gpu-check-<UTC time> in the current folder)
#   --wheels  folder of wheels to install from (pip --no-index): av, numpy, pyarrow, pytest, and
#             where wanted PyNvVideoCodec, pytest-timeout, pyspark, pandas, deltalake
#   --python  interpreter to use, or to build the environment with (default: python3)
#   --quick   the benchmark's tiny setting even on a GPU
#
# Nothing here claims GPU results: it records what ran; the numbers are in bench/gpu_bench.json.
set -uo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
OUT=""
WHEELS=""
PYTHON=python3
QUICK=0
while [ $# -gt 0 ]; do
  case "$1" in
    --out) OUT=$2; shift 2 ;;
    --wheels) WHEELS=$2; shift 2 ;;
    --python) PYTHON=$2; shift 2 ;;
    --quick) QUICK=1; shift ;;
    -h|--help) sed -n '2,24p' "$0"; exit 0 ;;
    *) echo "unknown argument: $1 (see --help)" >&2; exit 2 ;;
  esac
done
OUT=${OUT:-gpu-check-$(date -u +%Y%m%dT%H%M%SZ)}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
exec > >(tee -a "$OUT/check.log") 2>&1

STEPS=()
record() {  # record NAME STATUS DETAIL: one line of the summary
  STEPS+=("$(printf '%-10s %-8s %s' "$1" "$2" "$3")")
  echo ">> $1: $2 $3"
}
section() { echo; echo "== $* ($(date -u +%H:%M:%S))"; }

# --- 1. driver, GPUs, libraries ----------------------------------------------------------------
section "1. driver and GPUs"
GPU=0
{
  echo "host: $(uname -a)"
  echo "cpus: $(nproc 2>/dev/null || echo '?')"
  echo "NVIDIA_DRIVER_CAPABILITIES=${NVIDIA_DRIVER_CAPABILITIES-<unset>}"
  echo "NVIDIA_VISIBLE_DEVICES=${NVIDIA_VISIBLE_DEVICES-<unset>}"
  echo "CUDA_VISIBLE_DEVICES=${CUDA_VISIBLE_DEVICES-<unset>}"
  if command -v nvidia-smi >/dev/null 2>&1; then
    nvidia-smi -L || true
    nvidia-smi --query-gpu=index,name,uuid,driver_version,memory.total,pci.bus_id \
      --format=csv || true
  else
    echo "nvidia-smi: not found"
  fi
  echo "libraries the loader knows (ldconfig -p):"
  for lib in libcuda.so.1 libnvcuvid.so.1 libnvidia-encode.so.1; do
    found=$(ldconfig -p 2>/dev/null | grep -F "$lib" | head -1 | sed 's/.*=> //')
    echo "  $lib: ${found:-not found}"
  done
} | tee "$OUT/driver.txt"
if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L 2>/dev/null | grep -q '^GPU '; then
  GPU=1
  record driver ok "$(nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | head -1)"
else
  record driver "no GPU" "no NVIDIA GPU or driver found (nvidia-smi missing or lists none)"
fi

# --- 2. Python and packages --------------------------------------------------------------------
section "2. Python packages"
PY="$PYTHON"
export PYTHONPATH="$REPO"
if [ -n "$WHEELS" ]; then
  if [ ! -d "$WHEELS" ]; then
    record packages failed "wheels folder $WHEELS does not exist"
  else
    WHEELS=$(cd "$WHEELS" && pwd)
    PIP=()
    if "$PYTHON" -m venv "$OUT/venv" >/dev/null 2>&1 && [ -x "$OUT/venv/bin/python" ] \
        && "$OUT/venv/bin/python" -m pip --version >/dev/null 2>&1; then
      PY="$OUT/venv/bin/python"
      PIP=("$PY" -m pip install --no-index --find-links "$WHEELS" --disable-pip-version-check -q)
    else  # no venv module (or no ensurepip): install into a folder on PYTHONPATH instead
      PIP=("$PYTHON" -m pip install --no-index --find-links "$WHEELS" --disable-pip-version-check
           -q --target "$OUT/site")
      export PYTHONPATH="$OUT/site:$REPO"
    fi
    missing=()
    if "${PIP[@]}" "av>=18" numpy pyarrow pytest; then
      for optional in pytest-timeout PyNvVideoCodec pyspark pandas deltalake; do
        "${PIP[@]}" "$optional" >/dev/null 2>&1 || missing+=("$optional")
      done
      record packages ok "installed from $WHEELS; not in it: ${missing[*]:-none}"
    else
      record packages failed "av>=18, numpy, pyarrow or pytest could not be installed from $WHEELS"
    fi
  fi
else
  record packages ok "no --wheels: using $PYTHON as it is"
fi
"$PY" -m pip freeze --disable-pip-version-check >"$OUT/pip-freeze.txt" 2>/dev/null \
  || "$PY" -c "import importlib.metadata as m; print('\n'.join(sorted(f'{d.name}=={d.version}' for d in m.distributions())))" >"$OUT/pip-freeze.txt"
has() { "$PY" -c "import $1" >/dev/null 2>&1; }
if ! has av || ! has numpy || ! has pyarrow || ! has pytest; then
  record packages failed "$PY lacks one of av, numpy, pyarrow, pytest: nothing more can run"
  printf '%s\n' "${STEPS[@]}" | tee "$OUT/summary.txt"
  exit 1
fi

# --- 3. what sparkframes sees ------------------------------------------------------------------
section "3. GPU modes as sparkframes sees them"
if "$PY" - >"$OUT/gpu-gaps.json" <<'EOF'
import json
import av
from sparkframes.decoding.backends import FFMPEG_GPU, PYNVC, driver_libraries, gpu_gap

modes = {}
for mode in (FFMPEG_GPU, PYNVC):
    gap = gpu_gap(mode, 0)
    modes[mode] = "can run" if gap is None else {"gap": gap.gap.value, "why": str(gap)}
print(json.dumps({"pyav": av.__version__, "ffmpeg": av.ffmpeg_version_info,
                  "driver_libraries": driver_libraries(), "modes": modes}, indent=2))
EOF
then
  cat "$OUT/gpu-gaps.json"
  usable=$(grep -c '"can run"' "$OUT/gpu-gaps.json" || true)
  if [ "$GPU" = 1 ] && [ "$usable" != 2 ]; then
    record modes failed "a GPU is here but not every GPU mode can run (gpu-gaps.json)"
  else
    record modes ok "$usable of 2 GPU modes can run"
  fi
else
  record modes failed "sparkframes.decoding does not import (gpu-gaps.json)"
fi

# --- 4. test clips -----------------------------------------------------------------------------
section "4. test clips"
if "$PY" - "$OUT/clips" >"$OUT/clips.txt" <<'EOF'
import sys
from pathlib import Path
import av
from tests.videos import NVDEC_TOO_SMALL, build_gpu_catalog, spec_path

clips = build_gpu_catalog(Path(sys.argv[1]))
clips[NVDEC_TOO_SMALL.name] = spec_path(Path(sys.argv[1]), NVDEC_TOO_SMALL)
for name, path in clips.items():
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        frame = next(container.decode(stream))
        print(f"{name}: {stream.codec_context.name} {frame.width}x{frame.height} "
              f"{frame.format.name} colorspace={frame.colorspace} range={frame.color_range} "
              f"rotation={frame.rotation} frames={stream.frames}")
EOF
then
  cat "$OUT/clips.txt"
  record clips ok "$(wc -l <"$OUT/clips.txt") clips encoded with PyAV $("$PY" -c 'import av; print(av.__version__)')"
else
  record clips failed "encoding the test clips failed (check.log)"
fi

# --- 5. GPU tests ------------------------------------------------------------------------------
section "5. GPU tests"
TESTS=(tests/test_gpu.py tests/test_gpu_readiness.py tests/test_gpu_skips.py tests/test_import_light.py)
if has pyspark; then
  TESTS+=(tests/test_gpu_resources.py)
  if command -v java >/dev/null 2>&1 && has deltalake && has pandas; then
    TESTS+=("tests/test_gpu_scheduling.py::test_real_gpu_is_scheduled_and_decodes")
  fi
fi
if [ "$GPU" = 1 ]; then export SPARKFRAMES_REQUIRE_GPU=1; else unset SPARKFRAMES_REQUIRE_GPU; fi
(cd "$REPO" && "$PY" -m pytest "${TESTS[@]}" -q -rfEs -p no:cacheprovider \
  --basetemp "$OUT/pytest-tmp" --junitxml "$OUT/gpu-tests.xml") >"$OUT/gpu-tests.log" 2>&1
rc=$?
tail -25 "$OUT/gpu-tests.log"
counts=$("$PY" - "$OUT/gpu-tests.xml" <<'EOF'
import sys
import xml.etree.ElementTree as ET
root = ET.parse(sys.argv[1]).getroot()
suite = root if root.tag == "testsuite" else root.find("testsuite")
gpu_ran = gpu_skipped = 0
for case in suite.iter("testcase"):
    if case.get("classname", "").endswith("test_gpu"):
        skipped = case.find("skipped") is not None
        gpu_skipped += skipped
        gpu_ran += not skipped
print(suite.get("tests"), suite.get("failures"), suite.get("errors"), suite.get("skipped"),
      gpu_ran, gpu_skipped)
EOF
) || counts="? ? ? ? ? ?"
read -r total failures errors skipped gpu_ran gpu_skipped <<<"$counts"
detail="$total tests: $failures failed, $errors errors, $skipped skipped; test_gpu.py ran $gpu_ran, skipped $gpu_skipped"
if [ "$rc" != 0 ]; then
  record tests failed "$detail (gpu-tests.log)"
elif [ "$GPU" = 1 ]; then
  record tests ok "$detail, skips counted as failures"
elif [ "$gpu_ran" = 0 ]; then
  record tests ok "$detail: no GPU, so every GPU test skipped, as expected"
else
  record tests failed "$detail: GPU tests ran although no GPU was found"
fi

# --- 6. benchmark ------------------------------------------------------------------------------
section "6. GPU benchmark"
BENCH=(--out "$OUT/bench")
if [ "$GPU" = 0 ] || [ "$QUICK" = 1 ]; then BENCH+=(--quick); fi
if (cd "$REPO" && "$PY" -m bench.gpu_bench "${BENCH[@]}"); then
  summary=$("$PY" - "$OUT/bench/gpu_bench.json" <<'EOF'
import json, sys
runs = json.load(open(sys.argv[1]))["runs"]
by = {}
for run in runs:
    by[run["status"]] = by.get(run["status"], 0) + 1
print(", ".join(f"{n} {status}" for status, n in sorted(by.items())))
EOF
)
  if [ "$GPU" = 1 ] && grep -q '"status": "\(failed\|unavailable\)"' "$OUT/bench/gpu_bench.json"; then
    record bench failed "runs: $summary (bench/gpu_bench.json)"
  else
    record bench ok "runs: $summary$([ "$GPU" = 0 ] && echo '; CPU baseline only, tiny setting: no GPU')"
  fi
else
  record bench failed "bench/gpu_bench.py exited with an error (check.log)"
fi

# --- 7. summary --------------------------------------------------------------------------------
section "7. summary"
{
  echo "sparkframes GPU check, $(date -u +%Y-%m-%dT%H:%M:%SZ), $(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo '?')"
  [ "$GPU" = 1 ] && echo "GPU: present" || echo "GPU: none (no GPU result can come from this run)"
  printf '%s\n' "${STEPS[@]}"
} | tee "$OUT/summary.txt"
echo "everything is in $OUT"
if printf '%s\n' "${STEPS[@]}" | grep -q '^[a-z]* *failed '; then exit 1; fi
exit 0
