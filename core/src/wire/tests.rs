use super::*;

#[test]
fn parses_a_full_frame_and_keeps_data_and_id_raw() {
    let f = parse_client_frame(
        br#"{"event":"chat","data":{"a":[1,2.50]},"id":12345678901234567890123}"#,
    )
    .expect("valid frame");
    assert_eq!(f.event, "chat");
    assert_eq!(f.data.map(RawValue::get), Some(r#"{"a":[1,2.50]}"#));
    assert_eq!(f.id.as_ref().map(RequestId::as_json), Some("12345678901234567890123"));
}

#[test]
fn refuses_frames_that_are_not_protocol_objects() {
    assert_eq!(parse_client_frame(b"[\"join\"]").err(), Some(FrameError::NotAnObject));
    assert_eq!(parse_client_frame(b"42").err(), Some(FrameError::NotAnObject));
    assert!(matches!(parse_client_frame(b"{nope"), Err(FrameError::Json(_))));
    assert!(matches!(parse_client_frame(b""), Err(FrameError::Json(_))));
    assert_eq!(parse_client_frame(b"{}").err(), Some(FrameError::BadEvent));
    assert_eq!(parse_client_frame(br#"{"event":""}"#).err(), Some(FrameError::BadEvent));
    let long = format!(r#"{{"event":"{}"}}"#, "e".repeat(129));
    assert_eq!(parse_client_frame(long.as_bytes()).err(), Some(FrameError::BadEvent));
    assert!(matches!(parse_client_frame(br#"{"event":5}"#), Err(FrameError::Json(_))));
    assert_eq!(parse_client_frame(br#"{"event":"x","id":null}"#).err(), None);
    assert_eq!(parse_client_frame(br#"{"event":"x","id":{}}"#).err(), Some(FrameError::BadId));
    assert!(matches!(
        parse_client_frame(br#"{"event":"a","event":"b"}"#),
        Err(FrameError::Json(_))
    ));
}

#[test]
fn nesting_is_limited_and_brackets_in_strings_do_not_count() {
    let nested =
        |n: usize| format!(r#"{{"event":"x","data":{}1{}}}"#, "[".repeat(n), "]".repeat(n));
    assert!(parse_client_frame(nested(MAX_DEPTH - 1).as_bytes()).is_ok());
    assert_eq!(parse_client_frame(nested(MAX_DEPTH).as_bytes()).err(), Some(FrameError::TooDeep));
    let strings = format!(r#"{{"event":"x","data":"{}\"{}"}}"#, "[".repeat(500), "{".repeat(500));
    assert!(parse_client_frame(strings.as_bytes()).is_ok());
}

#[test]
fn event_names_with_escapes_are_decoded() {
    let f = parse_client_frame(br#"{"event":"caf\u00e9"}"#).expect("valid frame");
    assert_eq!(f.event, "café");
    assert!(parse_client_frame(br#"{"event":"\ud800"}"#).is_err());
}

#[test]
fn server_frames_skip_absent_fields() {
    let frame =
        ServerFrame { event: "e", room: None, path: None, data: None, id: None, offset: None };
    assert_eq!(&frame.encode()[..], br#"{"event":"e"}"#);
    let path = Some("/chat/general");
    let frame =
        ServerFrame { event: "e", room: Some("r"), path, data: None, id: None, offset: None };
    assert_eq!(&frame.encode()[..], br#"{"event":"e","room":"r","path":"/chat/general"}"#);
    let id = RequestId::from_json("7");
    let frame = error_frame(ErrorCode::Forbidden, "no", Some("r"), id.as_ref());
    assert_eq!(
        &frame[..],
        br#"{"event":"error","id":7,"data":{"code":"forbidden","message":"no","room":"r"}}"#
    );
}
