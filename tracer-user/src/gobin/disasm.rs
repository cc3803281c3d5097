//! Machine-code facts: call sites, RETs, the end of the prologue stack check, and
//! whether the kernel emulates an instruction (so a uprobe on it costs one trap).
//!
//! amd64 goes through the iced-x86 decoder (this file); arm64 lives in `arm64.rs`.
//! Kernel emulation list for x86: `arch/x86/kernel/uprobes.c`
//! (`branch_setup_xol_ops`: CALL/JMP rel, Jcc, 0x90 NOP; `push_setup_xol_ops`:
//! PUSH r64).

use iced_x86::{
    Code, Decoder, DecoderOptions, FlowControl, Instruction, InstructionInfoFactory, Mnemonic, OpAccess, OpKind,
    Register,
};

use super::Arch;

/// A direct call found in a function's code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct CallSite {
    pub addr: u64,
    pub target: u64,
    /// Address of the instruction after the call (where results are in registers).
    pub next: u64,
    /// Whether a probe on `next` would be emulated.
    pub next_emulated: bool,
}

/// Decoded summary of one function body.
#[derive(Clone, Debug, Default)]
pub(crate) struct CodeFacts {
    pub calls: Vec<CallSite>,
    pub returns: Vec<u64>,
    /// First instruction after the stack-bound check's conditional branch, and
    /// whether it is emulated.
    pub after_stack_check: Option<(u64, bool)>,
}

/// Decodes `code` (mapped at `base`). `want_call(target)` filters direct calls.
pub(crate) fn scan(arch: Arch, code: &[u8], base: u64, want_call: impl Fn(u64) -> bool) -> CodeFacts {
    match arch {
        Arch::Amd64 => scan_amd64(code, base, want_call),
        Arch::Arm64 => super::arm64::scan(code, base, want_call),
    }
}

/// Instructions searched for the stack check at a function's start.
pub(crate) const PROLOGUE_WINDOW: usize = 6;

fn scan_amd64(code: &[u8], base: u64, want_call: impl Fn(u64) -> bool) -> CodeFacts {
    let mut facts = CodeFacts::default();
    let mut decoder = Decoder::with_ip(64, code, base, DecoderOptions::NONE);
    let mut insn = Instruction::default();
    let mut pending_call: Option<(u64, u64)> = None;
    let mut saw_check = false;
    let mut count = 0usize;
    while decoder.can_decode() {
        decoder.decode_out(&mut insn);
        count += 1;
        if let Some((addr, target)) = pending_call.take() {
            facts.calls.push(CallSite { addr, target, next: insn.ip(), next_emulated: amd64_emulated(&insn) });
        }
        if count <= PROLOGUE_WINDOW && facts.after_stack_check.is_none() {
            if is_stack_check_cmp(&insn) {
                saw_check = true;
            } else if saw_check && is_jcc(&insn) {
                let next = insn.next_ip();
                if let Some(mut d) = decoder_at(code, base, next) {
                    facts.after_stack_check = Some((next, amd64_emulated(&d.decode())));
                }
            }
        }
        match insn.code() {
            Code::Call_rel32_64 if want_call(insn.near_branch_target()) => {
                pending_call = Some((insn.ip(), insn.near_branch_target()));
            }
            Code::Retnq | Code::Retnq_imm16 => facts.returns.push(insn.ip()),
            _ => {}
        }
    }
    if let Some((addr, target)) = pending_call {
        // A call as the last instruction (a no-return callee like panic).
        let next = base.wrapping_add(code.len() as u64);
        facts.calls.push(CallSite { addr, target, next, next_emulated: false });
    }
    facts
}

/// Absolute addresses of the RIP-relative memory operands in amd64 `code`.
pub(crate) fn rip_relative_targets(code: &[u8], base: u64) -> Vec<u64> {
    let mut d = Decoder::with_ip(64, code, base, DecoderOptions::NONE);
    d.iter().filter(|i| i.is_ip_rel_memory_operand()).map(|i| i.ip_rel_memory_address()).collect()
}

/// A decoder over `code` (mapped at `base`) from `addr` on, if `addr` is inside it.
fn decoder_at(code: &[u8], base: u64, addr: u64) -> Option<Decoder<'_>> {
    let rest = code.get(usize::try_from(addr.checked_sub(base)?).ok()?..).filter(|r| !r.is_empty())?;
    Some(Decoder::with_ip(64, rest, addr, DecoderOptions::NONE))
}

/// Instructions searched from a call's return address for an emulated one.
pub(crate) const EXIT_WINDOW: usize = 16;

/// Where a probe marking the end of a call whose return address is `next` can sit
/// on an emulated instruction: the first one at or after `next` reached through
/// straight-line code that hands nothing to another goroutine (amd64:
/// [`amd64_passes_nothing_on`]; arm64: `arm64::exit_site`), within [`EXIT_WINDOW`]
/// instructions and the function's `code`. Execution after the return reaches it
/// on every path, and no other goroutine can be ordered after the call before it,
/// so it ends the same interval. None: no such instruction.
pub(crate) fn exit_site(arch: Arch, code: &[u8], base: u64, next: u64) -> Option<u64> {
    match arch {
        Arch::Amd64 => {
            let mut d = decoder_at(code, base, next)?;
            let mut insn = Instruction::default();
            for _ in 0..EXIT_WINDOW {
                if !d.can_decode() {
                    return None;
                }
                d.decode_out(&mut insn);
                if amd64_emulated(&insn) {
                    return Some(insn.ip());
                }
                if !amd64_passes_nothing_on(&insn) {
                    return None;
                }
            }
            None
        }
        Arch::Arm64 => super::arm64::exit_site(code, base, next),
    }
}

/// Straight-line code (no branch, call, return, trap or invalid bytes) that
/// synchronizes with nothing. The compiler's atomics on amd64 are LOCK-prefixed
/// (XADD, CMPXCHG, AND, OR) or XCHG with memory (`Store`, implicitly locked), and
/// inlined lock fast paths are built from them (`sync.(*Mutex).Unlock`: LOCK XADD);
/// Go `src/cmd/compile/internal/amd64/ssa.go`, 1.19 and 1.27. Fences and HLT are
/// refused too.
fn amd64_passes_nothing_on(insn: &Instruction) -> bool {
    use Mnemonic::*;
    let xchg_mem = insn.mnemonic() == Xchg && (insn.op0_kind() == OpKind::Memory || insn.op1_kind() == OpKind::Memory);
    insn.flow_control() == FlowControl::Next
        && !insn.has_lock_prefix()
        && !xchg_mem
        && !matches!(insn.mnemonic(), Mfence | Lfence | Sfence | Hlt)
}

/// Whether any byte position holds `E8 rel32` whose target satisfies `want`: every
/// real `CALL rel32` to a wanted target is among these positions.
pub(crate) fn may_call_rel32(code: &[u8], base: u64, want: impl Fn(u64) -> bool) -> bool {
    code.windows(5).enumerate().any(|(i, w)| {
        w[0] == 0xe8 && {
            let rel = i32::from_le_bytes([w[1], w[2], w[3], w[4]]);
            want(base.wrapping_add(i as u64 + 5).wrapping_add_signed(i64::from(rel)))
        }
    })
}

/// `CMPQ SP, 16(Rg)` or `CMPQ R12, 16(Rg)` (large frames): compares against
/// `g.stackguard0` (offset 16 of `runtime.g` in every version; Go
/// `src/runtime/runtime2.go`), with `g` in R14 from 1.17 or loaded into CX before.
fn is_stack_check_cmp(insn: &Instruction) -> bool {
    insn.code() == Code::Cmp_r64_rm64
        && insn.op1_kind() == OpKind::Memory
        && insn.memory_displacement64() == 16
        && insn.memory_index() == Register::None
        || insn.code() == Code::Cmp_rm64_r64 && insn.op0_kind() == OpKind::Memory && insn.memory_displacement64() == 16
}

/// Conditional near/short branch (Jcc rel8 / rel32).
fn is_jcc(insn: &Instruction) -> bool {
    use Mnemonic::*;
    insn.op0_kind() == OpKind::NearBranch64
        && matches!(
            insn.mnemonic(),
            Ja | Jae | Jb | Jbe | Je | Jg | Jge | Jl | Jle | Jne | Jno | Jnp | Jns | Jo | Jp | Js
        )
}

/// Whether x86 uprobes emulate `insn` instead of single-stepping it.
pub(crate) fn amd64_emulated(insn: &Instruction) -> bool {
    if is_jcc(insn) {
        return true;
    }
    matches!(
        insn.code(),
        Code::Call_rel32_64
            | Code::Jmp_rel32_64
            | Code::Jmp_rel8_64
            | Code::Nopw
            | Code::Nopd
            | Code::Nopq
            | Code::Push_r64
    )
}

/// Hardware number (AX=0 … R15=15) of the general register `r` is part of, any size.
pub(crate) fn gpr_number(r: Register) -> Option<u8> {
    use Register::*;
    const R64: [Register; 16] = [RAX, RCX, RDX, RBX, RSP, RBP, RSI, RDI, R8, R9, R10, R11, R12, R13, R14, R15];
    const R32: [Register; 16] = [EAX, ECX, EDX, EBX, ESP, EBP, ESI, EDI, R8D, R9D, R10D, R11D, R12D, R13D, R14D, R15D];
    const R16: [Register; 16] = [AX, CX, DX, BX, SP, BP, SI, DI, R8W, R9W, R10W, R11W, R12W, R13W, R14W, R15W];
    const R8B: [Register; 16] = [AL, CL, DL, BL, SPL, BPL, SIL, DIL, R8L, R9L, R10L, R11L, R12L, R13L, R14L, R15L];
    const HIGH: [Register; 4] = [AH, CH, DH, BH];
    [&R64[..], &R32, &R16, &R8B, &HIGH].iter().find_map(|set| set.iter().position(|&x| x == r)).map(|n| n as u8)
}

/// Whether the instruction at the start of `code` is emulated.
pub(crate) fn emulated_at(arch: Arch, code: &[u8], addr: u64) -> bool {
    match arch {
        Arch::Amd64 => {
            let mut d = Decoder::with_ip(64, code, addr, DecoderOptions::NONE);
            d.can_decode() && amd64_emulated(&d.decode())
        }
        Arch::Arm64 => {
            code.get(..4).is_some_and(|w| super::arm64::emulated(u32::from_le_bytes([w[0], w[1], w[2], w[3]])))
        }
    }
}

/// A decoded instruction reduced to what register tracking needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Insn {
    pub addr: u64,
    pub len: u8,
    pub op: Op,
    /// Bit n set: general register n may be written (all bits: unknown effects).
    pub writes: u32,
    /// The kernel emulates it (see [`amd64_emulated`]).
    pub emulated: bool,
    /// A 64-bit register-to-register move: the register it writes now holds this one's value.
    pub copy_from: Option<u8>,
}

/// The instruction classes register tracking distinguishes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Op {
    /// 64-bit compare of two operands.
    Cmp(Operand, Operand),
    /// 64-bit compare of an operand with an immediate (amd64).
    CmpImm(Operand),
    /// `MOV dst, [base+disp]` (64-bit load without index).
    Load {
        dst: u8,
        base: u8,
        disp: i64,
    },
    /// Direct jump; `conditional` for Jcc.
    Branch {
        target: u64,
        conditional: bool,
    },
    Ret,
    /// Calls, indirect jumps, anything else that ends straight-line flow.
    Other {
        ends_flow: bool,
    },
}

/// A compare operand.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Operand {
    Reg(u8),
    /// `[base+disp]` without index register.
    Mem {
        base: u8,
        disp: i64,
    },
    Other,
}

pub(crate) const ALL_REGS: u32 = u32::MAX;

/// Decodes a whole amd64 function into [`Insn`]s.
pub(crate) fn decode_amd64(code: &[u8], base: u64) -> Vec<Insn> {
    let mut out = Vec::new();
    let mut decoder = Decoder::with_ip(64, code, base, DecoderOptions::NONE);
    let mut insn = Instruction::default();
    let mut info = InstructionInfoFactory::new();
    while decoder.can_decode() {
        decoder.decode_out(&mut insn);
        out.push(summarize(&insn, &mut info));
    }
    out
}

fn operand(insn: &Instruction, i: u32) -> Operand {
    match insn.op_kind(i) {
        OpKind::Register => {
            let r = if i == 0 { insn.op0_register() } else { insn.op1_register() };
            gpr_number(r).map_or(Operand::Other, Operand::Reg)
        }
        OpKind::Memory if insn.memory_index() == Register::None => match gpr_number(insn.memory_base()) {
            Some(base) => Operand::Mem { base, disp: insn.memory_displacement64() as i64 },
            None => Operand::Other,
        },
        _ => Operand::Other,
    }
}

fn summarize(insn: &Instruction, info: &mut InstructionInfoFactory) -> Insn {
    use Mnemonic::*;
    let (addr, len) = (insn.ip(), insn.len() as u8);
    let reg_bit = |r: Register| gpr_number(r).map_or(0, |n| 1u32 << n);
    let op0_write = if insn.op0_kind() == OpKind::Register { reg_bit(insn.op0_register()) } else { 0 };
    let (op, writes) = match insn.mnemonic() {
        Cmp if insn.code() == Code::Cmp_r64_rm64 || insn.code() == Code::Cmp_rm64_r64 => {
            (Op::Cmp(operand(insn, 0), operand(insn, 1)), 0)
        }
        Cmp if insn.code() == Code::Cmp_rm64_imm8 || insn.code() == Code::Cmp_rm64_imm32 => {
            (Op::CmpImm(operand(insn, 0)), 0)
        }
        Cmp | Test | Bt | Nop => (Op::Other { ends_flow: false }, 0),
        _ if is_jcc(insn) => (Op::Branch { target: insn.near_branch_target(), conditional: true }, 0),
        Jmp if insn.op0_kind() == OpKind::NearBranch64 => {
            (Op::Branch { target: insn.near_branch_target(), conditional: false }, 0)
        }
        Ret => (Op::Ret, 0),
        Mov if insn.code() == Code::Mov_r64_rm64 && insn.op1_kind() == OpKind::Memory => {
            let load = match (gpr_number(insn.op0_register()), operand(insn, 1)) {
                (Some(dst), Operand::Mem { base, disp }) => Op::Load { dst, base, disp },
                _ => Op::Other { ends_flow: false },
            };
            (load, op0_write)
        }
        // Instructions whose only register effect is writing operand 0.
        Mov | Movzx | Movsx | Movsxd | Lea | Add | Sub | And | Or | Xor | Inc | Dec | Neg | Not | Shl | Shr | Sar
        | Rol | Ror | Adc | Sbb | Movups | Movaps | Movdqu | Movq | Movd | Pxor | Xorps | Seta | Setae | Setb
        | Setbe | Sete | Setg | Setge | Setl | Setle | Setne | Cmova | Cmovae | Cmovb | Cmovbe | Cmove | Cmovg
        | Cmovge | Cmovl | Cmovle | Cmovne => (Op::Other { ends_flow: false }, op0_write),
        Imul if insn.op_count() >= 2 => (Op::Other { ends_flow: false }, op0_write),
        Push => (Op::Other { ends_flow: false }, 1 << 4),
        Pop => (Op::Other { ends_flow: false }, op0_write | 1 << 4),
        Call | Jmp | Int3 | Ud2 | Hlt => (Op::Other { ends_flow: true }, ALL_REGS),
        // Straight-line instructions with implicit operands (one-operand MUL/IMUL/DIV
        // write RAX and RDX, CQO writes RDX, string ops RSI/RDI/RCX...): iced's
        // operand tables name every register written.
        _ if insn.code() != Code::INVALID && insn.flow_control() == FlowControl::Next => {
            (Op::Other { ends_flow: false }, written_gprs(insn, info))
        }
        // Unknown effects: assume every register changed.
        _ => (Op::Other { ends_flow: false }, ALL_REGS),
    };
    let copy_from = if matches!(insn.code(), Code::Mov_r64_rm64 | Code::Mov_rm64_r64)
        && insn.op0_kind() == OpKind::Register
        && insn.op1_kind() == OpKind::Register
    {
        gpr_number(insn.op1_register())
    } else {
        None
    };
    Insn { addr, len, op, writes, emulated: amd64_emulated(insn), copy_from }
}

/// General registers `insn` may write, explicitly or implicitly.
fn written_gprs(insn: &Instruction, info: &mut InstructionInfoFactory) -> u32 {
    info.info(insn)
        .used_registers()
        .iter()
        .filter(|u| {
            matches!(u.access(), OpAccess::Write | OpAccess::CondWrite | OpAccess::ReadWrite | OpAccess::ReadCondWrite)
        })
        .filter_map(|u| gpr_number(u.register()))
        .fold(0, |m, n| m | 1 << n)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Go 1.24 prologue + body: cmp rsp,[r14+0x10]; jbe; push rbp; mov rbp,rsp;
    /// call rel32 (to 0x2000); mov rax,rbx; pop rbp; ret.
    const AMD64: &[u8] = &[
        0x49, 0x3b, 0x66, 0x10, // cmp rsp, [r14+0x10]
        0x76, 0x10, // jbe
        0x55, // push rbp
        0x48, 0x89, 0xe5, // mov rbp, rsp
        0xe8, 0xf1, 0x0f, 0x00, 0x00, // call 0x2000 (from 0x100a, next 0x100f)
        0x48, 0x89, 0xd8, // mov rax, rbx
        0x5d, // pop rbp
        0xc3, // ret
    ];

    #[test]
    fn amd64_facts() {
        let f = scan(Arch::Amd64, AMD64, 0x1000, |t| t == 0x2000);
        assert_eq!(f.calls, vec![CallSite { addr: 0x100a, target: 0x2000, next: 0x100f, next_emulated: false }]);
        assert_eq!(f.returns, vec![0x1013]);
        assert_eq!(f.after_stack_check, Some((0x1006, true)));
        assert!(scan(Arch::Amd64, AMD64, 0x1000, |_| false).calls.is_empty());
        assert!(may_call_rel32(AMD64, 0x1000, |t| t == 0x2000));
        assert!(!may_call_rel32(AMD64, 0x1000, |t| t == 0x2001));
    }

    #[test]
    fn amd64_emulation_classes() {
        for (bytes, want) in [
            (&[0xe8, 0, 0, 0, 0][..], true),
            (&[0x90], true),
            (&[0x41, 0x55], true),
            (&[0x0f, 0x84, 0, 0, 0, 0], true),
            (&[0xc3], false),
            (&[0x48, 0x89, 0xd8], false),
            (&[0x0f, 0x1f, 0x44, 0, 0], false),
        ] {
            assert_eq!(emulated_at(Arch::Amd64, bytes, 0), want, "{bytes:02x?}");
        }
    }

    const MOV_LOAD: &[u8] = &[0x48, 0x8b, 0x54, 0x24, 0x58]; // mov rdx, [rsp+0x58]
    const MOV_STORE: &[u8] = &[0x48, 0x89, 0x50, 0x08]; // mov [rax+8], rdx
    const CMP_WB: &[u8] = &[0x83, 0x3d, 0, 0, 0, 0, 0]; // cmp dword [rip+0], 0 (writeBarrier)
    const JNE: &[u8] = &[0x75, 0x0a];

    /// `exit_site` from the start of the concatenated `parts` (mapped at 0x1000).
    fn exit_of(parts: &[&[u8]]) -> Option<u64> {
        exit_site(Arch::Amd64, &parts.concat(), 0x1000, 0x1000)
    }

    #[test]
    fn exit_site_after_straight_line_code() {
        // The store of the value, the write-barrier check, then its JNE.
        assert_eq!(exit_of(&[MOV_LOAD, MOV_STORE, CMP_WB, JNE]), Some(0x1000 + 16));
        // An emulated instruction right at the return address; a CALL rel32 (the
        // probe fires before it runs); XCHG between registers (no memory).
        assert_eq!(exit_of(&[&[0x90], MOV_LOAD]), Some(0x1000));
        assert_eq!(exit_of(&[MOV_STORE, &[0xe8, 0, 0, 0, 0]]), Some(0x1004));
        assert_eq!(exit_of(&[&[0x48, 0x87, 0xd1], JNE]), Some(0x1003));
        // Not from before the function's code.
        assert_eq!(exit_site(Arch::Amd64, JNE, 0x1000, 0x0fff), None);
    }

    #[test]
    fn exit_site_refuses_what_may_release_or_leave() {
        for (what, first) in [
            ("lock xadd [rax], ecx (inlined Unlock)", &[0xf0, 0x0f, 0xc1, 0x08][..]),
            ("lock cmpxchg [rbx], ecx", &[0xf0, 0x0f, 0xb1, 0x0b]),
            ("xchg [rax], ecx (atomic Store)", &[0x87, 0x08]),
            ("mfence", &[0x0f, 0xae, 0xf0]),
            ("ret", &[0xc3]),
            ("call rdx (closure)", &[0xff, 0xd2]),
            ("jmp rax (jump table)", &[0xff, 0xe0]),
            ("int3", &[0xcc]),
            ("ud2", &[0x0f, 0x0b]),
            ("syscall", &[0x0f, 0x05]),
            ("truncated instruction", &[0x48, 0x8b]),
        ] {
            assert_eq!(exit_of(&[MOV_LOAD, first, JNE]), None, "{what}");
        }
        // Code ends before an emulated instruction.
        assert_eq!(exit_of(&[MOV_LOAD, MOV_STORE]), None);
    }

    #[test]
    fn exit_site_window() {
        let mov: &[u8] = &[0x48, 0x89, 0xd8]; // mov rax, rbx
        let within: Vec<&[u8]> = std::iter::repeat_n(mov, EXIT_WINDOW - 1).chain([JNE]).collect();
        assert_eq!(exit_of(&within), Some(0x1000 + 3 * (EXIT_WINDOW as u64 - 1)));
        let beyond: Vec<&[u8]> = std::iter::repeat_n(mov, EXIT_WINDOW).chain([JNE]).collect();
        assert_eq!(exit_of(&beyond), None);
    }

    #[test]
    fn summaries_for_register_tracking() {
        // cmp [rcx+0x10], rax ; mov rbx, [rcx+0x10] ; jne ; call ; ret
        let code = [0x48, 0x39, 0x41, 0x10, 0x48, 0x8b, 0x59, 0x10, 0x75, 0x00, 0xe8, 0, 0, 0, 0, 0xc3];
        let insns = decode_amd64(&code, 0x100);
        assert_eq!(insns[0].op, Op::Cmp(Operand::Mem { base: 1, disp: 0x10 }, Operand::Reg(0)));
        assert_eq!(insns[0].writes, 0);
        assert_eq!(insns[1].op, Op::Load { dst: 3, base: 1, disp: 0x10 });
        // cmp qword [rcx], 0 (lazyInit's `l.root.next == nil`); cmp dword [rcx], 0 is no 64-bit compare
        let imm = decode_amd64(&[0x48, 0x83, 0x39, 0x00, 0x83, 0x39, 0x00], 0x1000);
        assert_eq!(imm[0].op, Op::CmpImm(Operand::Mem { base: 1, disp: 0 }));
        assert_eq!(imm[1].op, Op::Other { ends_flow: false });
        assert_eq!(insns[1].writes, 1 << 3);
        assert_eq!(insns[2].op, Op::Branch { target: 0x10a, conditional: true });
        assert_eq!(insns[3].writes, ALL_REGS);
        assert_eq!(insns[4].op, Op::Ret);
        assert!(insns.iter().all(|i| i.copy_from.is_none()));
        // mov r10, rdx (both encodings) copies; mov r10d, edx does not (32 bits).
        for bytes in [&[0x49, 0x89, 0xd2][..], &[0x4c, 0x8b, 0xd2]] {
            let i = decode_amd64(bytes, 0)[0];
            assert_eq!((i.copy_from, i.writes), (Some(2), 1 << 10), "{bytes:02x?}");
        }
        assert_eq!(decode_amd64(&[0x41, 0x89, 0xd2], 0)[0].copy_from, None);
    }

    #[test]
    fn implicit_register_writes() {
        for (what, bytes, want) in [
            ("imul r8 (x % 3 in Go 1.19-1.22)", &[0x49, 0xf7, 0xe8][..], 1u32 << 0 | 1 << 2),
            ("mul rcx", &[0x48, 0xf7, 0xe1], 1 << 0 | 1 << 2),
            ("idiv rcx", &[0x48, 0xf7, 0xf9], 1 << 0 | 1 << 2),
            ("div ecx", &[0xf7, 0xf1], 1 << 0 | 1 << 2),
            ("cqo", &[0x48, 0x99], 1 << 2),
            ("cdq", &[0x99], 1 << 2),
            ("cwd", &[0x66, 0x99], 1 << 2),
            ("cdqe", &[0x48, 0x98], 1 << 0),
            ("xchg rax, rbx", &[0x48, 0x93], 1 << 0 | 1 << 3),
            ("lock cmpxchg [rbx], ecx", &[0xf0, 0x0f, 0xb1, 0x0b], 1 << 0),
            ("rep movsb", &[0xf3, 0xa4], 1 << 1 | 1 << 6 | 1 << 7),
            ("bswap rdx", &[0x48, 0x0f, 0xca], 1 << 2),
        ] {
            assert_eq!(decode_amd64(bytes, 0x100)[0].writes, want, "{what}");
        }
        // Leaving straight-line flow, or undecodable: every register.
        for bytes in [&[0x0f, 0x05][..], &[0x48, 0x8b]] {
            assert_eq!(decode_amd64(bytes, 0x100)[0].writes, ALL_REGS, "{bytes:02x?}");
        }
    }

    #[test]
    fn register_numbers() {
        assert_eq!(gpr_number(Register::RAX), Some(0));
        assert_eq!(gpr_number(Register::EBX), Some(3));
        assert_eq!(gpr_number(Register::R14), Some(14));
        assert_eq!(gpr_number(Register::XMM0), None);
        assert_eq!(gpr_number(Register::BH), Some(3));
        assert_eq!(gpr_number(Register::R9L), Some(9));
    }
}
