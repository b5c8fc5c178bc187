//! The ONNX Runtime engine, loaded at run time from a shared library (`ort`'s `load-dynamic`).
//!
//! ONNX Runtime allows one environment per process: it is created on first use and shared.
//! A session runs one inference at a time (`Session::run` takes `&mut`), so the engine keeps a
//! pool of sessions, one per call the runner lets through at once, each single-threaded:
//! parallelism comes from concurrent calls, not from threads fighting over the same cores.

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard, OnceLock, TryLockError};

use ort::environment::Environment;
use ort::session::Session;
use ort::session::builder::GraphOptimizationLevel;
use ort::value::TensorRef;

use super::engine::{Engine, EngineError};

const NAME: &str = "onnxruntime";

/// The process's ONNX Runtime environment, or why it could not be created.
static ENVIRONMENT: OnceLock<Result<Environment, String>> = OnceLock::new();

pub(super) struct OnnxRuntimeEngine {
    sessions: Vec<Mutex<Session>>,
    /// Where the next call starts looking for a free session, so calls spread over the pool.
    next: AtomicUsize,
    /// Side of the square input images.
    size: usize,
}

impl OnnxRuntimeEngine {
    /// Loads the library at `library` (once per process), then `sessions` sessions of `model`.
    pub(super) fn load(
        library: &Path,
        model: &[u8],
        size: usize,
        sessions: usize,
    ) -> Result<Self, EngineError> {
        let environment = environment(library)?;
        let load = |message: String| EngineError::Load {
            engine: NAME,
            message,
        };
        let sessions = (0..sessions.max(1))
            .map(|_| {
                Session::builder(environment)
                    .map_err(|e| e.to_string())?
                    .with_optimization_level(GraphOptimizationLevel::Level3)
                    .map_err(|e| e.to_string())?
                    .with_intra_threads(1)
                    .map_err(|e| e.to_string())?
                    .commit_from_memory(model)
                    .map(Mutex::new)
                    .map_err(|e| e.to_string())
            })
            .collect::<Result<Vec<_>, String>>()
            .map_err(load)?;
        Ok(OnnxRuntimeEngine {
            sessions,
            next: AtomicUsize::new(0),
            size,
        })
    }

    /// A free session, or, when every one is busy, a wait for one of them.
    fn session(&self) -> MutexGuard<'_, Session> {
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        let count = self.sessions.len();
        for offset in 0..count {
            match self.sessions[(start + offset) % count].try_lock() {
                Ok(session) => return session,
                // A panic mid-run leaves the session usable: ONNX Runtime holds no Rust invariants.
                Err(TryLockError::Poisoned(poisoned)) => return poisoned.into_inner(),
                Err(TryLockError::WouldBlock) => continue,
            }
        }
        self.sessions[start % count]
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

fn environment(library: &Path) -> Result<&'static Environment, EngineError> {
    ENVIRONMENT
        .get_or_init(|| {
            let environment = ort::init_from(library)
                .map_err(|e| e.to_string())?
                .with_name("switchyard")
                .build()
                .map_err(|e| e.to_string())?;
            tracing::info!(library = %library.display(), "ONNX Runtime loaded");
            Ok(environment)
        })
        .as_ref()
        .map_err(|reason| EngineError::Unavailable {
            engine: NAME,
            reason: reason.clone(),
        })
}

impl Engine for OnnxRuntimeEngine {
    fn name(&self) -> &'static str {
        NAME
    }

    fn run(&self, input: &[f32], batch: usize) -> Result<Vec<f32>, EngineError> {
        let failed = |error: ort::Error| EngineError::Run {
            engine: NAME,
            message: error.to_string(),
        };
        let tensor = TensorRef::from_array_view(([batch, 3, self.size, self.size], input))
            .map_err(failed)?;
        let mut session = self.session();
        let outputs = session.run(ort::inputs![tensor]).map_err(failed)?;
        let (_, logits) = outputs[0].try_extract_tensor::<f32>().map_err(failed)?;
        Ok(logits.to_vec())
    }
}
