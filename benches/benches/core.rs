//! Criterion benches of the sans-IO core. Run: `cargo bench -p roomcast-benches --bench core`.
#![allow(missing_docs, clippy::unwrap_used)]

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use roomcast_benches::{drain, hub_with_room, hub_with_small_rooms};
use roomcast_core::{ConnId, Exclude, Hub, HubConfig, wire};

/// One room broadcast through the application API (serialize once, fan out, publish), drained.
fn broadcast(c: &mut Criterion) {
    let mut group = c.benchmark_group("broadcast_room");
    let data = serde_json::value::RawValue::from_string(r#"{"text":"hello, room","n":42}"#.into())
        .unwrap();
    for members in [10u128, 1_000, 100_000] {
        let now = Instant::now();
        let mut hub = hub_with_room(members, now);
        group.throughput(Throughput::Elements(members as u64));
        group.bench_with_input(BenchmarkId::new("no_exclusion", members), &members, |b, _| {
            b.iter(|| {
                hub.broadcast_room("room", "msg", &*data, &Exclude::none(), now).unwrap();
                black_box(drain(&mut hub))
            })
        });
        let sender = Exclude::conn(ConnId::from_u128(members / 2));
        group.bench_with_input(BenchmarkId::new("exclude_sender", members), &members, |b, _| {
            b.iter(|| {
                hub.broadcast_room("room", "msg", &*data, &sender, now).unwrap();
                black_box(drain(&mut hub))
            })
        });
        let many =
            Exclude { conns: (0..16).map(|i| ConnId::from_u128(i * 7)).collect(), users: vec![] };
        group.bench_with_input(BenchmarkId::new("exclude_16", members), &members, |b, _| {
            b.iter(|| {
                hub.broadcast_room("room", "msg", &*data, &many, now).unwrap();
                black_box(drain(&mut hub))
            })
        });
    }
    group.finish();
}

/// A client `publish` frame end to end: parse, check membership, fan out, publish.
fn client_publish(c: &mut Criterion) {
    let mut group = c.benchmark_group("client_publish");
    let frame = br#"{"event":"publish","data":{"room":"room","event":"msg","data":{"text":"hello, room","n":42}}}"#;
    for members in [10u128, 1_000] {
        let now = Instant::now();
        let mut hub = hub_with_room(members, now);
        group.throughput(Throughput::Elements(members as u64));
        group.bench_with_input(BenchmarkId::from_parameter(members), &members, |b, _| {
            b.iter(|| {
                hub.handle_frame(ConnId::from_u128(0), frame, now);
                black_box(drain(&mut hub))
            })
        });
    }
    group.finish();
}

/// The room policy check: one lookup through eight rules that do not match, and a client publish
/// into a room of 10 under them (compare `client_publish/10`, the same publish with no rules).
fn policies(c: &mut Criterion) {
    let rules = roomcast_benches::eight_rules();
    c.bench_function("room_policy_lookup_8_rules_no_match", |b| {
        b.iter(|| black_box(rules.for_room(black_box("room-1234"))))
    });
    let frame = br#"{"event":"publish","data":{"room":"room","event":"msg","data":{"text":"hello, room","n":42}}}"#;
    let now = Instant::now();
    let mut hub = roomcast_benches::hub_with_room_under(10, roomcast_benches::eight_rules(), now);
    c.bench_function("client_publish_8_rules/10", |b| {
        b.iter(|| {
            hub.handle_frame(ConnId::from_u128(0), frame, now);
            black_box(drain(&mut hub))
        })
    });
}

/// Client `publish` frames in many small rooms (10,000 rooms of 10, as `roomcast-load rooms`):
/// each publish finds a room the caches have likely lost since its last turn, as on a server.
fn client_publish_many_rooms(c: &mut Criterion) {
    let now = Instant::now();
    let (mut hub, publishers) = hub_with_small_rooms(10_000, 10, 2_000, 100, now);
    let frames: Vec<(ConnId, Vec<u8>)> = (0..100)
        .flat_map(|turn| {
            publishers.iter().map(move |(conn, rooms)| {
                let room = &rooms[turn % rooms.len()];
                let frame = format!(
                    r#"{{"event":"publish","data":{{"room":"{room}","event":"msg","data":{{"t":1}}}}}}"#
                );
                (*conn, frame.into_bytes())
            })
        })
        .collect();
    let mut group = c.benchmark_group("client_publish_many_rooms");
    group.throughput(Throughput::Elements(frames.len() as u64));
    group.bench_function("10000_rooms_of_10", |b| {
        b.iter(|| {
            let mut delivered = 0;
            for (conn, frame) in &frames {
                hub.handle_frame(*conn, frame, now);
                delivered += drain(&mut hub);
            }
            black_box(delivered)
        })
    });
    group.finish();
}

fn parse(c: &mut Criterion) {
    let mut group = c.benchmark_group("parse_client_frame");
    let small = br#"{"event":"chat","data":{"text":"hi"},"id":7}"#.to_vec();
    let join = br#"{"event":"join","data":{"rooms":["lobby","game:42","team:7:chat"]},"id":"j1"}"#
        .to_vec();
    let large = format!(
        r#"{{"event":"doc","data":{{"ops":[{}]}}}}"#,
        vec![r#"{"i":1,"s":"abcdefgh"}"#; 400].join(",")
    )
    .into_bytes();
    for (name, frame) in [("small", &small), ("join", &join), ("10KiB", &large)] {
        group.throughput(Throughput::Bytes(frame.len() as u64));
        group.bench_function(name, |b| {
            b.iter(|| black_box(wire::parse_client_frame(black_box(frame)).is_ok()))
        });
    }
    group.finish();
}

/// A connection joins and leaves a room of 1,000 (index both ways, interest unchanged).
fn churn(c: &mut Criterion) {
    let now = Instant::now();
    let mut hub = hub_with_room(1_000, now);
    let conn = ConnId::from_u128(0);
    c.bench_function("join_leave_room_of_1000", |b| {
        b.iter(|| {
            hub.leave(conn, "room", now).unwrap();
            hub.join(conn, "room", now).unwrap();
            drain(&mut hub)
        })
    });
    let mut hub = hub_with_room(1_000, now);
    let mut next = 1_000_000u128;
    c.bench_function("connect_join_disconnect", |b| {
        b.iter(|| {
            let conn = ConnId::from_u128(next);
            next += 1;
            hub.handle_connect(conn, now).unwrap();
            hub.join(conn, "room", now).unwrap();
            hub.handle_disconnect(conn, now);
            drain(&mut hub)
        })
    });
}

/// `handle_timeout` with 100,000 idle connections: a tick with nothing due, and a tick where every
/// connection is due for its ping.
fn timeouts(c: &mut Criterion) {
    let mut group = c.benchmark_group("timeout_100k_idle");
    let start = Instant::now();
    let config = HubConfig { rate_limit: None, ..HubConfig::default() };
    let mut hub = Hub::new(config, start, 0).unwrap();
    for i in 0..100_000u128 {
        hub.handle_connect(ConnId::from_u128(i), start).unwrap();
    }
    drain(&mut hub);
    group.bench_function("nothing_due", |b| {
        b.iter(|| {
            hub.handle_timeout(start + Duration::from_secs(1));
            black_box(hub.poll_timeout())
        })
    });
    group.throughput(Throughput::Elements(100_000));
    group.sample_size(10);
    group.bench_function("all_due_for_ping", |b| {
        b.iter_batched(
            || {
                let mut hub =
                    Hub::new(HubConfig { rate_limit: None, ..HubConfig::default() }, start, 0)
                        .unwrap();
                for i in 0..100_000u128 {
                    hub.handle_connect(ConnId::from_u128(i), start).unwrap();
                }
                drain(&mut hub);
                hub
            },
            |mut hub| {
                hub.handle_timeout(start + Duration::from_secs(10));
                drain(&mut hub);
                hub
            },
            criterion::BatchSize::LargeInput,
        )
    });
    group.finish();
}

criterion_group!(
    benches,
    broadcast,
    client_publish,
    policies,
    client_publish_many_rooms,
    parse,
    churn,
    timeouts
);
criterion_main!(benches);
