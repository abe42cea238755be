//! Rust's standard allocator on wasm32-unknown-unknown (a port of dlmalloc), behind the C API the
//! benchmark replays against. `std::alloc` needs the layout on free and realloc: each block keeps
//! its size in an 8-byte header in front of the pointer handed out. Built by `setup-peers`:
//!   rustc --target wasm32-unknown-unknown --crate-type cdylib -C opt-level=3 -C panic=abort rust-std.rs

use std::alloc::{alloc, alloc_zeroed, dealloc, realloc as grow, Layout};

const HEADER: usize = 8;

fn layout(total: usize) -> Option<Layout> {
    Layout::from_size_align(total, 8).ok()
}

unsafe fn finish(base: *mut u8, total: usize) -> *mut u8 {
    if base.is_null() {
        return base;
    }
    (base as *mut usize).write(total);
    base.add(HEADER)
}

#[no_mangle]
pub unsafe extern "C" fn malloc(size: usize) -> *mut u8 {
    match size.checked_add(HEADER).and_then(layout) {
        Some(l) => finish(alloc(l), l.size()),
        None => std::ptr::null_mut(),
    }
}

#[no_mangle]
pub unsafe extern "C" fn calloc(n: usize, size: usize) -> *mut u8 {
    match n.checked_mul(size).and_then(|s| s.checked_add(HEADER)).and_then(layout) {
        Some(l) => finish(alloc_zeroed(l), l.size()),
        None => std::ptr::null_mut(),
    }
}

#[no_mangle]
pub unsafe extern "C" fn free(ptr: *mut u8) {
    if ptr.is_null() {
        return;
    }
    let base = ptr.sub(HEADER);
    let total = (base as *const usize).read();
    dealloc(base, Layout::from_size_align_unchecked(total, 8));
}

#[no_mangle]
pub unsafe extern "C" fn realloc(ptr: *mut u8, size: usize) -> *mut u8 {
    if ptr.is_null() {
        return malloc(size);
    }
    if size == 0 {
        free(ptr);
        return std::ptr::null_mut();
    }
    let total = match size.checked_add(HEADER).and_then(layout) {
        Some(l) => l.size(),
        None => return std::ptr::null_mut(),
    };
    let base = ptr.sub(HEADER);
    let old = (base as *const usize).read();
    finish(grow(base, Layout::from_size_align_unchecked(old, 8), total), total)
}
