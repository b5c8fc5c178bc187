//! The inference engines behind one trait, and which one runs.
//!
//! tract is pure Rust and always built; ONNX Runtime (the `onnxruntime` feature) is several times
//! faster and is loaded at run time from its shared library, found by [`super::ort_library`]
//! (`ORT_DYLIB_PATH`, else PyPI's onnxruntime wheel, else the system's library directories).

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

/// Runs an ONNX image classifier on preprocessed images.
pub trait Engine: Send + Sync {
    /// The engine's name, for logs: `tract` or `onnxruntime`.
    fn name(&self) -> &'static str;

    /// The logits of `batch` images laid out NCHW in `input`: `batch` rows of class scores.
    /// An engine optimised for a fixed batch (tract: 1) refuses any other.
    fn run(&self, input: &[f32], batch: usize) -> Result<Vec<f32>, EngineError>;
}

/// An engine that cannot load a model or run it.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum EngineError {
    /// The engine cannot be used at all in this build or environment: a configuration error.
    #[error("the {engine} engine is not available: {reason}")]
    Unavailable {
        /// The engine that was asked for.
        engine: &'static str,
        /// Why it cannot run here, with what to install.
        reason: String,
    },
    /// The model is not one the engine can run: a configuration error.
    #[error("{engine} cannot load the model: {message}")]
    Load {
        /// The engine that refused the model.
        engine: &'static str,
        /// The engine's own words.
        message: String,
    },
    /// An inference failed; the model was loaded, so this is a fault of the engine, not the input.
    #[error("{engine} inference failed: {message}")]
    Run {
        /// The engine the call ran on.
        engine: &'static str,
        /// The engine's own words.
        message: String,
    },
}

/// Which engine runs the model.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum EngineChoice {
    /// ONNX Runtime when its library can be found and this build has it, tract otherwise.
    #[default]
    Auto,
    /// tract, in pure Rust: always there, slower on large batches.
    Tract,
    /// ONNX Runtime, loaded at run time: fails to load when the machine lacks its library.
    OnnxRuntime,
}

impl FromStr for EngineChoice {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text.trim().to_ascii_lowercase().as_str() {
            "auto" => Ok(EngineChoice::Auto),
            "tract" => Ok(EngineChoice::Tract),
            "onnxruntime" | "ort" => Ok(EngineChoice::OnnxRuntime),
            _ => Err(format!(
                "unknown engine '{text}': use auto, tract or onnxruntime"
            )),
        }
    }
}

impl fmt::Display for EngineChoice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            EngineChoice::Auto => "auto",
            EngineChoice::Tract => "tract",
            EngineChoice::OnnxRuntime => "onnxruntime",
        })
    }
}

/// The ONNX Runtime library to load, wherever it was found; `ORT_DYLIB_PATH` whether or not the
/// file exists.
pub fn onnxruntime_library() -> Option<PathBuf> {
    super::ort_library::find().map(|found| found.path)
}

/// Loads `model` (ONNX bytes) into the chosen engine, for square inputs of side `size`.
/// `sessions` bounds the inferences one engine runs at once, where the engine needs it.
pub fn load_engine(
    choice: EngineChoice,
    model: &[u8],
    size: usize,
    sessions: usize,
) -> Result<Box<dyn Engine>, EngineError> {
    if choice == EngineChoice::Tract {
        return tract_engine(model, size);
    }
    let found = super::ort_library::find();
    match (choice, found) {
        (EngineChoice::OnnxRuntime, None) => Err(EngineError::Unavailable {
            engine: "onnxruntime",
            reason: "its library was not found: `pip install onnxruntime`, or point \
                     ORT_DYLIB_PATH at libonnxruntime.so"
                .into(),
        }),
        (EngineChoice::OnnxRuntime, Some(found)) => {
            tracing::info!(library = %found.path.display(), found_in = found.how, "ONNX Runtime chosen");
            onnxruntime_engine(found.path, model, size, sessions)
        }
        (_, Some(found)) if cfg!(feature = "onnxruntime") && found.path.is_file() => {
            tracing::info!(
                library = %found.path.display(), found_in = found.how,
                "classifier engine: ONNX Runtime (found, and faster than tract)"
            );
            onnxruntime_engine(found.path, model, size, sessions)
        }
        (_, Some(found)) => {
            tracing::warn!(
                library = %found.path.display(),
                found_in = found.how,
                onnxruntime_built = cfg!(feature = "onnxruntime"),
                "ONNX Runtime cannot be used; classifier engine: tract"
            );
            tract_engine(model, size)
        }
        (_, None) => {
            tracing::info!(
                "classifier engine: tract (ONNX Runtime not found; `pip install onnxruntime` \
                 makes classification several times faster)"
            );
            tract_engine(model, size)
        }
    }
}

fn tract_engine(model: &[u8], size: usize) -> Result<Box<dyn Engine>, EngineError> {
    Ok(Box::new(super::tract::TractEngine::load(model, size)?))
}

#[cfg(feature = "onnxruntime")]
fn onnxruntime_engine(
    library: PathBuf,
    model: &[u8],
    size: usize,
    sessions: usize,
) -> Result<Box<dyn Engine>, EngineError> {
    Ok(Box::new(super::onnxruntime::OnnxRuntimeEngine::load(
        &library, model, size, sessions,
    )?))
}

#[cfg(not(feature = "onnxruntime"))]
fn onnxruntime_engine(
    _library: PathBuf,
    _model: &[u8],
    _size: usize,
    _sessions: usize,
) -> Result<Box<dyn Engine>, EngineError> {
    Err(EngineError::Unavailable {
        engine: "onnxruntime",
        reason: "this build has no ONNX Runtime support; build with the `onnxruntime` feature"
            .into(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_engine_names() {
        assert_eq!("auto".parse(), Ok(EngineChoice::Auto));
        assert_eq!("Tract".parse(), Ok(EngineChoice::Tract));
        assert_eq!("onnxruntime".parse(), Ok(EngineChoice::OnnxRuntime));
        assert_eq!("ort".parse(), Ok(EngineChoice::OnnxRuntime));
        assert!(
            "cuda"
                .parse::<EngineChoice>()
                .unwrap_err()
                .contains("auto, tract or onnxruntime")
        );
        for choice in [
            EngineChoice::Auto,
            EngineChoice::Tract,
            EngineChoice::OnnxRuntime,
        ] {
            assert_eq!(choice.to_string().parse(), Ok(choice));
        }
    }
}
