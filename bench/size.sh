#!/usr/bin/env bash
# Stripped binary size per function, as `sam build` ships it (cargo lambda build --release
# --arm64 --bin <function>, with Zig, from the workspace root: scripts/sam-build's build), and
# where the bytes of the biggest function go: per crate (symbols of an unstripped build of it,
# bench/crate-sizes.awk) and per ELF section (unwind tables, relocations and string literals
# belong to no symbol).
#
#   bench/size.sh                          # arm64, every function under functions/
#   ARCH=x86 bench/size.sh                 # the host's x86_64 instead (cargo rustc, no Zig)
#   FUNCTIONS="form-webhook lead-api" bench/size.sh
#   BREAKDOWN=lead-api bench/size.sh       # break that function down instead ("" for none)
#   PREBUILT=target/lambda bench/size.sh   # measure <dir>/<fn>/bootstrap (or <dir>/<fn>), no build
#   STRICT=1 bench/size.sh                 # exit 1 when a function is over the target
#
# Writes target/bench-size/sizes.tsv (function, bytes) and crates.tsv (bytes, text, data, crate).
# An arm64 build from cold is a release build of the whole dependency tree for another target:
# 15-25 minutes on 2 cores; later runs relink only (a few minutes per function).
set -euo pipefail
cd "$(dirname "$0")/.."

arch=${ARCH:-arm64}
target_mb=6
top=${TOP:-25}
out=target/bench-size
read -r -a functions <<<"${FUNCTIONS:-$(ls functions | tr '\n' ' ')}"
breakdown=${BREAKDOWN-form-webhook}

die() { echo "size: $*" >&2; exit 1; }
mb() { awk -v b="$1" 'BEGIN { printf "%.2f", b / 1048576 }'; }
for f in "${functions[@]}"; do [ -d "functions/$f" ] || die "no function $f under functions/"; done
mkdir -p "$out"

# build STRIP(true|false) FUNCTION...: the release binaries, shipped profile but for STRIP;
# prints nothing, leaves them where binary_of finds them.
build() {
  local strip=$1 bins=()
  shift
  for f in "$@"; do bins+=(--bin "$f"); done
  case "$arch" in
    arm64)
      scripts/bootstrap --test >/dev/null
      rustup target list --installed | grep -qx aarch64-unknown-linux-gnu ||
        rustup target add aarch64-unknown-linux-gnu
      # The same command as SAM's rust-cargolambda build (aws_lambda_builders), all
      # functions at once: one feature resolution, as each of SAM's per-function runs has.
      CARGO_PROFILE_RELEASE_STRIP=$strip PATH="$PWD/.venv/bin:$PATH" \
        cargo lambda build --release --arm64 "${bins[@]}" >&2
      ;;
    x86)
      # The host's linker and target dir (warm from the tests' builds); the link flags
      # .cargo/config.toml gives arm64 are added to each function's own link step.
      for f in "$@"; do
        CARGO_PROFILE_RELEASE_STRIP=$strip cargo rustc -q --release -p "$f" --bin "$f" -- \
          -C link-arg=-no-pie >&2
      done
      ;;
    *) die "ARCH must be arm64 or x86, not $arch" ;;
  esac
}

binary_of() {
  if [ -n "${PREBUILT:-}" ]; then
    if [ -f "$PREBUILT/$1/bootstrap" ]; then echo "$PREBUILT/$1/bootstrap"; else echo "$PREBUILT/$1"; fi
  elif [ "$arch" = arm64 ]; then
    echo "target/lambda/$1/bootstrap"
  else
    echo "target/release/$1"
  fi
}

# --- the breakdown's unstripped build first: the shipped build below overwrites it -----------
unstripped=""
if [ -n "$breakdown" ]; then
  if [ -n "${UNSTRIPPED:-}" ]; then
    unstripped=$UNSTRIPPED
  elif [ -z "${PREBUILT:-}" ]; then
    echo "== building $breakdown unstripped ($arch) for the per-crate breakdown"
    build false "$breakdown"
    unstripped=$out/$breakdown-$arch.unstripped
    cp "$(binary_of "$breakdown")" "$unstripped"
  fi
fi

if [ -z "${PREBUILT:-}" ]; then
  echo "== building ${functions[*]} ($arch, release profile as shipped)"
  build true "${functions[@]}"
fi

echo
echo "== stripped size per function ($arch)   target <= $target_mb MB"
over=0
: >"$out/sizes.tsv"
for f in "${functions[@]}"; do
  bin=$(binary_of "$f")
  [ -f "$bin" ] || die "no binary $bin"
  bytes=$(stat -c %s "$bin")
  verdict=ok
  if [ "$bytes" -gt $((target_mb * 1048576)) ]; then verdict=OVER; over=$((over + 1)); fi
  printf '  %-16s %10d B  %6s MB  %s\n' "$f" "$bytes" "$(mb "$bytes")" "$verdict"
  printf '%s\t%s\n' "$f" "$bytes" >>"$out/sizes.tsv"
done

if [ -n "$unstripped" ]; then
  stripped=$out/$breakdown-$arch.stripped
  # LLVM's binutils read every target's ELF; GNU's may know only the host's (Debian's strip
  # refuses an arm64 binary), so they are the fallback.
  strip_tool=strip size_tool=size nm_tool=nm
  if command -v llvm-strip >/dev/null && command -v llvm-size >/dev/null && command -v llvm-nm >/dev/null; then
    strip_tool=llvm-strip size_tool=llvm-size nm_tool=llvm-nm
  fi
  "$strip_tool" -o "$stripped" "$unstripped"
  echo
  echo "== $breakdown by ELF section (stripped: $(stat -c %s "$stripped") B)"
  "$size_tool" -A "$stripped" | awk '$2 ~ /^[0-9]+$/ && $2 >= 16384 { printf "  %-20s %9d B\n", $1, $2 }'
  echo
  echo "== $breakdown by crate (symbol bytes; top $top)"
  "$nm_tool" -S -t d -C "$unstripped" 2>/dev/null | awk 'NF >= 4' | awk -f bench/crate-sizes.awk |
    sort -rn >"$out/crates.tsv"
  awk -F '\t' -v top="$top" '
    { all += $1; if (NR <= top) printf "  %9d B  %-28s (code %d, data %d)\n", $1, $4, $2, $3; else rest += $1 }
    END { printf "  %9d B  (%d more crates)\n  %9d B  in symbols\n", rest, NR - top, all }' "$out/crates.tsv"
fi

if [ "${STRICT:-0}" = 1 ] && [ "$over" -gt 0 ]; then
  exit 1
fi
