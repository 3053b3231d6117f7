//! The fuzz entry points (behind the `fuzzing` feature), for the fuzz targets in `fuzz/` and for
//! replaying their corpora on stable Rust. Not a stable API.

use crate::transport::codec::{Decoded, Decoder};

/// The largest frame the probe's decoder accepts: small, so that the size limit is reached.
const PROBE_MAX: usize = 1024;

/// Feeds `data` (after its first byte) to the WebSocket decoder twice: whole, and split in two
/// at a point the first byte chooses. Panics if either run panics, if a decoded text message is
/// not UTF-8 or is over the limit, or if the split changes anything: what was decoded, and the
/// error that ended the stream. Then decodes the same bytes with an independent decoder,
/// tungstenite's, and panics unless both see the same messages up to the first close and fail
/// (or not) for the same kind of reason (see `oracle`).
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
    oracle(stream, &whole.0);
}

/// A message or a close, as both decoders see it.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Seen {
    Text(Vec<u8>),
    Binary(Vec<u8>),
    Ping(Vec<u8>),
    Pong,
    Close(Option<u16>),
}

/// Why a decoder gave up, by kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Failure {
    Protocol,
    Utf8,
    TooLarge,
}

/// Compares roomcast's reading of `stream` with tungstenite's (as a server, with the probe's
/// limits): the same messages up to and including the first close, and the same kind of
/// failure. Where RFC 6455 lets two correct decoders differ, the comparison allows it:
/// - roomcast refuses a frame from its header alone (unmasked, reserved bits, too large), where
///   tungstenite reads the whole frame first: tungstenite is then given the rest of the frame;
/// - a fragmented text message that turns out not to be UTF-8 is failed at the fragment that
///   shows it by tungstenite, and when the message is complete by roomcast (which may meet
///   another violation first);
/// - a close frame with a code that may not be sent is a protocol error to both, reported by
///   tungstenite as the close it answers with (1002);
/// - a frame both too large and malformed (a long control frame, reserved bits): either check
///   may come first;
/// - close codes 1012-1014, registered since RFC 6455, are accepted by roomcast and refused by
///   tungstenite.
fn oracle(stream: &[u8], decoded: &[Decoded]) {
    let (ours, failure) = ours(decoded);
    let (mut theirs, mut their_failure) = tungstenite_decode(stream);
    if failure.is_some()
        && their_failure.is_none()
        && !matches!(theirs.last(), Some(Seen::Close(_)))
    {
        let mut padded = stream.to_vec();
        padded.resize(stream.len() + PROBE_MAX + 16, 0);
        (theirs, their_failure) = tungstenite_decode(&padded);
    }
    if failure == Some(Failure::Protocol) && theirs.last() == Some(&Seen::Close(Some(1002))) {
        theirs.pop();
        their_failure = Some(Failure::Protocol);
    }
    if let (Some(Seen::Close(Some(code @ 1012..=1014))), Some(Seen::Close(Some(1002)))) =
        (ours.last(), theirs.last())
    {
        // Registered since RFC 6455 (restart, try again later, bad gateway): roomcast accepts
        // them from a client, tungstenite does not.
        theirs.pop();
        theirs.push(Seen::Close(Some(*code)));
    }
    if their_failure == Some(Failure::Utf8) {
        // roomcast has not looked at the text yet: it reads on (control frames between the
        // fragments included) and fails later, for UTF-8 or whatever comes first, or not yet.
        assert!(
            ours.starts_with(&theirs),
            "before tungstenite's early UTF-8 failure: {ours:?} / {theirs:?}"
        );
        return;
    }
    assert_eq!(ours, theirs, "roomcast and tungstenite decode different messages");
    let either_way = [Some(Failure::Protocol), Some(Failure::TooLarge)];
    if either_way.contains(&failure) && either_way.contains(&their_failure) {
        return; // a frame both too large and malformed: which check comes first is free
    }
    assert_eq!(failure, their_failure, "roomcast and tungstenite fail differently");
}

/// roomcast's reading, up to the first close or violation.
fn ours(decoded: &[Decoded]) -> (Vec<Seen>, Option<Failure>) {
    let mut seen = Vec::new();
    for item in decoded {
        seen.push(match item {
            Decoded::Text(t) => Seen::Text(t.to_vec()),
            Decoded::Binary(b) => Seen::Binary(b.to_vec()),
            Decoded::Ping(p) => Seen::Ping(p.to_vec()),
            Decoded::Pong => Seen::Pong,
            Decoded::Close(code) => {
                seen.push(Seen::Close(*code));
                return (seen, None);
            }
            Decoded::Violation(violation) => {
                let failure = match violation {
                    roomcast_core::Violation::TooLarge => Failure::TooLarge,
                    roomcast_core::Violation::InvalidUtf8 => Failure::Utf8,
                    _ => Failure::Protocol,
                };
                return (seen, Some(failure));
            }
        });
    }
    (seen, None)
}

/// tungstenite's reading, up to the first close or failure.
fn tungstenite_decode(stream: &[u8]) -> (Vec<Seen>, Option<Failure>) {
    use tokio_tungstenite::tungstenite::protocol::{Role, WebSocket, WebSocketConfig};
    use tokio_tungstenite::tungstenite::{Error, Message};

    let config = WebSocketConfig::default()
        .max_message_size(Some(PROBE_MAX))
        .max_frame_size(Some(PROBE_MAX));
    let mut ws =
        WebSocket::from_raw_socket(Replay { input: stream, at: 0 }, Role::Server, Some(config));
    let mut seen = Vec::new();
    loop {
        match ws.read() {
            Ok(Message::Text(t)) => seen.push(Seen::Text(t.as_bytes().to_vec())),
            Ok(Message::Binary(b)) => seen.push(Seen::Binary(b.to_vec())),
            Ok(Message::Ping(p)) => seen.push(Seen::Ping(p.to_vec())),
            Ok(Message::Pong(_)) => seen.push(Seen::Pong),
            Ok(Message::Close(frame)) => {
                seen.push(Seen::Close(frame.map(|f| u16::from(f.code))));
                return (seen, None);
            }
            Ok(Message::Frame(_)) => {}
            Err(Error::Capacity(_)) => return (seen, Some(Failure::TooLarge)),
            Err(Error::Utf8(_)) => return (seen, Some(Failure::Utf8)),
            Err(Error::Protocol(_)) => return (seen, Some(Failure::Protocol)),
            // The end of the input (it would block), or nothing left to compare.
            Err(_) => return (seen, None),
        }
    }
}

/// A socket that replays bytes, then would block; writes (tungstenite's answers) go nowhere.
struct Replay<'a> {
    input: &'a [u8],
    at: usize,
}

impl std::io::Read for Replay<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let rest = &self.input[self.at..];
        if rest.is_empty() {
            return Err(std::io::ErrorKind::WouldBlock.into());
        }
        let n = rest.len().min(buf.len());
        buf[..n].copy_from_slice(&rest[..n]);
        self.at += n;
        Ok(n)
    }
}

impl std::io::Write for Replay<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
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
