//! A PNG that claims 60000x60000 pixels (10.8 GB decoded) in a few dozen bytes is refused from
//! its header, before any pixel buffer exists: measured here by the largest single allocation
//! made while loading it. Alone in its binary, so no other test's allocations are counted.

// A failed unwrap is the test's failure message.
#![allow(clippy::unwrap_used)]

mod support;

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use base64::Engine as _;
use support::{local_images, png_claiming};
use switchyard_algorithms::image_input::{ImageInput, ImageLoader};

/// The system allocator, remembering the largest allocation asked of it.
struct LargestAllocation;

static LARGEST: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for LargestAllocation {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LARGEST.fetch_max(layout.size(), Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LARGEST.fetch_max(new_size, Ordering::Relaxed);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: LargestAllocation = LargestAllocation;

#[tokio::test]
async fn a_huge_header_is_refused_without_allocating_its_pixels() {
    let loader = ImageLoader::new(local_images()).unwrap();
    let bomb = png_claiming(60_000, 60_000);
    assert!(bomb.len() < 100, "{} bytes", bomb.len());
    let input = ImageInput::base64(base64::engine::general_purpose::STANDARD.encode(&bomb));
    LARGEST.store(0, Ordering::Relaxed);
    let error = loader.load(&input).await.unwrap_err();
    let largest = LARGEST.load(Ordering::Relaxed);
    assert_eq!(error.status(), 413, "{error}");
    assert!(error.to_string().contains("60000x60000 pixels"), "{error}");
    // The PNG decoder's buffers are a few tens of KB; one row alone would be 180 KB.
    assert!(largest < 1 << 20, "largest allocation: {largest} bytes");

    // A header within the limits is decoded: the check is on size, not on crafted files.
    let small = png_claiming(4, 4);
    let input = ImageInput::base64(base64::engine::general_purpose::STANDARD.encode(&small));
    let error = loader.load(&input).await.unwrap_err();
    assert_eq!(
        error.status(),
        422,
        "the tiny IDAT holds no pixels: {error}"
    );
}
