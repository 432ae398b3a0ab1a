#!/usr/bin/env bash
# Install cortado into a temp prefix, compile examples/embed.c with
# `pkg-config --cflags --libs cortado`, run it on the example MLP.
set -euo pipefail
build=$1
src=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cmake --install "$build" --prefix "$tmp/prefix" > "$tmp/install.log"
libdir=$(ls -d "$tmp"/prefix/lib*/pkgconfig | head -n 1)
export PKG_CONFIG_PATH="$libdir"
cc -std=c11 -Wall -Wextra -Werror "$src/examples/embed.c" \
  $(pkg-config --cflags --libs cortado) -o "$tmp/embed"
out=$(LD_LIBRARY_PATH="$(dirname "$libdir")" "$tmp/embed" \
  "$src/examples/mlp_init.pbtxt" "$src/examples/mlp_predict.pbtxt" \
  "$src/examples/mlp_input.npy")
echo "$out"
case "$out" in
  "prob [5, 4], row 0:"*) echo "install test: ok" ;;
  *) echo "install test: unexpected output" >&2; exit 1 ;;
esac
