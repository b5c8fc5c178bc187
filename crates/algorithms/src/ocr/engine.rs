//! Tesseract engines, kept between calls. Initialising one reads its language model from disk
//! and costs far more than a small image's recognition (see docs/algorithms.md), so finished
//! engines wait, per language, for the next call. An engine is `Send` but not `Sync`: each is
//! used by one call at a time, taken out of the pool and put back after.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use image::GrayImage;

use super::library::{Engine, TesseractLibrary};
use super::tessdata::Tessdata;
use super::tsv::{self, Page};

/// Tesseract cannot read an image it was given.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// Tesseract could not load the language's model from the tessdata directory.
    #[error("Tesseract cannot load language '{language}' from {dir}")]
    Init {
        /// The language setting, e.g. `eng+deu`.
        language: String,
        /// The tessdata directory.
        dir: String,
    },
    /// Tesseract loaded but failed on this image.
    #[error("Tesseract failed: {0}")]
    Recognition(String),
}

/// Pixels per inch reported to Tesseract. Decoded pixels carry none; without one Tesseract
/// guesses and warns on every call. 70 is its own fallback, right for screen images.
const SOURCE_PPI: i32 = 70;

/// Idle engines, each tagged with its language setting.
pub struct EnginePool {
    library: Arc<TesseractLibrary>,
    tessdata: Tessdata,
    idle: Mutex<Vec<(String, Engine)>>,
    /// Most engines kept idle, all languages together; beyond it the least recently used goes.
    max_idle: usize,
}

/// Which library and data serve; the idle engines are raw handles behind a lock, left out.
impl std::fmt::Debug for EnginePool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EnginePool")
            .field("library", &self.library)
            .field("tessdata", &self.tessdata)
            .field("max_idle", &self.max_idle)
            .finish_non_exhaustive()
    }
}

impl EnginePool {
    /// A pool that creates engines on demand and keeps at most `max_idle` of them between calls.
    pub fn new(library: Arc<TesseractLibrary>, tessdata: Tessdata, max_idle: usize) -> Self {
        EnginePool {
            library,
            tessdata,
            idle: Mutex::new(Vec::new()),
            max_idle,
        }
    }

    /// The language data the pool's engines read.
    pub fn tessdata(&self) -> &Tessdata {
        &self.tessdata
    }

    /// Recognises `image` with an engine for `language` (already checked against the
    /// installed ones). Blocking: call it on the blocking pool.
    pub fn recognize(&self, image: &GrayImage, language: &str) -> Result<Page, EngineError> {
        let mut engine = self.take(language)?;
        let tsv = engine
            .tsv(image.as_raw(), image.width(), image.height(), SOURCE_PPI)
            .map_err(|e| EngineError::Recognition(e.to_string()))?;
        self.give_back(language, engine);
        Ok(tsv::parse(&tsv))
    }

    /// An idle engine for `language`, or a new one.
    pub fn take(&self, language: &str) -> Result<Engine, EngineError> {
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
        let engine = Engine::new(&self.library, &dir, language).map_err(|_| EngineError::Init {
            language: language.to_string(),
            dir: dir.clone(),
        })?;
        tracing::debug!(
            language,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "tesseract engine initialised"
        );
        Ok(engine)
    }

    /// Keeps `engine` for the next call, dropping the least recently used one when full.
    pub fn give_back(&self, language: &str, engine: Engine) {
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

    fn lock(&self) -> MutexGuard<'_, Vec<(String, Engine)>> {
        // The list stays consistent whatever a panicking holder did: a push or a remove is whole.
        self.idle
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}
