//! Fuzzes `roomcast_tokio::fuzzing::websocket_frames`: see that function for what it checks.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| roomcast_tokio::fuzzing::websocket_frames(data));
