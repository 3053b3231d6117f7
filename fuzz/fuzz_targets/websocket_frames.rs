//! Fuzzes `roomcast_tokio::probe::websocket_frames`: see that function for what it checks.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| roomcast_tokio::probe::websocket_frames(data));
