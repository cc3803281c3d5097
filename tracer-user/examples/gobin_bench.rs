//! Benchmark of `gobin` on a large binary (default: the newest installed Go
//! compiler, `pkg/tool/linux_amd64/compile`): prints the time of open, of the
//! full probe plan for each scope and of the whole inspect report, and the peak
//! resident memory against the file size.
//!
//! `cargo run --release --example gobin_bench [-- BIN]`

use std::path::PathBuf;
use std::time::Instant;

use tracer_user::gobin::{GoBinary, Scope};

fn default_binary() -> Option<PathBuf> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../.cache/go");
    let mut versions: Vec<PathBuf> = std::fs::read_dir(root).ok()?.flatten().map(|e| e.path()).collect();
    versions.sort_by_key(|p| {
        let name = p.file_name().unwrap_or_default().to_string_lossy().into_owned();
        name.split('.').map(|n| n.parse::<u32>().unwrap_or(0)).collect::<Vec<_>>()
    });
    versions.into_iter().rev().map(|v| v.join("go/pkg/tool/linux_amd64/compile")).find(|p| p.is_file())
}

/// Peak resident set size of this process (VmHWM), in bytes.
fn peak_rss() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

fn ms(t: Instant) -> f64 {
    t.elapsed().as_secs_f64() * 1e3
}

fn main() {
    let path = std::env::args()
        .nth(1)
        .map(PathBuf::from)
        .or_else(default_binary)
        .expect("no binary given and no Go compiler installed");
    let size = std::fs::metadata(&path).expect("stat").len();
    let rss_before = peak_rss();
    let t = Instant::now();
    let bin = GoBinary::open(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let open_ms = ms(t);
    println!(
        "binary   {} ({}, {:.1} MB, {} functions)",
        path.display(),
        bin.go_version(),
        size as f64 / 1e6,
        bin.function_count()
    );
    println!("open     {open_ms:8.1} ms");
    for (name, scope) in [("default", Scope::Default), ("all", Scope::All)] {
        let t = Instant::now();
        let plan = bin.probe_plan(&scope);
        println!(
            "plan     {:8.1} ms  scope {name}: {} probes, {} inlined Remove sites",
            ms(t),
            plan.probes.len(),
            plan.list_sites.len()
        );
    }
    let t = Instant::now();
    let report = bin.report(&Scope::Default);
    let json = serde_json::to_string(&report).expect("json");
    println!("inspect  {:8.1} ms  (open excluded; JSON {} KB)", ms(t), json.len() / 1024);
    let t = Instant::now();
    let mut frames = 0usize;
    for f in bin.functions().step_by(7) {
        frames += bin.symbolize(f.entry + (f.end - f.entry) / 2).map_or(0, |v| v.len());
    }
    println!("symbolize {:7.1} ms  ({frames} frames)", ms(t));
    let peak = peak_rss();
    println!(
        "peak RSS {:8.1} MB  ({:.2}x the file; {:.1} MB before open)",
        peak as f64 / 1e6,
        peak as f64 / size as f64,
        rss_before as f64 / 1e6
    );
}
