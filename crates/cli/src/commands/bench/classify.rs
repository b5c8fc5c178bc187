//! Images/s of the classifier: the model alone, decoding and resizing alone, the algorithm
//! called in this process, and the whole worker (task queue, controller, HTTP, runner, result).
//! Every in-process figure runs as many at once as the runner does: one per core.

use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;
use base64::Engine as _;
use futures::{StreamExt, TryStreamExt};
use serde_json::json;
use switchyard_algorithms::classifier::{
    ClassifierOptions, ImageClassifier, ImageClassifierPayload, Model,
};
use switchyard_algorithms::image_input::{ImageInput, ImageInputOptions, ImageLoader, decode};
use switchyard_algorithms::samples::SAMPLE_IMAGES;
use switchyard_broker::Message;
use switchyard_wire::{Task, new_task_id};

use super::roundtrip::Producer;
use super::turns::{in_turns, overall_rate};

/// Images per second, each measured over the same number of images.
#[derive(Debug, Clone, Copy)]
pub(super) struct ClassifyFigures {
    /// Inference alone on preprocessed images: the ceiling.
    pub model_alone_ips: f64,
    /// Decoding and preprocessing (resize, crop, normalise) alone.
    pub decode_resize_ips: f64,
    /// `ImageClassifier::classify` on base64 payloads, called in this process: the work the
    /// runner does per task, without queue, controller or HTTP.
    pub algorithm_ips: f64,
    /// Through the whole worker.
    pub worker_ips: f64,
}

/// The built-in classifier on the engine `auto` picks, as the runner loads it.
pub(super) async fn load_model(cores: usize) -> anyhow::Result<Arc<Model>> {
    let model =
        tokio::task::spawn_blocking(move || Model::load(&ClassifierOptions::default(), cores))
            .await?
            .context("loading the classifier")?;
    Ok(Arc::new(model))
}

/// What `measure` measures, in the order it gives the figures.
#[derive(Debug, Clone, Copy)]
enum Stage {
    ModelAlone,
    DecodeResize,
    InProcess,
    Worker,
}

const STAGES: [Stage; 4] = [
    Stage::ModelAlone,
    Stage::DecodeResize,
    Stage::InProcess,
    Stage::Worker,
];

/// Every stage over `per_round` images in each of `rounds` rounds, taking turns.
pub(super) async fn measure(
    model: &Arc<Model>,
    cores: usize,
    (rounds, per_round): (usize, usize),
    worker: &Producer,
) -> anyhow::Result<ClassifyFigures> {
    let inputs = SAMPLE_IMAGES
        .iter()
        .map(|(name, bytes)| {
            let pixels = decode(bytes, u64::MAX)
                .with_context(|| format!("decoding {name}"))?
                .into_rgb8();
            model
                .preprocessing()
                .input(&pixels)
                .map_err(|error| anyhow::anyhow!("preprocessing {name}: {error}"))
        })
        .collect::<anyhow::Result<Vec<Vec<f32>>>>()?;
    let inputs = Arc::new(inputs);
    worker
        .burst(image_tasks(SAMPLE_IMAGES.len()), "classifier warm-up")
        .await?;

    let rates = in_turns(rounds, STAGES, |stage, round| {
        let (model, inputs) = (model.clone(), inputs.clone());
        async move {
            match stage {
                Stage::ModelAlone => {
                    let label = format!("model alone, round {round}");
                    on_threads(cores, per_round, label, move |index| {
                        model.logits(&inputs[index % inputs.len()], 1)?;
                        Ok(())
                    })
                    .await
                }
                Stage::DecodeResize => {
                    let label = format!("decode + resize alone, round {round}");
                    on_threads(cores, per_round, label, move |index| {
                        let (_, bytes) = SAMPLE_IMAGES[index % SAMPLE_IMAGES.len()];
                        let pixels = decode(bytes, u64::MAX)?.into_rgb8();
                        model
                            .preprocessing()
                            .input(&pixels)
                            .map_err(anyhow::Error::msg)?;
                        Ok(())
                    })
                    .await
                }
                Stage::InProcess => in_process(&model, cores, per_round, &round).await,
                Stage::Worker => {
                    let label = format!("images through the worker, round {round}");
                    worker.throughput(image_tasks(per_round), &label).await
                }
            }
        }
    })
    .await?;
    let [
        model_alone_ips,
        decode_resize_ips,
        algorithm_ips,
        worker_ips,
    ] = rates.map(|rates| overall_rate(&rates));
    eprintln!(
        "  classification, images/s: model alone {model_alone_ips:.1}, decode + resize alone \
         {decode_resize_ips:.1}, classifier in process {algorithm_ips:.1}, through the worker \
         {worker_ips:.1}"
    );
    Ok(ClassifyFigures {
        model_alone_ips,
        decode_resize_ips,
        algorithm_ips,
        worker_ips,
    })
}

/// Runs `work` for indices `0..count` spread over `threads` threads; images per second.
async fn on_threads(
    threads: usize,
    count: usize,
    label: String,
    work: impl Fn(usize) -> anyhow::Result<()> + Send + Sync + 'static,
) -> anyhow::Result<f64> {
    let rate = tokio::task::spawn_blocking(move || {
        // One pass over the samples first: caches and the engine's sessions warm up.
        (0..SAMPLE_IMAGES.len()).try_for_each(&work)?;
        let started = Instant::now();
        std::thread::scope(|scope| {
            let workers: Vec<_> = (0..threads)
                .map(|thread| {
                    let work = &work;
                    scope.spawn(move || (thread..count).step_by(threads).try_for_each(work))
                })
                .collect();
            workers
                .into_iter()
                .try_for_each(|worker| worker.join().expect("a measuring thread panicked"))
        })?;
        anyhow::Ok(count as f64 / started.elapsed().as_secs_f64())
    })
    .await??;
    eprintln!("  {label}: {rate:.1} images/s on {threads} threads");
    Ok(rate)
}

/// The classifier as the runner calls it, `cores` calls at once, without the worker around it.
async fn in_process(
    model: &Arc<Model>,
    cores: usize,
    count: usize,
    round: &str,
) -> anyhow::Result<f64> {
    let loader = ImageLoader::new(ImageInputOptions::default())?;
    let classifier = ImageClassifier::new(model.clone(), loader);
    let encoded: Vec<String> = SAMPLE_IMAGES
        .iter()
        .map(|(_, bytes)| base64(bytes))
        .collect();
    let classify = |index: usize| {
        let payload = ImageClassifierPayload {
            image: ImageInput::base64(encoded[index % encoded.len()].clone()),
            top_k: None,
        };
        let classifier = &classifier;
        async move {
            classifier
                .classify(payload)
                .await
                .map_err(|error| anyhow::anyhow!("classifying in process: {error:?}"))
        }
    };
    futures::stream::iter(0..SAMPLE_IMAGES.len())
        .then(&classify)
        .try_for_each(|_| futures::future::ready(Ok(())))
        .await?;
    let started = Instant::now();
    futures::stream::iter(0..count)
        .map(&classify)
        .buffer_unordered(cores)
        .try_for_each(|_| futures::future::ready(Ok(())))
        .await?;
    let rate = count as f64 / started.elapsed().as_secs_f64();
    eprintln!("  classifier in process, round {round}: {rate:.1} images/s, {cores} at once");
    Ok(rate)
}

/// `count` classifier tasks cycling through the samples, inline as `image_base64`.
fn image_tasks(count: usize) -> Vec<Message> {
    let bodies: Vec<Vec<u8>> = SAMPLE_IMAGES
        .iter()
        .map(|(_, bytes)| {
            Task::new("image_classifier", json!({ "image_base64": base64(bytes) })).to_json_bytes()
        })
        .collect();
    (0..count)
        .map(|index| Message::new(bodies[index % bodies.len()].clone()).with_id(new_task_id()))
        .collect()
}

fn base64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}
