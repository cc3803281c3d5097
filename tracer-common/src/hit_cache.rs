//! The direct-mapped cache of last hits the kernel keeps for slice arrays: which
//! slot an object key takes, and the check word that tells a whole slot from one torn
//! by two CPUs writing it at once. Shared so that user space can test both.

/// log2 of the number of slots.
pub const SLOTS_LOG2: u32 = 16;
pub const SLOTS: u32 = 1 << SLOTS_LOG2;

const GOLDEN: u64 = 0x9e37_79b9_7f4a_7c15;

/// The slot of the object key (tgid, kind, address). Within one MiB of a process's
/// addresses, neighbours take neighbouring slots (16 bytes, the allocator's smallest
/// alignment but one, to a slot): arrays allocated one after another then share
/// pages of the table, which stay in the TLB; a random slot per hit missed it and
/// cost more than all the rest of the program. Each MiB region of each process is
/// scattered over the table by a multiplicative hash.
#[inline(always)]
pub const fn slot(tgid: u32, kind: u32, addr: u64) -> u32 {
    let region = ((addr >> 20) ^ ((tgid as u64) << 32 | kind as u64)).wrapping_mul(GOLDEN) >> (64 - SLOTS_LOG2);
    ((addr >> 4) ^ region) as u32 & (SLOTS - 1)
}

/// The check word over a slot's other words. Each step is a bijection of the state
/// for a given word, so a slot that differs from a written one in a single word never
/// matches its check; mixing the words of two writes matches either check with odds
/// of about 2^-64.
#[inline(always)]
pub const fn check<const N: usize>(words: &[u64; N]) -> u64 {
    let mut h = 0x243f_6a88_85a3_08d3u64;
    let mut i = 0;
    while i < N {
        h = (h ^ words[i]).wrapping_mul(GOLDEN);
        h ^= h >> 29;
        i += 1;
    }
    h
}

#[cfg(test)]
mod tests {
    extern crate std;

    use super::*;

    #[test]
    fn neighbours_take_neighbouring_slots_and_regions_scatter() {
        // 4096 array ends 64 bytes apart, as one size class lays them out: a slot
        // each, packed in 512 blocks of 32 slots (random slots would touch ~2000).
        let slots: std::collections::BTreeSet<u32> = (0..4096u64).map(|i| slot(1234, 1, 0xc000_0100_00 + i * 64)).collect();
        assert_eq!(slots.len(), 4096);
        assert_eq!(slots.iter().map(|s| s >> 5).collect::<std::collections::BTreeSet<_>>().len(), 512);
        // The same offset in 4096 regions (and processes) lands all over the table.
        let mut used = [false; SLOTS as usize];
        let mut distinct = 0;
        for i in 0..4096u64 {
            let s = slot(1234 + (i % 3) as u32, 1, 0xc000_0000_00 + (i << 20) + 0x40) as usize;
            distinct += !used[s] as u32;
            used[s] = true;
        }
        assert!(distinct > 3900, "4096 regions took {distinct} slots");
        assert_ne!(slot(1, 1, 0xc000_0100_00), slot(2, 1, 0xc000_0100_00), "another process, another slot");
    }

    #[test]
    fn a_torn_slot_fails_its_check() {
        let a: [u64; 14] = core::array::from_fn(|i| 0x1000 + i as u64);
        let mut b = a;
        // Another goroutine's hit on the same key: time, goroutine, arguments, sent.
        for (i, w) in [(3, 77), (5, 99), (9, 5), (13, 1)] {
            b[i] = w;
        }
        for cut in 1..14 {
            let mut torn = a;
            torn[cut..].copy_from_slice(&b[cut..]);
            if torn != a {
                assert_ne!(check(&torn), check(&a), "first {cut} words of a, rest of b");
            }
            if torn != b {
                assert_ne!(check(&torn), check(&b), "first {cut} words of a, rest of b");
            }
        }
        for i in 0..14 {
            let mut one = a;
            one[i] ^= 1 << (i * 4);
            assert_ne!(check(&one), check(&a), "word {i} changed");
        }
    }
}
