//! Replays the `websocket_frames` fuzz corpus (fuzz/corpus/websocket_frames: what the fuzzer
//! found and was kept) and its hand-written seeds (fuzz/seeds/websocket_frames) through the same
//! probe, on stable Rust. The minimum counts are close to what is committed, so that a corpus
//! wiped by mistake fails.

use std::path::PathBuf;

fn replay(folder: &str, at_least: usize) {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fuzz").join(folder);
    let dir = dir.join("websocket_frames");
    let entries =
        std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("corpus {}: {e}", dir.display()));
    let mut files = 0;
    for entry in entries {
        let path = entry.unwrap_or_else(|e| panic!("corpus entry: {e}")).path();
        let data = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        roomcast_tokio::fuzzing::websocket_frames(&data);
        files += 1;
    }
    assert!(files >= at_least, "{} has only {files} files", dir.display());
}

#[test]
fn websocket_frames_corpus_replays_without_a_broken_invariant() {
    replay("corpus", 300);
}

#[test]
fn websocket_frames_seeds_replay_without_a_broken_invariant() {
    replay("seeds", 13);
}

#[test]
fn every_split_of_a_mixed_stream_decodes_the_same() {
    // The probe's own check, on a stream where every split point is tried: a text frame, a
    // ping, and a fragmented message.
    let frame = |first: u8, payload: &[u8]| {
        let mask = [7u8, 1, 2, 3];
        let mut out = vec![first, 0x80 | payload.len() as u8];
        out.extend_from_slice(&mask);
        out.extend(payload.iter().zip(mask.iter().cycle()).map(|(b, m)| b ^ m));
        out
    };
    let mut stream = frame(0x81, b"{\"event\":\"x\"}");
    stream.extend(frame(0x89, b"ping"));
    stream.extend(frame(0x01, b"ab"));
    stream.extend(frame(0x80, b"cd"));
    for at in 0..=stream.len() {
        let mut data = vec![at as u8];
        data.extend_from_slice(&stream);
        roomcast_tokio::fuzzing::websocket_frames(&data);
    }
}
