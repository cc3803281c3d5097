//! ghostrace's kernel side: uprobes on Go call sites that report slice growth, map
//! iteration and writes, and `container/list` removals to user space.
#![no_std]
#![no_main]

mod emit;
mod gc_mark_termination;
mod hit_cache;
mod list_remove_enter;
mod list_remove_exit;
mod map_iter_next_call;
mod map_iter_start_call;
mod map_write_call;
mod map_write_exit;
mod maps;
mod process_exec;
mod process_exit;
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
