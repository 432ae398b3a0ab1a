#!/usr/bin/env bash
# cortado run --checkpoint-dir / --resume / --save-params on the small
# training net of tests/cli/train_{init,net}.pbtxt: N iterations in one go
# and N/2 + --resume N/2 give bit-identical parameters; --resume without a
# checkpoint starts from scratch; a damaged latest checkpoint falls back
# to the previous one with a notice; a checkpoint of another net is an
# error; --checkpoint-keep; --save-params round-trips through --input.
source "$(dirname "$0")/common.sh"

D=tests/cli
TRAIN=(--net $D/train_net.pbtxt --init $D/train_init.pbtxt
       --input data=examples/mlp_input.npy
       --input target=examples/mlp_expected.npy)
STATE="W1 b1 W2 b2 W1_m b1_m W2_m b2_m iter"

# same_params DIR1 DIR2: the --save-params outputs are byte-identical.
same_params() {
  local f
  cmp "$1/params.txt" "$2/params.txt" || fail "params.txt differs: $1 $2"
  for f in $STATE; do
    cmp "$1/$f.npy" "$2/$f.npy" || fail "$f.npy differs: $1 vs $2"
  done
}

# ---- 20 iterations in one go ----
"$CORTADO" run "${TRAIN[@]}" --iters 20 --checkpoint-dir "$TMP/full" \
  --checkpoint-every 5 --save-params "$TMP/p_full" > "$TMP/full.txt"
cat "$TMP/full.txt"
grep -q '^  checkpoints  4 async saves of 9 blobs, latest .*/full/ckpt_00000020.minidb; stall total ' \
  "$TMP/full.txt" || fail "summary: checkpoints line"
grep -q '^  param files  9 blobs written to ' "$TMP/full.txt" ||
  fail "summary: param files line"
[ "$(ls "$TMP/full")" = "$(printf 'ckpt_%08d.minidb\n' 5 10 15 20)" ] ||
  fail "checkpoint files: $(ls "$TMP/full")"
"$CORTADO" inspect "$TMP/full/ckpt_00000020.minidb" > "$TMP/inspect.txt"
for b in $STATE; do
  grep -q "^  $b  " "$TMP/inspect.txt" || fail "checkpoint lacks $b"
done
ok "checkpoints every 5 iterations hold the 9 blobs of the state"

# The counter is in the checkpoint and in the saved params (an INT64 [1]).
grep -q $'^iter\titer.npy\tINT64\t\\[1\\]$' "$TMP/p_full/params.txt" ||
  fail "params.txt iter line: $(cat "$TMP/p_full/params.txt")"
grep -q $'^W1\tW1.npy\tFLOAT\t\\[16, 8\\]$' "$TMP/p_full/params.txt" ||
  fail "params.txt W1 line"
ok "params.txt lists name, file, dtype and dims"

# ---- 10 + --resume 10 ----
"$CORTADO" run "${TRAIN[@]}" --iters 10 --checkpoint-dir "$TMP/half" \
  --checkpoint-every 3 -q
[ "$(ls "$TMP/half")" = "$(printf 'ckpt_%08d.minidb\n' 3 6 9 10)" ] ||
  fail "checkpoint files: $(ls "$TMP/half")"
cp -r "$TMP/half" "$TMP/half_copy"
"$CORTADO" run "${TRAIN[@]}" --iters 10 --checkpoint-dir "$TMP/half" \
  --resume --save-params "$TMP/p_half" > "$TMP/resume.txt" 2> "$TMP/err"
cat "$TMP/resume.txt"
[ ! -s "$TMP/err" ] || fail "notices on a clean resume: $(cat "$TMP/err")"
[ "$(head -n 1 "$TMP/resume.txt")" = \
  "resumed: $TMP/half/ckpt_00000010.minidb (iteration 10, 9 blobs)" ] ||
  fail "resume line: $(head -n 1 "$TMP/resume.txt")"
grep -q '^  iterations   10 (11 to 20, resumed)$' "$TMP/resume.txt" ||
  fail "summary: iterations line"
same_params "$TMP/p_full" "$TMP/p_half"
cmp "$TMP/full/ckpt_00000020.minidb" "$TMP/half/ckpt_00000020.minidb" ||
  fail "final checkpoints differ"
ok "20 iterations = 10 + --resume 10, bit for bit (params and checkpoint)"

# The same under the dag executor, resumed twice in steps of 5.
"$CORTADO" run "${TRAIN[@]}" --iters 10 --checkpoint-dir "$TMP/dag" \
  --executor dag --threads 2 -q
for _ in 1 2; do
  "$CORTADO" run "${TRAIN[@]}" --iters 5 --checkpoint-dir "$TMP/dag" \
    --executor dag --threads 2 --resume -q
done
cmp "$TMP/full/ckpt_00000020.minidb" "$TMP/dag/ckpt_00000020.minidb" ||
  fail "dag executor, resumed twice: final checkpoint differs"
ok "dag executor, 10 + 5 + 5 resumed: the same final checkpoint"

# ---- --resume with no checkpoint: a notice, then from scratch ----
"$CORTADO" run "${TRAIN[@]}" --iters 20 --checkpoint-dir "$TMP/fresh" \
  --resume --save-params "$TMP/p_fresh" > "$TMP/fresh.txt" 2> "$TMP/err"
grep -q "^cortado: notice: --resume: no complete checkpoint in $TMP/fresh; starting from scratch$" \
  "$TMP/err" || fail "no-checkpoint notice: $(cat "$TMP/err")"
! grep -q '^resumed:' "$TMP/fresh.txt" || fail "resumed from nothing"
same_params "$TMP/p_full" "$TMP/p_fresh"
[ -s "$TMP/fresh/ckpt_00000020.minidb" ] || fail "no checkpoint written"
ok "--resume without a checkpoint starts from scratch with a notice"

mkdir "$TMP/empty"
"$CORTADO" run "${TRAIN[@]}" --iters 1 --checkpoint-dir "$TMP/empty" \
  --resume -q 2> "$TMP/err"
grep -q 'no complete checkpoint in' "$TMP/err" || fail "empty dir notice"
ok "--resume on an empty directory starts from scratch with a notice"

# ---- damaged latest checkpoints fall back to the previous one ----
cp -r "$TMP/half_copy" "$TMP/bad"
# a flipped byte in ckpt 10 (CRC32C mismatch), a truncated ckpt 9, and the
# temporary file of a save that never finished
printf '\xff' | dd of="$TMP/bad/ckpt_00000010.minidb" bs=1 seek=300 \
  conv=notrunc 2> /dev/null
truncate -s 1000 "$TMP/bad/ckpt_00000009.minidb"
head -c 500 "$TMP/half_copy/ckpt_00000010.minidb" \
  > "$TMP/bad/.ckpt_00000011.minidb.tmp.999999.1"
"$CORTADO" run "${TRAIN[@]}" --iters 14 --checkpoint-dir "$TMP/bad" \
  --resume --save-params "$TMP/p_bad" > "$TMP/bad.txt" 2> "$TMP/err"
cat "$TMP/err"
grep -q "^cortado: notice: --resume: skipping $TMP/bad/ckpt_00000010.minidb: .*CRC32C mismatch" \
  "$TMP/err" || fail "notice for the corrupt checkpoint"
grep -q "^cortado: notice: --resume: skipping $TMP/bad/ckpt_00000009.minidb: .*runs past the end of the file" \
  "$TMP/err" || fail "notice for the truncated checkpoint"
grep -q "^cortado: notice: --resume: skipping $TMP/bad/.ckpt_00000011.minidb.tmp.999999.1: temporary file of an unfinished save$" \
  "$TMP/err" || fail "notice for the temporary file"
[ "$(head -n 1 "$TMP/bad.txt")" = \
  "resumed: $TMP/bad/ckpt_00000006.minidb (iteration 6, 9 blobs)" ] ||
  fail "fallback resume line: $(head -n 1 "$TMP/bad.txt")"
same_params "$TMP/p_full" "$TMP/p_bad"
ok "corrupt and truncated latest checkpoints are skipped with a notice"

# Every checkpoint damaged: a notice per file, then from scratch.
mkdir "$TMP/allbad"
head -c 700 "$TMP/half_copy/ckpt_00000003.minidb" \
  > "$TMP/allbad/ckpt_00000003.minidb"
"$CORTADO" run "${TRAIN[@]}" --iters 1 --checkpoint-dir "$TMP/allbad" \
  --resume -q 2> "$TMP/err"
grep -q 'skipping .*ckpt_00000003.minidb: ' "$TMP/err" ||
  fail "notice for the only checkpoint"
grep -q 'no complete checkpoint in .* (every one was skipped); starting from scratch' \
  "$TMP/err" || fail "all-skipped notice: $(cat "$TMP/err")"
ok "no usable checkpoint at all: from scratch, with notices"

# ---- checkpoints of another net are an error ----
sed 's/ints: 16/ints: 12/g' $D/train_init.pbtxt > "$TMP/init12.pbtxt"
expect_fail 1 'blob "W1" is FLOAT [16, 8] there but FLOAT [12, 8] in the workspace (produced by --init)' -- \
  "$CORTADO" run --net $D/train_net.pbtxt --init "$TMP/init12.pbtxt" \
  -i data=examples/mlp_input.npy -i target=examples/mlp_expected.npy \
  --checkpoint-dir "$TMP/half_copy" --resume
{ cat $D/train_init.pbtxt
  echo 'op { output: "extra" type: "ConstantFill" arg { name: "shape" ints: 2 } }'
} > "$TMP/init_extra.pbtxt"
expect_fail 1 'has no blob "extra" (produced by --init)' -- \
  "$CORTADO" run --net $D/train_net.pbtxt --init "$TMP/init_extra.pbtxt" \
  -i data=examples/mlp_input.npy -i target=examples/mlp_expected.npy \
  --checkpoint-dir "$TMP/half_copy" --resume
expect_fail 1 'which is not part of the state of this run' -- \
  "$CORTADO" run --net examples/mlp_predict.pbtxt \
  --init examples/mlp_init.pbtxt -i data=examples/mlp_input.npy \
  --checkpoint-dir "$TMP/half_copy" --resume
# the failed resumes left the directory alone
diff <(ls "$TMP/half_copy") <(printf 'ckpt_%08d.minidb\n' 3 6 9 10) ||
  fail "a failed resume touched the checkpoints"
ok "a checkpoint that does not match the net is an error"

# A blob INIT produces that --input feeds again is not state: the fed
# value wins over both INIT and the checkpoint.
{ cat $D/train_init.pbtxt
  echo 'op { output: "data" type: "ConstantFill" arg { name: "shape" ints: 5 ints: 8 } }'
} > "$TMP/init_data.pbtxt"
cp -r "$TMP/half_copy" "$TMP/fed"
"$CORTADO" run --net $D/train_net.pbtxt --init "$TMP/init_data.pbtxt" \
  -i data=examples/mlp_input.npy -i target=examples/mlp_expected.npy \
  --iters 10 --checkpoint-dir "$TMP/fed" --resume --save-params "$TMP/p_fed" -q
for f in $STATE; do
  cmp "$TMP/p_full/$f.npy" "$TMP/p_fed/$f.npy" || fail "fed: $f.npy differs"
done
[ -s "$TMP/p_fed/data.npy" ] || fail "--save-params lacks INIT's data"
"$CORTADO" inspect "$TMP/fed/ckpt_00000020.minidb" > "$TMP/inspect.txt"
! grep -q '^  data  ' "$TMP/inspect.txt" || fail "a fed blob was checkpointed"
ok "an INIT output fed with --input is not checkpointed"

# ---- usage and setup errors ----
expect_fail 2 '--resume needs --checkpoint-dir DIR' -- \
  "$CORTADO" run "${TRAIN[@]}" --resume
expect_fail 2 '--checkpoint-every needs --checkpoint-dir DIR' -- \
  "$CORTADO" run "${TRAIN[@]}" --checkpoint-every 2
expect_fail 2 '--checkpoint-keep needs --checkpoint-dir DIR' -- \
  "$CORTADO" run "${TRAIN[@]}" --checkpoint-keep 2
expect_fail 2 '--checkpoint-every wants' -- \
  "$CORTADO" run "${TRAIN[@]}" --checkpoint-dir "$TMP/u" --checkpoint-every 0
expect_fail 2 '--save-params writes what --init produced or --fill-params created' -- \
  "$CORTADO" run --net examples/mlp_predict.pbtxt \
  -i data=examples/mlp_input.npy --save-params "$TMP/u"
echo 'name: "relu" op { input: "x" output: "y" type: "Relu" }' \
  > "$TMP/relu.pbtxt"
expect_fail 1 'the run has no state to checkpoint' -- \
  "$CORTADO" run --net "$TMP/relu.pbtxt" -i x=examples/mlp_input.npy \
  --checkpoint-dir "$TMP/u"
: > "$TMP/afile"
expect_fail 1 "--checkpoint-dir $TMP/afile: not a directory" -- \
  "$CORTADO" run "${TRAIN[@]}" --checkpoint-dir "$TMP/afile"
expect_fail 1 "--checkpoint-dir $TMP/no/such: cannot create" -- \
  "$CORTADO" run "${TRAIN[@]}" --checkpoint-dir "$TMP/no/such"

# ---- --checkpoint-keep ----
"$CORTADO" run "${TRAIN[@]}" --iters 10 --checkpoint-dir "$TMP/keep" \
  --checkpoint-every 2 --checkpoint-keep 2 -q
[ "$(ls "$TMP/keep")" = "$(printf 'ckpt_%08d.minidb\n' 8 10)" ] ||
  fail "--checkpoint-keep 2 left: $(ls "$TMP/keep")"
ok "--checkpoint-keep 2 keeps the newest two"

# ---- --save-params round-trips through --input ----
NET=examples/mlp_predict.pbtxt
IN=examples/mlp_input.npy
"$CORTADO" run --net $NET --init examples/mlp_init.pbtxt --input data=$IN \
  --output prob="$TMP/prob_init.npy" --save-params "$TMP/p_mlp" -q
# inputs_from DIR: --input NAME=DIR/FILE for every line of params.txt
inputs_from() {
  local name file dtype dims
  while IFS=$'\t' read -r name file dtype dims; do
    printf '%s\n' --input "$name=$1/$file"
  done < "$1/params.txt"
}
mapfile -t args < <(inputs_from "$TMP/p_mlp")
[ "${#args[@]}" -eq 8 ] || fail "mlp params: ${args[*]}"
"$CORTADO" run --net $NET --input data=$IN "${args[@]}" \
  --output prob="$TMP/prob_params.npy" -q
cmp "$TMP/prob_init.npy" "$TMP/prob_params.npy" ||
  fail "--save-params weights fed back give another result"
ok "--save-params of INIT round-trips through --input"

# --fill-params parameters, with '/' in their names.
cat > "$TMP/slash.pbtxt" << 'EOF'
name: "slash"
external_input: "x"
external_input: "fc/w"
external_input: "fc/b"
external_input: "out/w"
external_input: "out/b"
external_output: "y"
op { input: "x" input: "fc/w" input: "fc/b" output: "h" type: "FC"
     arg { name: "axis" i: 1 } }
op { input: "h" input: "out/w" input: "out/b" output: "y" type: "FC" }
EOF
"$CORTADO" run --net "$TMP/slash.pbtxt" --input-shape x=3,5 \
  --fill-params random --seed 3 --fill-width 6 --save-params "$TMP/p_fill" \
  --output y="$TMP/y_fill.npy" --output x="$TMP/x.npy" -q
sort "$TMP/p_fill/params.txt" > "$TMP/sorted.txt"
printf '%s\t%s\tFLOAT\t%s\n' fc/b fc_b.npy '[6]' fc/w fc_w.npy '[6, 5]' \
  out/b out_b.npy '[6]' out/w out_w.npy '[6, 6]' | diff - "$TMP/sorted.txt" ||
  fail "params.txt of --fill-params"
[ ! -e "$TMP/p_fill/x.npy" ] || fail "--input-shape input saved as a param"
mapfile -t args < <(inputs_from "$TMP/p_fill")
"$CORTADO" run --net "$TMP/slash.pbtxt" --input x="$TMP/x.npy" "${args[@]}" \
  --output y="$TMP/y_params.npy" -q
cmp "$TMP/y_fill.npy" "$TMP/y_params.npy" ||
  fail "--fill-params weights fed back give another result"
ok "--save-params of --fill-params ('/' -> '_') round-trips through --input"

# A parameter whose shape --input-shape pins is a parameter too; the data
# input given the same way is not.
"$CORTADO" run --net "$TMP/slash.pbtxt" --input-shape x=3,5 \
  --input-shape fc/w=7,5 --fill-params zeros --save-params "$TMP/p_pin" -q
sort "$TMP/p_pin/params.txt" | cut -f 1,4 > "$TMP/sorted.txt"
printf '%s\t%s\n' fc/b '[7]' fc/w '[7, 5]' out/b '[64]' out/w '[64, 7]' |
  diff - "$TMP/sorted.txt" || fail "params.txt with a pinned shape"
ok "--save-params includes a parameter whose shape --input-shape gave"

# Two names that map to one file are refused before anything is written.
cat > "$TMP/clash.pbtxt" << 'EOF'
name: "clash"
op { input: "x" input: "a/w" output: "y" type: "Mul" }
op { input: "y" input: "a_w" output: "z" type: "Mul" }
EOF
expect_fail 1 'blobs "a/w" and "a_w" would both be written to' -- \
  "$CORTADO" run --net "$TMP/clash.pbtxt" --input-shape x=3 \
  --fill-params zeros --save-params "$TMP/p_clash"
[ ! -e "$TMP/p_clash/params.txt" ] || fail "params.txt written on a clash"

echo "all $N_CHECKS checks passed"
