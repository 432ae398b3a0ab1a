#!/usr/bin/env bash
# cortado convert: pbtxt -> pb -> pbtxt -> pb is byte-identical for every
# zoo text NetDef (and the text is stable after one pass), plus the
# format selection rules (--to, extension, opposite of the input).
source "$(dirname "$0")/common.sh"

# Format selection, on the bundled example.
"$CORTADO" convert examples/mlp_predict.pbtxt "$TMP/a.pb" > "$TMP/o"
grep -q '(pbtxt) -> .*a.pb (pb): net "mlp_predict", 4 ops' "$TMP/o" ||
  fail "convert summary: $(cat "$TMP/o")"
"$CORTADO" convert "$TMP/a.pb" "$TMP/a.out" -q          # opposite: text
head -c 6 "$TMP/a.out" | grep -q '^name: ' || fail "opposite format"
cmp "$TMP/a.out" examples/mlp_predict.pbtxt || fail "example not canonical"
"$CORTADO" convert "$TMP/a.pb" "$TMP/b.pbtxt" --to pb -q  # --to wins
cmp "$TMP/a.pb" "$TMP/b.pbtxt" || fail "--to pb"
"$CORTADO" convert "$TMP/a.pb" - --to pbtxt > "$TMP/stdout.pbtxt"
cmp "$TMP/stdout.pbtxt" examples/mlp_predict.pbtxt || fail "stdout output"
ok "format chosen by --to, by extension, else the opposite; '-' is stdout"

if [ ! -d "$DATA/caffe2/zoo_pbtxt" ]; then
  echo "SKIP: $DATA/caffe2/zoo_pbtxt is absent; zoo round trips skipped"
  echo "all $N_CHECKS checks passed"
  exit 0
fi
n=0
for f in "$DATA"/caffe2/zoo_pbtxt/*.pbtxt; do
  b=$TMP/$(basename "$f" .pbtxt)
  "$CORTADO" convert "$f" "$b.1.pb" -q
  "$CORTADO" convert "$b.1.pb" "$b.2.pbtxt" -q
  "$CORTADO" convert "$b.2.pbtxt" "$b.3.pb" -q
  "$CORTADO" convert "$b.3.pb" "$b.4.pbtxt" -q
  cmp "$b.1.pb" "$b.3.pb" || fail "$f: pb differs after pbtxt -> pb -> pbtxt -> pb"
  cmp "$b.2.pbtxt" "$b.4.pbtxt" || fail "$f: text not stable"
  n=$((n + 1))
done
[ "$n" -ge 10 ] || fail "only $n zoo pbtxt files"
ok "$n zoo NetDefs: pbtxt -> pb -> pbtxt -> pb byte-identical"

# The binary zoo NetDef survives pb -> pbtxt -> pb.
for f in "$DATA"/caffe2/zoo_pbtxt/*.pb "$DATA"/caffe2/*/predict_net.pb; do
  b=$TMP/bin_$(basename "$(dirname "$f")")_$(basename "$f" .pb)
  "$CORTADO" convert "$f" "$b.pbtxt" -q
  "$CORTADO" convert "$b.pbtxt" "$b.pb" -q
  "$CORTADO" convert "$b.pb" "$b.2.pbtxt" -q
  cmp "$b.pbtxt" "$b.2.pbtxt" || fail "$f: text differs"
done
ok "binary NetDefs: pb -> pbtxt -> pb -> pbtxt stable"

echo "all $N_CHECKS checks passed"
