//! Go binary analysis: everything the probes need, read from the binary itself.
//!
//! [`GoBinary::open`] maps an ELF Go executable and reads its version and modules
//! (`.go.buildinfo`, else the runtime's own version string), function table (`.gopclntab`) and `moduledata`; everything
//! else is computed on demand from the mapping without copying it:
//! [`GoBinary::func_at`], [`GoBinary::symbolize`], [`GoBinary::layout`] and
//! [`GoBinary::probe_plan`] and [`GoBinary::report`] (`ghostrace inspect`).
//! The one `unsafe` call (the memory map) lives in `crate::sys`.
#![forbid(unsafe_code)]

mod arm64;
mod binary;
mod buildinfo;
pub(crate) mod disasm;
mod dwarf;
mod elf;
mod error;
mod inline;
mod layout;
mod listsites;
mod pccache;
mod pclntab;
mod plan;
mod read;
mod report;
mod runtime_strings;
mod scope;

pub use binary::{Func, GoBinary};
pub use buildinfo::{BuildInfo, GoVersion, Module};
pub use dwarf::{DwarfData, DwarfReader};
pub use elf::Arch;
pub use error::GobinError;
pub use inline::{Frame, ModuleData};
pub use layout::{LayoutSource, RuntimeLayout, table_layout};
pub use listsites::{LIST_REMOVE, ListSite};
pub use plan::{Missing, Probe, ProbeKind, ProbePlan, Role, RuntimeFunc, Signature, Site, entry_point_names};
pub use report::{BuildSettings, InspectReport, Summary};
pub use runtime_strings::VersionSource;
pub use scope::{Scope, ScopeError, glob_match, package_of, unescape_package};
