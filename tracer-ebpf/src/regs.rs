//! Register reads for Go's amd64 register ABI: the only arch-specific code here.

use aya_ebpf::{bindings::pt_regs, programs::ProbeContext};

fn regs(ctx: &ProbeContext) -> &pt_regs {
    // SAFETY: a uprobe's context is the trapped task's register file.
    unsafe { &*ctx.regs }
}

/// Integer argument `n` of an ABIInternal call at its CALL instruction:
/// AX, BX, CX, DI, SI, R8, R9, R10, R11.
#[inline(always)]
pub fn arg(ctx: &ProbeContext, n: usize) -> u64 {
    let r = regs(ctx);
    match n {
        0 => r.rax,
        1 => r.rbx,
        2 => r.rcx,
        3 => r.rdi,
        4 => r.rsi,
        5 => r.r8,
        6 => r.r9,
        7 => r.r10,
        _ => r.r11,
    }
}

/// Register by x86 hardware number (AX=0, CX=1, DX=2, BX=3, SP=4, BP=5, SI=6, DI=7, R8..R15).
#[inline(always)]
pub fn by_number(ctx: &ProbeContext, n: u8) -> u64 {
    let r = regs(ctx);
    match n {
        0 => r.rax,
        1 => r.rcx,
        2 => r.rdx,
        3 => r.rbx,
        4 => r.rsp,
        5 => r.rbp,
        6 => r.rsi,
        7 => r.rdi,
        8 => r.r8,
        9 => r.r9,
        10 => r.r10,
        11 => r.r11,
        12 => r.r12,
        13 => r.r13,
        14 => r.r14,
        _ => r.r15,
    }
}

/// The current goroutine's `g`, which Go keeps in R14.
#[inline(always)]
pub fn g(ctx: &ProbeContext) -> u64 {
    regs(ctx).r14
}

/// The probed instruction's address.
#[inline(always)]
pub fn pc(ctx: &ProbeContext) -> u64 {
    regs(ctx).rip
}
