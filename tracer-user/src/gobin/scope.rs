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
}

impl<'a> ScopeFilter<'a> {
    pub(crate) fn new(scope: &'a Scope, info: &'a BuildInfo) -> Self {
        let mut modules: Vec<&str> = Vec::new();
        if let Some(m) = &info.main {
            modules.push(&m.path);
        } else if let Some(p) = &info.path {
            modules.push(p);
        }
        modules.extend(info.deps.iter().map(|d| d.path.as_str()));
        modules.retain(|m| !m.is_empty());
        ScopeFilter { scope, modules }
    }

    /// Standard library: not `main`, not under a module of the build, and the
    /// first path element has no dot.
    pub(crate) fn is_std(&self, pkg: &str) -> bool {
        if pkg == "main" || self.modules.iter().any(|m| under(pkg, m)) {
            return false;
        }
        let first = pkg.split('/').next().unwrap_or(pkg);
        !first.contains('.')
    }

    /// Whether functions of (unescaped) package `pkg` are in scope.
    pub(crate) fn includes(&self, pkg: &str) -> bool {
        match self.scope {
            Scope::Default => !self.is_std(pkg),
            Scope::All => true,
            Scope::Std => self.is_std(pkg),
            Scope::Patterns(globs) => globs.iter().any(|g| glob_match(g, pkg)),
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
        let f = ScopeFilter::new(&Scope::Default, &info);
        for (pkg, inside) in [
            ("main", true),
            ("example.com/app/internal/db", true),
            ("example.com/application", true),
            ("golang.org/x/sys/unix", true),
            ("runtime", false),
            ("container/list", false),
            ("internal/runtime/maps", false),
        ] {
            assert_eq!(f.includes(pkg), inside, "{pkg}");
        }
        let cmd = BuildInfo { path: Some("cmd/compile".into()), ..BuildInfo::default() };
        let f = ScopeFilter::new(&Scope::Default, &cmd);
        assert!(f.includes("cmd/compile/internal/ssa"));
        assert!(!f.includes("cmd/internal/obj"));
        assert!(ScopeFilter::new(&Scope::Std, &cmd).includes("runtime"));
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
