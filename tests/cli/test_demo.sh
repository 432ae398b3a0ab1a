#!/usr/bin/env bash
# cortado demo: a short training run on MNIST (../shared/data/mnist) prints
# the summary, writes the minmax files and the checkpoints, and --resume
# loads the latest checkpoint. Skipped when the data set is absent.
source "$(dirname "$0")/common.sh"

if [ ! -f "$DATA/mnist/t10k-images-idx3-ubyte.gz" ] ||
   [ ! -f "$DATA/mnist/t10k-labels-idx1-ubyte.gz" ]; then
  echo "skip: $DATA/mnist not found (MNIST test set needed by cortado demo)"
  exit 0
fi

OUT="$TMP/out"
"$CORTADO" demo --iters 60 --out "$OUT" --data "$DATA/mnist" \
  > "$TMP/summary" 2> "$TMP/progress"
cat "$TMP/summary"
grep -q '^== summary ==$' "$TMP/summary" || fail "summary header"
grep -q '^trained  *60 steps x 2 scopes x 64 images' "$TMP/summary" ||
  fail "summary: trained line"
acc=$(sed -n 's/^accuracy  *\([0-9.]*\)% on the 1000 held-out images$/\1/p' \
  "$TMP/summary")
[ -n "$acc" ] || fail "summary: accuracy line"
awk -v a="$acc" 'BEGIN { exit !(a >= 70) }' ||
  fail "held-out accuracy $acc% after 60 steps (want >= 70%)"
grep -q '^checkpoints  *4 async, stall total' "$TMP/summary" ||
  fail "summary: checkpoints line"
grep -q '^step timer  *mean .* over 60 steps' "$TMP/summary" ||
  fail "summary: timer line"
grep -q '^  Do  *2 ' "$TMP/summary" || fail "profile: Do row"
grep -q '^  SpaceToBatch ' "$TMP/summary" || fail "profile: SpaceToBatch row"
grep -q '^  BatchToSpace ' "$TMP/summary" || fail "profile: BatchToSpace row"
grep -q '^scheduling overhead: ' "$TMP/summary" || fail "overhead line"
ok "demo prints the summary (accuracy $acc%)"

# Not a terminal: one progress line every 10%.
[ "$(grep -c '^step [0-9]*/60 (.*%) loss [0-9.]* [0-9]* img/s$' \
  "$TMP/progress")" -eq 10 ] || fail "progress lines: $(cat "$TMP/progress")"
ok "progress on stderr every 10%"

[ -s "$OUT/demo.minmax" ] || fail "demo.minmax missing"
grep -q "^2 Do 1 W1_grad_0 " "$OUT/demo.minmax" || fail "demo.minmax content"
ls "$OUT"/demo.mlp.*.minmax > /dev/null || fail "subnet minmax missing"
grep -q '^0 SpaceToBatch 0 s2b ' "$OUT"/demo.mlp.*.minmax ||
  fail "subnet minmax content"
ok "minmax files written"

[ -s "$OUT/ckpt/demo_000060.minidb" ] || fail "checkpoint 60 missing"
ls "$OUT/ckpt"
[ "$(ls "$OUT/ckpt" | grep -c '^demo_.*\.minidb$')" -eq 3 ] ||
  fail "keep_last 3 checkpoints"
ok "async checkpoints (the newest 3 kept)"

"$CORTADO" demo --iters 10 --out "$OUT" --data "$DATA/mnist" --resume \
  > "$TMP/resume" 2> /dev/null
grep -q "^resumed: .*demo_000060.minidb (iteration 60)$" "$TMP/resume" ||
  fail "resume line: $(head -5 "$TMP/resume")"
[ -s "$OUT/ckpt/demo_000070.minidb" ] || fail "checkpoint 70 missing"
ok "--resume continues from the latest checkpoint"

if "$CORTADO" demo --iters 5 --out "$TMP/o2" --data "$TMP/nodata" \
  > /dev/null 2> "$TMP/err"; then
  fail "missing data set accepted"
fi
grep -q 'MNIST file .*nodata/t10k-images-idx3-ubyte.gz' "$TMP/err" ||
  fail "missing data error: $(cat "$TMP/err")"
ok "a missing data set is a clear error"

echo "all $N_CHECKS checks passed"
