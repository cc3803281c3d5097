//! The user-side event pipeline: drains the ring buffer on its own thread, decodes
//! records and hands events to the consumer until told to stop, then drains the rest.

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    thread::JoinHandle,
};

use aya::maps::{MapData, RingBuf};

use crate::events::{self, Event};

/// What the reader thread counted besides the events it delivered.
#[derive(Clone, Copy, Debug, Default)]
pub struct ReadStats {
    pub records: u64,
    pub undecodable: u64,
}

/// What the reader thread feeds: every decoded record, and a tick about ten times a
/// second (and once at the end) for time-driven work.
pub trait Sink: Send + 'static {
    fn record(&mut self, raw: &[u8], event: Event);
    fn tick(&mut self) {}
}

/// The reader thread and its stop flag.
pub struct Reader<C> {
    stop: Arc<AtomicBool>,
    handle: JoinHandle<(C, ReadStats)>,
}

/// Starts reading `ring` into `consumer` on a new thread.
pub fn start<C: Sink>(mut ring: RingBuf<MapData>, mut consumer: C) -> Reader<C> {
    let stop = Arc::new(AtomicBool::new(false));
    let stop_flag = stop.clone();
    let handle = std::thread::spawn(move || {
        let mut stats = ReadStats::default();
        loop {
            // Read the flag before draining, so a stop requested after the traced
            // process exited still sees every record it produced.
            let stopping = stop_flag.load(Ordering::Acquire);
            while let Some(item) = ring.next() {
                stats.records += 1;
                match events::decode(&item) {
                    Ok(event) => consumer.record(&item, event),
                    Err(_) => stats.undecodable += 1,
                }
            }
            consumer.tick();
            if stopping {
                break;
            }
            crate::probes::wait_readable(&ring, 100);
        }
        (consumer, stats)
    });
    Reader { stop, handle }
}

impl<C> Reader<C> {
    /// Stops after draining what is in the ring buffer; returns the consumer.
    pub fn finish(self) -> (C, ReadStats) {
        self.stop.store(true, Ordering::Release);
        self.handle.join().expect("reader thread does not panic")
    }
}
