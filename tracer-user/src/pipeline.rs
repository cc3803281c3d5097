//! The user-side event pipeline: drains the ring buffer on its own thread, decodes
//! records and hands events to the consumer until told to stop, then drains the rest.

use std::{
    io,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    thread::JoinHandle,
    time::Duration,
};

use aya::maps::{MapData, RingBuf};
use tokio::{sync::Notify, time};

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

/// The reader thread and how to stop it.
pub struct Reader<C> {
    stop: Arc<Stop>,
    handle: JoinHandle<(C, ReadStats)>,
}

/// The stop request: the flag says it, the notification wakes the reader.
#[derive(Default)]
struct Stop {
    requested: AtomicBool,
    wake: Notify,
}

/// How often the consumer ticks while no record arrives.
const TICK: Duration = Duration::from_millis(100);

/// Starts reading `ring` into `consumer` on a new thread: its own single-threaded
/// runtime waits for the ring buffer to be readable (`AsyncFd`) or the next tick, so
/// the detection engine's work never holds up the caller's event loop.
pub fn start<C: Sink>(ring: RingBuf<MapData>, mut consumer: C) -> io::Result<Reader<C>> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let stop = Arc::new(Stop::default());
    let stop_seen = stop.clone();
    // Registered here, so that a failure is the caller's error, not the thread's
    // (entered, not blocked on: the caller may be inside its own runtime).
    let mut ring = {
        let _in_runtime = runtime.enter();
        crate::sys::when_readable(ring)?
    };
    let handle = std::thread::spawn(move || {
        runtime.block_on(async move {
            let mut stats = ReadStats::default();
            let mut tick = time::interval(TICK);
            tick.set_missed_tick_behavior(time::MissedTickBehavior::Delay);
            loop {
                // Read the flag before draining, so a stop requested after the
                // traced process exited still sees every record it produced.
                let stopping = stop_seen.requested.load(Ordering::Acquire);
                while let Some(item) = ring.get_mut().next() {
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
                tokio::select! {
                    ready = ring.readable_mut() => {
                        // Cleared before the next drain: a record after it wakes us again.
                        if let Ok(mut ready) = ready {
                            ready.clear_ready();
                        }
                    }
                    _ = tick.tick() => {}
                    () = stop_seen.wake.notified() => {}
                }
            }
            (consumer, stats)
        })
    });
    Ok(Reader { stop, handle })
}

impl<C> Reader<C> {
    /// Stops after draining what is in the ring buffer; returns the consumer.
    pub fn finish(self) -> (C, ReadStats) {
        self.stop.requested.store(true, Ordering::Release);
        // A stored permit if the reader is not waiting: it is not lost.
        self.stop.wake.notify_one();
        self.handle.join().expect("reader thread does not panic")
    }
}
