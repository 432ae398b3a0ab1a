#!/usr/bin/env bash
# Every CLI error path: one `cortado: error: ...` line on stderr, nothing
# on stdout, exit 2 (with the usage line) for command-line mistakes and 1
# for runtime failures. Also --help / --version.
source "$(dirname "$0")/common.sh"

NET=examples/mlp_predict.pbtxt
INIT=examples/mlp_init.pbtxt
IN=examples/mlp_input.npy
RUN=("$CORTADO" run --net $NET --init $INIT)

# ---- help and version ----
# Output is captured before grep: `cortado ... | grep -q` under pipefail
# fails at random when grep exits early and cortado gets SIGPIPE.
out=$("$CORTADO" --help) && grep -q '^usage: cortado <command>' <<<"$out" ||
  fail "--help"
out=$("$CORTADO" --version) &&
  grep -Eq '^cortado [0-9]+\.[0-9]+\.[0-9]+$' <<<"$out" || fail "--version"
for c in run inspect convert topo demo; do
  out=$("$CORTADO" $c --help) && grep -q "^usage: cortado $c" <<<"$out" ||
    fail "$c --help"
  out=$("$CORTADO" help $c) && grep -q "^usage: cortado $c" <<<"$out" ||
    fail "help $c"
done
ok "--help, --version, <command> --help, help <command>"

# ---- usage errors: exit 2 ----
expect_fail 2 "no command given" -- "$CORTADO"
expect_fail 2 "unknown command 'bogus'" -- "$CORTADO" bogus
expect_fail 2 "unknown option '--bogus'" -- "$CORTADO" --bogus
expect_fail 2 "unknown option '--bogus'" -- "$CORTADO" run --bogus
expect_fail 2 "unknown option '-z'" -- "$CORTADO" run -z
expect_fail 2 "--net NET is required" -- "$CORTADO" run
expect_fail 2 "option '--net' needs a value" -- "$CORTADO" run --net
expect_fail 2 "option '--quiet' takes no value" -- "${RUN[@]}" --quiet=yes
expect_fail 2 "--iters wants an integer" -- "${RUN[@]}" --iters 0
expect_fail 2 "--iters wants an integer" -- "${RUN[@]}" --iters 3x
expect_fail 2 "--threads wants an integer" -- "${RUN[@]}" --threads -1
expect_fail 2 "--executor wants simple or dag" -- "${RUN[@]}" --executor fast
expect_fail 2 "--input wants BLOB=FILE" -- "${RUN[@]}" --input data
expect_fail 2 "--input wants BLOB=FILE" -- "${RUN[@]}" --input data=
expect_fail 2 "--output wants BLOB=FILE" -- "${RUN[@]}" --output =x.npy
expect_fail 2 "blob 'data' is fed twice" -- "${RUN[@]}" -i data=$IN -i data=$IN
expect_fail 2 "unexpected argument 'extra'" -- "${RUN[@]}" extra
expect_fail 2 "inspect needs a FILE" -- "$CORTADO" inspect
expect_fail 2 "unexpected argument" -- "$CORTADO" inspect $NET $NET
expect_fail 2 "unknown option '--bogus'" -- "$CORTADO" inspect --bogus $NET
expect_fail 2 "convert needs IN and OUT" -- "$CORTADO" convert $NET
expect_fail 2 "--to wants pb or pbtxt" -- "$CORTADO" convert $NET x --to xml

# ---- runtime failures: exit 1 ----
expect_fail 1 "missing.pbtxt" -- "$CORTADO" run --net "$TMP/missing.pbtxt"
expect_fail 1 "missing_init.pb" -- "$CORTADO" run --net $NET \
  --init "$TMP/missing_init.pb"
expect_fail 1 "missing.npy" -- "${RUN[@]}" --input data="$TMP/missing.npy"
expect_fail 1 "No such file" -- "$CORTADO" inspect "$TMP/nope.pb"
expect_fail 1 "No such file" -- "$CORTADO" convert "$TMP/nope.pb" "$TMP/x.pb"
printf 'name: "broken"\nop { type: "Relu" \n' > "$TMP/broken.pbtxt"
expect_fail 1 "broken.pbtxt" -- "$CORTADO" inspect "$TMP/broken.pbtxt"
expect_fail 1 "broken.pbtxt" -- "$CORTADO" run --net "$TMP/broken.pbtxt"
expect_fail 1 "cannot" -- "$CORTADO" convert $NET "$TMP/no/such/dir/x.pb"

# Bad .npy inputs.
echo "this is not numpy" > "$TMP/junk.npy"
expect_fail 1 "not a .npy file" -- "${RUN[@]}" --input data="$TMP/junk.npy"
mknpy "$TMP/fortran.npy" \
  "{'descr': '<f4', 'fortran_order': True, 'shape': (5, 8), }" 160
expect_fail 1 "Fortran-order" -- "${RUN[@]}" --input data="$TMP/fortran.npy"
mknpy "$TMP/short.npy" \
  "{'descr': '<f4', 'fortran_order': False, 'shape': (5, 8), }" 100
expect_fail 1 "truncated data" -- "${RUN[@]}" --input data="$TMP/short.npy"
mknpy "$TMP/obj.npy" \
  "{'descr': '|O', 'fortran_order': False, 'shape': (5, 8), }" 320
expect_fail 1 "Python objects" -- "${RUN[@]}" --input data="$TMP/obj.npy"
mknpy "$TMP/huge.npy" \
  "{'descr': '<f4', 'fortran_order': False, 'shape': (1000000000000,), }" 8
expect_fail 1 "truncated data" -- "${RUN[@]}" --input data="$TMP/huge.npy"
expect_fail 1 "is a directory" -- "${RUN[@]}" --input data="$TMP"

# Net-level failures.
expect_fail 1 "not fed with --input nor produced by --init: data" -- \
  "${RUN[@]}"
expect_fail 1 'no blob named "nosuch"' -- "${RUN[@]}" --input data=$IN \
  --output nosuch="$TMP/x.npy"
mknpy "$TMP/wrong_shape.npy" \
  "{'descr': '<f4', 'fortran_order': False, 'shape': (5, 7), }" 140
expect_fail 1 "FC" -- "${RUN[@]}" --input data="$TMP/wrong_shape.npy"
expect_fail 1 "x.npy" -- "${RUN[@]}" --input data=$IN \
  --output prob="$TMP/no/such/dir/x.npy"
if [ -d "$DATA/caffe2/zoo_pbtxt" ]; then
  expect_fail 1 "external inputs not fed" -- "$CORTADO" run \
    --net "$DATA/caffe2/zoo_pbtxt/resnet50_predict_net.pbtxt"
fi
cat > "$TMP/unknown_op.pbtxt" <<'PB'
name: "unknown_op"
op { output: "y" type: "NoSuchOp" }
external_output: "y"
PB
expect_fail 1 "NoSuchOp" -- "$CORTADO" run --net "$TMP/unknown_op.pbtxt"
cat > "$TMP/bad_type.pbtxt" <<'PB'
name: "bad_type"
type: "warp_drive"
op { output: "y" type: "ConstantFill" arg { name: "shape" ints: 1 } }
PB
expect_fail 1 "warp_drive" -- "$CORTADO" run --net "$TMP/bad_type.pbtxt"

echo "all $N_CHECKS checks passed"
