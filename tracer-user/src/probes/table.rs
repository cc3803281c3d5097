//! The probe table: every placed probe gets a global id (its attach cookie and
//! counter index), so records and counters map back to the plan.

use std::{
    ops::Range,
    path::{Path, PathBuf},
    sync::Arc,
};

use tracer_common::{cookie, hit_slot};

use super::ProbeError;
use crate::gobin::{Probe, ProbeKind, ProbePlan};

/// A probe placed in a binary.
#[derive(Clone, Debug)]
pub struct PlacedProbe {
    pub binary: Arc<PathBuf>,
    pub probe: Probe,
}

/// Every probe placed, by id, in a table as large as the kernel's per-probe tables.
pub struct ProbeTable {
    probes: Vec<PlacedProbe>,
    capacity: u32,
    /// Ranges of ids given back (their probes detached for good), to be taken again.
    free: Vec<Range<u32>>,
}

/// The program handling a probe kind and the auxiliary cookie bytes and nibble it reads.
fn program_of(kind: &ProbeKind) -> (&'static str, u8, u8, u8) {
    match *kind {
        ProbeKind::SliceGrowCall => ("slice_grow_call", 0, 0, 0),
        ProbeKind::MapIterStartCall => ("map_iter_start_call", 0, 0, 0),
        ProbeKind::MapIterNextCall => ("map_iter_next_call", 0, 0, 0),
        ProbeKind::MapWriteCall(op) => ("map_write_call", op as u8, 0, 0),
        ProbeKind::ListRemoveEnter { list_reg, elem_reg, list_disp, op } => {
            ("list_remove_enter", list_reg, if op.checks_element() { elem_reg } else { list_disp }, op as u8)
        }
        ProbeKind::ListRemoveExit => ("list_remove_exit", 0, 0, 0),
        ProbeKind::MapWriteExit => ("map_write_exit", 0, 0, 0),
    }
}

/// The program that handles probes of `kind`.
pub fn program_name(kind: &ProbeKind) -> &'static str {
    program_of(kind).0
}

impl ProbeTable {
    pub fn with_capacity(capacity: u32) -> Self {
        Self { probes: Vec::new(), capacity, free: Vec::new() }
    }

    /// The most probes one plan can be given now.
    pub fn room(&self) -> usize {
        let tail = self.capacity as usize - self.probes.len();
        self.free.iter().map(|r| r.len()).fold(tail, usize::max)
    }

    /// Adds a plan's probes; returns their ids: the smallest range given back that
    /// fits, else new ids.
    pub fn add(&mut self, binary: &Path, plan: &ProbePlan) -> Result<Range<u32>, ProbeError> {
        let wanted = plan.probes.len();
        let binary = Arc::new(binary.to_path_buf());
        let placed = plan.probes.iter().map(|probe| PlacedProbe { binary: binary.clone(), probe: probe.clone() });
        let best = self.free.iter().enumerate().filter(|(_, r)| r.len() >= wanted).min_by_key(|(_, r)| r.len()).map(|(i, _)| i);
        if let Some(at) = best {
            let range = self.free.swap_remove(at);
            let ids = range.start..range.start + wanted as u32;
            if ids.end < range.end {
                self.free.push(ids.end..range.end);
            }
            for (id, placed) in ids.clone().zip(placed) {
                self.probes[id as usize] = placed;
            }
            return Ok(ids);
        }
        if self.probes.len() + wanted > self.capacity as usize {
            return Err(ProbeError::TooManyProbes { wanted, room: self.room() });
        }
        let first = self.probes.len() as u32;
        self.probes.extend(placed);
        Ok(first..self.probes.len() as u32)
    }

    /// Gives ids back for another plan (their links must be down), merging
    /// neighbouring ranges.
    pub fn release(&mut self, ids: Range<u32>) {
        let mut ids = ids;
        while let Some(at) = self.free.iter().position(|r| r.end == ids.start || r.start == ids.end) {
            let r = self.free.swap_remove(at);
            ids = r.start.min(ids.start)..r.end.max(ids.end);
        }
        if !ids.is_empty() {
            self.free.push(ids);
        }
    }

    /// Probes `ids` to attach: (id, program, file offset, cookie).
    pub fn points(&self, ids: Range<u32>) -> Vec<(u32, &'static str, u64, u64)> {
        let slot = hit_slot(ids.start);
        ids.filter_map(|id| {
            let probe = &self.probes.get(id as usize)?.probe;
            let (program, aux0, aux1, nibble) = program_of(&probe.kind);
            Some((id, program, probe.file_offset, cookie(id, aux0, aux1, nibble, slot)))
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gobin::Signature;

    fn plan(n: usize) -> ProbePlan {
        let probe = Probe {
            kind: ProbeKind::SliceGrowCall,
            address: 0x1000,
            file_offset: 0x1000,
            caller: "main.f".into(),
            package: "main".into(),
            target: "runtime.growslice".into(),
            emulated: true,
            signature: Signature::GrowsliceGo120,
            after: None,
        };
        ProbePlan { probes: vec![probe; n], ..ProbePlan::default() }
    }

    #[test]
    fn ids_given_back_are_taken_again() {
        let mut table = ProbeTable::with_capacity(100);
        let bin = Path::new("/bin/x");
        let a = table.add(bin, &plan(40)).unwrap();
        let b = table.add(bin, &plan(40)).unwrap();
        assert_eq!((a.clone(), b.clone()), (0..40, 40..80));
        assert_eq!(table.room(), 20);
        assert!(matches!(table.add(bin, &plan(30)), Err(ProbeError::TooManyProbes { wanted: 30, room: 20 })));
        table.release(a);
        table.release(b);
        // Neighbours merge: one plan of 80 fits where two of 40 were.
        assert_eq!(table.room(), 80);
        assert_eq!(table.add(bin, &plan(80)).unwrap(), 0..80);
        assert_eq!(table.add(bin, &plan(20)).unwrap(), 80..100);
        assert_eq!(table.room(), 0);
    }
}
