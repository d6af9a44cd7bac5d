//! libFuzzer entry point for [`steward_fuzz::audit_export`].
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| steward_fuzz::audit_export(data));
