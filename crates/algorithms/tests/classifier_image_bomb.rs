//! A PNG or a JPEG that claims 60000x60000 pixels (10.8 GB decoded) in a few bytes is refused
//! from its header, before any pixel buffer exists, whole or at the classifier's reduced scale:
//! measured here by the largest single allocation made while loading it. One test alone in its
//! binary, so no other test's allocations are counted.

// A failed unwrap is the test's failure message.
#![allow(clippy::unwrap_used)]

mod support;

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use base64::Engine as _;
use support::{jpeg_claiming, local_images, png_claiming};
use switchyard_algorithms::image_input::{
    ImageInput, ImageInputError, ImageLoader, decode_at_least,
};
use switchyard_algorithms::samples::phone_photo;

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
async fn huge_headers_are_refused_without_allocating_their_pixels() {
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

    // The classifier's reduced-scale JPEG path checks the declared size as early: the limit is
    // on what the user sends, not on the 7500x7500 it would be decoded to.
    let bomb = jpeg_claiming(60_000, 60_000);
    assert!(bomb.len() < 1_000, "{} bytes", bomb.len());
    let input = ImageInput::base64(base64::engine::general_purpose::STANDARD.encode(&bomb));
    LARGEST.store(0, Ordering::Relaxed);
    let error = loader.load_at_least(&input, 256).await.unwrap_err();
    let largest = LARGEST.load(Ordering::Relaxed);
    assert_eq!(error.status(), 413, "{error}");
    assert!(error.to_string().contains("60000x60000 pixels"), "{error}");
    assert!(largest < 1 << 20, "largest allocation: {largest} bytes");

    // A real 12 MP photo over a 10 MP limit is refused the same way, though its 1/8 scale
    // decode would hold 190,512 pixels.
    let photo = phone_photo().unwrap();
    let max_pixels = 10_000_000;
    LARGEST.store(0, Ordering::Relaxed);
    let error = decode_at_least(&photo, max_pixels, 256).unwrap_err();
    let largest = LARGEST.load(Ordering::Relaxed);
    assert_eq!(
        error,
        ImageInputError::TooManyPixels {
            width: 4032,
            height: 3024,
            max_pixels
        }
    );
    assert!(largest < 1 << 20, "largest allocation: {largest} bytes");
}
