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
    }
}

/// Swiss-table maps (Go 1.24+ unless built with GOEXPERIMENT=noswissmap) bring the
/// methods of `internal/runtime/maps.Map`; the old layout has none.
fn swiss_maps(bin: &GoBinary) -> bool {
    bin.functions().any(|f| f.name.starts_with("internal/runtime/maps.(*Map)."))
}
