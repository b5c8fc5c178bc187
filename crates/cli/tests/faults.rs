//! The fault suite on the real RabbitMQ: load while runners, the controller, discovery and the
//! broker connections fail; hostile input through the whole system; runners that hang or answer
//! too late. Figures: `cargo test -p switchyard --test faults -- --nocapture` (with
//! `SWITCHYARD_SOAK=1` for 10,000 tasks instead of 1,000).

// A failed unwrap is the test's failure message.
#![allow(clippy::unwrap_used)]

mod support;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Duration;

use serde_json::{Value, json};
use switchyard_broker::amqp::AmqpBroker;
use switchyard_broker::{Broker, Message};
use switchyard_discovery::DiscoveryClient;
use switchyard_wire::{ErrorKind, Task, TaskError, TaskOutcome, TaskResult};
use tokio::time::Instant;

use support::e2e::*;
use support::faults::*;

const WITHIN: Duration = Duration::from_secs(120);

fn soak() -> bool {
    std::env::var("SWITCHYARD_SOAK").as_deref() == Ok("1")
}

/// The n-th task of the load, and the result it must get: echo and language detection in turn.
fn load_task(n: usize) -> (Task, Value) {
    match n % 4 {
        1 => (
            Task::new(
                "language_detection",
                json!({"text": "The weather is lovely today and the children are playing in the garden."}),
            ),
            json!("en"),
        ),
        3 => (
            Task::new(
                "language_detection",
                json!({"text": "Das Wetter ist heute schön und die Kinder spielen im Garten."}),
            ),
            json!("de"),
        ),
        _ => {
            let text = format!("task {n}");
            let length = text.len();
            (
                Task::new("echo", json!({ "text": text })),
                json!({"text": text, "length": length}),
            )
        }
    }
}

/// Publishes every task, a fiftieth at a time so the load flows while faults strike, retrying a
/// publish the broker lost (a lost confirm may thus publish twice). Returns the retries made.
async fn publish_paced(broker: AmqpBroker, tasks: Vec<(String, Vec<u8>)>) -> usize {
    let mut retries = 0;
    let chunk = (tasks.len() / 50).max(1);
    for batch in tasks.chunks(chunk) {
        for (id, body) in batch {
            let deadline = Instant::now() + WITHIN;
            while let Err(error) = broker
                .publish_task(Message::new(body.clone()).with_id(id), Duration::ZERO)
                .await
            {
                assert!(Instant::now() < deadline, "publishing {id}: {error}");
                retries += 1;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    retries
}

fn first(ids: &[String], percent: usize) -> BTreeSet<String> {
    ids[..ids.len() * percent / 100].iter().cloned().collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn load_survives_killed_runners_controller_discovery_and_lost_connections() {
    let count = if soak() { 10_000 } else { 1_000 };
    let vhost = Vhost::new();
    let discovery_address = free_address().await;
    let discovery_url = format!("http://{discovery_address}");
    let mut discovery = discovery_process(&discovery_address, None).await;
    let runner_flags = [
        "--algorithms",
        "echo,language_detection",
        "--detection-languages",
        "en,de,fr,es",
    ];
    let killed_address = free_address().await;
    let mut killed_runner = runner_process(&discovery_url, &killed_address, &runner_flags).await;
    let _replica = runner_process(&discovery_url, &free_address().await, &runner_flags).await;
    let controller_flags = ["--concurrency", "16", "--max-attempts", "10"];
    let mut controller = ControllerProcess::spawn_on(&vhost, &discovery_url, &controller_flags);

    let (ids, expected): (Vec<String>, HashMap<String, Value>) = {
        let expected: Vec<(String, Value)> = (0..count)
            .map(|n| (format!("load-{n}"), load_task(n).1))
            .collect();
        (
            expected.iter().map(|(id, _)| id.clone()).collect(),
            expected.into_iter().collect(),
        )
    };
    let bodies = (0..count)
        .map(|n| (ids[n].clone(), load_task(n).0.to_json_bytes()))
        .collect();
    let started = Instant::now();
    let producer = tokio::spawn(publish_paced(vhost.broker().await, bodies));

    let results_broker = vhost.broker().await;
    let mut reader = ResultReader::new(&results_broker);
    reader.wait_for(&first(&ids, 10), WITHIN).await;
    killed_runner.kill_9_and_restart().await;
    wait_until_listed(&discovery_url, &format!("http://{killed_address}")).await;
    println!(
        "fault: runner kill -9 + restart at {} results",
        reader.seen.len()
    );

    reader.wait_for(&first(&ids, 30), WITHIN).await;
    controller.kill_9().await;
    controller = ControllerProcess::spawn_on(&vhost, &discovery_url, &controller_flags);
    println!(
        "fault: controller kill -9 + restart at {} results",
        reader.seen.len()
    );

    reader.wait_for(&first(&ids, 50), WITHIN).await;
    discovery.kill_9_and_restart().await;
    println!(
        "fault: discovery kill -9 + restart at {} results",
        reader.seen.len()
    );

    reader.wait_for(&first(&ids, 70), WITHIN).await;
    vhost.close_all_connections();
    println!(
        "fault: every broker connection closed at {} results",
        reader.seen.len()
    );

    let all: BTreeSet<String> = ids.iter().cloned().collect();
    reader.wait_for(&all, WITHIN * 10).await;
    let elapsed = started.elapsed();
    let publish_retries = producer.await.unwrap();
    reader.drain(Duration::from_secs(2)).await;

    let (mut ok, mut dead, mut duplicates, mut missing) = (0, 0, 0, 0);
    let mut dead_kinds: BTreeMap<String, usize> = BTreeMap::new();
    for id in &ids {
        let Some(results) = reader.seen.get(id) else {
            missing += 1;
            continue;
        };
        duplicates += results.len() - 1;
        match results.iter().find_map(|result| match &result.outcome {
            TaskOutcome::Ok { result } => Some(result),
            TaskOutcome::Error { .. } => None,
        }) {
            Some(value) => {
                ok += 1;
                let wanted = &expected[id];
                let got = if wanted.is_object() {
                    value
                } else {
                    &value["language"]
                };
                assert_eq!(got, wanted, "the result of {id}");
            }
            None => {
                dead += 1;
                for result in results {
                    let error = error_of(result);
                    *dead_kinds.entry(error.kind.to_string()).or_default() += 1;
                }
            }
        }
    }
    println!(
        "faults: submitted {count}, ok {ok}, dead {dead} {dead_kinds:?}, duplicates delivered \
         {duplicates}, missing {missing}; {:.1} s, {publish_retries} publishes retried",
        elapsed.as_secs_f64()
    );
    assert_eq!(missing, 0);
    assert_eq!(ok + dead, count);
    assert!(
        dead_kinds
            .keys()
            .all(|kind| kind == "unavailable" || kind == "no_runner"),
        "only the faults may fail a task: {dead_kinds:?}"
    );
    assert!(controller.log().contains("result published"));
}

/// Discovery, two echo runners and a controller on the RabbitMQ at `amqp_url`, as processes.
struct EchoWorker {
    _discovery: Process,
    _runners: [Process; 2],
    controller: ControllerProcess,
}

impl EchoWorker {
    async fn start(amqp_url: &str, controller_flags: &[&str]) -> EchoWorker {
        let discovery_address = free_address().await;
        let discovery_url = format!("http://{discovery_address}");
        let discovery = discovery_process(&discovery_address, None).await;
        let runner_flags = ["--algorithms", "echo"];
        let runners = [
            runner_process(&discovery_url, &free_address().await, &runner_flags).await,
            runner_process(&discovery_url, &free_address().await, &runner_flags).await,
        ];
        let flags = [
            &["--concurrency", "16", "--max-attempts", "10"][..],
            controller_flags,
        ]
        .concat();
        let controller = ControllerProcess::spawn_at(amqp_url, &discovery_url, &flags);
        EchoWorker {
            _discovery: discovery,
            _runners: runners,
            controller,
        }
    }
}

/// `count` echo tasks, named `prefix-N`: their ids and bodies.
fn echo_tasks(prefix: &str, count: usize) -> (Vec<String>, Vec<(String, Vec<u8>)>) {
    let ids: Vec<String> = (0..count).map(|n| format!("{prefix}-{n}")).collect();
    let bodies = ids
        .iter()
        .map(|id| {
            (
                id.clone(),
                Task::new("echo", json!({ "text": id })).to_json_bytes(),
            )
        })
        .collect();
    (ids, bodies)
}

/// Once every id has a result: the duplicates delivered and the ids that never succeeded.
async fn tally(reader: &mut ResultReader<'_>, ids: &[String]) -> (usize, Vec<String>) {
    let all: BTreeSet<String> = ids.iter().cloned().collect();
    reader.wait_for(&all, WITHIN * 5).await;
    reader.drain(Duration::from_secs(2)).await;
    let duplicates = reader.seen.values().map(|results| results.len() - 1).sum();
    let failed = ids
        .iter()
        .filter(|id| !reader.seen[*id].iter().any(TaskResult::is_ok))
        .cloned()
        .collect();
    (duplicates, failed)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rabbitmq_killed_9_and_restarted_loses_no_confirmed_task() {
    let count = if soak() { 10_000 } else { 600 };
    let node = RabbitNode::start().await;
    let worker = EchoWorker::start(&node.url, &[]).await;
    let (ids, bodies) = echo_tasks("broker", count);
    let started = Instant::now();
    // Every publish is retried until RabbitMQ confirms it, so every task counts as confirmed.
    let producer = tokio::spawn(publish_paced(broker_at(&node.url).await, bodies));
    let results_broker = broker_at(&node.url).await;
    let mut reader = ResultReader::new(&results_broker);
    reader.wait_for(&first(&ids, 20), WITHIN).await;

    node.kill_9().await;
    let at_kill = reader.seen.len();
    tokio::time::sleep(Duration::from_secs(2)).await;
    node.start_again().await;
    let restarted = Instant::now();
    // Time to recover: from the node serving again to the first new result.
    while reader.seen.len() <= at_kill {
        reader.drain(Duration::from_millis(100)).await;
        assert!(restarted.elapsed() < WITHIN, "no result after the restart");
    }
    let recovered_in = restarted.elapsed();

    let (duplicates, failed) = tally(&mut reader, &ids).await;
    let publish_retries = producer.await.unwrap();
    println!(
        "broker kill -9 at {at_kill} results: submitted {count}, confirmed {count}, answered \
         {}, failed {}, duplicates delivered {duplicates}, missing 0; recovered {:.1} s after \
         the restart; {publish_retries} publishes retried; {:.1} s in all",
        reader.seen.len(),
        failed.len(),
        recovered_in.as_secs_f64(),
        started.elapsed().as_secs_f64()
    );
    assert!(failed.is_empty(), "tasks that never succeeded: {failed:?}");
    // The controller said it lost RabbitMQ and that it is back, each in a line of its own.
    let log = worker.controller.log();
    let lost = log
        .rfind("cannot connect to RabbitMQ")
        .or_else(|| log.rfind("connection lost"))
        .expect("the controller says it lost RabbitMQ");
    assert!(
        log[lost..].contains("connected"),
        "no reconnection line after:\n{}",
        &log[lost..]
    );
}

/// `POST /v1/tasks` of the `n`-th echo task to `up`'s API at `api`.
async fn submit_echo(http: &reqwest::Client, api: &str, n: usize) -> reqwest::Response {
    let task = json!({"algorithm": "echo", "payload": {"text": format!("up {n}")}});
    http.post(format!("{api}/v1/tasks"))
        .json(&task)
        .send()
        .await
        .unwrap()
}

/// `switchyard up` hosting `echo`, its API on `listen`, its data under `data`, with `extra` flags.
async fn up_process(listen: &str, data: &std::path::Path, extra: &[&str]) -> Process {
    let discovery = free_address().await;
    let data = data.to_str().unwrap();
    let flags = [
        "up",
        "--listen",
        listen,
        "--discovery-listen",
        &discovery,
        "--data",
        data,
    ];
    Process::spawn(&[&flags[..], &["--algorithms", "echo"], extra].concat())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn up_on_a_rabbitmq_killed_9_answers_every_task_it_accepted() {
    let count = if soak() { 2_000 } else { 200 };
    let node = RabbitNode::start().await;
    let data = tempfile::tempdir().unwrap();
    let listen = free_address().await;
    let api = format!("http://{listen}");
    let up = up_process(&listen, data.path(), &["--amqp", &node.url]).await;
    let http = reqwest::Client::new();
    poll(WITHIN, "up is ready", || async {
        let answer = http.get(format!("{api}/ready")).send().await;
        answer.is_ok_and(|answer| answer.status() == 200)
    })
    .await;

    // A producer submits one task after another while RabbitMQ dies and comes back; every
    // answer is either 202 (accepted) or an error saying it was not.
    let submitter = {
        let (http, api) = (http.clone(), api.clone());
        tokio::spawn(async move {
            let (mut accepted, mut refused) = (Vec::new(), 0);
            for n in 0..count {
                let answer = submit_echo(&http, &api, n).await;
                if answer.status() == 202 {
                    let body: Value = answer.json().await.unwrap();
                    accepted.push(body["id"].as_str().unwrap().to_owned());
                } else {
                    assert!(answer.status().is_server_error(), "{}", answer.status());
                    refused += 1;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            (accepted, refused)
        })
    };
    tokio::time::sleep(Duration::from_secs(1)).await;
    node.kill_9().await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    node.start_again().await;
    let (accepted, refused) = submitter.await.unwrap();
    let mut done = 0;
    for id in &accepted {
        let record = settled_task(&http, &api, id).await;
        assert_eq!(record["status"], "done", "{record}");
        done += 1;
    }
    println!(
        "up on RabbitMQ killed -9: submitted {count}, accepted {}, refused with 5xx {refused}, \
         done {done}, missing 0",
        accepted.len()
    );
    assert!(up.log().contains("connected"), "{}", up.log());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_losing_the_task_queue_leader_twice_loses_no_confirmed_task() {
    use switchyard_broker::amqp::QueueType;
    let count = if soak() { 10_000 } else { 600 };
    let cluster = RabbitCluster::start().await;
    let urls = cluster.urls();
    let worker = EchoWorker::start(&urls, &["--queue-type", "quorum"]).await;
    // A cancel puts the cancellation stream beside the task queue, replicated like it: its
    // failover must not hold tasks up either.
    let cancel = switchyard(&[
        "cancel",
        "never-published",
        "--amqp",
        &urls,
        "--queue",
        QUEUE,
        "--queue-type",
        "quorum",
    ])
    .await;
    assert!(cancel.status.success(), "{}", stderr(&cancel));
    let (ids, bodies) = echo_tasks("cluster", count);
    let started = Instant::now();
    let producer = tokio::spawn(publish_paced(
        broker_of_type(&urls, QueueType::Quorum).await,
        bodies,
    ));
    let results_broker = broker_of_type(&urls, QueueType::Quorum).await;
    let mut reader = ResultReader::new(&results_broker);

    let mut killed = Vec::new();
    for percent in [20, 50] {
        reader.wait_for(&first(&ids, percent), WITHIN).await;
        let leader = cluster.leader_of(QUEUE).await;
        cluster.kill_9(leader).await;
        println!(
            "fault: node {leader}, the task queue's leader, killed at {} results",
            reader.seen.len()
        );
        reader.wait_for(&first(&ids, percent + 15), WITHIN).await;
        cluster.restart(leader).await;
        killed.push(leader);
    }
    let (duplicates, failed) = tally(&mut reader, &ids).await;
    let publish_retries = producer.await.unwrap();
    println!(
        "cluster, leaders {killed:?} killed -9 in turn: submitted {count}, confirmed {count}, \
         answered {}, failed {}, duplicates delivered {duplicates}, missing 0; \
         {publish_retries} publishes retried; {:.1} s in all",
        reader.seen.len(),
        failed.len(),
        started.elapsed().as_secs_f64()
    );
    assert!(failed.is_empty(), "tasks that never succeeded: {failed:?}");
    // The controller moved to a live node, and said which.
    assert!(
        worker.controller.log().contains("node="),
        "{}",
        worker.controller.log()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_memory_alarm_blocks_publishes_until_it_clears_and_loses_nothing() {
    const EACH: usize = 20;
    let node = RabbitNode::start().await;
    let discovery_address = free_address().await;
    let discovery_url = format!("http://{discovery_address}");
    let _discovery = discovery_process(&discovery_address, None).await;
    let _runner = runner_process(
        &discovery_url,
        &free_address().await,
        &["--algorithms", "echo"],
    )
    .await;
    let producer = broker_at(&node.url).await;
    for n in 0..EACH {
        let task = Task::new("echo", json!({ "text": format!("before {n}") }));
        producer
            .publish_task(
                Message::new(task.to_json_bytes()).with_id(format!("before-{n}")),
                Duration::ZERO,
            )
            .await
            .unwrap();
    }

    // A memory limit nothing fits under: RabbitMQ raises its alarm and blocks every publisher.
    node.rabbitmqctl(&["set_vm_memory_high_watermark", "0.0000001"])
        .await;
    let alarm = Instant::now();
    // The controller takes the queued tasks and runs them; publishing their results waits.
    let controller = ControllerProcess::spawn_at(&node.url, &discovery_url, &[]);
    poll(WITHIN, "the controller says RabbitMQ blocked it", || {
        let said = controller.log().contains("RabbitMQ blocked publishing");
        async move { said }
    })
    .await;
    // A producer started now waits too, and says so.
    let file = tempfile::NamedTempFile::new().unwrap();
    let lines: Vec<String> = (0..EACH)
        .map(|n| Task::new("echo", json!({ "text": format!("during {n}") })).to_json_bytes())
        .map(|body| String::from_utf8(body).unwrap())
        .collect();
    std::fs::write(file.path(), lines.join("\n")).unwrap();
    let mut submit = Process::spawn(&[
        "submit",
        "--file",
        file.path().to_str().unwrap(),
        "--amqp",
        &node.url,
        "--queue",
        QUEUE,
    ]);
    submit
        .wait_for_log("RabbitMQ blocked publishing", WITHIN)
        .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(
        !submit.has_exited(),
        "submit finished while RabbitMQ blocked it"
    );

    node.rabbitmqctl(&["set_vm_memory_high_watermark", "0.4"])
        .await;
    let blocked_for = alarm.elapsed();
    assert!(
        submit.exit_status(WITHIN).await.success(),
        "{}",
        submit.log()
    );
    let results_broker = broker_at(&node.url).await;
    let mut reader = ResultReader::new(&results_broker);
    let deadline = Instant::now() + WITHIN;
    while reader.seen.len() < 2 * EACH {
        assert!(
            Instant::now() < deadline,
            "{} results of {}",
            reader.seen.len(),
            2 * EACH
        );
        reader.drain(Duration::from_millis(200)).await;
    }
    reader.drain(Duration::from_secs(1)).await;
    assert!(reader.seen.values().flatten().all(TaskResult::is_ok));
    assert!(controller.log().contains("RabbitMQ unblocked publishing"));
    println!(
        "memory alarm for {:.1} s: {} tasks queued before it, {EACH} submitted during it, {} \
         answered, 0 missing, {} duplicates",
        blocked_for.as_secs_f64(),
        EACH,
        reader.seen.len(),
        reader
            .seen
            .values()
            .map(|results| results.len() - 1)
            .sum::<usize>()
    );
}

fn error_of(result: &TaskResult) -> &TaskError {
    match &result.outcome {
        TaskOutcome::Error { error } => error,
        TaskOutcome::Ok { result: value } => {
            panic!("{}: expected an error, got ok: {value}", result.id)
        }
    }
}

/// Publishes each `(id, body)` and waits for a result for every one.
async fn run_all(vhost: &Vhost, tasks: &[(&str, Vec<u8>)]) -> HashMap<String, Vec<TaskResult>> {
    let broker = vhost.broker().await;
    for (id, body) in tasks {
        broker
            .publish_task(Message::new(body.clone()).with_id(*id), Duration::ZERO)
            .await
            .unwrap();
    }
    let ids = tasks.iter().map(|(id, _)| id.to_string()).collect();
    collect_results(&broker, &ids, WITHIN).await
}

/// Asserts the (only) result of `id` is an error of `kind` and `status` whose message holds `words`.
fn assert_error(
    results: &HashMap<String, Vec<TaskResult>>,
    id: &str,
    kind: ErrorKind,
    status: Option<u16>,
    words: &str,
) {
    let error = error_of(&results[id][0]);
    assert_eq!(
        (error.kind, error.status),
        (kind, status),
        "{id}: {error:?}"
    );
    assert!(
        error.message.contains(words),
        "{id}: '{}' does not say '{words}'",
        error.message
    );
}

/// Dead letters of the vhost, as reason by key.
async fn dead_letter_reasons(vhost: &Vhost) -> HashMap<String, String> {
    let listed = switchyard(&[
        "dead-letters",
        "list",
        "--json",
        "--amqp",
        &vhost.url,
        "--queue",
        QUEUE,
    ])
    .await;
    assert!(listed.status.success(), "{}", stderr(&listed));
    stdout(&listed)
        .lines()
        .map(|line| serde_json::from_str::<Value>(line).unwrap())
        .map(|letter| {
            (
                letter["key"].as_str().unwrap().to_string(),
                letter["reason"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// The status a 100 MB JSON-typed body gets: a limit must answer it, not reset the connection.
async fn post_100_mb(http: &reqwest::Client, url: &str) -> reqwest::StatusCode {
    http.post(url)
        .header("content-type", "application/json")
        .body(vec![b' '; 100 * 1024 * 1024])
        .send()
        .await
        .expect("an answer, not a reset")
        .status()
}

fn task(algorithm: &str, payload: Value) -> Vec<u8> {
    Task::new(algorithm, payload).to_json_bytes()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_task_bodies_get_clear_errors_and_the_worker_keeps_serving() {
    let vhost = Vhost::new();
    let discovery = start_discovery().await;
    let runner_address = free_address().await;
    let _runner = runner_process(
        &discovery.url,
        &runner_address,
        &["--algorithms", "echo,image_classifier"],
    )
    .await;
    let _controller = ControllerProcess::spawn(
        &vhost,
        &discovery,
        &["--no-runner-deadline", "1s", "--max-attempts", "2"],
    );

    // Straight to the runner: a 100 MB body is refused before it is read.
    let http = reqwest::Client::new();
    let huge = post_100_mb(&http, &format!("http://{runner_address}/run/echo")).await;
    assert_eq!(huge, 413);

    let nested = "[".repeat(100_000).into_bytes();
    let tasks = [
        ("not-json", b"{not json".to_vec()),
        ("not-utf8", b"\xff\xfe{\"algorithm\": \"echo\"}".to_vec()),
        ("nested", nested),
        ("not-an-object", b"[1, 2]".to_vec()),
        (
            "unknown-task-field",
            br#"{"algorithm": "echo", "payload": {"text": "a"}, "priority": 9}"#.to_vec(),
        ),
        ("wrong-type", task("echo", json!({"text": 5}))),
        (
            "unknown-field",
            task("echo", json!({"text": "a", "sneaky": 1})),
        ),
        ("payload-not-object", task("echo", json!("just a string"))),
        (
            "nested-payload",
            format!(
                r#"{{"algorithm": "echo", "payload": {{"text": {}1{}}}}}"#,
                "[".repeat(100_000),
                "]".repeat(100_000)
            )
            .into_bytes(),
        ),
        ("unknown-algorithm", task("no_such_algorithm", json!({}))),
        (
            "loopback",
            task(
                "image_classifier",
                json!({"image_url": "http://127.0.0.1:1/x.png"}),
            ),
        ),
        (
            "metadata",
            task(
                "image_classifier",
                json!({"image_url": "http://169.254.169.254/latest/meta-data/"}),
            ),
        ),
        ("fine", task("echo", json!({"text": "still serving"}))),
    ];
    let results = run_all(&vhost, &tasks).await;
    for (id, results) in &results {
        println!("{id}: {:?}", results[0].outcome);
    }
    let not_json = "task body is not valid JSON";
    assert_error(&results, "not-json", ErrorKind::InvalidTask, None, not_json);
    assert_error(&results, "not-utf8", ErrorKind::InvalidTask, None, not_json);
    assert_error(
        &results,
        "nested",
        ErrorKind::InvalidTask,
        None,
        "recursion limit",
    );
    assert_error(
        &results,
        "not-an-object",
        ErrorKind::InvalidTask,
        None,
        "must be a JSON object, got an array",
    );
    assert_error(
        &results,
        "unknown-task-field",
        ErrorKind::InvalidTask,
        None,
        "unknown field 'priority'",
    );
    assert_error(
        &results,
        "wrong-type",
        ErrorKind::Rejected,
        Some(400),
        "invalid type",
    );
    assert_error(
        &results,
        "unknown-field",
        ErrorKind::Rejected,
        Some(400),
        "sneaky",
    );
    assert_error(
        &results,
        "payload-not-object",
        ErrorKind::Rejected,
        Some(400),
        "expected a JSON object of fields, got a string",
    );
    assert_error(
        &results,
        "nested-payload",
        ErrorKind::Rejected,
        Some(400),
        "recursion limit",
    );
    assert_error(
        &results,
        "unknown-algorithm",
        ErrorKind::NoRunner,
        None,
        "no_such_algorithm",
    );
    for id in ["loopback", "metadata"] {
        assert_error(&results, id, ErrorKind::Rejected, Some(400), "is refused");
    }
    assert_eq!(
        results["fine"][0].outcome,
        TaskOutcome::Ok {
            result: json!({"text": "still serving", "length": 13})
        }
    );
    let reasons = dead_letter_reasons(&vhost).await;
    assert_eq!(
        reasons.len(),
        tasks.len() - 1,
        "all but 'fine': {reasons:?}"
    );
    assert_eq!(reasons["nested"], "invalid_task");
    assert_eq!(reasons["metadata"], "rejected");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_images_are_refused_with_their_reason_and_a_good_image_still_classifies() {
    let vhost = Vhost::new();
    let discovery = start_discovery().await;
    let images = hostile_image_host().await;
    let _runner = runner_process(
        &discovery.url,
        &free_address().await,
        &[
            "--algorithms",
            "image_classifier",
            "--allow-private-urls",
            "--image-fetch-timeout",
            "1s",
            "--image-max-redirects",
            "3",
        ],
    )
    .await;
    let _controller = ControllerProcess::spawn(
        &vhost,
        &discovery,
        &["--max-attempts", "2", "--timeout", "120s"],
    );
    let image = |path: &str| {
        task(
            "image_classifier",
            json!({ "image_url": format!("{images}{path}") }),
        )
    };
    let tasks = [
        ("missing", image("/missing.png")),
        ("slow", image("/slow.png")),
        ("loop", image("/loop")),
        ("html", image("/page.html")),
        ("truncated", image("/truncated.png")),
        ("bomb", image("/bomb.png")),
        ("good", image("/good.png")),
    ];
    let results = run_all(&vhost, &tasks).await;
    for (id, results) in &results {
        println!("{id}: {:?}", results[0].outcome);
    }
    assert_error(
        &results,
        "missing",
        ErrorKind::Rejected,
        Some(404),
        "Error fetching request image, received 404",
    );
    // A slow image host may be better later: retried, then dead-lettered.
    assert_error(
        &results,
        "slow",
        ErrorKind::Unavailable,
        Some(504),
        "no complete answer within 1 s",
    );
    assert_eq!(results["slow"][0].attempts, 2);
    assert_error(&results, "loop", ErrorKind::Rejected, Some(400), "redirect");
    assert_error(
        &results,
        "html",
        ErrorKind::Rejected,
        Some(422),
        "not an image in a supported format",
    );
    assert_error(
        &results,
        "truncated",
        ErrorKind::Rejected,
        Some(422),
        "cannot be decoded",
    );
    assert_error(
        &results,
        "bomb",
        ErrorKind::Rejected,
        Some(413),
        "60000x60000 pixels",
    );
    assert!(results["good"][0].is_ok(), "{:?}", results["good"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registration_needs_the_token_and_a_garbage_answer_is_a_dead_bad_response() {
    const TOKEN: &str = "fault-suite-secret";
    let vhost = Vhost::new();
    let address = free_address().await;
    let discovery_url = format!("http://{address}");
    let _discovery = discovery_process(&address, Some(TOKEN)).await;

    let http = reqwest::Client::new();
    let anonymous = http
        .post(format!("{discovery_url}/runners"))
        .json(&json!({"id": "intruder", "base_url": "http://evil:1", "algorithms": [], "capacity": 1}))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), 401);
    let legacy = http
        .post(format!("{discovery_url}/algorithms"))
        .json(&json!({"algorithm": "echo", "host": "http://evil:1"}))
        .send()
        .await
        .unwrap();
    assert_eq!(legacy.status(), 401);

    let registrar = DiscoveryClient::new(discovery_url.clone(), Some(TOKEN.to_string()));
    let _garbage = fake_runner(&registrar, "garbage", Misbehaviour::Garbage).await;
    let _runner = runner_process(
        &discovery_url,
        &free_address().await,
        &["--algorithms", "echo", "--token", TOKEN],
    )
    .await;
    let _controller = ControllerProcess::spawn_on(&vhost, &discovery_url, &["--token", TOKEN]);
    let tasks = [
        ("garbage", task("garbage", json!({}))),
        ("fine", task("echo", json!({"text": "ok"}))),
    ];
    let results = run_all(&vhost, &tasks).await;
    assert_error(&results, "garbage", ErrorKind::BadResponse, Some(200), "");
    assert!(results["fine"][0].is_ok(), "{:?}", results["fine"]);
    let reasons = dead_letter_reasons(&vhost).await;
    assert_eq!(
        reasons.get("garbage").map(String::as_str),
        Some("bad_response")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hanging_and_late_runners_never_leave_a_task_stuck() {
    let vhost = Vhost::new();
    let discovery = start_discovery().await;
    let registrar = DiscoveryClient::new(discovery.url.clone(), None);
    let healthy = start_runner(&discovery, vec![switchyard_algorithms::echo_algorithm()]).await;
    let _hanging = fake_runner(&registrar, "echo", Misbehaviour::Hang).await;
    let _late = fake_runner(
        &registrar,
        "echo",
        Misbehaviour::Slow(Duration::from_secs(3)),
    )
    .await;
    let _hanging_alone = fake_runner(&registrar, "hangs", Misbehaviour::Hang).await;
    let _late_alone = fake_runner(
        &registrar,
        "late",
        Misbehaviour::Slow(Duration::from_secs(3)),
    )
    .await;
    let _controller = ControllerProcess::spawn(
        &vhost,
        &discovery,
        &["--timeout", "1s", "--max-attempts", "4"],
    );

    let mut tasks: Vec<(String, Vec<u8>)> = (0..20)
        .map(|n| {
            (
                format!("echo-{n}"),
                task("echo", json!({"text": format!("{n}")})),
            )
        })
        .collect();
    tasks.push(("hangs".into(), task("hangs", json!({}))));
    tasks.push(("late".into(), task("late", json!({}))));
    let tasks: Vec<(&str, Vec<u8>)> = tasks
        .iter()
        .map(|(id, body)| (id.as_str(), body.clone()))
        .collect();
    let results = run_all(&vhost, &tasks).await;

    let mut retried = 0;
    for n in 0..20 {
        let result = &results[&format!("echo-{n}")][0];
        retried += usize::from(result.attempts > 1);
        match &result.outcome {
            TaskOutcome::Ok { result: value } => {
                assert_eq!(value["text"], json!(format!("{n}")));
                assert_eq!(result.runner.as_deref(), Some(healthy.url.as_str()));
            }
            TaskOutcome::Error { error } => {
                assert_eq!(error.kind, ErrorKind::Unavailable, "{error:?}");
                assert_eq!(result.attempts, 4);
            }
        }
    }
    println!("hanging replicas: {retried} of 20 echo tasks needed a retry");
    for id in ["hangs", "late"] {
        let result = &results[id][0];
        assert_eq!(error_of(result).kind, ErrorKind::Unavailable, "{result:?}");
        assert_eq!(result.attempts, 4);
        println!("{id}: {:?}", error_of(result));
    }
    let reasons = dead_letter_reasons(&vhost).await;
    assert_eq!(
        reasons.get("hangs").map(String::as_str),
        Some("attempts_exhausted")
    );
    assert_eq!(
        reasons.get("late").map(String::as_str),
        Some("attempts_exhausted")
    );
}

/// `GET /v1/tasks/{id}?wait=` until the task has left the queue; panics after [`WITHIN`].
async fn settled_task(http: &reqwest::Client, api: &str, id: &str) -> Value {
    let deadline = Instant::now() + WITHIN;
    loop {
        let answer = http
            .get(format!("{api}/v1/tasks/{id}?wait=10s"))
            .send()
            .await;
        if let Ok(answer) = answer
            && answer.status() == 200
        {
            let record: Value = answer.json().await.unwrap();
            if !matches!(record["status"].as_str(), Some("queued" | "running")) {
                return record;
            }
        }
        assert!(
            Instant::now() < deadline,
            "task {id} not settled within {WITHIN:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn up_refuses_hostile_bodies_and_loses_nothing_to_kill_9() {
    let data = tempfile::tempdir().unwrap();
    let listen = free_address().await;
    let api = format!("http://{listen}");
    let mut up = up_process(&listen, data.path(), &[]).await;
    let http = reqwest::Client::new();
    let healthy = || async {
        let answer = http.get(format!("{api}/health")).send().await;
        answer.is_ok_and(|answer| answer.status() == 200)
    };
    poll(WITHIN, "up answers /health", healthy).await;

    assert_eq!(post_100_mb(&http, &format!("{api}/v1/tasks")).await, 413);
    for body in [
        b"{not json".to_vec(),
        b"\xff\xfe".to_vec(),
        "[".repeat(100_000).into_bytes(),
    ] {
        let refused = http
            .post(format!("{api}/v1/tasks"))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(refused.status(), 400);
        let error: Value = refused.json().await.unwrap();
        assert!(
            error["message"].as_str().is_some_and(|m| !m.is_empty()),
            "{error}"
        );
    }

    let count = if soak() { 2_000 } else { 300 };
    let mut ids = Vec::new();
    for n in 0..count {
        let answer = submit_echo(&http, &api, n).await;
        assert_eq!(answer.status(), 202);
        let accepted: Value = answer.json().await.unwrap();
        ids.push(accepted["id"].as_str().unwrap().to_string());
    }
    let last = http
        .get(format!("{api}/v1/tasks/{}", ids[count - 1]))
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap();
    up.kill_9_and_restart().await;
    println!("up kill -9 struck with the last task {}", last["status"]);
    poll(WITHIN, "up answers /health after kill -9", healthy).await;

    let mut done = 0;
    for (n, id) in ids.iter().enumerate() {
        let record = settled_task(&http, &api, id).await;
        assert_eq!(record["status"], "done", "{record}");
        assert_eq!(record["result"]["text"], format!("up {n}"));
        done += 1;
    }
    println!(
        "up kill -9: submitted {count}, done {done}, missing {}",
        count - done
    );
}
