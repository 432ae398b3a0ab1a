#!/usr/bin/env bash
# cortado run on the bundled MLP: output matches the numpy reference,
# executors agree, .pb and .pbtxt nets give the same bytes, --output-dir,
# fed blobs count as declared inputs, and the summary reads as documented.
source "$(dirname "$0")/common.sh"

NET=examples/mlp_predict.pbtxt
INIT=examples/mlp_init.pbtxt
IN=examples/mlp_input.npy

"$CORTADO" run --net $NET --init $INIT --input data=$IN \
  --output prob="$TMP/prob.npy" --iters 3 > "$TMP/summary"
cat "$TMP/summary"
grep -q '^net "mlp_predict": 4 ops' "$TMP/summary" || fail "summary: net line"
grep -q 'executor  *simple' "$TMP/summary" || fail "summary: executor"
grep -q 'iterations  *3$' "$TMP/summary" || fail "summary: iterations"
grep -q 'time/iter  *mean .*, min ' "$TMP/summary" || fail "summary: time"
grep -q 'output  *prob FLOAT \[5, 4\] \[0\.10' "$TMP/summary" ||
  fail "summary: output line"
ok "run prints the summary"

if PY=$(pick_python); then
  "$PY" examples/gen_mlp.py --check "$TMP/prob.npy" --rtol 1e-5
  ok "prob matches the numpy reference (rtol 1e-5)"
  "$PY" examples/gen_mlp.py --verify
  ok "committed example files are what gen_mlp.py writes"
else
  echo "note: no python3 with numpy; comparing with examples/mlp_expected.npy"
fi
# The committed reference has the same header; values within float32
# rounding of numpy's float64 result, so compare the header bytes only.
cmp -n 128 "$TMP/prob.npy" examples/mlp_expected.npy ||
  fail "prob.npy header differs from numpy's"
ok "prob.npy header is byte-identical to numpy's"

# dag executor, 2 threads, several iterations: same bytes.
"$CORTADO" run -n $NET --init $INIT -i data=$IN -o prob="$TMP/prob_dag.npy" \
  --executor dag --threads 2 --iters 20 --quiet > "$TMP/quiet"
[ ! -s "$TMP/quiet" ] || fail "--quiet printed something"
cmp "$TMP/prob.npy" "$TMP/prob_dag.npy" || fail "dag result differs"
ok "dag executor with 2 threads gives identical output"

# Binary NetDefs (through convert) give the same result.
"$CORTADO" convert $NET "$TMP/predict.pb" -q
"$CORTADO" convert $INIT "$TMP/init.pb" -q
"$CORTADO" run --net "$TMP/predict.pb" --init "$TMP/init.pb" \
  --input=data=$IN --output=prob="$TMP/prob_pb.npy" -q
cmp "$TMP/prob.npy" "$TMP/prob_pb.npy" || fail ".pb nets differ"
ok ".pb nets (detected by content) give identical output"

# --output-dir writes every external output; any workspace blob can be
# fetched with --output (here an intermediate and a weight).
"$CORTADO" run --net $NET --init $INIT --input data=$IN -q \
  --output-dir "$TMP/outdir" --output fc1="$TMP/fc1.npy" \
  --output W1="$TMP/W1.npy"
cmp "$TMP/prob.npy" "$TMP/outdir/prob.npy" || fail "--output-dir prob"
[ "$(wc -c < "$TMP/fc1.npy")" -eq $((128 + 5 * 16 * 4)) ] || fail "fc1 size"
[ "$(wc -c < "$TMP/W1.npy")" -eq $((128 + 16 * 8 * 4)) ] || fail "W1 size"
ok "--output-dir and --output of intermediate blobs"

# '/' in an external output name becomes '_' under --output-dir.
cat > "$TMP/slash.pbtxt" <<'PB'
name: "slash"
op {
  output: "gpu_0/x"
  type: "ConstantFill"
  arg { name: "shape" ints: 2 ints: 3 }
  arg { name: "value" f: 1.5 }
}
external_output: "gpu_0/x"
PB
"$CORTADO" run --net "$TMP/slash.pbtxt" --output-dir "$TMP/slash" > "$TMP/s"
[ "$(wc -c < "$TMP/slash/gpu_0_x.npy")" -eq $((128 + 6 * 4)) ] ||
  fail "gpu_0_x.npy missing or wrong size"
grep -q 'gpu_0/x FLOAT \[2, 3\] \[1.5, 1.5' "$TMP/s" || fail "slash summary"
ok "--output-dir maps gpu_0/x to gpu_0_x.npy"

# A fed blob the net does not declare counts as an external input.
grep -v 'external_input: "data"' $NET > "$TMP/undeclared.pbtxt"
"$CORTADO" run --net "$TMP/undeclared.pbtxt" --init $INIT \
  --input data=$IN --output prob="$TMP/prob_u.npy" -q
cmp "$TMP/prob.npy" "$TMP/prob_u.npy" || fail "undeclared input run"
ok "a fed blob counts as a declared external input"

echo "all $N_CHECKS checks passed"
