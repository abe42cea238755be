#!/bin/sh
# Builds the real programs that `pnpm --filter @alloc/bench programs` runs with each allocator
# swapped in. The .wasm files are committed, so nothing needs a compiler to run them; a test checks
# that this script rebuilds them byte for byte when clang is here. Debian: clang, lld, wasi-libc
# (libclang-rt-14-dev-wasm32 for the builtins). With names (-Wl,--strip-debug, not --strip-all):
# swap finds the allocator by them. Run from anywhere: pnpm --filter @alloc/bench build-programs
set -eu
cd "$(dirname "$0")"
# clang runs wasm-opt after linking when one is on PATH, and `pnpm` puts binaryen's first: leave
# node_modules out of PATH so the modules are clang's own, wherever this runs from.
PATH=$(printf '%s' "$PATH" | tr ':' '\n' | grep -v node_modules | paste -sd: -)
export PATH
# The output folder (default: here); the reproducibility test builds into a temporary one.
out=${1:-.}
for program in binary_trees interp json; do
  clang --target=wasm32-wasi -O2 -Wall -Wextra -Werror -Wl,--strip-debug -o "$out/$program.wasm" "$program.c"
done
# wasi-libc's dlmalloc alone (the programs' own allocator), exporting the C API: the locality
# metric replays each program's trace on it. The same flags as the dlmalloc peer (src/peers.ts).
clang --target=wasm32-wasi -O2 -nostdlib -Wl,--no-entry,--strip-all,--export=malloc,--export=free,--export=calloc,--export=realloc -o "$out/dlmalloc.wasm" ../peers-src/dlmalloc.c -lc
ls -l "$out"/*.wasm
