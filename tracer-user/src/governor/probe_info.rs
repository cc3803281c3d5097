//! What the governor knows of each probe: which probes switch together, and which
//! start or step a range.

/// What the governor needs to know about a probe.
#[derive(Clone, Debug, PartialEq)]
pub struct ProbeInfo {
    pub emulated: bool,
    /// The eBPF program that handles its hits: its mean run time adds to the trap's.
    pub program: &'static str,
    /// Probes with the same key are switched together: a detector pairs their
    /// records (a Remove's enter and exit), so one must not be seen without the other.
    pub unit: Option<String>,
    pub range: Option<RangeRole>,
}

/// A probe on the start or a step of a `range` over a map. A step alone does not
/// show that its range started after some earlier record: while any start probe
/// is off, a range may start unseen, and the step probes' kernel slots say so.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RangeRole {
    Start,
    Step,
}
pub fn probe_info(probe: &crate::gobin::Probe) -> ProbeInfo {
    use crate::gobin::ProbeKind;
    // Every Remove site of one function: enter and exits cannot be told apart
    // per site from the plan alone, and they share a rate anyway. Map writes pair a
    // start with its exit likewise (map_concurrent_write).
    let unit = match probe.kind {
        ProbeKind::ListRemoveEnter { .. } | ProbeKind::ListRemoveExit => Some("list_remove"),
        ProbeKind::MapWriteCall(_) | ProbeKind::MapWriteExit => Some("map_write"),
        _ => None,
    };
    let range = match probe.kind {
        ProbeKind::MapIterStartCall => Some(RangeRole::Start),
        ProbeKind::MapIterNextCall => Some(RangeRole::Step),
        _ => None,
    };
    ProbeInfo {
        emulated: probe.emulated,
        program: crate::probes::program_name(&probe.kind),
        unit: unit.map(|u| format!("{u} {}", probe.caller)),
        range,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paired_probes_are_switched_together() {
        use crate::{events::MapOp, gobin::{Probe, ProbeKind, Signature}};
        let probe = |kind, caller: &str| Probe {
            kind,
            address: 0x1000,
            file_offset: 0x1000,
            caller: caller.into(),
            package: "main".into(),
            target: "runtime.mapassign_fast64".into(),
            emulated: true,
            signature: Signature::MapWrite,
            after: None,
        };
        let start = probe_info(&probe(ProbeKind::MapWriteCall(MapOp::Assign), "main.put"));
        let exit = probe_info(&probe(ProbeKind::MapWriteExit, "main.put"));
        assert_eq!(start.unit.as_deref(), Some("map_write main.put"));
        assert_eq!(exit.unit.as_deref(), Some("map_write main.put"));
        let remove = probe_info(&probe(ProbeKind::ListRemoveExit, "main.drop"));
        assert_eq!(remove.unit.as_deref(), Some("list_remove main.drop"));
        assert_eq!(probe_info(&probe(ProbeKind::SliceGrowCall, "main.put")).unit, None);
    }
}
