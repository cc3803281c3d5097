//! Register reads for Go's amd64 register ABI: the only arch-specific code here.

use aya_ebpf::programs::ProbeContext;

/// Reads one saved register. Volatile, so LLVM cannot merge the loads of a `match`
/// into one load through a computed context offset, which the verifier rejects
/// (callers also read unconditionally, since LLVM still sinks loads out of branches).
macro_rules! reg {
    ($ctx:expr, $field:ident) => {
        // SAFETY: a uprobe's context is the trapped task's register file; the field
        // pointer is in bounds and aligned.
        unsafe { core::ptr::read_volatile(&raw const (*$ctx.regs).$field) }
    };
}

/// The first five integer arguments of an ABIInternal call at its CALL
/// instruction: AX, BX, CX, DI, SI. Read unconditionally: see [`reg!`].
#[inline(always)]
pub fn args5(ctx: &ProbeContext) -> [u64; 5] {
    [reg!(ctx, rax), reg!(ctx, rbx), reg!(ctx, rcx), reg!(ctx, rdi), reg!(ctx, rsi)]
}

/// Register by x86 hardware number (AX=0, CX=1, DX=2, BX=3, SP=4, BP=5, SI=6,
/// DI=7, R8..R15). All are read, then indexed: a `match` on a runtime number
/// compiles to a load through a computed context offset, which the verifier rejects.
#[inline(always)]
pub fn by_number(ctx: &ProbeContext, n: u8) -> u64 {
    let all = [
        reg!(ctx, rax),
        reg!(ctx, rcx),
        reg!(ctx, rdx),
        reg!(ctx, rbx),
        reg!(ctx, rsp),
        reg!(ctx, rbp),
        reg!(ctx, rsi),
        reg!(ctx, rdi),
        reg!(ctx, r8),
        reg!(ctx, r9),
        reg!(ctx, r10),
        reg!(ctx, r11),
        reg!(ctx, r12),
        reg!(ctx, r13),
        reg!(ctx, r14),
        reg!(ctx, r15),
    ];
    all[(n & 15) as usize]
}

/// The current goroutine's `g`, which Go keeps in R14.
#[inline(always)]
pub fn g(ctx: &ProbeContext) -> u64 {
    reg!(ctx, r14)
}

/// The probed instruction's address.
#[inline(always)]
pub fn pc(ctx: &ProbeContext) -> u64 {
    reg!(ctx, rip)
}
