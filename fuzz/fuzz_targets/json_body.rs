//! libFuzzer entry point for [`steward_fuzz::json_body`].
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| steward_fuzz::json_body(data));
