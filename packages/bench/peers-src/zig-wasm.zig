//! Zig's standard WebAssembly allocator (`std.heap.wasm_allocator`, zig 0.11) behind the C API the
//! benchmark replays against. Zig's allocators take the block's length on free and resize: each
//! block keeps its total size in an 8-byte header in front of the pointer handed out. Built by
//! `setup-peers`:
//!   zig build-lib zig-wasm.zig -target wasm32-freestanding -dynamic -rdynamic -O ReleaseFast

const std = @import("std");
const allocator = std.heap.wasm_allocator;
const header = 8;

fn sizeOf(base: [*]u8) *usize {
    return @ptrCast(@alignCast(base));
}

fn block(base: [*]u8) []align(8) u8 {
    const aligned: [*]align(8) u8 = @alignCast(base);
    return aligned[0..sizeOf(base).*];
}

export fn malloc(size: usize) ?[*]u8 {
    const total = std.math.add(usize, size, header) catch return null;
    const mem = allocator.alignedAlloc(u8, 8, total) catch return null;
    sizeOf(mem.ptr).* = total;
    return mem.ptr + header;
}

export fn calloc(n: usize, size: usize) ?[*]u8 {
    const bytes = std.math.mul(usize, n, size) catch return null;
    const p = malloc(bytes) orelse return null;
    @memset(p[0..bytes], 0);
    return p;
}

export fn free(ptr: ?[*]u8) void {
    const p = ptr orelse return;
    allocator.free(block(p - header));
}

export fn realloc(ptr: ?[*]u8, size: usize) ?[*]u8 {
    const p = ptr orelse return malloc(size);
    if (size == 0) {
        free(p);
        return null;
    }
    const total = std.math.add(usize, size, header) catch return null;
    const mem = allocator.realloc(block(p - header), total) catch return null;
    sizeOf(mem.ptr).* = total;
    return mem.ptr + header;
}
