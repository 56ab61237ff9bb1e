//! The memory limit of an app's JavaScript heap, enforced by the allocator itself.
//!
//! QuickJS's own limit cannot say afterwards that it was hit: when the heap is full it
//! often cannot even allocate the "out of memory" error and throws `null`. Counting in
//! the allocator gives an exact answer ([`MemoryMeter::exhausted`]) and a live figure.

use rquickjs::allocator::{Allocator, RustAllocator};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

/// Shared view of one runtime's heap.
#[derive(Debug, Clone, Default)]
pub struct MemoryMeter {
    used: Arc<AtomicUsize>,
    exhausted: Arc<AtomicBool>,
}

impl MemoryMeter {
    /// Bytes currently allocated by the runtime.
    pub fn used(&self) -> usize {
        self.used.load(Ordering::Relaxed)
    }

    /// True once an allocation was refused since the last [`MemoryMeter::reset`].
    pub fn exhausted(&self) -> bool {
        self.exhausted.load(Ordering::Relaxed)
    }

    /// Clears the refusal flag (at the start of an invocation).
    pub fn reset(&self) {
        self.exhausted.store(false, Ordering::Relaxed);
    }
}

/// Rust's allocator with a byte budget.
#[derive(Debug)]
pub struct LimitedAllocator {
    limit: usize,
    meter: MemoryMeter,
}

impl LimitedAllocator {
    /// An allocator refusing to go beyond `limit` bytes, reporting to `meter`.
    pub fn new(limit: usize, meter: MemoryMeter) -> Self {
        LimitedAllocator { limit, meter }
    }

    fn admit(&self, more: usize) -> bool {
        let ok = self.meter.used().saturating_add(more) <= self.limit;
        if !ok {
            self.meter.exhausted.store(true, Ordering::Relaxed);
        }
        ok
    }
}

// SAFETY: every call is forwarded to `RustAllocator`, which upholds the contract; this
// wrapper only refuses some requests (returning null, which QuickJS handles as out of
// memory) and counts the usable sizes of what it hands out and takes back.
unsafe impl Allocator for LimitedAllocator {
    fn alloc(&mut self, size: usize) -> *mut u8 {
        if !self.admit(size) {
            return std::ptr::null_mut();
        }
        let ptr = RustAllocator.alloc(size);
        if !ptr.is_null() {
            // SAFETY: `ptr` was just returned by RustAllocator.
            self.meter.used.fetch_add(unsafe { RustAllocator::usable_size(ptr) }, Ordering::Relaxed);
        }
        ptr
    }

    fn calloc(&mut self, count: usize, size: usize) -> *mut u8 {
        let Some(total) = count.checked_mul(size) else {
            return std::ptr::null_mut();
        };
        if !self.admit(total) {
            return std::ptr::null_mut();
        }
        let ptr = RustAllocator.calloc(count, size);
        if !ptr.is_null() {
            // SAFETY: `ptr` was just returned by RustAllocator.
            self.meter.used.fetch_add(unsafe { RustAllocator::usable_size(ptr) }, Ordering::Relaxed);
        }
        ptr
    }

    unsafe fn dealloc(&mut self, ptr: *mut u8) {
        if ptr.is_null() {
            return;
        }
        // SAFETY: QuickJS only frees pointers this allocator returned.
        let size = unsafe { RustAllocator::usable_size(ptr) };
        self.meter.used.fetch_sub(size, Ordering::Relaxed);
        // SAFETY: as above.
        unsafe { RustAllocator.dealloc(ptr) }
    }

    unsafe fn realloc(&mut self, ptr: *mut u8, new_size: usize) -> *mut u8 {
        if ptr.is_null() {
            return self.alloc(new_size);
        }
        // SAFETY: QuickJS only reallocates pointers this allocator returned.
        let old = unsafe { RustAllocator::usable_size(ptr) };
        if new_size > old && !self.admit(new_size - old) {
            return std::ptr::null_mut();
        }
        // SAFETY: as above.
        let new = unsafe { RustAllocator.realloc(ptr, new_size) };
        if !new.is_null() {
            // SAFETY: `new` was just returned by RustAllocator.
            let now = unsafe { RustAllocator::usable_size(new) };
            self.meter.used.fetch_sub(old, Ordering::Relaxed);
            self.meter.used.fetch_add(now, Ordering::Relaxed);
        }
        new
    }

    unsafe fn usable_size(ptr: *mut u8) -> usize {
        // SAFETY: forwarded; the caller guarantees `ptr` came from this allocator.
        unsafe { RustAllocator::usable_size(ptr) }
    }
}
