//! The worker end to end on the real RabbitMQ: the `switchyard` binary as controller and
//! producer, discovery and runners in this process, the series' Python runner beside them.

// A failed unwrap is the test's failure message.
#![allow(clippy::unwrap_used)]

mod support;

use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

use futures::StreamExt;
use serde_json::{Value, json};
use switchyard_broker::{Broker, Message};
use switchyard_wire::{ErrorKind, Task, TaskOutcome, TaskResult};

use support::e2e::*;

const WITHIN: Duration = Duration::from_secs(60);

fn parse_result(text: &str) -> TaskResult {
    serde_json::from_str(text).unwrap_or_else(|error| panic!("not a TaskResult ({error}): {text}"))
}

fn error_kind(result: &TaskResult) -> ErrorKind {
    match &result.outcome {
        TaskOutcome::Error { error } => error.kind,
        TaskOutcome::Ok { result: value } => panic!("expected an error, got ok: {value}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn submit_wait_round_trips_through_the_controller_and_a_runner() {
    let vhost = Vhost::new();
    let discovery = start_discovery().await;
    let runner = start_runner(&discovery, vec![switchyard_algorithms::echo_algorithm()]).await;
    let metrics_address = free_address().await;
    let _controller =
        ControllerProcess::spawn(&vhost, &discovery, &["--metrics-listen", &metrics_address]);
    let amqp = ["--amqp", vhost.url.as_str(), "--queue", QUEUE];

    let done = switchyard(
        &[
            &[
                "submit",
                "echo",
                r#"{"text": "hi"}"#,
                "--wait",
                "--timeout",
                "60s",
            ][..],
            &amqp,
        ]
        .concat(),
    )
    .await;
    assert!(done.status.success(), "stderr: {}", stderr(&done));
    let result = parse_result(&stdout(&done));
    assert_eq!(
        result.outcome,
        TaskOutcome::Ok {
            result: json!({"text": "hi", "length": 2})
        }
    );
    assert_eq!((result.algorithm.as_str(), result.attempts), ("echo", 1));
    assert_eq!(result.runner.as_deref(), Some(runner.url.as_str()));
    assert!(stderr(&done).contains(&format!("submitted {}", result.id)));
    let metrics = reqwest::get(format!("http://{metrics_address}/metrics"))
        .await
        .unwrap();
    assert_eq!(metrics.status(), 200);
    let metrics = metrics.text().await.unwrap();
    assert!(
        metrics.contains(r#"switchyard_controller_tasks_total{algorithm="echo",outcome="ok"} 1"#),
        "{metrics}"
    );

    // Refused by the runner's schema: an error result, and a non-zero exit.
    let refused = switchyard(
        &[
            &["submit", "echo", r#"{"txt": "typo"}"#, "--wait"][..],
            &amqp,
        ]
        .concat(),
    )
    .await;
    assert!(!refused.status.success());
    let result = parse_result(&stdout(&refused));
    assert_eq!(error_kind(&result), ErrorKind::Rejected);
    assert!(
        stderr(&refused).contains("failed (rejected)"),
        "{}",
        stderr(&refused)
    );

    // Without --wait: the id alone on stdout.
    let fire = switchyard(&[&["submit", "echo", r#"{"text": "x"}"#][..], &amqp].concat()).await;
    assert!(fire.status.success(), "{}", stderr(&fire));
    assert!(
        uuid::Uuid::parse_str(stdout(&fire).trim()).is_ok(),
        "{}",
        stdout(&fire)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn submit_file_collects_every_result_and_fails_unless_all_are_ok() {
    let vhost = Vhost::new();
    let discovery = start_discovery().await;
    let _runner = start_runner(&discovery, vec![switchyard_algorithms::echo_algorithm()]).await;
    let _controller = ControllerProcess::spawn(&vhost, &discovery, &[]);
    let amqp = ["--amqp", vhost.url.as_str(), "--queue", QUEUE];
    let dir = tempfile::tempdir().unwrap();

    let good = dir.path().join("good.jsonl");
    let lines: Vec<String> = (0..20)
        .map(|n| {
            serde_json::to_string(&Task::new("echo", json!({"text": format!("t{n}")}))).unwrap()
        })
        .collect();
    std::fs::write(&good, lines.join("\n")).unwrap();
    let all_ok = switchyard(
        &[
            &["submit", "--file", good.to_str().unwrap(), "--wait"][..],
            &amqp,
        ]
        .concat(),
    )
    .await;
    assert!(all_ok.status.success(), "{}", stderr(&all_ok));
    let results: Vec<TaskResult> = stdout(&all_ok).lines().map(parse_result).collect();
    assert_eq!(
        results
            .iter()
            .map(|r| r.id.clone())
            .collect::<BTreeSet<_>>()
            .len(),
        20
    );
    assert!(results.iter().all(TaskResult::is_ok));
    assert!(
        stderr(&all_ok).contains("20 ok, 0 failed, 0 without a result"),
        "{}",
        stderr(&all_ok)
    );

    let mixed = dir.path().join("mixed.jsonl");
    std::fs::write(&mixed, "{\"algorithm\":\"echo\",\"payload\":{\"text\":\"a\"}}\n{\"algorithm\":\"echo\",\"payload\":{\"bad\":1}}\n").unwrap();
    let one_bad = switchyard(
        &[
            &["submit", "--file", mixed.to_str().unwrap(), "--wait"][..],
            &amqp,
        ]
        .concat(),
    )
    .await;
    assert!(!one_bad.status.success());
    assert!(
        stderr(&one_bad).contains("1 ok, 1 failed (1 rejected), 0 without a result"),
        "{}",
        stderr(&one_bad)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rpc_replies_and_the_results_queue_and_the_part_two_body() {
    let vhost = Vhost::new();
    let discovery = start_discovery().await;
    let _runner = start_runner(&discovery, vec![switchyard_algorithms::echo_algorithm()]).await;
    let _controller =
        ControllerProcess::spawn(&vhost, &discovery, &["--default-algorithm", "echo"]);
    let broker = vhost.broker().await;

    // The series' Part II body: the bare payload, routed by --default-algorithm, as RPC.
    let (reply_to, mut replies) = broker.reply_queue().await.unwrap();
    let mut part_two = Message::new(r#"{"text": "part two"}"#).with_id("part-two");
    part_two.reply_to = Some(reply_to);
    part_two.correlation_id = Some("corr-1".into());
    broker.publish_task(part_two, Duration::ZERO).await.unwrap();
    let reply = tokio::time::timeout(WITHIN, replies.next())
        .await
        .expect("a reply")
        .unwrap()
        .unwrap();
    assert_eq!(reply.message.correlation_id.as_deref(), Some("corr-1"));
    let result: TaskResult = serde_json::from_slice(&reply.message.body).unwrap();
    assert_eq!(
        (result.id.as_str(), result.algorithm.as_str()),
        ("part-two", "echo")
    );
    assert_eq!(
        result.outcome,
        TaskOutcome::Ok {
            result: json!({"text": "part two", "length": 8})
        }
    );
    reply.ack().await.unwrap();

    // No reply_to: the results queue, correlated by the task id.
    let named = Message::new(Task::new("echo", json!({"text": "queued"})).to_json_bytes())
        .with_id("queued-1");
    broker.publish_task(named, Duration::ZERO).await.unwrap();
    let results = collect_results(&broker, &BTreeSet::from(["queued-1".to_string()]), WITHIN).await;
    assert!(results["queued-1"][0].is_ok());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_tasks_are_dead_lettered_with_a_reason_while_consumption_goes_on() {
    let vhost = Vhost::new();
    let discovery = start_discovery().await;
    let _runner = start_runner(&discovery, vec![switchyard_algorithms::echo_algorithm()]).await;
    let _controller = ControllerProcess::spawn(&vhost, &discovery, &["--no-runner-deadline", "1s"]);
    let broker = vhost.broker().await;

    let tasks = [
        ("not-json", b"{not json".to_vec()),
        (
            "schema",
            Task::new("echo", json!({"text": 5})).to_json_bytes(),
        ),
        (
            "unknown",
            Task::new("nobody_hosts_this", json!({})).to_json_bytes(),
        ),
        (
            "fine",
            Task::new("echo", json!({"text": "still here"})).to_json_bytes(),
        ),
    ];
    for (id, body) in &tasks {
        broker
            .publish_task(Message::new(body.clone()).with_id(*id), Duration::ZERO)
            .await
            .unwrap();
    }
    let ids: BTreeSet<String> = tasks.iter().map(|(id, _)| id.to_string()).collect();
    let results = collect_results(&broker, &ids, WITHIN).await;
    assert!(results["fine"][0].is_ok());
    assert_eq!(error_kind(&results["not-json"][0]), ErrorKind::InvalidTask);
    assert_eq!(error_kind(&results["schema"][0]), ErrorKind::Rejected);
    assert_eq!(error_kind(&results["unknown"][0]), ErrorKind::NoRunner);

    let amqp = ["--amqp", vhost.url.as_str(), "--queue", QUEUE];
    let listed = switchyard(&[&["dead-letters", "list", "--json"][..], &amqp].concat()).await;
    assert!(listed.status.success(), "{}", stderr(&listed));
    let letters: HashMap<String, Value> = stdout(&listed)
        .lines()
        .map(|line| serde_json::from_str::<Value>(line).unwrap())
        .map(|letter| (letter["key"].as_str().unwrap().to_string(), letter))
        .collect();
    assert_eq!(letters.len(), 3, "{letters:?}");
    assert_eq!(letters["not-json"]["reason"], "invalid_task");
    assert_eq!(
        letters["not-json"]["body"], "{not json",
        "the body is kept byte for byte"
    );
    assert_eq!(letters["schema"]["reason"], "rejected");
    assert_eq!(letters["unknown"]["reason"], "no_runner");
    assert!(
        letters["unknown"]["last_error"]
            .as_str()
            .unwrap()
            .contains("nobody_hosts_this")
    );

    let unknown_key =
        switchyard(&[&["dead-letters", "requeue", "no-such-key"][..], &amqp].concat()).await;
    assert!(!unknown_key.status.success());
    assert!(
        stderr(&unknown_key).contains("1 of the 1 keys given matched no dead letter"),
        "{}",
        stderr(&unknown_key)
    );

    // Replayed, the schema violation is refused again: a second result, dead again.
    let requeued = switchyard(&[&["dead-letters", "requeue", "schema"][..], &amqp].concat()).await;
    assert!(requeued.status.success(), "{}", stderr(&requeued));
    assert!(stderr(&requeued).contains("requeued 1 dead letter(s)"));
    let again = collect_results(&broker, &BTreeSet::from(["schema".to_string()]), WITHIN).await;
    assert_eq!(error_kind(&again["schema"][0]), ErrorKind::Rejected);
    assert_eq!(
        again["schema"][0].attempts, 1,
        "the replay starts with a fresh budget"
    );
}

/// Publishes `count` sleepy tasks to the results queue's producer side; returns their ids.
async fn publish_sleepy(
    broker: &switchyard_broker::amqp::AmqpBroker,
    count: usize,
    ms: u64,
) -> BTreeSet<String> {
    let mut ids = BTreeSet::new();
    for n in 0..count {
        let id = format!("sleepy-{n}");
        let body = Task::new("sleepy", json!({"label": id, "ms": ms})).to_json_bytes();
        broker
            .publish_task(Message::new(body).with_id(&id), Duration::ZERO)
            .await
            .unwrap();
        ids.insert(id);
    }
    ids
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_controller_killed_with_tasks_in_flight_loses_none_of_them() {
    let vhost = Vhost::new();
    let discovery = start_discovery().await;
    let _runner = start_runner(&discovery, vec![sleepy_algorithm()]).await;
    let broker = vhost.broker().await;
    let ids = publish_sleepy(&broker, 40, 200).await;

    let mut first = ControllerProcess::spawn(&vhost, &discovery, &["--concurrency", "4"]);
    let mut reader = ResultReader::new(&broker);
    let some: BTreeSet<String> = ids.iter().take(1).cloned().collect();
    reader.wait_for(&some, WITHIN).await;
    first.kill_9().await;
    let log = first.log();
    let in_flight = ids
        .iter()
        .filter(|id| log.contains(&format!("routed task_id={id} ")))
        .filter(|id| !log.contains(&format!("result published task_id={id} ")))
        .count();
    assert!(
        in_flight > 0,
        "tasks were in flight when the controller was killed"
    );

    let _second = ControllerProcess::spawn(&vhost, &discovery, &["--concurrency", "4"]);
    let results = reader.wait_for(&ids, WITHIN).await;
    assert_eq!(
        results.keys().cloned().collect::<BTreeSet<_>>(),
        ids,
        "every task has a result"
    );
    for (id, results) in results {
        assert!(
            results
                .iter()
                .all(|r| r.outcome == TaskOutcome::Ok { result: json!(id) }),
            "{results:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_controller_reconnects_after_rabbitmq_closes_every_connection() {
    let vhost = Vhost::new();
    let discovery = start_discovery().await;
    let _runner = start_runner(&discovery, vec![sleepy_algorithm()]).await;
    let broker = vhost.broker().await;
    let ids = publish_sleepy(&broker, 30, 100).await;
    let controller = ControllerProcess::spawn(&vhost, &discovery, &["--concurrency", "4"]);

    let mut reader = ResultReader::new(&broker);
    let some: BTreeSet<String> = ids.iter().take(1).cloned().collect();
    reader.wait_for(&some, WITHIN).await;
    vhost.close_all_connections();
    let results = reader.wait_for(&ids, WITHIN).await;
    assert_eq!(results.keys().cloned().collect::<BTreeSet<_>>(), ids);
    assert!(
        controller.log().contains("task stream lost"),
        "the connection really was lost"
    );

    let status = controller.terminate().await;
    assert!(
        status.success(),
        "SIGTERM ends the controller cleanly: {status:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_series_python_runner_is_called_through_its_legacy_registration() {
    let vhost = Vhost::new();
    let discovery = start_discovery().await;
    let (_python, host) = start_python_runner(&discovery).await;
    let _controller = ControllerProcess::spawn(&vhost, &discovery, &[]);
    let amqp = ["--amqp", vhost.url.as_str(), "--queue", QUEUE];

    let counted = switchyard(
        &[
            &["submit", "word_count", r#"{"text": "a b A"}"#, "--wait"][..],
            &amqp,
        ]
        .concat(),
    )
    .await;
    assert!(counted.status.success(), "{}", stderr(&counted));
    let result = parse_result(&stdout(&counted));
    assert_eq!(
        result.outcome,
        TaskOutcome::Ok {
            result: json!({"words": 3, "counts": {"a": 2, "b": 1}})
        }
    );
    assert_eq!(result.runner.as_deref(), Some(host.as_str()));

    let refused = switchyard(
        &[
            &["submit", "word_count", r#"{"words": "x"}"#, "--wait"][..],
            &amqp,
        ]
        .concat(),
    )
    .await;
    assert!(!refused.status.success());
    let result = parse_result(&stdout(&refused));
    match result.outcome {
        TaskOutcome::Error { error } => {
            assert_eq!((error.kind, error.status), (ErrorKind::Rejected, Some(400)));
            assert_eq!(error.message, "Task body missing field 'text'");
        }
        other => panic!("expected a rejection, got {other:?}"),
    }
}

/// The one line a component that cannot start prints beside its log lines: its causes joined,
/// no "Caused by".
fn fatal_line(output: &std::process::Output) -> String {
    let stderr = stderr(output);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(!stderr.contains("Caused by"), "{stderr}");
    let is_log_line = |line: &&str| {
        [" WARN ", " INFO ", " ERROR "]
            .iter()
            .any(|level| line.contains(level))
    };
    let lines: Vec<&str> = stderr.lines().filter(|line| !is_log_line(line)).collect();
    assert_eq!(lines.len(), 1, "one line besides the log, not: {stderr}");
    lines[0].to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_controller_that_cannot_start_says_why_and_what_to_do_in_one_line() {
    let discovery = start_discovery().await;
    let vhost = Vhost::new();
    let missing = "amqp://guest:guest@127.0.0.1:5672/no-such-vhost";
    let output = switchyard(&[
        "controller",
        "--amqp",
        missing,
        "--discovery",
        &discovery.url,
    ])
    .await;
    let line = fatal_line(&output);
    for needed in [
        "switchyard: connecting to RabbitMQ for queue 'tasks'",
        "vhost no-such-vhost not found",
        "rabbitmqctl add_vhost no-such-vhost",
    ] {
        assert!(line.contains(needed), "{needed:?} missing from: {line}");
    }

    let wrong_password = vhost.url.replace("guest:guest", "guest:wrong");
    let output = switchyard(&[
        "controller",
        "--amqp",
        &wrong_password,
        "--discovery",
        &discovery.url,
    ])
    .await;
    let line = fatal_line(&output);
    assert!(line.contains("ACCESS_REFUSED"), "{line}");
    assert!(line.contains("check the user and password"), "{line}");

    // Classic queues exist; a quorum deployment cannot reuse their delay queues.
    let amqp = ["--amqp", vhost.url.as_str(), "--queue", QUEUE];
    let listed = switchyard(&[&["dead-letters", "list"][..], &amqp].concat()).await;
    assert!(listed.status.success(), "{}", stderr(&listed));
    let output = switchyard(
        &[
            &[
                "controller",
                "--discovery",
                &discovery.url,
                "--queue-type",
                "quorum",
            ][..],
            &amqp,
        ]
        .concat(),
    )
    .await;
    let line = fatal_line(&output);
    for needed in [
        format!("delay queue '{QUEUE}.delay.512' exists with other properties"),
        "inequivalent arg".to_owned(),
        format!("rabbitmqctl delete_queue {QUEUE}.delay.512"),
    ] {
        assert!(line.contains(&needed), "{needed:?} missing from: {line}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn submit_ttl_expires_a_task_left_on_the_queue_and_a_deadline_passed_is_refused() {
    let vhost = Vhost::new();
    let discovery = start_discovery().await;
    let _runner = start_runner(&discovery, vec![switchyard_algorithms::echo_algorithm()]).await;
    let amqp = ["--amqp", vhost.url.as_str(), "--queue", QUEUE];
    let submit = |extra: &'static [&'static str]| async move {
        switchyard(&[&["submit", "echo", r#"{"text": "t"}"#][..], extra, &amqp].concat()).await
    };

    let refused = submit(&["--deadline", "2020-01-01T00:00:00Z"]).await;
    assert_eq!(refused.status.code(), Some(1), "{}", stderr(&refused));
    assert!(
        stderr(&refused).contains("--deadline: '2020-01-01T00:00:00Z' has already passed"),
        "{}",
        stderr(&refused)
    );
    let refused = submit(&["--ttl", "0s"]).await;
    assert!(
        stderr(&refused).contains("--ttl: a ttl must be longer than 0"),
        "{}",
        stderr(&refused)
    );

    // No controller yet: the short-lived task waits on the queue past its ttl.
    let short = submit(&["--ttl", "300ms"]).await;
    assert!(short.status.success(), "{}", stderr(&short));
    let long = submit(&["--ttl", "5m"]).await;
    let (short, long) = (
        stdout(&short).trim().to_owned(),
        stdout(&long).trim().to_owned(),
    );
    tokio::time::sleep(Duration::from_millis(400)).await;
    let _controller = ControllerProcess::spawn(&vhost, &discovery, &[]);
    let broker = vhost.broker().await;
    let mut reader = ResultReader::new(&broker);
    let seen = reader
        .wait_for(&BTreeSet::from([short.clone(), long.clone()]), WITHIN)
        .await;
    assert_eq!(
        error_kind(&seen[&short][0]),
        ErrorKind::Expired,
        "{:?}",
        seen[&short]
    );
    assert!(seen[&long][0].is_ok(), "{:?}", seen[&long]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_cancelled_on_rabbitmq_is_not_run_by_a_controller_started_afterwards() {
    let vhost = Vhost::new();
    let discovery = start_discovery().await;
    let _runner = start_runner(&discovery, vec![switchyard_algorithms::echo_algorithm()]).await;
    let broker = vhost.broker().await;
    let (reply_to, mut replies) = broker.reply_queue().await.unwrap();
    for id in ["doomed", "spared"] {
        let mut task =
            Message::new(Task::new("echo", json!({"text": id})).to_json_bytes()).with_id(id);
        task.reply_to = Some(reply_to.clone());
        broker.publish_task(task, Duration::ZERO).await.unwrap();
    }
    let amqp = ["--amqp", vhost.url.as_str(), "--queue", QUEUE];

    let cancel = switchyard(&[&["cancel", "doomed"][..], &amqp].concat()).await;
    assert!(cancel.status.success(), "{}", stderr(&cancel));
    assert_eq!(
        stdout(&cancel),
        "doomed\tcancel recorded: no controller starts it from now on; a run already started \
         finishes\n"
    );
    let malformed = switchyard(&[&["cancel", "not an id"][..], &amqp].concat()).await;
    assert_eq!(malformed.status.code(), Some(1));
    assert_eq!(
        stderr(&malformed),
        "switchyard: 'not an id' is not a task id (ids are up to 128 characters of letters, \
         digits and -_.:)\n"
    );

    let _controller = ControllerProcess::spawn(&vhost, &discovery, &[]);
    let mut results = HashMap::new();
    while results.len() < 2 {
        let reply = tokio::time::timeout(WITHIN, replies.next())
            .await
            .expect("both replies")
            .unwrap()
            .unwrap();
        let result: TaskResult = serde_json::from_slice(&reply.message.body).unwrap();
        reply.ack().await.unwrap();
        results.insert(result.id.clone(), result);
    }
    let doomed = &results["doomed"];
    assert_eq!(error_kind(doomed), ErrorKind::Cancelled, "{doomed:?}");
    assert_eq!(doomed.attempts, 0, "no runner was called: {doomed:?}");
    assert!(results["spared"].is_ok(), "{:?}", results["spared"]);
}
