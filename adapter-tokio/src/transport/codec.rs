//! The server's side of RFC 6455 framing, for sockets roomcast drives itself: server frames are
//! written straight into a connection's byte buffer, client frames are decoded from whatever the
//! socket returned (a read buffer on the stack, not one per connection).
//!
//! Headers are parsed and formatted by tungstenite's [`FrameHeader`]; this module holds what a
//! server adds on top: the mask check, fragment assembly, the size limit, UTF-8 of text messages,
//! and the rules for control frames. What breaks them is reported as a [`Violation`]: the hub
//! decides the close code.

use std::io::Cursor;
use std::ops::Range;

use bytes::Bytes;
use roomcast_core::Violation;

use crate::transport::deflate::{Agreed, Inflate};
use tokio_tungstenite::tungstenite::protocol::frame::FrameHeader;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{Control, Data, OpCode};

/// The longest reason a close frame can carry (125 bytes of payload, 2 of them the code).
const MAX_CLOSE_REASON: usize = 123;

/// The most a control frame may carry (RFC 6455, 5.5).
const MAX_CONTROL_PAYLOAD: u64 = 125;

/// A server frame header formatted once, for a payload sent to many sockets.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Head {
    bytes: [u8; 10],
    len: u8,
}

impl Head {
    /// The header of a final, unmasked frame of `opcode` carrying `payload_len` bytes.
    pub(crate) fn new(opcode: OpCode, payload_len: usize) -> Self {
        Self::with_rsv1(opcode, payload_len, false)
    }

    /// The same, with RSV1 set when `compressed` (permessage-deflate).
    pub(crate) fn with_rsv1(opcode: OpCode, payload_len: usize, compressed: bool) -> Self {
        let header = FrameHeader { opcode, rsv1: compressed, ..FrameHeader::default() };
        let mut cursor = Cursor::new([0u8; 10]);
        // An unmasked header is at most 10 bytes: the write cannot run out of room.
        let _ = header.format(payload_len as u64, &mut cursor);
        Self { len: cursor.position() as u8, bytes: cursor.into_inner() }
    }

    /// A text frame header.
    #[cfg(test)]
    pub(crate) fn text(payload_len: usize) -> Self {
        Self::new(OpCode::Data(Data::Text), payload_len)
    }

    /// The header's bytes.
    pub(crate) fn as_bytes(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }
}

/// Appends one whole server frame to `out`; returns where it is.
pub(crate) fn put_frame(out: &mut Vec<u8>, opcode: OpCode, payload: &[u8]) -> Range<usize> {
    let start = out.len();
    out.extend_from_slice(Head::new(opcode, payload.len()).as_bytes());
    out.extend_from_slice(payload);
    start..out.len()
}

/// Appends one whole server frame of a compressed message (RSV1 set) to `out`.
pub(crate) fn put_compressed(out: &mut Vec<u8>, opcode: OpCode, compressed: &[u8]) -> Range<usize> {
    let start = out.len();
    out.extend_from_slice(Head::with_rsv1(opcode, compressed.len(), true).as_bytes());
    out.extend_from_slice(compressed);
    start..out.len()
}

/// Appends a close frame with `code` and `reason` (cut at a character boundary to fit).
pub(crate) fn put_close(out: &mut Vec<u8>, code: u16, reason: &str) {
    let mut end = reason.len().min(MAX_CLOSE_REASON);
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    let mut payload = Vec::with_capacity(2 + end);
    payload.extend_from_slice(&code.to_be_bytes());
    payload.extend_from_slice(&reason.as_bytes()[..end]);
    put_frame(out, OpCode::Control(Control::Close), &payload);
}

/// The length (header and payload) of the server frame that starts `buf`, if its header is
/// whole. Used to count the frames a partial write completed.
pub(crate) fn frame_len(buf: &[u8]) -> Option<usize> {
    let second = *buf.get(1)?;
    let (head, payload) = match second & 0x7f {
        126 => (4, u64::from(u16::from_be_bytes([*buf.get(2)?, *buf.get(3)?]))),
        127 => {
            let bytes: [u8; 8] = buf.get(2..10)?.try_into().ok()?;
            (10, u64::from_be_bytes(bytes))
        }
        n => (2, u64::from(n)),
    };
    usize::try_from(payload).ok().map(|payload| head + payload)
}

/// A message or control frame from the client.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Decoded {
    /// A whole text message, valid UTF-8.
    Text(Bytes),
    /// A whole binary message (the protocol refuses binary; the echo mode sends it back).
    Binary(Bytes),
    /// A ping, with the payload the pong must echo.
    Ping(Bytes),
    /// A pong.
    Pong,
    /// A close frame, with its status code if it had one.
    Close(Option<u16>),
    /// The client broke the protocol here: the last item of a [`Decoder::feed`] that fails, after
    /// the frames decoded before the violation (so that they reach the hub first).
    Violation(Violation),
}

/// A fragmented message being put together.
#[derive(Debug)]
struct Fragments {
    text: bool,
    /// Its first frame had RSV1: the bytes are compressed (permessage-deflate).
    compressed: bool,
    bytes: Vec<u8>,
}

/// Decodes client frames from a byte stream fed in arbitrary pieces.
#[derive(Debug)]
pub(crate) struct Decoder {
    max: usize,
    /// The start of a frame whose end has not arrived yet. Empty (and unallocated) between frames,
    /// which is where an idle connection sits.
    partial: Vec<u8>,
    message: Option<Fragments>,
    /// With permessage-deflate: the inflater of compressed messages (boxed: most connections
    /// have none, and every connection's task holds a decoder).
    inflate: Option<Box<Inflate>>,
}

impl Decoder {
    /// A decoder refusing frames and messages over `max` bytes.
    pub(crate) fn new(max: usize) -> Self {
        Self { max, partial: Vec::new(), message: None, inflate: None }
    }

    /// Accepts compressed messages, as agreed at the upgrade.
    pub(crate) fn inflate(&mut self, agreed: Agreed) {
        self.inflate = Some(Box::new(Inflate::new(agreed)));
    }

    /// Decodes what `input` completes, appending each message or control frame to `out`; on a
    /// violation, also appends [`Decoded::Violation`] and returns it. After an error the stream
    /// cannot be decoded any further.
    pub(crate) fn feed(&mut self, input: &[u8], out: &mut Vec<Decoded>) -> Result<(), Violation> {
        let fed = self.feed_frames(input, out);
        if let Err(violation) = fed {
            out.push(Decoded::Violation(violation));
        }
        fed
    }

    fn feed_frames(&mut self, input: &[u8], out: &mut Vec<Decoded>) -> Result<(), Violation> {
        if self.partial.is_empty() {
            let used = self.decode(input, out)?;
            if used < input.len() {
                self.partial.extend_from_slice(&input[used..]);
            }
        } else {
            let mut buf = std::mem::take(&mut self.partial);
            buf.extend_from_slice(input);
            let used = self.decode(&buf, out)?;
            if used < buf.len() {
                buf.drain(..used);
                self.partial = buf;
            }
        }
        Ok(())
    }

    /// Decodes the whole frames at the start of `buf`; returns how many bytes they took.
    fn decode(&mut self, buf: &[u8], out: &mut Vec<Decoded>) -> Result<usize, Violation> {
        let mut at = 0;
        loop {
            let mut cursor = Cursor::new(&buf[at..]);
            let parsed = FrameHeader::parse(&mut cursor)
                .map_err(|_| Violation::Framing("reserved opcode"))?;
            let Some((header, len)) = parsed else { return Ok(at) };
            self.check(&header, len)?;
            let head = cursor.position() as usize;
            // `check` bounded `len` by `max`, which is a usize.
            let end = at + head + len as usize;
            let Some(payload) = buf.get(at + head..end) else { return Ok(at) };
            let mut payload = payload.to_vec();
            if let Some(mask) = header.mask {
                unmask(&mut payload, mask);
            }
            self.frame(&header, payload, out)?;
            at = end;
        }
    }

    fn check(&self, header: &FrameHeader, len: u64) -> Result<(), Violation> {
        if header.mask.is_none() {
            return Err(Violation::Framing("client frames must be masked"));
        }
        if header.rsv2 || header.rsv3 {
            return Err(Violation::Framing("reserved bits set without an extension"));
        }
        // RSV1 marks a compressed message, on its first frame only, once negotiated.
        let first_data = matches!(header.opcode, OpCode::Data(Data::Text | Data::Binary));
        if header.rsv1 && !(self.inflate.is_some() && first_data) {
            return Err(Violation::Framing("reserved bits set without an extension"));
        }
        match header.opcode {
            OpCode::Control(_) if len > MAX_CONTROL_PAYLOAD || !header.is_final => {
                Err(Violation::Framing("control frames are short and unfragmented"))
            }
            OpCode::Control(_) => Ok(()),
            OpCode::Data(_) => {
                let held = self.message.as_ref().map_or(0, |m| m.bytes.len() as u64);
                if held.saturating_add(len) > self.max as u64 {
                    Err(Violation::TooLarge)
                } else {
                    Ok(())
                }
            }
        }
    }

    fn frame(
        &mut self,
        header: &FrameHeader,
        payload: Vec<u8>,
        out: &mut Vec<Decoded>,
    ) -> Result<(), Violation> {
        let (text, compressed, bytes) = match (header.opcode, self.message.take()) {
            (OpCode::Control(Control::Ping), message) => {
                self.message = message;
                out.push(Decoded::Ping(payload.into()));
                return Ok(());
            }
            (OpCode::Control(Control::Pong), message) => {
                self.message = message;
                out.push(Decoded::Pong);
                return Ok(());
            }
            (OpCode::Control(_), _) => {
                out.push(Decoded::Close(close_code(&payload)?));
                return Ok(());
            }
            (OpCode::Data(Data::Continue), None) => {
                return Err(Violation::Framing("continuation without a message"));
            }
            (OpCode::Data(Data::Continue), Some(mut message)) => {
                message.bytes.extend_from_slice(&payload);
                (message.text, message.compressed, message.bytes)
            }
            (OpCode::Data(_), Some(_)) => {
                return Err(Violation::Framing("new message inside a fragmented one"));
            }
            (OpCode::Data(data), None) => (data == Data::Text, header.rsv1, payload),
        };
        if !header.is_final {
            self.message = Some(Fragments { text, compressed, bytes });
            return Ok(());
        }
        let bytes = match (&mut self.inflate, compressed) {
            (Some(inflate), true) => inflate.message(&bytes, self.max)?,
            _ => bytes,
        };
        if !text {
            out.push(Decoded::Binary(bytes.into()));
            return Ok(());
        }
        std::str::from_utf8(&bytes).map_err(|_| Violation::InvalidUtf8)?;
        out.push(Decoded::Text(bytes.into()));
        Ok(())
    }
}

/// The status code of a close frame's payload (RFC 6455, 5.5.1 and 7.4): a payload of one byte,
/// and a code that may not be sent in a close frame, are protocol errors; a reason that is not
/// UTF-8 is invalid data.
fn close_code(payload: &[u8]) -> Result<Option<u16>, Violation> {
    match payload {
        [] => Ok(None),
        [a, b, reason @ ..] => {
            let code = u16::from_be_bytes([*a, *b]);
            if !sendable_close_code(code) {
                return Err(Violation::Framing("invalid close code"));
            }
            std::str::from_utf8(reason).map_err(|_| Violation::InvalidUtf8)?;
            Ok(Some(code))
        }
        [_] => Err(Violation::Framing("close payload of one byte")),
    }
}

/// Whether an endpoint may send `code` in a close frame: the codes RFC 6455 defines for that
/// (1000-1003, 1007-1011) and the ones registered since (1012-1014), and the ranges for
/// libraries and applications (3000-4999). 1004 is reserved; 1005, 1006 and 1015 are for
/// reporting only; everything else below 3000 is unassigned, and above 4999 out of range.
pub(crate) fn sendable_close_code(code: u16) -> bool {
    matches!(code, 1000..=1003 | 1007..=1014 | 3000..=4999)
}

/// Undoes the client's masking (RFC 6455, 5.3).
fn unmask(payload: &mut [u8], mask: [u8; 4]) {
    for (byte, key) in payload.iter_mut().zip(mask.iter().cycle()) {
        *byte ^= key;
    }
}

#[cfg(test)]
mod tests;
