//! `switchyard submit`: publish one task, or every task of a JSON Lines file, and with `--wait`
//! collect their results.
//!
//! The transport is the [`Transport`] enum: RabbitMQ (`--amqp URL`, results on an exclusive reply
//! queue), or the HTTP task API of `switchyard up` (`--server URL`, results long-polled), with the
//! same publish / next-result pair.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use futures::{StreamExt, TryStreamExt};
use indicatif::{ProgressBar, ProgressStyle};
use switchyard_broker::amqp::AmqpBroker;
use switchyard_broker::{Broker, Deliveries, Message};
use switchyard_wire::{Task, TaskOutcome, TaskResult, new_task_id};
use tokio::time::Instant;

use crate::amqp_flags::AmqpFlags;
use crate::duration::parse_duration;

/// Publishes in flight at once when submitting a file: enough to hide confirm round trips.
const PUBLISHES_IN_FLIGHT: usize = 64;

#[derive(clap::Args)]
pub(crate) struct Args {
    /// Algorithm to run.
    #[arg(required_unless_present = "file", conflicts_with = "file")]
    algorithm: Option<String>,
    /// Its payload, as JSON, e.g. '{"text": "hello"}'; with `--image`, the fields beside it.
    #[arg(required_unless_present_any = ["file", "image"])]
    payload: Option<String>,
    /// An image file to send as the payload's `image_base64` (image_classifier, ocr), read and
    /// encoded here: `switchyard submit image_classifier --image cat.jpg`.
    #[arg(long, conflicts_with = "file")]
    image: Option<PathBuf>,
    /// Submit every task of a JSON Lines file, one {"algorithm": ..., "payload": ...} per line.
    #[arg(long)]
    file: Option<PathBuf>,
    #[command(flatten)]
    amqp: AmqpFlags,
    /// Submit through the HTTP task API of `switchyard up` at this URL instead of AMQP.
    #[arg(long, env = "SWITCHYARD_SERVER")]
    server: Option<String>,
    /// With `--server`: the token `up` requires for submits.
    #[command(flatten)]
    token: crate::shared_flags::TokenFlags,
    /// Wait for the results and print them; exit non-zero unless every task succeeded.
    #[arg(long)]
    wait: bool,
    /// Past this RFC 3339 instant (`2026-12-03T12:00:00Z`) a task is not run: its result is
    /// `expired`.
    #[arg(long, conflicts_with = "ttl")]
    deadline: Option<String>,
    /// The same as a duration from now, e.g. `30s`.
    #[arg(long)]
    ttl: Option<String>,
    /// 0 (the default) to 9: a worker takes the highest-priority waiting task first.
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u8).range(0..=9))]
    priority: u8,
    /// How long `--wait` waits for all results.
    #[arg(long, env = "SWITCHYARD_TIMEOUT", default_value = "60s", value_parser = parse_duration)]
    timeout: Duration,
}

/// What every task of one `submit` carries besides its body.
#[derive(Debug, Clone, Copy, Default)]
struct SubmitOptions {
    /// Unix ms past which the task is not run.
    deadline_ms: Option<u64>,
    priority: u8,
}

impl Args {
    fn deadline_ms(&self) -> anyhow::Result<Option<u64>> {
        use switchyard_wire::deadline::{from_deadline_or_ttl, now_ms};
        // clap refuses both flags at once; each error names its flag: "--ttl: ...".
        from_deadline_or_ttl(self.deadline.as_deref(), self.ttl.as_deref(), now_ms())
            .map_err(|refused| anyhow::anyhow!("--{refused}"))
    }
}

pub(crate) async fn run(args: Args) -> anyhow::Result<()> {
    let tasks = match (&args.file, &args.algorithm) {
        (Some(path), _) => read_tasks(path)?,
        (None, Some(algorithm)) => {
            let payload = match &args.payload {
                Some(payload) => {
                    serde_json::from_str(payload).context("PAYLOAD_JSON is not valid JSON")?
                }
                None => serde_json::json!({}),
            };
            let payload = match &args.image {
                Some(path) => with_image(payload, path)?,
                None => payload,
            };
            vec![Task::new(algorithm.clone(), payload)]
        }
        _ => bail!("give ALGORITHM and PAYLOAD_JSON, or --file"),
    };
    let submitted: Vec<(String, Task)> = tasks
        .into_iter()
        .map(|task| (new_task_id(), task))
        .collect();
    let options = SubmitOptions {
        deadline_ms: args.deadline_ms()?,
        priority: args.priority,
    };
    let mut transport = match &args.server {
        Some(server) => {
            Transport::http(args.token.api_client()?, server, args.timeout, options).await?
        }
        None => Transport::open(&args.amqp, args.wait, options).await?,
    };
    if args.file.is_none() {
        return submit_one(&mut transport, &submitted[0], args.wait, args.timeout).await;
    }
    let submitted = publish_all(&transport, &submitted).await?;
    if !args.wait {
        for (id, _) in &submitted {
            println!("{id}");
        }
        return Ok(());
    }
    let results = collect(&mut transport, &submitted, args.timeout).await?;
    summarise(&submitted, &results, args.timeout)
}

async fn submit_one(
    transport: &mut Transport,
    (id, task): &(String, Task),
    wait: bool,
    timeout: Duration,
) -> anyhow::Result<()> {
    let id = &transport.publish(id, task).await?;
    if !wait {
        println!("{id}");
        return Ok(());
    }
    eprintln!("submitted {id}; waiting for its result");
    let result = tokio::time::timeout(timeout, async {
        loop {
            match transport.next_result().await? {
                Some(result) if result.id == *id => return anyhow::Ok(result),
                // A late reply for another task cannot reach a fresh reply queue; ignore it.
                Some(_) => continue,
                None => bail!("the reply queue closed before the result arrived"),
            }
        }
    })
    .await
    .map_err(|_| anyhow::anyhow!("no result for task {id} within {timeout:?}"))??;
    println!("{}", serde_json::to_string_pretty(&result)?);
    match &result.outcome {
        TaskOutcome::Ok { .. } => Ok(()),
        TaskOutcome::Error { error } => {
            bail!("task {id} failed ({}): {}", error.kind, error.message)
        }
    }
}

/// `payload` with the image file at `path` as its `image_base64`.
fn with_image(payload: serde_json::Value, path: &Path) -> anyhow::Result<serde_json::Value> {
    use base64::Engine;
    let serde_json::Value::Object(mut fields) = payload else {
        bail!("PAYLOAD_JSON must be a JSON object to go with --image");
    };
    if let Some(field) = ["image_base64", "image_url"]
        .into_iter()
        .find(|field| fields.contains_key(*field))
    {
        bail!("--image is the image: leave '{field}' out of PAYLOAD_JSON");
    }
    let image = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    if image.is_empty() {
        bail!("{} is empty", path.display());
    }
    fields.insert(
        "image_base64".into(),
        base64::engine::general_purpose::STANDARD
            .encode(image)
            .into(),
    );
    Ok(fields.into())
}

/// Every line of a JSON Lines file as a task; blank lines are skipped. Nothing is published
/// unless every line is a task.
fn read_tasks(path: &Path) -> anyhow::Result<Vec<Task>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let tasks = text
        .lines()
        .enumerate()
        .filter(|(_, line)| !line.trim().is_empty())
        .map(|(index, line)| {
            Task::parse(line.as_bytes(), None)
                .with_context(|| format!("{}:{}: not a task", path.display(), index + 1))
        })
        .collect::<anyhow::Result<Vec<Task>>>()?;
    if tasks.is_empty() {
        bail!("{} holds no task", path.display());
    }
    Ok(tasks)
}

/// Publishes every task; each under the id the worker knows it by (see [`Transport::publish`]).
async fn publish_all(
    transport: &Transport,
    submitted: &[(String, Task)],
) -> anyhow::Result<Vec<(String, Task)>> {
    let bar = progress(submitted.len(), "submitting");
    let published = futures::stream::iter(submitted)
        .map(|(id, task)| async {
            let id = transport.publish(id, task).await?;
            bar.inc(1);
            anyhow::Ok((id, task.clone()))
        })
        .buffered(PUBLISHES_IN_FLIGHT)
        .try_collect::<Vec<_>>()
        .await?;
    bar.finish_and_clear();
    eprintln!("submitted {} tasks", published.len());
    Ok(published)
}

/// Collects one result per submitted task, printing each as a JSON line, until all are in or
/// the timeout passes. Duplicates (delivery is at-least-once) count once.
async fn collect(
    transport: &mut Transport,
    submitted: &[(String, Task)],
    timeout: Duration,
) -> anyhow::Result<HashMap<String, TaskResult>> {
    let mut results = HashMap::new();
    let bar = progress(submitted.len(), "waiting");
    let deadline = Instant::now() + timeout;
    let expected: HashSet<&str> = submitted.iter().map(|(id, _)| id.as_str()).collect();
    while results.len() < submitted.len() {
        let next = match tokio::time::timeout_at(deadline, transport.next_result()).await {
            Ok(next) => next?,
            Err(_) => break,
        };
        let Some(result) = next else {
            bar.abandon();
            bail!(
                "the reply queue closed with {} results missing",
                submitted.len() - results.len()
            );
        };
        if expected.contains(result.id.as_str()) && !results.contains_key(&result.id) {
            bar.suspend(|| {
                println!(
                    "{}",
                    serde_json::to_string(&result).expect("a result serialises")
                )
            });
            bar.inc(1);
            results.insert(result.id.clone(), result);
        }
    }
    bar.finish_and_clear();
    Ok(results)
}

fn summarise(
    submitted: &[(String, Task)],
    results: &HashMap<String, TaskResult>,
    timeout: Duration,
) -> anyhow::Result<()> {
    let mut failures: BTreeMap<String, usize> = BTreeMap::new();
    let mut missing = 0;
    for (id, task) in submitted {
        match results.get(id).map(|result| &result.outcome) {
            Some(TaskOutcome::Ok { .. }) => {}
            Some(TaskOutcome::Error { error }) => {
                eprintln!(
                    "  {id} ({}): {}: {}",
                    task.algorithm, error.kind, error.message
                );
                *failures.entry(error.kind.to_string()).or_default() += 1;
            }
            None => {
                eprintln!("  {id} ({}): no result within {timeout:?}", task.algorithm);
                missing += 1;
            }
        }
    }
    let failed: usize = failures.values().sum();
    let ok = submitted.len() - failed - missing;
    let by_kind: Vec<String> = failures
        .iter()
        .map(|(kind, n)| format!("{n} {kind}"))
        .collect();
    eprintln!(
        "{ok} ok, {failed} failed{}, {missing} without a result",
        if by_kind.is_empty() {
            String::new()
        } else {
            format!(" ({})", by_kind.join(", "))
        }
    );
    if failed + missing > 0 {
        bail!(
            "{} of {} tasks did not succeed",
            failed + missing,
            submitted.len()
        );
    }
    Ok(())
}

fn progress(length: usize, prefix: &'static str) -> ProgressBar {
    let style =
        ProgressStyle::with_template("{prefix:>10} [{bar:40}] {pos}/{len} ({elapsed}, eta {eta})")
            .expect("a valid template")
            .progress_chars("=> ");
    ProgressBar::new(length as u64)
        .with_style(style)
        .with_prefix(prefix)
}

/// How tasks reach the worker and results come back.
enum Transport {
    /// Publish to the task queue; results come to an exclusive reply queue (`reply_to`).
    Amqp {
        /// Boxed: the AMQP client is large and the enum is moved around.
        broker: Box<AmqpBroker>,
        /// The reply queue's name and stream, opened before any publish so no result is missed.
        replies: Option<(String, Deliveries)>,
        options: SubmitOptions,
    },
    /// `POST /v1/tasks` with our id as the `Idempotency-Key`; results by long-polling
    /// `GET /v1/tasks/{id}`.
    Http {
        client: reqwest::Client,
        /// The API's base URL, without a trailing slash.
        server: String,
        /// The API's id of each task submitted and not yet reported, oldest first.
        pending: std::sync::Mutex<std::collections::VecDeque<String>>,
        options: SubmitOptions,
    },
}

impl Transport {
    async fn open(flags: &AmqpFlags, wait: bool, options: SubmitOptions) -> anyhow::Result<Self> {
        let broker = flags.connect().await?;
        let replies = match wait {
            true => Some(
                broker
                    .reply_queue()
                    .await
                    .context("opening a reply queue")?,
            ),
            false => None,
        };
        Ok(Transport::Amqp {
            broker: Box::new(broker),
            replies,
            options,
        })
    }

    /// Waits, for at most `ready_within`, until `up` at `server` is ready (`GET /ready`): a
    /// task sent while its algorithms load would be refused.
    async fn http(
        client: reqwest::Client,
        server: &str,
        ready_within: Duration,
        options: SubmitOptions,
    ) -> anyhow::Result<Self> {
        let server = server.trim_end_matches('/').to_string();
        wait_until_ready(&client, &server, ready_within).await?;
        Ok(Transport::Http {
            client,
            server,
            pending: Default::default(),
            options,
        })
    }

    /// Publishes `task` under `id`, and returns the id the worker knows it by: `id` itself on
    /// AMQP, the id `up`'s API gave it (`id` is its idempotency key there), which is the one
    /// `GET`/`DELETE /v1/tasks/{id}` take.
    async fn publish(&self, id: &str, task: &Task) -> anyhow::Result<String> {
        match self {
            Transport::Http {
                client,
                server,
                pending,
                options,
            } => {
                let mut body = serde_json::to_value(task)?;
                // Left out at the default, so an `up` from before priorities takes it too.
                if options.priority > 0 {
                    body["priority"] = options.priority.into();
                }
                if let Some(deadline_ms) = options.deadline_ms {
                    // The API takes a ttl from its own clock: what is left of ours.
                    let left = switchyard_wire::deadline::time_left(
                        deadline_ms,
                        switchyard_wire::deadline::now_ms(),
                    );
                    if left.is_zero() {
                        bail!("task {id}: its deadline passed before it could be submitted");
                    }
                    body["ttl"] = format!("{}ms", left.as_millis()).into();
                }
                let response = client
                    .post(format!("{server}/v1/tasks"))
                    .header("idempotency-key", id)
                    .json(&body)
                    .send()
                    .await
                    .with_context(|| format!("submitting task {id} to {server}"))?;
                let status = response.status();
                let body: serde_json::Value = response.json().await.unwrap_or_default();
                if !status.is_success() {
                    bail!(
                        "{server} refused task {id} ({status}): {}",
                        body["message"].as_str().unwrap_or("no message")
                    );
                }
                let api_id = body["id"]
                    .as_str()
                    .context("the API answered without an id")?;
                pending
                    .lock()
                    .expect("no panics while holding it")
                    .push_back(api_id.to_string());
                Ok(api_id.to_string())
            }
            Transport::Amqp {
                broker,
                replies,
                options,
            } => {
                let mut message = Message::new(task.to_json_bytes())
                    .with_id(id)
                    .with_priority(options.priority);
                if let Some(deadline_ms) = options.deadline_ms {
                    message.headers.insert(
                        switchyard_wire::headers::DEADLINE_MS.into(),
                        deadline_ms.to_string(),
                    );
                }
                if let Some((reply_to, _)) = replies {
                    message.reply_to = Some(reply_to.clone());
                    message.correlation_id = Some(id.to_string());
                }
                broker
                    .publish_task(message, Duration::ZERO)
                    .await
                    .with_context(|| format!("publishing task {id}"))?;
                Ok(id.to_owned())
            }
        }
    }

    /// The next result; `None` once no more can come.
    async fn next_result(&mut self) -> anyhow::Result<Option<TaskResult>> {
        match self {
            Transport::Http {
                client,
                server,
                pending,
                ..
            } => {
                let Some(api_id) = pending
                    .get_mut()
                    .expect("no panics while holding it")
                    .pop_front()
                else {
                    return Ok(None);
                };
                loop {
                    let record: serde_json::Value = client
                        .get(format!("{server}/v1/tasks/{api_id}?wait=30s"))
                        .send()
                        .await
                        .and_then(reqwest::Response::error_for_status)
                        .with_context(|| format!("reading task {api_id} from {server}"))?
                        .json()
                        .await?;
                    if let Some(result) = record_to_result(&record, &api_id)? {
                        return Ok(Some(result));
                    }
                }
            }
            Transport::Amqp { replies, .. } => {
                let (_, deliveries) = replies
                    .as_mut()
                    .context("results are only read with --wait")?;
                loop {
                    let delivery = match deliveries.next().await {
                        Some(delivery) => delivery.context("reading the reply queue")?,
                        None => return Ok(None),
                    };
                    let decoded = serde_json::from_slice::<TaskResult>(&delivery.message.body);
                    // Settled either way: a reply that is not a result will not become one.
                    if let Err(error) = delivery.ack().await {
                        tracing::warn!(%error, "acknowledging a reply failed");
                    }
                    match decoded {
                        Ok(result) => return Ok(Some(result)),
                        Err(error) => {
                            tracing::warn!(%error, "ignoring a reply that is not a task result")
                        }
                    }
                }
            }
        }
    }
}

/// A final task record of the API as a result under our id; `None` while it is not final.
async fn wait_until_ready(
    client: &reqwest::Client,
    server: &str,
    within: Duration,
) -> anyhow::Result<()> {
    let deadline = tokio::time::Instant::now() + within;
    let mut said = None;
    loop {
        let why = match client.get(format!("{server}/ready")).send().await {
            Ok(response) if response.status().is_success() => return Ok(()),
            // An API without readiness (an older `up`): its answers to tasks will say.
            Ok(response) if response.status() == reqwest::StatusCode::NOT_FOUND => return Ok(()),
            Ok(response) => {
                let body: serde_json::Value = response.json().await.unwrap_or_default();
                match body["loading"].as_array() {
                    Some(loading) => format!(
                        "loading {}",
                        loading
                            .iter()
                            .filter_map(|name| name.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                    None => body["message"].as_str().unwrap_or("not ready").to_owned(),
                }
            }
            Err(error) => format!("unreachable: {error}"),
        };
        if said.as_ref() != Some(&why) {
            eprintln!("waiting for {server} to be ready ({why})");
            said = Some(why.clone());
        }
        if tokio::time::Instant::now() >= deadline {
            bail!("{server} was not ready within {within:?} ({why})");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn record_to_result(record: &serde_json::Value, id: &str) -> anyhow::Result<Option<TaskResult>> {
    let outcome = match record["status"].as_str() {
        Some("done") => TaskOutcome::Ok {
            result: record["result"].clone(),
        },
        // Cancelled through the API: final at once, before any controller says so.
        Some("cancelled") if record.get("error").is_none() => TaskOutcome::Error {
            error: switchyard_wire::TaskError {
                kind: switchyard_wire::ErrorKind::Cancelled,
                message: "the task was cancelled".to_owned(),
                status: None,
            },
        },
        Some("failed" | "dead" | "expired" | "cancelled") => TaskOutcome::Error {
            error: serde_json::from_value(record["error"].clone())
                .context("a failed task record without a readable error")?,
        },
        _ => return Ok(None),
    };
    Ok(Some(TaskResult {
        id: id.to_string(),
        algorithm: record["algorithm"].as_str().unwrap_or_default().to_string(),
        outcome,
        attempts: record["attempts"].as_u64().unwrap_or(0) as u32,
        runner: record["runner"].as_str().map(String::from),
        duration_ms: record["duration_ms"].as_u64().unwrap_or(0),
        history: serde_json::from_value(record["history"].clone()).unwrap_or_default(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn priority_is_0_unless_given_and_only_0_to_9() {
        use clap::Parser;
        type Cli = crate::commands::FlagsOnly<Args>;
        let parse = |extra: &[&str]| {
            Cli::try_parse_from([&["submit", "echo", "{}"][..], extra].concat())
                .map(|cli| cli.args.priority)
        };
        assert_eq!(parse(&[]).unwrap(), 0);
        assert_eq!(parse(&["--priority", "9"]).unwrap(), 9);
        for refused in ["10", "-1", "high"] {
            let flag = format!("--priority={refused}");
            let error = parse(&[&flag]).unwrap_err().to_string();
            assert!(error.contains("--priority"), "{refused}: {error}");
        }
    }

    #[test]
    fn an_image_file_becomes_image_base64_beside_the_payload() {
        use clap::Parser;
        type Cli = crate::commands::FlagsOnly<Args>;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cat.jpg");
        std::fs::write(&path, b"\xff\xd8jpeg").unwrap();
        assert_eq!(
            with_image(json!({"top_k": 3}), &path).unwrap(),
            json!({"top_k": 3, "image_base64": "/9hqcGVn"})
        );
        let without_payload = Cli::try_parse_from(["submit", "ocr", "--image", "cat.jpg"]);
        assert!(without_payload.unwrap().args.payload.is_none());
        assert!(
            Cli::try_parse_from(["submit", "ocr"]).is_err(),
            "no payload, no image"
        );
        let with_file = Cli::try_parse_from(["submit", "--file", "t.jsonl", "--image", "a.jpg"]);
        assert!(with_file.is_err(), "--image with --file");

        for (payload, needle) in [
            (json!([1]), "must be a JSON object"),
            (json!({"image_url": "http://x"}), "leave 'image_url' out"),
            (json!({"image_base64": "AA=="}), "leave 'image_base64' out"),
        ] {
            let error = with_image(payload, &path).unwrap_err().to_string();
            assert!(error.contains(needle), "{error}");
        }
        let missing = with_image(json!({}), &dir.path().join("none.jpg")).unwrap_err();
        assert!(format!("{missing:#}").contains("none.jpg"), "{missing:#}");
        std::fs::write(&path, b"").unwrap();
        let empty = with_image(json!({}), &path).unwrap_err().to_string();
        assert!(empty.contains("is empty"), "{empty}");
    }

    #[test]
    fn api_records_become_results_once_final() {
        let done = json!({"id": "api-1", "algorithm": "echo", "status": "done", "attempts": 1,
                          "result": {"length": 1}, "runner": "http://r", "duration_ms": 4});
        let result = record_to_result(&done, "ours").unwrap().unwrap();
        assert_eq!(
            (result.id.as_str(), result.is_ok(), result.attempts),
            ("ours", true, 1)
        );
        let failed = json!({"status": "failed", "algorithm": "echo", "attempts": 1,
                            "error": {"kind": "rejected", "message": "bad", "status": 400}});
        assert!(!record_to_result(&failed, "x").unwrap().unwrap().is_ok());
        assert!(
            record_to_result(&json!({"status": "queued"}), "x")
                .unwrap()
                .is_none()
        );
        assert!(record_to_result(&json!({"status": "dead"}), "x").is_err());
        let expired = json!({"status": "expired", "error": {"kind": "expired", "message": "late"}});
        assert!(!record_to_result(&expired, "x").unwrap().unwrap().is_ok());
        let cancelled = record_to_result(&json!({"status": "cancelled"}), "x")
            .unwrap()
            .unwrap();
        assert!(matches!(
            cancelled.outcome,
            TaskOutcome::Error { error } if error.kind == switchyard_wire::ErrorKind::Cancelled
        ));
    }

    #[test]
    fn a_tasks_file_is_read_line_by_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tasks.jsonl");
        std::fs::write(
            &path,
            "{\"algorithm\":\"echo\",\"payload\":{\"text\":\"a\"}}\n\n{\"algorithm\":\"ocr\",\"payload\":{\"url\":\"u\"}}\n",
        )
        .unwrap();
        let tasks = read_tasks(&path).unwrap();
        assert_eq!(
            tasks,
            [
                Task::new("echo", json!({"text": "a"})),
                Task::new("ocr", json!({"url": "u"}))
            ]
        );
    }

    #[test]
    fn a_bad_line_names_its_number_and_nothing_is_read() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tasks.jsonl");
        std::fs::write(
            &path,
            "{\"algorithm\":\"echo\"}\n{\"url\":\"no algorithm\"}\n",
        )
        .unwrap();
        let error = format!("{:#}", read_tasks(&path).unwrap_err());
        assert!(error.contains("tasks.jsonl:2: not a task"), "{error}");
        assert!(error.contains("no 'algorithm'"), "{error}");

        std::fs::write(&path, "\n  \n").unwrap();
        assert!(
            read_tasks(&path)
                .unwrap_err()
                .to_string()
                .contains("holds no task")
        );
    }

    fn result(id: &str, ok: bool) -> TaskResult {
        let outcome = if ok {
            TaskOutcome::Ok { result: json!(1) }
        } else {
            TaskOutcome::Error {
                error: switchyard_wire::TaskError {
                    kind: switchyard_wire::ErrorKind::Rejected,
                    message: "bad".into(),
                    status: Some(400),
                },
            }
        };
        TaskResult {
            id: id.into(),
            algorithm: "echo".into(),
            outcome,
            attempts: 1,
            runner: None,
            duration_ms: 1,
            history: vec![],
        }
    }

    #[test]
    fn the_summary_fails_unless_every_task_succeeded() {
        let submitted: Vec<(String, Task)> = ["a", "b"]
            .iter()
            .map(|id| (id.to_string(), Task::new("echo", json!({}))))
            .collect();
        let all_ok = HashMap::from([
            ("a".to_string(), result("a", true)),
            ("b".to_string(), result("b", true)),
        ]);
        assert!(summarise(&submitted, &all_ok, Duration::from_secs(1)).is_ok());
        let one_failed = HashMap::from([
            ("a".to_string(), result("a", true)),
            ("b".to_string(), result("b", false)),
        ]);
        assert_eq!(
            summarise(&submitted, &one_failed, Duration::from_secs(1))
                .unwrap_err()
                .to_string(),
            "1 of 2 tasks did not succeed"
        );
        let one_missing = HashMap::from([("a".to_string(), result("a", true))]);
        assert!(summarise(&submitted, &one_missing, Duration::from_secs(1)).is_err());
    }
}
