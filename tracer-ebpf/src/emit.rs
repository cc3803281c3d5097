//! What every probe does around its own reads: find the traced process, count the
//! hit, and decide whether a record goes to user space.

use aya_ebpf::{
    EbpfContext,
    bindings::BPF_F_USER_STACK,
    helpers::{bpf_get_attach_cookie, bpf_get_smp_processor_id, bpf_ktime_get_ns, bpf_probe_read_user},
    maps::LruHashMap,
    programs::{ProbeContext, tracing::StackIdContext},
};
pub use tracer_common::filter::Relation;
use tracer_common::{Counter, counter_index, ProcConfig, RECORD_ARGS, RECORD_REPEATED, RECORD_REPLAYED, RECORD_SAMPLED, Record, RecordKind};

use crate::{
    maps::{COUNTER_STRIDE, GoroutineKey, Held, ObjectKey, PROBE_COUNTERS, PROCS, RECORDS, STACKS, TOTAL_HITS},
    regs,
};

/// A hit from a traced process, with what every record carries.
pub struct Hit {
    pub cfg: ProcConfig,
    pub probe: u32,
    pub aux: [u8; 2],
    /// The cookie's nibble (a list mutation's `ListOp`).
    pub nibble: u8,
    pub tgid: u32,
    pub goid: u64,
    /// This hit is one of the 1-in-N sampled ones.
    pub sampled: bool,
    rec_head: Record,
}

#[inline(always)]
pub fn count(probe: u32, counter: Counter) -> u64 {
    // SAFETY: a constant of the loaded object, set before load.
    let stride = unsafe { core::ptr::read_volatile(&raw const COUNTER_STRIDE) };
    // SAFETY: the helper has no preconditions.
    let cpu = unsafe { bpf_get_smp_processor_id() };
    match PROBE_COUNTERS.get_ptr_mut(counter_index(stride, cpu, probe, counter as u32)) {
        // SAFETY: a CPU's block is only touched by that CPU, and programs do not nest here.
        Some(p) => unsafe {
            *p += 1;
            *p
        },
        None => 0,
    }
}

/// Reads a word of the traced process's memory.
#[inline(always)]
pub fn read_u64(addr: u64) -> Option<u64> {
    // SAFETY: bpf_probe_read_user checks the address and fails instead of faulting.
    unsafe { bpf_probe_read_user(addr as *const u64) }.ok()
}

#[inline(always)]
pub fn read_u8(addr: u64) -> Option<u8> {
    // SAFETY: as in read_u64.
    unsafe { bpf_probe_read_user(addr as *const u8) }.ok()
}

/// The id of the user stack in `STACKS` (-1: none captured).
#[inline(always)]
pub fn user_stack(ctx: &ProbeContext, probe: u32) -> i64 {
    match ctx.get_stackid(&STACKS, BPF_F_USER_STACK as u64) {
        Ok(id) => id,
        Err(err) => {
            crate::log::no_stack(probe, err);
            -1
        }
    }
}

/// Starts handling a hit: `None` for processes nobody traces.
#[inline(always)]
pub fn begin(ctx: &ProbeContext) -> Option<Hit> {
    let tgid = ctx.tgid();
    // SAFETY: the value is copied out before any other map operation.
    let cfg = *unsafe { PROCS.get(&tgid) }?;
    // SAFETY: reading the attach cookie has no preconditions in a uprobe.
    let cookie = unsafe { bpf_get_attach_cookie(ctx.as_ptr()) };
    let probe = cookie as u32;
    let hits = count(probe, Counter::Hits);
    if let Some(total) = TOTAL_HITS.get_ptr_mut(tracer_common::cookie_slot(cookie)) {
        // SAFETY: a per-CPU slot is only touched by this CPU, and programs do not nest here.
        unsafe { *total += 1 };
    }
    let goid = match read_u64(regs::g(ctx).wrapping_add(cfg.goid_offset as u64)) {
        Some(goid) => goid,
        None => {
            count(probe, Counter::ReadErrors);
            crate::log::no_goid(probe, regs::g(ctx));
            0
        }
    };
    let sampled = cfg.sample_every != 0 && hits % cfg.sample_every as u64 == 0;
    Some(Hit {
        cfg,
        probe,
        aux: [(cookie >> 32) as u8, (cookie >> 40) as u8],
        nibble: (cookie >> tracer_common::COOKIE_NIBBLE_SHIFT) as u8 & 15,
        tgid,
        goid,
        sampled,
        rec_head: Record {
            kind: 0,
            flags: 0,
            probe,
            // SAFETY: no preconditions.
            ts_ns: unsafe { bpf_ktime_get_ns() },
            tgid,
            tid: ctx.pid(),
            goid,
            pc: regs::pc(ctx),
            stack_id: -1,
            args: [0; RECORD_ARGS],
        },
    })
}

impl Hit {
    #[inline(always)]
    pub fn record(&self, kind: RecordKind, args: [u64; RECORD_ARGS]) -> Record {
        let mut rec = self.rec_head;
        rec.kind = kind as u16;
        rec.args = args;
        if self.sampled {
            rec.flags |= RECORD_SAMPLED;
        }
        rec
    }

    #[inline(always)]
    pub fn key(&self, kind: RecordKind, addr: u64) -> ObjectKey {
        ObjectKey { tgid: self.tgid, kind: kind as u32, addr }
    }

    #[inline(always)]
    pub fn goroutine_key(&self) -> GoroutineKey {
        GoroutineKey { tgid: self.tgid, _pad: 0, goid: self.goid }
    }

    /// Sends a record (with a user stack when configured), counting a loss when the
    /// ring buffer is full.
    #[inline(always)]
    pub fn send(&self, ctx: &ProbeContext, rec: &mut Record) {
        if self.cfg.stacks != 0 && rec.flags & RECORD_REPLAYED == 0 {
            rec.stack_id = user_stack(ctx, rec.probe);
        }
        match RECORDS.output(rec, 0) {
            Ok(()) => count(rec.probe, Counter::Emitted),
            Err(_) => {
                crate::log::record_lost(rec.probe);
                count(rec.probe, Counter::Lost)
            }
        };
    }

    /// Sends the record only if it is sampled; otherwise counts it as filtered.
    #[inline(always)]
    pub fn send_if_sampled(&self, ctx: &ProbeContext, rec: &mut Record) {
        if self.sampled {
            self.send(ctx, rec);
        } else {
            count(self.probe, Counter::Filtered);
        }
    }

    /// The transition filter (`tracer_common::filter`'s decision) on `rec`, keyed by `key` in
    /// `table`; `force` says the hit matters on its own. `relate` tells how the held
    /// hit relates to this one (only slice arrays have lives and headers, and may turn
    /// out private: `relate` runs only when there is a held hit, so a costly test can
    /// wait until it could change the outcome). Returns whether it was sent.
    #[inline(always)]
    pub fn send_on_transition(
        &self,
        ctx: &ProbeContext,
        table: &impl LastHits,
        key: &ObjectKey,
        rec: &mut Record,
        force: bool,
        relate: impl Fn(&Record) -> Relation,
    ) -> bool {
        // The decision of `tracer_common::filter::decide`, written out here: called,
        // it cost up to 100 bytes more of the 512-byte stack (Linux 6.1 adds the log
        // calls' frames), and the verifier refused list_remove_enter there. The
        // filter's unit tests and testkit's stream filter use `decide`; the BPF tests
        // check this copy against the same expectations.
        let mut send = force || self.sampled;
        if let Some(mut prev) = table.last(key) {
            let relation = relate(&prev.rec);
            let repeat = match relation {
                Relation::Private => {
                    self.send_if_sampled(ctx, rec);
                    return self.sampled;
                }
                Relation::OtherLife => false,
                Relation::EarlierLifeSameHit => true,
                _ if prev.rec.goid != self.goid => {
                    if prev.sent == 0 {
                        prev.rec.flags |= RECORD_REPLAYED;
                        self.send(ctx, &mut prev.rec);
                    }
                    send = true;
                    false
                }
                Relation::SameHit => true,
                Relation::SameObject => prev.rec.flags & RECORD_REPEATED != 0,
            };
            if repeat {
                rec.flags |= RECORD_REPEATED;
            }
        }
        if send {
            self.send(ctx, rec);
        } else {
            count(self.probe, Counter::Filtered);
        }
        table.set(key, &Held { rec: *rec, sent: send as u64 });
        send
    }
}

/// A table of each object's last hit.
pub trait LastHits {
    /// A copy of the last hit on `key`, if the table still holds it.
    fn last(&self, key: &ObjectKey) -> Option<Held>;
    fn set(&self, key: &ObjectKey, held: &Held);
}

impl LastHits for LruHashMap<ObjectKey, Held> {
    #[inline(always)]
    fn last(&self, key: &ObjectKey) -> Option<Held> {
        // SAFETY: the entry stays valid while this program runs (RCU) and is copied
        // out at once.
        unsafe { self.get(key) }.copied()
    }

    #[inline(always)]
    fn set(&self, key: &ObjectKey, held: &Held) {
        crate::log::update(self.insert(key, held, 0), "last-hit table");
    }
}
