//! The image a payload names, fetched and decoded safely; shared by every image algorithm.
//!
//! A payload gives `image_url` (http or https) or `image_base64`, exactly one; algorithms flatten
//! [`ImageInput`] into their own payload. [`ImageLoader`] fetches within a time, size, redirect
//! and address budget ([`ImageInputOptions`]) and decodes on the blocking pool, refusing images
//! whose pixel count would exhaust memory before allocating them.

mod address;
mod decode;
mod error;
mod fetch;

use std::time::{Duration, Instant};

use base64::Engine as _;
use image::DynamicImage;
use schemars::JsonSchema;
use serde::Deserialize;
use switchyard_runner::{AlgorithmError, blocking};

pub use address::{Restricted, restriction};
pub use decode::{MAX_SIDE, decode, decode_at_least};
pub use error::ImageInputError;

/// The part of a payload that names an image. Flatten it into an algorithm's payload.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
pub struct ImageInput {
    /// URL of the image, http or https. `url`, the seed's name for it, is accepted too.
    #[serde(default, alias = "url")]
    pub image_url: Option<String>,
    /// The image itself, base64-encoded (line breaks and a `data:...;base64,` prefix are accepted).
    #[serde(default)]
    pub image_base64: Option<String>,
}

impl ImageInput {
    /// An image to fetch from `url`.
    pub fn url(url: impl Into<String>) -> Self {
        ImageInput {
            image_url: Some(url.into()),
            image_base64: None,
        }
    }

    /// An image carried in the payload, base64-encoded.
    pub fn base64(encoded: impl Into<String>) -> Self {
        ImageInput {
            image_url: None,
            image_base64: Some(encoded.into()),
        }
    }
}

/// Bytes of an image accepted by default, fetched or inline.
pub const DEFAULT_MAX_BYTES: u64 = 20 * 1024 * 1024;
/// Pixels of an image accepted by default: 8000x8000; 192 MB once decoded to RGB.
pub const DEFAULT_MAX_PIXELS: u64 = 64_000_000;
/// Budget of a whole fetch by default: an image host slower than this is treated as down.
pub const DEFAULT_FETCH_TIMEOUT: Duration = Duration::from_secs(10);
/// Redirects followed by default: enough for a CDN, not a loop.
pub const DEFAULT_MAX_REDIRECTS: usize = 5;

/// How images are fetched and decoded.
#[derive(Debug, Clone, PartialEq)]
pub struct ImageInputOptions {
    /// Fetch from loopback, private, link-local... addresses too. Off by default so a payload
    /// cannot make the runner reach its own network; tests and closed networks turn it on.
    pub allow_private_urls: bool,
    /// Largest image accepted, in bytes; a download stops reading there.
    pub max_bytes: u64,
    /// Largest image accepted, in pixels, checked from its header before decoding.
    pub max_pixels: u64,
    /// Budget of a whole fetch: connection, redirects and body.
    pub fetch_timeout: Duration,
    /// Redirects followed before a fetch fails; each hop's address is checked like the first.
    pub max_redirects: usize,
}

impl Default for ImageInputOptions {
    fn default() -> Self {
        ImageInputOptions {
            allow_private_urls: false,
            max_bytes: DEFAULT_MAX_BYTES,
            max_pixels: DEFAULT_MAX_PIXELS,
            fetch_timeout: DEFAULT_FETCH_TIMEOUT,
            max_redirects: DEFAULT_MAX_REDIRECTS,
        }
    }
}

/// Fetches and decodes payload images. Cheap to clone: clones share one connection pool.
#[derive(Debug, Clone)]
pub struct ImageLoader {
    client: reqwest::Client,
    options: ImageInputOptions,
}

impl ImageLoader {
    /// Fails only when the TLS backend cannot be set up.
    pub fn new(options: ImageInputOptions) -> Result<Self, reqwest::Error> {
        Ok(ImageLoader {
            client: fetch::http_client(&options)?,
            options,
        })
    }

    /// The limits this loader applies.
    pub fn options(&self) -> &ImageInputOptions {
        &self.options
    }

    /// The decoded image, every pixel of it; decoding runs on the blocking pool.
    pub async fn load(&self, input: &ImageInput) -> Result<DynamicImage, AlgorithmError> {
        self.load_scaled(input, None).await
    }

    /// The decoded image for a consumer that shrinks it to a shorter side of `shorter_side`: a
    /// large JPEG is decoded at a reduced scale no smaller than that ([`decode_at_least`]).
    pub async fn load_at_least(
        &self,
        input: &ImageInput,
        shorter_side: u32,
    ) -> Result<DynamicImage, AlgorithmError> {
        self.load_scaled(input, Some(shorter_side)).await
    }

    async fn load_scaled(
        &self,
        input: &ImageInput,
        shorter_side: Option<u32>,
    ) -> Result<DynamicImage, AlgorithmError> {
        let bytes = self.bytes(input).await?;
        let max_pixels = self.options.max_pixels;
        blocking(move || {
            let started = Instant::now();
            let image = match shorter_side {
                Some(shorter_side) => decode_at_least(&bytes, max_pixels, shorter_side)?,
                None => decode(&bytes, max_pixels)?,
            };
            tracing::debug!(
                width = image.width(),
                height = image.height(),
                elapsed_us = started.elapsed().as_micros() as u64,
                "image decoded"
            );
            Ok(image)
        })
        .await
    }

    /// The image's encoded bytes, from whichever source the payload gives.
    pub async fn bytes(&self, input: &ImageInput) -> Result<Vec<u8>, ImageInputError> {
        let started = Instant::now();
        let (bytes, source) = match (&input.image_url, &input.image_base64) {
            (Some(url), None) => {
                let url = fetch::parse_url(url, self.options.allow_private_urls)?;
                (fetch::get(&self.client, url, &self.options).await?, "url")
            }
            (None, Some(encoded)) => (decode_base64(encoded, self.options.max_bytes)?, "base64"),
            (None, None) => return Err(ImageInputError::Source("neither")),
            (Some(_), Some(_)) => return Err(ImageInputError::Source("both")),
        };
        tracing::debug!(
            source,
            bytes = bytes.len(),
            elapsed_us = started.elapsed().as_micros() as u64,
            "image read"
        );
        Ok(bytes)
    }
}

fn decode_base64(encoded: &str, max_bytes: u64) -> Result<Vec<u8>, ImageInputError> {
    let encoded = match encoded.trim_start().strip_prefix("data:") {
        Some(data_url) => data_url
            .split_once("base64,")
            .map(|(_, data)| data)
            .ok_or_else(|| {
                ImageInputError::InvalidBase64("a data: URL without ';base64,'".into())
            })?,
        None => encoded,
    };
    // Every 4 characters make at most 3 bytes: refuse a huge payload before decoding it.
    if encoded.len() as u64 / 4 * 3 > max_bytes.saturating_add(3) {
        return Err(ImageInputError::TooLarge { limit: max_bytes });
    }
    let engine = base64::engine::general_purpose::STANDARD;
    let decoded = if encoded.bytes().any(|byte| byte.is_ascii_whitespace()) {
        let compact: Vec<u8> = encoded
            .bytes()
            .filter(|byte| !byte.is_ascii_whitespace())
            .collect();
        engine.decode(compact)
    } else {
        engine.decode(encoded)
    };
    let bytes = decoded.map_err(|e| ImageInputError::InvalidBase64(e.to_string()))?;
    if bytes.len() as u64 > max_bytes {
        return Err(ImageInputError::TooLarge { limit: max_bytes });
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_base64_as_people_write_it() {
        let plain = base64::engine::general_purpose::STANDARD.encode(b"some image bytes");
        let wrapped = format!("{}\n{}\n", &plain[..8], &plain[8..]);
        let data_url = format!("data:image/png;base64,{plain}");
        for encoded in [&plain, &wrapped, &data_url] {
            assert_eq!(decode_base64(encoded, 100).unwrap(), b"some image bytes");
        }
        assert!(matches!(
            decode_base64("data:image/png,abc", 100),
            Err(ImageInputError::InvalidBase64(_))
        ));
        assert!(matches!(
            decode_base64("not base64!", 100),
            Err(ImageInputError::InvalidBase64(_))
        ));
    }

    #[test]
    fn refuses_base64_over_the_limit() {
        let encoded = base64::engine::general_purpose::STANDARD.encode([0u8; 100]);
        assert_eq!(decode_base64(&encoded, 100).unwrap().len(), 100);
        assert_eq!(
            decode_base64(&encoded, 99),
            Err(ImageInputError::TooLarge { limit: 99 })
        );
        let huge = "A".repeat(1000);
        assert_eq!(
            decode_base64(&huge, 100),
            Err(ImageInputError::TooLarge { limit: 100 })
        );
    }

    #[tokio::test]
    async fn needs_exactly_one_source() {
        let loader = ImageLoader::new(ImageInputOptions::default()).unwrap();
        let neither = loader.bytes(&ImageInput::default()).await.unwrap_err();
        assert_eq!(neither.status(), 400);
        assert!(
            neither.to_string().contains("it gives neither"),
            "{neither}"
        );
        let both = ImageInput {
            image_url: Some("http://example.com/a.png".into()),
            image_base64: Some("AAAA".into()),
        };
        let both = loader.bytes(&both).await.unwrap_err();
        assert!(both.to_string().contains("it gives both"), "{both}");
    }

    #[tokio::test]
    async fn refuses_bad_urls_before_sending_anything() {
        let loader = ImageLoader::new(ImageInputOptions::default()).unwrap();
        let cases = [
            ("not a url", "image_url is not a valid URL"),
            (
                "file:///etc/passwd",
                "must be an http or https URL, not 'file'",
            ),
            (
                "http://127.0.0.1:1/x.png",
                "127.0.0.1 is a loopback address",
            ),
            ("http://169.254.169.254/latest", "is a link-local address"),
            (
                "http://[::ffff:10.0.0.1]/",
                "is a private (RFC 1918) address",
            ),
        ];
        for (url, expected) in cases {
            let error = loader.bytes(&ImageInput::url(url)).await.unwrap_err();
            assert_eq!(error.status(), 400, "{url}");
            assert!(error.to_string().contains(expected), "{url}: {error}");
        }
    }

    #[test]
    fn the_seed_field_name_is_accepted() {
        let input: ImageInput =
            serde_json::from_value(serde_json::json!({"url": "http://example.com/a.png"})).unwrap();
        assert_eq!(input.image_url.as_deref(), Some("http://example.com/a.png"));
    }
}
