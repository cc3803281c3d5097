//! The user-side event pipeline: drains the ring buffer on its own thread, decodes
//! records and hands events to the consumer until told to stop, then drains the rest.

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    thread::JoinHandle,
    time::Duration,
};

use aya::maps::{MapData, RingBuf};
use tokio::{io::unix::AsyncFd, sync::Notify};

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
    stop: Arc<Stop>,
    handle: JoinHandle<(C, ReadStats)>,
}

/// Asks the reader to drain what is left and return.
#[derive(Default)]
struct Stop {
    asked: AtomicBool,
    wake: Notify,
}

/// How long the reader waits for a record before it ticks the consumer anyway.
const TICK: Duration = Duration::from_millis(100);

/// Starts reading `ring` into `consumer` on a new thread: a tokio runtime of its own
/// waits for the ring buffer (`AsyncFd`) and the tick, so the consumer's CPU-bound
/// work never holds up another event loop.
pub fn start<C: Sink>(ring: RingBuf<MapData>, consumer: C) -> std::io::Result<Reader<C>> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let ring = {
        let _inside = runtime.enter();
        crate::sys::when_readable(ring)?
    };
    let stop = Arc::new(Stop::default());
    let stop_flag = stop.clone();
    let handle = std::thread::Builder::new()
        .name("ghostrace-reader".into())
        .spawn(move || runtime.block_on(read(ring, consumer, &stop_flag)))?;
    Ok(Reader { stop, handle })
}

async fn read<C: Sink>(mut ring: AsyncFd<RingBuf<MapData>>, mut consumer: C, stop: &Stop) -> (C, ReadStats) {
    let mut stats = ReadStats::default();
    loop {
        // Read the flag before draining, so a stop requested after the traced
        // process exited still sees every record it produced.
        let stopping = stop.asked.load(Ordering::Acquire);
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
                // Cleared before the next drain: a record after it wakes the reader again.
                if let Ok(mut ready) = ready {
                    ready.clear_ready();
                }
            }
            () = stop.wake.notified() => {}
            () = tokio::time::sleep(TICK) => {}
        }
    }
    (consumer, stats)
}

impl<C> Reader<C> {
    /// Stops after draining what is in the ring buffer; returns the consumer.
    pub fn finish(self) -> (C, ReadStats) {
        self.stop.asked.store(true, Ordering::Release);
        // A permit is kept when the reader is not waiting yet: it cannot miss this.
        self.stop.wake.notify_one();
        self.handle.join().expect("reader thread does not panic")
    }
}
