/*
 * dlmalloc as wasi-libc ships it: malloc, free, calloc and realloc come from libc.a unchanged.
 * This file only has to exist; the link exports them (see src/setup.ts):
 *   clang --target=wasm32-wasi -O2 -nostdlib -Wl,--no-entry,--strip-all,--export=malloc,... dlmalloc.c -lc
 */
#include <stdlib.h>
