//! Fuzzes `roomcast_core::probe::hub_inputs`: see that function for what it checks.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| roomcast_core::probe::hub_inputs(data));
