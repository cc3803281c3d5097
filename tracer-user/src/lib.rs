//! ghostrace: finds shared-slice, map and list hazards in running Go programs.

pub mod child;
pub mod cli;
pub mod container;
pub mod daemon;
pub mod detect;
pub mod event_loop;
pub mod events;
pub mod export;
pub mod gobin;
pub mod governor;
pub mod live;
pub mod logging;
pub mod pipeline;
pub mod probes;
pub mod procfs;
pub mod recording;
pub mod stats;
pub mod symbolize;
pub mod sys;
