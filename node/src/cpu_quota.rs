//! A CPU quota for a benchmarked process: one cgroup per node with a CFS
//! bandwidth limit (`cpu.max` on cgroup v2, `cpu.cfs_quota_us` on v1), so
//! every node of a scale-out measurement gets the same share of a core. The
//! process is started inside its cgroup (a shell writes its own pid to
//! `cgroup.procs` and then `exec`s the node), so every thread it ever makes is
//! limited. Needs a writable cgroup file system (root, or a delegated subtree).

use std::path::{Path, PathBuf};
use std::process::Command;

/// The CFS period used, µs.
const PERIOD_US: u64 = 100_000;

/// Which cgroup hierarchy holds the `cpu` controller.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Hierarchy {
    V2,
    V1,
}

/// One cgroup with a CPU quota; removed on drop (once its processes exited).
#[derive(Debug)]
pub struct CpuQuota {
    dir: PathBuf,
    pub hierarchy: Hierarchy,
    pub cores: f64,
}

/// `cores` of CPU time per period, in µs (at least 1 ms, as the kernel requires).
pub fn quota_us(cores: f64) -> u64 {
    ((cores * PERIOD_US as f64).round() as u64).max(1000)
}

impl CpuQuota {
    /// Creates cgroup `name` limited to `cores` (e.g. 0.35) under `root`
    /// (normally `/sys/fs/cgroup`).
    pub fn create(root: &Path, name: &str, cores: f64) -> Result<CpuQuota, String> {
        if !(cores > 0.0 && cores.is_finite()) {
            return Err(format!("--cpu-quota must be a positive number of cores, got {cores}"));
        }
        let (hierarchy, base) = if root.join("cgroup.controllers").exists() { (Hierarchy::V2, root.to_path_buf()) } else { (Hierarchy::V1, root.join("cpu")) };
        let dir = base.join(name);
        let err = |what: &str, e: std::io::Error| format!("cgroup {}: {what}: {e} (a CPU quota needs a writable cgroup file system)", dir.display());
        std::fs::create_dir_all(&dir).map_err(|e| err("create", e))?;
        let q = quota_us(cores);
        match hierarchy {
            Hierarchy::V2 => {
                // The parent must delegate the cpu controller to its children.
                let _ = std::fs::write(base.join("cgroup.subtree_control"), "+cpu");
                std::fs::write(dir.join("cpu.max"), format!("{q} {PERIOD_US}")).map_err(|e| err("cpu.max", e))?;
            }
            Hierarchy::V1 => {
                std::fs::write(dir.join("cpu.cfs_period_us"), PERIOD_US.to_string()).map_err(|e| err("cpu.cfs_period_us", e))?;
                std::fs::write(dir.join("cpu.cfs_quota_us"), q.to_string()).map_err(|e| err("cpu.cfs_quota_us", e))?;
            }
        }
        Ok(CpuQuota { dir, hierarchy, cores })
    }

    /// A command that runs `program` inside this cgroup: `sh` moves itself in
    /// and then becomes the program (same pid).
    pub fn command(&self, program: &Path) -> Command {
        let mut c = Command::new("sh");
        c.arg("-c").arg("echo $$ > \"$0\" && exec \"$@\"").arg(self.dir.join("cgroup.procs")).arg(program);
        c
    }

    /// Periods in which the cgroup was throttled, of those it ran (from `cpu.stat`).
    pub fn throttled(&self) -> Option<(u64, u64)> {
        let s = std::fs::read_to_string(self.dir.join("cpu.stat")).ok()?;
        let get = |k: &str| s.lines().find_map(|l| l.strip_prefix(k)).and_then(|v| v.trim().parse::<u64>().ok());
        Some((get("nr_throttled ")?, get("nr_periods ")?))
    }
}

/// CPU time (user + system) process `pid` used so far, seconds (Linux `/proc`).
pub fn process_cpu_secs(pid: u32) -> Option<f64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which may hold spaces) — utime and stime are 14 and 15.
    let rest = &s[s.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = f.get(11)?.parse::<f64>().ok()? + f.get(12)?.parse::<f64>().ok()?;
    Some(ticks / 100.0) // USER_HZ is 100 on Linux
}

impl Drop for CpuQuota {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir(&self.dir);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quota_in_microseconds_per_period() {
        assert_eq!(quota_us(0.35), 35_000);
        assert_eq!(quota_us(2.0), 200_000);
        assert_eq!(quota_us(0.001), 1000, "the kernel's minimum");
    }

    #[test]
    fn this_process_used_some_cpu() {
        let used = process_cpu_secs(std::process::id()).expect("/proc/<pid>/stat");
        assert!(used >= 0.0);
    }

    #[test]
    fn a_bad_quota_names_the_flag() {
        let e = CpuQuota::create(Path::new("/nonexistent"), "x", 0.0).unwrap_err();
        assert!(e.contains("--cpu-quota"), "{e}");
    }
}
