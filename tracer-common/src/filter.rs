//! The kernel's transition filter, as plain functions: the eBPF programs decide each
//! hit with them, and user-space tests run event streams through the very same code.
//!
//! A hit goes to user space when the last hit on its object came from another
//! goroutine (with that held hit, if it had not gone out), or when it matters on its
//! own (`force`: a writing flag, misuse, 1-in-N sampling). A goroutine repeating its
//! own hit, or any hit repeating one of an earlier GC cycle, is marked
//! [`crate::RECORD_REPEATED`], so that the evidence of by-value copies survives the
//! filtering of the repeats.

use crate::RECORD_ARGS;

/// How a held hit relates to a new one on the same key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Relation {
    /// The new hit's object is private to its goroutine (a slice array on its own
    /// stack): no identity to follow, so the hit is neither a transition nor kept.
    Private,
    /// An earlier object at the same address (a slice array's earlier life), or an
    /// interval that is over (a `Remove` whose exit probe was switched off).
    OtherLife,
    /// Maybe an earlier object, but reached through the very same arguments (a slice
    /// header of the same start, length and element size, before a GC cycle ended):
    /// most likely the same object copied by value, and at worst an evidence that
    /// suppresses a finding, never one that makes it.
    EarlierLifeSameHit,
    /// The same object.
    SameObject,
    /// The same object through the same arguments (a slice: the same header).
    SameHit,
}

/// How a held growth at an array end relates to a new one there, by their
/// `SliceGrow` args. It was of the same array when it had the same element size and
/// GC count (both packed in `args[4]`): an address only holds a new array after a
/// sweep freed the old one, and a sweep follows a mark termination. Across counts a
/// new array at the address (a goroutine-local one succeeding another: half of all
/// local growths in allocation-heavy code) looks exactly like a header kept past the
/// array's move, so neither is a transition. The same start and length is the same
/// header grown again.
#[inline(always)]
pub fn relate_growths(held: &[u64; RECORD_ARGS], now: &[u64; RECORD_ARGS]) -> Relation {
    let same_header = held[0] == now[0] && held[1] == now[1];
    let same_elem = held[4] as u32 == now[4] as u32;
    match (held[4] == now[4], same_header) {
        (true, true) => Relation::SameHit,
        (true, false) => Relation::SameObject,
        (false, true) if same_elem => Relation::EarlierLifeSameHit,
        (false, _) => Relation::OtherLife,
    }
}

/// What the filter knows of the last hit kept for the object.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Held {
    pub goid: u64,
    /// It went to user space.
    pub sent: bool,
    /// It was marked as folding repeats.
    pub repeated: bool,
}

/// What to do with a hit.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Verdict {
    /// Send the held hit first (it had not gone out).
    pub replay_held: bool,
    pub send: bool,
    /// Mark the hit as folding repeats.
    pub repeated: bool,
    /// Keep the hit as the object's last one.
    pub keep: bool,
}

/// Decides a hit by goroutine `goid`, given the object's last hit and how it relates
/// to this one (`None`: no last hit).
#[inline(always)]
pub fn decide(last: Option<(Held, Relation)>, goid: u64, force: bool) -> Verdict {
    let Some((held, relation)) = last else { return Verdict { send: force, keep: true, ..Verdict::default() } };
    let (replay_held, send, repeated) = match relation {
        Relation::Private => return Verdict { send: force, ..Verdict::default() },
        Relation::OtherLife => (false, force, false),
        Relation::EarlierLifeSameHit => (false, force, true),
        _ if held.goid != goid => (!held.sent, true, false),
        Relation::SameHit => (false, force, true),
        Relation::SameObject => (false, force, held.repeated),
    };
    Verdict { replay_held, send, repeated, keep: true }
}

#[cfg(test)]
mod tests {
    use super::*;

    const G1: u64 = 1;
    const G2: u64 = 2;

    fn held(goid: u64, sent: bool) -> Held {
        Held { goid, sent, repeated: false }
    }

    #[test]
    fn a_first_hit_is_kept_and_sent_only_when_forced() {
        assert_eq!(decide(None, G1, false), Verdict { keep: true, ..Verdict::default() });
        assert!(decide(None, G1, true).send);
    }

    #[test]
    fn another_goroutines_hit_is_a_transition_with_the_held_hit_replayed_once() {
        let v = decide(Some((held(G1, false), Relation::SameObject)), G2, false);
        assert_eq!(v, Verdict { replay_held: true, send: true, repeated: false, keep: true });
        let v = decide(Some((held(G1, true), Relation::SameHit)), G2, false);
        assert!(v.send && !v.replay_held && !v.repeated);
    }

    #[test]
    fn own_repeats_are_filtered_and_marked() {
        let v = decide(Some((held(G1, false), Relation::SameHit)), G1, false);
        assert!(!v.send && v.repeated && v.keep);
        let v = decide(Some((held(G1, false), Relation::SameObject)), G1, false);
        assert!(!v.send && !v.repeated);
        // A mark carries on along a goroutine's run of hits on the object.
        let v = decide(Some((Held { goid: G1, sent: false, repeated: true }, Relation::SameObject)), G1, false);
        assert!(v.repeated);
    }

    #[test]
    fn an_earlier_life_is_never_a_transition_and_a_private_hit_is_never_kept() {
        assert!(!decide(Some((held(G1, false), Relation::OtherLife)), G2, false).send);
        let v = decide(Some((held(G1, false), Relation::EarlierLifeSameHit)), G2, false);
        assert!(!v.send && v.repeated);
        let v = decide(Some((held(G1, false), Relation::Private)), G2, true);
        assert!(v.send && !v.keep && !v.replay_held);
    }

    #[test]
    fn growths_relate_by_header_element_size_and_gc_cycle() {
        let at = |ptr: u64, len: u64, elem: u64, cycle: u64| [ptr, len, 8, len + 1, elem | cycle << 32];
        assert_eq!(relate_growths(&at(0x10, 4, 8, 1), &at(0x10, 4, 8, 1)), Relation::SameHit);
        assert_eq!(relate_growths(&at(0x10, 4, 8, 1), &at(0x18, 3, 8, 1)), Relation::SameObject);
        assert_eq!(relate_growths(&at(0x10, 4, 8, 1), &at(0x10, 4, 8, 2)), Relation::EarlierLifeSameHit);
        assert_eq!(relate_growths(&at(0x10, 4, 8, 1), &at(0x18, 3, 8, 2)), Relation::OtherLife);
        assert_eq!(relate_growths(&at(0x10, 4, 8, 1), &at(0x10, 4, 16, 1)), Relation::OtherLife);
    }
}
