#!/usr/bin/env bash
# cortado demo is deterministic: two runs with the same seed and thread
# count write byte-identical checkpoints and print the same final loss and
# accuracy, although the K gradient-accumulation scopes run concurrently
# (the gradients are summed in a fixed order, ExampleBatch shuffles from
# --seed, the weights come from --seed). Another seed gives other bytes.
# The thread count is part of the configuration: FC splits its rows into
# one GEMM call per worker chunk, and the BLAS rounds a row block's sums
# differently depending on the block size, so --threads 1 and 2 differ in
# the last bits. Skipped when ../shared/data/mnist is absent.
source "$(dirname "$0")/common.sh"

if [ ! -f "$DATA/mnist/t10k-images-idx3-ubyte.gz" ] ||
   [ ! -f "$DATA/mnist/t10k-labels-idx1-ubyte.gz" ]; then
  echo "skip: $DATA/mnist not found (MNIST test set needed by cortado demo)"
  exit 0
fi

run_demo() { # OUT SEED
  "$CORTADO" demo --iters 20 --ckpt-every 10 --threads 2 --seed "$2" \
    --out "$1" --data "$DATA/mnist" > "$1.txt" 2> /dev/null
  grep -E '^(final loss|accuracy) ' "$1.txt" > "$1.result"
  [ "$(wc -l < "$1.result")" -eq 2 ] || fail "$1: no loss/accuracy lines"
}

run_demo "$TMP/a" 5
run_demo "$TMP/b" 5
cat "$TMP/a.result"
for it in 000010 000020; do
  f=ckpt/demo_$it.minidb
  [ -s "$TMP/a/$f" ] || fail "$f missing"
  cmp "$TMP/a/$f" "$TMP/b/$f" || fail "$f differs between two runs"
done
ok "two runs with seed 5: byte-identical checkpoints after 10 and 20 steps"
diff "$TMP/a.result" "$TMP/b.result" || fail "final loss / accuracy differ"
ok "two runs with seed 5: the same final loss and accuracy"

run_demo "$TMP/c" 6
! cmp -s "$TMP/a/ckpt/demo_000020.minidb" "$TMP/c/ckpt/demo_000020.minidb" ||
  fail "seeds 5 and 6 gave the same checkpoint"
ok "seed 6 trains to other weights"

echo "all $N_CHECKS checks passed"
