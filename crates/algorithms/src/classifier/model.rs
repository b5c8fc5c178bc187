//! A loaded classifier: engine, labels and preprocessing; from image pixels to ranked labels.

use std::borrow::Cow;
use std::path::Path;
use std::time::Instant;

use image::RgbImage;

use super::engine::{Engine, load_engine};
use super::preprocess::Preprocessing;
use super::{ClassifierError, ClassifierOptions};

/// EfficientNet-Lite0, ImageNet (models/efficientnet-lite0/PROVENANCE.md), built into the binary
/// so a build needs no other file.
pub const DEFAULT_MODEL: &[u8] =
    include_bytes!("../../models/efficientnet-lite0/efficientnet_lite0.onnx");
/// Its 1000 labels, in class order.
pub const DEFAULT_LABELS: &str =
    include_str!("../../models/efficientnet-lite0/imagenet_classes.txt");

/// One label and its probability.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Score {
    /// The class's name, from the labels file.
    pub label: String,
    /// Its probability, from 0 to 1.
    pub score: f32,
}

/// An image classification model loaded on one engine, with its labels and preprocessing.
pub struct Model {
    engine: Box<dyn Engine>,
    labels: Vec<String>,
    preprocessing: Preprocessing,
}

/// The engine is a trait object; its name says enough.
impl std::fmt::Debug for Model {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Model")
            .field("engine", &self.engine.name())
            .field("labels", &self.labels.len())
            .field("preprocessing", &self.preprocessing)
            .finish()
    }
}

impl Model {
    /// Loads and optimises the model once; slow (a second or more with tract). A model whose
    /// output does not match its labels is refused here, not on the first request.
    pub fn load(options: &ClassifierOptions, sessions: usize) -> Result<Self, ClassifierError> {
        let started = Instant::now();
        options
            .preprocessing
            .validate()
            .map_err(ClassifierError::Preprocessing)?;
        let model: Cow<'static, [u8]> = match &options.model {
            Some(path) => Cow::Owned(std::fs::read(path).map_err(unreadable(path, "model"))?),
            None => Cow::Borrowed(DEFAULT_MODEL),
        };
        let labels: Cow<'static, str> = match (&options.labels, &options.model) {
            (Some(path), _) => {
                Cow::Owned(std::fs::read_to_string(path).map_err(unreadable(path, "labels"))?)
            }
            (None, None) => Cow::Borrowed(DEFAULT_LABELS),
            (None, Some(_)) => return Err(ClassifierError::MissingLabels),
        };
        let labels: Vec<String> = labels
            .lines()
            .map(str::trim)
            .filter(|label| !label.is_empty())
            .map(str::to_owned)
            .collect();
        let size = options.preprocessing.crop as usize;
        let engine = load_engine(options.engine, &model, size, sessions)?;
        let loaded = Model {
            engine,
            labels,
            preprocessing: options.preprocessing,
        };
        // A first inference both checks the labels against the output and warms the engine up.
        let classes = loaded
            .logits(&vec![0.0; loaded.preprocessing.input_len()], 1)?
            .len();
        if classes != loaded.labels.len() {
            return Err(ClassifierError::LabelCount {
                labels: loaded.labels.len(),
                classes,
            });
        }
        tracing::info!(
            engine = loaded.engine.name(),
            model = %options.model.as_deref().map_or("built-in EfficientNet-Lite0".into(), |p| p.display().to_string()),
            classes,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "image classifier loaded"
        );
        Ok(loaded)
    }

    /// The engine running the model, for logs and benchmark tables.
    pub fn engine_name(&self) -> &'static str {
        self.engine.name()
    }

    /// How this model wants its input images prepared.
    pub fn preprocessing(&self) -> &Preprocessing {
        &self.preprocessing
    }

    /// The `top_k` most likely labels of `image`, best first.
    pub fn classify(&self, image: &RgbImage, top_k: usize) -> Result<Vec<Score>, ClassifierError> {
        let input = self
            .preprocessing
            .input(image)
            .map_err(ClassifierError::Preprocessing)?;
        let probabilities = softmax(&self.logits(&input, 1)?);
        Ok(top(&probabilities, top_k)
            .into_iter()
            .map(|class| Score {
                label: self.labels[class].clone(),
                score: probabilities[class],
            })
            .collect())
    }

    /// Raw logits of `batch` preprocessed images.
    pub fn logits(&self, input: &[f32], batch: usize) -> Result<Vec<f32>, ClassifierError> {
        Ok(self.engine.run(input, batch)?)
    }
}

fn unreadable(path: &Path, what: &'static str) -> impl FnOnce(std::io::Error) -> ClassifierError {
    let path = path.to_owned();
    move |source| ClassifierError::Read { what, path, source }
}

/// Probabilities from logits; shifted by the maximum so large logits do not overflow.
pub fn softmax(logits: &[f32]) -> Vec<f32> {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let exps: Vec<f64> = logits.iter().map(|l| f64::from(l - max).exp()).collect();
    let sum: f64 = exps.iter().sum();
    exps.iter().map(|e| (e / sum) as f32).collect()
}

/// Indices of the `k` highest scores, highest first; ties keep class order.
fn top(scores: &[f32], k: usize) -> Vec<usize> {
    let mut classes: Vec<usize> = (0..scores.len()).collect();
    classes.sort_by(|a, b| scores[*b].total_cmp(&scores[*a]));
    classes.truncate(k);
    classes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn softmax_sums_to_one_and_survives_large_logits() {
        let probabilities = softmax(&[1000.0, 1000.0, 0.0]);
        assert!((probabilities[0] - 0.5).abs() < 1e-6);
        assert!((probabilities.iter().sum::<f32>() - 1.0).abs() < 1e-6);
        assert!(probabilities[2] < 1e-30);
    }

    #[test]
    fn ranks_best_first() {
        assert_eq!(top(&[0.1, 0.5, 0.2, 0.5], 3), vec![1, 3, 2]);
        assert_eq!(top(&[0.1, 0.2], 5), vec![1, 0]);
    }

    #[test]
    fn the_built_in_labels_are_imagenet() {
        let labels: Vec<&str> = DEFAULT_LABELS.lines().collect();
        assert_eq!(labels.len(), 1000);
        assert_eq!(labels[0], "tench");
        assert_eq!(labels[967], "espresso");
    }
}
