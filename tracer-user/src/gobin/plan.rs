//! The probe plan: every probe ghostrace may place in one binary, and what is missing.
//!
//! Call sites are `CALL rel32` (arm64: `BL`) instructions whose target is a runtime
//! entry point ghostrace traces, inside functions selected by a [`Scope`]. The
//! entry points per Go version are read from Go's `src/runtime/slice.go`,
//! `map.go` / `map_swiss.go` / `map_fast*.go` of 1.19 and 1.21–1.27.

use std::collections::HashMap;

use tracer_common::{LIST_REG_NONE, ListOp};

use crate::events::MapOp;

use super::disasm::{self, CallSite};
use super::scope::{ScopeFilter, goroot_src, package_of, tested_packages, unescape_package};
use super::{GoBinary, GoVersion, Scope};

/// What a probe observes.
///
/// Serialized adjacently tagged: `{"kind": "map_write_call", "detail": "assign"}`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case", tag = "kind", content = "detail")]
pub enum ProbeKind {
    /// CALL to any slice-growth entry point.
    SliceGrowCall,
    /// CALL to `mapiterinit` / `mapIterStart`.
    MapIterStartCall,
    /// CALL to `mapiternext` / `mapIterNext`.
    MapIterNextCall,
    /// CALL to a map write (`mapassign*`, `mapdelete*`, `mapclear`).
    MapWriteCall(MapOp),
    /// First instruction of an inlined body of a mutating `container/list.List`
    /// method, `op` (or a CALL of an out-of-line one); the list and the element (or
    /// mark) are in these registers: x86 hardware numbers on amd64 (AX=0 CX=1 DX=2
    /// BX=3 SP=4 BP=5 SI=6 DI=7 R8..R15=8..15), Xn numbers on arm64;
    /// [`tracer_common::LIST_REG_NONE`] for methods without an element, whose list
    /// is `list_disp` bytes past its register (a `list.List` field; 0 otherwise).
    /// (Named for Remove, the first method traced, like its record.)
    ListRemoveEnter {
        list_reg: u8,
        elem_reg: u8,
        list_disp: u8,
        #[serde(serialize_with = "list_op_name")]
        op: ListOp,
    },
    /// An exit of an inlined mutation body: the first instruction after it, or the
    /// first emulated one straight-line code reaches from there without passing
    /// anything on (see `MapWriteExit`).
    ListRemoveExit,
    /// The end of a map write (placed only because `map_concurrent_write` needs
    /// every write's interval; none where the next write's CALL, whose probe ends
    /// it, is reached first): the first emulated instruction after the CALL
    /// reached through straight-line code that synchronizes with nothing (one
    /// cheap trap), else the instruction after the CALL (rarely emulated: a
    /// full-price trap).
    MapWriteExit,
}

fn list_op_name<S: serde::Serializer>(op: &ListOp, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(op.method())
}

impl ProbeKind {
    /// The probe marks the end of an operation (not a call site itself).
    pub fn is_exit(&self) -> bool {
        matches!(self, Self::ListRemoveExit | Self::MapWriteExit)
    }
}

/// Register arguments of the probed runtime function at the probed instruction
/// (Go ABIInternal, amd64 order AX, BX, CX, DI, SI, R8, R9, …; GO-RUNTIME.md).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Signature {
    /// Go ≤ 1.19 `growslice(et, old slice, cap)`: AX=et BX=old.ptr CX=old.len DI=old.cap SI=cap.
    GrowsliceGo119,
    /// Go 1.20+ `growslice(oldPtr, newLen, oldCap, num, et)`: AX BX CX DI SI; also
    /// `growsliceNoAlias`.
    GrowsliceGo120,
    /// Go 1.26+ `growsliceBuf[NoAlias](oldPtr, newLen, oldCap, num, et, bufPtr, bufLen)`:
    /// the 1.20 five plus R8=bufPtr R9=bufLen.
    GrowsliceBuf,
    /// `mapiterinit(t, h, it)`: AX=type BX=*hmap CX=*hiter.
    MapIterInit,
    /// Go 1.24+ `mapIterStart(t, m, it)`: AX=type BX=*maps.Map CX=*maps.Iter.
    MapIterStart,
    /// `mapiternext(it)` / `mapIterNext(it)`: AX=iterator.
    MapIterNext,
    /// `mapassign*` / `mapdelete*`: AX=maptype BX=map, key from CX (CX+DI for strings).
    MapWrite,
    /// `mapclear(t, m)`: AX=maptype BX=map.
    MapClear,
    /// A mutating `*List` method, inlined or called: list and element in the
    /// registers of the kind.
    ListMutation,
    /// `gcMarkTermination`: only its body is probed, to count GC cycles.
    GcMarkTermination,
}

/// One probe location.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Probe {
    #[serde(flatten)]
    pub kind: ProbeKind,
    /// Virtual address of the probed instruction.
    pub address: u64,
    /// Offset in the ELF file (what uprobes attach to).
    pub file_offset: u64,
    /// Function containing the probe.
    pub caller: String,
    /// Package of `caller` (unescaped import path).
    pub package: String,
    /// Runtime function called (or inlined), e.g. `runtime.growslice`.
    pub target: String,
    /// The instruction is one the kernel emulates (one trap per hit).
    pub emulated: bool,
    pub signature: Signature,
    /// For calls: the instruction after the CALL, where results are in registers.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub after: Option<Site>,
}

/// An instruction location.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Site {
    pub address: u64,
    pub file_offset: u64,
    pub emulated: bool,
}

/// A traced runtime function itself: where to probe its entry and its returns.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct RuntimeFunc {
    pub name: String,
    pub role: Role,
    pub signature: Signature,
    pub entry: Site,
    /// First instruction after the prologue's stack check (runs once per call;
    /// the morestack path re-enters at `entry`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub body: Option<Site>,
    /// Every RET instruction (never uretprobes: GO-RUNTIME.md "Why not uretprobes").
    pub returns: Vec<Site>,
    /// Call sites of this function in scope.
    pub call_sites: usize,
}

/// What a runtime entry point is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    SliceGrow,
    MapIterStart,
    MapIterNext,
    MapAssign,
    MapDelete,
    MapClear,
    /// An out-of-line mutating `container/list.List` method: PushBackList and
    /// PushFrontList always (too large to inline), the others only when built
    /// without inlining (e.g. `-gcflags=-l`).
    ListMutation,
    /// `runtime.gcMarkTermination`: a GC cycle's marking ends and its sweep follows
    /// (runtime/mgc.go, 1.19–1.27). Probed at its body, never at call sites.
    GcMarkTermination,
}

/// Something the plan wanted and did not find, and why.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Missing {
    pub what: String,
    pub reason: String,
}

/// Every probe for one binary and scope.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct ProbePlan {
    pub probes: Vec<Probe>,
    pub functions: Vec<RuntimeFunc>,
    /// Inlined bodies of mutating `container/list.List` methods in scope.
    pub list_sites: Vec<super::listsites::ListSite>,
    pub missing: Vec<Missing>,
}

impl ProbePlan {
    /// Keeps at most `room` probes, the most telling first: list mutations, map
    /// writes, map ranges, then slice growth (the most numerous and the hottest),
    /// each call site's probes whole (a write's exit goes with its CALL). Returns
    /// how many probes were left out.
    pub fn keep_within(&mut self, room: usize) -> usize {
        if self.probes.len() <= room {
            return 0;
        }
        let rank = |kind: &ProbeKind| match kind {
            ProbeKind::ListRemoveEnter { .. } | ProbeKind::ListRemoveExit => 0,
            ProbeKind::MapWriteCall(_) | ProbeKind::MapWriteExit => 1,
            ProbeKind::MapIterStartCall | ProbeKind::MapIterNextCall => 2,
            ProbeKind::SliceGrowCall => 3,
        };
        // A caller's probes of one rank stay together: exits pair with their calls.
        let mut groups: Vec<((u8, &str), Vec<usize>)> = Vec::new();
        let mut index: HashMap<(u8, &str), usize> = HashMap::new();
        for (i, probe) in self.probes.iter().enumerate() {
            let key = (rank(&probe.kind), probe.caller.as_str());
            let at = *index.entry(key).or_insert_with(|| {
                groups.push((key, Vec::new()));
                groups.len() - 1
            });
            groups[at].1.push(i);
        }
        groups.sort_by_key(|(key, _)| key.0);
        let mut keep = vec![false; self.probes.len()];
        let mut kept = 0;
        for (_, members) in &groups {
            if kept + members.len() <= room {
                kept += members.len();
                members.iter().for_each(|&i| keep[i] = true);
            }
        }
        let before = self.probes.len();
        let mut flags = keep.into_iter();
        self.probes.retain(|_| flags.next().unwrap_or(false));
        before - self.probes.len()
    }
}

/// A traced entry point: symbol, role, and the Go versions `[from, until)` whose
/// compiler emits calls to it by default (None: only in some builds). Its absence
/// in such a version is reported as missing.
struct EntryPoint {
    name: &'static str,
    role: Role,
    expected: Option<((u32, u32), (u32, u32))>,
}

/// `until` of an entry point the newest Go still calls.
const ALWAYS: (u32, u32) = (u32::MAX, 0);

const fn ep(name: &'static str, role: Role, from: (u32, u32), until: (u32, u32)) -> EntryPoint {
    EntryPoint { name, role, expected: Some((from, until)) }
}

const fn ep_optional(name: &'static str, role: Role) -> EntryPoint {
    EntryPoint { name, role, expected: None }
}

// Slice-growth functions are every function named `growslice*` in Go
// src/runtime/slice.go. The compiler (src/cmd/compile/internal/ssagen/ssa.go,
// 1.26–1.27) calls growsliceBuf for stack-buffered slices whose capacity is used,
// and the *NoAlias variants only under GOEXPERIMENT=runtimefreegc. The
// `moveSlice*` functions (1.26+) copy a stack buffer to the heap without growing
// it and are not traced. Map iteration goes through mapIterStart/mapIterNext from
// 1.24 (swiss maps, src/runtime/map_swiss.go); mapiterinit/mapiternext stay for
// `//go:linkname` users and GOEXPERIMENT=noswissmap (1.24–1.25).
const ENTRY_POINTS: &[EntryPoint] = &[
    ep("runtime.growslice", Role::SliceGrow, (1, 0), ALWAYS),
    ep_optional("runtime.growsliceNoAlias", Role::SliceGrow),
    ep("runtime.growsliceBuf", Role::SliceGrow, (1, 26), ALWAYS),
    ep_optional("runtime.growsliceBufNoAlias", Role::SliceGrow),
    ep("runtime.mapiterinit", Role::MapIterStart, (1, 0), (1, 24)),
    ep("runtime.mapIterStart", Role::MapIterStart, (1, 24), ALWAYS),
    ep("runtime.mapiternext", Role::MapIterNext, (1, 0), (1, 24)),
    ep("runtime.mapIterNext", Role::MapIterNext, (1, 24), ALWAYS),
    ep("runtime.mapassign", Role::MapAssign, (1, 0), ALWAYS),
    ep("runtime.mapassign_fast32", Role::MapAssign, (1, 0), ALWAYS),
    ep("runtime.mapassign_fast32ptr", Role::MapAssign, (1, 0), ALWAYS),
    ep("runtime.mapassign_fast64", Role::MapAssign, (1, 0), ALWAYS),
    ep("runtime.mapassign_fast64ptr", Role::MapAssign, (1, 0), ALWAYS),
    ep("runtime.mapassign_faststr", Role::MapAssign, (1, 0), ALWAYS),
    ep("runtime.mapdelete", Role::MapDelete, (1, 0), ALWAYS),
    ep("runtime.mapdelete_fast32", Role::MapDelete, (1, 0), ALWAYS),
    ep("runtime.mapdelete_fast64", Role::MapDelete, (1, 0), ALWAYS),
    ep("runtime.mapdelete_faststr", Role::MapDelete, (1, 0), ALWAYS),
    ep("runtime.mapclear", Role::MapClear, (1, 0), ALWAYS),
    ep_optional(super::LIST_REMOVE, Role::ListMutation),
    ep_optional("container/list.(*List).PushBack", Role::ListMutation),
    ep_optional("container/list.(*List).PushFront", Role::ListMutation),
    ep_optional("container/list.(*List).PushBackList", Role::ListMutation),
    ep_optional("container/list.(*List).PushFrontList", Role::ListMutation),
    ep_optional("container/list.(*List).InsertBefore", Role::ListMutation),
    ep_optional("container/list.(*List).InsertAfter", Role::ListMutation),
    ep_optional("container/list.(*List).MoveToFront", Role::ListMutation),
    ep_optional("container/list.(*List).MoveToBack", Role::ListMutation),
    ep_optional("container/list.(*List).MoveBefore", Role::ListMutation),
    ep_optional("container/list.(*List).MoveAfter", Role::ListMutation),
    ep_optional("container/list.(*List).Init", Role::ListMutation),
    ep("runtime.gcMarkTermination", Role::GcMarkTermination, (1, 0), ALWAYS),
];

/// The names of every runtime entry point ghostrace traces in some version.
pub fn entry_point_names() -> impl Iterator<Item = &'static str> {
    ENTRY_POINTS.iter().map(|e| e.name)
}

fn signature(name: &str, role: Role, v: GoVersion) -> Signature {
    match role {
        Role::SliceGrow if name.starts_with("runtime.growsliceBuf") => Signature::GrowsliceBuf,
        Role::SliceGrow if v.at_least(1, 20) => Signature::GrowsliceGo120,
        Role::SliceGrow => Signature::GrowsliceGo119,
        Role::MapIterStart if name == "runtime.mapIterStart" => Signature::MapIterStart,
        Role::MapIterStart => Signature::MapIterInit,
        Role::MapIterNext => Signature::MapIterNext,
        Role::MapAssign | Role::MapDelete => Signature::MapWrite,
        Role::MapClear => Signature::MapClear,
        Role::ListMutation => Signature::ListMutation,
        Role::GcMarkTermination => Signature::GcMarkTermination,
    }
}

/// Probe kind at a CALL of the `role` function `name`. An out-of-line list method
/// has the receiver in the first argument register (amd64 AX, arm64 R0) and its
/// element in the next free ones: `Remove(e)`, `MoveToFront(e)`, `MoveBefore(e,
/// mark)`… the second (BX, R1); `InsertBefore(v any, mark)` the fourth (DI, R3),
/// after the interface's two words.
fn call_kind(name: &str, role: Role, arch: super::Arch) -> Option<ProbeKind> {
    Some(match role {
        Role::ListMutation => {
            let op = super::listsites::list_op(name)?;
            let arg = |amd64: u8, arm64: u8| if arch == super::Arch::Amd64 { amd64 } else { arm64 };
            let elem_reg = match op {
                _ if !op.checks_element() => LIST_REG_NONE,
                ListOp::InsertBefore | ListOp::InsertAfter => arg(7, 3),
                _ => arg(3, 1),
            };
            ProbeKind::ListRemoveEnter { list_reg: 0, elem_reg, list_disp: 0, op }
        }
        Role::SliceGrow => ProbeKind::SliceGrowCall,
        Role::MapIterStart => ProbeKind::MapIterStartCall,
        Role::MapIterNext => ProbeKind::MapIterNextCall,
        Role::MapAssign => ProbeKind::MapWriteCall(MapOp::Assign),
        Role::MapDelete => ProbeKind::MapWriteCall(MapOp::Delete),
        Role::MapClear => ProbeKind::MapWriteCall(MapOp::Clear),
        Role::GcMarkTermination => return None,
    })
}

/// Probe kind at the instruction after a CALL of a `role` function, where one is
/// needed: the end of an out-of-line `Remove`, of a map write.
fn exit_kind(role: Role) -> Option<ProbeKind> {
    match role {
        Role::ListMutation => Some(ProbeKind::ListRemoveExit),
        Role::MapAssign | Role::MapDelete | Role::MapClear => Some(ProbeKind::MapWriteExit),
        _ => None,
    }
}

/// A runtime entry point found in this binary.
struct Target {
    name: &'static str,
    role: Role,
    entry: u64,
    end: u64,
}

pub(crate) fn build(bin: &GoBinary, scope: &Scope) -> ProbePlan {
    let mut plan = ProbePlan::default();
    let version = bin.version();
    let tab = bin.pclntab();

    // One pass over the function table: find the entry points, pick functions in scope.
    let mut targets: Vec<Target> = Vec::new();
    let mut in_scope: Vec<(u64, u64, &str, String)> = Vec::new();
    // A test binary that records no module names its package under test only
    // through the external test package: one more pass over the names then.
    let tested = match bin.build_info().main {
        None if matches!(scope, Scope::Default | Scope::Std) => tested_packages(
            (0..tab.nfunc()).filter_map(|i| tab.row(i).ok().and_then(|row| tab.func(&row).ok()).and_then(|f| f.name().ok())),
        ),
        _ => Vec::new(),
    };
    let filter = ScopeFilter::new(scope, bin.build_info(), goroot_src(tab.file_names()), &tested);
    let mut pkg_cache: HashMap<&str, Option<String>> = HashMap::new();
    for i in 0..tab.nfunc() {
        let Ok(row) = tab.row(i) else { continue };
        let Ok(func) = tab.func(&row) else { continue };
        let Ok(name) = func.name() else { continue };
        if (name.starts_with("runtime.") || name.starts_with("container/list."))
            && let Some(e) = ENTRY_POINTS.iter().find(|e| e.name == name)
        {
            targets.push(Target { name: e.name, role: e.role, entry: row.entry, end: row.end });
        }
        let Some(pkg) = package_of(name) else { continue };
        let selected = match pkg_cache.get(pkg) {
            Some(selected) => selected.clone(),
            None => {
                let file = filter.wants_file().then(|| func.file_line(row.entry).ok().and_then(|(f, _)| f)).flatten();
                let unescaped = unescape_package(pkg);
                let verdict = filter.includes(&unescaped, file);
                let selected = verdict.holds.then(|| unescaped.into_owned());
                if verdict.settled {
                    pkg_cache.insert(pkg, selected.clone());
                }
                selected
            }
        };
        if let Some(pkg) = selected {
            in_scope.push((row.entry, row.end, name, pkg));
        }
    }
    targets.sort_by_key(|t| t.entry);

    for e in ENTRY_POINTS {
        let expected = e.expected.is_some_and(|(from, until)| {
            version.at_least(from.0, from.1) && (until == ALWAYS || !version.at_least(until.0, until.1))
        });
        if expected && !targets.iter().any(|t| t.name == e.name) {
            plan.missing.push(Missing {
                what: e.name.to_string(),
                reason: format!("not linked into this binary (nothing calls it); {version} has it"),
            });
        }
    }

    let find_target = |addr: u64| targets.binary_search_by_key(&addr, |t| t.entry).ok();
    let mut counts = vec![0usize; targets.len()];
    for (entry, end, name, pkg) in &in_scope {
        let Some(code) = bin.code(*entry, *end) else { continue };
        // Most functions call none of the entry points: a byte scan for a CALL
        // rel32 encoding that would reach one skips decoding them (a superset
        // test; decoding then finds the real instruction boundaries).
        if bin.arch() == super::Arch::Amd64 && !disasm::may_call_rel32(code, *entry, |t| find_target(t).is_some()) {
            continue;
        }
        let facts = disasm::scan(bin.arch(), code, *entry, |t| find_target(t).is_some());
        // A map write's CALL: its probe ends the goroutine's previous write
        // (map_write_call), so a write whose straight-line code reaches it needs no
        // exit probe of its own (and one at the same address would run in no set
        // order with it: a uprobe's consumers have none).
        let starts_map_write = |at: u64| {
            let writes = |i: usize| exit_kind(targets[i].role) == Some(ProbeKind::MapWriteExit);
            facts.calls.iter().any(|c| c.addr == at && find_target(c.target).is_some_and(writes))
        };
        for &CallSite { addr, target, next, next_emulated } in &facts.calls {
            let Some(ti) = find_target(target) else { continue };
            let t = &targets[ti];
            counts[ti] += 1;
            let Some(kind) = call_kind(t.name, t.role, bin.arch()) else { continue };
            let (Some(file_offset), Some(next_offset)) = (bin.file_offset(addr), bin.file_offset(next)) else {
                continue;
            };
            let after = Site { address: next, file_offset: next_offset, emulated: next_emulated };
            if let Some(exit) = exit_kind(t.role) {
                // A map write's interval may end at the first emulated instruction
                // straight-line code reaches after the return (disasm::exit_site).
                // Out-of-line list mutations' exits keep the next one.
                let found = (exit == ProbeKind::MapWriteExit).then(|| disasm::exit_site(bin.arch(), code, *entry, next)).flatten();
                // None where that is the next write's CALL: its probe ends this write.
                if !found.is_some_and(starts_map_write) {
                    let moved = found.and_then(|at| Some((at, bin.file_offset(at)?)));
                    let (address, file_offset, emulated) =
                        moved.map_or((next, next_offset, next_emulated), |(at, off)| (at, off, true));
                    plan.probes.push(Probe {
                        kind: exit,
                        address,
                        file_offset,
                        caller: name.to_string(),
                        package: pkg.clone(),
                        target: t.name.to_string(),
                        emulated,
                        signature: signature(t.name, t.role, version),
                        after: None,
                    });
                }
            }
            plan.probes.push(Probe {
                kind,
                address: addr,
                file_offset,
                caller: name.to_string(),
                package: pkg.clone(),
                target: t.name.to_string(),
                emulated: true,
                signature: signature(t.name, t.role, version),
                after: Some(after),
            });
        }
    }

    for (t, calls) in targets.iter().zip(counts) {
        let Some(code) = bin.code(t.entry, t.end) else { continue };
        let facts = disasm::scan(bin.arch(), code, t.entry, |_| false);
        let site = |addr: u64, emulated: bool| {
            bin.file_offset(addr).map(|file_offset| Site { address: addr, file_offset, emulated })
        };
        let Some(entry) = site(t.entry, disasm::emulated_at(bin.arch(), code, t.entry)) else { continue };
        plan.functions.push(RuntimeFunc {
            name: t.name.to_string(),
            role: t.role,
            signature: signature(t.name, t.role, version),
            entry,
            body: facts.after_stack_check.and_then(|(a, emu)| site(a, emu)),
            returns: facts.returns.iter().filter_map(|&a| site(a, false)).collect(),
            call_sites: calls,
        });
    }
    super::listsites::add_list_sites(bin, &in_scope, &mut plan);
    plan.probes.sort_by_key(|p| (p.address, matches!(p.kind, ProbeKind::ListRemoveEnter { .. })));
    plan
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_follow_version() {
        let v119 = GoVersion::new(1, 19, 8);
        let v127 = GoVersion::new(1, 27, 3);
        assert_eq!(signature("runtime.growslice", Role::SliceGrow, v119), Signature::GrowsliceGo119);
        assert_eq!(signature("runtime.growslice", Role::SliceGrow, v127), Signature::GrowsliceGo120);
        assert_eq!(signature("runtime.growsliceBufNoAlias", Role::SliceGrow, v127), Signature::GrowsliceBuf);
        assert_eq!(signature("runtime.mapIterStart", Role::MapIterStart, v127), Signature::MapIterStart);
        let amd64 = crate::gobin::Arch::Amd64;
        assert_eq!(call_kind("runtime.mapclear", Role::MapClear, amd64), Some(ProbeKind::MapWriteCall(MapOp::Clear)));
        assert_eq!(call_kind("runtime.gcMarkTermination", Role::GcMarkTermination, amd64), None);
        let list = |m: &str, arch| call_kind(&format!("container/list.(*List).{m}"), Role::ListMutation, arch);
        let enter = |elem_reg, op| Some(ProbeKind::ListRemoveEnter { list_reg: 0, elem_reg, list_disp: 0, op });
        assert_eq!(list("Remove", amd64), enter(3, ListOp::Remove));
        assert_eq!(list("InsertAfter", amd64), enter(7, ListOp::InsertAfter));
        assert_eq!(list("InsertBefore", crate::gobin::Arch::Arm64), enter(3, ListOp::InsertBefore));
        assert_eq!(list("MoveBefore", crate::gobin::Arch::Arm64), enter(1, ListOp::MoveBefore));
        assert_eq!(list("PushBackList", amd64), enter(LIST_REG_NONE, ListOp::PushBackList));
    }

    #[test]
    fn entry_points_are_unique() {
        let mut names: Vec<_> = entry_point_names().collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), ENTRY_POINTS.len());
    }

    #[test]
    fn a_plan_too_large_keeps_lists_and_maps_and_whole_call_sites() {
        let probe = |kind, caller: &str| Probe {
            kind,
            address: 0,
            file_offset: 0,
            caller: caller.into(),
            package: "main".into(),
            target: String::new(),
            emulated: true,
            signature: Signature::MapWrite,
            after: None,
        };
        let assign = ProbeKind::MapWriteCall(MapOp::Assign);
        let mut plan = ProbePlan {
            probes: vec![
                probe(ProbeKind::SliceGrowCall, "main.a"),
                probe(assign, "main.b"),
                probe(ProbeKind::SliceGrowCall, "main.c"),
                probe(ProbeKind::ListRemoveEnter { list_reg: 0, elem_reg: 3, list_disp: 0, op: ListOp::Remove }, "main.d"),
                probe(ProbeKind::MapWriteExit, "main.b"),
                probe(assign, "main.e"),
                probe(ProbeKind::MapWriteExit, "main.e"),
            ],
            ..ProbePlan::default()
        };
        assert_eq!(plan.clone().keep_within(7), 0);
        // Room for 4: the list site, one map write with its exit, then one probe
        // more: the other write (two probes) does not fit, a growth site does.
        assert_eq!(plan.keep_within(4), 3);
        let kept: Vec<(&str, bool)> = plan.probes.iter().map(|p| (p.caller.as_str(), p.kind.is_exit())).collect();
        assert_eq!(kept, [("main.a", false), ("main.b", false), ("main.d", false), ("main.b", true)]);
    }
}
