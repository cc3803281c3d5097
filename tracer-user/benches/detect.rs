//! Detection engine throughput on one core (a synthetic mixed stream of slice, map
//! and list records over many objects, a fifth of the records about objects shared
//! between goroutines), and the memory of 1 million tracked objects.
//!
//! `cargo bench -p tracer-user --bench detect` prints criterion's figures and then
//! records/s and bytes per tracked object.

use std::{hint::black_box, time::Instant};

use criterion::{BatchSize, Criterion, Throughput};
use tracer_user::{
    detect::{Config, Engine},
    events::{Event, EventKind, MapOp},
};

struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

const GOROUTINES: u64 = 256;

/// The stream's objects. Local slices are built by appending: every growth is of a
/// fresh array (the previous growth's result), carved from a per-goroutine arena
/// that wraps, so addresses come back as the allocator reuses them.
struct World {
    rng: Rng,
    ts: u64,
    arena: Vec<u64>,
}

impl World {
    fn event(&self, goid: u64, pc: u64, kind: EventKind) -> Event {
        Event { ts_ns: self.ts, tgid: 4242, tid: 10_000 + goid as u32, goid, pc, probe: 0, stack_id: None, kind }
    }

    fn grow(&mut self, goid: u64, shared: bool) -> Event {
        let (ptr, cap) = if shared {
            // A few thousand long-lived arrays several goroutines append to.
            let a = self.rng.below(4_000);
            (0xc100_0000_0000 + a * 0x1_0000, 8u64 << (a % 6))
        } else {
            let cap = 8u64 << self.rng.below(6);
            let next = &mut self.arena[goid as usize];
            let ptr = 0xc000_0000_0000 + goid * (64 << 20) + *next;
            *next = (*next + cap * 8) % (64 << 20);
            (ptr, cap)
        };
        let start = if shared && ptr % 7 == 0 { self.rng.below(4) } else { 0 };
        let kind = EventKind::SliceGrow {
            old_ptr: ptr + start * 8,
            old_len: cap - start,
            old_cap: cap - start,
            new_len: cap - start + 1,
            elem_size: 8,
            gc_cycle: 0,
            repeated: false,
        };
        self.event(goid, 0x4a_0000 + (ptr >> 16) % 64 * 0x10, kind)
    }

    fn map(&mut self, goid: u64, shared: bool) -> Event {
        let m = if shared { self.rng.below(200) } else { 1_000 + goid * 32 + self.rng.below(32) };
        let map = 0xc200_0000_0000 + m * 0x100;
        let iter = 0xc300_0000_0000 + goid * 0x1000 + m % 4 * 0x80;
        let kind = match self.rng.below(10) {
            0 => EventKind::MapIterStart { map, iter },
            1..7 => EventKind::MapIterNext { map, iter, writing: false, unseen_until: 0 },
            _ => EventKind::MapWrite { map, op: MapOp::Assign, writing: false },
        };
        self.event(goid, 0x4b_0000 + m % 32 * 0x10, kind)
    }

    fn remove(&mut self, goid: u64, shared: bool, out: &mut Vec<Event>) {
        let l = if shared { self.rng.below(20) } else { 100 + goid * 4 + self.rng.below(4) };
        let list = 0xc400_0000_0000 + l * 0x100;
        out.push(self.event(goid, 0x4c_0000, EventKind::ListRemoveEnter { list, elem: list + 0x40, elem_list: list, op: tracer_common::ListOp::Remove }));
        self.ts += 30;
        out.push(self.event(goid, 0x4c_0040, EventKind::ListRemoveExit { list, elem: 0 }));
    }
}

/// `n` records: 60% slice growth, 30% map iteration and writes, 10% list removes;
/// one record in five is about an object several goroutines share.
fn mixed_stream(n: usize, seed: u64) -> Vec<Event> {
    let mut w = World { rng: Rng(seed), ts: 1_000_000_000, arena: vec![0; GOROUTINES as usize + 1] };
    let mut out = Vec::with_capacity(n + 1);
    while out.len() < n {
        w.ts += 20 + w.rng.below(200);
        let goid = 1 + w.rng.below(GOROUTINES);
        let shared = w.rng.below(5) == 0;
        match w.rng.below(10) {
            0..6 => {
                let ev = w.grow(goid, shared);
                out.push(ev);
            }
            6..9 => {
                let ev = w.map(goid, shared);
                out.push(ev);
            }
            _ => w.remove(goid, shared, &mut out),
        }
    }
    out.truncate(n);
    out
}

fn feed(mut engine: Engine, events: &[Event]) -> Engine {
    for ev in events {
        engine.process(ev);
    }
    engine.finish();
    engine
}

fn fresh() -> Engine {
    Engine::new(Config::default()).expect("default config")
}

/// `cold`: a fresh engine (tables grow from empty, as at the start of a run or a
/// replay); `warm`: an engine that already holds the state of as many records before.
fn throughput(c: &mut Criterion, warmup: &[Event], events: &[Event]) {
    let mut g = c.benchmark_group("engine");
    g.throughput(Throughput::Elements(events.len() as u64));
    g.sample_size(10);
    g.bench_function("mixed_stream_cold", |b| b.iter(|| black_box(feed(fresh(), black_box(events)).stats())));
    g.bench_function("mixed_stream_warm", |b| {
        b.iter_batched(|| warm(warmup), |e| black_box(feed(e, black_box(events)).stats()), BatchSize::PerIteration)
    });
    g.finish();
}

fn warm(warmup: &[Event]) -> Engine {
    let mut engine = fresh();
    warmup.iter().for_each(|ev| engine.process(ev));
    engine
}

/// Best of five passes, in records per second.
fn best_rate(events: &[Event], setup: impl Fn() -> Engine) -> f64 {
    let best = (0..5)
        .map(|_| {
            let engine = setup();
            let t = Instant::now();
            black_box(feed(engine, events));
            t.elapsed()
        })
        .min()
        .expect("five runs");
    events.len() as f64 / best.as_secs_f64()
}

/// Resident set size of this process, from /proc (Linux only).
fn rss_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}

fn memory_figure() {
    const OBJECTS: u64 = 1_000_000;
    let before = rss_bytes();
    let mut engine = Engine::new(Config::default()).expect("default config");
    for i in 0..OBJECTS {
        // One growth each of a million distinct arrays, by two goroutines in turn.
        let kind = EventKind::SliceGrow {
            old_ptr: 0xc000_0000_0000 + i * 0x100,
            old_len: 16,
            old_cap: 16,
            new_len: 17,
            elem_size: 8,
            gc_cycle: 0,
            repeated: false,
        };
        let goid = 1 + i % 2;
        engine.process(&Event {
            ts_ns: 1_000 + i,
            tgid: 1,
            tid: goid as u32,
            goid,
            pc: 0x4a_0000,
            probe: 0,
            stack_id: None,
            kind,
        });
    }
    let stats = engine.stats();
    let table = engine.allocated_bytes() as f64 / stats.tracked as f64;
    let rss = match (before, rss_bytes()) {
        (Some(b), Some(a)) => format!("{:.0}", a.saturating_sub(b) as f64 / stats.tracked as f64),
        _ => "n/a".into(),
    };
    println!(
        "memory: {} tracked objects, {table:.0} bytes/object allocated by the tables, {rss} bytes/object resident",
        stats.tracked
    );
    black_box(engine);
}

fn main() {
    let all = mixed_stream(4_000_000, 0x9e37_79b9_7f4a_7c15);
    let (warmup, events) = all.split_at(2_000_000);
    let mut c = Criterion::default().configure_from_args();
    throughput(&mut c, warmup, events);
    c.final_summary();

    // Plain figures as well: best of five passes on this core.
    let cold = best_rate(events, fresh);
    let warm_rate = best_rate(events, || warm(warmup));
    let stats = feed(fresh(), &all).stats();
    println!(
        "throughput: {:.2} M records/s cold, {:.2} M records/s warm ({} records; over both halves: {} findings, \
         {} tracked at the end, {} evicted, {} suppressed)",
        cold / 1e6,
        warm_rate / 1e6,
        events.len(),
        stats.findings,
        stats.tracked,
        stats.evicted,
        stats.suppressed,
    );
    memory_figure();
}
