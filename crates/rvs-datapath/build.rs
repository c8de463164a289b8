//! Compiles the XDP steering program (`bpf/rvs_xdp.c`) with clang into
//! `$OUT_DIR/rvs_xdp.o`, which `src/xdp/program.rs` embeds.
//!
//! A machine without clang still builds the crate: the object is left
//! empty, `RVS_XDP_BUILD` says why, and the XDP datapath reports itself
//! unavailable at run time (rvsd then uses NFQUEUE). `RVS_CLANG` names
//! another compiler (default `clang-14`, then `clang`).

use std::path::PathBuf;
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=bpf/rvs_xdp.c");
    println!("cargo:rerun-if-env-changed=RVS_CLANG");
    let out_dir = PathBuf::from(std::env::var_os("OUT_DIR").unwrap_or_default());
    let object = out_dir.join("rvs_xdp.o");
    let compilers: Vec<String> = match std::env::var("RVS_CLANG") {
        Ok(c) => vec![c],
        Err(_) => vec!["clang-14".into(), "clang".into()],
    };
    let mut why = String::from("no clang found");
    for clang in &compilers {
        let result = Command::new(clang)
            .args([
                "-O2",
                "-g",
                "-target",
                "bpf",
                "-I/usr/include/x86_64-linux-gnu",
                "-Wall",
                "-c",
                "bpf/rvs_xdp.c",
                "-o",
            ])
            .arg(&object)
            .output();
        match result {
            Ok(o) if o.status.success() => {
                println!("cargo:rustc-env=RVS_XDP_BUILD=ok");
                return;
            }
            Ok(o) => {
                why = format!(
                    "{clang} failed: {}",
                    String::from_utf8_lossy(&o.stderr)
                        .lines()
                        .next()
                        .unwrap_or("")
                );
            }
            Err(e) => why = format!("{clang}: {e}"),
        }
    }
    let _ = std::fs::write(&object, b"");
    println!("cargo:warning=XDP datapath unavailable: {why} (scripts/deps.sh installs clang-14 and libbpf-dev)");
    println!("cargo:rustc-env=RVS_XDP_BUILD={why}");
}
