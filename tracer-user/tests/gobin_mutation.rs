//! Byte-mutation test of the readers: a real Go binary with bytes overwritten in
//! the structures gobin parses (ELF headers, `.go.buildinfo`, `.gopclntab` header,
//! function table and `_func` records, moduledata, code) or truncated must give a
//! typed error or a result — never a panic, an unbounded allocation or a hang.
//! Every public entry point runs on each mutant. Needs a Go toolchain for the seed
//! binary (skips with a message otherwise).

mod gobin_support;
mod support;

use std::sync::OnceLock;

use gobin_support::{exercise::exercise, *};
use proptest::prelude::*;

struct Seed {
    bytes: Vec<u8>,
    /// File ranges worth mutating: (start, len).
    regions: Vec<(usize, usize)>,
}

fn seed(stripped: bool) -> Option<&'static Seed> {
    static SEEDS: [OnceLock<Option<Seed>>; 2] = [OnceLock::new(), OnceLock::new()];
    SEEDS[usize::from(stripped)]
        .get_or_init(|| {
            let tc = toolchains_or_skip("gobin_mutation").pop()?;
            let bytes = std::fs::read(build_fixture(&tc, stripped)).expect("read fixture");
            let regions = regions(&bytes);
            Some(Seed { bytes, regions })
        })
        .as_ref()
}

/// Section contents and headers of interest, found with `object` (an independent
/// ELF reader).
fn regions(bytes: &[u8]) -> Vec<(usize, usize)> {
    use object::{Object, ObjectSection};
    let file = object::File::parse(bytes).expect("seed parses");
    let mut out = vec![(0, 64)];
    // Section header table.
    let shoff = u64::from_le_bytes(bytes[0x28..0x30].try_into().unwrap()) as usize;
    out.push((shoff, bytes.len() - shoff));
    for s in file.sections() {
        let name = s.name().unwrap_or("");
        if let Some((off, size)) = s.file_range() {
            let (off, size) = (off as usize, size as usize);
            match name {
                ".go.buildinfo" | ".go.module" => out.push((off, size)),
                // Header, function table start and the first _func records.
                ".gopclntab" => {
                    out.push((off, 128.min(size)));
                    out.push((off, size));
                }
                ".noptrdata" | ".text" | ".debug_info" | ".debug_abbrev" => out.push((off, size.min(1 << 16))),
                _ => {}
            }
        }
    }
    out
}

fn mutate(seed: &Seed, edits: &[(usize, u64, u8)], cut: Option<u64>) -> Vec<u8> {
    let mut bytes = seed.bytes.clone();
    for &(region, pos, value) in edits {
        let (start, len) = seed.regions[region % seed.regions.len()];
        if len > 0 {
            let at = start + (pos % len as u64) as usize;
            if at < bytes.len() {
                bytes[at] = value;
            }
        }
    }
    if let Some(c) = cut {
        bytes.truncate((c % bytes.len() as u64) as usize);
    }
    bytes
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn mutated_stripped_binaries_never_panic(
        edits in proptest::collection::vec((any::<usize>(), any::<u64>(), any::<u8>()), 1..24),
        cut in proptest::option::weighted(0.1, any::<u64>()),
    ) {
        if let Some(seed) = seed(true) {
            exercise(mutate(seed, &edits, cut));
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn mutated_binaries_with_dwarf_never_panic(
        edits in proptest::collection::vec((any::<usize>(), any::<u64>(), any::<u8>()), 1..24),
    ) {
        if let Some(seed) = seed(false) {
            exercise(mutate(seed, &edits, None));
        }
    }
}

/// Mutations aimed at the pclntab header words, one byte at a time.
#[test]
fn every_pclntab_header_byte() {
    let Some(seed) = seed(true) else { return };
    let (off, _) = seed.regions.iter().copied().find(|&(_, len)| len == 128).expect("pclntab header region");
    for i in 0..96 {
        for value in [0x00, 0xff, 0x7f, 0x80] {
            let mut bytes = seed.bytes.clone();
            bytes[off + i] = value;
            exercise(bytes);
        }
    }
}
