//! How findings get source positions: a trait the caller implements (gobin live, a
//! fake in tests), so the engine itself never opens a binary.

use super::finding::{Frame, ProcessInfo};

/// Maps addresses of a traced process to source positions.
pub trait Symbolizer {
    /// The frames at `pc`, innermost (most deeply inlined) first; empty when unknown.
    fn frames(&self, process: &ProcessInfo, pc: u64) -> Vec<Frame>;

    /// The user stack recorded under `stack_id` (return addresses after the first),
    /// innermost first; empty when it is not known.
    fn stack(&self, _process: &ProcessInfo, _stack_id: u32) -> Vec<u64> {
        Vec::new()
    }
}

/// Knows nothing: findings carry addresses only.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoSymbols;

impl Symbolizer for NoSymbols {
    fn frames(&self, _process: &ProcessInfo, _pc: u64) -> Vec<Frame> {
        Vec::new()
    }
}

/// Packages whose code sits between the user's statement and the probe: a list
/// `Remove` is inlined into its caller, so the probe's innermost frame is list code.
const RUNTIME_PACKAGES: [&str; 3] = ["runtime.", "container/list.", "internal/runtime/"];

/// The user's statement at a probe address: the innermost frame outside the runtime
/// and `container/list`, else the innermost frame, else the bare address.
pub fn call_site(sym: &dyn Symbolizer, process: &ProcessInfo, pc: u64) -> Frame {
    let frames = sym.frames(process, pc);
    let user = frames.iter().position(|f| !RUNTIME_PACKAGES.iter().any(|p| f.function.starts_with(p)));
    match user.or(if frames.is_empty() { None } else { Some(0) }) {
        Some(i) => frames.into_iter().nth(i).expect("index from position"),
        None => Frame { function: format!("{pc:#x}"), file: String::new(), line: 0 },
    }
}

/// A recorded stack as source frames, inlined frames expanded. Entries after the
/// first are return addresses, so they are looked up one byte earlier (the CALL).
pub(crate) fn stack_frames(sym: &dyn Symbolizer, process: &ProcessInfo, stack_id: Option<u32>) -> Vec<Frame> {
    let Some(id) = stack_id else { return Vec::new() };
    let mut out = Vec::new();
    for (depth, pc) in sym.stack(process, id).into_iter().enumerate() {
        let at = if depth == 0 { pc } else { pc.saturating_sub(1) };
        let frames = sym.frames(process, at);
        if frames.is_empty() {
            out.push(Frame { function: format!("{pc:#x}"), file: String::new(), line: 0 });
        }
        out.extend(frames);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Fake;

    fn frame(function: &str, line: u32) -> Frame {
        Frame { function: function.into(), file: "x.go".into(), line }
    }

    impl Symbolizer for Fake {
        fn frames(&self, _: &ProcessInfo, pc: u64) -> Vec<Frame> {
            match pc {
                0x10 => vec![
                    frame("container/list.(*List).remove", 90),
                    frame("container/list.(*List).Remove", 140),
                    frame("main.drop", 12),
                ],
                0x20 => vec![frame("main.grow", 7)],
                0x2f => vec![frame("main.caller", 3)],
                _ => Vec::new(),
            }
        }

        fn stack(&self, _: &ProcessInfo, _: u32) -> Vec<u64> {
            vec![0x20, 0x30, 0x99]
        }
    }

    #[test]
    fn call_site_skips_inlined_list_code() {
        let p = ProcessInfo::default();
        assert_eq!(call_site(&Fake, &p, 0x10), frame("main.drop", 12));
        assert_eq!(call_site(&Fake, &p, 0x20), frame("main.grow", 7));
        assert_eq!(call_site(&Fake, &p, 0x40).function, "0x40");
    }

    #[test]
    fn stack_looks_up_return_addresses_one_byte_early() {
        let p = ProcessInfo::default();
        let names: Vec<_> = stack_frames(&Fake, &p, Some(1)).into_iter().map(|f| f.function).collect();
        assert_eq!(names, ["main.grow", "main.caller", "0x99"]);
        assert!(stack_frames(&Fake, &p, None).is_empty());
    }
}
