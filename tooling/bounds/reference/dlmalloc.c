/*
 * dlmalloc as wasi-libc ships it: malloc, free, calloc and realloc come from libc.a unchanged.
 * This file only has to exist; the link exports them (see build.sh, the same command as the
 * bench's peer: packages/bench/src/peers.ts).
 */
#include <stdlib.h>
