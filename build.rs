//! Compiles proto/push.proto with protox (a pure-Rust protobuf compiler), so building lokiship needs no
//! system `protoc`.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto/push.proto");
    let descriptors = protox::compile(["proto/push.proto"], ["proto"])?;
    prost_build::Config::new().compile_fds(descriptors)?;
    Ok(())
}
