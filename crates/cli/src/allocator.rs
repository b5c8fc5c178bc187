//! How the process's allocator treats large buffers.

/// Every allocation from 128 KiB up gets pages of its own, returned to the kernel when freed.
///
/// That is glibc's rule at start, but the first such block freed raises the threshold (up to
/// 32 MiB, "dynamic mmap threshold") and later ones come from malloc's heaps, which keep the pages
/// after a free. Task bodies are such blocks (images in base64, 0.2-1.2 MB each, several copies in
/// flight): a worker that had seen a few hundred kept tens of MB it no longer used. Fixing the
/// threshold turns that off; an mmap per large buffer is noise beside what such a buffer carries.
pub(crate) fn return_large_buffers_to_the_kernel() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets a malloc tunable; it is called before any other thread exists.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 128 * 1024);
    }
}
