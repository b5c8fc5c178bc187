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

use super::cpu::Watched;
use super::peer::{Direct, DirectFigures, DirectRound, Side};
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
    /// The same figures for each input size, the samples first.
    pub by_size: Vec<SizeFigures>,
    /// Through the whole worker on the embedded queue, as `switchyard up` runs it (the queue and
    /// the controller in one process), on the samples.
    pub embedded: WorkerFigures,
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
    /// Through the whole worker on RabbitMQ.
    pub worker_ips: f64,
    /// CPU milliseconds per image through the whole worker on RabbitMQ, of each process.
    pub worker_cpu_ms: CpuPerImage,
}

/// Images through one whole worker.
#[derive(Debug, Clone)]
pub(super) struct WorkerFigures {
    pub ips: f64,
    pub cpu_ms: CpuPerImage,
}

/// CPU milliseconds per image, by process: `runner`, `controller`, `rabbitmq` (when it runs on
/// this machine), `producer` (this bench's process, which holds the embedded queue and its
/// controller as `up` does).
pub(super) type CpuPerImage = Vec<(&'static str, f64)>;

/// A way through the whole worker: where tasks are published, and the processes they cost.
pub(super) struct Route<'a> {
    pub producer: &'a Producer,
    pub watched: Watched,
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
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    ModelAlone,
    DecodeResize(usize),
    WholeDecodeResize,
    InProcess(usize),
    /// Through the worker on RabbitMQ.
    Worker(usize),
    /// Through the worker on the embedded queue, the samples.
    EmbeddedWorker,
    /// The peer or the runner called directly, on the samples.
    Direct(Side),
}

const STAGES: [Stage; 14] = [
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
    Stage::EmbeddedWorker,
    Stage::Direct(Side::Peer),
    Stage::Direct(Side::Runner),
];

/// What one turn of a stage measured.
enum Turn {
    /// Images/s.
    Rate(f64),
    /// Images/s through the worker, and the CPU seconds each watched process used meanwhile.
    Worker(f64, Vec<f64>),
    /// A round of direct calls; none when the peer is left out.
    Direct(Option<DirectRound>),
}

impl Turn {
    fn rate(&self) -> f64 {
        match self {
            Turn::Rate(rate) | Turn::Worker(rate, ..) => *rate,
            Turn::Direct(round) => round.as_ref().map_or(f64::NAN, DirectRound::rate),
        }
    }
}

/// Every stage over `per_round` images (a quarter for large inputs) in each of `rounds` rounds,
/// taking turns: the model alone, decode + resize, the classifier in process, the whole worker
/// on RabbitMQ (`rabbitmq`, every input size) and on the embedded queue (`embedded`, the
/// samples), and the peer and the runner called `direct`ly unless the peer is left out.
pub(super) async fn measure(
    model: &Arc<Model>,
    cores: usize,
    (rounds, per_round): (usize, usize),
    [rabbitmq, embedded]: [&Route<'_>; 2],
    direct: Option<&Direct>,
) -> anyhow::Result<(ClassifyFigures, Option<DirectFigures>)> {
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
        rabbitmq
            .producer
            .burst(
                image_tasks(&size.images, size.images.len()),
                &format!("classifier warm-up, {}", size.key),
            )
            .await?;
    }

    let turns = in_turns(rounds, STAGES, |stage, round| {
        let (model, model_inputs, inputs) = (model.clone(), model_inputs.clone(), inputs.clone());
        async move {
            let rate = match stage {
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
                    return through(rabbitmq, image_tasks(images, *per_round), &label).await;
                }
                Stage::EmbeddedWorker => {
                    let Inputs { key, images, .. } = &inputs[0];
                    let label = format!(
                        "images through the worker on the embedded queue, {key}, round {round}"
                    );
                    return through(embedded, image_tasks(images, per_round), &label).await;
                }
                Stage::Direct(side) => {
                    return Ok(Turn::Direct(match direct {
                        Some(direct) => Some(direct.round(side, per_round, &round).await?),
                        None => None,
                    }));
                }
            };
            Ok(Turn::Rate(rate?))
        }
    })
    .await?;
    let stage = |stage: Stage| {
        let index = STAGES.iter().position(|s| *s == stage);
        &turns[index.expect("every stage is in STAGES")]
    };
    let rate = |of: Stage| overall_rate(&stage(of).iter().map(Turn::rate).collect::<Vec<_>>());
    let by_size: Vec<SizeFigures> = inputs
        .iter()
        .enumerate()
        .map(|(size, inputs)| {
            let worker_cpu_ms = cpu_per_image(
                rabbitmq,
                stage(Stage::Worker(size)),
                rounds * inputs.per_round,
            );
            SizeFigures {
                key: inputs.key,
                mean_bytes: inputs.images.iter().map(Vec::len).sum::<usize>() / inputs.images.len(),
                decode_resize_ips: rate(Stage::DecodeResize(size)),
                algorithm_ips: rate(Stage::InProcess(size)),
                worker_ips: rate(Stage::Worker(size)),
                worker_cpu_ms,
            }
        })
        .collect();
    for size in &by_size {
        eprintln!(
            "  classification of {}, images/s: decode + resize alone {:.1}, classifier in \
             process {:.1}, through the worker {:.1} (CPU ms per image: {})",
            size.key,
            size.decode_resize_ips,
            size.algorithm_ips,
            size.worker_ips,
            cpu_text(&size.worker_cpu_ms)
        );
    }
    let embedded = WorkerFigures {
        ips: rate(Stage::EmbeddedWorker),
        cpu_ms: cpu_per_image(embedded, stage(Stage::EmbeddedWorker), rounds * per_round),
    };
    eprintln!(
        "  classification of {} on the embedded queue: {:.1} images/s (CPU ms per image: {})",
        inputs[0].key,
        embedded.ips,
        cpu_text(&embedded.cpu_ms)
    );
    let model_alone_ips = rate(Stage::ModelAlone);
    eprintln!("  model alone {model_alone_ips:.1} images/s");
    let direct_rounds = |side: Side| {
        stage(Stage::Direct(side))
            .iter()
            .filter_map(|turn| match turn {
                Turn::Direct(round) => round.clone(),
                _ => unreachable!("a direct stage's turns are Turn::Direct"),
            })
            .collect::<Vec<DirectRound>>()
    };
    let direct = direct.map(|_| {
        DirectFigures::of(
            direct_rounds(Side::Peer),
            direct_rounds(Side::Runner),
            rounds * per_round,
        )
    });
    let samples = &by_size[0];
    let figures = ClassifyFigures {
        model_alone_ips,
        decode_resize_ips: samples.decode_resize_ips,
        algorithm_ips: samples.algorithm_ips,
        worker_ips: samples.worker_ips,
        phone_photo_whole_decode_ips: rate(Stage::WholeDecodeResize),
        by_size,
        embedded,
    };
    Ok((figures, direct))
}

/// Publishes `tasks` on `route` and waits for their results: images/s, and the CPU seconds of
/// the route's processes meanwhile.
async fn through(route: &Route<'_>, tasks: Vec<Message>, label: &str) -> anyhow::Result<Turn> {
    let throughput = route.producer.throughput(tasks, label);
    let (rate, cpu) = route.watched.during(throughput).await?;
    Ok(Turn::Worker(rate, cpu))
}

/// CPU milliseconds per image of each process `route` watches, over a worker stage's turns,
/// `images` in all.
fn cpu_per_image(route: &Route<'_>, turns: &[Turn], images: usize) -> CpuPerImage {
    let mut totals: CpuPerImage = route
        .watched
        .names()
        .into_iter()
        .map(|name| (name, 0.0))
        .collect();
    for turn in turns {
        let Turn::Worker(_, seconds) = turn else {
            unreachable!("a worker stage's turns are Turn::Worker")
        };
        for ((_, total), seconds) in totals.iter_mut().zip(seconds) {
            *total += seconds * 1000.0 / images as f64;
        }
    }
    totals
}

/// `runner 38.1, controller 1.6, ...`
fn cpu_text(cpu: &CpuPerImage) -> String {
    let parts: Vec<String> = cpu
        .iter()
        .map(|(name, ms)| format!("{name} {ms:.1}"))
        .collect();
    parts.join(", ")
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
