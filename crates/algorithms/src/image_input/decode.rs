//! Bytes to pixels, refusing images whose size would take more memory than allowed before any
//! pixel buffer is allocated.

use std::io::Cursor;

use image::{DynamicImage, ImageDecoder, ImageError, ImageReader, Limits};

use super::ImageInputError;

/// Longest side decoded. JPEG cannot exceed it and WebP stays far below; a PNG or GIF past it is
/// a decompression bomb, not a photo.
pub const MAX_SIDE: u32 = 65_535;

/// Most bytes one pixel takes while decoding (16-bit RGBA); bounds the decoder's allocations.
const MAX_BYTES_PER_PIXEL: u64 = 8;

/// Decodes `bytes`, whatever their format (found from the content, not a name or a header), when
/// the image has at most `max_pixels` pixels. The dimensions come from the header: a 60000x60000
/// PNG of a few hundred bytes is refused without allocating its 10 GB.
pub fn decode(bytes: &[u8], max_pixels: u64) -> Result<DynamicImage, ImageInputError> {
    let mut reader = ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| ImageInputError::Undecodable(e.to_string()))?;
    if reader.format().is_none() {
        return Err(ImageInputError::NotAnImage);
    }
    let mut limits = Limits::default();
    limits.max_image_width = Some(MAX_SIDE);
    limits.max_image_height = Some(MAX_SIDE);
    limits.max_alloc = Some(max_pixels.saturating_mul(MAX_BYTES_PER_PIXEL));
    reader.limits(limits);
    let decoder = reader.into_decoder().map_err(image_error)?;
    let (width, height) = decoder.dimensions();
    if u64::from(width) * u64::from(height) > max_pixels {
        return Err(ImageInputError::TooManyPixels {
            width,
            height,
            max_pixels,
        });
    }
    DynamicImage::from_decoder(decoder).map_err(image_error)
}

fn image_error(error: ImageError) -> ImageInputError {
    match error {
        ImageError::Limits(limit) => ImageInputError::TooLargeToDecode(limit.to_string()),
        ImageError::Unsupported(unsupported) => {
            ImageInputError::Undecodable(format!("unsupported image: {unsupported}"))
        }
        // Truncated data surfaces as an I/O error (unexpected end of file).
        other => ImageInputError::Undecodable(other.to_string()),
    }
}
