import { bump } from "@alloc/bump";
import type { Strategy } from "@alloc/core";
import { fail } from "@alloc/fail";
import * as freeListPackage from "@alloc/free-list";
import { page } from "@alloc/page";
import * as sizeClassesPackage from "@alloc/size-classes";

/** One of our allocators: a strategy stack over the default grow backend. */
export interface Composition {
  /** Short name used in tables and on the command line: "size-classes+free-list". */
  readonly name: string;
  readonly description: string;
  /** The project's default composition (what the targets are about). */
  readonly isDefault?: boolean;
  /**
   * Measured for SIZES.md but not benchmarked: the workloads cannot run on it (fail allocates
   * nothing; page takes fresh pages for every block, gigabytes on the larger workloads).
   */
  readonly sizeOnly?: boolean;
  /** The strategy stack, top first. */
  stack(): Strategy[];
}

type Factory = (options?: Record<string, unknown>) => Strategy;

/**
 * A strategy factory a package exports by `name`, or undefined while the package does not (the
 * free-list and size-classes packages are being written): the benchmark then leaves those
 * compositions out and says so, instead of failing to compile.
 */
function factory(pkg: object, name: string): Factory | undefined {
  const f = (pkg as Record<string, unknown>)[name];
  return typeof f === "function" ? (f as Factory) : undefined;
}

const freeList = factory(freeListPackage, "freeList");
const sizeClasses = factory(sizeClassesPackage, "sizeClasses");

interface Candidate {
  readonly name: string;
  readonly description: string;
  readonly isDefault?: boolean;
  readonly sizeOnly?: boolean;
  /** The stack, or the names of the packages still missing. */
  readonly stack: (() => Strategy[]) | string[];
}

function candidates(): Candidate[] {
  const missing = (...names: [string, unknown][]) => names.filter(([, f]) => !f).map(([n]) => n);
  const need = missing(["@alloc/free-list", freeList], ["@alloc/size-classes", sizeClasses]);
  const needFreeList = missing(["@alloc/free-list", freeList]);
  const needSizeClasses = missing(["@alloc/size-classes", sizeClasses]);
  return [
    { name: "bump", description: "bump allocation: free takes back only the latest block", stack: () => [bump()] },
    {
      name: "free-list",
      description: "free list, two-level segregated fit (TLSF bins and bitmaps, the default fit), splitting and coalescing (the default)",
      isDefault: true,
      stack: needFreeList.length ? needFreeList : () => [freeList!()],
    },
    {
      name: "free-list(first)",
      description: "free list, oldest-first first fit (the walk issue 10 measured), splitting and coalescing",
      stack: needFreeList.length ? needFreeList : () => [freeList!({ fit: "first" })],
    },
    {
      name: "size-classes+free-list",
      description: "size classes for small blocks over a free list (the speed layer)",
      stack: need.length ? need : () => [sizeClasses!(), freeList!()],
    },
    {
      name: "size-classes+bump",
      description: "size classes for small blocks over bump",
      stack: needSizeClasses.length ? needSizeClasses : () => [sizeClasses!(), bump()],
    },
    { name: "page", description: "fresh pages for every block, never reused (lol_alloc's LeakingPageAllocator)", sizeOnly: true, stack: () => [page()] },
    {
      name: "size-classes+page",
      description: "size classes for small blocks over fresh pages for the rest",
      sizeOnly: true,
      stack: needSizeClasses.length ? needSizeClasses : () => [sizeClasses!(), page()],
    },
    { name: "fail", description: "every allocation returns 0 (lol_alloc's FailAllocator)", sizeOnly: true, stack: () => [fail()] },
  ];
}

/** Our compositions that can be built today, and those left out with the reason. */
export function compositions(): { available: Composition[]; missing: { name: string; reason: string }[] } {
  const available: Composition[] = [];
  const missing: { name: string; reason: string }[] = [];
  for (const c of candidates()) {
    if (Array.isArray(c.stack)) {
      missing.push({ name: c.name, reason: `${c.stack.join(" and ")} ${c.stack.length > 1 ? "do" : "does"} not export a strategy yet` });
    } else {
      available.push({
        name: c.name,
        description: c.description,
        ...(c.isDefault && { isDefault: true }),
        ...(c.sizeOnly && { sizeOnly: true }),
        stack: c.stack,
      });
    }
  }
  return { available, missing };
}
