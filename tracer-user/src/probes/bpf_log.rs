//! The eBPF programs' lines for rare events (`tracer-ebpf/src/log.rs`), when asked
//! for: read from their ring on a thread of their own, written through `tracing`.

use std::{sync::Arc, thread::JoinHandle};

use aya::Ebpf;
use aya_log::{EbpfLogger, Level};
use tokio::sync::Notify;
use tracing::Level as Tracing;

use super::ProbeError;
use crate::logging::BPF_TARGET as TARGET;

/// Bytes of the programs' log ring when nothing reads it: one page, the least the
/// kernel accepts (aya-log's own size when something does).
pub const IDLE_RING_BYTES: u32 = 4096;

/// The most verbose level the process's logger takes from [`TARGET`], as the
/// programs' `AYA_LOG_LEVEL` (0: none, and the verifier drops their logging code).
pub fn level() -> u8 {
    let level = if tracing::enabled!(target: TARGET, Tracing::TRACE) {
        Level::Trace
    } else if tracing::enabled!(target: TARGET, Tracing::DEBUG) {
        Level::Debug
    } else if tracing::enabled!(target: TARGET, Tracing::INFO) {
        Level::Info
    } else if tracing::enabled!(target: TARGET, Tracing::WARN) {
        Level::Warn
    } else if tracing::enabled!(target: TARGET, Tracing::ERROR) {
        Level::Error
    } else {
        return 0;
    };
    level as u8
}

/// The thread writing the programs' lines until dropped.
pub struct BpfLog {
    stop: Arc<Notify>,
    reader: Option<JoinHandle<()>>,
}

impl BpfLog {
    /// Takes the log ring out of `ebpf` and starts reading it: a runtime of its own
    /// waits for the ring to be readable (`AsyncFd`).
    pub fn start(ebpf: &mut Ebpf) -> Result<Self, ProbeError> {
        let err = |reason: String| ProbeError::Map { map: "AYA_LOGS", reason };
        let logger = EbpfLogger::init_with_logger(ebpf, tracing_log::LogTracer::new()).map_err(|e| err(e.to_string()))?;
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(|e| err(e.to_string()))?;
        let mut logger = {
            let _in_runtime = runtime.enter();
            crate::sys::when_readable(logger).map_err(|e| err(e.to_string()))?
        };
        let stop = Arc::new(Notify::new());
        let stopped = stop.clone();
        let reader = std::thread::Builder::new()
            .name("bpf-log".into())
            .spawn(move || {
                runtime.block_on(async move {
                    loop {
                        tokio::select! {
                            ready = logger.readable_mut() => {
                                // Cleared before the flush: a line after it wakes us again.
                                if let Ok(mut ready) = ready {
                                    ready.clear_ready();
                                }
                                logger.get_mut().flush();
                            }
                            () = stopped.notified() => break,
                        }
                    }
                    // The lines of the programs' last runs.
                    logger.get_mut().flush();
                });
            })
            .map_err(|e| err(e.to_string()))?;
        Ok(Self { stop, reader: Some(reader) })
    }
}

impl Drop for BpfLog {
    fn drop(&mut self) {
        // A stored permit if the reader is not waiting: it is not lost.
        self.stop.notify_one();
        if let Some(reader) = self.reader.take() {
            let _ = reader.join();
        }
    }
}
