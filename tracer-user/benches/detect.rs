//! Detection engine throughput and memory benchmark.
fn main() {}
