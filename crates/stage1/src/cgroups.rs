//! Best-effort cgroups: the pod goes into `podlog/<uuid>` below stage1's own cgroup in each
//! hierarchy that matters (v1 `pids` and `memory`, and the v2 hierarchy, unified or hybrid),
//! so a limit stage0 lives under still applies to its pods. Nothing here fails the pod.
//!
//! `<pod>/subcgroup` lists the directories, one absolute path per line, written before they
//! are created so that `gc` can always find them.

use std::os::fd::BorrowedFd;
use std::path::{Path, PathBuf};
use std::time::Duration;

use nix::sys::signal::{kill, Signal};
use nix::sys::statfs::{statfs, CGROUP2_SUPER_MAGIC};
use nix::unistd::Pid;

use crate::fsutil;

const ROOT: &str = "/sys/fs/cgroup";
const V1_CONTROLLERS: [&str; 2] = ["pids", "memory"];

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Layout {
    /// /sys/fs/cgroup is the v2 hierarchy.
    Unified,
    /// v1 controllers under /sys/fs/cgroup/<controller>, maybe v2 at /sys/fs/cgroup/unified.
    Legacy,
}

pub fn detect() -> Layout {
    match statfs(ROOT) {
        Ok(s) if s.filesystem_type() == CGROUP2_SUPER_MAGIC => Layout::Unified,
        _ => Layout::Legacy,
    }
}

/// The pod's cgroup directories as (hierarchy mount point, directory), from
/// `/proc/self/cgroup` (`id:controllers:path` lines).
pub fn plan(self_cgroup: &str, layout: Layout, uuid: &str) -> Vec<(PathBuf, PathBuf)> {
    let leaf = |mount: PathBuf, path: &str| {
        let dir = mount
            .join(path.trim_start_matches('/'))
            .join("podlog")
            .join(uuid);
        (mount, dir)
    };
    let mut out = Vec::new();
    for line in self_cgroup.lines() {
        let mut f = line.splitn(3, ':');
        let (Some(_), Some(ctrls), Some(path)) = (f.next(), f.next(), f.next()) else {
            continue;
        };
        match (layout, ctrls) {
            (Layout::Unified, "") => out.push(leaf(PathBuf::from(ROOT), path)),
            (Layout::Legacy, "") => out.push(leaf(Path::new(ROOT).join("unified"), path)),
            (Layout::Legacy, c) => {
                for want in V1_CONTROLLERS {
                    if c.split(',').any(|x| x == want) {
                        out.push(leaf(Path::new(ROOT).join(want), path));
                    }
                }
            }
            (Layout::Unified, _) => {}
        }
    }
    out
}

/// Checks a `subcgroup` line before gc deletes it: it must be a pod cgroup of this pod.
pub fn is_pod_cgroup(p: &str, uuid: &str) -> bool {
    p.starts_with("/sys/fs/cgroup/")
        && p.ends_with(&format!("/podlog/{uuid}"))
        && !p.split('/').any(|c| c == ".." || c == ".")
}

/// Directory names are used as cgroup names: accept what a UUID or an ACName can contain.
pub fn valid_uuid(uuid: &str) -> bool {
    !uuid.is_empty()
        && uuid != "."
        && uuid != ".."
        && uuid
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
}

pub struct Cgroups {
    dirs: Vec<PathBuf>,
}

impl Cgroups {
    /// Creates the pod's cgroups (none if anything is off) and records them in `subcgroup`.
    pub fn create(pod_dir: BorrowedFd<'_>, uuid: &str) -> Cgroups {
        let none = Cgroups { dirs: Vec::new() };
        if !valid_uuid(uuid) {
            return none;
        }
        let Ok(own) = std::fs::read_to_string("/proc/self/cgroup") else {
            return none;
        };
        let dirs: Vec<PathBuf> = plan(&own, detect(), uuid)
            .into_iter()
            .filter(|(mount, _)| mount.join("cgroup.procs").exists())
            .map(|(_, dir)| dir)
            .collect();
        let list: String = dirs.iter().map(|d| format!("{}\n", d.display())).collect();
        if fsutil::write_atomic(pod_dir, "subcgroup", list.as_bytes()).is_err() {
            return none;
        }
        Cgroups {
            dirs: dirs
                .into_iter()
                .filter(|d| std::fs::create_dir_all(d).is_ok())
                .collect(),
        }
    }

    /// Moves `pid` into every pod cgroup; its later children follow. On cgroup v1 this
    /// waits for an RCU grace period (the global threadgroup rwsem), often several ms.
    pub fn add(&self, pid: Pid) {
        for d in &self.dirs {
            let _ = std::fs::write(d.join("cgroup.procs"), pid.as_raw().to_string());
        }
    }

    /// After pod PID 1 has exited the pid namespace is empty, so the cgroups are too.
    pub fn remove(&self) {
        for d in &self.dirs {
            let _ = std::fs::remove_dir(d);
        }
    }
}

/// Removes one pod cgroup that may still hold processes (a pod whose stage1 was killed):
/// kill them, then rmdir, retrying while the kernel finishes the exits.
pub fn destroy(dir: &Path) -> std::io::Result<()> {
    if !dir.exists() {
        return Ok(());
    }
    let _ = std::fs::write(dir.join("cgroup.kill"), "1");
    let mut last = Ok(());
    for _ in 0..100 {
        if let Ok(procs) = std::fs::read_to_string(dir.join("cgroup.procs")) {
            for pid in procs.lines().filter_map(|l| l.trim().parse::<i32>().ok()) {
                let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
            }
        }
        match std::fs::remove_dir(dir) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => last = Err(e),
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    last
}

#[cfg(test)]
mod tests {
    use super::*;

    const HYBRID: &str = "9:name=systemd:/\n8:pids:/\n4:memory:/sandbox/x\n2:cpu,cpuacct:/\n0::/\n";

    #[test]
    fn plans_hybrid() {
        let p: Vec<_> = plan(HYBRID, Layout::Legacy, "u1")
            .into_iter()
            .map(|(_, d)| d)
            .collect();
        assert_eq!(
            plan(HYBRID, Layout::Legacy, "u1")[1].0,
            PathBuf::from("/sys/fs/cgroup/memory")
        );
        assert_eq!(
            p,
            [
                PathBuf::from("/sys/fs/cgroup/pids/podlog/u1"),
                PathBuf::from("/sys/fs/cgroup/memory/sandbox/x/podlog/u1"),
                PathBuf::from("/sys/fs/cgroup/unified/podlog/u1"),
            ]
        );
    }

    #[test]
    fn plans_unified() {
        let p = plan("0::/user.slice/session-1.scope\n", Layout::Unified, "u1");
        assert_eq!(
            p,
            [(
                PathBuf::from("/sys/fs/cgroup"),
                PathBuf::from("/sys/fs/cgroup/user.slice/session-1.scope/podlog/u1")
            )]
        );
    }

    #[test]
    fn validates_gc_input() {
        assert!(is_pod_cgroup("/sys/fs/cgroup/pids/podlog/u1", "u1"));
        assert!(is_pod_cgroup("/sys/fs/cgroup/memory/a/b/podlog/u1", "u1"));
        assert!(!is_pod_cgroup("/sys/fs/cgroup/pids/podlog/u2", "u1"));
        assert!(!is_pod_cgroup("/etc/podlog/u1", "u1"));
        assert!(!is_pod_cgroup("/sys/fs/cgroup/../../etc/podlog/u1", "u1"));
        assert!(valid_uuid("0f9c2a1e-1234-4bcd-9abc-0123456789ab"));
        assert!(!valid_uuid("a/b"));
        assert!(!valid_uuid(".."));
    }
}
