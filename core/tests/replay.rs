//! Determinism: the same input sequence gives byte-identical outputs, even with a different hash
//! seed (output order never depends on hashing).
#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use roomcast_core::{AuthMode, ConnId, Exclude, Hub, HubConfig, Identity};

/// A small deterministic generator (SplitMix64), so the sequence is the same on every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// Runs 5,000 pseudo-random inputs and returns every output, rendered.
fn run(start: Instant, hash_seed: u64) -> Vec<String> {
    let config = HubConfig { auth: AuthMode::Required, hash_seed, ..HubConfig::default() };
    let mut hub = Hub::new(config, start, 1_000).unwrap();
    let mut rng = Rng(7);
    let mut now = start;
    let mut outputs = Vec::new();
    let rooms = ["lobby", "game:1", "game:2", "ops", "café"];
    for _ in 0..5_000 {
        let c = ConnId::from_u128(u128::from(rng.below(40)));
        let room = rooms[rng.below(rooms.len() as u64) as usize];
        let _ = match rng.below(14) {
            0 | 1 => hub.handle_connect(c, now).map(|_| ()),
            2 => {
                hub.handle_frame(c, br#"{"event":"authenticate","data":{"token":"t"}}"#, now);
                Ok(())
            }
            3 => hub.accept_auth(c, Identity::user(format!("user{}", rng.below(5))), now),
            4 | 5 => {
                let frame = format!(
                    r#"{{"event":"join","data":{{"rooms":["{room}","ops"]}},"id":{}}}"#,
                    rng.below(100)
                );
                hub.handle_frame(c, frame.as_bytes(), now);
                Ok(())
            }
            6 => {
                let frame = format!(r#"{{"event":"leave","data":{{"rooms":["{room}"]}}}}"#);
                hub.handle_frame(c, frame.as_bytes(), now);
                Ok(())
            }
            7 | 8 => {
                let frame = format!(
                    r#"{{"event":"publish","data":{{"room":"{room}","event":"m","data":[{}]}}}}"#,
                    rng.next()
                );
                hub.handle_frame(c, frame.as_bytes(), now);
                Ok(())
            }
            9 => hub.broadcast_room(room, "b", &rng.next(), &Exclude::conn(c), now).map(drop),
            10 => {
                let envelope = format!(
                    r#"{{"serverId":"emitter","type":"room","target":"{room}","event":"x","data":{{}}}}"#
                );
                hub.handle_bus("ws:room", envelope.as_bytes(), now);
                Ok(())
            }
            11 => hub.send_to_user(&format!("user{}", rng.below(5)), "u", &(), now).map(drop),
            12 => {
                hub.handle_disconnect(c, now);
                Ok(())
            }
            _ => {
                now += Duration::from_millis(rng.below(1_500));
                hub.handle_timeout(now);
                Ok(())
            }
        };
        while let Some(output) = hub.poll_output() {
            outputs.push(format!("{output:?}"));
        }
    }
    outputs
}

#[test]
fn same_inputs_give_byte_identical_outputs_whatever_the_hash_seed() {
    let start = Instant::now();
    let first = run(start, 0);
    let second = run(start, 0);
    let reseeded = run(start, 0xdead_beef);
    assert!(first.len() > 3_000, "the sequence does real work ({} outputs)", first.len());
    assert!(first.iter().any(|o| o.starts_with("Transmit")), "frames were sent");
    assert!(first.iter().any(|o| o.starts_with("Close")), "deadlines fired");
    assert_eq!(first, second);
    assert_eq!(first, reseeded);
}
