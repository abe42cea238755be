import { buildAllocator } from "@alloc/core";
import { bump } from "@alloc/bump";
import { writeFileSync } from "node:fs";
const a = buildAllocator({ strategy: bump(), exports: ["malloc", "free"] });
console.log(a.size, a.exports);
if (process.argv[2]) console.log(a.text);
writeFileSync("/tmp/t/b.wasm", a.binary);
const b = buildAllocator({ strategy: bump() });
console.log(b.size, b.exports);
