//! libFuzzer entry point for [`steward_fuzz::csv_import`].
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| steward_fuzz::csv_import(data));
