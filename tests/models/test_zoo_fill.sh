#!/usr/bin/env bash
# cortado run --fill-params on the model zoo's text NetDefs (weights not
# available): every net compiles and runs at batch 1 with finite outputs;
# gpu_0/ names, engine "CUDNN" (one notice), undeclared fed inputs (one
# notice), zeros mode, pinned parameter shapes, repeatability for a seed,
# SqueezeNet with its init net and a random input, and the usage / runtime
# errors of the new options.
source "$(dirname "$0")/../cli/common.sh"

help_out=$("$CORTADO" run --help) && grep -q -- "--fill-params MODE" <<<"$help_out" || fail "help"
expect_fail 2 "--fill-params wants random or zeros, got 'ones'" -- \
  "$CORTADO" run --net examples/mlp_predict.pbtxt --fill-params ones
expect_fail 2 "--input-shape wants BLOB=D0,D1,..." -- \
  "$CORTADO" run --net examples/mlp_predict.pbtxt --input-shape data=5,x
expect_fail 2 "--input-shape wants BLOB=D0,D1,..." -- \
  "$CORTADO" run --net examples/mlp_predict.pbtxt --input-shape data=5,-1
expect_fail 2 "--fill-width needs --fill-params" -- \
  "$CORTADO" run --net examples/mlp_predict.pbtxt --fill-width 8
expect_fail 2 "--input-shape: blob 'data' is fed twice" -- \
  "$CORTADO" run --net examples/mlp_predict.pbtxt \
  --input data=examples/mlp_input.npy --input-shape data=5,8
expect_fail 1 'input 0 "data" has no known shape' -- \
  "$CORTADO" run --net examples/mlp_predict.pbtxt --fill-params random
expect_fail 1 'a shape is given for "dta", which net "mlp_predict" never' -- \
  "$CORTADO" run --net examples/mlp_predict.pbtxt --fill-params random \
  --input-shape dta=5,8
expect_fail 1 'has 4 external inputs not fed with --input: W1, b1, W2, b2 (--fill-params' -- \
  "$CORTADO" run --net examples/mlp_predict.pbtxt --input-shape data=5,8

# The MLP without its init net: shapes from data [5, 8], widths 64.
"$CORTADO" run --net examples/mlp_predict.pbtxt --fill-params random \
  --input-shape data=5,8 --seed 3 -o prob="$TMP/mlp1.npy" > "$TMP/o"
cat "$TMP/o"
grep -q 'params  *random (seed 3): 4 blobs, 4736 values; 2 of 2 output widths at the default 64' "$TMP/o" ||
  fail "params line"
grep -q 'output  *prob FLOAT \[5, 64\]' "$TMP/o" || fail "prob shape"
"$CORTADO" run --net examples/mlp_predict.pbtxt --fill-params random \
  --input-shape data=5,8 --seed 3 -o prob="$TMP/mlp2.npy" -q
cmp "$TMP/mlp1.npy" "$TMP/mlp2.npy" || fail "same seed, different output"
"$CORTADO" run --net examples/mlp_predict.pbtxt --fill-params random \
  --input-shape data=5,8 --seed 4 -o prob="$TMP/mlp3.npy" -q
! cmp -s "$TMP/mlp1.npy" "$TMP/mlp3.npy" || fail "seeds 3 and 4 agree"
"$CORTADO" run --net examples/mlp_predict.pbtxt --fill-params zeros \
  --input-shape data=5,8 --fill-width 4 -o prob="$TMP/mlpz.npy" > "$TMP/o"
grep -q 'output  *prob FLOAT \[5, 4\] \[0.25, 0.25, 0.25' "$TMP/o" ||
  fail "zeros: uniform softmax over the 4 default-width classes"
ok "MLP without weights: repeatable per seed, zeros mode, --fill-width"

if [ ! -d "$DATA/caffe2/zoo_pbtxt" ]; then
  echo "SKIP: $DATA/caffe2/zoo_pbtxt is absent; zoo runs skipped"
  echo "all $N_CHECKS checks passed"
  exit 0
fi
Z=$DATA/caffe2/zoo_pbtxt
PY=$(pick_python || true)

check_finite() { # FILE: every value finite (numpy when available)
  if [ -n "$PY" ]; then
    "$PY" -c 'import numpy as np, sys; a = np.load(sys.argv[1]); assert a.size > 0 and np.isfinite(a).all(), a' "$1" ||
      fail "$1: non-finite values"
  else
    [ "$(wc -c < "$1")" -gt 128 ] || fail "$1: empty"
  fi
}

for n in resnet50 bvlc_alexnet vgg19 inception_v1 inception_v2 \
         densenet121 zfnet512; do
  f=$Z/${n}_predict_net.pbtxt
  d=data
  grep -q '"gpu_0/data"' "$f" && d=gpu_0/data
  out=$(sed -n 's/^external_output: "\(.*\)"$/\1/p' "$f")
  "$CORTADO" run --net "$f" --fill-params random \
    --input-shape "$d=1,3,224,224" --threads 1 --output "$out=$TMP/$n.npy" \
    > "$TMP/$n.out" 2> "$TMP/$n.err" ||
    fail "$n: $(cat "$TMP/$n.err")"
  grep -E 'params|time/iter' "$TMP/$n.out" | sed "s/^/$n: /"
  check_finite "$TMP/$n.npy"
  ok "$n runs with --fill-params random at batch 1 ($out)"
done

# gpu_0/ names, --output-dir turns / into _.
"$CORTADO" run --net $Z/zfnet512_predict_net.pbtxt --fill-params random \
  --input-shape gpu_0/data=1,3,224,224 --output-dir "$TMP/zf" -q \
  2> "$TMP/err"
[ -s "$TMP/zf/gpu_0_softmax.npy" ] || fail "gpu_0_softmax.npy"
grep -c 'no op reads' "$TMP/err" | grep -qx 1 ||
  fail "the unread queue input: $(cat "$TMP/err")"
ok "gpu_0/ names and the unread declared input (one notice)"

# engine: "CUDNN" on every Conv: ignored with one notice.
sed 's/^  type: "Conv"$/  type: "Conv"\n  engine: "CUDNN"/' \
  $Z/bvlc_alexnet_predict_net.pbtxt > "$TMP/alex_cudnn.pbtxt"
[ "$(grep -c 'engine: "CUDNN"' "$TMP/alex_cudnn.pbtxt")" -eq 5 ] ||
  fail "sed did not add the engines"
"$CORTADO" run --net "$TMP/alex_cudnn.pbtxt" --fill-params random \
  --input-shape data=1,3,227,227 -o prob="$TMP/alex_cudnn.npy" -q \
  2> "$TMP/err"
[ "$(grep -c 'engine "CUDNN" ignored' "$TMP/err")" -eq 1 ] ||
  fail "CUDNN notice: $(cat "$TMP/err")"
"$CORTADO" run --net $Z/bvlc_alexnet_predict_net.pbtxt --fill-params random \
  --input-shape data=1,3,227,227 -o prob="$TMP/alex.npy" -q
cmp "$TMP/alex.npy" "$TMP/alex_cudnn.npy" || fail "CUDNN changed the result"
ok "engine \"CUDNN\" is ignored with one notice, same result"

# A fed input the net does not declare counts as declared, one notice.
grep -v '^external_input: "data"$' $Z/vgg19_predict_net.pbtxt \
  > "$TMP/vgg_nodata.pbtxt"
"$CORTADO" run --net "$TMP/vgg_nodata.pbtxt" --fill-params zeros \
  --input-shape data=1,3,64,64 -q 2> "$TMP/err"
[ "$(grep -c 'does not declare "data" as an external input' "$TMP/err")" \
  -eq 1 ] || fail "undeclared notice: $(cat "$TMP/err")"
ok "an undeclared fed input counts as declared (one notice)"

# Pinned parameter shapes: AlexNet's real conv1 and fc8.
"$CORTADO" run --net $Z/bvlc_alexnet_predict_net.pbtxt --fill-params random \
  --input-shape data=1,3,227,227 --input-shape conv1_w=96,3,11,11 \
  --input-shape fc8_w=1000,64 > "$TMP/o"
grep -q '5 of 6 output widths at the default 64' "$TMP/o" ||
  fail "pinned widths: $(grep params "$TMP/o")"
grep -q 'output  *prob FLOAT \[1, 1000\]' "$TMP/o" || fail "fc8 pinned"
ok "pinned conv1_w / fc8_w shapes fix their widths (fc8_w fixes fc7)"

# SqueezeNet with its real weights and a random input.
S=$DATA/caffe2/squeezenet_trafficlight_miyuan2018
"$CORTADO" run --net $S/predict_net.pb --init $S/init_net.pb \
  --input-shape data=1,3,227,227 -o prob="$TMP/sq.npy" > "$TMP/o"
grep -q 'output  *prob FLOAT \[1, 3, 1, 1\]' "$TMP/o" || fail "squeezenet"
check_finite "$TMP/sq.npy"
if [ -n "$PY" ]; then
  "$PY" -c 'import numpy as np, sys; a = np.load(sys.argv[1]); assert abs(a.sum() - 1) < 1e-5, a' \
    "$TMP/sq.npy" || fail "squeezenet probabilities do not sum to 1"
fi
ok "SqueezeNet (init net + random input) gives probabilities"

echo "all $N_CHECKS checks passed"
