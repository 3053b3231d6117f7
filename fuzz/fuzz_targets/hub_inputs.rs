//! Fuzzes `roomcast_core::fuzzing::hub_inputs`: see that function for what it checks.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| roomcast_core::fuzzing::hub_inputs(data));
