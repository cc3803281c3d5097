//! The per-process configuration the kernel side reads, derived from the binary.

use tracer_common::{GrowAbi, ProcConfig};

use crate::gobin::GoBinary;

/// `hmap.flags` (offset 8) & hashWriting (4): runtime/map.go, Go 1.19–1.25 (noswissmap).
const HMAP_FLAGS: (u32, u32) = (8, 4);
/// `maps.Map.writing` (offset 34, toggled 0/1): internal/runtime/maps/map.go, Go 1.24–1.27.
const SWISS_WRITING: (u32, u32) = (34, 1);

/// What the probes need to know about a process running `bin`.
pub fn proc_config(bin: &GoBinary, sample_every: u32, stacks: bool) -> ProcConfig {
    let version = bin.version();
    let grow_abi = if version < crate::gobin::GoVersion::new(1, 20, 0) { GrowAbi::Go119 } else { GrowAbi::Go120 };
    let (map_flag_offset, map_flag_mask) = if swiss_maps(bin) { SWISS_WRITING } else { HMAP_FLAGS };
    ProcConfig {
        goid_offset: bin.layout().goid_offset as u32,
        grow_abi: grow_abi as u32,
        map_flag_offset,
        map_flag_mask,
        sample_every,
        stacks: stacks as u32,
        gc_cycles: 0,
    }
}

/// Swiss-table maps (Go 1.24+ unless built with GOEXPERIMENT=noswissmap) bring the
/// methods of `internal/runtime/maps.Map`; the old layout has none.
fn swiss_maps(bin: &GoBinary) -> bool {
    bin.functions().any(|f| f.name.starts_with("internal/runtime/maps.(*Map)."))
}

/// The oldest Go release whose runtime layout and calling convention the probes know.
pub const OLDEST_GO: crate::gobin::GoVersion = crate::gobin::GoVersion::new(1, 19, 0);

/// Whether the kernel programs can read this binary's processes: the register reads
/// are amd64's, the per-version facts start at Go 1.19 and need the release (or
/// DWARF) to be known.
pub fn check_traceable(bin: &GoBinary) -> Result<(), super::ProbeError> {
    if bin.arch() != crate::gobin::Arch::Amd64 || std::env::consts::ARCH != "x86_64" {
        return Err(super::ProbeError::Unsupported(format!(
            "{} binary on an {} host: the probes read amd64 registers only",
            bin.arch(),
            std::env::consts::ARCH
        )));
    }
    if !bin.layout().verified && !bin.version_source().exact() {
        return Err(super::ProbeError::Unsupported(format!(
            "the Go release of {} is unknown ({}: no .go.buildinfo, no runtime.buildVersion, no DWARF), so the \
             goroutine id offset cannot be chosen",
            bin.path().display(),
            bin.go_version()
        )));
    }
    if bin.version() < OLDEST_GO {
        return Err(super::ProbeError::Unsupported(format!(
            "{} is older than go1.19, the oldest release ghostrace supports",
            bin.go_version()
        )));
    }
    Ok(())
}
