//! The probe table: every placed probe gets a global id (its attach cookie and
//! counter index), so records and counters map back to the plan.

use std::{
    ops::Range,
    path::{Path, PathBuf},
    sync::Arc,
};

use tracer_common::{MAX_PROBES, MapOp, cookie};

use super::ProbeError;
use crate::{
    events::MapWriteOp,
    gobin::{Probe, ProbeKind, ProbePlan},
};

/// A probe placed in a binary.
#[derive(Clone, Debug)]
pub struct PlacedProbe {
    pub binary: Arc<PathBuf>,
    pub probe: Probe,
}

#[derive(Default)]
pub struct ProbeTable {
    probes: Vec<PlacedProbe>,
}

/// The program handling a probe kind and the auxiliary cookie bytes it reads.
fn program_of(kind: &ProbeKind) -> (&'static str, u8, u8) {
    match *kind {
        ProbeKind::SliceGrowCall => ("slice_grow_call", 0, 0),
        ProbeKind::MapIterStartCall => ("map_iter_start_call", 0, 0),
        ProbeKind::MapIterNextCall => ("map_iter_next_call", 0, 0),
        ProbeKind::MapWriteCall(op) => {
            let op = match op {
                MapWriteOp::Assign => MapOp::Assign,
                MapWriteOp::Delete => MapOp::Delete,
                MapWriteOp::Clear => MapOp::Clear,
            };
            ("map_write_call", op as u8, 0)
        }
        ProbeKind::ListRemoveEnter { list_reg, elem_reg } => ("list_remove_enter", list_reg, elem_reg),
        ProbeKind::ListRemoveExit => ("list_remove_exit", 0, 0),
        ProbeKind::MapWriteExit => ("map_write_exit", 0, 0),
    }
}

/// The program that handles probes of `kind`.
pub fn program_name(kind: &ProbeKind) -> &'static str {
    program_of(kind).0
}

impl ProbeTable {
    /// Adds a plan's probes; returns their ids.
    pub fn add(&mut self, binary: &Path, plan: &ProbePlan) -> Result<Range<u32>, ProbeError> {
        if self.probes.len() + plan.probes.len() > MAX_PROBES as usize {
            return Err(ProbeError::TooManyProbes);
        }
        let first = self.probes.len() as u32;
        let binary = Arc::new(binary.to_path_buf());
        self.probes.extend(plan.probes.iter().map(|probe| PlacedProbe { binary: binary.clone(), probe: probe.clone() }));
        Ok(first..self.probes.len() as u32)
    }

    /// Probes `ids` to attach: (id, program, file offset, cookie).
    pub fn points(&self, ids: Range<u32>) -> Vec<(u32, &'static str, u64, u64)> {
        ids.filter_map(|id| {
            let probe = &self.probes.get(id as usize)?.probe;
            let (program, aux0, aux1) = program_of(&probe.kind);
            Some((id, program, probe.file_offset, cookie(id, aux0, aux1)))
        })
        .collect()
    }

    pub fn get(&self, id: u32) -> Option<&PlacedProbe> {
        self.probes.get(id as usize)
    }

    pub fn len(&self) -> usize {
        self.probes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.probes.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = (u32, &PlacedProbe)> {
        self.probes.iter().enumerate().map(|(i, p)| (i as u32, p))
    }
}
