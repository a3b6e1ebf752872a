//! Best-effort cgroups: the pod goes into `podlog/<uuid>` below stage1's own cgroup in each
//! hierarchy that matters (v1 `pids` and `memory`; the v2 hierarchy when it is the only one or
//! has one of those controllers), so a limit stage0 lives under still applies to its pods.
//! Nothing here fails the pod.
//!
//! Joining is the expensive part: moving a process through `cgroup.procs` takes the global
//! threadgroup rwsem for writing, which waits for an RCU grace period (often 5-15 ms here).
//! A single-threaded process that moves itself through a v1 `tasks` file skips that lock, so
//! pod PID 1 joins the v1 hierarchies that way, at once. v2 domain cgroups have no such path:
//! the supervisor moves PID 1 through `cgroup.procs` while PID 1 builds the pod's file
//! systems, and PID 1 starts the apps only after that. (clone3's CLONE_INTO_CGROUP would
//! avoid the wait on v2 hosts.)
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
const CONTROLLERS: [&str; 2] = ["pids", "memory"];

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Layout {
    /// /sys/fs/cgroup is the v2 hierarchy.
    Unified,
    /// v1 controllers under /sys/fs/cgroup/<controller>; `v2_useful` tells whether the v2
    /// hierarchy at /sys/fs/cgroup/unified (hybrid) has one of our controllers.
    Legacy { v2_useful: bool },
}

pub fn detect() -> Layout {
    match statfs(ROOT) {
        Ok(s) if s.filesystem_type() == CGROUP2_SUPER_MAGIC => Layout::Unified,
        _ => {
            let ctrls = std::fs::read_to_string(Path::new(ROOT).join("unified/cgroup.controllers"))
                .unwrap_or_default();
            Layout::Legacy {
                v2_useful: ctrls.split_whitespace().any(|c| CONTROLLERS.contains(&c)),
            }
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct PodCgroup {
    /// The hierarchy's mount point.
    pub mount: PathBuf,
    pub dir: PathBuf,
    pub v2: bool,
}

/// The pod's cgroups, from `/proc/self/cgroup` (`id:controllers:path` lines).
pub fn plan(self_cgroup: &str, layout: Layout, uuid: &str) -> Vec<PodCgroup> {
    let leaf = |mount: PathBuf, path: &str, v2: bool| PodCgroup {
        dir: mount
            .join(path.trim_start_matches('/'))
            .join("podlog")
            .join(uuid),
        mount,
        v2,
    };
    let mut out = Vec::new();
    for line in self_cgroup.lines() {
        let mut f = line.splitn(3, ':');
        let (Some(_), Some(ctrls), Some(path)) = (f.next(), f.next(), f.next()) else {
            continue;
        };
        match (layout, ctrls) {
            (Layout::Unified, "") => out.push(leaf(PathBuf::from(ROOT), path, true)),
            (Layout::Legacy { v2_useful: true }, "") => {
                out.push(leaf(Path::new(ROOT).join("unified"), path, true))
            }
            (Layout::Legacy { .. }, c) if !c.is_empty() => {
                for want in CONTROLLERS {
                    if c.split(',').any(|x| x == want) {
                        out.push(leaf(Path::new(ROOT).join(want), path, false));
                    }
                }
            }
            _ => {}
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
    groups: Vec<PodCgroup>,
}

impl Cgroups {
    /// Creates the pod's cgroups (none if anything is off) and records them in `subcgroup`.
    pub fn create(pod_dir: BorrowedFd<'_>, uuid: &str) -> Cgroups {
        let none = Cgroups { groups: Vec::new() };
        if !valid_uuid(uuid) {
            return none;
        }
        let Ok(own) = std::fs::read_to_string("/proc/self/cgroup") else {
            return none;
        };
        let groups: Vec<PodCgroup> = plan(&own, detect(), uuid)
            .into_iter()
            .filter(|g| g.mount.join("cgroup.procs").exists())
            .collect();
        let list: String = groups
            .iter()
            .map(|g| format!("{}\n", g.dir.display()))
            .collect();
        if fsutil::write_atomic(pod_dir, "subcgroup", list.as_bytes()).is_err() {
            return none;
        }
        Cgroups {
            groups: groups
                .into_iter()
                .filter(|g| std::fs::create_dir_all(&g.dir).is_ok())
                .collect(),
        }
    }

    /// Pod PID 1 moves itself into the v1 cgroups (see the module comment); its later
    /// children follow.
    pub fn join_v1_self(&self) {
        for g in self.groups.iter().filter(|g| !g.v2) {
            let _ = std::fs::write(g.dir.join("tasks"), "0");
        }
    }

    pub fn has_v2(&self) -> bool {
        self.groups.iter().any(|g| g.v2)
    }

    /// Moves `pid` (with all its threads) into the v2 cgroup: waits for a grace period.
    pub fn add_v2(&self, pid: Pid) {
        for g in self.groups.iter().filter(|g| g.v2) {
            let _ = std::fs::write(g.dir.join("cgroup.procs"), pid.as_raw().to_string());
        }
    }

    /// After pod PID 1 has exited the pid namespace is empty, so the cgroups are too.
    pub fn remove(&self) {
        for g in &self.groups {
            let _ = std::fs::remove_dir(&g.dir);
        }
    }
}

/// Moves the calling single-threaded process into a pod cgroup (for `enter`).
pub fn join_self(dir: &Path) {
    let tasks = dir.join("tasks");
    let file = if tasks.exists() {
        tasks
    } else {
        dir.join("cgroup.procs")
    };
    let _ = std::fs::write(file, "0");
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

    fn dirs(p: &[PodCgroup]) -> Vec<(&str, bool)> {
        p.iter().map(|g| (g.dir.to_str().unwrap(), g.v2)).collect()
    }

    #[test]
    fn plans_hybrid() {
        let p = plan(HYBRID, Layout::Legacy { v2_useful: false }, "u1");
        assert_eq!(
            dirs(&p),
            [
                ("/sys/fs/cgroup/pids/podlog/u1", false),
                ("/sys/fs/cgroup/memory/sandbox/x/podlog/u1", false),
            ]
        );
        assert_eq!(p[1].mount, PathBuf::from("/sys/fs/cgroup/memory"));
        let p = plan(HYBRID, Layout::Legacy { v2_useful: true }, "u1");
        assert_eq!(dirs(&p)[2], ("/sys/fs/cgroup/unified/podlog/u1", true));
        assert_eq!(p[2].mount, PathBuf::from("/sys/fs/cgroup/unified"));
    }

    #[test]
    fn plans_unified() {
        let p = plan("0::/user.slice/session-1.scope\n", Layout::Unified, "u1");
        assert_eq!(
            dirs(&p),
            [("/sys/fs/cgroup/user.slice/session-1.scope/podlog/u1", true)]
        );
        assert_eq!(p[0].mount, PathBuf::from("/sys/fs/cgroup"));
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
