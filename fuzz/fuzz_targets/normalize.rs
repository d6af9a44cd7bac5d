//! libFuzzer entry point for [`steward_fuzz::normalize`].
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| steward_fuzz::normalize(data));
