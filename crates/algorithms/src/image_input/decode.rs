//! Bytes to pixels, refusing images whose size would take more memory than allowed before any
//! pixel buffer is allocated.

use std::io::Cursor;

use image::{
    DynamicImage, GrayImage, ImageDecoder, ImageError, ImageFormat, ImageReader, Limits, RgbImage,
};
use jpeg_decoder::PixelFormat;

use super::ImageInputError;

/// Longest side decoded. JPEG cannot exceed it and WebP stays far below; a PNG or GIF past it is
/// a decompression bomb, not a photo.
pub const MAX_SIDE: u32 = 65_535;

/// Most bytes one pixel takes while decoding (16-bit RGBA); bounds the decoder's allocations.
const MAX_BYTES_PER_PIXEL: u64 = 8;

/// The reductions a JPEG's inverse DCT can make, largest first: 8x8 blocks decoded as 1x1, 2x2
/// or 4x4 pixels.
const JPEG_REDUCTIONS: [u32; 3] = [8, 4, 2];

/// Decodes `bytes`, whatever their format (found from the content, not a name or a header), when
/// the image has at most `max_pixels` pixels. The dimensions come from the header: a 60000x60000
/// PNG of a few hundred bytes is refused without allocating its 10 GB.
pub fn decode(bytes: &[u8], max_pixels: u64) -> Result<DynamicImage, ImageInputError> {
    let reader = reader(bytes, max_pixels)?;
    decode_whole(reader, max_pixels)
}

/// Decodes `bytes` as [`decode`] does, but a JPEG whose shorter side is at least twice
/// `shorter_side` is decoded at 1/2, 1/4 or 1/8 of its size, the smallest that keeps the shorter
/// side at least `shorter_side`, by scaling its inverse DCT: a 4032x3024 photo becomes 504x378
/// for a fraction of the work. For a consumer that resizes anyway (the classifier); OCR needs
/// every pixel. `max_pixels` applies to the size the image declares, as in [`decode`].
pub fn decode_at_least(
    bytes: &[u8],
    max_pixels: u64,
    shorter_side: u32,
) -> Result<DynamicImage, ImageInputError> {
    let reader = reader(bytes, max_pixels)?;
    if reader.format() == Some(ImageFormat::Jpeg)
        && let Some(image) = decode_jpeg_reduced(bytes, max_pixels, shorter_side)?
    {
        return Ok(image);
    }
    decode_whole(reader, max_pixels)
}

fn reader(bytes: &[u8], max_pixels: u64) -> Result<ImageReader<Cursor<&[u8]>>, ImageInputError> {
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
    Ok(reader)
}

fn decode_whole(
    reader: ImageReader<Cursor<&[u8]>>,
    max_pixels: u64,
) -> Result<DynamicImage, ImageInputError> {
    let decoder = reader.into_decoder().map_err(image_error)?;
    let (width, height) = decoder.dimensions();
    within_limit(width, height, max_pixels)?;
    DynamicImage::from_decoder(decoder).map_err(image_error)
}

fn within_limit(width: u32, height: u32, max_pixels: u64) -> Result<(), ImageInputError> {
    if u64::from(width) * u64::from(height) > max_pixels {
        return Err(ImageInputError::TooManyPixels {
            width,
            height,
            max_pixels,
        });
    }
    Ok(())
}

/// The JPEG at the largest reduction that keeps its shorter side at least `shorter_side`, or
/// `None` when no reduction fits or the scaling decoder cannot read it (16-bit or CMYK samples, a
/// stream it finds faulty): then the whole decode decides, so the reduced path never refuses an
/// image the whole one accepts. Declared sizes over `max_pixels` are refused from the header.
fn decode_jpeg_reduced(
    bytes: &[u8],
    max_pixels: u64,
    shorter_side: u32,
) -> Result<Option<DynamicImage>, ImageInputError> {
    let mut decoder = jpeg_decoder::Decoder::new(Cursor::new(bytes));
    if decoder.read_info().is_err() {
        return Ok(None);
    }
    let Some(info) = decoder.info() else {
        return Ok(None);
    };
    let (width, height) = (u32::from(info.width), u32::from(info.height));
    within_limit(width, height, max_pixels)?;
    let Some(reduction) = JPEG_REDUCTIONS
        .into_iter()
        .find(|reduction| width.min(height) / reduction >= shorter_side)
    else {
        return Ok(None);
    };
    if !matches!(info.pixel_format, PixelFormat::RGB24 | PixelFormat::L8) {
        return Ok(None);
    }
    decoder.set_max_decoding_buffer_size(
        usize::try_from(max_pixels.saturating_mul(MAX_BYTES_PER_PIXEL)).unwrap_or(usize::MAX),
    );
    // Each side is a whole number of pixels only once rounded up, as the decoder rounds it.
    let reduced = |side: u32| u16::try_from(side.div_ceil(reduction)).unwrap_or(u16::MAX);
    let Ok((width, height)) = decoder.scale(reduced(width), reduced(height)) else {
        return Ok(None);
    };
    let Ok(pixels) = decoder.decode() else {
        return Ok(None);
    };
    let (width, height) = (u32::from(width), u32::from(height));
    let image = match info.pixel_format {
        PixelFormat::L8 => GrayImage::from_raw(width, height, pixels).map(DynamicImage::from),
        _ => RgbImage::from_raw(width, height, pixels).map(DynamicImage::from),
    };
    Ok(image)
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
