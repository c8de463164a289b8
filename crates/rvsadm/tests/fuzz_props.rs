//! The `rvsadm_argv` and `rvsadm_restore` fuzz targets of `fuzz/`, driven
//! by proptest on the stable toolchain: arbitrary and ipvsadm-shaped argv
//! and restore text must give a result or an error, never a panic.

use proptest::prelude::*;
use rvsadm::restore::parse_restore;
use rvsadm::{parse_args, NumericResolver};

/// Words that steer the parser into its real branches.
fn word() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("-A".to_string()),
        Just("-E".to_string()),
        Just("-D".to_string()),
        Just("-a".to_string()),
        Just("-e".to_string()),
        Just("-d".to_string()),
        Just("-C".to_string()),
        Just("-L".to_string()),
        Just("-Ln".to_string()),
        Just("-S".to_string()),
        Just("-R".to_string()),
        Just("-Z".to_string()),
        Just("--set".to_string()),
        Just("-t".to_string()),
        Just("-u".to_string()),
        Just("--sctp-service".to_string()),
        Just("-f".to_string()),
        Just("-r".to_string()),
        Just("-s".to_string()),
        Just("-b".to_string()),
        Just("-p".to_string()),
        Just("-M".to_string()),
        Just("-m".to_string()),
        Just("-g".to_string()),
        Just("-i".to_string()),
        Just("-w".to_string()),
        Just("-x".to_string()),
        Just("-y".to_string()),
        Just("-o".to_string()),
        Just("--tun-type".to_string()),
        Just("--stats".to_string()),
        Just("--rate".to_string()),
        Just("-c".to_string()),
        Just("--exact".to_string()),
        Just("198.51.100.10:80".to_string()),
        Just("[2001:db8::10]:80".to_string()),
        Just("203.0.113.11".to_string()),
        Just("rr".to_string()),
        Just("wlc".to_string()),
        Just("sh-port,sh-fallback".to_string()),
        Just("65536".to_string()),
        Just("-1".to_string()),
        Just("4294967296".to_string()),
        Just("255.255.255.0".to_string()),
        Just("".to_string()),
        "[-a-z0-9.:=,\\[\\]]{0,12}",
        any::<String>(),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1024))]

    #[test]
    fn argv_never_panics(args in proptest::collection::vec(word(), 0..10)) {
        let _ = parse_args(&args, "ipvsadm", &NumericResolver);
    }

    #[test]
    fn restore_text_never_panics(
        lines in proptest::collection::vec(proptest::collection::vec(word(), 0..8), 0..6)
    ) {
        let text: String = lines.iter().map(|l| l.join(" ") + "\n").collect();
        let _ = parse_restore(&text, "ipvsadm-restore", &NumericResolver);
    }

    #[test]
    fn arbitrary_restore_bytes_never_panic(text in any::<String>()) {
        let _ = parse_restore(&text, "ipvsadm-restore", &NumericResolver);
    }
}
