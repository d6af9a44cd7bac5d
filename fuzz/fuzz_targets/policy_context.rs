//! libFuzzer entry point for [`steward_fuzz::policy_context`].
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| steward_fuzz::policy_context(data));
