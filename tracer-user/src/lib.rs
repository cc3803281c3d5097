//! ghostrace: finds shared-slice, map and list hazards in running Go programs.

pub mod detect;
pub mod events;
pub mod export;
pub mod gobin;
pub mod recording;
pub mod sys;
