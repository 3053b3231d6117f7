use super::*;

/// A client frame as a browser sends it: masked.
fn client(first: u8, payload: &[u8]) -> Vec<u8> {
    let mask = [0x11, 0x22, 0x33, 0x44];
    let opcode = OpCode::from(first & 0x0f);
    let header = FrameHeader {
        is_final: first & 0x80 != 0,
        opcode,
        mask: Some(mask),
        ..FrameHeader::default()
    };
    let mut out = Vec::new();
    let _ = header.format(payload.len() as u64, &mut out);
    let mut body = payload.to_vec();
    unmask(&mut body, mask);
    out.extend_from_slice(&body);
    out
}

fn decode_all(decoder: &mut Decoder, input: &[u8]) -> Result<Vec<Decoded>, Violation> {
    let mut out = Vec::new();
    decoder.feed(input, &mut out)?;
    Ok(out)
}

#[test]
fn a_text_frame_split_at_every_byte_decodes_once() {
    let frame = client(0x81, b"{\"event\":\"hi\"}");
    for split in 0..=frame.len() {
        let mut decoder = Decoder::new(1024);
        let mut out = Vec::new();
        decoder.feed(&frame[..split], &mut out).unwrap_or_default();
        decoder.feed(&frame[split..], &mut out).unwrap_or_default();
        assert_eq!(out, vec![Decoded::Text(Bytes::from_static(b"{\"event\":\"hi\"}"))]);
        assert!(decoder.partial.capacity() == 0 || decoder.partial.is_empty());
    }
}

#[test]
fn fragments_are_joined_and_pings_may_come_between_them() {
    let mut input = client(0x01, b"hel");
    input.extend(client(0x89, b"p"));
    input.extend(client(0x80, b"lo"));
    let out = decode_all(&mut Decoder::new(1024), &input);
    assert_eq!(
        out,
        Ok(vec![
            Decoded::Ping(Bytes::from_static(b"p")),
            Decoded::Text(Bytes::from_static(b"hello"))
        ])
    );
}

#[test]
fn protocol_violations_are_named() {
    let unmasked = [0x81, 0x01, b'a'];
    assert!(matches!(decode_all(&mut Decoder::new(64), &unmasked), Err(Violation::Framing(_))));
    let reserved_opcode = client(0x83, b"a");
    assert!(matches!(
        decode_all(&mut Decoder::new(64), &reserved_opcode),
        Err(Violation::Framing(_))
    ));
    let stray_continuation = client(0x80, b"a");
    assert!(matches!(
        decode_all(&mut Decoder::new(64), &stray_continuation),
        Err(Violation::Framing(_))
    ));
    let long_ping = client(0x89, &[0; 126]);
    assert!(matches!(decode_all(&mut Decoder::new(1024), &long_ping), Err(Violation::Framing(_))));
    let bad_utf8 = client(0x81, &[0xff, 0xfe]);
    assert_eq!(decode_all(&mut Decoder::new(64), &bad_utf8), Err(Violation::InvalidUtf8));
}

#[test]
fn the_limit_holds_for_frames_and_for_fragmented_messages() {
    let big = client(0x81, &[b'a'; 65]);
    // Refused from the header alone, before the payload arrives.
    assert_eq!(decode_all(&mut Decoder::new(64), &big[..6]), Err(Violation::TooLarge));
    let mut fragmented = client(0x01, &[b'a'; 40]);
    fragmented.extend(client(0x80, &[b'a'; 40]));
    assert_eq!(decode_all(&mut Decoder::new(64), &fragmented), Err(Violation::TooLarge));
    assert_eq!(decode_all(&mut Decoder::new(80), &fragmented).map(|out| out.len()), Ok(1));
}

#[test]
fn close_frames_carry_their_code() {
    let mut payload = 1000u16.to_be_bytes().to_vec();
    payload.extend_from_slice(b"bye");
    assert_eq!(
        decode_all(&mut Decoder::new(64), &client(0x88, &payload)),
        Ok(vec![Decoded::Close(Some(1000))])
    );
    assert_eq!(
        decode_all(&mut Decoder::new(64), &client(0x88, b"")),
        Ok(vec![Decoded::Close(None)])
    );
}

#[test]
fn close_codes_that_may_not_be_sent_and_a_bad_reason_are_violations() {
    let close = |code: u16, reason: &[u8]| {
        let mut payload = code.to_be_bytes().to_vec();
        payload.extend_from_slice(reason);
        decode_all(&mut Decoder::new(64), &client(0x88, &payload))
    };
    for code in [
        1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014, 3000, 3999, 4000,
        4999,
    ] {
        assert_eq!(close(code, b"ok"), Ok(vec![Decoded::Close(Some(code))]), "{code}");
    }
    for code in [0, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535] {
        assert_eq!(close(code, b""), Err(Violation::Framing("invalid close code")), "{code}");
    }
    assert_eq!(close(1000, &[0xce, 0xba, 0xe1]), Err(Violation::InvalidUtf8), "cut UTF-8");
    assert_eq!(
        decode_all(&mut Decoder::new(64), &client(0x88, &[0x03])),
        Err(Violation::Framing("close payload of one byte"))
    );
}

#[test]
fn server_frames_have_the_lengths_frame_len_reads_back() {
    for len in [0, 1, 125, 126, 65_535, 65_536, 100_000] {
        let mut out = Vec::new();
        put_frame(&mut out, OpCode::Data(Data::Text), &vec![b'x'; len]);
        assert_eq!(frame_len(&out), Some(out.len()), "payload of {len}");
        assert_eq!(out[0], 0x81);
    }
    let mut close = Vec::new();
    put_close(&mut close, 4005, &"é".repeat(100));
    assert_eq!(frame_len(&close), Some(close.len()));
    assert!(close.len() <= 2 + 125);
    assert_eq!(&close[2..4], &4005u16.to_be_bytes());
}

mod properties {
    use proptest::prelude::*;

    use super::*;

    /// A client message: text (maybe fragmented into pieces) or a ping.
    #[derive(Clone, Debug)]
    enum Message {
        Text { text: String, pieces: usize },
        Ping(Vec<u8>),
    }

    fn message() -> impl Strategy<Value = Message> {
        prop_oneof![
            ("\\PC{0,200}", 1usize..4).prop_map(|(text, pieces)| Message::Text { text, pieces }),
            proptest::collection::vec(any::<u8>(), 0..125).prop_map(Message::Ping),
        ]
    }

    fn encode(messages: &[Message]) -> (Vec<u8>, Vec<Decoded>) {
        let mut wire = Vec::new();
        let mut expected = Vec::new();
        for message in messages {
            match message {
                Message::Ping(payload) => {
                    wire.extend(client(0x89, payload));
                    expected.push(Decoded::Ping(Bytes::from(payload.clone())));
                }
                Message::Text { text, pieces } => {
                    let bytes = text.as_bytes();
                    let size = bytes.len().div_ceil(*pieces).max(1);
                    let chunks: Vec<&[u8]> =
                        if bytes.is_empty() { vec![&[][..]] } else { bytes.chunks(size).collect() };
                    for (i, chunk) in chunks.iter().enumerate() {
                        let opcode = if i == 0 { 0x01 } else { 0x00 };
                        let fin = if i + 1 == chunks.len() { 0x80 } else { 0 };
                        wire.extend(client(fin | opcode, chunk));
                    }
                    expected.push(Decoded::Text(Bytes::from(text.clone())));
                }
            }
        }
        (wire, expected)
    }

    proptest! {
        #[test]
        fn any_messages_fed_in_any_pieces_decode_to_the_same_messages(
            messages in proptest::collection::vec(message(), 0..8),
            cuts in proptest::collection::vec(1usize..64, 1..16),
        ) {
            let (wire, expected) = encode(&messages);
            let mut decoder = Decoder::new(64 * 1024);
            let mut out = Vec::new();
            let mut rest = &wire[..];
            for cut in cuts.iter().cycle() {
                if rest.is_empty() {
                    break;
                }
                let (piece, tail) = rest.split_at((*cut).min(rest.len()));
                prop_assert_eq!(decoder.feed(piece, &mut out), Ok(()));
                rest = tail;
            }
            prop_assert_eq!(out, expected);
            prop_assert!(decoder.partial.is_empty());
        }

        #[test]
        fn arbitrary_bytes_never_panic_and_never_exceed_the_limit(
            bytes in proptest::collection::vec(any::<u8>(), 0..512),
        ) {
            decode_within_the_limit(&bytes)?;
        }
    }

    /// Feeds `bytes` to a decoder limited to 100 bytes: no panic, and nothing held or
    /// decoded beyond the bounds.
    fn decode_within_the_limit(bytes: &[u8]) -> Result<(), TestCaseError> {
        let mut decoder = Decoder::new(100);
        let mut out = Vec::new();
        let _ = decoder.feed(bytes, &mut out);
        for decoded in out {
            if let Decoded::Text(text) = decoded {
                prop_assert!(text.len() <= 100);
                prop_assert!(std::str::from_utf8(&text).is_ok());
            }
        }
        // A data frame is bounded by the limit (100 here); a control frame by 125 bytes
        // whatever the limit; and a header by 14 bytes.
        prop_assert!(decoder.partial.len() <= 125 + 14);
        Ok(())
    }

    /// Found by the property above on a fresh clone (kept as an example: a regression file's
    /// seed replays other values once the strategy changes): a masked close frame of 110
    /// bytes, over the limit of data frames, is held whole while it arrives.
    #[test]
    fn a_control_frame_over_the_data_limit_may_be_held_whole() {
        let mut bytes = vec![0x88, 0x80 | 110, 0, 0, 0, 0];
        bytes.extend([0u8; 104]);
        bytes.extend([242, 104, 127, 243, 84]);
        if let Err(e) = decode_within_the_limit(&bytes) {
            panic!("{e}");
        }
    }
}
