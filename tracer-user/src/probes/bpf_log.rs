//! The eBPF programs' lines for rare events (`tracer-ebpf/src/log.rs`), when asked
//! for: read from their ring on a thread of their own, written through `tracing`.

use std::{
    os::fd::AsRawFd,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    thread::JoinHandle,
};

use aya::Ebpf;
use aya_log::{EbpfLogger, Level};
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
    stop: Arc<AtomicBool>,
    reader: Option<JoinHandle<()>>,
}

impl BpfLog {
    /// Takes the log ring out of `ebpf` and starts reading it.
    pub fn start(ebpf: &mut Ebpf) -> Result<Self, ProbeError> {
        let err = |reason: String| ProbeError::Map { map: "AYA_LOGS", reason };
        let mut logger = EbpfLogger::init_with_logger(ebpf, tracing_log::LogTracer::new()).map_err(|e| err(e.to_string()))?;
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = stop.clone();
        let reader = std::thread::Builder::new()
            .name("bpf-log".into())
            .spawn(move || {
                while !stopped.load(Ordering::Relaxed) {
                    crate::sys::poll_readable(logger.as_raw_fd(), 100);
                    logger.flush();
                }
                // The lines of the programs' last runs.
                logger.flush();
            })
            .map_err(|e| err(e.to_string()))?;
        Ok(Self { stop, reader: Some(reader) })
    }
}

impl Drop for BpfLog {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(reader) = self.reader.take() {
            let _ = reader.join();
        }
    }
}
