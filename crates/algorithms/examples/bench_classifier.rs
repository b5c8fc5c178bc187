//! Where an `image_classifier` call spends its time, stage by stage, on each engine; every figure
//! is also given as a ratio to the bare inference measured in the same run (the ceiling: a call
//! can never be faster than its inference).
//!
//!     ORT_DYLIB_PATH=$(scripts/ort-library.sh) \
//!       cargo run --release -p switchyard-algorithms --example bench_classifier --features onnxruntime
//!
//! Without ORT_DYLIB_PATH (or the feature) only tract is measured.

// A measurement that fails has nothing to report: the unwrap's panic says what failed.
#![allow(clippy::unwrap_used)]

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use image::RgbImage;
use image::imageops::{self, FilterType};
use switchyard_algorithms::classifier::{
    ClassifierOptions, EngineChoice, ImageClassifier, ImageClassifierPayload, Model,
};
use switchyard_algorithms::image_input::{ImageInput, ImageInputOptions, ImageLoader, decode};

/// Photos measured: a PNG and a JPEG of the test set, both 640x4xx like typical web images.
const IMAGES: [&str; 2] = ["coffee.png", "china.jpg"];
const ITERATIONS: usize = 40;

/// Median of `ITERATIONS` runs of `work`, after a few to warm caches up.
fn median(mut work: impl FnMut()) -> Duration {
    for _ in 0..3 {
        work();
    }
    let mut times: Vec<Duration> = (0..ITERATIONS)
        .map(|_| {
            let started = Instant::now();
            work();
            started.elapsed()
        })
        .collect();
    times.sort();
    times[ITERATIONS / 2]
}

fn ms(duration: Duration) -> String {
    format!("{:.2} ms", duration.as_secs_f64() * 1000.0)
}

fn ratio(part: Duration, ceiling: Duration) -> String {
    format!("{:.2}x", part.as_secs_f64() / ceiling.as_secs_f64())
}

fn image_bytes(name: &str) -> Vec<u8> {
    let path = format!("{}/testdata/images/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(path).expect("test image")
}

/// The image crate's way to the same crop: resize the whole image (triangle = bilinear), then
/// cut the centre out.
fn resize_with_image_crate(image: &RgbImage, model: &Model) -> RgbImage {
    let preprocessing = model.preprocessing();
    let (width, height) = preprocessing.resized_size(image.width(), image.height());
    let resized = imageops::resize(image, width, height, FilterType::Triangle);
    let crop = preprocessing.crop;
    imageops::crop_imm(
        &resized,
        (width - crop) / 2,
        (height - crop) / 2,
        crop,
        crop,
    )
    .to_image()
}

fn engines() -> Vec<EngineChoice> {
    let mut engines = vec![EngineChoice::Tract];
    if cfg!(feature = "onnxruntime")
        && switchyard_algorithms::classifier::onnxruntime_library().is_some()
    {
        engines.push(EngineChoice::OnnxRuntime);
    } else {
        println!(
            "ONNX Runtime not measured: build with --features onnxruntime and set ORT_DYLIB_PATH"
        );
    }
    engines
}

#[tokio::main]
async fn main() {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!("{cores} cores, {ITERATIONS} iterations per figure, medians\n");
    for engine in engines() {
        let options = ClassifierOptions {
            engine,
            ..ClassifierOptions::default()
        };
        let started = Instant::now();
        let model = Arc::new(Model::load(&options, cores).expect("model loads"));
        println!(
            "== {} (loaded in {})",
            model.engine_name(),
            ms(started.elapsed())
        );

        let input = vec![0.0f32; model.preprocessing().input_len()];
        let inference = median(|| {
            black_box(model.logits(&input, 1).unwrap());
        });
        println!("  inference, batch 1 (the ceiling): {}", ms(inference));
        for batch in [2, 4] {
            let inputs = input.repeat(batch);
            if let Err(refused) = model.logits(&inputs, batch) {
                println!("  inference, batch {batch}: {refused}");
                continue;
            }
            let per_image = median(|| {
                black_box(model.logits(&inputs, batch).unwrap());
            }) / batch as u32;
            println!(
                "  inference, batch {batch}, per image: {} ({})",
                ms(per_image),
                ratio(per_image, inference)
            );
        }

        for name in IMAGES {
            let bytes = image_bytes(name);
            let image = decode(&bytes, u64::MAX).unwrap().into_rgb8();
            let decoding = median(|| {
                black_box(decode(&bytes, u64::MAX).unwrap().into_rgb8());
            });
            let fast_resize = median(|| {
                black_box(model.preprocessing().resize_and_crop(&image).unwrap());
            });
            let image_resize = median(|| {
                black_box(resize_with_image_crate(&image, &model));
            });
            let crop = model.preprocessing().resize_and_crop(&image).unwrap();
            let normalizing = median(|| {
                black_box(model.preprocessing().normalize(&crop));
            });
            let classifying = median(|| {
                black_box(model.classify(&image, 1).unwrap());
            });
            let loader = ImageLoader::new(ImageInputOptions::default()).unwrap();
            let classifier = ImageClassifier::new(model.clone(), loader.clone());
            let encoded = base64::engine::general_purpose::STANDARD.encode(&bytes);
            let mut reading = Vec::with_capacity(ITERATIONS);
            for _ in 0..ITERATIONS {
                let input = ImageInput::base64(encoded.clone());
                let started = Instant::now();
                black_box(loader.bytes(&input).await.unwrap());
                reading.push(started.elapsed());
            }
            reading.sort();
            let reading = reading[ITERATIONS / 2];
            let mut end_to_end = Vec::with_capacity(ITERATIONS);
            for _ in 0..ITERATIONS + 3 {
                let payload = ImageClassifierPayload {
                    image: ImageInput::base64(encoded.clone()),
                    top_k: None,
                };
                let started = Instant::now();
                classifier.classify(payload).await.unwrap();
                end_to_end.push(started.elapsed());
            }
            end_to_end.drain(..3);
            end_to_end.sort();
            let end_to_end = end_to_end[ITERATIONS / 2];

            // Throughput: as many calls at once as the runner allows by default (one per core).
            let classifier = Arc::new(classifier);
            let slots = Arc::new(tokio::sync::Semaphore::new(cores));
            let calls = 8 * cores;
            let started = Instant::now();
            let tasks: Vec<_> = (0..calls)
                .map(|_| {
                    let (classifier, encoded) = (classifier.clone(), encoded.clone());
                    let slots = slots.clone();
                    tokio::spawn(async move {
                        let _slot = slots.acquire().await.unwrap();
                        let payload = ImageClassifierPayload {
                            image: ImageInput::base64(encoded),
                            top_k: None,
                        };
                        classifier.classify(payload).await.unwrap();
                    })
                })
                .collect();
            for task in tasks {
                task.await.unwrap();
            }
            let per_second = calls as f64 / started.elapsed().as_secs_f64();

            println!(
                "  {name} ({}x{}, {} KB)",
                image.width(),
                image.height(),
                bytes.len() / 1024
            );
            println!(
                "    read base64 payload:            {} ({})",
                ms(reading),
                ratio(reading, inference)
            );
            println!(
                "    decode:                         {} ({})",
                ms(decoding),
                ratio(decoding, inference)
            );
            println!(
                "    resize+crop, fast_image_resize: {} ({})",
                ms(fast_resize),
                ratio(fast_resize, inference)
            );
            println!(
                "    resize+crop, image crate:       {} ({})",
                ms(image_resize),
                ratio(image_resize, inference)
            );
            println!(
                "    normalise to NCHW:              {} ({})",
                ms(normalizing),
                ratio(normalizing, inference)
            );
            println!(
                "    preprocess+infer+softmax:       {} ({})",
                ms(classifying),
                ratio(classifying, inference)
            );
            println!(
                "    end to end (base64 payload):    {} ({})",
                ms(end_to_end),
                ratio(end_to_end, inference)
            );
            println!(
                "    throughput, {calls} calls {cores} at a time: {per_second:.1} images/s ({:.2}x of {cores} cores at the ceiling)",
                per_second * inference.as_secs_f64() / cores as f64
            );
        }
        println!();
    }
}
