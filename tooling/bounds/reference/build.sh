#!/bin/sh
# Rebuilds dlmalloc.wasm, the reference the memory bounds compare with: wasi-libc's dlmalloc,
# byte for byte the peer `pnpm bench` builds (packages/bench/src/peers.ts). clang runs wasm-opt
# after the link when one is on PATH, as it is under pnpm: binaryen's, from @alloc/core.
# Debian: clang, lld, wasi-libc, libclang-rt-14-dev-wasm32. Run from anywhere:
#   sh tooling/bounds/reference/build.sh
set -eu
cd "$(dirname "$0")"
PATH="$(cd ../../../packages/core/node_modules/.bin && pwd):$PATH"
clang --target=wasm32-wasi -O2 -nostdlib -Wl,--no-entry,--strip-all,--export=malloc,--export=free,--export=calloc,--export=realloc -o dlmalloc.wasm dlmalloc.c -lc
