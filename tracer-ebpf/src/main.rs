//! ghostrace's kernel side: uprobes on Go call sites that report slice growth, map
//! iteration and writes, and `container/list` removals to user space.
#![no_std]
#![no_main]
#![feature(asm_experimental_arch)]

/// Declares one program twice over one body: `$multi` in a `uprobe.multi` section,
/// for uprobe-multi links (Linux 6.6+), and `$single` in a plain `uprobe` section,
/// for one perf-event link per probe (older kernels). Both read the probe id from
/// the attach cookie; user space loads the twin of the attach path it chose.
#[macro_export]
macro_rules! uprobe_twins {
    ($multi:ident, $single:ident, $body:ident) => {
        #[aya_ebpf::macros::uprobe(multi)]
        pub fn $multi(ctx: aya_ebpf::programs::ProbeContext) -> u32 {
            $body(ctx)
        }

        #[aya_ebpf::macros::uprobe]
        pub fn $single(ctx: aya_ebpf::programs::ProbeContext) -> u32 {
            $body(ctx)
        }
    };
}

mod atomic;
mod emit;
mod gc_mark_termination;
mod hit_cache;
mod list_remove_enter;
mod list_remove_exit;
mod log;
mod map_iter_next_call;
mod map_iter_start_call;
mod map_write_call;
mod map_write_exit;
mod maps;
mod process_exec;
mod process_exit;
mod process_fork;
mod regs;
mod slice_grow_call;

// bpf_probe_read_user and the stack helpers are GPL-only.
#[unsafe(link_section = "license")]
#[unsafe(no_mangle)]
static LICENSE: [u8; 4] = *b"GPL\0";

#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    // SAFETY: the verifier rejects programs that could reach a panic.
    unsafe { core::hint::unreachable_unchecked() }
}
