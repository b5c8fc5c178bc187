//! Images/s of the classifier: the model alone, decoding and resizing alone, the algorithm
//! called in this process, and the whole worker (task queue, controller, HTTP, runner, result),
//! on the samples (about 600x400) and on inputs of the size users send: a 12 MP phone photo and
//! a large screenshot, made from a sample at the start of the run.
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
use switchyard_algorithms::image_input::{
    ImageInput, ImageInputOptions, ImageLoader, decode, decode_at_least,
};
use switchyard_algorithms::samples::{SAMPLE_IMAGES, phone_photo, screenshot};
use switchyard_broker::Message;
use switchyard_wire::{Task, new_task_id};

use super::roundtrip::Producer;
use super::turns::{in_turns, overall_rate};

/// Images per second, each measured over the same number of images.
#[derive(Debug, Clone)]
pub(super) struct ClassifyFigures {
    /// Inference alone on preprocessed images: the ceiling.
    pub model_alone_ips: f64,
    /// Decoding and preprocessing (resize, crop, normalise) alone, on the samples.
    pub decode_resize_ips: f64,
    /// `ImageClassifier::classify` on base64 payloads of the samples, called in this process:
    /// the work the runner does per task, without queue, controller or HTTP.
    pub algorithm_ips: f64,
    /// Through the whole worker, on the samples.
    pub worker_ips: f64,
    /// The same three figures for each input size, the samples first.
    pub by_size: Vec<SizeFigures>,
    /// Decode + resize of the phone photo decoded whole, as before reduced-scale decoding: what
    /// the reduced scale saves, measured in the same run.
    pub phone_photo_whole_decode_ips: f64,
}

impl ClassifyFigures {
    /// How many times longer a phone photo takes than a sample, through the whole worker.
    pub(super) fn phone_photo_slowdown(&self) -> f64 {
        self.by_size[0].worker_ips / self.by_size[1].worker_ips
    }
}

/// The classifier's figures on one input size.
#[derive(Debug, Clone)]
pub(super) struct SizeFigures {
    /// `600x400`, `4032x3024_jpeg`, `2560x1600_png`: the key in `--json`.
    pub key: &'static str,
    /// Mean encoded size of its images.
    pub mean_bytes: usize,
    /// Decoding (as the classifier does) and preprocessing alone.
    pub decode_resize_ips: f64,
    /// The classifier called in this process.
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

/// The images of one input size, encoded, and how many of them each round measures.
#[derive(Debug)]
struct Inputs {
    key: &'static str,
    images: Vec<Vec<u8>>,
    per_round: usize,
}

/// Large inputs take each stage many times longer: a quarter as many keeps the run's length,
/// and at least one per core keeps every core busy.
const LARGE_INPUT_SHARE: usize = 4;

/// The samples, a 12 MP phone photo and a 2560x1600 screenshot, made from a sample (a few
/// seconds: upscaling and encoding 12 MP).
async fn inputs(per_round: usize, cores: usize) -> anyhow::Result<Arc<[Inputs; 3]>> {
    let (photo, screen) = tokio::task::spawn_blocking(|| {
        anyhow::Ok((
            phone_photo().context("making the phone photo")?,
            screenshot().context("making the screenshot")?,
        ))
    })
    .await??;
    let large_per_round = (per_round / LARGE_INPUT_SHARE).max(cores);
    Ok(Arc::new([
        Inputs {
            key: "600x400",
            images: SAMPLE_IMAGES
                .iter()
                .map(|(_, bytes)| bytes.to_vec())
                .collect(),
            per_round,
        },
        Inputs {
            key: "4032x3024_jpeg",
            images: vec![photo],
            per_round: large_per_round,
        },
        Inputs {
            key: "2560x1600_png",
            images: vec![screen],
            per_round: large_per_round,
        },
    ]))
}

/// What `measure` measures; sizes index the inputs.
#[derive(Debug, Clone, Copy)]
enum Stage {
    ModelAlone,
    DecodeResize(usize),
    WholeDecodeResize,
    InProcess(usize),
    Worker(usize),
}

const STAGES: [Stage; 11] = [
    Stage::ModelAlone,
    Stage::DecodeResize(0),
    Stage::DecodeResize(1),
    Stage::DecodeResize(2),
    Stage::WholeDecodeResize,
    Stage::InProcess(0),
    Stage::InProcess(1),
    Stage::InProcess(2),
    Stage::Worker(0),
    Stage::Worker(1),
    Stage::Worker(2),
];

/// Every stage over `per_round` images (a quarter for large inputs) in each of `rounds` rounds,
/// taking turns.
pub(super) async fn measure(
    model: &Arc<Model>,
    cores: usize,
    (rounds, per_round): (usize, usize),
    worker: &Producer,
) -> anyhow::Result<ClassifyFigures> {
    let model_inputs = SAMPLE_IMAGES
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
    let model_inputs = Arc::new(model_inputs);
    let inputs = inputs(per_round, cores).await?;
    for size in inputs.iter() {
        worker
            .burst(
                image_tasks(&size.images, size.images.len()),
                &format!("classifier warm-up, {}", size.key),
            )
            .await?;
    }

    let rates = in_turns(rounds, STAGES, |stage, round| {
        let (model, model_inputs, inputs) = (model.clone(), model_inputs.clone(), inputs.clone());
        async move {
            match stage {
                Stage::ModelAlone => {
                    let label = format!("model alone, round {round}");
                    let warm_up = model_inputs.len();
                    on_threads(cores, (warm_up, per_round), label, move |index| {
                        model.logits(&model_inputs[index % model_inputs.len()], 1)?;
                        Ok(())
                    })
                    .await
                }
                Stage::DecodeResize(size) => {
                    let label =
                        format!("decode + resize alone, {}, round {round}", inputs[size].key);
                    decode_resize(model, inputs, size, label, cores, true).await
                }
                Stage::WholeDecodeResize => {
                    let label = format!(
                        "decode + resize alone, {} decoded whole, round {round}",
                        inputs[1].key
                    );
                    decode_resize(model, inputs, 1, label, cores, false).await
                }
                Stage::InProcess(size) => in_process(&model, cores, &inputs[size], &round).await,
                Stage::Worker(size) => {
                    let Inputs {
                        key,
                        images,
                        per_round,
                    } = &inputs[size];
                    let label = format!("images through the worker, {key}, round {round}");
                    worker
                        .throughput(image_tasks(images, *per_round), &label)
                        .await
                }
            }
        }
    })
    .await?;
    let [
        model_alone,
        decode_resize,
        whole_decode,
        in_process,
        through_worker,
    ] = [
        &rates[0..1],
        &rates[1..4],
        &rates[4..5],
        &rates[5..8],
        &rates[8..11],
    ]
    .map(|stages| {
        stages
            .iter()
            .map(|rates| overall_rate(rates))
            .collect::<Vec<f64>>()
    });
    let by_size: Vec<SizeFigures> = inputs
        .iter()
        .enumerate()
        .map(|(size, inputs)| SizeFigures {
            key: inputs.key,
            mean_bytes: inputs.images.iter().map(Vec::len).sum::<usize>() / inputs.images.len(),
            decode_resize_ips: decode_resize[size],
            algorithm_ips: in_process[size],
            worker_ips: through_worker[size],
        })
        .collect();
    for size in &by_size {
        eprintln!(
            "  classification of {}, images/s: decode + resize alone {:.1}, classifier in \
             process {:.1}, through the worker {:.1}",
            size.key, size.decode_resize_ips, size.algorithm_ips, size.worker_ips
        );
    }
    eprintln!("  model alone {:.1} images/s", model_alone[0]);
    let samples = &by_size[0];
    Ok(ClassifyFigures {
        model_alone_ips: model_alone[0],
        decode_resize_ips: samples.decode_resize_ips,
        algorithm_ips: samples.algorithm_ips,
        worker_ips: samples.worker_ips,
        phone_photo_whole_decode_ips: whole_decode[0],
        by_size,
    })
}

/// Decode + resize of one input size: as the classifier decodes (`reduced`: at the scale its
/// resize needs) or every pixel.
async fn decode_resize(
    model: Arc<Model>,
    inputs: Arc<[Inputs; 3]>,
    size: usize,
    label: String,
    cores: usize,
    reduced: bool,
) -> anyhow::Result<f64> {
    let counts = (inputs[size].images.len(), inputs[size].per_round);
    on_threads(cores, counts, label, move |index| {
        let images = &inputs[size].images;
        let bytes = &images[index % images.len()];
        let resize = model.preprocessing().resize;
        let image = match reduced {
            true => decode_at_least(bytes, u64::MAX, resize)?,
            false => decode(bytes, u64::MAX)?,
        };
        model
            .preprocessing()
            .input(&image.into_rgb8())
            .map_err(anyhow::Error::msg)?;
        Ok(())
    })
    .await
}

/// Runs `work` for indices `0..count` spread over `threads` threads, after `warm_up` indices
/// unmeasured (caches and the engine's sessions warm up); images per second.
async fn on_threads(
    threads: usize,
    (warm_up, count): (usize, usize),
    label: String,
    work: impl Fn(usize) -> anyhow::Result<()> + Send + Sync + 'static,
) -> anyhow::Result<f64> {
    let rate = tokio::task::spawn_blocking(move || {
        (0..warm_up).try_for_each(&work)?;
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
    inputs: &Inputs,
    round: &str,
) -> anyhow::Result<f64> {
    let loader = ImageLoader::new(ImageInputOptions::default())?;
    let classifier = ImageClassifier::new(model.clone(), loader);
    let encoded: Vec<String> = inputs.images.iter().map(|bytes| base64(bytes)).collect();
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
    futures::stream::iter(0..encoded.len())
        .then(&classify)
        .try_for_each(|_| futures::future::ready(Ok(())))
        .await?;
    let started = Instant::now();
    futures::stream::iter(0..inputs.per_round)
        .map(&classify)
        .buffer_unordered(cores)
        .try_for_each(|_| futures::future::ready(Ok(())))
        .await?;
    let rate = inputs.per_round as f64 / started.elapsed().as_secs_f64();
    eprintln!(
        "  classifier in process, {}, round {round}: {rate:.1} images/s, {cores} at once",
        inputs.key
    );
    Ok(rate)
}

/// `count` classifier tasks cycling through `images`, inline as `image_base64`.
fn image_tasks(images: &[Vec<u8>], count: usize) -> Vec<Message> {
    let bodies: Vec<Vec<u8>> = images
        .iter()
        .map(|bytes| {
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
