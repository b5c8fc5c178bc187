//! The cases of the broker contract, one function each, generic over the backend.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use bytes::Bytes;
use switchyard_wire::headers;
use tokio::time::Instant;

use super::{
    Harness, QUIET, REQUEUE_WITHIN, WAIT, next, next_within, task, wait_for_depth,
    wait_until_cancelled,
};
use crate::{
    Broker, BrokerError, Cancellations, DeadLetter, DeadLetterStore, Depths, MAX_PRIORITY, Message,
    QueueStats, ResultSource,
};

/// A message using every property Switchyard reads, with a body that is not UTF-8.
fn full_message(id: &str) -> Message {
    Message {
        id: Some(id.into()),
        body: Bytes::from_static(b"\x00\xffnot utf-8 \xc3{"),
        reply_to: Some("replies-here".into()),
        correlation_id: Some("corr-7".into()),
        headers: BTreeMap::from([
            (headers::ATTEMPTS.to_owned(), "2".to_owned()),
            (headers::TRACEPARENT.to_owned(), "00-abc-def-01".to_owned()),
            ("x-producer".to_owned(), "kept".to_owned()),
        ]),
        priority: 7,
    }
}

/// Every property Switchyard reads (id, reply-to, correlation id, headers, priority) and a body that is not UTF-8 arrive as they were published.
pub async fn a_round_trip_keeps_every_property<H: Harness>() {
    let harness = H::open().await;
    let broker = harness.broker();
    let sent = full_message("round-trip");
    broker
        .publish_task(sent.clone(), Duration::ZERO)
        .await
        .unwrap();
    let mut tasks = broker.consume_tasks(4).await.unwrap();
    let delivery = next(&mut tasks).await;
    assert_eq!(delivery.message, sent);
    assert!(!delivery.redelivered, "a first delivery is no redelivery");
    delivery.ack().await.unwrap();
}

/// An acknowledged task is never delivered again, or a finished task would run twice.
pub async fn an_acked_delivery_is_gone_for_good<H: Harness>() {
    let harness = H::open().await;
    let broker = harness.broker();
    broker
        .publish_task(task("acked"), Duration::ZERO)
        .await
        .unwrap();
    let mut tasks = broker.consume_tasks(4).await.unwrap();
    next(&mut tasks).await.ack().await.unwrap();
    wait_for_depth(&harness, Depths::default()).await;
    // Past the time an unsettled one would be handed back.
    let watch = harness.redelivery() + QUIET;
    assert!(next_within(&mut tasks, watch).await.is_none());
}

/// A delivery dropped without settling (a crashed controller) comes back, flagged as redelivered.
pub async fn a_delivery_dropped_unsettled_comes_back_redelivered<H: Harness>() {
    let harness = H::open().await;
    let broker = harness.broker();
    for id in ["dropped", "behind"] {
        broker.publish_task(task(id), Duration::ZERO).await.unwrap();
    }
    let mut tasks = broker.consume_tasks(1).await.unwrap();
    let first = next(&mut tasks).await;
    assert_eq!(first.message.id.as_deref(), Some("dropped"));
    assert!(!first.redelivered);
    // Like a consumer that crashed mid-task: nothing settles it, its stream goes away.
    drop(first);
    drop(tasks);

    let mut tasks = broker.consume_tasks(2).await.unwrap();
    let mut seen = BTreeMap::new();
    for _ in 0..2 {
        let delivery = next_within(&mut tasks, harness.redelivery() + WAIT)
            .await
            .expect("both tasks, the dropped one again");
        seen.insert(delivery.message.id.clone().unwrap(), delivery.redelivered);
        delivery.ack().await.unwrap();
    }
    assert_eq!(
        seen,
        BTreeMap::from([("behind".into(), false), ("dropped".into(), true)])
    );
}

/// A requeued delivery (a controller shutting down) is back at once, not after a lease or timeout.
pub async fn a_requeued_delivery_comes_back_at_once_redelivered<H: Harness>() {
    let harness = H::open().await;
    let broker = harness.broker();
    broker
        .publish_task(task("requeued"), Duration::ZERO)
        .await
        .unwrap();
    let mut tasks = broker.consume_tasks(1).await.unwrap();
    next(&mut tasks).await.requeue().await.unwrap();
    let requeued = Instant::now();
    let again = next(&mut tasks).await;
    assert!(
        requeued.elapsed() < REQUEUE_WITHIN,
        "back after {:?}: the requeue did nothing",
        requeued.elapsed()
    );
    assert_eq!(again.message, task("requeued"));
    assert!(again.redelivered);
    again.ack().await.unwrap();
}

/// A consumer holds at most `prefetch` unsettled deliveries, so other controllers get the rest.
pub async fn prefetch_bounds_the_unsettled_deliveries<H: Harness>() {
    let harness = H::open().await;
    let broker = harness.broker();
    for id in ["p1", "p2", "p3", "p4"] {
        broker.publish_task(task(id), Duration::ZERO).await.unwrap();
    }
    let mut tasks = broker.consume_tasks(2).await.unwrap();
    let first = next(&mut tasks).await;
    let second = next(&mut tasks).await;
    assert!(
        next_within(&mut tasks, QUIET).await.is_none(),
        "a third delivery with prefetch 2"
    );
    first.ack().await.unwrap();
    let third = next(&mut tasks).await;
    assert_eq!(third.message.id.as_deref(), Some("p3"));
    assert!(next_within(&mut tasks, QUIET).await.is_none());
    // A requeue frees its slot too.
    second.requeue().await.unwrap();
    let fourth = next(&mut tasks).await;
    assert!(next_within(&mut tasks, QUIET).await.is_none());
    for delivery in [third, fourth] {
        delivery.ack().await.unwrap();
    }
}

/// A delayed task (a retry waiting for its backoff) is not handed out before its delay.
pub async fn a_delayed_task_is_invisible_until_its_delay_passes<H: Harness>() {
    let harness = H::open().await;
    let broker = harness.broker();
    let delay = Duration::from_millis(400);
    let published = Instant::now();
    broker.publish_task(task("later"), delay).await.unwrap();
    broker
        .publish_task(task("now"), Duration::ZERO)
        .await
        .unwrap();

    let mut tasks = broker.consume_tasks(4).await.unwrap();
    let now = next(&mut tasks).await;
    assert_eq!(now.message.id.as_deref(), Some("now"));
    now.ack().await.unwrap();
    let later = next(&mut tasks).await;
    // The embedded queue stores whole milliseconds: allow for one of rounding.
    let waited = published.elapsed();
    assert!(
        waited >= delay - Duration::from_millis(1),
        "visible after {waited:?}, before its delay"
    );
    assert_eq!(later.message, task("later"));
    assert!(!later.redelivered);
    later.ack().await.unwrap();
    wait_for_depth(&harness, Depths::default()).await;
}

/// Dead letters are listed oldest first without being taken, and replayed one by one or all together.
pub async fn dead_letters_are_listed_and_requeued_by_key_or_all<H: Harness>() {
    let harness = H::open().await;
    let broker = harness.broker();
    // RabbitMQ keeps a dead letter's attempts in the message's own attempts header, so a
    // letter's `attempts` is what every backend keeps, not the header of the last delivery.
    let dead_message = |id: &str| {
        let mut message = full_message(id);
        message.reply_to = None;
        message.headers.remove(headers::ATTEMPTS);
        message
            .headers
            .insert(headers::FIRST_SEEN_MS.into(), "1700000000000".into());
        message
    };
    for id in ["a", "b", "c"] {
        let letter = DeadLetter {
            message: dead_message(id),
            reason: "attempts_exhausted".into(),
            attempts: 5,
            last_error: format!("runner said no to {id}"),
        };
        broker.dead_letter(letter).await.unwrap();
    }
    let listed = broker.list_dead_letters(10).await.unwrap();
    let ids: Vec<_> = listed
        .iter()
        .map(|stored| stored.letter.message.id.clone().unwrap())
        .collect();
    assert_eq!(ids, ["a", "b", "c"], "oldest first");
    assert_eq!(
        listed[0].letter,
        DeadLetter {
            message: dead_message("a"),
            reason: "attempts_exhausted".into(),
            attempts: 5,
            last_error: "runner said no to a".into(),
        },
        "stored whole"
    );
    assert_eq!(broker.list_dead_letters(2).await.unwrap().len(), 2);
    assert_eq!(
        broker.list_dead_letters(10).await.unwrap(),
        listed,
        "listing removes nothing"
    );

    // A key no letter has is no error: another operator may have requeued it already.
    let chosen = [listed[1].key.clone(), "999999".to_owned()];
    assert_eq!(broker.requeue_dead_letters(Some(&chosen)).await.unwrap(), 1);
    let mut tasks = broker.consume_tasks(4).await.unwrap();
    let replayed = next(&mut tasks).await;
    // A fresh start: no attempts, no first-seen time; the rest as it was.
    let mut fresh = dead_message("b");
    fresh.headers.remove(headers::FIRST_SEEN_MS);
    assert_eq!(replayed.message, fresh);
    assert!(!replayed.redelivered);
    replayed.ack().await.unwrap();
    let left: Vec<_> = broker
        .list_dead_letters(10)
        .await
        .unwrap()
        .into_iter()
        .map(|stored| stored.letter.message.id.unwrap())
        .collect();
    assert_eq!(left, ["a", "c"]);

    assert_eq!(broker.requeue_dead_letters(None).await.unwrap(), 2);
    assert!(broker.list_dead_letters(10).await.unwrap().is_empty());
    let mut ids = BTreeSet::new();
    for _ in 0..2 {
        let delivery = next(&mut tasks).await;
        ids.insert(delivery.message.id.clone().unwrap());
        delivery.ack().await.unwrap();
    }
    assert_eq!(ids, BTreeSet::from(["a".to_owned(), "c".to_owned()]));
}

/// A result with `reply_to` reaches the RPC producer's queue only.
pub async fn a_result_goes_to_its_reply_queue_and_not_to_the_results_queue<H: Harness>() {
    let harness = H::open().await;
    let broker = harness.broker();
    let (reply_to, mut replies) = harness.reply_queue().await;
    let mut rpc = full_message("rpc");
    rpc.reply_to = Some(reply_to);
    broker.publish_result(rpc.clone()).await.unwrap();
    let plain = Message::new("plain").with_id("plain");
    broker.publish_result(plain.clone()).await.unwrap();

    let reply = next(&mut replies).await;
    assert_eq!(reply.message, rpc);
    reply.ack().await.unwrap();
    // Published first, so it would be first on the results queue had it gone there.
    let mut results = broker.consume_results(4).await.unwrap();
    assert_eq!(next(&mut results).await.message, plain);
}

/// A result without `reply_to` waits on the results queue for a collector.
pub async fn a_result_without_reply_to_goes_to_the_results_queue<H: Harness>() {
    let harness = H::open().await;
    let broker = harness.broker();
    let mut result = full_message("queued-result");
    result.reply_to = None;
    broker.publish_result(result.clone()).await.unwrap();
    let mut results = broker.consume_results(4).await.unwrap();
    let delivery = next(&mut results).await;
    assert_eq!(delivery.message, result);
    delivery.ack().await.unwrap();
    // The task queue is another queue.
    assert_eq!(harness.broker().depths().await.unwrap(), Depths::default());
}

/// A delivery whose consumer's connection died comes back to another consumer, and the dead consumer's late ack fails rather than removing it.
pub async fn a_delivery_of_a_dead_connection_comes_back_and_its_late_ack_fails<H: Harness>() {
    let harness = H::open_alone().await;
    let broker = harness.broker();
    broker
        .publish_task(task("orphan"), Duration::ZERO)
        .await
        .unwrap();
    let orphan = harness.orphan_next_task().await;
    assert_eq!(orphan.message, task("orphan"));

    let mut tasks = broker.consume_tasks(4).await.unwrap();
    let again = next_within(&mut tasks, harness.redelivery() + WAIT)
        .await
        .expect("the orphaned task comes back");
    assert_eq!(again.message, task("orphan"));
    assert!(again.redelivered);
    // The broker has already handed it to someone else: settling it is void.
    let late = orphan.ack().await;
    assert!(
        matches!(late, Err(BrokerError::Disconnected { .. })),
        "a late ack from a dead connection: {late:?}"
    );
    again.ack().await.unwrap();
    wait_for_depth(&harness, Depths::default()).await;
}

/// Once exactly `expected.len()` tasks are visible, takes them one at a time (acking each) and
/// checks their ids and priorities come in that order.
async fn assert_delivered_in_order<H: Harness>(harness: &H, expected: &[(&str, u8)]) {
    let count = expected.len();
    wait_for_depth(
        harness,
        Depths {
            tasks: count as u64,
            ..Depths::default()
        },
    )
    .await;
    let mut tasks = harness.broker().consume_tasks(1).await.unwrap();
    let mut delivered = Vec::with_capacity(count);
    for _ in 0..count {
        let delivery = next(&mut tasks).await;
        delivered.push((
            delivery.message.id.clone().unwrap(),
            delivery.message.priority,
        ));
        delivery.ack().await.unwrap();
    }
    let expected: Vec<(String, u8)> = expected
        .iter()
        .map(|&(id, priority)| (id.to_owned(), priority))
        .collect();
    assert_eq!(delivered, expected);
}

/// Higher priorities are taken first; within one priority, tasks keep their publish order.
pub async fn higher_priorities_are_delivered_first_in_publish_order_within_one<H: Harness>() {
    let harness = H::open().await;
    let broker = harness.broker();
    let published = [
        task("plain-1"),
        task("mid").with_priority(4),
        task("top-1").with_priority(MAX_PRIORITY),
        task("plain-2").with_priority(0),
        // Past the maximum counts as the maximum, behind the one published before it.
        task("over").with_priority(200),
        task("top-2").with_priority(MAX_PRIORITY),
        task("plain-3"),
    ];
    for message in published {
        broker.publish_task(message, Duration::ZERO).await.unwrap();
    }
    assert_delivered_in_order(
        &harness,
        &[
            ("top-1", 9),
            ("over", 9),
            ("top-2", 9),
            ("mid", 4),
            // A task that names no priority has 0.
            ("plain-1", 0),
            ("plain-2", 0),
            ("plain-3", 0),
        ],
    )
    .await;
}

/// A retried task keeps its priority through the delay and overtakes lower ones once visible.
pub async fn a_delayed_task_keeps_its_priority_and_goes_first_once_visible<H: Harness>() {
    let harness = H::open().await;
    let broker = harness.broker();
    let delayed = task("urgent-retry").with_priority(8);
    broker
        .publish_task(delayed, Duration::from_millis(300))
        .await
        .unwrap();
    for id in ["waiting-1", "waiting-2"] {
        broker.publish_task(task(id), Duration::ZERO).await.unwrap();
    }
    assert_delivered_in_order(
        &harness,
        &[("urgent-retry", 8), ("waiting-1", 0), ("waiting-2", 0)],
    )
    .await;
}

/// A replayed dead letter keeps its priority.
pub async fn a_requeued_dead_letter_keeps_its_priority_and_goes_first<H: Harness>() {
    let harness = H::open().await;
    let broker = harness.broker();
    let letter = DeadLetter {
        message: task("replayed").with_priority(6),
        reason: "attempts_exhausted".into(),
        attempts: 3,
        last_error: "runner said no".into(),
    };
    broker.dead_letter(letter).await.unwrap();
    assert_eq!(
        broker.list_dead_letters(10).await.unwrap()[0]
            .letter
            .message
            .priority,
        6,
        "a dead letter keeps its priority"
    );
    broker
        .publish_task(task("queued"), Duration::ZERO)
        .await
        .unwrap();
    assert_eq!(broker.requeue_dead_letters(None).await.unwrap(), 1);
    assert_delivered_in_order(&harness, &[("replayed", 6), ("queued", 0)]).await;
}

/// Depths count ready, delayed and dead messages separately, as the dashboard shows them.
pub async fn queue_stats_count_what_waits_where<H: Harness>() {
    let harness = H::open().await;
    let broker = harness.broker();
    assert_eq!(broker.depths().await.unwrap(), Depths::default());
    for id in ["ready-1", "ready-2"] {
        broker.publish_task(task(id), Duration::ZERO).await.unwrap();
    }
    // Long enough that it is still waiting when the case ends.
    broker
        .publish_task(task("later"), Duration::from_secs(120))
        .await
        .unwrap();
    let letter = DeadLetter {
        message: task("dead"),
        reason: "rejected".into(),
        attempts: 1,
        last_error: "400".into(),
    };
    broker.dead_letter(letter).await.unwrap();
    let counted = |tasks, dead_letters| Depths {
        tasks,
        delayed: 1,
        dead_letters,
    };
    wait_for_depth(&harness, counted(2, 1)).await;

    assert_eq!(broker.requeue_dead_letters(None).await.unwrap(), 1);
    wait_for_depth(&harness, counted(3, 0)).await;

    // A task a consumer holds unsettled waits nowhere.
    let mut tasks = broker.consume_tasks(1).await.unwrap();
    let _held = next(&mut tasks).await;
    wait_for_depth(&harness, counted(2, 0)).await;
}

/// What a second controller sees: a cancel recorded through one handle reaches a handle that was
/// already asking (within the backend's delivery latency), and a handle opened after the cancel
/// sees it on its first answer; an id nobody cancelled is never seen.
pub async fn a_cancel_is_seen_through_every_handle_even_one_opened_after_it<H: Harness>() {
    let harness = H::open().await;
    let recorder = harness.broker();
    let already_asking = harness.another_handle().await;
    assert!(!already_asking.is_cancelled("doomed").await.unwrap());

    recorder.cancel("doomed").await.unwrap();
    // Cancelling twice is no error: two operators may cancel the same task.
    recorder.cancel("doomed").await.unwrap();
    wait_until_cancelled(already_asking.as_ref(), "doomed").await;
    let opened_after = harness.another_handle().await;
    assert!(
        opened_after.is_cancelled("doomed").await.unwrap(),
        "a handle opened after the cancel does not see it on its first answer"
    );
    for handle in [recorder, &already_asking, &opened_after] {
        assert!(!handle.is_cancelled("spared").await.unwrap());
    }
}
