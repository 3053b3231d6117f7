//! The fuzz entry points (behind the `fuzzing` feature), for the fuzz targets in `fuzz/` and for
//! replaying their corpora on stable Rust. Not a stable API.

use crate::codec::{Decoded, Decoder};

/// The largest frame the probe's decoder accepts: small, so that the size limit is reached.
const PROBE_MAX: usize = 1024;

/// Feeds `data` (after its first byte) to the WebSocket decoder twice: whole, and split in two
/// at a point the first byte chooses. Panics if either run panics, if a decoded text message is
/// not UTF-8 or is over the limit, or if the split changes anything: what was decoded, and the
/// error that ended the stream.
pub fn websocket_frames(data: &[u8]) {
    let Some((&first, stream)) = data.split_first() else { return };
    let whole = decode(&[stream]);
    let at = usize::from(first).min(stream.len());
    let split = decode(&[&stream[..at], &stream[at..]]);
    assert_eq!(whole, split, "decoding depends on where the stream was split");
    for item in &whole.0 {
        if let Decoded::Text(text) = item {
            assert!(text.len() <= PROBE_MAX, "a text message over the limit");
            assert!(std::str::from_utf8(text).is_ok(), "a text message that is not UTF-8");
        }
    }
}

/// Decodes `pieces` in turn; stops at the first error.
fn decode(pieces: &[&[u8]]) -> (Vec<Decoded>, Option<String>) {
    let mut decoder = Decoder::new(PROBE_MAX);
    let mut out = Vec::new();
    for piece in pieces {
        if let Err(violation) = decoder.feed(piece, &mut out) {
            return (out, Some(violation.to_string()));
        }
    }
    (out, None)
}
