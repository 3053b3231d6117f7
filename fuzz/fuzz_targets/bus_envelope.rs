//! Fuzzes `roomcast_core::fuzzing::bus_envelope`: see that function for what it checks.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| roomcast_core::fuzzing::bus_envelope(data));
