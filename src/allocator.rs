//! Giving memory the program has freed back to the system.
//!
//! glibc's allocator keeps what a thread freed in that thread's arena and
//! returns to the kernel only the top of each heap, so after a burst (a load
//! of slow HTTP clients, many history streams) the daemon would stay at its
//! high-water mark although the memory is free. `malloc_trim(0)` walks every
//! arena and gives the free pages back (`madvise`); the HTTP endpoint calls
//! it once its clients have been quiet for a moment after such activity.
//!
//! A leaf; the crate's one use of `unsafe`, for a foreign call that takes no
//! pointers and has no precondition.

/// Ask the C allocator to return its free pages; whether it gave any back.
/// Elsewhere than glibc on Linux it does nothing and returns `false` (musl
/// and other allocators return memory on their own or have no such call).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)]
#[must_use]
pub fn release_free_memory() -> bool {
    // SAFETY: malloc_trim takes a size, touches only the allocator's own
    // state and is serialized by glibc with every other allocator call.
    unsafe { libc::malloc_trim(0) == 1 }
}

/// See the glibc version: nothing to do here.
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
#[must_use]
pub fn release_free_memory() -> bool {
    false
}

/// Caps the number of glibc malloc arenas at `arenas`. glibc gives each
/// thread that meets contention an arena of its own (up to eight per core):
/// with a tracer thread per concurrent trace, each arena keeps its own
/// free pages and its own fragments of the same short-lived records, and
/// peak memory grows with the thread count rather than with the work. Call
/// it before any thread starts. Elsewhere it does nothing.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)]
pub fn limit_arenas(arenas: i32) {
    // SAFETY: mallopt takes two integers, touches only the allocator's own
    // settings and is serialized with every other allocator call; a value
    // it does not accept is ignored (it returns 0).
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, arenas);
    }
}

/// See the glibc version: nothing to do here.
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub fn limit_arenas(_arenas: i32) {}
