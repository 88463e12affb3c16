//! What the benchmark ran on: hardware, OS, versions, the module build.

use std::path::Path;
use std::process::Command;
use std::sync::OnceLock;
use std::time::SystemTime;

/// /proc/loadavg's three load averages when the run started.
static START_LOAD: OnceLock<String> = OnceLock::new();

/// Remember the load averages now, for `describe`.
pub fn note_start() {
    let _ = START_LOAD.set(load_average());
}

/// `(label, value)` lines describing the machine and the software.
pub fn describe(module: &Path, repo: &Path) -> Vec<(&'static str, String)> {
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    vec![
        ("Date", output("date", &["-u", "+%Y-%m-%d %H:%M UTC"])),
        ("CPU", cpu_model()),
        ("Cores", cores.to_string()),
        ("RAM", ram()),
        ("OS", os_name()),
        ("Kernel", output("uname", &["-srm"])),
        ("redis-server", output(&redis_server(), &["--version"])),
        ("rustc", output("rustc", &["--version"])),
        ("Module", module_build(module, repo)),
        (
            "Load average (1, 5, 15 min)",
            format!(
                "{} at the start, {} at the end (other processes share the cores)",
                START_LOAD.get().map_or("unknown", String::as_str),
                load_average()
            ),
        ),
    ]
}

fn load_average() -> String {
    let text = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let fields: Vec<&str> = text.split_whitespace().take(3).collect();
    if fields.len() == 3 {
        fields.join(" ")
    } else {
        "unknown".into()
    }
}

pub fn redis_server() -> String {
    std::env::var("REDIS_SERVER").unwrap_or_else(|_| "redis-server".into())
}

/// First line of a command's stdout, or "unknown".
fn output(cmd: &str, args: &[&str]) -> String {
    Command::new(cmd)
        .args(args)
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.lines().next().map(str::to_string))
        .unwrap_or_else(|| "unknown".into())
}

fn proc_field(file: &str, key: &str) -> Option<String> {
    let text = std::fs::read_to_string(file).ok()?;
    text.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        (k.trim() == key).then(|| v.trim().to_string())
    })
}

fn cpu_model() -> String {
    proc_field("/proc/cpuinfo", "model name").unwrap_or_else(|| "unknown".into())
}

fn ram() -> String {
    let kb = proc_field("/proc/meminfo", "MemTotal")
        .and_then(|v| v.trim_end_matches("kB").trim().parse::<f64>().ok());
    kb.map_or("unknown".into(), |kb| {
        format!("{:.1} GiB", kb / 1024.0 / 1024.0)
    })
}

fn os_name() -> String {
    let text = std::fs::read_to_string("/etc/os-release").unwrap_or_default();
    text.lines()
        .find_map(|l| l.strip_prefix("PRETTY_NAME="))
        .map_or("unknown".into(), |v| v.trim_matches('"').to_string())
}

/// The module file, when it was built, and the git commit of the tree.
fn module_build(module: &Path, repo: &Path) -> String {
    let git = |args: &[&str]| {
        let mut all = vec!["-C", repo.to_str().unwrap_or(".")];
        all.extend_from_slice(args);
        output("git", &all)
    };
    let dirty = Command::new("git")
        .args([
            "-C",
            repo.to_str().unwrap_or("."),
            "status",
            "--porcelain",
            "--",
            "src",
        ])
        .output()
        .is_ok_and(|o| !o.stdout.is_empty());
    let built = output(
        "date",
        &["-u", "-r", &module.display().to_string(), "+%H:%M:%S UTC"],
    );
    format!(
        "`{}` built {built}, from commit {}{}",
        module.display(),
        git(&["rev-parse", "--short", "HEAD"]),
        if dirty {
            " with uncommitted changes in src/"
        } else {
            ""
        }
    )
}

/// Source files newer than the module: it was probably not rebuilt.
pub fn stale_sources(module: &Path, repo: &Path) -> Vec<String> {
    let mtime = |p: &Path| p.metadata().and_then(|m| m.modified()).ok();
    let Some(built) = mtime(module) else {
        return Vec::new();
    };
    let newer = |p: &Path| mtime(p).is_some_and(|t: SystemTime| t > built);
    let Ok(dir) = std::fs::read_dir(repo.join("src")) else {
        return Vec::new();
    };
    dir.filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| newer(p))
        .map(|p| p.display().to_string())
        .collect()
}
