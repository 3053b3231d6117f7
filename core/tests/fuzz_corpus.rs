//! Replays every file of the fuzz corpora (the fuzzer's finds, fuzz/corpus) and of the
//! hand-written seeds (fuzz/seeds, written by fuzz/seed_corpus.py) through the same probes the
//! fuzz targets run, on stable Rust, as part of the ordinary test suite.
//!
//! The minimum counts are close to what is committed: a corpus wiped or cut by mistake fails
//! here instead of quietly testing less.

use std::path::PathBuf;

use roomcast_core::fuzzing;

fn replay(folder: &str, target: &str, probe: fn(&[u8]), at_least: usize) {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fuzz").join(folder).join(target);
    let entries =
        std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("corpus {}: {e}", dir.display()));
    let mut files: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
    files.sort();
    assert!(files.len() >= at_least, "{folder}/{target} has only {} files", files.len());
    for file in files {
        let bytes = std::fs::read(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        let result = std::panic::catch_unwind(|| probe(&bytes));
        assert!(result.is_ok(), "probe {target} failed on {}", file.display());
    }
}

#[test]
fn client_frame_corpus_replays_without_a_broken_invariant() {
    replay("corpus", "client_frame", fuzzing::client_frame, 1500);
}

#[test]
fn client_frame_seeds_replay_without_a_broken_invariant() {
    replay("seeds", "client_frame", fuzzing::client_frame, 51);
}

#[test]
fn bus_envelope_corpus_replays_without_a_broken_invariant() {
    replay("corpus", "bus_envelope", fuzzing::bus_envelope, 2500);
}

#[test]
fn bus_envelope_seeds_replay_without_a_broken_invariant() {
    replay("seeds", "bus_envelope", fuzzing::bus_envelope, 41);
}

#[test]
fn hub_inputs_corpus_replays_without_a_broken_invariant() {
    replay("corpus", "hub_inputs", fuzzing::hub_inputs, 2500);
}

#[test]
fn hub_inputs_seeds_replay_without_a_broken_invariant() {
    replay("seeds", "hub_inputs", fuzzing::hub_inputs, 5);
}

#[test]
fn the_named_seeds_are_there() {
    let seeds = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fuzz/seeds");
    for (target, name) in [
        ("client_frame", "empty"),
        ("client_frame", "invalid-utf8"),
        ("client_frame", "trailing-garbage"),
        ("client_frame", "string-1mib"),
        ("bus_envelope", "empty"),
        ("bus_envelope", "presence-many"),
        ("hub_inputs", "churn"),
        ("websocket_frames", "unmasked"),
        ("websocket_frames", "reserved-opcode"),
    ] {
        let file = seeds.join(target).join(format!("seed-{name}"));
        assert!(file.is_file(), "{} is missing: run python3 fuzz/seed_corpus.py", file.display());
    }
}
