//! Inlined `container/list.(*List).Remove` sites: body ranges, the registers holding
//! the list and the element at the body's first instruction, and the body's exits.
//!
//! `Remove` is inlined into callers in every Go version (GO-RUNTIME.md), so its only
//! trace is the inline tree: the pcs whose inline chain contains a `Remove` entry.
//! The body starts with `if e.list == l` (Go `src/container/list/list.go`), compiled
//! to a 64-bit compare of `l` with `[e+16]` (`Element.list`), either directly or
//! through a register loaded from `[e+16]` earlier (when the caller already read
//! `e.list`, e.g. for `e.Next()`). Registers are only reported when straight-line,
//! single-entry code proves they still hold those values at the probed instruction.
//!
//! The compare is gone where the compiler proved `e.list == l`: a `Remove(e)` of an
//! element the same code just pushed (store-to-load forwarding, seen in closures
//! inlined next to their `PushBack` with Go 1.25–1.27). The body then opens by
//! loading `e.next` or `e.prev`; the list is `e.list` itself
//! ([`tracer_common::LIST_REG_ELEMENT_LIST`]).

use std::collections::{BTreeMap, HashMap};

use super::disasm::{self, Insn, Op, Operand};
use super::inline::InlineTree;
use super::pclntab::{FuncData, Pclntab};
use super::plan::{Missing, Probe, ProbeKind, ProbePlan, Signature};
use super::read::Result;
use super::{Arch, GoBinary};

/// The inlined function ghostrace tracks.
pub const LIST_REMOVE: &str = "container/list.(*List).Remove";
/// Offset of `Element.list` (Go `src/container/list/list.go`, all versions).
const ELEMENT_LIST_OFFSET: i64 = 16;
/// Caller instructions interleaved in a body that still count as inside it.
const MAX_GAP_INSNS: usize = 4;
/// Instructions searched for the `e.list == l` compare.
const COMPARE_WINDOW: usize = 8;

/// One inlined `Remove` call.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct ListSite {
    /// Function the body was inlined into.
    pub caller: String,
    pub package: String,
    /// The call's position in the caller (`entry + parentPc`).
    pub call_pc: u64,
    /// `[start, end)` pc ranges of the body (the inline tree's view; equal to the
    /// DWARF `DW_TAG_inlined_subroutine` ranges).
    pub ranges: Vec<(u64, u64)>,
    /// First instruction of the body.
    pub body_start: u64,
    /// The enter probe: `body_start`, or the call's inline-mark NOP right before
    /// it when that is equivalent (a NOP is emulated, one trap instead of two).
    pub enter: u64,
    /// The exit probes: the first instructions executed after leaving the body, or
    /// where one is single-stepped, the first emulated instruction straight-line
    /// code reaches from it without passing anything on ([`disasm::exit_site`]).
    pub exits: Vec<u64>,
    /// (list register, element register), or why they could not be determined.
    pub registers: std::result::Result<(u8, u8), String>,
}

/// Collects inlined Remove sites of the functions in scope and adds their probes.
pub(crate) fn add_list_sites(bin: &GoBinary, in_scope: &[(u64, u64, &str, String)], plan: &mut ProbePlan) {
    // From Go 1.18 funcdata are offsets from moduledata.gofunc (see inline.rs).
    if bin.module_data().is_none() && bin.version().at_least(1, 18) {
        plan.missing.push(Missing {
            what: format!("inlined {LIST_REMOVE} sites"),
            reason: "moduledata not found, so the inline trees cannot be reached".into(),
        });
        return;
    }
    let tab = bin.pclntab();
    for (entry, _end, name, pkg) in in_scope {
        let Some(row) = tab.find(*entry) else { continue };
        let Ok(func) = tab.func(&row) else { continue };
        let sites = match sites_in(bin, &tab, &func, row.end, name, pkg) {
            Ok(s) => s,
            Err(e) => {
                plan.missing.push(Missing { what: format!("inline tree of {name}"), reason: e.to_string() });
                continue;
            }
        };
        for site in sites {
            push_probes(bin, &site, plan);
            plan.list_sites.push(site);
        }
    }
}

fn push_probes(bin: &GoBinary, site: &ListSite, plan: &mut ProbePlan) {
    let what = format!("{LIST_REMOVE} inlined in {} at {:#x}", site.caller, site.enter);
    let (list_reg, elem_reg) = match &site.registers {
        Ok(r) => *r,
        Err(reason) => {
            plan.missing.push(Missing { what, reason: format!("registers undeterminable: {reason}") });
            return;
        }
    };
    let probe = |kind, addr: u64| -> Option<Probe> {
        Some(Probe {
            kind,
            address: addr,
            file_offset: bin.file_offset(addr)?,
            caller: site.caller.clone(),
            package: site.package.clone(),
            target: LIST_REMOVE.to_string(),
            emulated: disasm::emulated_at(bin.arch(), bin.code(addr, addr.saturating_add(16))?, addr),
            signature: Signature::ListRemove,
            after: None,
        })
    };
    plan.probes.extend(probe(ProbeKind::ListRemoveEnter { list_reg, elem_reg }, site.enter));
    plan.probes.extend(site.exits.iter().filter_map(|&x| probe(ProbeKind::ListRemoveExit, x)));
}

/// Inlined Remove sites of one function.
pub(crate) fn sites_in<'a>(
    bin: &'a GoBinary,
    tab: &Pclntab<'a>,
    func: &FuncData<'a>,
    end: u64,
    name: &str,
    pkg: &str,
) -> Result<Vec<ListSite>> {
    let Some(tree) = bin.inline_tree(func)? else { return Ok(Vec::new()) };
    let mut runs: Vec<(u64, u64, i32)> = Vec::new();
    func.walk_inline(|s, e, ix| {
        if ix >= 0 && s < e {
            runs.push((s, e, ix));
        }
        e < end
    })?;
    if runs.is_empty() {
        return Ok(Vec::new());
    }
    let mut chains = ChainCache { tab, func, tree, remove_of: HashMap::new(), is_remove: HashMap::new() };
    let mut bodies: BTreeMap<i32, Vec<(u64, u64)>> = BTreeMap::new();
    for &(s, e, ix) in &runs {
        if let Some(r) = chains.remove_of(ix, 0)? {
            bodies.entry(r).or_default().push((s, e));
        }
    }
    if bodies.is_empty() {
        return Ok(Vec::new());
    }
    let entry = func.entry();
    let code = bin.code(entry, end);
    let insns = match bin.arch() {
        Arch::Amd64 => bin.code(entry, end).map(|c| disasm::decode_amd64(c, entry)).unwrap_or_default(),
        Arch::Arm64 => bin.code(entry, end).map(|c| super::arm64::decode(c, entry)).unwrap_or_default(),
    };
    let mut sites = Vec::new();
    for (r, mut ranges) in bodies {
        ranges.sort_unstable();
        let ranges = merge(ranges);
        let call_pc = entry.wrapping_add(u64::from(tree.get(r)?.parent_pc));
        // The body proper usually follows the call's position (pieces before it are
        // instructions the compiler gave the body's position elsewhere), but the
        // compiler may also place the call's position after the body (seen in a loop
        // with Go 1.21–1.27): the body starts at the range whose first instructions
        // compare e.list with the list.
        let preferred = ranges.iter().map(|r| r.0).find(|&s| s > call_pc).unwrap_or(ranges[0].0);
        let candidates = std::iter::once(preferred).chain(ranges.iter().map(|r| r.0).filter(|&s| s != preferred));
        let (body_start, registers) = if insns.is_empty() {
            (preferred, Err("function code is not in the file".to_string()))
        } else {
            let mut tried = candidates.map(|start| (start, registers(&insns, call_pc, start, &ranges)));
            let first = tried.next().expect("at least one range");
            if first.1.is_ok() { first } else { tried.find(|(_, r)| r.is_ok()).unwrap_or(first) }
        };
        let exits = if insns.is_empty() { Vec::new() } else { exits(&insns, &ranges, body_start, entry, end) };
        let enter = if registers.is_ok() { cheaper_enter(&insns, call_pc, body_start) } else { body_start };
        sites.push(ListSite {
            caller: name.to_string(),
            package: pkg.to_string(),
            call_pc,
            ranges,
            body_start,
            enter,
            exits,
            registers,
        });
    }
    if let Some(code) = code {
        emulated_exits(bin.arch(), code, entry, &mut sites);
    }
    sites.sort_by_key(|s| s.enter);
    Ok(sites)
}

/// Moves single-stepped exits of the function's `sites` to emulated instructions
/// where [`disasm::exit_site`] finds one, except onto an enter probe (the two
/// probes' programs would run in no set order, and an exit run after the next
/// enter would end the wrong `Remove`), and keeps each exit once per function.
fn emulated_exits(arch: Arch, code: &[u8], entry: u64, sites: &mut [ListSite]) {
    let enters: Vec<u64> = sites.iter().map(|s| s.enter).collect();
    let emulated = |at: u64| at.checked_sub(entry).and_then(|o| usize::try_from(o).ok()).and_then(|o| code.get(o..)).is_some_and(|c| disasm::emulated_at(arch, c, at));
    let mut placed: Vec<u64> = Vec::new();
    for site in sites {
        let exits = std::mem::take(&mut site.exits);
        for x in exits {
            let at = if emulated(x) { x } else { disasm::exit_site(arch, code, entry, x).filter(|at| !enters.contains(at)).unwrap_or(x) };
            if !placed.contains(&at) {
                placed.push(at);
                site.exits.push(at);
            }
        }
        site.exits.sort_unstable();
    }
}

/// Resolves inline-tree indexes to the Remove call (if any) in their chain.
struct ChainCache<'a, 'b> {
    tab: &'b Pclntab<'a>,
    func: &'b FuncData<'a>,
    tree: InlineTree<'a>,
    remove_of: HashMap<i32, Option<i32>>,
    is_remove: HashMap<u32, bool>,
}

impl ChainCache<'_, '_> {
    fn remove_of(&mut self, ix: i32, depth: usize) -> Result<Option<i32>> {
        if ix < 0 || depth > 64 {
            return Ok(None);
        }
        if let Some(&r) = self.remove_of.get(&ix) {
            return Ok(r);
        }
        let call = self.tree.get(ix)?;
        let name_off = call.name_off;
        let is_remove = match self.is_remove.get(&name_off) {
            Some(&b) => b,
            None => {
                let b = self.tab.name(name_off)? == LIST_REMOVE;
                self.is_remove.insert(name_off, b);
                b
            }
        };
        let r = if is_remove {
            Some(ix)
        } else {
            let parent = self.func.inline_index(self.func.entry().wrapping_add(u64::from(call.parent_pc)))?;
            if parent == ix { None } else { self.remove_of(parent, depth + 1)? }
        };
        self.remove_of.insert(ix, r);
        Ok(r)
    }
}

/// The inline-mark NOP at `call_pc` when it falls straight into `body_start` and
/// nothing else jumps to `body_start`: probing it sees the same registers.
fn cheaper_enter(insns: &[Insn], call_pc: u64, body_start: u64) -> u64 {
    let Some(mark) = index_of(insns, call_pc).map(|i| insns[i]) else { return body_start };
    let falls_in = mark.addr.wrapping_add(u64::from(mark.len)) == body_start;
    let nop = mark.emulated && mark.writes == 0 && matches!(mark.op, Op::Other { ends_flow: false });
    let jumped_to = insns.iter().any(|i| matches!(i.op, Op::Branch { target, .. } if target == body_start));
    if falls_in && nop && !jumped_to { call_pc } else { body_start }
}

fn merge(ranges: Vec<(u64, u64)>) -> Vec<(u64, u64)> {
    let mut out: Vec<(u64, u64)> = Vec::new();
    for (s, e) in ranges {
        match out.last_mut() {
            Some(last) if s <= last.1 => last.1 = last.1.max(e),
            _ => out.push((s, e)),
        }
    }
    out
}

fn index_of(insns: &[Insn], addr: u64) -> Option<usize> {
    insns.binary_search_by_key(&addr, |i| i.addr).ok()
}

fn inside(ranges: &[(u64, u64)], pc: u64) -> bool {
    ranges.iter().any(|&(s, e)| pc >= s && pc < e)
}

/// (list, element) registers at `enter`, from the `e.list == l` compare.
fn registers(insns: &[Insn], call_pc: u64, enter: u64, ranges: &[(u64, u64)]) -> std::result::Result<(u8, u8), String> {
    let p = index_of(insns, enter).ok_or("body start is not an instruction boundary")?;
    // The compare sits between the call position and the first instructions of the body.
    let from = index_of(insns, call_pc).filter(|&m| m <= p).unwrap_or(p);
    let Some(c) = (from..insns.len().min(p + COMPARE_WINDOW))
        .find(|&i| matches!(insns[i].op, Op::Cmp(..)) && (i < p || inside(ranges, insns[i].addr)))
    else {
        return proven_member(insns, from, p, ranges);
    };
    let Op::Cmp(a, b) = insns[c].op else { unreachable!() };
    let (list, elem, def) = match (a, b) {
        (Operand::Mem { base, disp: ELEMENT_LIST_OFFSET }, Operand::Reg(l))
        | (Operand::Reg(l), Operand::Mem { base, disp: ELEMENT_LIST_OFFSET }) => (l, base, c),
        (Operand::Reg(x), Operand::Reg(y)) => match (load_of_list(insns, c, x), load_of_list(insns, c, y)) {
            (Some((e, d)), None) => (y, e, d),
            (None, Some((e, d))) => (x, e, d),
            _ => return Err(format!("cannot tell which register holds e.list at {:#x}", insns[c].addr)),
        },
        _ => return Err(format!("compare at {:#x} is not against e.list", insns[c].addr)),
    };
    if list == elem {
        return Err("list and element in the same register".into());
    }
    // Both registers must hold their values from `def`/`c` through `p`.
    let lo = def.min(p);
    let hi = c.max(p);
    check_single_entry(insns, lo, hi)?;
    for (i, insn) in insns.iter().enumerate().take(hi).skip(lo) {
        let span_list = i >= c.min(p);
        let mask = (1u32 << elem) | if span_list { 1u32 << list } else { 0 };
        if insn.writes & mask != 0 && i != def {
            return Err(format!("register overwritten at {:#x}", insn.addr));
        }
        if matches!(insn.op, Op::Ret | Op::Other { ends_flow: true }) {
            return Err(format!("control flow leaves at {:#x}", insn.addr));
        }
    }
    Ok((list, elem))
}

/// A body without the `e.list == l` compare (proven true): straight-line code from
/// the call position to `p`, and the body's load of `e.next` / `e.prev` (`[e+0]`,
/// `[e+8]`) nearest to `p` on straight-line code, after it or hoisted before it,
/// whose base is the element and holds it at `p`.
fn proven_member(insns: &[Insn], from: usize, p: usize, ranges: &[(u64, u64)]) -> std::result::Result<(u8, u8), String> {
    let none = || "no 64-bit compare at the start of the body".to_string();
    let flows = |i: &Insn| matches!(i.op, Op::Branch { .. } | Op::Ret | Op::Other { ends_flow: true });
    if let Some(b) = insns[from..p].iter().find(|i| flows(i)) {
        return Err(format!("no compare, and control flow branches at {:#x}", b.addr));
    }
    let member_load = |i: usize| inside(ranges, insns[i].addr) && matches!(insns[i].op, Op::Load { disp: 0 | 8, .. });
    let after = (p..insns.len().min(p + COMPARE_WINDOW)).take_while(|&i| i == p || !flows(&insns[i - 1])).find(|&i| member_load(i));
    let before = || (p.saturating_sub(COMPARE_WINDOW)..p).rev().take_while(|&i| !flows(&insns[i])).find(|&i| member_load(i));
    let l = after.or_else(before).ok_or_else(none)?;
    let Op::Load { base: elem, .. } = insns[l].op else { unreachable!() };
    let (lo, hi) = (l.min(p), l.max(p));
    check_single_entry(insns, lo, hi)?;
    // The element register holds e at p: nothing writes it from p up to a later
    // load, or from a hoisted load (which must not overwrite its own base) to p.
    if let Some(w) = insns[lo..hi].iter().find(|i| i.writes & (1 << elem) != 0) {
        return Err(format!("register overwritten at {:#x}", w.addr));
    }
    Ok((tracer_common::LIST_REG_ELEMENT_LIST, elem))
}

/// The latest `MOV reg, [e+16]` before `c` in address order: (e, index). The
/// caller proves the window single-entry, so address order covers every path.
fn load_of_list(insns: &[Insn], c: usize, reg: u8) -> Option<(u8, usize)> {
    for i in (0..c).rev() {
        match insns[i].op {
            Op::Load { dst, base, disp } if dst == reg => {
                return (disp == ELEMENT_LIST_OFFSET && base != reg).then_some((base, i));
            }
            _ if insns[i].writes & (1 << reg) != 0 => return None,
            Op::Ret | Op::Other { ends_flow: true } => return None,
            _ => {}
        }
        if c - i > 32 {
            return None;
        }
    }
    None
}

/// Every branch into `(lo, hi]` must come from inside `[lo, hi)`.
fn check_single_entry(insns: &[Insn], lo: usize, hi: usize) -> std::result::Result<(), String> {
    let (start, end) = (insns[lo].addr, insns[hi].addr);
    for (i, insn) in insns.iter().enumerate() {
        if let Op::Branch { target, .. } = insn.op
            && target > start
            && target <= end
            && !(lo..hi).contains(&i)
        {
            return Err(format!("{:#x} is also reached from {:#x}", target, insn.addr));
        }
    }
    // Falling into the window from an unconditional jump's successor is fine: the
    // window starts at `lo`.
    Ok(())
}

/// First instructions outside the body reached from `enter` through the body
/// (stray instructions that carry the body's position elsewhere are not walked).
fn exits(insns: &[Insn], ranges: &[(u64, u64)], enter: u64, entry: u64, end: u64) -> Vec<u64> {
    let body = absorb_gaps(insns, ranges);
    let mut out = Vec::new();
    let mut seen = vec![false; insns.len()];
    let mut work: Vec<u64> = vec![enter];
    while let Some(pc) = work.pop() {
        if !inside(&body, pc) {
            if pc >= entry && pc < end {
                out.push(pc);
            }
            continue;
        }
        let Some(i) = index_of(insns, pc) else { continue };
        if std::mem::replace(&mut seen[i], true) {
            continue;
        }
        let insn = insns[i];
        let next = insn.addr.wrapping_add(u64::from(insn.len));
        match insn.op {
            Op::Branch { target, conditional } => {
                work.push(target);
                if conditional {
                    work.push(next);
                }
            }
            Op::Ret => {}
            // Calls (write barriers) return to the next instruction.
            Op::Cmp(..) | Op::Load { .. } | Op::Other { .. } => work.push(next),
        }
    }
    out.sort_unstable();
    out.dedup();
    out
}

/// The body plus short caller-attributed gaps between its ranges that flow straight
/// back into it (register shuffles the compiler placed at the caller's position).
fn absorb_gaps(insns: &[Insn], ranges: &[(u64, u64)]) -> Vec<(u64, u64)> {
    let mut out = ranges.to_vec();
    for w in ranges.windows(2) {
        let (gap_start, gap_end) = (w[0].1, w[1].0);
        let (Some(a), Some(b)) = (index_of(insns, gap_start), index_of(insns, gap_end)) else { continue };
        let gap = &insns[a..b];
        let straight = gap.len() <= MAX_GAP_INSNS
            && gap.iter().all(|i| matches!(i.op, Op::Other { ends_flow: false } | Op::Load { .. }));
        if straight {
            out.push((gap_start, gap_end));
        }
    }
    out.sort_unstable();
    merge(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(code: &[u8]) -> Vec<Insn> {
        disasm::decode_amd64(code, 0x1000)
    }

    #[test]
    fn single_stepped_exits_move_to_emulated_instructions_but_not_onto_an_enter() {
        // 0x1000 mov rdx,[rsp+0x58]; 0x1005 jne; 0x1007 mov rdx,[rsp+0x58]; 0x100c nop
        let code = [0x48, 0x8b, 0x54, 0x24, 0x58, 0x75, 0x00, 0x48, 0x8b, 0x54, 0x24, 0x58, 0x90];
        let site = |enter: u64, exits: Vec<u64>| ListSite {
            caller: "main.f".into(),
            package: "main".into(),
            call_pc: enter,
            ranges: vec![],
            body_start: enter,
            enter,
            exits,
            registers: Ok((0, 3)),
        };
        // The first exit moves to the JNE; the second would land on the next
        // site's enter (the NOP) and stays; a third site's exit, already placed, is
        // kept once.
        let mut sites = [site(0x0f00, vec![0x1000, 0x1007]), site(0x100c, vec![]), site(0x0f80, vec![0x1005])];
        emulated_exits(Arch::Amd64, &code, 0x1000, &mut sites);
        assert_eq!(sites[0].exits, vec![0x1005, 0x1007]);
        assert!(sites[2].exits.is_empty());
    }

    #[test]
    fn direct_compare_gives_registers() {
        // nop (call mark) ; cmp [rcx+0x10], rax ; jne +2 ; dec qword [rax+0x28] ; nop
        let code = [0x90, 0x48, 0x39, 0x41, 0x10, 0x75, 0x04, 0x48, 0xff, 0x48, 0x28, 0x90];
        let insns = decode(&code);
        let ranges = [(0x1001, 0x100b)];
        assert_eq!(registers(&insns, 0x1000, 0x1001, &ranges), Ok((0, 1)));
        assert_eq!(exits(&insns, &ranges, 0x1001, 0x1000, 0x100c), vec![0x100b]);
    }

    #[test]
    fn compare_through_loaded_list_register() {
        // mov rbx, [rcx+0x10] ; nop ; cmp rax, rbx ; jne -> 0x1000
        let code = [0x48, 0x8b, 0x59, 0x10, 0x90, 0x48, 0x39, 0xd8, 0x75, 0xf6];
        let insns = decode(&code);
        assert_eq!(registers(&insns, 0x1004, 0x1005, &[(0x1005, 0x100a)]), Ok((0, 1)));
    }

    #[test]
    fn clobbered_element_is_undeterminable() {
        // mov rbx, [rcx+0x10] ; xor ecx, ecx ; cmp rax, rbx
        let code = [0x48, 0x8b, 0x59, 0x10, 0x31, 0xc9, 0x48, 0x39, 0xd8];
        let insns = decode(&code);
        assert!(registers(&insns, 0x1006, 0x1006, &[(0x1006, 0x1009)]).is_err());
    }

    #[test]
    fn a_proven_member_gives_the_element_and_reads_the_list_from_it() {
        // Go 1.27, a closure removing the element it just pushed: the compare is gone.
        // nop (call mark) ; nop ; mov rdi, [rax] ; cmp dword [rip+0], 0 ; je +0 ; dec qword [rbx+0x28]
        let code = [0x90, 0x90, 0x48, 0x8b, 0x38, 0x83, 0x3d, 0, 0, 0, 0, 0, 0x74, 0x00, 0x48, 0xff, 0x4b, 0x28];
        let insns = decode(&code);
        let ranges = [(0x1001, 0x1012)];
        assert_eq!(registers(&insns, 0x1000, 0x1001, &ranges), Ok((tracer_common::LIST_REG_ELEMENT_LIST, 0)));
        // A branch before the body's first load: the compare may exist in a form not
        // decoded here, so nothing is claimed.
        // nop ; jne +0 ; mov rdi, [rax]
        let code = [0x90, 0x75, 0x00, 0x48, 0x8b, 0x38];
        let insns = decode(&code);
        assert!(registers(&insns, 0x1000, 0x1003, &[(0x1003, 0x1006)]).is_err());
    }

    #[test]
    fn merges_ranges() {
        assert_eq!(merge(vec![(1, 3), (3, 5), (7, 9)]), vec![(1, 5), (7, 9)]);
    }
}
