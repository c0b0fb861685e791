//! Compiles proto/push.proto with protox (a pure-Rust protobuf compiler), so building lokiship needs no
//! system `protoc`; and records the git revision for `promtail_build_info` when built from a checkout.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto/push.proto");
    let descriptors = protox::compile(["proto/push.proto"], ["proto"])?;
    prost_build::Config::new().compile_fds(descriptors)?;
    record_revision();
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    if let Ok(out) = std::process::Command::new(rustc).arg("--version").output() {
        let version = String::from_utf8_lossy(&out.stdout);
        if let Some(v) = version.split_whitespace().nth(1) {
            println!("cargo:rustc-env=LOKISHIP_RUSTC=rustc{v}");
        }
    }
    Ok(())
}

/// `LOKISHIP_REVISION` = `git rev-parse --short HEAD`, when there is a git checkout.
fn record_revision() {
    let Ok(head) = std::fs::read_to_string(".git/HEAD") else {
        return;
    };
    println!("cargo:rerun-if-changed=.git/HEAD");
    if let Some(reference) = head.trim().strip_prefix("ref: ") {
        if std::path::Path::new(".git").join(reference).exists() {
            println!("cargo:rerun-if-changed=.git/{reference}");
        }
    }
    let out = std::process::Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .output();
    if let Ok(out) = out {
        if !out.status.success() {
            return;
        }
        let rev = String::from_utf8_lossy(&out.stdout).trim().to_string();
        if !rev.is_empty() {
            println!("cargo:rustc-env=LOKISHIP_REVISION={rev}");
        }
    }
}
