//! An optional cap on live heap bytes (`MCP_HEAP_LIMIT_BYTES`), enforced by the global
//! allocator: an allocation that would pass it fails, which aborts the process with
//! "memory allocation failed" instead of letting the kernel kill it at random. It also
//! records the peak, logged at exit by `serve`. Without the variable it only counts.

use std::{
    alloc::{GlobalAlloc, Layout, System},
    sync::atomic::{AtomicUsize, Ordering},
};

/// The counting allocator installed by the binary.
#[derive(Debug)]
pub struct CappedAllocator;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);
static LIMIT: AtomicUsize = AtomicUsize::new(usize::MAX);

/// Sets the cap (in bytes) from `MCP_HEAP_LIMIT_BYTES`, when set; a value that is not a byte
/// count is an error naming the variable.
pub fn configure_from_env() -> Result<(), String> {
    let Some(value) = std::env::var_os("MCP_HEAP_LIMIT_BYTES") else { return Ok(()) };
    let text = value.to_string_lossy();
    let limit = crate::config::parse_bytes(&text)
        .map_err(|error| format!("MCP_HEAP_LIMIT_BYTES={text:?} is not valid: {error}"))?;
    set_limit(usize::try_from(limit).unwrap_or(usize::MAX));
    Ok(())
}

/// Caps live heap bytes at `limit` from now on.
pub fn set_limit(limit: usize) {
    LIMIT.store(limit, Ordering::Relaxed);
}

/// The most live heap bytes seen so far.
pub fn peak_bytes() -> usize {
    PEAK.load(Ordering::Relaxed)
}

// SAFETY: every method forwards to `System` with the caller's layout; the counters are only
// bookkeeping and never affect the pointers returned.
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for CappedAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if !reserve(layout.size()) {
            return std::ptr::null_mut();
        }
        // SAFETY: same contract as the caller's.
        let pointer = unsafe { System.alloc(layout) };
        if pointer.is_null() {
            LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        }
        pointer
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if !reserve(layout.size()) {
            return std::ptr::null_mut();
        }
        // SAFETY: same contract as the caller's.
        let pointer = unsafe { System.alloc_zeroed(layout) };
        if pointer.is_null() {
            LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        }
        pointer
    }

    unsafe fn dealloc(&self, pointer: *mut u8, layout: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(pointer, layout) };
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
    }

    unsafe fn realloc(&self, pointer: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let old = layout.size();
        if new_size > old && !reserve(new_size - old) {
            return std::ptr::null_mut();
        }
        // SAFETY: same contract as the caller's.
        let moved = unsafe { System.realloc(pointer, layout, new_size) };
        if moved.is_null() {
            if new_size > old {
                LIVE.fetch_sub(new_size - old, Ordering::Relaxed);
            }
        } else if new_size < old {
            LIVE.fetch_sub(old - new_size, Ordering::Relaxed);
        }
        moved
    }
}

/// Counts `bytes` as live unless that passes the limit.
fn reserve(bytes: usize) -> bool {
    let live = LIVE.fetch_add(bytes, Ordering::Relaxed) + bytes;
    if live > LIMIT.load(Ordering::Relaxed) {
        LIVE.fetch_sub(bytes, Ordering::Relaxed);
        return false;
    }
    PEAK.fetch_max(live, Ordering::Relaxed);
    true
}
