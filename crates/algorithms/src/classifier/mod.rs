//! `image_classifier`: the label of a photo, from an ONNX image classifier.
//!
//! Built in: EfficientNet-Lite0 trained on ImageNet (1000 labels), embedded in the binary. Any
//! other ONNX classifier taking [N, 3, H, W] float32 RGB and giving [N, classes] logits runs as
//! configuration: a model file, its labels and its preprocessing ([`ClassifierOptions`]).
//! The model is loaded and optimised once, when the runner starts; each call fetches and decodes
//! its image ([`crate::image_input`]), then preprocesses and infers on the blocking pool.

mod engine;
mod model;
#[cfg(feature = "onnxruntime")]
mod onnxruntime;
mod ort_library;
mod preprocess;
mod tract;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use switchyard_runner::{Algorithm, AlgorithmError, blocking};

use crate::image_input::{ImageInput, ImageInputOptions, ImageLoader};

pub use engine::{Engine, EngineChoice, EngineError, load_engine, onnxruntime_library};
pub use model::{DEFAULT_LABELS, DEFAULT_MODEL, Model, Score, softmax};
pub use preprocess::{Normalization, Preprocessing};

/// Most labels one answer lists under `top`.
pub const MAX_TOP_K: usize = 20;

/// Which model runs, on which engine, with which preprocessing.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ClassifierOptions {
    /// Which engine runs the model.
    pub engine: EngineChoice,
    /// An ONNX classifier to run instead of the built-in EfficientNet-Lite0.
    pub model: Option<PathBuf>,
    /// Labels of the model's classes, one a line, in class order; required with `model`.
    pub labels: Option<PathBuf>,
    /// How images are resized, cropped and normalised into the model's input.
    pub preprocessing: Preprocessing,
}

/// The classifier cannot start as configured, or failed on a valid image.
#[derive(Debug, thiserror::Error)]
pub enum ClassifierError {
    /// A model or labels file could not be read.
    #[error("cannot read the {what} file {}: {source}", path.display())]
    Read {
        /// Which file: `model` or `labels`.
        what: &'static str,
        /// Where it was looked for.
        path: PathBuf,
        /// What the file system said.
        source: std::io::Error,
    },
    /// A custom model was given without the labels that name its classes.
    #[error("a custom model needs its labels file too")]
    MissingLabels,
    /// The labels file does not match the model: every class needs exactly one label.
    #[error("the model gives {classes} class scores but there are {labels} labels")]
    LabelCount {
        /// Lines of the labels file.
        labels: usize,
        /// Scores the model gives.
        classes: usize,
    },
    /// The preprocessing settings cannot produce the model's input.
    #[error("preprocessing: {0}")]
    Preprocessing(String),
    /// The engine could not load or run the model.
    #[error(transparent)]
    Engine(#[from] EngineError),
    /// The HTTP client that fetches images could not be built (TLS set-up).
    #[error("cannot build the HTTP client: {0}")]
    HttpClient(#[from] reqwest::Error),
}

/// The payload of `image_classifier`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ImageClassifierPayload {
    /// The image: `image_url` or `image_base64`.
    #[serde(flatten)]
    pub image: ImageInput,
    /// List the k most likely labels under `top` (1 to 20).
    #[serde(default)]
    pub top_k: Option<usize>,
}

/// The answer of `image_classifier`: `{"label": "espresso", "score": 0.96}`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Classification {
    /// The most likely label.
    pub label: String,
    /// Its probability, from 0 to 1.
    pub score: f32,
    /// The `top_k` most likely labels, best first, when the payload asked for them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub top: Option<Vec<Score>>,
}

/// Registers `image_classifier`; the model loads when the runner starts it.
pub fn image_classifier_algorithm(
    options: &ClassifierOptions,
    image_input: &ImageInputOptions,
) -> Algorithm {
    let options = options.clone();
    let image_input = image_input.clone();
    Algorithm::with_state(
        "image_classifier",
        move || {
            ImageClassifier::load(&options, image_input)
                .map_err(|e| AlgorithmError::internal(e.to_string()))
        },
        |classifier: Arc<ImageClassifier>, payload: ImageClassifierPayload| async move {
            classifier.classify(payload).await
        },
    )
}

/// The loaded algorithm: an image loader and a model.
#[derive(Debug)]
pub struct ImageClassifier {
    loader: ImageLoader,
    model: Arc<Model>,
}

impl ImageClassifier {
    /// Loads the model, with as many concurrent inferences as the machine has cores (the
    /// runner's default concurrency).
    pub fn load(
        options: &ClassifierOptions,
        image_input: ImageInputOptions,
    ) -> Result<Self, ClassifierError> {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        Ok(ImageClassifier::new(
            Arc::new(Model::load(options, cores)?),
            ImageLoader::new(image_input)?,
        ))
    }

    /// A classifier over an already loaded model (loading takes seconds: share it).
    pub fn new(model: Arc<Model>, loader: ImageLoader) -> Self {
        ImageClassifier { loader, model }
    }

    /// The loaded model, to share with another classifier or measure directly.
    pub fn model(&self) -> &Arc<Model> {
        &self.model
    }

    /// Classifies the payload's image: fetch or decode it, preprocess, infer off the reactor, and rank the labels.
    pub async fn classify(
        &self,
        payload: ImageClassifierPayload,
    ) -> Result<Classification, AlgorithmError> {
        let top_k = match payload.top_k {
            None => None,
            Some(k) if (1..=MAX_TOP_K).contains(&k) => Some(k),
            Some(k) => {
                return Err(AlgorithmError::bad_input(format!(
                    "top_k must be between 1 and {MAX_TOP_K}, got {k}"
                )));
            }
        };
        // The model sees a crop of the image shrunk to its resize length: a large JPEG is decoded
        // at a scale no smaller than that, for a fraction of the work.
        let image = self
            .loader
            .load_at_least(&payload.image, self.model.preprocessing().resize)
            .await?;
        let model = self.model.clone();
        let mut scores = blocking(move || {
            let started = Instant::now();
            let scores = model
                .classify(&image.into_rgb8(), top_k.unwrap_or(1))
                .map_err(|e| AlgorithmError::internal(e.to_string()))?;
            tracing::debug!(
                engine = model.engine_name(),
                label = %scores[0].label,
                score = scores[0].score,
                elapsed_us = started.elapsed().as_micros() as u64,
                "image classified"
            );
            Ok(scores)
        })
        .await?;
        let best = scores[0].clone();
        Ok(Classification {
            label: best.label,
            score: best.score,
            top: top_k.map(|_| std::mem::take(&mut scores)),
        })
    }
}
