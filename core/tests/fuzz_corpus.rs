//! Replays every file of the fuzz corpora (hand-written seeds and the fuzzer's finds) through the
//! same probes the fuzz targets run, on stable Rust, as part of the ordinary test suite.

use std::path::PathBuf;

use roomcast_core::fuzzing;

fn replay(target: &str, probe: fn(&[u8]), at_least: usize) {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus").join(target);
    let entries =
        std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("corpus {}: {e}", dir.display()));
    let mut files: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
    files.sort();
    assert!(files.len() >= at_least, "corpus {target} has only {} files", files.len());
    for file in files {
        let bytes = std::fs::read(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        let result = std::panic::catch_unwind(|| probe(&bytes));
        assert!(result.is_ok(), "probe {target} failed on {}", file.display());
    }
}

#[test]
fn client_frame_corpus_replays_without_a_broken_invariant() {
    replay("client_frame", fuzzing::client_frame, 40);
}

#[test]
fn bus_envelope_corpus_replays_without_a_broken_invariant() {
    replay("bus_envelope", fuzzing::bus_envelope, 25);
}

#[test]
fn hub_inputs_corpus_replays_without_a_broken_invariant() {
    replay("hub_inputs", fuzzing::hub_inputs, 5);
}
