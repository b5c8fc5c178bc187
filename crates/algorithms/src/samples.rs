//! Sample photos built into the binary (provenance: `testdata/images/PROVENANCE.md`): what
//! `up --demo` shows and `switchyard bench` measures with, so neither needs files at run time.

/// Name and bytes of each sample photo: three PNGs and two JPEGs, 451x300 to 640x427, 140-470 KB.
pub const SAMPLE_IMAGES: [(&str, &[u8]); 5] = [
    (
        "coffee.png",
        include_bytes!("../testdata/images/coffee.png"),
    ),
    (
        "camera.png",
        include_bytes!("../testdata/images/camera.png"),
    ),
    (
        "chelsea.png",
        include_bytes!("../testdata/images/chelsea.png"),
    ),
    ("china.jpg", include_bytes!("../testdata/images/china.jpg")),
    (
        "flower.jpg",
        include_bytes!("../testdata/images/flower.jpg"),
    ),
];

/// The sample a phone photo and a screenshot are made from ([`phone_photo`], [`screenshot`]).
const LARGE_SOURCE: &[u8] = SAMPLE_IMAGES[0].1;

/// A phone photo's size and weight, made here from a sample, the same bytes every time: the
/// sample upscaled to 4032x3024 (12 MP), with a sensor's grain (without it the upscaled photo
/// compresses to a fraction of a real one), as a JPEG of quality 92: about 4 MB.
pub fn phone_photo() -> Result<Vec<u8>, image::ImageError> {
    let mut pixels = upscaled(4032, 3024)?;
    // xorshift32 from a fixed seed: grain of -6 to +6 levels, the same on every machine.
    let mut state = 0x2545_f491_u32;
    for value in pixels.iter_mut() {
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        let grain = (state % 13) as i16 - 6;
        *value = (i16::from(*value) + grain).clamp(0, 255) as u8;
    }
    let mut jpeg = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut jpeg, 92).encode_image(&pixels)?;
    Ok(jpeg)
}

/// A large screenshot's size, made here from a sample, the same bytes every time: the sample
/// upscaled to 2560x1600, as a PNG.
pub fn screenshot() -> Result<Vec<u8>, image::ImageError> {
    let pixels = upscaled(2560, 1600)?;
    let mut png = Vec::new();
    pixels.write_with_encoder(image::codecs::png::PngEncoder::new(&mut png))?;
    Ok(png)
}

fn upscaled(width: u32, height: u32) -> Result<image::RgbImage, image::ImageError> {
    let sample = image::load_from_memory(LARGE_SOURCE)?.into_rgb8();
    Ok(image::imageops::resize(
        &sample,
        width,
        height,
        image::imageops::FilterType::Triangle,
    ))
}
