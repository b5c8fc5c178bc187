//! Tesseract engines, kept between calls. Initialising one reads its language model from disk
//! and costs far more than a small image's recognition (see docs/algorithms.md), so finished
//! engines wait, per language, for the next call. An engine is `Send` but not `Sync`: each is
//! used by one call at a time, taken out of the pool and put back after.

use std::sync::{Mutex, MutexGuard};
use std::time::Instant;

use image::GrayImage;
use tesseract::Tesseract;

use super::tessdata::Tessdata;
use super::tsv::{self, Page};

/// Tesseract cannot read an image it was given.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("Tesseract cannot load language '{language}' from {dir}")]
    Init { language: String, dir: String },
    #[error("Tesseract failed: {0}")]
    Recognition(String),
}

/// Pixels per inch reported to Tesseract. Decoded pixels carry none; without one Tesseract
/// guesses and warns on every call. 70 is its own fallback, right for screen images.
const SOURCE_PPI: i32 = 70;

/// Idle engines, each tagged with its language setting.
pub struct EnginePool {
    tessdata: Tessdata,
    idle: Mutex<Vec<(String, Tesseract)>>,
    /// Most engines kept idle, all languages together; beyond it the least recently used goes.
    max_idle: usize,
}

impl EnginePool {
    pub fn new(tessdata: Tessdata, max_idle: usize) -> Self {
        EnginePool {
            tessdata,
            idle: Mutex::new(Vec::new()),
            max_idle,
        }
    }

    pub fn tessdata(&self) -> &Tessdata {
        &self.tessdata
    }

    /// Recognises `image` with an engine for `language` (already checked against the
    /// installed ones). Blocking: call it on the blocking pool.
    pub fn recognize(&self, image: &GrayImage, language: &str) -> Result<Page, EngineError> {
        let engine = self.take(language)?;
        let (width, height) = (image.width() as i32, image.height() as i32);
        let mut engine = engine
            .set_frame(image.as_raw(), width, height, 1, width)
            .map_err(|e| EngineError::Recognition(e.to_string()))?
            .set_source_resolution(SOURCE_PPI)
            .recognize()
            .map_err(|e| EngineError::Recognition(e.to_string()))?;
        let tsv = engine
            .get_tsv_text(0)
            .map_err(|e| EngineError::Recognition(e.to_string()))?;
        self.give_back(language, engine);
        Ok(tsv::parse(&tsv))
    }

    /// An idle engine for `language`, or a new one.
    pub fn take(&self, language: &str) -> Result<Tesseract, EngineError> {
        let reused = {
            let mut idle = self.lock();
            idle.iter()
                .rposition(|(tagged, _)| tagged == language)
                .map(|index| idle.remove(index).1)
        };
        if let Some(engine) = reused {
            return Ok(engine);
        }
        let started = Instant::now();
        let dir = self.tessdata.dir().to_string_lossy().into_owned();
        let init_error = || EngineError::Init {
            language: language.to_string(),
            dir: dir.clone(),
        };
        let engine = Tesseract::new(Some(&dir), Some(language)).map_err(|_| init_error())?;
        tracing::debug!(
            language,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "tesseract engine initialised"
        );
        Ok(engine)
    }

    /// Keeps `engine` for the next call, dropping the least recently used one when full.
    pub fn give_back(&self, language: &str, engine: Tesseract) {
        if self.max_idle == 0 {
            return;
        }
        let mut idle = self.lock();
        if idle.len() >= self.max_idle {
            idle.remove(0);
        }
        idle.push((language.to_string(), engine));
    }

    /// Engines waiting for a call.
    pub fn idle_count(&self) -> usize {
        self.lock().len()
    }

    fn lock(&self) -> MutexGuard<'_, Vec<(String, Tesseract)>> {
        // The list stays consistent whatever a panicking holder did: a push or a remove is whole.
        self.idle
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}
