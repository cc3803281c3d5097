//! The uprobe links and what each one covers. A multi-offset link cannot drop one
//! offset, and every registration or unregistration of a probe write-locks the
//! memory map of each process running the binary (its page faults, `mmap` and
//! `fork` wait) besides kernel-wide locks, so links are laid out for as few of
//! them as possible: probes start in links of at most [`CHUNK`] probes; the first
//! time one is switched its chunk is rebuilt once without it, and from then on it
//! is switched alone (a probe switched once is likely to be switched again, one
//! never switched sits cheaply in its chunk); the probes the governor attaches for
//! a window go up together as one batch, one link per program, and come down
//! together.

use std::{
    collections::{BTreeMap, HashMap},
    fs::File,
    num::NonZeroU32,
    os::fd::AsRawFd,
    path::Path,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
};

use aya::programs::uprobe::UProbeScope;

use super::{ProbeError, Tracer, attach::Attached};
use crate::sys::thread_cpu_ns;

/// Probe ids per chunk link: the first switch of one of its probes re-registers at
/// most this many.
pub const CHUNK: u32 = 64;

/// One uprobe link: a program on some offsets of one file.
struct Link {
    program: &'static str,
    /// The attachment this link belongs to.
    owner: u32,
    id: Attached,
}

/// What a link is attached to.
struct Target {
    /// Held open so re-attaching reaches the same inode whatever happens to the path.
    file: File,
    name: String,
    scope: UProbeScope,
}

/// Where one probe is attached from.
struct Point {
    program: &'static str,
    target: Arc<Target>,
    offset: u64,
    cookie: u64,
    owner: u32,
    /// Attached all the time (in its chunk's link, or alone).
    resident: bool,
    /// Switched once: out of its chunk for good, in a link of its own while resident.
    solo: bool,
}

/// (file offset, cookie) of the probes of one link.
type Points = Vec<(u64, Option<u64>)>;

/// Resident links by (owner, program, chunk of ids).
type ChunkKey = (u32, &'static str, u32);

/// Every link of a tracer, and where each probe is.
#[derive(Default)]
pub struct Links {
    points: HashMap<u32, Point>,
    resident: BTreeMap<ChunkKey, Link>,
    /// The links of resident probes switched alone.
    solos: HashMap<u32, Link>,
    /// Links of probes attached together for a while, by batch.
    batches: HashMap<u64, Vec<Link>>,
    /// Links without probe ids (GC cycle ends, calibration).
    other: Vec<Link>,
    next_owner: u32,
    next_batch: u64,
}

impl Links {
    /// A fresh owner tag for one attachment's links.
    pub fn new_owner(&mut self) -> u32 {
        self.next_owner += 1;
        self.next_owner
    }
}

/// Exit probes go up after the calls they end and come down before them: alone,
/// an exit traps for nothing.
fn is_exit_program(program: &str) -> bool {
    program.ends_with("_exit")
}

fn attach_error(program: &'static str, count: usize, name: &str, e: impl std::fmt::Display) -> ProbeError {
    ProbeError::Attach { program, count, binary: name.to_string(), reason: e.to_string() }
}

impl Tracer {
    fn link_up(&mut self, program: &'static str, target: &Target, points: &[(u64, Option<u64>)]) -> Result<Attached, ProbeError> {
        let path = crate::procfs::own_fd_path(target.file.as_raw_fd());
        self.attach_points(program, &path, &target.name, target.scope, points)
    }

    /// Closes a link on a thread of its own ([`Tracer::detach_points`]): its
    /// breakpoints go at once, the grace period that follows holds nothing up.
    fn link_down(&mut self, program: &'static str, id: Attached, cpu: &Arc<AtomicU64>) {
        self.detach_points(program, id, cpu);
    }

    /// Attaches `points` of `program` as one link, adding the CPU time it took to `cpu`.
    fn new_link(
        &mut self,
        program: &'static str,
        target: &Arc<Target>,
        points: Vec<(u64, Option<u64>)>,
        owner: u32,
        cpu: &Arc<AtomicU64>,
    ) -> Result<Link, ProbeError> {
        let start = thread_cpu_ns();
        let id = self.link_up(program, target, &points);
        cpu.fetch_add(thread_cpu_ns().saturating_sub(start), Ordering::Relaxed);
        Ok(Link { program, owner, id: id? })
    }

    fn close(&mut self, link: Link, cpu: &Arc<AtomicU64>) {
        self.link_down(link.program, link.id, cpu);
    }

    /// Attaches probes `(id, program, file offset, cookie)` of `binary` for `owner`,
    /// resident. Nothing of this call stays attached when it fails.
    pub(super) fn add_probes(
        &mut self,
        owner: u32,
        binary: &Path,
        scope: UProbeScope,
        probes: Vec<(u32, &'static str, u64, u64)>,
    ) -> Result<(), ProbeError> {
        let target = open_target(binary, scope, probes.first().map_or("", |p| p.1))?;
        let mut chunks = Vec::new();
        for (id, program, offset, cookie) in probes {
            self.links.points.insert(id, Point { program, target: target.clone(), offset, cookie, owner, resident: true, solo: false });
            let key = (owner, program, id / CHUNK);
            if chunks.last() != Some(&key) && !chunks.contains(&key) {
                chunks.push(key);
            }
        }
        let cpu = Arc::new(AtomicU64::new(0));
        for key in chunks {
            if let Err(e) = self.rebuild(key, &cpu) {
                self.remove_links(owner);
                return Err(e);
            }
        }
        Ok(())
    }

    /// Attaches `program` at `offset` of `binary` as a link without probe id.
    pub(super) fn add_plain(
        &mut self,
        program: &'static str,
        binary: &Path,
        scope: UProbeScope,
        offset: u64,
        owner: u32,
    ) -> Result<(), ProbeError> {
        let target = open_target(binary, scope, program)?;
        let link = self.new_link(program, &target, vec![(offset, None)], owner, &Arc::new(AtomicU64::new(0)))?;
        self.links.other.push(link);
        Ok(())
    }

    /// Brings the resident link of `key` in line with its probes' flags: the new
    /// link up before the old one goes down (for a moment both report the same
    /// hits, harmless to the detectors, rather than a moment without them).
    fn rebuild(&mut self, key: ChunkKey, cpu: &Arc<AtomicU64>) -> Result<(), ProbeError> {
        let (owner, program, chunk) = key;
        let ids = chunk * CHUNK..(chunk + 1).saturating_mul(CHUNK);
        let mut points = Vec::new();
        let mut target = None;
        for id in ids {
            if let Some(p) = self.links.points.get(&id)
                && p.owner == owner
                && p.program == program
                && p.resident
                && !p.solo
            {
                points.push((p.offset, Some(p.cookie)));
                target.get_or_insert_with(|| p.target.clone());
            }
        }
        let fresh = match target {
            Some(target) => Some(self.new_link(program, &target, points, owner, cpu)?),
            None => None,
        };
        let old = match fresh {
            Some(link) => self.links.resident.insert(key, link),
            None => self.links.resident.remove(&key),
        };
        if let Some(old) = old {
            self.close(old, cpu);
        }
        Ok(())
    }

    /// Makes probes resident (attached all the time) or not, each in a link of its
    /// own (a probe still in its chunk leaves it: each chunk concerned is rebuilt
    /// once). The CPU time the switch took is added to `cpu` (ns). A probe that
    /// could not be switched keeps its former state.
    pub fn set_resident(&mut self, changes: &[(u32, bool)], cpu: &Arc<AtomicU64>) -> Result<(), ProbeError> {
        let mut chunks: BTreeMap<ChunkKey, Vec<u32>> = BTreeMap::new();
        let mut switched = Vec::new();
        for &(id, resident) in changes {
            if let Some(p) = self.links.points.get_mut(&id)
                && p.resident != resident
            {
                if !p.solo {
                    chunks.entry((p.owner, p.program, id / CHUNK)).or_default().push(id);
                    p.solo = true;
                }
                p.resident = resident;
                switched.push((id, resident, is_exit_program(p.program)));
            }
        }
        let mut first_error = None;
        // Exits leave first and come back last.
        switched.sort_by_key(|&(_, on, exit)| if on { exit } else { !exit });
        for (id, _, _) in switched.iter().copied().filter(|s| !s.1) {
            if let Some(link) = self.links.solos.remove(&id) {
                self.close(link, cpu);
            }
        }
        for (key, ids) in chunks {
            if let Err(e) = self.rebuild(key, cpu) {
                // The old chunk link stays up: its probes are as they were.
                for id in ids {
                    if let Some(p) = self.links.points.get_mut(&id) {
                        (p.solo, p.resident) = (false, true);
                    }
                }
                first_error.get_or_insert(e);
            }
        }
        for (id, _, _) in switched.into_iter().filter(|s| s.1) {
            let Some(p) = self.links.points.get(&id) else { continue };
            if !p.solo || self.links.solos.contains_key(&id) {
                continue;
            }
            let (program, target, point, owner) = (p.program, p.target.clone(), vec![(p.offset, Some(p.cookie))], p.owner);
            match self.new_link(program, &target, point, owner, cpu) {
                Ok(link) => {
                    self.links.solos.insert(id, link);
                }
                Err(e) => {
                    if let Some(p) = self.links.points.get_mut(&id) {
                        p.resident = false;
                    }
                    first_error.get_or_insert(e);
                }
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    /// Attaches probes `ids` together, one link per program (exits last), until
    /// [`Tracer::detach_batch`]; the CPU time it took is added to `cpu` (ns).
    /// Nothing stays attached when this fails.
    pub fn attach_batch(&mut self, ids: &[u32], cpu: &Arc<AtomicU64>) -> Result<u64, ProbeError> {
        // By (exit, program, owner): one link each.
        let mut groups: BTreeMap<(bool, &'static str, u32), (Arc<Target>, Points)> = BTreeMap::new();
        for id in ids {
            if let Some(p) = self.links.points.get(id) {
                let group = groups.entry((is_exit_program(p.program), p.program, p.owner)).or_insert_with(|| (p.target.clone(), Vec::new()));
                group.1.push((p.offset, Some(p.cookie)));
            }
        }
        let mut links = Vec::new();
        for ((_, program, owner), (target, points)) in groups {
            match self.new_link(program, &target, points, owner, cpu) {
                Ok(link) => links.push(link),
                Err(e) => {
                    for link in links.into_iter().rev() {
                        self.close(link, cpu);
                    }
                    return Err(e);
                }
            }
        }
        self.links.next_batch += 1;
        self.links.batches.insert(self.links.next_batch, links);
        Ok(self.links.next_batch)
    }

    /// Detaches a batch (exits first); the CPU time it takes is added to `cpu` (ns).
    pub fn detach_batch(&mut self, batch: u64, cpu: &Arc<AtomicU64>) {
        for link in self.links.batches.remove(&batch).unwrap_or_default().into_iter().rev() {
            self.close(link, cpu);
        }
    }

    /// Attaches `program` at `offset` of this process's own executable, for this
    /// process only (calibration: the program returns at once, as this process is
    /// not traced); [`Tracer::detach_owner`] undoes it.
    pub fn attach_to_self(&mut self, program: &'static str, offset: u64) -> Result<u32, ProbeError> {
        let owner = self.links.new_owner();
        let pid = NonZeroU32::new(std::process::id()).expect("a pid is never 0");
        self.add_plain(program, crate::procfs::own_exe(), UProbeScope::OneProcess(pid), offset, owner)?;
        Ok(owner)
    }

    /// Detaches what [`Tracer::attach_to_self`] attached.
    pub fn detach_owner(&mut self, owner: u32) {
        self.remove_links(owner);
    }

    /// Detaches and forgets every link of `owner`.
    pub(super) fn remove_links(&mut self, owner: u32) {
        self.remove_links_where(|o| o == owner);
    }

    /// Detaches and forgets every link.
    pub fn detach_all(&mut self) {
        self.remove_links_where(|_| true);
    }

    fn remove_links_where(&mut self, pick: impl Fn(u32) -> bool) {
        let cpu = Arc::new(AtomicU64::new(0));
        let mut doomed: Vec<Link> = Vec::new();
        for links in self.links.batches.values_mut() {
            doomed.extend(links.extract_if(.., |l| pick(l.owner)));
        }
        self.links.batches.retain(|_, links| !links.is_empty());
        doomed.extend(self.links.other.extract_if(.., |l| pick(l.owner)));
        let keys: Vec<ChunkKey> = self.links.resident.keys().filter(|k| pick(k.0)).copied().collect();
        doomed.extend(keys.iter().filter_map(|k| self.links.resident.remove(k)));
        doomed.extend(self.links.solos.extract_if(|_, l| pick(l.owner)).map(|(_, l)| l));
        self.links.points.retain(|_, p| !pick(p.owner));
        // Exits first.
        doomed.sort_by_key(|l| !is_exit_program(l.program));
        for link in doomed {
            self.close(link, &cpu);
        }
    }
}

fn open_target(binary: &Path, scope: UProbeScope, program: &'static str) -> Result<Arc<Target>, ProbeError> {
    let name = binary.display().to_string();
    let file = File::open(binary).map_err(|e| attach_error(program, 0, &name, e))?;
    Ok(Arc::new(Target { file, name, scope }))
}
