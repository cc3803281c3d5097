//! Embeds the eBPF object when one was built (`cargo xtask build` passes its path in
//! GHOSTRACE_EBPF_OBJECT; a previous xtask build in target/ebpf is used otherwise).
//! Without one, the binary still builds and tracing reports how to build it.

use std::{env, fs, path::PathBuf};

fn main() {
    println!("cargo:rerun-if-env-changed=GHOSTRACE_EBPF_OBJECT");
    let manifest = PathBuf::from(env::var("CARGO_MANIFEST_DIR").expect("cargo sets it"));
    let default = manifest.join("../target/ebpf/bpfel-unknown-none/release/tracer-ebpf");
    let object = env::var_os("GHOSTRACE_EBPF_OBJECT").map(PathBuf::from).unwrap_or(default);
    println!("cargo:rerun-if-changed={}", object.display());
    let code = match fs::canonicalize(&object) {
        Ok(path) => format!("Some(aya::include_bytes_aligned!({:?}))", path.display().to_string()),
        Err(_) => "None".to_string(),
    };
    let out = PathBuf::from(env::var("OUT_DIR").expect("cargo sets it")).join("ebpf_object.rs");
    fs::write(out, format!("pub const EBPF_OBJECT: Option<&[u8]> = {code};\n")).expect("write OUT_DIR");
}
