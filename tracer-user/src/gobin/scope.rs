//! Which functions a probe plan covers: packages from symbol names, and scopes.
//!
//! Symbol naming (Go `src/cmd/internal/objabi/path.go` `PathToPrefix`, checked on
//! 1.19 and 1.21–1.27): `import/path.Func`, `import/path.(*T).M`,
//! `import/path.F.func1` for closures and `import/path.F[...]` for generic
//! instantiations; dots (and other special bytes) in the last path element are
//! escaped as `%2e`, so the package ends at the first `.` after the last `/`.
//! Compiler-generated symbols start with `type:` / `go:` (1.20+) or `type..` /
//! `go.` (before 1.20).

use super::buildinfo::BuildInfo;

/// Which functions' call sites a probe plan includes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Scope {
    /// Everything outside the Go standard library: `main`, the main module and
    /// the dependency modules.
    Default,
    /// Every function, runtime included.
    All,
    /// Only the standard library.
    Std,
    /// Packages matching any of these globs: `*` matches within one path element,
    /// a trailing `/...` matches the package and everything below it, `...`
    /// elsewhere matches anything.
    Patterns(Vec<String>),
}

/// A scope that is not one: refused rather than matched literally.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ScopeError {
    #[error(
        "--scope {pattern}: `**` is not a package pattern; write `{suggest}` for a package and everything below it"
    )]
    DoubleStar { pattern: String, suggest: String },
}

impl Scope {
    /// `default`, `all`, `std`, or package globs (one word each); `**` is refused.
    pub fn from_words(words: &[String]) -> Result<Scope, ScopeError> {
        let words: Vec<String> = words.iter().map(|w| w.trim().to_string()).filter(|w| !w.is_empty()).collect();
        match words.as_slice() {
            [] => return Ok(Scope::Default),
            [one] if one == "default" => return Ok(Scope::Default),
            [one] if one == "all" => return Ok(Scope::All),
            [one] if one == "std" => return Ok(Scope::Std),
            _ => {}
        }
        if let Some(pattern) = words.iter().find(|w| w.contains("**")) {
            let head = pattern.split_once("**").map_or("", |(head, _)| head.trim_end_matches('/'));
            let suggest = if head.is_empty() { "...".to_string() } else { format!("{head}/...") };
            return Err(ScopeError::DoubleStar { pattern: pattern.clone(), suggest });
        }
        Ok(Scope::Patterns(words))
    }
}

impl std::str::FromStr for Scope {
    type Err = ScopeError;

    /// `default`, `all`, `std`, or a comma-separated list of package globs.
    fn from_str(s: &str) -> Result<Scope, Self::Err> {
        Scope::from_words(&s.split(',').map(str::to_string).collect::<Vec<_>>())
    }
}

/// The package of a function symbol, still `%xx`-escaped; None for
/// compiler-generated symbols (`type:…`, `go:…`) and names without a package.
pub fn package_of(symbol: &str) -> Option<&str> {
    if symbol.starts_with("type:") || symbol.starts_with("go:") || symbol.starts_with("type..") {
        return None;
    }
    let head = symbol.split('[').next().unwrap_or(symbol);
    let slash = head.rfind('/').map_or(0, |i| i + 1);
    let dot = head[slash..].find('.')? + slash;
    let pkg = &symbol[..dot];
    (!pkg.is_empty() && pkg != "go" && pkg != "type").then_some(pkg)
}

/// Packages under test, named by their external test packages (`app/foo` for
/// `app/foo_test`) among the binary's function symbols.
pub(crate) fn tested_packages<'a>(symbols: impl Iterator<Item = &'a str>) -> Vec<String> {
    let mut tested: Vec<String> = symbols
        .filter_map(package_of)
        .filter_map(|p| p.strip_suffix("_test"))
        .map(|p| unescape_package(p).into_owned())
        .collect();
    tested.sort();
    tested.dedup();
    tested
}

/// `%2e` → `.` and other `%xx` escapes of `PathToPrefix`.
pub fn unescape_package(pkg: &str) -> std::borrow::Cow<'_, str> {
    if !pkg.contains('%') {
        return pkg.into();
    }
    let b = pkg.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |c: u8| (c as char).to_digit(16);
        if b[i] == b'%'
            && i + 2 < b.len()
            && let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2]))
        {
            out.push((h * 16 + l) as u8);
            i += 3;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned().into()
}

/// Decides scope membership for packages of one binary.
pub(crate) struct ScopeFilter<'a> {
    scope: &'a Scope,
    /// Module paths that are not the standard library: main module, `path`, deps.
    modules: Vec<&'a str>,
    /// `GOROOT/src/` of the toolchain that built the binary, from its file table;
    /// None when the paths were trimmed (`-trimpath`) or are absent.
    goroot_src: Option<&'a str>,
}

/// `GOROOT/src/` from a binary's file names: the directory above the runtime's
/// `runtime/proc.go`, when it is an absolute path.
pub(crate) fn goroot_src<'a>(mut files: impl Iterator<Item = &'a str>) -> Option<&'a str> {
    const RUNTIME_FILE: &str = "/src/runtime/proc.go";
    let file = files.find(|f| f.starts_with('/') && f.ends_with(RUNTIME_FILE))?;
    Some(&file[..file.len() - "runtime/proc.go".len()])
}

/// An answer about a package (in the standard library, in scope), and whether it
/// holds for all of its functions or only the one whose file was looked at.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Verdict {
    pub holds: bool,
    /// False when the file said nothing (`<autogenerated>` wrappers): ask again.
    pub settled: bool,
}

impl<'a> ScopeFilter<'a> {
    /// `tested`: packages whose external test package (`P_test`) the binary holds.
    pub(crate) fn new(scope: &'a Scope, info: &'a BuildInfo, goroot_src: Option<&'a str>, tested: &'a [String]) -> Self {
        let mut modules: Vec<&str> = tested.iter().map(String::as_str).collect();
        if let Some(m) = &info.main {
            modules.push(&m.path);
        }
        // `go test -c` records `path app/foo.test`: the package under test is `app/foo`.
        if let Some(p) = &info.path {
            let tested = p.strip_suffix(".test");
            if info.main.is_none() || tested.is_some() {
                modules.push(tested.unwrap_or(p));
            }
        }
        modules.extend(info.deps.iter().map(|d| d.path.as_str()));
        modules.retain(|m| !m.is_empty());
        ScopeFilter { scope, modules, goroot_src }
    }

    /// Whether the verdict for a package needs the source file of its function.
    pub(crate) fn wants_file(&self) -> bool {
        self.goroot_src.is_some() && matches!(self.scope, Scope::Default | Scope::Std)
    }

    /// Standard library: not `main`, not an external test package (`app_test`,
    /// `app/foo_test`: only the binary of the package under test links one) and
    /// not under a module of the build or its `_test` package (a module named
    /// without a dot, `module app`, included); then, where the binary kept the
    /// toolchain's source directory, a package whose function `file` lies in it;
    /// else one whose first path element has no dot. Test binaries before Go 1.24
    /// record no modules at all: the file decides there.
    pub(crate) fn is_std(&self, pkg: &str, file: Option<&str>) -> Verdict {
        let own = |m: &&str| under(pkg, m) || pkg.strip_prefix(*m) == Some("_test");
        if pkg == "main" || pkg.ends_with("_test") || self.modules.iter().any(own) {
            return Verdict { holds: false, settled: true };
        }
        if let (Some(root), Some(file)) = (self.goroot_src, file)
            && file.starts_with('/')
        {
            return Verdict { holds: file.starts_with(root), settled: true };
        }
        let first = pkg.split('/').next().unwrap_or(pkg);
        Verdict { holds: !first.contains('.'), settled: self.goroot_src.is_none() }
    }

    /// Whether functions of (unescaped) package `pkg` are in scope; `file` is the
    /// source file of the function at hand (see [`Self::is_std`]).
    pub(crate) fn includes(&self, pkg: &str, file: Option<&str>) -> Verdict {
        let settled = |holds| Verdict { holds, settled: true };
        match self.scope {
            Scope::Default => {
                let v = self.is_std(pkg, file);
                Verdict { holds: !v.holds, ..v }
            }
            Scope::All => settled(true),
            Scope::Std => self.is_std(pkg, file),
            Scope::Patterns(globs) => settled(globs.iter().any(|g| glob_match(g, pkg))),
        }
    }
}

fn under(pkg: &str, module: &str) -> bool {
    pkg == module || pkg.strip_prefix(module).is_some_and(|rest| rest.starts_with('/'))
}

/// Package glob: `*` within one element, `...` across elements, `x/...` = x and below.
pub fn glob_match(glob: &str, pkg: &str) -> bool {
    if let Some(prefix) = glob.strip_suffix("/...")
        && !prefix.contains('*')
        && !prefix.contains("...")
    {
        return under(pkg, prefix);
    }
    match_from(glob.as_bytes(), pkg.as_bytes())
}

fn match_from(g: &[u8], s: &[u8]) -> bool {
    if g.is_empty() {
        return s.is_empty();
    }
    if g.starts_with(b"...") {
        return (0..=s.len()).any(|i| match_from(&g[3..], &s[i..]));
    }
    if g[0] == b'*' {
        let limit = s.iter().position(|&c| c == b'/').unwrap_or(s.len());
        return (0..=limit).any(|i| match_from(&g[1..], &s[i..]));
    }
    !s.is_empty() && g[0] == s[0] && match_from(&g[1..], &s[1..])
}

#[cfg(test)]
mod tests {
    use super::super::buildinfo::Module;
    use super::*;

    #[test]
    fn packages_of_symbols() {
        for (sym, pkg) in [
            ("main.main", Some("main")),
            ("main.(*store).add", Some("main")),
            ("main.main.func1", Some("main")),
            ("main.mapSlice[go.shape.int]", Some("main")),
            ("github.com/x/y.(*T).M", Some("github.com/x/y")),
            ("github.com/x/y.(*List[go.shape.struct { a/b.c int }]).Push", Some("github.com/x/y")),
            ("gopkg.in/yaml%2ev3.Unmarshal", Some("gopkg.in/yaml%2ev3")),
            ("runtime.growslice", Some("runtime")),
            ("internal/runtime/maps.(*Map).putSlot", Some("internal/runtime/maps")),
            ("type:.eq.main.point", None),
            ("type..eq.main.point", None),
            ("go:buildid", None),
            ("go.buildid", None),
            ("noPackage", None),
        ] {
            assert_eq!(package_of(sym), pkg, "{sym}");
        }
        assert_eq!(unescape_package("gopkg.in/yaml%2ev3"), "gopkg.in/yaml.v3");
        assert_eq!(unescape_package("a%zz"), "a%zz");
        assert_eq!(unescape_package("a%2"), "a%2");
    }

    #[test]
    fn default_scope_excludes_std() {
        let info = BuildInfo {
            main: Some(Module { path: "example.com/app".into(), version: "(devel)".into(), replaced_by: None }),
            deps: vec![Module { path: "golang.org/x/sys".into(), version: "v0.1.0".into(), replaced_by: None }],
            ..BuildInfo::default()
        };
        let f = ScopeFilter::new(&Scope::Default, &info, None, &[]);
        let includes = |f: &ScopeFilter<'_>, pkg| f.includes(pkg, None).holds;
        for (pkg, inside) in [
            ("main", true),
            ("example.com/app/internal/db", true),
            ("example.com/application", true),
            ("golang.org/x/sys/unix", true),
            ("runtime", false),
            ("container/list", false),
            ("internal/runtime/maps", false),
        ] {
            assert_eq!(includes(&f, pkg), inside, "{pkg}");
        }
        let cmd = BuildInfo { path: Some("cmd/compile".into()), ..BuildInfo::default() };
        let f = ScopeFilter::new(&Scope::Default, &cmd, None, &[]);
        assert!(includes(&f, "cmd/compile/internal/ssa"));
        assert!(!includes(&f, "cmd/internal/obj"));
        assert!(includes(&ScopeFilter::new(&Scope::Std, &cmd, None, &[]), "runtime"));
    }

    /// A module without a dot (`module app`) is not the standard library: under
    /// its own path when the build info names it, else by where its files are.
    #[test]
    fn dotless_module_is_not_std() {
        let main = Module { path: "app".into(), version: "(devel)".into(), replaced_by: None };
        let info = BuildInfo { main: Some(main), ..BuildInfo::default() };
        let f = ScopeFilter::new(&Scope::Default, &info, None, &[]);
        assert!(f.includes("app/internal/store", None).holds);
        assert!(!f.includes("encoding/json", None).holds);

        // Test binaries before Go 1.24 record no modules: the files decide.
        let files = ["/src/app/x.go", "/usr/lib/go/src/runtime/proc.go", "/usr/lib/go/src/os/file.go"];
        let root = goroot_src(files.into_iter());
        assert_eq!(root, Some("/usr/lib/go/src/"));
        let none = BuildInfo::default();
        let f = ScopeFilter::new(&Scope::Default, &none, root, &[]);
        assert!(f.wants_file());
        let app = f.includes("app/internal/store", Some("/src/app/internal/store/store.go"));
        assert_eq!(app, Verdict { holds: true, settled: true });
        let os = f.includes("os", Some("/usr/lib/go/src/os/file.go"));
        assert_eq!(os, Verdict { holds: false, settled: true });
        let vendored = f.includes("vendor/golang.org/x/net/dns", Some("/usr/lib/go/src/vendor/golang.org/x/net/dns/a.go"));
        assert!(!vendored.holds);
        // A wrapper's file says nothing: the dot rule answers, for this function only.
        assert_eq!(f.includes("app/x", Some("<autogenerated>")), Verdict { holds: false, settled: false });
        // Trimmed paths (-trimpath) give no source directory.
        assert_eq!(goroot_src(["runtime/proc.go", "app/x.go"].into_iter()), None);
    }

    /// External test packages of a dotless module (`app_test` at the module root,
    /// `app/foo_test` below it) and the package under test named by a test
    /// binary's `path app/foo.test` are the user's code, files or not.
    #[test]
    fn dotless_test_packages_are_not_std() {
        let main = Module { path: "app".into(), version: "(devel)".into(), replaced_by: None };
        let go124 = BuildInfo { path: Some("app.test".into()), main: Some(main), ..BuildInfo::default() };
        let f = ScopeFilter::new(&Scope::Default, &go124, None, &[]);
        for pkg in ["main", "app", "app_test", "app/foo_test", "app/foo"] {
            assert_eq!(f.includes(pkg, None), Verdict { holds: true, settled: true }, "{pkg}");
        }
        assert!(!f.includes("application", None).holds);
        assert!(!f.includes("sync", None).holds);
        // A path without a module (older test binaries, `-trimpath`): the package
        // under test is in, the rest of the dotless names are not.
        let path_only = BuildInfo { path: Some("app/foo.test".into()), ..BuildInfo::default() };
        let f = ScopeFilter::new(&Scope::Default, &path_only, None, &[]);
        assert!(f.includes("app/foo", None).holds && f.includes("app/foo/internal/x", None).holds);
        assert!(f.includes("app/bar_test", None).holds);
        assert!(!f.includes("app/bar", None).holds && !f.includes("os", None).holds);
        let std = ScopeFilter::new(&Scope::Std, &path_only, None, &[]);
        assert!(!std.includes("app/foo_test", None).holds && std.includes("os", None).holds);
        // Nothing recorded at all (before Go 1.24, `-trimpath`): a package whose
        // external test package the binary holds is the one under test.
        let tested = ["app/bar".to_string()];
        let none = BuildInfo::default();
        let f = ScopeFilter::new(&Scope::Std, &none, None, &tested);
        assert!(!f.includes("app/bar", None).holds && f.includes("os", None).holds);
        let symbols = ["app/bar_test.TestX", "app/bar_test.TestX.func1", "app_test.TestY", "app/bar.F", "os.Open"];
        assert_eq!(tested_packages(symbols.into_iter()), ["app", "app/bar"]);
    }

    #[test]
    fn globs() {
        assert!(glob_match("main", "main"));
        assert!(glob_match("example.com/app/...", "example.com/app"));
        assert!(glob_match("example.com/app/...", "example.com/app/x/y"));
        assert!(!glob_match("example.com/app/...", "example.com/apple"));
        assert!(glob_match("example.com/*/db", "example.com/app/db"));
        assert!(!glob_match("example.com/*", "example.com/app/db"));
        assert!(glob_match("...db", "example.com/app/db"));
        assert_eq!("all".parse::<Scope>().unwrap(), Scope::All);
        assert_eq!("a/...,main".parse::<Scope>().unwrap(), Scope::Patterns(vec!["a/...".into(), "main".into()]));
        assert_eq!("".parse::<Scope>().unwrap(), Scope::Default);
    }

    #[test]
    fn double_star_is_refused() {
        let err = "github.com/acme/**".parse::<Scope>().unwrap_err();
        assert_eq!(err.to_string().lines().count(), 1);
        assert!(err.to_string().contains("`github.com/acme/...`"), "{err}");
        assert!(matches!("main,**".parse::<Scope>(), Err(ScopeError::DoubleStar { suggest, .. }) if suggest == "..."));
    }
}
