//! Giving freed memory back to the system. glibc keeps freed heap pages (and raises its mmap threshold
//! after large frees), so one huge log line or answer would stay in the server's RSS for good.

/// Returns freed heap memory to the system. Call it after dropping a large buffer.
pub fn release_freed() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only walks the allocator's own free lists.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Buffers at least this large are worth giving back once dropped.
pub const LARGE: usize = 1 << 20;
