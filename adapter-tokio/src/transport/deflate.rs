//! permessage-deflate (RFC 7692) on the fast path: the negotiation at the upgrade, the inflater
//! of one connection's messages, and the compressor of the hub's frames.
//!
//! The server always compresses with `server_no_context_takeover`: each message is compressed
//! on its own, so a broadcast is compressed once and the same bytes go to every recipient that
//! negotiated the extension (uWebSockets' shared compressor), and the serialize-once rule holds.
//! A client may keep its context; its inflater then lives as long as its connection.

use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};
use hyper::header::{HeaderMap, HeaderValue, SEC_WEBSOCKET_EXTENSIONS};
use roomcast_core::Violation;

/// The four bytes a sync flush ends with, which a compressed message leaves off (RFC 7692 7.2.1).
const TAIL: [u8; 4] = [0x00, 0x00, 0xff, 0xff];

/// What was agreed with one client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Agreed {
    /// The client resets its compressor after each message: so does our inflater.
    pub(crate) client_no_context_takeover: bool,
    /// The window the client asked the server to keep under (`server_max_window_bits`), if
    /// under 15 bits. The compressor has one window size (15 bits), but it keeps no context
    /// between messages, so no back-reference reaches further than the message's own start: a
    /// message of at most `1 << bits` bytes is within the window, and longer ones go to this
    /// client uncompressed (RFC 7692 lets every message choose).
    pub(crate) server_window_bits: Option<u8>,
}

impl Agreed {
    /// Whether a message of `len` bytes may go to this client compressed.
    pub(crate) fn fits(&self, len: usize) -> bool {
        self.server_window_bits.is_none_or(|bits| len <= 1 << bits)
    }
}

/// Picks the first offer of `permessage-deflate` in the request the server can honour, and the
/// header value that accepts it. Offers with unknown, repeated or out-of-range parameters are
/// declined.
pub(crate) fn negotiate(headers: &HeaderMap) -> Option<(Agreed, HeaderValue)> {
    for value in headers.get_all(SEC_WEBSOCKET_EXTENSIONS) {
        let Ok(value) = value.to_str() else { continue };
        for offer in value.split(',') {
            if let Some(agreed) = accept(offer) {
                let mut answer = String::from("permessage-deflate; server_no_context_takeover");
                if agreed.client_no_context_takeover {
                    answer.push_str("; client_no_context_takeover");
                }
                if let Some(bits) = agreed.server_window_bits {
                    answer.push_str(&format!("; server_max_window_bits={bits}"));
                }
                return HeaderValue::from_str(&answer).ok().map(|answer| (agreed, answer));
            }
        }
    }
    None
}

/// One offer (`permessage-deflate; param; param=value`), if acceptable.
fn accept(offer: &str) -> Option<Agreed> {
    let mut parts = offer.split(';').map(str::trim);
    if !parts.next()?.eq_ignore_ascii_case("permessage-deflate") {
        return None;
    }
    let mut seen: Vec<String> = Vec::new();
    let mut agreed = Agreed { client_no_context_takeover: false, server_window_bits: None };
    for param in parts {
        let (name, value) = match param.split_once('=') {
            Some((name, value)) => (name.trim(), Some(value.trim().trim_matches('"'))),
            None => (param, None),
        };
        let name = name.to_ascii_lowercase();
        if seen.contains(&name) {
            return None;
        }
        let bits = |v: &str| v.parse::<u8>().ok().filter(|b| (8..=15).contains(b));
        match (name.as_str(), value) {
            ("server_no_context_takeover", None) => {}
            ("client_no_context_takeover", None) => agreed.client_no_context_takeover = true,
            ("server_max_window_bits", Some(v)) => {
                agreed.server_window_bits = Some(bits(v)?).filter(|&b| b < 15);
            }
            ("client_max_window_bits", None) => {}
            ("client_max_window_bits", Some(v)) if bits(v).is_some() => {}
            _ => return None,
        }
        seen.push(name);
    }
    Some(agreed)
}

/// One connection's inflater, made at its first compressed message.
#[derive(Debug)]
pub(crate) struct Inflate {
    agreed: Agreed,
    state: Option<Box<Decompress>>,
}

impl Inflate {
    pub(crate) fn new(agreed: Agreed) -> Self {
        Self { agreed, state: None }
    }

    /// The message `compressed` holds, at most `max` bytes of it.
    pub(crate) fn message(&mut self, compressed: &[u8], max: usize) -> Result<Vec<u8>, Violation> {
        let inflater = self.state.get_or_insert_with(|| Box::new(Decompress::new(false)));
        let mut out = Vec::with_capacity(compressed.len().saturating_mul(2).max(64).min(max + 1));
        inflate_into(inflater, compressed, &mut out, max)?;
        inflate_into(inflater, &TAIL, &mut out, max)?;
        if self.agreed.client_no_context_takeover {
            // Nothing to keep between messages: the next one starts a fresh stream, and an idle
            // connection holds no inflater.
            self.state = None;
        }
        Ok(out)
    }
}

/// Inflates all of `input` onto `out`, failing past `max` bytes of output.
fn inflate_into(
    inflater: &mut Decompress,
    mut input: &[u8],
    out: &mut Vec<u8>,
    max: usize,
) -> Result<(), Violation> {
    loop {
        if out.len() == out.capacity() {
            if out.len() > max {
                return Err(Violation::TooLarge);
            }
            // Room for one byte past the limit, so that a message of exactly `max` bytes passes.
            out.reserve(out.capacity().min(max + 1 - out.len()).max(1));
        }
        let (read, wrote) = (inflater.total_in(), out.len());
        let status = inflater
            .decompress_vec(input, out, FlushDecompress::Sync)
            .map_err(|_| Violation::Framing("invalid compressed data"))?;
        input = &input[(inflater.total_in() - read) as usize..];
        if out.len() > max {
            return Err(Violation::TooLarge);
        }
        let room_left = out.len() < out.capacity();
        let stuck = room_left && out.len() == wrote && inflater.total_in() == read;
        // The inflater may hold output back (its window) with all input taken and room left:
        // done only when a call with room to spare gives nothing more.
        if status == Status::StreamEnd || (input.is_empty() && stuck) {
            return Ok(());
        }
        if stuck {
            return Err(Violation::Framing("invalid compressed data"));
        }
    }
}

/// The hub's compressor: one per hub, reset for every message.
pub(crate) struct Deflate {
    compress: Compress,
}

impl std::fmt::Debug for Deflate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Deflate")
    }
}

impl Default for Deflate {
    fn default() -> Self {
        Self { compress: Compress::new(Compression::fast(), false) }
    }
}

impl Deflate {
    /// `payload` compressed on its own (no context kept), without the sync flush's tail.
    pub(crate) fn message(&mut self, payload: &[u8]) -> Vec<u8> {
        self.compress.reset();
        let mut out = Vec::with_capacity(payload.len() / 2 + 64);
        // Every byte in first (no flush), then one sync flush, called again only while it
        // fills the buffer: each further sync call would add another empty block.
        while (self.compress.total_in() as usize) < payload.len() {
            if out.len() == out.capacity() {
                out.reserve(out.capacity().max(64));
            }
            let used = self.compress.total_in() as usize;
            // Compressing in memory into a Vec cannot fail.
            let _ = self.compress.compress_vec(&payload[used..], &mut out, FlushCompress::None);
        }
        // The flush may come out over several calls (the compressor's own buffer is bounded):
        // it is whole once the output ends with the empty stored block a sync flush ends with.
        loop {
            if out.capacity() - out.len() < 64 {
                out.reserve(out.capacity().max(64));
            }
            let _ = self.compress.compress_vec(&[], &mut out, FlushCompress::Sync);
            if out.len() < out.capacity() && out.ends_with(&TAIL) {
                break;
            }
        }
        if out.ends_with(&TAIL) {
            out.truncate(out.len() - TAIL.len());
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn offer(value: &str) -> Option<(Agreed, String)> {
        let mut headers = HeaderMap::new();
        headers.insert(
            SEC_WEBSOCKET_EXTENSIONS,
            HeaderValue::from_str(value).unwrap_or_else(|e| panic!("{e}")),
        );
        negotiate(&headers)
            .map(|(agreed, answer)| (agreed, answer.to_str().unwrap_or_default().to_owned()))
    }

    #[test]
    fn offers_are_accepted_with_a_server_that_keeps_no_context_or_declined() {
        let plain = offer("permessage-deflate").map(|o| o.1);
        assert_eq!(plain.as_deref(), Some("permessage-deflate; server_no_context_takeover"));
        let both = offer("permessage-deflate; client_no_context_takeover; client_max_window_bits");
        assert_eq!(
            both.map(|o| o.0),
            Some(Agreed { client_no_context_takeover: true, server_window_bits: None }),
        );
        let small = offer("permessage-deflate; server_max_window_bits=10");
        assert_eq!(
            small.as_ref().map(|o| o.1.as_str()),
            Some("permessage-deflate; server_no_context_takeover; server_max_window_bits=10")
        );
        let small = small.map(|o| o.0);
        assert_eq!(small.map(|a| (a.fits(1024), a.fits(1025))), Some((true, false)));
        assert!(offer("permessage-deflate; server_max_window_bits=16").is_none());
        assert!(offer("permessage-deflate; server_max_window_bits").is_none());
        assert!(offer("permessage-deflate; unknown").is_none());
        assert!(
            offer("permessage-deflate; client_no_context_takeover; client_no_context_takeover")
                .is_none()
        );
        assert!(offer("x-webkit-deflate-frame").is_none());
        // The first acceptable offer of a list wins.
        let second = offer(
            "permessage-deflate; server_max_window_bits=7, permessage-deflate; client_no_context_takeover",
        );
        assert_eq!(second.map(|o| o.0.client_no_context_takeover), Some(true));
    }

    #[test]
    fn what_the_compressor_writes_the_inflater_reads_back_within_its_limit() {
        let mut deflate = Deflate::default();
        let text = "{\"event\":\"chat\",\"data\":\"hello hello hello hello\"}".repeat(20);
        let compressed = deflate.message(text.as_bytes());
        assert!(compressed.len() < text.len() / 4, "{} bytes", compressed.len());
        for keep in [false, true] {
            let mut inflate = Inflate::new(Agreed {
                client_no_context_takeover: !keep,
                server_window_bits: None,
            });
            for _ in 0..3 {
                let out = inflate.message(&compressed, 64 * 1024);
                assert_eq!(out.as_deref(), Ok(text.as_bytes()));
            }
            assert_eq!(inflate.message(&compressed, 100), Err(Violation::TooLarge));
        }
        let mut inflate =
            Inflate::new(Agreed { client_no_context_takeover: true, server_window_bits: None });
        assert!(inflate.message(&[0xff, 0xff, 0xff], 1024).is_err(), "garbage");
        let mut inflate =
            Inflate::new(Agreed { client_no_context_takeover: true, server_window_bits: None });
        assert_eq!(inflate.message(&deflate.message(b""), 10), Ok(Vec::new()));
    }
}

#[cfg(test)]
mod large {
    use super::*;

    #[test]
    fn a_large_message_inflates_whole() {
        let mut seed = 7u32;
        let payload: Vec<u8> = (0..65536)
            .map(|_| {
                seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12345);
                b"abcdefghij"[(seed >> 16) as usize % 10]
            })
            .collect();
        let compressed = Deflate::default().message(&payload);
        let mut inflate =
            Inflate::new(Agreed { client_no_context_takeover: true, server_window_bits: None });
        let out = inflate.message(&compressed, 16 << 20);
        assert_eq!(out.map(|o| o.len()), Ok(65536));
        // A client that keeps its context, message after message.
        let mut client = Compress::new(Compression::default(), false);
        let mut inflate =
            Inflate::new(Agreed { client_no_context_takeover: false, server_window_bits: None });
        for n in 0..200 {
            let message: Vec<u8> = payload.iter().map(|b| b.wrapping_add(n as u8 % 3)).collect();
            let mut wire = Vec::with_capacity(message.len() + 1024);
            let start = client.total_in();
            while ((client.total_in() - start) as usize) < message.len()
                || wire.len() == wire.capacity()
            {
                if wire.len() == wire.capacity() {
                    wire.reserve(4096);
                }
                let used = (client.total_in() - start) as usize;
                client
                    .compress_vec(&message[used..], &mut wire, FlushCompress::Sync)
                    .unwrap_or_else(|e| panic!("{e}"));
            }
            assert!(wire.ends_with(&TAIL));
            wire.truncate(wire.len() - 4);
            let out = inflate.message(&wire, 16 << 20).unwrap_or_else(|e| panic!("{n}: {e}"));
            assert_eq!(out.len(), message.len(), "message {n}");
            assert!(out == message, "message {n}");
        }
    }
}

#[cfg(test)]
mod roundtrip {
    use super::*;

    #[test]
    fn every_size_and_kind_of_payload_comes_back_whole() {
        let mut seed = 1u32;
        let mut deflate = Deflate::default();
        for size in (0..70_000).step_by(997).chain([65536, 131072, 16384, 32768]) {
            for random in [false, true] {
                let payload: Vec<u8> = (0..size)
                    .map(|_| {
                        seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12345);
                        let r = (seed >> 16) as u8;
                        if random { r } else { b"abcdefghij"[usize::from(r) % 10] }
                    })
                    .collect();
                let compressed = deflate.message(&payload);
                let mut inflate = Inflate::new(Agreed {
                    client_no_context_takeover: true,
                    server_window_bits: None,
                });
                let out = inflate.message(&compressed, 16 << 20).unwrap_or_else(|e| panic!("{e}"));
                assert!(out == payload, "size {size}, random {random}: got {}", out.len());
            }
        }
    }
}
