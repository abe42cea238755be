/*
 * binary-trees, the Computer Language Benchmarks Game program (its plain C version: one malloc
 * per node, freed by a post-order walk): allocates and checks complete binary trees of growing
 * depth while a long-lived tree stays alive. Usage: binary_trees [max depth, default 16].
 */
#include <stdio.h>
#include <stdlib.h>

typedef struct Node {
  struct Node *left, *right;
} Node;

static Node *make(int depth) {
  Node *node = malloc(sizeof *node);
  if (!node) {
    fputs("out of memory\n", stderr);
    exit(1);
  }
  if (depth > 0) {
    node->left = make(depth - 1);
    node->right = make(depth - 1);
  } else {
    node->left = node->right = NULL;
  }
  return node;
}

static long check(const Node *node) {
  return node->left ? 1 + check(node->left) + check(node->right) : 1;
}

static void release(Node *node) {
  if (node->left) {
    release(node->left);
    release(node->right);
  }
  free(node);
}

int main(int argc, char **argv) {
  int min = 4, max = argc > 1 ? atoi(argv[1]) : 16;
  if (max < min + 2) max = min + 2;

  Node *stretch = make(max + 1);
  printf("stretch tree of depth %d\t check: %ld\n", max + 1, check(stretch));
  release(stretch);

  Node *long_lived = make(max);
  for (int depth = min; depth <= max; depth += 2) {
    long iterations = 1L << (max - depth + min), sum = 0;
    for (long i = 0; i < iterations; i++) {
      Node *tree = make(depth);
      sum += check(tree);
      release(tree);
    }
    printf("%ld\t trees of depth %d\t check: %ld\n", iterations, depth, sum);
  }
  printf("long lived tree of depth %d\t check: %ld\n", max, check(long_lived));
  release(long_lived);
  return 0;
}
