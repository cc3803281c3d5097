//! The uprobe links and what each one covers, so single probes can be switched
//! off and on (the governor's duty cycles) although a multi-offset link cannot
//! drop one offset: a probe to be switched is first moved out of its group link
//! into a link of its own.

use std::{
    collections::HashMap,
    fs::File,
    num::NonZeroU32,
    os::fd::AsRawFd,
    path::{Path, PathBuf},
    sync::Arc,
};

use aya::programs::uprobe::UProbeScope;

use super::{ProbeError, Tracer, attach::Attached};

/// One uprobe link: a program on some offsets of one file.
struct Link {
    program: &'static str,
    /// Held open so re-attaching reaches the same inode whatever happens to the path.
    file: Arc<File>,
    name: String,
    scope: UProbeScope,
    /// (file offset, cookie); the cookie's low 32 bits are the probe id.
    points: Vec<(u64, Option<u64>)>,
    /// The attachment this link belongs to.
    owner: u32,
    /// `None` while switched off.
    id: Option<Attached>,
}

impl Link {
    fn probe_ids(&self) -> impl Iterator<Item = u32> + '_ {
        self.points.iter().filter_map(|(_, cookie)| cookie.map(|c| c as u32))
    }
}

/// Every link of a tracer, and which link holds each probe.
#[derive(Default)]
pub struct Links {
    links: Vec<Option<Link>>,
    by_probe: HashMap<u32, usize>,
    next_owner: u32,
}

impl Links {
    /// A fresh owner tag for one attachment's links.
    pub fn new_owner(&mut self) -> u32 {
        self.next_owner += 1;
        self.next_owner
    }
}

fn attach_error(program: &'static str, count: usize, name: &str, e: impl std::fmt::Display) -> ProbeError {
    ProbeError::Attach { program, count, binary: name.to_string(), reason: e.to_string() }
}

impl Tracer {
    fn link_up(&mut self, link: &Link) -> Result<Attached, ProbeError> {
        let path = PathBuf::from(format!("/proc/self/fd/{}", link.file.as_raw_fd()));
        self.attach_points(link.program, &path, &link.name, link.scope, &link.points)
    }

    /// Closes a link on a thread of its own ([`Tracer::detach_points`]), so that the
    /// probes of a unit go down together and a switch does not leave the next
    /// probes in its order attached for a grace period.
    fn link_down(&mut self, program: &'static str, id: Attached) {
        self.detach_points(program, id, &Default::default());
    }

    /// Attaches `program` to `points` of `binary` as one link of `owner`.
    pub(super) fn add_link(
        &mut self,
        program: &'static str,
        binary: &Path,
        scope: UProbeScope,
        points: Vec<(u64, Option<u64>)>,
        owner: u32,
    ) -> Result<(), ProbeError> {
        let name = binary.display().to_string();
        let file = File::open(binary).map_err(|e| attach_error(program, points.len(), &name, e))?;
        let mut link = Link { program, file: Arc::new(file), name, scope, points, owner, id: None };
        link.id = Some(self.link_up(&link)?);
        let index = self.links.links.len();
        for probe in link.probe_ids() {
            self.links.by_probe.insert(probe, index);
        }
        self.links.links.push(Some(link));
        Ok(())
    }

    /// Attaches `program` at `offset` of this process's own executable, for this
    /// process only (calibration: the program returns at once, as this process is
    /// not traced); [`Tracer::detach_owner`] undoes it.
    pub fn attach_to_self(&mut self, program: &'static str, offset: u64) -> Result<u32, ProbeError> {
        let owner = self.links.new_owner();
        let pid = NonZeroU32::new(std::process::id()).expect("a pid is never 0");
        self.add_link(program, Path::new("/proc/self/exe"), UProbeScope::OneProcess(pid), vec![(offset, None)], owner)?;
        Ok(owner)
    }

    /// Detaches what [`Tracer::attach_to_self`] attached.
    pub fn detach_owner(&mut self, owner: u32) {
        self.remove_links(owner);
    }

    /// Whether probe `id` is attached now.
    pub fn probe_attached(&self, id: u32) -> bool {
        self.links.by_probe.get(&id).and_then(|&i| self.links.links[i].as_ref()).is_some_and(|l| l.id.is_some())
    }

    /// Switches probe `id` off or on, leaving every other probe as it is. The first
    /// switch moves it out of its group link (the group is re-attached without it).
    pub fn set_probe_attached(&mut self, id: u32, on: bool) -> Result<(), ProbeError> {
        let Some(&index) = self.links.by_probe.get(&id) else { return Ok(()) };
        let Some(link) = self.links.links[index].take() else { return Ok(()) };
        let solo_index = if link.points.len() > 1 {
            if on {
                self.links.links[index] = Some(link);
                return Ok(());
            }
            self.split_off(index, link, id)?
        } else {
            self.links.links[index] = Some(link);
            index
        };
        let mut solo = self.links.links[solo_index].take().expect("present");
        let result = match (on, solo.id.take()) {
            (true, None) => self.link_up(&solo).map(|up| solo.id = Some(up)),
            (false, Some(up)) => {
                self.link_down(solo.program, up);
                Ok(())
            }
            (_, up) => {
                solo.id = up;
                Ok(())
            }
        };
        self.links.links[solo_index] = Some(solo);
        result
    }

    /// Re-attaches group link `link` (taken from slot `index`) without probe `id`,
    /// which gets a detached link of its own; returns that link's index.
    fn split_off(&mut self, index: usize, mut link: Link, id: u32) -> Result<usize, ProbeError> {
        let at = link.points.iter().position(|(_, c)| c.is_some_and(|c| c as u32 == id)).expect("probe in its link");
        let point = link.points.remove(at);
        // Up before down: for a moment two links report the group's hits twice
        // (harmless to the detectors: the same goroutine, the same object), rather
        // than a moment without them, which could lose a Remove's exit.
        let relinked = if link.points.is_empty() { Err(None) } else { self.link_up(&link).map_err(Some) };
        if let Some(up) = link.id.take() {
            self.link_down(link.program, up);
        }
        let solo = Link {
            program: link.program,
            file: link.file.clone(),
            name: link.name.clone(),
            scope: link.scope,
            points: vec![point],
            owner: link.owner,
            id: None,
        };
        let solo_index = self.links.links.len();
        self.links.links.push(Some(solo));
        self.links.by_probe.insert(id, solo_index);
        let result = match relinked {
            Ok(up) => {
                link.id = Some(up);
                Ok(solo_index)
            }
            Err(None) => Ok(solo_index),
            Err(Some(e)) => Err(e),
        };
        self.links.links[index] = Some(link);
        result
    }

    /// Detaches and forgets every link of `owner`.
    pub(super) fn remove_links(&mut self, owner: u32) {
        self.remove_links_where(|l| l.owner == owner);
    }

    /// Detaches and forgets every link.
    pub fn detach_all(&mut self) {
        self.remove_links_where(|_| true);
    }

    fn remove_links_where(&mut self, pick: impl Fn(&Link) -> bool) {
        for index in 0..self.links.links.len() {
            if self.links.links[index].as_ref().is_some_and(&pick) {
                let link = self.links.links[index].take().expect("present");
                for probe in link.probe_ids() {
                    self.links.by_probe.remove(&probe);
                }
                if let Some(up) = link.id {
                    self.link_down(link.program, up);
                }
            }
        }
        // Keep indexes stable while any link lives; start over once all are gone.
        if self.links.links.iter().all(Option::is_none) {
            self.links.links.clear();
        }
    }
}
