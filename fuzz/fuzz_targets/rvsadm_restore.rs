//! Fuzz target: ipvsadm-restore text through the restore parser.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let _ = rvsadm::restore::parse_restore(&text, "ipvsadm-restore", &rvsadm::NumericResolver);
});
