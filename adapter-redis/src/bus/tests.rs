use super::*;

/// A task that never connected, fed `ops` and then told to stop.
async fn offline_after(ops: Vec<Op>) -> (Task, Ended) {
    let (tx, rx) = mpsc::unbounded_channel();
    let (inbound, _arrivals) = mpsc::channel(1);
    let stats = Arc::new(Counters::default());
    let publishes = ops.iter().filter(|op| matches!(op, Op::Publish(..))).count();
    stats.pending.store(publishes, Ordering::Relaxed); // as `RedisBus::publish` counts them
    let config = RedisConfig::single("redis://127.0.0.1:1");
    let mut task =
        Task { config, ops: rx, inbound, stats, interest: BTreeSet::new(), withdrawn: false };
    for op in ops {
        tx.send(op).unwrap_or_else(|_| unreachable!("the receiver is held"));
    }
    drop(tx);
    // A wait far longer than the test: it ends because the bus was dropped.
    let ended = task.offline(Duration::from_secs(3600)).await;
    (task, ended)
}

fn sub(channel: &str) -> Op {
    Op::Subscribe(channel.to_owned())
}

fn unsub(channel: &str) -> Op {
    Op::Unsubscribe(channel.to_owned())
}

#[tokio::test]
async fn while_redis_is_away_interest_is_kept_for_the_reconnect_and_publishes_are_dropped() {
    let publish = Op::Publish("ws:room:a".to_owned(), Bytes::from_static(b"{}"));
    let (task, ended) =
        offline_after(vec![sub("ws:room:a"), sub("ws:room:b"), publish, unsub("ws:room:a")]).await;
    assert!(matches!(ended, Ended::Stopped));
    // What `connect` subscribes to once Redis is back.
    assert_eq!(task.interest.iter().map(String::as_str).collect::<Vec<_>>(), ["ws:room:b"]);
    let stats = &task.stats;
    assert_eq!(stats.subscriptions.load(Ordering::Relaxed), 1);
    assert_eq!(stats.publish_dropped.load(Ordering::Relaxed), 1, "at most once, and counted");
    assert_eq!(stats.pending.load(Ordering::Relaxed), 0);
}

#[tokio::test]
async fn subscribing_twice_and_unsubscribing_what_was_never_subscribed_keep_one_interest() {
    let (task, _) =
        offline_after(vec![sub("c"), sub("c"), unsub("never"), unsub("c"), sub("c")]).await;
    assert_eq!(task.interest.len(), 1);
    assert_eq!(task.stats.subscriptions.load(Ordering::Relaxed), 1);
}

#[tokio::test]
async fn a_withdrawal_while_redis_is_away_answers_at_once_and_stops_the_renewals() {
    let (done, answered) = oneshot::channel();
    let (task, _) = offline_after(vec![Op::Withdraw(done)]).await;
    assert!(task.withdrawn, "the lease is not renewed once Redis is back");
    // Dropped unanswered: `RedisBus::withdraw` completes instead of waiting for Redis.
    assert!(answered.await.is_err());
}

#[test]
fn the_wait_between_attempts_doubles_up_to_its_cap() {
    let max = Duration::from_secs(5);
    let mut wait = Duration::from_millis(100);
    let mut waits = Vec::new();
    for _ in 0..8 {
        waits.push(wait.as_millis());
        wait = next_backoff(wait, max);
    }
    assert_eq!(waits, [100, 200, 400, 800, 1600, 3200, 5000, 5000]);
    assert_eq!(next_backoff(Duration::MAX, max), max, "no overflow");
}

#[test]
fn leases_live_under_the_channel_prefix() {
    assert_eq!(lease_key("ws"), "ws:leases");
    assert_eq!(lease_key("tenant-a"), "tenant-a:leases");
}

#[tokio::test]
async fn a_publish_over_the_queue_is_dropped_and_counted_without_reaching_the_task() {
    let config = RedisConfig { publish_queue: 2, ..RedisConfig::single("redis://127.0.0.1:1") };
    let (bus, _inbound) = RedisBus::start(config);
    // On this one-threaded runtime the bus task has not run yet: the queue alone decides.
    for n in 0..5 {
        bus.publish("ws:broadcast".to_owned(), Bytes::from(format!("{n}")));
    }
    let stats = bus.stats();
    assert_eq!(stats.publish_dropped, 3, "{stats:?}");
    assert!(!stats.connected);
}
