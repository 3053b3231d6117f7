//! Fuzzes `roomcast_core::fuzzing::client_frame`: see that function for what it checks.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| roomcast_core::fuzzing::client_frame(data));
