# Shared helpers for the CLI integration tests (sourced, not run).
# Every test script is called as `test_x.sh /path/to/cortado` from the
# repository root (ctest sets WORKING_DIRECTORY).
set -euo pipefail

CORTADO=${1:?usage: $0 /path/to/cortado}
DATA=../shared/data
TMP=$(mktemp -d "${TMPDIR:-/tmp}/ct_cli_test.XXXXXX")
trap 'rm -rf "$TMP"' EXIT
N_CHECKS=0

fail() {
  echo "FAIL: $*" >&2
  exit 1
}

ok() {
  N_CHECKS=$((N_CHECKS + 1))
  echo "ok $N_CHECKS - $*"
}

# A python3 that has numpy, or nothing: the pyenv shim on PATH may lack
# numpy while Debian's /usr/bin/python3 has python3-numpy.
pick_python() {
  local py
  for py in "${CT_PYTHON:-}" python3 /usr/bin/python3; do
    [ -n "$py" ] || continue
    if command -v "$py" > /dev/null 2>&1 &&
       "$py" -c 'import numpy' > /dev/null 2>&1; then
      echo "$py"
      return 0
    fi
  done
  return 1
}

# mknpy FILE DICT NBYTES: a version 1.0 .npy file whose header dict is
# DICT (padded as numpy pads it) followed by NBYTES zero bytes.
mknpy() {
  local file=$1 dict=$2 nbytes=$3
  local total=$((10 + ${#dict} + 1))
  local pad=$(((64 - total % 64) % 64))
  local hlen=$((${#dict} + pad + 1))
  {
    printf '\x93NUMPY\x01\x00'
    printf "\\x$(printf %02x $((hlen & 255)))\\x$(printf %02x $((hlen >> 8)))"
    printf '%s' "$dict"
    printf "%${pad}s" ''
    printf '\n'
    head -c "$nbytes" /dev/zero
  } > "$file"
}

# expect_fail CODE NEEDLE -- CMD...: CMD must exit with CODE and print
# exactly one `cortado: error: ` line, as the first line of stderr, that
# contains NEEDLE; stdout must stay empty.
expect_fail() {
  local code=$1 needle=$2 rc=0 first n
  shift 3
  "$@" > "$TMP/out" 2> "$TMP/err" || rc=$?
  [ "$rc" -eq "$code" ] ||
    fail "'$*' exited $rc, want $code; stderr: $(cat "$TMP/err")"
  first=$(head -n 1 "$TMP/err")
  case "$first" in
    "cortado: error: "*) ;;
    *) fail "'$*': first stderr line is not an error: '$first'" ;;
  esac
  n=$(grep -c '^cortado: error: ' "$TMP/err" || true)
  [ "$n" -eq 1 ] || fail "'$*': $n error lines: $(cat "$TMP/err")"
  case "$first" in
    *"$needle"*) ;;
    *) fail "'$*': error '$first' does not mention '$needle'" ;;
  esac
  [ ! -s "$TMP/out" ] || fail "'$*' printed on stdout: $(cat "$TMP/out")"
  if [ "$code" -eq 2 ]; then
    grep -q '^usage: cortado' "$TMP/err" ||
      fail "'$*': usage error without a usage line"
  fi
  ok "$* -> exit $code: ${first#cortado: error: }"
}
