//! `ocr`: the text of an image, line by line with boxes and confidences, read by Tesseract.
//!
//! When the runner starts, Tesseract's library is loaded ([`library`]), the tessdata directory
//! found, the default language checked and one engine initialised. When Tesseract or its models
//! are not on the machine, `ocr` is unavailable (the runner serves the other algorithms and
//! reports it, with the command that installs Tesseract); a broken installation stops the
//! runner instead of failing every call. Each
//! call checks its language (a 400 names the installed ones), fetches and decodes its image
//! ([`crate::image_input`]), then recognises on the blocking pool with a pooled engine.

mod engine;
pub mod library;
mod tessdata;
mod tsv;

use std::sync::Arc;
use std::time::Instant;

use image::{DynamicImage, GrayImage, Luma};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use switchyard_runner::{Algorithm, AlgorithmError, blocking};

use crate::Options;
use crate::image_input::{ImageInput, ImageLoader};

pub use engine::{EngineError, EnginePool};
pub use tessdata::{Tessdata, TessdataError, UnknownOcrLanguage};
pub use tsv::{BoundingBox, Line, Page};

/// The language read when neither the payload nor the runner's options name one.
pub const DEFAULT_LANGUAGE: &str = "eng";

/// The payload of `ocr`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct OcrPayload {
    /// The image: `image_url` or `image_base64`.
    #[serde(flatten)]
    pub image: ImageInput,
    /// Tesseract language of the text (`eng`, `deu`...), or several joined by `+` (`eng+deu`);
    /// default: the runner's `--ocr-language`, else `eng`.
    #[serde(default)]
    pub language: Option<String>,
}

/// The answer of `ocr`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OcrResult {
    /// Every line read, separated by line breaks; paragraphs by a blank line. Empty when the
    /// image holds no text.
    pub text: String,
    /// The lines, in reading order.
    pub lines: Vec<Line>,
    /// The Tesseract language setting used.
    pub language: String,
}

/// The OCR algorithm cannot start as configured.
#[derive(Debug, thiserror::Error)]
pub enum OcrError {
    /// No usable language data was found.
    #[error(transparent)]
    Tessdata(#[from] TessdataError),
    /// The configured default language is not installed.
    #[error("the default OCR language: {0}")]
    DefaultLanguage(#[from] UnknownOcrLanguage),
    /// A first engine could not be created.
    #[error(transparent)]
    Engine(#[from] EngineError),
    /// The Tesseract library could not be loaded.
    #[error(transparent)]
    Library(#[from] library::LibraryError),
    /// The HTTP client that fetches images could not be built (TLS set-up).
    #[error("cannot build the HTTP client: {0}")]
    HttpClient(#[from] reqwest::Error),
}

/// Registers `ocr`; the tessdata directory is checked and an engine warmed when the runner starts.
pub fn ocr_algorithm(options: &Options) -> Algorithm {
    let options = options.clone();
    Algorithm::with_state(
        "ocr",
        move || {
            Ocr::load(&options).map_err(|error| match error {
                OcrError::Library(_) | OcrError::Tessdata(TessdataError::NotFound { .. }) => {
                    AlgorithmError::unavailable(error.to_string())
                }
                other => AlgorithmError::internal(other.to_string()),
            })
        },
        |ocr: Arc<Ocr>, payload: OcrPayload| async move { ocr.read(payload).await },
    )
}

/// The loaded algorithm: an image loader, the default language and the engines.
#[derive(Debug)]
pub struct Ocr {
    loader: ImageLoader,
    default_language: String,
    pool: Arc<EnginePool>,
}

impl Ocr {
    /// Finds the models and initialises one engine for the default language. Keeps as many
    /// idle engines as the machine has cores: the runner's default concurrency.
    pub fn load(options: &Options) -> Result<Self, OcrError> {
        let started = Instant::now();
        let library = library::TesseractLibrary::load(options.tesseract_library.as_ref())?;
        let tessdata = Tessdata::locate(options.tessdata_dir.as_deref())?;
        let default_language = options
            .ocr_language
            .clone()
            .unwrap_or_else(|| DEFAULT_LANGUAGE.to_string());
        tessdata.check(&default_language)?;
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let pool = EnginePool::new(library.clone(), tessdata, cores);
        pool.give_back(&default_language, pool.take(&default_language)?);
        tracing::info!(
            tesseract = %library.version,
            library = %library.source,
            tessdata = %pool.tessdata().dir().display(),
            language = %default_language,
            installed = ?pool.tessdata().languages().collect::<Vec<_>>(),
            elapsed_ms = started.elapsed().as_millis() as u64,
            "ocr loaded"
        );
        Ok(Ocr {
            loader: ImageLoader::new(options.image_input.clone())?,
            default_language,
            pool: Arc::new(pool),
        })
    }

    /// The engine pool, to see which library and language data serve.
    pub fn pool(&self) -> &Arc<EnginePool> {
        &self.pool
    }

    /// Reads the payload's image. The language is checked before the image is fetched: a
    /// request that cannot succeed costs no download.
    pub async fn read(&self, payload: OcrPayload) -> Result<OcrResult, AlgorithmError> {
        let language = payload
            .language
            .unwrap_or_else(|| self.default_language.clone());
        self.pool.tessdata().check(&language)?;
        let image = self.loader.load(&payload.image).await?;
        let pool = self.pool.clone();
        blocking(move || {
            let started = Instant::now();
            let page = pool
                .recognize(&flatten_to_gray(&image), &language)
                .map_err(|e| AlgorithmError::internal(e.to_string()))?;
            tracing::debug!(
                language = %language,
                width = image.width(),
                height = image.height(),
                lines = page.lines.len(),
                elapsed_ms = started.elapsed().as_millis() as u64,
                "ocr done"
            );
            Ok(OcrResult {
                text: page.text(),
                lines: page.lines,
                language,
            })
        })
        .await
    }
}

/// Grey levels for Tesseract, transparent pixels made white: a PNG of dark text on a transparent
/// background stores its background as transparent black, which plain grey conversion would
/// turn into black text on black.
pub fn flatten_to_gray(image: &DynamicImage) -> GrayImage {
    if !image.color().has_alpha() {
        return image.to_luma8();
    }
    let rgba = image.to_rgba8();
    GrayImage::from_fn(image.width(), image.height(), |x, y| {
        let [red, green, blue, alpha] = rgba.get_pixel(x, y).0;
        // Rec. 709 luma, as `image` computes it.
        let luma = 0.2126 * f32::from(red) + 0.7152 * f32::from(green) + 0.0722 * f32::from(blue);
        let opacity = f32::from(alpha) / 255.0;
        Luma([(luma * opacity + 255.0 * (1.0 - opacity)).round() as u8])
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::{Rgba, RgbaImage};

    #[test]
    fn transparent_pixels_become_white_and_opaque_ones_keep_their_grey() {
        let mut image = RgbaImage::new(3, 1);
        image.put_pixel(0, 0, Rgba([0, 0, 0, 0]));
        image.put_pixel(1, 0, Rgba([0, 0, 0, 255]));
        image.put_pixel(2, 0, Rgba([0, 0, 0, 128]));
        let gray = flatten_to_gray(&DynamicImage::ImageRgba8(image));
        assert_eq!(gray.as_raw(), &[255, 0, 127]);
        let opaque = DynamicImage::ImageLuma8(GrayImage::from_raw(2, 1, vec![10, 200]).unwrap());
        assert_eq!(flatten_to_gray(&opaque).as_raw(), &[10, 200]);
    }
}
