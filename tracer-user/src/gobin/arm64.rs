//! arm64 machine code: fixed 32-bit little-endian words decoded by hand — BL call
//! sites, RETs, the prologue stack check, kernel emulation, and the register
//! effects list tracking needs (encodings: Arm ARM "A64 instruction set encoding";
//! Go's stack check is `MOVD 16(g), R16; CMP; BLS morestack` with g in R28, Go
//! `src/cmd/internal/obj/arm64/obj7.go`, seen in 1.19 and 1.27). The kernel
//! simulates B, BL, B.cond, CBZ/TBZ, ADR/ADRP, literal LDR and BR/BLR/RET
//! (`arch/arm64/kernel/probes/decode-insn.c`); everything else is stepped out of line.

use super::disasm::{ALL_REGS, CallSite, CodeFacts, EXIT_WINDOW, Insn, Op, Operand, PROLOGUE_WINDOW};

const ARM64_RET: u32 = 0xd65f_03c0;

pub(crate) fn scan(code: &[u8], base: u64, want_call: impl Fn(u64) -> bool) -> CodeFacts {
    let mut facts = CodeFacts::default();
    let words: Vec<(u64, u32)> = code
        .chunks_exact(4)
        .enumerate()
        .map(|(i, w)| (base.wrapping_add(4 * i as u64), u32::from_le_bytes([w[0], w[1], w[2], w[3]])))
        .collect();
    for (i, &(pc, w)) in words.iter().enumerate() {
        if w & 0xfc00_0000 == 0x9400_0000 {
            // BL imm26: target = pc + sext(imm26) * 4.
            let imm = ((w & 0x03ff_ffff) << 6) as i32 >> 6;
            let target = pc.wrapping_add_signed(i64::from(imm) * 4);
            if want_call(target) {
                let next = words.get(i + 1);
                facts.calls.push(CallSite {
                    addr: pc,
                    target,
                    next: pc.wrapping_add(4),
                    next_emulated: next.is_some_and(|&(_, n)| emulated(n)),
                });
            }
        } else if w == ARM64_RET {
            facts.returns.push(pc);
        }
    }
    // Stack check: `MOVD 16(g), R16` (ldr x16, [x28, #16]) … `BLS morestack`.
    let ldr_guard = 0xf940_0b90u32;
    if let Some(start) = words.iter().take(PROLOGUE_WINDOW).position(|&(_, w)| w == ldr_guard) {
        let bcond = words
            .iter()
            .enumerate()
            .skip(start)
            .take(PROLOGUE_WINDOW)
            .find(|(_, (_, w))| w & 0xff00_0010 == 0x5400_0000);
        if let Some((j, _)) = bcond
            && let Some(&(pc, w)) = words.get(j + 1)
        {
            facts.after_stack_check = Some((pc, emulated(w)));
        }
    }
    facts
}

/// Instructions the arm64 kernel simulates rather than stepping out of line.
pub(crate) fn emulated(w: u32) -> bool {
    let b_bl = w & 0x7c00_0000 == 0x1400_0000;
    let bcond = w & 0xff00_0010 == 0x5400_0000;
    let cbz = w & 0x7e00_0000 == 0x3400_0000;
    let tbz = w & 0x7e00_0000 == 0x3600_0000;
    let adr = w & 0x1f00_0000 == 0x1000_0000;
    let ldr_lit = w & 0x3b00_0000 == 0x1800_0000;
    let br_blr_ret = w & 0xff9f_fc1f == 0xd61f_0000 || w & 0xfffffc1f == 0xd65f_0000;
    b_bl || bcond || cbz || tbz || adr || ldr_lit || br_blr_ret
}

/// The first emulated instruction at or after `next` reached through
/// [`passes_nothing_on`] instructions only, within [`EXIT_WINDOW`] and `code`
/// (see `disasm::exit_site`).
pub(crate) fn exit_site(code: &[u8], base: u64, next: u64) -> Option<u64> {
    let off = usize::try_from(next.checked_sub(base)?).ok()?;
    for (pc, w) in words(code.get(off..)?, next).take(EXIT_WINDOW) {
        if emulated(w) {
            return Some(pc);
        }
        if !passes_nothing_on(w) {
            return None;
        }
    }
    None
}

/// Straight-line instructions that synchronize with nothing, as a list of classes
/// (anything else ends the search): NOP; loads and stores with immediate, register
/// or pair addressing (load-acquire, store-release, exclusives and the LSE atomics
/// live in other classes: Go's atomics and inlined lock fast paths, Go
/// `src/cmd/compile/internal/arm64/ssa.go`); data processing on registers and
/// immediates, integer or SIMD/FP. Barriers, system instructions and traps are not
/// among them.
fn passes_nothing_on(w: u32) -> bool {
    let nop = w == 0xd503_201f;
    let ldst_unsigned_imm = w & 0x3b00_0000 == 0x3900_0000;
    // Unscaled, pre/post-indexed and unprivileged immediate forms (bit 21 clear).
    let ldst_imm9 = w & 0x3b20_0000 == 0x3800_0000;
    let ldst_reg_offset = w & 0x3b20_0c00 == 0x3820_0800;
    let ldst_pair = w & 0x3a00_0000 == 0x2800_0000;
    let dp_imm = w & 0x1c00_0000 == 0x1000_0000;
    let dp_reg = w & 0x0e00_0000 == 0x0a00_0000;
    let dp_simd_fp = w & 0x0e00_0000 == 0x0e00_0000;
    nop || ldst_unsigned_imm || ldst_imm9 || ldst_reg_offset || ldst_pair || dp_imm || dp_reg || dp_simd_fp
}

fn words(code: &[u8], base: u64) -> impl Iterator<Item = (u64, u32)> + '_ {
    code.chunks_exact(4)
        .enumerate()
        .map(move |(i, w)| (base.wrapping_add(4 * i as u64), u32::from_le_bytes([w[0], w[1], w[2], w[3]])))
}

/// Sign-extended `bits`-wide field at `shift`, times 4 (branch offsets).
fn branch_offset(w: u32, shift: u32, bits: u32) -> i64 {
    let field = (w >> shift) & ((1 << bits) - 1);
    let signed = ((field << (32 - bits)) as i32) >> (32 - bits);
    i64::from(signed) * 4
}

/// Decodes a whole arm64 function into [`Insn`]s.
pub(crate) fn decode(code: &[u8], base: u64) -> Vec<Insn> {
    words(code, base).map(|(pc, w)| summarize(pc, w)).collect()
}

fn bit(r: u32) -> u32 {
    if r < 31 { 1 << r } else { 0 }
}

fn summarize(pc: u64, w: u32) -> Insn {
    let rd = w & 31;
    let rn = (w >> 5) & 31;
    let rt2 = (w >> 10) & 31;
    let rm = (w >> 16) & 31;
    let branch = |off: i64, conditional: bool| Op::Branch { target: pc.wrapping_add_signed(off), conditional };
    let (op, writes) = if w & 0xfc00_0000 == 0x1400_0000 {
        (branch(branch_offset(w, 0, 26), false), 0) // B
    } else if w & 0xff00_0010 == 0x5400_0000 || w & 0x7e00_0000 == 0x3400_0000 {
        (branch(branch_offset(w, 5, 19), true), 0) // B.cond, CBZ/CBNZ
    } else if w & 0x7e00_0000 == 0x3600_0000 {
        (branch(branch_offset(w, 5, 14), true), 0) // TBZ/TBNZ
    } else if w == ARM64_RET {
        (Op::Ret, 0)
    } else if w & 0xfc00_0000 == 0x9400_0000 || w & 0xff9f_fc1f == 0xd61f_0000 {
        (Op::Other { ends_flow: true }, ALL_REGS) // BL, BR, BLR
    } else if w & 0xff20_fc1f == 0xeb00_001f {
        // CMP Xn, Xm (SUBS XZR, Xn, Xm, no shift).
        let reg = |r: u32| if r < 31 { Operand::Reg(r as u8) } else { Operand::Other };
        (Op::Cmp(reg(rn), reg(rm)), 0)
    } else if w & 0xffc0_0000 == 0xf940_0000 {
        // LDR Xt, [Xn, #imm12*8]
        let disp = i64::from((w >> 10) & 0xfff) * 8;
        let op =
            if rn < 31 { Op::Load { dst: rd as u8, base: rn as u8, disp } } else { Op::Other { ends_flow: false } };
        (op, bit(rd))
    } else if w == 0xd503_201f || [0xf900_0000, 0xa900_0000, 0x3900_0000, 0xb900_0000].contains(&(w & 0xffc0_0000)) {
        // NOP; STR/STP/STRB/STR(W) with unsigned or signed offset (no writeback).
        (Op::Other { ends_flow: false }, 0)
    } else if w & 0xffc0_0000 == 0xa940_0000 {
        // LDP Xt1, Xt2, [Xn, #imm7*8]: summarized as the load of Xt1.
        let imm7 = i64::from((w >> 15) & 0x7f);
        let disp = if imm7 >= 64 { imm7 - 128 } else { imm7 } * 8;
        let op = if rn < 31 && rd != rt2 {
            Op::Load { dst: rd as u8, base: rn as u8, disp }
        } else {
            Op::Other { ends_flow: false }
        };
        (op, bit(rd) | bit(rt2))
    } else if w & 0x7f80_0000 == 0x1100_0000
        || w & 0x7f80_0000 == 0x5100_0000
        || w & 0x7f20_0000 == 0x2a00_0000
        || w & 0x1f00_0000 == 0x1000_0000
    {
        (Op::Other { ends_flow: false }, bit(rd)) // ADD/SUB imm, ORR (MOV), ADR/ADRP
    } else {
        // Unknown effects: any register field may be a destination.
        (Op::Other { ends_flow: false }, bit(rd) | bit(rn) | bit(rt2) | bit(rm))
    };
    // MOV Xd, Xm (ORR Xd, XZR, Xm).
    let copy_from = (w & 0xffe0_ffe0 == 0xaa00_03e0 && rm < 31 && rd < 31).then_some(rm as u8);
    Insn { addr: pc, len: 4, op, writes, emulated: emulated(w), copy_from }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arm64_facts() {
        let words: [u32; 6] = [
            0xf940_0b90, // ldr x16, [x28,#16]
            0xeb30_63ff, // cmp sp, x16
            0x5400_0109, // b.ls
            0xf81e_0ffe, // str x30, [sp,#-32]!
            0x9400_0004, // bl +16
            ARM64_RET,
        ];
        let code: Vec<u8> = words.iter().flat_map(|w| w.to_le_bytes()).collect();
        let f = scan(&code, 0x1000, |t| t == 0x1020);
        assert_eq!(f.calls.len(), 1);
        assert_eq!((f.calls[0].addr, f.calls[0].next, f.calls[0].next_emulated), (0x1010, 0x1014, true));
        assert_eq!(f.returns, vec![0x1014]);
        assert_eq!(f.after_stack_check, Some((0x100c, false)));
    }

    fn exit_of(words: &[u32]) -> Option<u64> {
        let code: Vec<u8> = words.iter().flat_map(|w| w.to_le_bytes()).collect();
        exit_site(&code, 0x1000, 0x1000)
    }

    #[test]
    fn exit_site_after_straight_line_code() {
        // Go 1.27 after `BL mapassign_faststr`: ORR $1, ZR, R4; MOVB R4, (R0);
        // MOVD 200(RSP), R0; CBZ R0.
        assert_eq!(exit_of(&[0xb240_03e4, 0x3900_0004, 0xf940_67e0, 0xb400_0080]), Some(0x100c));
        // ADRP right after the call is itself emulated.
        assert_eq!(exit_of(&[0x9000_097b, 0xb946_8363]), Some(0x1000));
        // STP, LDR (register offset), pre-indexed STR, NOP, then RET (simulated: the
        // probe runs before it returns).
        assert_eq!(exit_of(&[0xa900_07e0, 0xf862_6820, 0xf81e_0ffe, 0xd503_201f, ARM64_RET]), Some(0x1010));
    }

    #[test]
    fn exit_site_refuses_synchronization_and_traps() {
        for (what, w) in [
            ("ldaddalw w1, w2, [x0] (inlined Unlock, LSE)", 0xb8e1_0002),
            ("ldaxr x1, [x0]", 0xc85f_fc01),
            ("stlxr w2, x1, [x0]", 0xc802_fc01),
            ("stlr x1, [x0]", 0xc89f_fc01),
            ("ldar x1, [x0]", 0xc8df_fc01),
            ("casal x1, x2, [x0]", 0xc8e1_fc02),
            ("swpal x1, x2, [x0]", 0xf8e1_8002),
            ("dmb ish", 0xd503_3bbf),
            ("svc #0", 0xd400_0001),
            ("brk #0", 0xd420_0000),
            ("ldraa x1, [x0]", 0xf820_0401),
        ] {
            assert_eq!(exit_of(&[0xf940_67e0, w, 0xb400_0080]), None, "{what}");
        }
        // MOVD R1, R0 repeated up to and past the window, then CBZ.
        let mut words = vec![0xaa01_03e0u32; EXIT_WINDOW - 1];
        words.push(0xb400_0080);
        assert_eq!(exit_of(&words), Some(0x1000 + 4 * (EXIT_WINDOW as u64 - 1)));
        words.insert(0, 0xaa01_03e0);
        assert_eq!(exit_of(&words), None, "window");
    }

    #[test]
    fn summaries_for_register_tracking() {
        let words: [u32; 6] = [
            0xf940_0844, // MOVD 16(R2), R4
            0xd503_201f, // NOOP
            0xeb04_001f, // CMP R4, R0 (cmp x0, x4)
            0x5400_03a1, // BNE 29(PC)
            0xa940_1444, // LDP (R2), (R4, R5)
            0x97ff_9433, // CALL
        ];
        let code: Vec<u8> = words.iter().flat_map(|w| w.to_le_bytes()).collect();
        let insns = decode(&code, 0x1000);
        assert_eq!(insns[0].op, Op::Load { dst: 4, base: 2, disp: 16 });
        assert_eq!(insns[0].writes, 1 << 4);
        assert_eq!(insns[1].writes, 0);
        assert_eq!(insns[2].op, Op::Cmp(Operand::Reg(0), Operand::Reg(4)));
        assert_eq!(insns[3].op, Op::Branch { target: 0x100c + 29 * 4, conditional: true });
        assert_eq!(insns[4].op, Op::Load { dst: 4, base: 2, disp: 0 });
        assert_eq!(insns[4].writes, (1 << 4) | (1 << 5));
        assert_eq!(insns[5].writes, ALL_REGS);
        assert!(insns[3].emulated && !insns[2].emulated);
    }
}
