//! Inlined bodies of the mutating `container/list.List` methods (Remove, PushBack,
//! MoveToFront, InsertBefore…): body ranges, the registers holding the list and
//! the element at the body's first instruction, and the body's exits.
//!
//! These methods are inlined into callers in every Go version (GO-RUNTIME.md;
//! PushBackList and PushFrontList excepted, probed at their CALLs by the plan), so
//! their only trace is the inline tree: the pcs whose inline chain contains one.
//! The outermost method of a chain is the site (PushBack's inlined `lazyInit` and
//! `Init` are part of its body), and a `New` in the chain is no site (a fresh list).
//!
//! Remove, Move* and Insert* start with `if e.list == l` / `if e.list != l` /
//! `if mark.list != l` (Go `src/container/list/list.go`), compiled to a 64-bit
//! compare of `l` with `[e+16]` (`Element.list`), either directly or through a
//! register loaded from `[e+16]` earlier (when the caller already read `e.list`,
//! e.g. for `e.Next()`). PushBack, PushFront, PushBackList and PushFrontList start
//! with `lazyInit`'s `l.root.next == nil`: a compare of `[l+0]` with 0. Registers
//! are only reported when straight-line, single-entry code proves they still hold
//! those values at the probed instruction. Init has neither (its inlined sites are
//! reported missing; its out-of-line calls are probed).
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
use tracer_common::{LIST_REG_NONE, ListOp};

/// The first method ghostrace traced.
pub const LIST_REMOVE: &str = "container/list.(*List).Remove";
/// Prefix of every `*List` method's symbol.
const LIST_METHOD: &str = "container/list.(*List).";
/// `list.New` (a fresh list: its inlined Init is no mutation of a shared one).
const LIST_NEW: &str = "container/list.New";

/// The mutating method a symbol names.
pub(crate) fn list_op(name: &str) -> Option<ListOp> {
    let method = name.strip_prefix(LIST_METHOD)?;
    ListOp::ALL.into_iter().find(|op| op.method() == method)
}
/// Offset of `Element.list` (Go `src/container/list/list.go`, all versions).
const ELEMENT_LIST_OFFSET: i64 = 16;
/// Caller instructions interleaved in a body that still count as inside it.
const MAX_GAP_INSNS: usize = 4;
/// Instructions searched for the `e.list == l` compare.
const COMPARE_WINDOW: usize = 8;

/// One inlined call of a mutating method.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct ListSite {
    /// The method.
    #[serde(serialize_with = "op_name")]
    pub op: ListOp,
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
    /// (list register, element register: [`LIST_REG_NONE`] for methods without
    /// an element), or why they could not be determined.
    pub registers: std::result::Result<(u8, u8), String>,
    /// The list's offset from its register (a push to a `list.List` field).
    pub list_disp: u8,
}

fn op_name<S: serde::Serializer>(op: &ListOp, s: S) -> std::result::Result<S::Ok, S::Error> {
    s.serialize_str(op.method())
}

/// Collects inlined list-mutation sites of the functions in scope and adds their probes.
pub(crate) fn add_list_sites(bin: &GoBinary, in_scope: &[(u64, u64, &str, String)], plan: &mut ProbePlan) {
    // From Go 1.18 funcdata are offsets from moduledata.gofunc (see inline.rs).
    if bin.module_data().is_none() && bin.version().at_least(1, 18) {
        plan.missing.push(Missing {
            what: "inlined container/list mutation sites".into(),
            reason: "moduledata not found, so the inline trees cannot be reached".into(),
        });
        return;
    }
    let tab = bin.pclntab();
    // The methods' own out-of-line copies are probed at their CALLs.
    for (entry, _end, name, pkg) in in_scope.iter().filter(|f| !f.2.starts_with("container/list.")) {
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
    let target = format!("{LIST_METHOD}{}", site.op.method());
    let what = format!("{target} inlined in {} at {:#x}", site.caller, site.enter);
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
            target: target.clone(),
            emulated: disasm::emulated_at(bin.arch(), bin.code(addr, addr.saturating_add(16))?, addr),
            signature: Signature::ListMutation,
            after: None,
        })
    };
    let kind = ProbeKind::ListRemoveEnter { list_reg, elem_reg, list_disp: site.list_disp, op: site.op };
    plan.probes.extend(probe(kind, site.enter));
    plan.probes.extend(site.exits.iter().filter_map(|&x| probe(ProbeKind::ListRemoveExit, x)));
}

/// Inlined list-mutation sites of one function.
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
    let mut chains = ChainCache { tab, func, tree, outer: HashMap::new(), names: HashMap::new() };
    let mut bodies: BTreeMap<i32, (ListOp, Vec<(u64, u64)>)> = BTreeMap::new();
    for &(s, e, ix) in &runs {
        if let Outer::Site(r, op) = chains.outer(ix, 0)? {
            bodies.entry(r).or_insert_with(|| (op, Vec::new())).1.push((s, e));
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
    for (r, (op, mut ranges)) in bodies {
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
        let (body_start, found) = if insns.is_empty() {
            (preferred, Err("function code is not in the file".to_string()))
        } else {
            let mut tried = candidates.map(|start| (start, registers(&insns, call_pc, start, &ranges, op)));
            let first = tried.next().expect("at least one range");
            if first.1.is_ok() { first } else { tried.find(|(_, r)| r.is_ok()).unwrap_or(first) }
        };
        let exits = if insns.is_empty() { Vec::new() } else { exits(&insns, &ranges, body_start, entry, end) };
        let enter = match &found {
            Ok(f) if f.at != body_start => f.at,
            Ok(_) => cheaper_enter(&insns, call_pc, body_start),
            Err(_) => body_start,
        };
        let list_disp = found.as_ref().map_or(0, |f| f.list_disp);
        let registers = found.map(|f| (f.list, f.elem));
        sites.push(ListSite {
            op,
            caller: name.to_string(),
            package: pkg.to_string(),
            call_pc,
            ranges,
            body_start,
            enter,
            exits,
            registers,
            list_disp,
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
/// enter would end the wrong mutation), and keeps each exit once per function.
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

/// What an inline-tree index is part of.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Outer {
    /// No mutating method.
    None,
    /// The body of the outermost mutating method in its chain (inline index, method).
    Site(i32, ListOp),
    /// Code of an inlined `list.New`.
    New,
}

/// Resolves inline-tree indexes to the outermost mutating call (if any) in their chain.
struct ChainCache<'a, 'b> {
    tab: &'b Pclntab<'a>,
    func: &'b FuncData<'a>,
    tree: InlineTree<'a>,
    outer: HashMap<i32, Outer>,
    /// Per function name offset: a mutating method, `New`, or neither.
    names: HashMap<u32, Outer>,
}

impl ChainCache<'_, '_> {
    fn outer(&mut self, ix: i32, depth: usize) -> Result<Outer> {
        if ix < 0 || depth > 64 {
            return Ok(Outer::None);
        }
        if let Some(&r) = self.outer.get(&ix) {
            return Ok(r);
        }
        let call = self.tree.get(ix)?;
        let name_off = call.name_off;
        let this = match self.names.get(&name_off) {
            Some(&b) => b,
            None => {
                let name = self.tab.name(name_off)?;
                let b = match list_op(name) {
                    Some(op) => Outer::Site(ix, op),
                    None if name == LIST_NEW => Outer::New,
                    None => Outer::None,
                };
                self.names.insert(name_off, b);
                b
            }
        };
        let parent = self.func.inline_index(self.func.entry().wrapping_add(u64::from(call.parent_pc)))?;
        let above = if parent == ix { Outer::None } else { self.outer(parent, depth + 1)? };
        // An enclosing method or New wins over this call.
        let r = match (above, this) {
            (Outer::None, Outer::Site(_, op)) => Outer::Site(ix, op),
            (Outer::None, this) => this,
            (above, _) => above,
        };
        self.outer.insert(ix, r);
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

/// Registers of a body and where a probe sees them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Found {
    list: u8,
    elem: u8,
    /// The list's offset from `list` (pushes only).
    list_disp: u8,
    /// The probed instruction: the body start, or past a reload at the body's
    /// start of a register the compare reads (a spilled element, say).
    at: u64,
}

/// (list, element) registers from the `e.list == l` compare, and where they hold.
///
/// The compare is the body's own (the inline tree gives it Remove's position) or,
/// when the body has none, a caller compare of the same values the compiler merged
/// with it, accepted only where it guards the body: its branch either falls straight
/// into the body or leaves on a path that cannot reach the body without comparing
/// again. Other compares on the way from the call position (an inlined `e.Next()`
/// compares `e.list` too) prove nothing about `l`.
fn registers(
    insns: &[Insn],
    call_pc: u64,
    enter: u64,
    ranges: &[(u64, u64)],
    op: ListOp,
) -> std::result::Result<Found, String> {
    let p = index_of(insns, enter).ok_or("body start is not an instruction boundary")?;
    let from = index_of(insns, call_pc).filter(|&m| m <= p).unwrap_or(p);
    if op == ListOp::Init {
        return Err("Init has no compare to read the list from".into());
    }
    if !op.checks_element() {
        // lazyInit's `l.root.next == nil`, the body's own.
        // `[l+0]`, or `[base+off]` where l is a `list.List` field `off` bytes into a struct.
        // Go 1.19 gives the compare the caller's position: the body starts at its branch.
        let is_cmp = |i: usize| matches!(insns[i].op, Op::CmpImm(Operand::Mem { .. }));
        let branch_of = |c: usize| c + 1 == p && matches!(insns[p].op, Op::Branch { conditional: true, .. });
        let c = (from..insns.len().min(p + COMPARE_WINDOW))
            .find(|&i| is_cmp(i) && (inside(ranges, insns[i].addr) || branch_of(i)))
            .ok_or_else(|| format!("no `l.root.next == nil` compare at the start of the {} body", op.method()))?;
        let Op::CmpImm(Operand::Mem { base, disp }) = insns[c].op else { unreachable!() };
        let disp = u8::try_from(disp).map_err(|_| format!("list {disp:#x} bytes from its register"))?;
        return holding(insns, p, c, c, base, None).map(|f| Found { list_disp: disp, ..f });
    }
    let is_cmp = |i: usize| matches!(insns[i].op, Op::Cmp(..));
    let own = (from..insns.len().min(p + COMPARE_WINDOW)).find(|&i| is_cmp(i) && inside(ranges, insns[i].addr));
    let Some(c) = own.or_else(|| guarding_compare(insns, from, p, ranges)) else {
        return proven_member(insns, from, p, ranges).map(|(list, elem)| Found { list, elem, list_disp: 0, at: enter });
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
    holding(insns, p, c, def, list, Some(elem))
}

/// Where a probe sees the list (and element) registers a compare at `c` reads,
/// the body starting at `p`: `def` is where the element's value was last loaded
/// (`c` itself for a direct compare).
fn holding(
    insns: &[Insn],
    p: usize,
    c: usize,
    def: usize,
    list: u8,
    elem: Option<u8>,
) -> std::result::Result<Found, String> {
    let both = 1u32 << list | elem.map_or(0, |e| 1u32 << e);
    // A body that opens by (re)loading a register its compare reads is probed after
    // the last such write, on straight-line code every entry to the body runs
    // through; the compare's own branch when that is emulated and nothing between
    // writes, so the probe costs one trap.
    let mut at = p;
    if c > p
        && insns[p..c].iter().all(|i| matches!(i.op, Op::Other { ends_flow: false } | Op::Load { .. }))
        && let Some(w) = (p..c).rev().find(|&i| insns[i].writes & both != 0 && i != def)
    {
        at = w + 1;
        let branch = insns.get(c + 1).filter(|j| matches!(j.op, Op::Branch { conditional: true, .. }) && j.emulated);
        if branch.is_some() && !insns[at..c].iter().any(|i| i.writes & both != 0) {
            at = c + 1;
        }
    }
    // Both registers must hold their values from `def`/`c` through `at`.
    let lo = def.min(at);
    let hi = c.max(at);
    check_single_entry(insns, lo.min(p), hi)?;
    if let Some(x) = insns[lo..hi].iter().find(|i| matches!(i.op, Op::Ret | Op::Other { ends_flow: true })) {
        return Err(format!("control flow leaves at {:#x}", x.addr));
    }
    let overwritten = |r: u8, span: std::ops::Range<usize>| {
        span.into_iter()
            .find(|&i| i != def && insns[i].writes & (1 << r) != 0)
            .map(|i| format!("register overwritten at {:#x}", insns[i].addr))
    };
    if let Some(e) = overwritten(list, c.min(at)..hi) {
        return Err(e);
    }
    let Some(elem) = elem else { return Ok(Found { list, elem: LIST_REG_NONE, list_disp: 0, at: insns[at].addr }) };
    // The element stays in its register up to `def`; from `def` on to a later probe
    // point it may have been copied to others (the compiler moves it out of a
    // register that arithmetic needs).
    let elem = if def < at {
        let held = holders(insns, def, at, elem) & !(1 << list);
        if held & 1 << elem != 0 {
            elem
        } else if held != 0 {
            held.trailing_zeros() as u8
        } else {
            return Err(overwritten(elem, def..at).unwrap_or_else(|| "element register lost".into()));
        }
    } else {
        if let Some(e) = overwritten(elem, at..def) {
            return Err(e);
        }
        elem
    };
    Ok(Found { list, elem, list_disp: 0, at: insns[at].addr })
}

/// Registers holding, at `to`, the value `reg` has after `insns[def]`, along
/// straight-line code (the caller proves the window single-entry).
fn holders(insns: &[Insn], def: usize, to: usize, reg: u8) -> u32 {
    let mut held = 1u32 << reg;
    for insn in &insns[def + 1..to] {
        let copied = insn.copy_from.is_some_and(|s| held & 1 << s != 0);
        held &= !insn.writes;
        if copied {
            held |= insn.writes;
        }
    }
    held
}

/// The nearest compare in `[from, p)` when the conditional branch right after it is
/// the body's own (the compiler gave the compare the caller's position), or guards
/// the body: it falls through to `p` on straight-line code or jumps to `p`, while
/// its other successor cannot reach `p` without passing the compare again.
fn guarding_compare(insns: &[Insn], from: usize, p: usize, ranges: &[(u64, u64)]) -> Option<usize> {
    let c = (from..p).rev().find(|&i| matches!(insns[i].op, Op::Cmp(..)))?;
    let j = c + 1;
    let Op::Branch { target, conditional: true } = insns.get(j)?.op else { return None };
    if inside(ranges, insns[j].addr) {
        return Some(c);
    }
    let straight = |r: std::ops::Range<usize>| {
        insns[r].iter().all(|i| !matches!(i.op, Op::Branch { .. } | Op::Ret | Op::Other { ends_flow: true }))
    };
    let next = insns.get(j + 1)?.addr;
    let other = if j < p && straight(j + 1..p) {
        target
    } else if target == insns[p].addr {
        next
    } else {
        return None;
    };
    (!reaches_avoiding(insns, other, insns[p].addr, c)).then_some(c)
}

/// Whether `goal` may be reached from `start` along the function's direct control
/// flow without passing `avoid`; anything not followed (indirect jumps, calls,
/// addresses outside the function, a search too long) counts as reaching.
fn reaches_avoiding(insns: &[Insn], start: u64, goal: u64, avoid: usize) -> bool {
    const BUDGET: usize = 4096;
    let mut seen = vec![false; insns.len()];
    let mut work = vec![start];
    let mut steps = 0;
    while let Some(pc) = work.pop() {
        if pc == goal {
            return true;
        }
        let Some(i) = index_of(insns, pc) else { return true };
        if i == avoid || std::mem::replace(&mut seen[i], true) {
            continue;
        }
        steps += 1;
        if steps > BUDGET {
            return true;
        }
        if matches!(insns[i].op, Op::Other { ends_flow: true }) {
            return true;
        }
        work.extend(successors(&insns[i]).into_iter().flatten());
    }
    false
}

/// Where control may go after `insn`: a branch's target and, unless it is
/// unconditional, the next instruction. Calls (write barriers) return to the next
/// instruction.
fn successors(insn: &Insn) -> [Option<u64>; 2] {
    let next = insn.addr.wrapping_add(u64::from(insn.len));
    match insn.op {
        Op::Branch { target, conditional } => [Some(target), conditional.then_some(next)],
        Op::Ret => [None, None],
        Op::Cmp(..) | Op::CmpImm(..) | Op::Load { .. } | Op::Other { .. } => [Some(next), None],
    }
}

/// A body without the `e.list == l` compare (proven true): straight-line code from
/// the call position to `p`, and the body's load of `e.next` / `e.prev` (`[e+0]`,
/// `[e+8]`) nearest to `p` on straight-line code, after it or hoisted before it,
/// whose base is the element and holds it at `p`.
fn proven_member(
    insns: &[Insn],
    from: usize,
    p: usize,
    ranges: &[(u64, u64)],
) -> std::result::Result<(u8, u8), String> {
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
        work.extend(successors(&insns[i]).into_iter().flatten());
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

    fn regs(insns: &[Insn], call_pc: u64, enter: u64, ranges: &[(u64, u64)]) -> std::result::Result<(u8, u8), String> {
        registers(insns, call_pc, enter, ranges, ListOp::Remove).map(|f| (f.list, f.elem))
    }

    #[test]
    fn single_stepped_exits_move_to_emulated_instructions_but_not_onto_an_enter() {
        // 0x1000 mov rdx,[rsp+0x58]; 0x1005 jne; 0x1007 mov rdx,[rsp+0x58]; 0x100c nop
        let code = [0x48, 0x8b, 0x54, 0x24, 0x58, 0x75, 0x00, 0x48, 0x8b, 0x54, 0x24, 0x58, 0x90];
        let site = |enter: u64, exits: Vec<u64>| ListSite {
            op: ListOp::Remove,
            caller: "main.f".into(),
            package: "main".into(),
            call_pc: enter,
            ranges: vec![],
            body_start: enter,
            enter,
            exits,
            registers: Ok((0, 3)),
            list_disp: 0,
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
        assert_eq!(regs(&insns, 0x1000, 0x1001, &ranges), Ok((0, 1)));
        assert_eq!(exits(&insns, &ranges, 0x1001, 0x1000, 0x100c), vec![0x100b]);
    }

    #[test]
    fn compare_through_loaded_list_register() {
        // mov rbx, [rcx+0x10] ; nop ; cmp rax, rbx ; jne -> 0x1000
        let code = [0x48, 0x8b, 0x59, 0x10, 0x90, 0x48, 0x39, 0xd8, 0x75, 0xf6];
        let insns = decode(&code);
        assert_eq!(regs(&insns, 0x1004, 0x1005, &[(0x1005, 0x100a)]), Ok((0, 1)));
    }

    /// Go 1.27, `next := e.Next()` in a loop whose latch holds the call position: the
    /// inlined Next compares e.list with e.next on the way from the call position to
    /// the body, whose own compare is `cmp rdx, r8`.
    const NEXT_THEN_REMOVE: &[u8] = &[
        0x48, 0x8b, 0x4c, 0x24, 0x78, // 0x1000 mov rcx, [rsp+0x78] (call position)
        0x48, 0x8b, 0x74, 0x24, 0x40, // mov rsi, [rsp+0x40]
        0x48, 0x89, 0xfb, // mov rbx, rdi
        0x48, 0x85, 0xf6, // test rsi, rsi
        0x0f, 0x84, 0xe8, 0x01, 0x00, 0x00, // je (out)
        0x48, 0x85, 0xdb, // test rbx, rbx
        0x0f, 0x8e, 0xdf, 0x01, 0x00, 0x00, // jle (out)
        0x48, 0x8b, 0x56, 0x10, // 0x101f mov rdx, [rsi+0x10] (e.list)
        0x48, 0x8b, 0x3e, // mov rdi, [rsi] (e.next)
        0x48, 0x85, 0xd2, // test rdx, rdx
        0x74, 0x0a, // je 0x1035
        0x48, 0x39, 0xfa, // 0x102b cmp rdx, rdi (Next: e.next != &e.list.root)
        0x74, 0x05, // je 0x1035
        0x48, 0x89, 0xf8, // mov rax, rdi
        0xeb, 0x02, // jmp 0x1037
        0x31, 0xc0, // 0x1035 xor eax, eax
        0x4c, 0x8b, 0x41, 0x08, // 0x1037 mov r8, [rcx+8] (l)
        0x0f, 0x1f, 0x44, 0x00, 0x00, // nop
        0x4c, 0x39, 0xc2, // 0x1040 cmp rdx, r8 (Remove: e.list == l)
        0x75, 0x72, // jne (skip)
    ];

    #[test]
    fn the_compare_is_the_bodys_own_not_one_on_the_way_to_it() {
        let insns = decode(NEXT_THEN_REMOVE);
        assert_eq!(regs(&insns, 0x1000, 0x1040, &[(0x1040, 0x1045)]), Ok((8, 6)));
        // Without the body's compare, Next's is no evidence: both of its outcomes
        // reach the body.
        let mut code = NEXT_THEN_REMOVE[..0x40].to_vec();
        code.extend([0x48, 0xff, 0x48, 0x28, 0xc3]); // dec qword [rax+0x28] ; ret
        let insns = decode(&code);
        assert!(regs(&insns, 0x1000, 0x1040, &[(0x1040, 0x1045)]).is_err());
    }

    #[test]
    fn a_caller_compare_counts_only_where_it_guards_the_body() {
        // nop (call mark) ; cmp [rcx+0x10], rax ; jne ; dec qword [rax+0x28] ; nop ; ret
        let guarded = |jne: u8| [0x90, 0x48, 0x39, 0x41, 0x10, 0x75, jne, 0x48, 0xff, 0x48, 0x28, 0x90, 0xc3];
        // Skipping to the RET, or back before the compare (a loop's `continue`).
        for jne in [0x05, 0xf9] {
            let insns = decode(&guarded(jne));
            assert_eq!(regs(&insns, 0x1000, 0x1007, &[(0x1007, 0x100c)]), Ok((0, 1)), "jne {jne:#x}");
        }
        // Both outcomes entering the body: no guard.
        let insns = decode(&guarded(0x00));
        assert!(regs(&insns, 0x1000, 0x1007, &[(0x1007, 0x100c)]).is_err());
        // Go 1.19 gives the compare the caller's position and the body starts at its
        // branch, whatever the branch does.
        assert_eq!(regs(&insns, 0x1000, 0x1005, &[(0x1005, 0x100c)]), Ok((0, 1)));
    }

    #[test]
    fn the_element_is_followed_into_the_register_it_was_copied_to() {
        // Go 1.19, `e.Value.(int) % 3` between the load of e.list and Remove's
        // compare: e moves from rdx to r10 before `imul r9` (writes rax and rdx).
        let code = [
            0x48, 0x8b, 0x32, // 0x1000 mov rsi, [rdx]
            0x4c, 0x8b, 0x42, 0x10, // mov r8, [rdx+0x10] (e.list)
            0x4d, 0x85, 0xc0, // test r8, r8
            0x74, 0x0a, // je
            0x49, 0x39, 0xf0, // cmp r8, rsi (Next)
            0x74, 0x05, // je
            0x48, 0x89, 0xf3, // mov rbx, rsi
            0xeb, 0x02, // jmp
            0x31, 0xdb, // xor ebx, ebx
            0x4c, 0x8b, 0x4a, 0x18, // mov r9, [rdx+0x18]
            0x4c, 0x8b, 0x52, 0x20, // mov r10, [rdx+0x20]
            0x4c, 0x8d, 0x1d, 0x00, 0x78, 0x00, 0x00, // lea r11, [rip+0x7800]
            0x4d, 0x39, 0xd9, // cmp r9, r11 (type assertion)
            0x0f, 0x85, 0xc9, 0x00, 0x00, 0x00, // jne
            0x4d, 0x8b, 0x0a, // mov r9, [r10]
            0x48, 0x89, 0xc7, // mov rdi, rax (l)
            0x48, 0xb8, 0xab, 0xaa, 0xaa, 0xaa, 0xaa, 0xaa, 0xaa, 0xaa, // mov rax, 0xaaaaaaaaaaaaaaab
            0x49, 0x89, 0xd2, // mov r10, rdx (e)
            0x49, 0xf7, 0xe9, // imul r9
            0x4c, 0x01, 0xca, // add rdx, r9
            0x48, 0xd1, 0xfa, // sar rdx, 1
            0x4d, 0x89, 0xcc, // mov r12, r9
            0x49, 0xc1, 0xf9, 0x3f, // sar r9, 0x3f
            0x4c, 0x29, 0xca, // sub rdx, r9
            0x48, 0x8d, 0x14, 0x52, // lea rdx, [rdx+rdx*2]
            0x49, 0x39, 0xd4, // cmp r12, rdx
            0x74, 0x92, // je (back)
            0x90, // 0x105f nop (call mark)
            0x4c, 0x39, 0xc7, // 0x1060 cmp rdi, r8 (Remove)
            0x75, 0x7e, // jne
        ];
        let insns = decode(&code);
        assert_eq!(regs(&insns, 0x105f, 0x1060, &[(0x1060, 0x1065)]), Ok((7, 10)));
        // Without the copy, nothing holds e at the compare.
        let mut code = code.to_vec();
        code[0x40..0x43].copy_from_slice(&[0x4d, 0x89, 0xd2]); // mov r10, r10
        assert!(regs(&decode(&code), 0x105f, 0x1060, &[(0x1060, 0x1065)]).is_err());
    }

    #[test]
    fn a_reload_at_the_body_start_moves_the_probe_past_it() {
        // A deferred closure reloads the spilled element at the body's start:
        // mov rdx, [rcx+8] ; mov rsi, [rsp+0x18] ; cmp [rsi+0x10], rdx ; jne
        let code = [0x48, 0x8b, 0x51, 0x08, 0x48, 0x8b, 0x74, 0x24, 0x18, 0x48, 0x39, 0x56, 0x10, 0x75, 0x77];
        let insns = decode(&code);
        let ranges = [(0x1004, 0x100f)];
        assert_eq!(registers(&insns, 0x1000, 0x1004, &ranges, ListOp::Remove), Ok(Found { list: 2, elem: 6, list_disp: 0, at: 0x100d }));
        // Not past a branch: the probe would miss entries.
        let code = [0x48, 0x8b, 0x51, 0x08, 0x74, 0x00, 0x48, 0x8b, 0x74, 0x24, 0x18, 0x48, 0x39, 0x56, 0x10];
        let insns = decode(&code);
        assert!(registers(&insns, 0x1000, 0x1004, &[(0x1004, 0x100f)], ListOp::Remove).is_err());
    }

    #[test]
    fn clobbered_element_is_undeterminable() {
        // mov rbx, [rcx+0x10] ; xor ecx, ecx ; cmp rax, rbx
        let code = [0x48, 0x8b, 0x59, 0x10, 0x31, 0xc9, 0x48, 0x39, 0xd8];
        let insns = decode(&code);
        assert!(regs(&insns, 0x1006, 0x1006, &[(0x1006, 0x1009)]).is_err());
    }

    #[test]
    fn a_proven_member_gives_the_element_and_reads_the_list_from_it() {
        // Go 1.27, a closure removing the element it just pushed: the compare is gone.
        // nop (call mark) ; nop ; mov rdi, [rax] ; cmp dword [rip+0], 0 ; je +0 ; dec qword [rbx+0x28]
        let code = [0x90, 0x90, 0x48, 0x8b, 0x38, 0x83, 0x3d, 0, 0, 0, 0, 0, 0x74, 0x00, 0x48, 0xff, 0x4b, 0x28];
        let insns = decode(&code);
        let ranges = [(0x1001, 0x1012)];
        assert_eq!(regs(&insns, 0x1000, 0x1001, &ranges), Ok((tracer_common::LIST_REG_ELEMENT_LIST, 0)));
        // A branch before the body's first load: the compare may exist in a form not
        // decoded here, so nothing is claimed.
        // nop ; jne +0 ; mov rdi, [rax]
        let code = [0x90, 0x75, 0x00, 0x48, 0x8b, 0x38];
        let insns = decode(&code);
        assert!(regs(&insns, 0x1000, 0x1003, &[(0x1003, 0x1006)]).is_err());
    }

    #[test]
    fn a_push_reads_the_list_from_lazy_init_past_its_reload() {
        // Go 1.27 PushBack: nop (call mark) ; mov rcx, [rsp+0x40] ; cmp qword [rcx], 0 ; jne ; nop
        let code = [0x90, 0x48, 0x8b, 0x4c, 0x24, 0x40, 0x48, 0x83, 0x39, 0x00, 0x75, 0x01, 0x90];
        let insns = decode(&code);
        let ranges = [(0x1000, 0x100d)];
        let pushed = registers(&insns, 0x1000, 0x1000, &ranges, ListOp::PushBack);
        // Probed on the JNE (emulated), with the list in rcx and no element.
        assert_eq!(pushed, Ok(Found { list: 1, elem: LIST_REG_NONE, list_disp: 0, at: 0x100a }));
        // A `list.List` field 0x18 bytes into a struct: cmp qword [rcx+0x18], 0
        let field = [0x90, 0x48, 0x8b, 0x4c, 0x24, 0x40, 0x48, 0x83, 0x79, 0x18, 0x00, 0x75, 0x01, 0x90];
        let got = registers(&decode(&field), 0x1000, 0x1000, &[(0x1000, 0x100e)], ListOp::PushBack);
        assert_eq!(got, Ok(Found { list: 1, elem: LIST_REG_NONE, list_disp: 0x18, at: 0x100b }));
        // Go 1.19: cmp qword [rax], 0 at the caller's position, the body from its jne.
        let go119 = [0x90, 0x48, 0x83, 0x38, 0x00, 0x75, 0x01, 0x90];
        let got = registers(&decode(&go119), 0x1000, 0x1005, &[(0x1005, 0x1008)], ListOp::PushFront);
        assert_eq!(got, Ok(Found { list: 0, elem: LIST_REG_NONE, list_disp: 0, at: 0x1005 }));
        // Init has no compare to read the list from.
        assert!(registers(&insns, 0x1000, 0x1000, &ranges, ListOp::Init).is_err());
        // A 32-bit compare (the write-barrier flag) is no lazyInit.
        let code = [0x90, 0x83, 0x39, 0x00, 0x75, 0x01, 0x90];
        assert!(registers(&decode(&code), 0x1000, 0x1000, &[(0x1000, 0x1007)], ListOp::PushFront).is_err());
    }

    #[test]
    fn list_ops_from_symbols() {
        assert_eq!(list_op(LIST_REMOVE), Some(ListOp::Remove));
        assert_eq!(list_op("container/list.(*List).MoveToFront"), Some(ListOp::MoveToFront));
        assert_eq!(list_op("container/list.(*List).Len"), None);
        assert_eq!(list_op("container/list.New"), None);
    }

    #[test]
    fn merges_ranges() {
        assert_eq!(merge(vec![(1, 3), (3, 5), (7, 9)]), vec![(1, 5), (7, 9)]);
    }
}
