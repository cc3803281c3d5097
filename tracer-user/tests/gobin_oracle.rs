//! Oracle tests of `gobin` on the fixture built by every installed Go toolchain
//! (plus arm64 and PIE builds by the oldest and newest), stripped and not: pc → file:line against `go tool addr2line` (including pcs in
//! inlined code), inlined `Remove` ranges against the DWARF of the unstripped twin,
//! RET instructions and call sites of every runtime entry point against
//! `go tool objdump`, and the per-version layout table against DWARF.

mod gobin_support;
mod support;

use std::collections::{BTreeMap, BTreeSet};

use gobin_support::*;
use tracer_common::{LIST_REG_NONE, ListOp};
use tracer_user::gobin::{GoBinary, LIST_REMOVE, LayoutSource, Probe, ProbeKind, Role, Scope, table_layout};

#[test]
fn symbolize_matches_addr2line() {
    for b in all_builds("symbolize_matches_addr2line") {
        let (tc, plain, stripped, label) = (&b.tc, &b.plain, &b.stripped, b.label());
        let insns = objdump(tc, plain);
        // Every 7th instruction of the binary plus every instruction of the fixture's
        // own functions (where the inlined list, map and slice code is).
        let mut pcs: Vec<u64> = insns.iter().step_by(7).map(|i| i.addr).collect();
        pcs.extend(insns.iter().filter(|i| i.function.starts_with("main.")).map(|i| i.addr));
        pcs.sort_unstable();
        pcs.dedup();
        assert!(pcs.len() >= 1000, "{}: only {} pcs", label, pcs.len());
        for path in [plain, stripped] {
            let bin = GoBinary::open(path).expect("open");
            let want = addr2line(&b.line_oracle, path, &pcs);
            assert_eq!(want.len(), pcs.len());
            let mut inlined = 0;
            for (pc, (func, pos)) in pcs.iter().zip(&want) {
                let frames = bin.symbolize(*pc).unwrap_or_else(|| panic!("{} {pc:#x}: no frames", label));
                let inner = &frames[0];
                let outer = frames.last().unwrap();
                assert_eq!(&outer.function, func, "{} {}: function at {pc:#x}", label, path.display());
                let ours = position(inner, pos);
                assert_eq!(ours, *pos, "{} {}: position of {pc:#x}", label, path.display());
                if frames.len() > 1 {
                    inlined += 1;
                    // Each caller frame's line is inside its function's file.
                    assert!(frames.iter().all(|f| f.line > 0), "{frames:?}");
                }
            }
            assert!(inlined > 50, "{}: only {inlined} pcs in inlined code", label);
            // The inlined Remove frames name the caller chain.
            let site = bin
                .probe_plan(&Scope::Default)
                .list_sites
                .into_iter()
                .find(|s| s.caller == "main.removeBoth")
                .expect("site");
            let frames = bin.symbolize(site.body_start).expect("frames");
            assert_eq!(frames[0].function, LIST_REMOVE, "{frames:?}");
            assert_eq!(frames.last().unwrap().function, "main.removeBoth");
            assert!(frames.last().unwrap().file.ends_with("main.go"));
        }
    }
}

#[test]
fn inlined_list_ranges_match_dwarf() {
    for b in all_builds("inlined_list_ranges_match_dwarf") {
        let (plain, stripped, label) = (&b.plain, &b.stripped, b.label());
        let with_dwarf = GoBinary::open(plain).expect("open");
        let want = dwarf_inlined_ranges(&with_dwarf, LIST_REMOVE);
        assert!(want.len() >= 4, "{}: DWARF has {} Remove sites", label, want.len());
        for path in [plain, stripped] {
            let bin = GoBinary::open(path).expect("open");
            let plan = bin.probe_plan(&Scope::All);
            // Every method's sites but Init's (DWARF also has the Init inlined in
            // PushBack's lazyInit and in New, which are not sites of their own).
            for op in ListOp::ALL.into_iter().filter(|&op| op != ListOp::Init) {
                let want = dwarf_inlined_ranges(&with_dwarf, &format!("container/list.(*List).{}", op.method()));
                let got: BTreeSet<Vec<(u64, u64)>> =
                    plan.list_sites.iter().filter(|s| s.op == op).map(|s| s.ranges.clone()).collect();
                assert_eq!(got, want, "{} {} {}", label, path.display(), op.method());
            }
            // main.reorder's inlined pushes, moves and inserts: registers found on amd64.
            let reorder: Vec<_> = plan.list_sites.iter().filter(|s| s.caller == "main.reorder").collect();
            let ops: BTreeSet<&str> = reorder.iter().map(|s| s.op.method()).collect();
            let inlined = ["Init", "InsertAfter", "InsertBefore", "MoveAfter", "MoveBefore", "MoveToBack", "MoveToFront", "PushFront"];
            assert_eq!(ops, inlined.into_iter().collect(), "{label}");
            for s in reorder.iter().filter(|s| b.variant != Variant::Arm64 && s.op != ListOp::Init) {
                assert!(s.registers.is_ok(), "{} {}: {:?}", label, s.op.method(), s.registers);
                assert!(!s.exits.is_empty(), "{} {}: no exits", label, s.op.method());
            }
            // An inlined Init has no compare to read the list from: reported missing.
            assert!(plan.missing.iter().any(|m| m.what.contains("Init inlined in main.reorder")), "{label}");
            let fixture_sites: Vec<_> =
                plan.list_sites.iter().filter(|s| s.caller.starts_with("main.") && s.op == ListOp::Remove).collect();
            assert_eq!(fixture_sites.len(), 8, "{}: {fixture_sites:#x?}", label);
            for s in fixture_sites {
                assert!(s.registers.is_ok(), "{} {}: {:?}", label, s.caller, s.registers);
                assert!(!s.exits.is_empty(), "{} {}: no exits", label, s.caller);
                let enter = plan
                    .probes
                    .iter()
                    .find(|p| p.address == s.enter && matches!(p.kind, ProbeKind::ListRemoveEnter { .. }));
                assert!(enter.is_some(), "{label} {}: no enter probe", s.caller);
                // amd64: the enter probe sits on an emulated instruction (the inline
                // mark NOP or a Jcc), or on the body's first instruction where the
                // call position is no NOP falling into it (Go 1.19's `park`); arm64
                // kernels single-step CMP and NOP.
                if b.variant != Variant::Arm64 {
                    let ok = enter.is_some_and(|p| p.emulated || p.address == s.body_start);
                    assert!(ok, "{} {}: enter probe {enter:?}", label, s.caller);
                }
            }
        }
    }
}

/// The list register of each fixture list site is the operand its test compares
/// (the CMPQ / CMP `go tool objdump` places on that line of the toolchain's own
/// `container/list/list.go`, inside the site's ranges). Remove, Move* and Insert*:
/// `e.list == l` / `e.list != l` / `mark.list != l`, where the list is next to
/// `e.list`, a memory operand `0x10(E)` (amd64; then the element is E), or the
/// register last loaded from offset 16. PushBack and PushFront: lazyInit's
/// `l.root.next == nil`, `CMPQ 0(L), $0` (amd64; arm64 has no compare there and no
/// registers are claimed). Sites whose compare the compiler removed are skipped;
/// on arm64 only Remove's are checked.
#[test]
fn list_registers_match_objdump() {
    for b in all_builds("list_registers_match_objdump") {
        let label = b.label();
        let arm64 = b.variant == Variant::Arm64;
        let (cmp, load) = if arm64 { ("CMP ", "MOVD 16(") } else { ("CMPQ ", "MOVQ 0x10(") };
        let name = |n: u8| if arm64 { format!("R{n}") } else { GO_REGS[n as usize].to_string() };
        let goroot = b.tc.go.parent().and_then(|p| p.parent()).expect("GOROOT");
        let src = std::fs::read_to_string(goroot.join("src/container/list/list.go")).expect("list.go");
        let lines: Vec<&str> = src.lines().collect();
        let test_line = |func: &str, test: &str| {
            let f = lines.iter().position(|l| l.starts_with(func)).unwrap_or_else(|| panic!("{func} in list.go"));
            let t = f + lines[f..].iter().position(|l| l.contains(test)).expect("the test");
            format!("list.go:{}", t + 1)
        };
        let insns = objdump(&b.line_oracle, &b.plain);
        let plan = GoBinary::open(&b.plain).expect("open").probe_plan(&Scope::Default);
        let mut checked = Vec::new();
        // The other methods' registers are checked on amd64 (the arch the kernel side
        // reads registers of); on arm64 a compare the compiler shared between two
        // inlined methods is not read here.
        for s in plan.list_sites.iter().filter(|s| s.caller.starts_with("main.") && (!arm64 || s.op == ListOp::Remove)) {
            let method = s.op.method();
            let pos = match s.op {
                ListOp::Remove => test_line("func (l *List) Remove(", "if e.list == l"),
                ListOp::PushBack | ListOp::PushFront => test_line("func (l *List) lazyInit()", "l.root.next == nil"),
                ListOp::InsertBefore | ListOp::InsertAfter => test_line(&format!("func (l *List) {method}("), "mark.list != l"),
                ListOp::Init => continue,
                _ => test_line(&format!("func (l *List) {method}("), "e.list != l"),
            };
            let in_body = |a: u64| s.ranges.iter().any(|&(lo, hi)| a >= lo && a < hi);
            let body: Vec<&ObjdumpInsn> = insns.iter().filter(|i| i.function == s.caller).collect();
            let own = body.iter().position(|i| in_body(i.addr) && i.pos == pos && i.text.starts_with(cmp));
            // Go 1.19 gives lazyInit's compare the caller's position; its branch is the body's.
            let branch = || body.iter().position(|i| in_body(i.addr) && i.pos == pos && i.text.starts_with('J'));
            let before_branch = || branch().and_then(|j| j.checked_sub(1)).filter(|&c| body[c].text.starts_with(cmp));
            let Some(c) = own.or_else(|| if s.op.checks_element() { None } else { before_branch() }) else {
                continue;
            };
            let (a, x) = body[c].text[cmp.len()..].split_once(", ").expect("two operands");
            if !s.op.checks_element() {
                // CMPQ 0(L), $0x0 (or the other order on older toolchains).
                let list = [a, x].into_iter().find_map(|o| o.strip_prefix("0(")).map(|o| o.trim_end_matches(')'));
                let list = list.unwrap_or_else(|| panic!("{label} {}: cannot read the compare {:?}", s.caller, body[c].text));
                let got = s.registers.clone().unwrap_or_else(|e| panic!("{label} {} {method}: {e}", s.caller));
                assert_eq!((name(got.0), got.1), (list.to_string(), LIST_REG_NONE), "{label} {} {method}", s.caller);
                checked.push((s.caller.as_str(), method));
                continue;
            }
            let loaded_list = |r: &str| {
                let writes =
                    |i: &&&ObjdumpInsn| !["CMP", "TEST", "BT", "TST", "CMN"].iter().any(|op| i.text.starts_with(op));
                let last = body[..c].iter().rev().filter(writes).find(|i| i.text.ends_with(&format!(", {r}")))?;
                last.text.starts_with(load).then_some(())
            };
            let (list, elem) = match (a.strip_prefix("0x10("), x.strip_prefix("0x10(")) {
                (Some(e), None) => (x, Some(e.trim_end_matches(')'))),
                (None, Some(e)) => (a, Some(e.trim_end_matches(')'))),
                _ => match (loaded_list(a), loaded_list(x)) {
                    (Some(()), None) => (x, None),
                    (None, Some(())) => (a, None),
                    _ => panic!("{label} {}: cannot read the compare {:?}", s.caller, body[c].text),
                },
            };
            let (got_list, got_elem) = s.registers.clone().unwrap_or_else(|e| panic!("{label} {}: {e}", s.caller));
            assert_eq!(name(got_list), list, "{label} {} {method}: list register ({})", s.caller, body[c].text);
            if let Some(elem) = elem {
                assert_eq!(name(got_elem), elem, "{label} {} {method}: element ({})", s.caller, body[c].text);
            }
            checked.push((s.caller.as_str(), method));
        }
        eprintln!("{label}: list registers of {checked:?} match objdump");
        for f in ["main.prune", "main.(*queues).park", "main.removeLater.func1"] {
            assert!(checked.contains(&(f, "Remove")), "{label}: {f} not checked");
        }
        let reorder = ["MoveToFront", "MoveToBack", "MoveBefore", "MoveAfter", "InsertBefore", "InsertAfter", "PushFront"];
        for m in reorder.into_iter().filter(|_| !arm64) {
            assert!(checked.contains(&("main.reorder", m)), "{label}: main.reorder {m} not checked");
        }
    }
}

/// Go assembler names of the amd64 general registers, by hardware number.
const GO_REGS: [&str; 16] =
    ["AX", "CX", "DX", "BX", "SP", "BP", "SI", "DI", "R8", "R9", "R10", "R11", "R12", "R13", "R14", "R15"];

/// Merged `[low, high)` ranges of every DW_TAG_inlined_subroutine of `name`. The
/// abstract origin usually lives in another compilation unit (DW_FORM_ref_addr).
fn dwarf_inlined_ranges(bin: &GoBinary, name: &str) -> BTreeSet<Vec<(u64, u64)>> {
    let data = bin.dwarf().expect("dwarf").expect("unstripped twin has DWARF");
    let dwarf = data.dwarf();
    // Pass 1: global offsets of the abstract subprograms called `name`.
    let mut origins = BTreeSet::new();
    let mut units = dwarf.units();
    while let Some(header) = units.next().expect("unit") {
        let unit = dwarf.unit(header).expect("unit");
        let mut cursor = unit.entries();
        while let Some((_, entry)) = cursor.next_dfs().expect("entry") {
            if entry.tag() != gimli::DW_TAG_subprogram {
                continue;
            }
            let Some(n) = entry.attr_value(gimli::DW_AT_name).expect("name") else { continue };
            if dwarf.attr_string(&unit, n).expect("string").slice() == name.as_bytes() {
                origins.insert(entry.offset().to_debug_info_offset(&unit.header).expect("offset").0);
            }
        }
    }
    // Pass 2: inlined subroutines whose origin is one of them.
    let mut out = BTreeSet::new();
    let mut units = dwarf.units();
    while let Some(header) = units.next().expect("unit") {
        let unit = dwarf.unit(header).expect("unit");
        let mut cursor = unit.entries();
        while let Some((_, entry)) = cursor.next_dfs().expect("entry") {
            if entry.tag() != gimli::DW_TAG_inlined_subroutine {
                continue;
            }
            let origin = match entry.attr_value(gimli::DW_AT_abstract_origin).expect("attr") {
                Some(gimli::AttributeValue::UnitRef(o)) => o.to_debug_info_offset(&unit.header).map(|o| o.0),
                Some(gimli::AttributeValue::DebugInfoRef(o)) => Some(o.0),
                _ => None,
            };
            if !origin.is_some_and(|o| origins.contains(&o)) {
                continue;
            }
            let mut ranges: Vec<(u64, u64)> = Vec::new();
            let mut iter = dwarf.die_ranges(&unit, entry).expect("ranges");
            while let Some(r) = iter.next().expect("range") {
                ranges.push((r.begin, r.end));
            }
            ranges.sort_unstable();
            let mut merged: Vec<(u64, u64)> = Vec::new();
            for (s, e) in ranges {
                match merged.last_mut() {
                    Some(last) if s <= last.1 => last.1 = last.1.max(e),
                    _ => merged.push((s, e)),
                }
            }
            out.insert(merged);
        }
    }
    out
}

#[test]
fn entry_points_match_objdump() {
    for b in all_builds("entry_points_match_objdump") {
        let (tc, plain, stripped, label) = (&b.tc, &b.plain, &b.stripped, b.label());
        let insns = objdump(tc, plain);
        let mut by_func: BTreeMap<&str, Vec<&ObjdumpInsn>> = BTreeMap::new();
        for i in &insns {
            by_func.entry(i.function.as_str()).or_default().push(i);
        }
        let next_of: BTreeMap<u64, u64> = insns.windows(2).map(|w| (w[0].addr, w[1].addr)).collect();
        let by_addr: BTreeMap<u64, &ObjdumpInsn> = insns.iter().map(|i| (i.addr, i)).collect();
        for path in [plain, stripped] {
            let bin = GoBinary::open(path).expect("open");
            let file = std::fs::read(path).expect("read");
            let plan = bin.probe_plan(&Scope::All);
            assert!(plan.functions.iter().any(|f| f.name == "runtime.growslice"), "{}", label);
            let is_write = |p: &&Probe| matches!(p.kind, ProbeKind::MapWriteCall(_));
            let write_calls: BTreeSet<u64> = plan.probes.iter().filter(is_write).map(|p| p.address).collect();
            let exits = plan.probes.iter().filter(|p| p.kind == ProbeKind::MapWriteExit).count();
            let (mut writes, mut moved, mut cheap, mut ended_by_next) = (0usize, 0usize, 0usize, 0usize);
            for f in &plan.functions {
                let body = &by_func[f.name.as_str()];
                assert_eq!(f.entry.address, body[0].addr, "{} {}", label, f.name);
                let rets: Vec<u64> = body.iter().filter(|i| i.text.starts_with("RET")).map(|i| i.addr).collect();
                let got: Vec<u64> = f.returns.iter().map(|r| r.address).collect();
                assert_eq!(got, rets, "{} {}: RET instructions", label, f.name);
                // The body probe follows the stack check's conditional jump.
                let check = body
                    .iter()
                    .position(|i| ["JBE", "JLS", "BLS"].iter().any(|j| i.text.starts_with(j)))
                    .expect("stack check");
                assert_eq!(f.body.map(|b| b.address), Some(body[check + 1].addr), "{} {}", label, f.name);
                let want: BTreeSet<u64> = insns
                    .iter()
                    .filter(|i| i.text.starts_with(&format!("CALL {}(SB)", f.name)))
                    .map(|i| i.addr)
                    .collect();
                let calls: Vec<_> = plan
                    .probes
                    .iter()
                    .filter(|p| p.target == f.name && !p.kind.is_exit())
                    .collect();
                let got: BTreeSet<u64> = calls.iter().map(|p| p.address).collect();
                // The GC cycle counter is probed in the function's body only.
                let probed = if f.role == Role::GcMarkTermination { BTreeSet::new() } else { want.clone() };
                assert_eq!(got, probed, "{} {}: call sites", label, f.name);
                assert_eq!(f.call_sites, want.len());
                for p in calls {
                    assert_eq!(
                        p.after.map(|a| a.address),
                        next_of.get(&p.address).copied(),
                        "{} {:#x}",
                        label,
                        p.address
                    );
                    if matches!(p.kind, ProbeKind::MapWriteCall(_)) {
                        let next = p.after.expect("after").address;
                        let class = if b.variant == Variant::Arm64 { arm64_class } else { amd64_class };
                        writes += 1;
                        let Some(want) = write_exit(&by_addr, &next_of, next, &write_calls, class) else {
                            // The next write's CALL probe ends this write.
                            ended_by_next += 1;
                            continue;
                        };
                        let exit = plan
                            .probes
                            .iter()
                            .find(|x| x.kind == ProbeKind::MapWriteExit && x.address == want && x.caller == p.caller);
                        let call = p.address;
                        let exit = exit.unwrap_or_else(|| panic!("{label} {call:#x}: no exit probe at {want:#x}"));
                        assert!(exit.emulated || want == next, "{label} {:#x}: {exit:?}", p.address);
                        moved += usize::from(want != next);
                        cheap += usize::from(exit.emulated);
                    }
                    let at = p.file_offset as usize;
                    let want = objdump_bytes(by_addr[&p.address], b.variant);
                    assert_eq!(
                        &file[at..at + want.len()],
                        &want[..],
                        "{label}: bytes at file offset of {:#x}",
                        p.address
                    );
                }
            }
            let file = path.display();
            eprintln!(
                "{label} {file}: {writes} map writes, {ended_by_next} ended by the next write's CALL, {exits} exit probes ({moved} past the next instruction, {cheap} emulated)"
            );
            assert_eq!(exits + ended_by_next, writes, "{label}: one write-exit probe per map write not ended by the next");
            // Most writes are followed by the value's store and a write-barrier check's branch.
            assert!(cheap * 4 >= exits * 3, "{label}: only {cheap} of {exits} write exits emulated");
        }
    }
}

/// Instructions searched after a map write's CALL (the plan's window).
const EXIT_WINDOW: usize = 16;

/// What a map write's exit probe may do with an instruction objdump shows.
#[derive(PartialEq)]
enum Class {
    /// The kernel emulates it: the probe may sit there.
    Emulated,
    /// Straight-line and synchronizing with nothing: the search goes on.
    Plain,
    /// Anything else ends the search.
    Refused,
}

/// Where objdump says a map write's exit probe belongs: the first `Emulated`
/// instruction of the same function within EXIT_WINDOW instructions from `next`,
/// reached through `Plain` ones only; `next` when there is none; no probe when it
/// is another write's CALL (whose own probe ends the write).
fn write_exit(
    by_addr: &BTreeMap<u64, &ObjdumpInsn>,
    next_of: &BTreeMap<u64, u64>,
    next: u64,
    write_calls: &BTreeSet<u64>,
    class: fn(&str, &str, &str) -> Class,
) -> Option<u64> {
    let function = &by_addr[&next].function;
    let mut at = next;
    for _ in 0..EXIT_WINDOW {
        let Some(i) = by_addr.get(&at).filter(|i| &i.function == function) else { return Some(next) };
        let (op, args) = i.text.split_once(' ').unwrap_or((&i.text, ""));
        match class(op, args, &i.hex) {
            Class::Emulated => return (!write_calls.contains(&at)).then_some(at),
            Class::Refused => return Some(next),
            Class::Plain => {}
        }
        let Some(&n) = next_of.get(&at) else { return Some(next) };
        at = n;
    }
    Some(next)
}

/// amd64 in Go syntax: emulated are direct CALL, JMP and Jcc, one-byte NOPs and PUSH
/// of a register; refused anything that branches, ends the function or
/// synchronizes (LOCK, XCHG with memory, fences, SYSCALL, traps).
fn amd64_class(op: &str, args: &str, hex: &str) -> Class {
    const REFUSED: &[&str] = &[
        "CALL", "JMP", "RET", "LOOP", "LOCK", "INT", "UD", "SYSCALL", "SYSENTER", "MFENCE", "LFENCE", "SFENCE", "HLT",
        "?",
    ];
    let direct = args.starts_with("0x") && !args.contains('(');
    let emulated = match op {
        "CALL" => hex.starts_with("e8"),
        "JMP" => direct,
        "NOPL" | "NOPW" | "NOPQ" => args.is_empty(),
        "PUSHQ" => !args.contains('(') && !args.starts_with('$'),
        _ => op.starts_with('J') && !op.ends_with("CXZ") && direct,
    };
    let atomic_xchg = op.starts_with("XCHG") && args.contains('(');
    if emulated {
        Class::Emulated
    } else if REFUSED.iter().any(|r| op.starts_with(r)) || op.starts_with('J') || atomic_xchg {
        Class::Refused
    } else {
        Class::Plain
    }
}

/// arm64 in Go syntax: emulated are BL/BLR (CALL), B/BR (JMP), RET, B.cond, CBZ,
/// TBZ, ADR and ADRP; plain only ordinary loads, stores and arithmetic, so
/// load-acquire/store-release, exclusives, LSE atomics, barriers, system
/// instructions and what objdump cannot decode are refused.
fn arm64_class(op: &str, _args: &str, _hex: &str) -> Class {
    const EMULATED: &[&str] = &[
        "CALL", "JMP", "RET", "BEQ", "BNE", "BCS", "BHS", "BCC", "BLO", "BMI", "BPL", "BVS", "BVC", "BHI", "BLS", "BGE",
        "BLT", "BGT", "BLE", "CBZ", "CBNZ", "CBZW", "CBNZW", "TBZ", "TBNZ", "ADR", "ADRP",
    ];
    const PLAIN: &[&str] = &[
        "MOVD", "MOVW", "MOVWU", "MOVH", "MOVHU", "MOVB", "MOVBU", "STP", "LDP", "STPW", "LDPW", "LDPSW", "FMOVD",
        "FMOVS", "FMOVQ", "FSTPQ", "FLDPQ", "FSTPD", "FLDPD", "ADD", "ADDW", "SUB", "SUBW", "ORR", "ORRW", "AND",
        "ANDW", "EOR", "EORW", "LSL", "LSR", "ASR", "MOVK", "CMP", "CMPW", "CMN", "TST", "TSTW", "NOOP", "NEG", "MUL",
        "CSEL", "CSET", "UBFX", "UBFIZ", "SBFX", "SBFIZ", "SXTW",
    ];
    // Addressing-mode suffixes (.P post-, .W pre-indexed) do not change the class.
    let base = op.split('.').next().unwrap_or(op);
    if EMULATED.contains(&base) {
        Class::Emulated
    } else if PLAIN.contains(&base) {
        Class::Plain
    } else {
        Class::Refused
    }
}

#[test]
fn layout_table_matches_dwarf() {
    for b in all_builds("layout_table_matches_dwarf") {
        let (plain, stripped, label) = (&b.plain, &b.stripped, b.label());
        let from_dwarf = GoBinary::open(plain).expect("open").layout();
        assert_eq!(from_dwarf.source, LayoutSource::Dwarf, "{}", label);
        let table = GoBinary::open(stripped).expect("open").layout();
        assert_eq!(table.source, LayoutSource::Table);
        assert!(table.verified, "{}: no verified table row", label);
        assert_eq!(
            (table.goid_offset, table.m_offset, table.procid_offset),
            (from_dwarf.goid_offset, from_dwarf.m_offset, from_dwarf.procid_offset),
            "{}: per-version table disagrees with DWARF",
            label
        );
        let v = GoBinary::open(plain).expect("open").version();
        assert_eq!(table_layout(v), table);
    }
}
