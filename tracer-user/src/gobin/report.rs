//! `ghostrace inspect`: everything gobin knows about a binary, as stable JSON and text.
//!
//! JSON (schema 1) — an object with these keys; new keys may be added, existing
//! ones keep their meaning. Addresses and offsets are unsigned integers.
//!
//! | key | value |
//! |---|---|
//! | `schema` | `1` |
//! | `path` | the file inspected |
//! | `go_version` | version string, e.g. `"go1.24.11"`; `"go1.20+"` when only the release family is known |
//! | `version` | `{major, minor, patch}` (the family's first release when inexact) |
//! | `version_source` | where the version was read: `"build_info"` (`.go.buildinfo`), `"symbol"` or `"string_header"` (`runtime.buildVersion` found through the symbol table or by its string header), `"pclntab"` (family only) |
//! | `arch` | `"amd64"` or `"arm64"` |
//! | `stripped` | no `.symtab` (built with `-ldflags=-s`) |
//! | `dwarf` | DWARF present (not built with `-w`) |
//! | `build` | `{ldflags, strip_symbols, strip_dwarf, trimpath, cgo_enabled, settings}`; each is `null` when the build did not record it; `settings` lists every `build` line as `[key, value]` |
//! | `main_module`, `main_package` | module path (`mod` line) and main package path (`path` line), or `null` |
//! | `deps` | `[{path, version, replaced_by?: [path, version]}]` |
//! | `functions` | number of functions in the function table |
//! | `module_data` | `{addr, text, etext, gofunc}` or `null` when not found |
//! | `layout` | `{goid_offset, m_offset, procid_offset, source: "dwarf"\|"table", verified}` |
//! | `scope` | the scope the plan was computed for (`"default"`, `"all"`, `"std"` or the globs) |
//! | `plan.probes` | `[{kind, detail?, address, file_offset, caller, package, target, emulated, signature, after?: {address, file_offset, emulated}}]`; `kind` is one of `slice_grow_call`, `map_iter_start_call`, `map_iter_next_call`, `map_write_call` (detail `"assign"`\|`"delete"`\|`"clear"`), `list_remove_enter` (the start of any mutating `container/list` method, named for Remove; detail `{list_reg, elem_reg, list_disp, op}`: x86 register numbers AX=0 … R15=15 on amd64, Xn on arm64, `elem_reg` 254 for methods without an element, whose list is `list_disp` bytes past its register, `op` the method name), `list_remove_exit` (a mutation's exit, moved like `map_write_exit` where that makes it emulated), `map_write_exit` (where a map write's interval ends: the first emulated instruction after the CALL reached through straight-line code that synchronizes with nothing, else the instruction after the CALL) |
//! | `plan.functions` | runtime entry points present: `[{name, role, signature, entry, body?, returns, call_sites}]` (sites as in `after`) |
//! | `plan.list_sites` | inlined bodies of the mutating `container/list` methods: `[{op, caller, package, call_pc, ranges: [[start, end]], body_start, enter, exits, registers: {"Ok": [list, elem]} \| {"Err": reason}, list_disp}]`; `op` is the method name |
//! | `plan.missing` | `[{what, reason}]` |
//! | `summary` | `{probes, emulated, by_kind: {kind: count}, list_sites, list_sites_undetermined}` |

use std::collections::BTreeMap;
use std::fmt;

use super::buildinfo::Module;
use super::inline::ModuleData;
use super::layout::{LayoutSource, RuntimeLayout};
use super::plan::{ProbeKind, ProbePlan, Site};
use super::{Arch, GoBinary, GoVersion, Scope, VersionSource};

/// Build settings ghostrace cares about, from the `build` lines of the build info.
#[derive(Clone, Debug, serde::Serialize)]
pub struct BuildSettings {
    pub ldflags: Option<String>,
    /// `-s` in `-ldflags`.
    pub strip_symbols: Option<bool>,
    /// `-w` in `-ldflags`.
    pub strip_dwarf: Option<bool>,
    pub trimpath: Option<bool>,
    pub cgo_enabled: Option<bool>,
    pub settings: Vec<(String, String)>,
}

/// Counts over the plan.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Summary {
    pub probes: usize,
    pub emulated: usize,
    pub by_kind: BTreeMap<&'static str, usize>,
    pub list_sites: usize,
    pub list_sites_undetermined: usize,
}

/// What `ghostrace inspect BIN` prints.
#[derive(Clone, Debug, serde::Serialize)]
pub struct InspectReport {
    pub schema: u32,
    pub path: String,
    pub go_version: String,
    pub version: GoVersion,
    pub version_source: VersionSource,
    pub arch: Arch,
    pub stripped: bool,
    pub dwarf: bool,
    pub build: BuildSettings,
    pub main_module: Option<String>,
    pub main_package: Option<String>,
    pub deps: Vec<Module>,
    pub functions: u64,
    pub module_data: Option<ModuleData>,
    pub layout: RuntimeLayout,
    pub scope: String,
    pub plan: ProbePlan,
    pub summary: Summary,
}

fn kind_name(k: &ProbeKind) -> &'static str {
    match k {
        ProbeKind::SliceGrowCall => "slice_grow_call",
        ProbeKind::MapIterStartCall => "map_iter_start_call",
        ProbeKind::MapIterNextCall => "map_iter_next_call",
        ProbeKind::MapWriteCall(_) => "map_write_call",
        ProbeKind::ListRemoveEnter { .. } => "list_remove_enter",
        ProbeKind::ListRemoveExit => "list_remove_exit",
        ProbeKind::MapWriteExit => "map_write_exit",
    }
}

/// Why a kind of probe is there, where that is not obvious from its name.
fn kind_note(kind: &str) -> &'static str {
    match kind {
        "map_write_exit" => {
            " (where each map write ends, only for map_concurrent_write's intervals; none where the next write's \
             CALL ends it; * = no emulated instruction reached after the CALL: a full-price trap)"
        }
        _ => "",
    }
}

fn list_reg_name(reg: u8) -> String {
    if reg == tracer_common::LIST_REG_ELEMENT_LIST {
        "list = e.list (proven by the compiler)".into()
    } else {
        format!("list r{reg}")
    }
}

fn scope_name(scope: &Scope) -> String {
    match scope {
        Scope::Default => "default".into(),
        Scope::All => "all".into(),
        Scope::Std => "std".into(),
        Scope::Patterns(p) => p.join(","),
    }
}

impl BuildSettings {
    fn from(settings: &[(String, String)]) -> BuildSettings {
        let get = |k: &str| settings.iter().find(|(key, _)| key == k).map(|(_, v)| v.clone());
        let ldflags = get("-ldflags");
        let has_flag =
            |f: &str| ldflags.as_ref().map(|l| l.split_whitespace().any(|w| w == f || w == format!("{f}=true")));
        BuildSettings {
            strip_symbols: has_flag("-s"),
            strip_dwarf: has_flag("-w"),
            trimpath: get("-trimpath").map(|v| v == "true"),
            cgo_enabled: get("CGO_ENABLED").map(|v| v == "1"),
            ldflags,
            settings: settings.to_vec(),
        }
    }
}

impl GoBinary {
    /// The inspect report for `scope`.
    pub fn report(&self, scope: &Scope) -> InspectReport {
        let plan = self.probe_plan(scope);
        let mut by_kind = BTreeMap::new();
        for p in &plan.probes {
            *by_kind.entry(kind_name(&p.kind)).or_insert(0) += 1;
        }
        let summary = Summary {
            probes: plan.probes.len(),
            emulated: plan.probes.iter().filter(|p| p.emulated).count(),
            by_kind,
            list_sites: plan.list_sites.len(),
            list_sites_undetermined: plan.list_sites.iter().filter(|s| s.registers.is_err()).count(),
        };
        let info = self.build_info();
        InspectReport {
            schema: 1,
            path: self.path().display().to_string(),
            go_version: self.go_version().to_string(),
            version: self.version(),
            version_source: self.version_source(),
            arch: self.arch(),
            stripped: self.stripped(),
            dwarf: self.has_dwarf(),
            build: BuildSettings::from(&info.settings),
            main_module: self.main_module().map(str::to_string),
            main_package: info.path.clone(),
            deps: info.deps.clone(),
            functions: self.function_count(),
            module_data: self.module_data().cloned(),
            layout: self.layout(),
            scope: scope_name(scope),
            plan,
            summary,
        }
    }
}

struct Hex(u64);

impl fmt::Display for Hex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:#x}", self.0)
    }
}

fn site(s: &Site) -> String {
    format!("{:#x}{}", s.address, if s.emulated { "" } else { "*" })
}

fn yes_no(v: Option<bool>) -> &'static str {
    match v {
        Some(true) => "yes",
        Some(false) => "no",
        None => "not recorded",
    }
}

impl fmt::Display for InspectReport {
    /// Human-readable rendering; `*` marks probe sites the kernel cannot emulate
    /// (two traps per hit).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let strip = if self.stripped { "stripped" } else { "not stripped" };
        let dwarf = if self.dwarf { "DWARF" } else { "no DWARF" };
        writeln!(f, "binary     {}", self.path)?;
        writeln!(f, "go         {} {} ({strip}, {dwarf})", self.go_version, self.arch)?;
        if self.version_source != VersionSource::BuildInfo {
            writeln!(f, "           version from {}", self.version_source)?;
        }
        writeln!(
            f,
            "module     {} ({} dependencies)",
            self.main_module.as_deref().or(self.main_package.as_deref()).unwrap_or("?"),
            self.deps.len()
        )?;
        let b = &self.build;
        writeln!(
            f,
            "build      ldflags {:?}, -s {}, -w {}, trimpath {}, cgo {}",
            b.ldflags.as_deref().unwrap_or(""),
            yes_no(b.strip_symbols),
            yes_no(b.strip_dwarf),
            yes_no(b.trimpath),
            yes_no(b.cgo_enabled)
        )?;
        let md = self
            .module_data
            .as_ref()
            .map_or("moduledata not found".to_string(), |m| format!("moduledata at {:#x}", m.addr));
        writeln!(f, "functions  {} ({md})", self.functions)?;
        let l = &self.layout;
        let src = match l.source {
            LayoutSource::Dwarf => "DWARF",
            LayoutSource::Table if l.verified => "table",
            LayoutSource::Table => "table, unverified for this version",
        };
        writeln!(
            f,
            "layout     g.goid +{}, g.m +{}, m.procid +{} ({src})",
            l.goid_offset, l.m_offset, l.procid_offset
        )?;
        let s = &self.summary;
        writeln!(f, "scope      {}: {} probes, {} emulated", self.scope, s.probes, s.emulated)?;
        if s.probes == 0 {
            writeln!(f, "           no call site matches the scope: `run`/`attach` would trace nothing")?;
        }
        for (k, n) in &s.by_kind {
            writeln!(f, "           {n:6} {k}{}", kind_note(k))?;
        }
        writeln!(f, "\nruntime entry points (* = not emulated)")?;
        for rf in &self.plan.functions {
            let body = rf.body.as_ref().map_or("-".to_string(), site);
            let rets: Vec<String> = rf.returns.iter().map(site).collect();
            writeln!(
                f,
                "  {:32} entry {} body {body} ret [{}] calls {}",
                rf.name,
                site(&rf.entry),
                rets.join(" "),
                rf.call_sites
            )?;
        }
        writeln!(f, "\nprobes")?;
        for p in &self.plan.probes {
            let detail = match p.kind {
                ProbeKind::MapWriteCall(op) => format!("({op:?})").to_lowercase(),
                ProbeKind::ListRemoveEnter { list_reg, elem_reg, list_disp, op } => {
                    let elem = if elem_reg == tracer_common::LIST_REG_NONE { String::new() } else { format!(", elem r{elem_reg}") };
                    let disp = if list_disp == 0 { String::new() } else { format!("+{list_disp:#x}") };
                    format!("({} {}{disp}{elem})", op.method(), list_reg_name(list_reg))
                }
                _ => String::new(),
            };
            let star = if p.emulated { " " } else { "*" };
            writeln!(
                f,
                "  {}{star} +{:<8x} {}{detail} {} -> {}",
                Hex(p.address),
                p.file_offset,
                kind_name(&p.kind),
                p.caller,
                p.target
            )?;
        }
        if !self.plan.list_sites.is_empty() {
            writeln!(f, "\ninlined list mutation sites")?;
            for ls in &self.plan.list_sites {
                let regs = match &ls.registers {
                    Ok((l, e)) if *e == tracer_common::LIST_REG_NONE => format!("{} {}", ls.op.method(), list_reg_name(*l)),
                    Ok((l, e)) => format!("{} {}, elem r{e}", ls.op.method(), list_reg_name(*l)),
                    Err(why) => format!("registers undetermined: {why}"),
                };
                let exits: Vec<String> = ls.exits.iter().map(|x| format!("{x:#x}")).collect();
                writeln!(f, "  {:#x} in {}: {regs}; exits [{}]", ls.enter, ls.caller, exits.join(" "))?;
            }
        }
        if !self.plan.missing.is_empty() {
            writeln!(f, "\nnot found")?;
            for m in &self.plan.missing {
                writeln!(f, "  {}: {}", m.what, m.reason)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn build_settings_from_lines() {
        let lines = vec![
            ("-ldflags".to_string(), "-s -w".to_string()),
            ("CGO_ENABLED".to_string(), "0".to_string()),
            ("-trimpath".to_string(), "true".to_string()),
        ];
        let b = BuildSettings::from(&lines);
        assert_eq!(
            (b.strip_symbols, b.strip_dwarf, b.trimpath, b.cgo_enabled),
            (Some(true), Some(true), Some(true), Some(false))
        );
        let none = BuildSettings::from(&[]);
        assert_eq!((none.strip_symbols, none.cgo_enabled), (None, None));
    }
}
