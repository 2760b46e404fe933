#!/usr/bin/env bash
# GPU check for the CUDA backend, run on the lent GPU machine from the repo root
# (see ../shared/device/README.md). It builds nothing: build/ is carried from
# the build machine, with build/kiln_native_tests already built
# (cmake --build build --target kiln_native_tests).
#
#   bash scripts/gpu-check.sh                         # plain
#   bash .device/gpu-run.sh bash scripts/gpu-check.sh # with node on PATH (adds the addon check)
#
# Prepare here: KILN_CUDA_ARCHS=90a-real npx cmake-js compile; cmake --build build
# --target kiln_native_tests; npm run build:ts; the optimizer benchmark into
# dist/bench (the tsc line of `npm run bench:optim`, without running it);
# ../shared/device/stage.sh; then run with carry [".device", "build", "dist",
# "node_modules/node-gyp-build"].
#
# Checks, in order:
#   1. card, driver and clocks (nvidia-smi)
#   2. <suite>:          build/kiln_native_tests <suite> for every CUDA suite
#                        (cuda, cuda_matmul, cuda_ops, cuda_nn, cuda_compare, cuda_optim, cuda_quant:
#                        each op CUDA vs CPU)
#   3. <suite>-memcheck: the same under compute-sanitizer memcheck
#   4. addon-info:       the addon loads and sees the GPU (only when node is on PATH)
#   5. js-smoke:         scripts/gpu-smoke.cjs through the public API (needs node and dist/)
#   6. bench:            bench/gpu.cjs, kiln vs PyTorch on this card (table printed last)
#   7. bench-optim:      dist/bench/optim.js --device cuda: kiln AdamW / LAMB / LARS vs
#                        torch.optim.AdamW(fused=True / foreach=True) and a device copy
#   8. bench-w4a8:       bench/w4a8_gpu.cjs: kiln W4A8 linear (canonical and FireQ layouts) vs torch bf16 matmul and
#                        torch._scaled_mm (FP8, per-tensor / row-wise) on the Llama-2-7B /
#                        Llama-3-8B linear shapes, M = 1 .. 16384 (table printed last)
# Full logs go to $OUT when set (they come back from the device tool), else to
# a temporary folder. Ends with a summary table; exits 1 when a check failed.
set -uo pipefail
cd "$(dirname "$0")/.."

LOG_DIR="${OUT:-$(mktemp -d /tmp/kiln-gpu-check.XXXXXX)}"
mkdir -p "$LOG_DIR"
BIN=build/kiln_native_tests

names=()
results=()
seconds=()
failed=0

now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", b - a }'; }

# record NAME RESULT SECONDS
record() {
  names+=("$1")
  results+=("$2")
  seconds+=("$3")
  case "$2" in PASS | n/a) ;; *) failed=1 ;; esac
}

# run_check NAME TIMEOUT_S CMD...: runs CMD with a timeout, logs to $LOG_DIR/NAME.log,
# prints the test lines that matter and records PASS / FAIL / SKIPPED / TIMEOUT.
run_check() {
  local name=$1 limit=$2
  shift 2
  local log="$LOG_DIR/$name.log"
  echo
  echo "== $name: $*"
  local t0 t1 rc
  t0=$(now)
  timeout --kill-after=10 "$limit" "$@" >"$log" 2>&1
  rc=$?
  t1=$(now)
  # Test names with their result, failure details, the suite summary and sanitizer findings.
  grep -E '^\[ (OK|FAIL|SKIP) |^    |^[a-z]+: [0-9]+ passed|^========= ' "$log" | head -n 120
  local result
  case $rc in
    0) result=PASS ;;
    77) result=SKIPPED ;;  # CUDA unavailable: on the GPU machine that is a failure
    124 | 137) result=TIMEOUT ;;
    *) result="FAIL(rc=$rc)" ;;
  esac
  echo "-- $name: $result in $(elapsed "$t0" "$t1") s (log: $log)"
  record "$name" "$result" "$(elapsed "$t0" "$t1")"
}

echo "== card"
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm,clocks.max.mem,memory.total --format=csv 2>&1 |
  tee "$LOG_DIR/card.csv"
echo "host: $(nproc) CPU cores; logs in $LOG_DIR"

if [ ! -x "$BIN" ]; then
  echo "missing $BIN: build it on the build machine (cmake --build build --target kiln_native_tests) and carry build/"
  record cuda-tests "FAIL(no binary)" 0
else
  SUITES=(cuda cuda_matmul cuda_ops cuda_nn cuda_compare cuda_optim cuda_quant)
  for suite in "${SUITES[@]}"; do run_check "$suite" 180 "$BIN" "$suite"; done

  sanitizer=$(command -v compute-sanitizer || true)
  if [ -z "$sanitizer" ]; then
    for c in /usr/local/cuda/bin/compute-sanitizer /usr/local/cuda-*/bin/compute-sanitizer /opt/nvidia/*/compute-sanitizer; do
      if [ -x "$c" ]; then sanitizer=$c; break; fi
    done
  fi
  if [ -z "$sanitizer" ]; then
    echo "compute-sanitizer not found"
    record memcheck "FAIL(no compute-sanitizer)" 0
  else
    # API errors are not reported: the tests provoke one on purpose (an
    # out-of-memory cudaMalloc), and kiln turns every API error into a status
    # that the tests check anyway.
    for suite in "${SUITES[@]}"; do
      run_check "$suite-memcheck" 300 "$sanitizer" --tool memcheck --error-exitcode 1 --report-api-errors no "$BIN" "$suite"
    done
  fi
fi

if command -v node >/dev/null 2>&1 && [ -f build/Release/kiln.node ]; then
  echo
  echo "== addon-info"
  t0=$(now)
  if node -e "
    const c = require('./build/Release/kiln.node').info().cuda;
    console.log(JSON.stringify(c));
    if (!c.available || c.devices.length === 0) process.exit(1);
  " >"$LOG_DIR/addon-info.log" 2>&1; then r=PASS; else r=FAIL; fi
  cat "$LOG_DIR/addon-info.log"
  record addon-info "$r" "$(elapsed "$t0" "$(now)")"
else
  record addon-info n/a 0
fi

if command -v node >/dev/null 2>&1 && [ -f dist/cjs/index.js ] && [ -d node_modules/node-gyp-build ]; then
  run_check js-smoke 120 node scripts/gpu-smoke.cjs
  grep -E '^(ok  |FAIL)' "$LOG_DIR/js-smoke.log" | head -n 60
else
  record js-smoke n/a 0
fi

if command -v node >/dev/null 2>&1 && [ -f dist/cjs/index.js ] && [ -d node_modules/node-gyp-build ]; then
  run_check bench 300 node bench/gpu.cjs --out "$LOG_DIR/gpu-bench.md"
else
  record bench n/a 0
fi

if command -v node >/dev/null 2>&1 && [ -f dist/bench/optim.js ] && [ -d node_modules/node-gyp-build ]; then
  run_check bench-optim 300 node dist/bench/optim.js --device cuda --rounds 2 --out "$LOG_DIR/optim-bench.md"
else
  record bench-optim n/a 0
fi

if command -v node >/dev/null 2>&1 && [ -f dist/cjs/index.js ] && [ -d node_modules/node-gyp-build ]; then
  run_check bench-w4a8 420 node bench/w4a8_gpu.cjs --out "$LOG_DIR/w4a8-gpu-bench.md"
else
  record bench-w4a8 n/a 0
fi

echo
echo "== summary ($(head -n 2 "$LOG_DIR/card.csv" | tail -n 1))"
printf '%-16s %-28s %8s\n' check result seconds | tee "$LOG_DIR/summary.txt"
for i in "${!names[@]}"; do
  printf '%-16s %-28s %8s\n' "${names[$i]}" "${results[$i]}" "${seconds[$i]}" | tee -a "$LOG_DIR/summary.txt"
done
if [ -f "$LOG_DIR/gpu-bench.md" ]; then
  echo
  cat "$LOG_DIR/gpu-bench.md"
fi
if [ -f "$LOG_DIR/optim-bench.md" ]; then
  echo
  cat "$LOG_DIR/optim-bench.md"
fi
if [ -f "$LOG_DIR/w4a8-gpu-bench.md" ]; then
  echo
  cat "$LOG_DIR/w4a8-gpu-bench.md"
fi
if [ "$failed" -ne 0 ]; then
  echo "gpu-check: FAILED"
  exit 1
fi
echo "gpu-check: all checks passed"
