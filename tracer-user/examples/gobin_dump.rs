//! Prints the `ghostrace inspect` report of a Go binary (a debugging aid until the
//! CLI is wired): `cargo run --example gobin_dump -- BIN [SCOPE] [--json]`.
use tracer_user::gobin::{GoBinary, Scope};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let json = args.iter().any(|a| a == "--json");
    let mut rest = args.iter().filter(|a| *a != "--json");
    let path = rest.next().expect("usage: gobin_dump BIN [SCOPE] [--json]");
    let scope: Scope = rest.next().map_or(Ok(Scope::Default), |s| s.parse()).expect("scope");
    let bin = match GoBinary::open(path.as_ref()) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("{path}: {e}");
            std::process::exit(1);
        }
    };
    let report = bin.report(&scope);
    if json {
        println!("{}", serde_json::to_string_pretty(&report).expect("serialize"));
    } else {
        print!("{report}");
    }
}
