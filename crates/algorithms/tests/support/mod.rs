//! Shared by the classifier test binaries; each uses a part, hence the allowance.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::PathBuf;
#[cfg(feature = "classifier")]
use std::sync::{Arc, LazyLock};
use std::time::Duration;

use axum::Router;
#[cfg(feature = "classifier")]
use switchyard_algorithms::classifier::{ClassifierOptions, EngineChoice, ImageClassifier, Model};
use switchyard_algorithms::image_input::ImageInputOptions;
#[cfg(feature = "classifier")]
use switchyard_algorithms::image_input::ImageLoader;

/// The photos with a stable top-1 label, and the labels accepted for each.
pub(crate) const EXPECTED: [(&str, &[&str]); 7] = [
    ("coffee.png", &["espresso"]),
    ("camera.png", &["tripod"]),
    ("motorcycle_left.png", &["moped"]),
    ("rocket.jpg", &["missile"]),
    ("china.jpg", &["palace"]),
    ("flower.jpg", &["daisy"]),
    // Tiger cat and Egyptian cat score within 0.004 of each other: either is right.
    ("chelsea.png", &["tiger cat", "Egyptian cat"]),
];

pub(crate) fn testdata(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("testdata")
        .join(name)
}

pub(crate) fn image_bytes(name: &str) -> Vec<u8> {
    std::fs::read(testdata("images").join(name)).expect("test image")
}

#[cfg(feature = "classifier")]
/// The built-in model on tract, loaded once per test binary (a second or two).
pub(crate) fn tract_model() -> Arc<Model> {
    static MODEL: LazyLock<Arc<Model>> = LazyLock::new(|| {
        let options = ClassifierOptions {
            engine: EngineChoice::Tract,
            ..ClassifierOptions::default()
        };
        Arc::new(Model::load(&options, 1).expect("the built-in model loads on tract"))
    });
    MODEL.clone()
}

/// Image options for images served by a test server on 127.0.0.1.
pub(crate) fn local_images() -> ImageInputOptions {
    ImageInputOptions {
        allow_private_urls: true,
        fetch_timeout: Duration::from_secs(5),
        ..ImageInputOptions::default()
    }
}

#[cfg(feature = "classifier")]
/// The classifier as the runner hosts it, over the shared tract model. Built per test: an HTTP
/// client's pooled connections belong to the runtime of the test that opened them.
pub(crate) fn classifier(images: ImageInputOptions) -> ImageClassifier {
    ImageClassifier::new(tract_model(), ImageLoader::new(images).unwrap())
}

/// Serves `router` on an ephemeral port of 127.0.0.1 for the rest of the test.
pub(crate) async fn serve(router: Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    address
}

/// A PNG whose header claims `width` x `height` RGB pixels, with a few bytes of image data:
/// what a decompression bomb looks like to a decoder that trusts headers.
pub(crate) fn png_claiming(width: u32, height: u32) -> Vec<u8> {
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut header = Vec::new();
    header.extend_from_slice(&width.to_be_bytes());
    header.extend_from_slice(&height.to_be_bytes());
    // 8 bits per sample, RGB, deflate, adaptive filtering, no interlacing.
    header.extend_from_slice(&[8, 2, 0, 0, 0]);
    push_chunk(&mut png, b"IHDR", &header);
    // A zlib stream of nothing.
    push_chunk(
        &mut png,
        b"IDAT",
        &[0x78, 0x9c, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01],
    );
    push_chunk(&mut png, b"IEND", &[]);
    png
}

/// A baseline JPEG whose frame header claims `width` x `height` pixels over the scan of a 16x16
/// grey image: a bomb to a decoder that trusts headers, in a few hundred bytes.
pub(crate) fn jpeg_claiming(width: u16, height: u16) -> Vec<u8> {
    let mut jpeg = Vec::new();
    image::codecs::jpeg::JpegEncoder::new(&mut jpeg)
        .encode(&[128; 16 * 16 * 3], 16, 16, image::ExtendedColorType::Rgb8)
        .unwrap();
    let frame = jpeg
        .windows(2)
        .position(|marker| marker == [0xff, 0xc0])
        .expect("a baseline frame header");
    // The marker, the segment's length, the sample precision, then height and width.
    jpeg[frame + 5..frame + 7].copy_from_slice(&height.to_be_bytes());
    jpeg[frame + 7..frame + 9].copy_from_slice(&width.to_be_bytes());
    jpeg
}

fn push_chunk(png: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
    png.extend_from_slice(&(data.len() as u32).to_be_bytes());
    png.extend_from_slice(kind);
    png.extend_from_slice(data);
    let crc = crc32(kind.iter().chain(data));
    png.extend_from_slice(&crc.to_be_bytes());
}

/// PNG's CRC-32 (ISO 3309), bit by bit: a few hundred bytes need no table.
fn crc32<'a>(bytes: impl Iterator<Item = &'a u8>) -> u32 {
    let mut crc = 0xffff_ffffu32;
    for byte in bytes {
        crc ^= u32::from(*byte);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xedb8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}
