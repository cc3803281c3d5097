//! Support for the boot tier: the kernels `cargo xtask bootstrap` caches, the
//! initramfs, one qemu guest, and the results its init script writes between markers.
#![allow(dead_code, reason = "each test binary uses a different part")]

pub mod cpio;

use std::{
    collections::BTreeSet,
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use crate::support::repo;

/// The guest's PID 1.
const INIT: &str = include_str!("init.sh");

/// A kernel of xtask/boot-kernels.txt, as the bootstrap cached it.
pub struct Kernel {
    pub series: String,
    /// The Debian package its vmlinuz came from.
    pub package: String,
    pub vmlinuz: PathBuf,
}

/// The cached kernel of `series`, or why there is none.
pub fn kernel(series: &str) -> Result<Kernel, String> {
    let dir = repo().join(".cache/kernels").join(series);
    let vmlinuz = dir.join("vmlinuz");
    if !vmlinuz.exists() {
        return Err(format!("no Linux {series} kernel in {} (run `cargo xtask bootstrap`)", dir.display()));
    }
    // The first line is the pin; a second says which package replaced it.
    let named = std::fs::read_to_string(dir.join("package")).unwrap_or_default();
    let package = named.lines().last().unwrap_or("unknown package").to_string();
    Ok(Kernel { series: series.to_string(), package, vmlinuz })
}

pub const QEMU: &str = "/usr/bin/qemu-system-x86_64";
pub const BUSYBOX: &str = "/bin/busybox";

/// What the guests need from the host, or the first thing missing.
pub fn host_tools() -> Result<(), String> {
    for (path, package) in [(QEMU, "qemu-system-x86"), (BUSYBOX, "busybox-static")] {
        if !Path::new(path).exists() {
            return Err(format!("no {path} (Debian package {package}; run `cargo xtask bootstrap`)"));
        }
    }
    Ok(())
}

/// The shared libraries `binary` loads, by the paths the dynamic loader finds them at.
fn libraries(binary: &Path) -> Vec<PathBuf> {
    let out = Command::new("ldd").arg(binary).output().expect("run ldd");
    // A static binary: ldd fails ("not a dynamic executable") and nothing is needed.
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| {
            let path = l.split("=>").last()?.split_whitespace().next()?;
            path.starts_with('/').then(|| PathBuf::from(path))
        })
        .collect()
}

/// Writes the initramfs: busybox, `ghostrace` with its libraries, /init, and the
/// programs as /scenarios/NAME and /fixtures/NAME.
pub fn initramfs(out: &Path, ghostrace: &Path, scenarios: &[(String, PathBuf)], fixtures: &[(String, PathBuf)]) {
    let mut files: Vec<(String, PathBuf)> = vec![("bin/busybox".into(), BUSYBOX.into()), ("bin/ghostrace".into(), ghostrace.into())];
    for lib in libraries(ghostrace) {
        files.push((lib.to_string_lossy().trim_start_matches('/').to_string(), lib));
    }
    files.extend(scenarios.iter().map(|(name, path)| (format!("scenarios/{name}"), path.clone())));
    files.extend(fixtures.iter().map(|(name, path)| (format!("fixtures/{name}"), path.clone())));
    let mut dirs: BTreeSet<String> = ["dev", "proc", "sys", "tmp", "scenarios", "fixtures"].map(String::from).into();
    for (path, _) in &files {
        let mut parent = Path::new(path).parent();
        while let Some(p) = parent.filter(|p| !p.as_os_str().is_empty()) {
            dirs.insert(p.to_string_lossy().into_owned());
            parent = p.parent();
        }
    }
    std::fs::create_dir_all(out.parent().expect("initramfs dir")).expect("create the initramfs dir");
    let file = std::fs::File::create(out).unwrap_or_else(|e| panic!("create {}: {e}", out.display()));
    let mut cpio = cpio::Cpio::new(std::io::BufWriter::new(file));
    // BTreeSet order puts each parent before its children.
    for dir in &dirs {
        cpio.dir(dir).expect("write the initramfs");
    }
    // The kernel opens /dev/console for PID 1 before /init mounts devtmpfs.
    cpio.char_device("dev/console", (5, 1)).expect("write the initramfs");
    cpio.file("init", 0o755, INIT.as_bytes()).expect("write the initramfs");
    for (path, from) in &files {
        let data = std::fs::read(from).unwrap_or_else(|e| panic!("read {}: {e}", from.display()));
        cpio.file(path, 0o755, &data).expect("write the initramfs");
    }
    cpio.finish().expect("write the initramfs");
}

/// One booted guest, after it powered off (or was killed at the time limit).
pub struct Guest {
    /// Kernel messages and the init script's progress (first serial port).
    pub console: String,
    /// What the init script wrote between markers (second serial port).
    pub results: String,
    /// From qemu's start to its exit.
    pub wall: Duration,
    /// From qemu's start to the init script's first line (firmware, kernel, /init),
    /// to the 100 ms the test polls at.
    pub to_init: Option<Duration>,
    pub killed: bool,
}

impl Guest {
    /// Boots `kernel` with `initramfs` under TCG, its serial ports in files under `dir`;
    /// a guest still running after `limit` is killed (a hang guard, not a measurement).
    pub fn boot(kernel: &Kernel, initramfs: &Path, dir: &Path, limit: Duration) -> Self {
        std::fs::create_dir_all(dir).expect("create the guest's dir");
        let (console, results) = (dir.join("console.log"), dir.join("results.log"));
        // The last run's results would look like this guest's first line.
        let _ = std::fs::remove_file(&results);
        let started = Instant::now();
        // TCG: /dev/kvm exists on the CI machines, but stock kernels die in it
        // ("emulation failure"). `-cpu max` gives the guest every instruction TCG has.
        let mut qemu = Command::new(QEMU)
            .args(["-accel", "tcg", "-cpu", "max", "-smp", "2", "-m", "1024", "-nographic", "-no-reboot", "-monitor", "none"])
            .arg("-kernel")
            .arg(&kernel.vmlinuz)
            .arg("-initrd")
            .arg(initramfs)
            .args(["-append", "console=ttyS0 panic=-1 quiet"])
            .arg("-serial")
            .arg(format!("file:{}", console.display()))
            .arg("-serial")
            .arg(format!("file:{}", results.display()))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("start {QEMU}: {e}"));
        let (mut killed, mut to_init) = (false, None);
        loop {
            if to_init.is_none() && std::fs::metadata(&results).is_ok_and(|m| m.len() > 0) {
                to_init = Some(started.elapsed());
            }
            if qemu.try_wait().expect("wait for qemu").is_some() {
                break;
            }
            if started.elapsed() > limit {
                let _ = qemu.kill();
                let _ = qemu.wait();
                killed = true;
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let read = |p: &Path| String::from_utf8_lossy(&std::fs::read(p).unwrap_or_default()).replace('\r', "");
        Self { console: read(&console), results: read(&results), wall: started.elapsed(), to_init, killed }
    }

    /// Marker lines `@@WORDS`, split into words.
    fn markers(&self) -> impl Iterator<Item = Vec<&str>> {
        self.results.lines().filter_map(|l| l.strip_prefix("@@")).map(|m| m.split_whitespace().collect())
    }

    /// Seconds from the kernel's start to the init script's first line, and the
    /// kernel release the guest runs.
    pub fn boot_time(&self) -> Option<(f64, String)> {
        self.markers().find(|m| m.first() == Some(&"boot")).and_then(|m| Some((m.get(1)?.parse().ok()?, m.get(2)?.to_string())))
    }

    /// Whether the init script got to its end.
    pub fn done(&self) -> bool {
        self.markers().any(|m| m == ["done"])
    }

    /// A case's exit status as the script saw it, and the seconds it took.
    pub fn status(&self, case: &str) -> Option<(i32, f64)> {
        let m = self.markers().find(|m| m.len() == 5 && m[0] == "status" && m[1] == case)?;
        let secs = |i: usize| m[i].parse::<f64>().ok();
        Some((m[2].parse().ok()?, secs(4)? - secs(3)?))
    }

    /// The text a case wrote under `section` (a file of the guest).
    pub fn section(&self, case: &str, section: &str) -> String {
        let (begin, end) = (format!("@@begin {case} {section}"), format!("@@end {case} {section}"));
        let mut lines = self.results.lines().skip_while(|l| *l != begin).skip(1);
        let text: Vec<&str> = lines.by_ref().take_while(|l| *l != end).collect();
        text.join("\n").trim().to_string()
    }

    /// Everything the guest wrote, for a failure's message.
    pub fn transcript(&self) -> String {
        format!(
            "--- guest console ---\n{}\n--- guest results ---\n{}\n--- end (qemu ran {:.1} s{}) ---",
            self.console.trim(),
            self.results.trim(),
            self.wall.as_secs_f64(),
            if self.killed { ", killed at the time limit" } else { "" }
        )
    }
}

/// The detectors of findings (JSON lines) at warning or above.
pub fn detectors(jsonl: &str) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    for line in jsonl.lines().filter(|l| !l.trim().is_empty()) {
        let f: serde_json::Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("finding line is not JSON ({e}): {line}"));
        if f["severity"] != "info" {
            found.insert(f["detector"].as_str().unwrap_or("?").to_string());
        }
    }
    found
}
