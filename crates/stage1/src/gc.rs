//! `gc`: remove what an exited pod left outside its directory (its cgroups), and check the
//! invariant that no mount remains under the pod directory. stage0 deletes the directory.

use std::os::fd::AsFd;
use std::path::Path;

use crate::cli::GcOpts;
use crate::error::{bail, Context, Result};
use crate::{cgroups, fsutil, lock, netns};

pub fn run(opts: GcOpts) -> Result<i32> {
    let (pod_dir, dir) = lock::open_pod_dir(&opts.pod_dir)?;
    if let Some(pid) = live_pid1(&dir) {
        bail!("pod is still running (its PID 1 is host pid {pid}): stop it first");
    }
    let uuid = pod_dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut problems = Vec::new();
    if let Ok(list) = fsutil::read_at(&dir, "subcgroup") {
        for line in String::from_utf8_lossy(&list)
            .lines()
            .filter(|l| !l.is_empty())
        {
            if !cgroups::is_pod_cgroup(line, &uuid) {
                problems.push(format!(
                    "ignored subcgroup entry {line:?}: not a cgroup of this pod"
                ));
                continue;
            }
            if let Err(e) = cgroups::destroy(Path::new(line)) {
                problems.push(format!("remove cgroup {line}: {e}"));
            }
        }
    }
    let mountinfo =
        std::fs::read_to_string("/proc/self/mountinfo").ctx("read /proc/self/mountinfo")?;
    let kept_netns = pod_dir.join(netns::FILE);
    for m in mounts_under(&mountinfo, &pod_dir.to_string_lossy()) {
        // stage0 removes it (`netns remove`) once CNI DEL has run for every network.
        if Path::new(&m) == kept_netns {
            problems.push(format!(
                "the pod's network namespace is still kept at {m}: its networks must be detached first"
            ));
        } else {
            problems.push(format!("mount still present under the pod directory: {m}"));
        }
    }
    if !problems.is_empty() {
        bail!("gc: {}", problems.join("; "));
    }
    Ok(0)
}

/// The pod's PID 1 if it still runs: `<pod>/pid` names a live pid-namespace init running this
/// binary. (gc cannot use the lock: stage0 holds it while it collects the pod.)
fn live_pid1(dir: impl AsFd) -> Option<i32> {
    let raw = fsutil::read_at(dir, "pid").ok()?;
    let pid: i32 = String::from_utf8_lossy(&raw).trim().parse().ok()?;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let exe = std::fs::read_link(format!("/proc/{pid}/exe")).ok()?;
    let ours = std::fs::read_link("/proc/self/exe").ok()?;
    (lock::is_namespace_init(&status) && exe == ours).then_some(pid)
}

/// Mount points (field 5 of mountinfo, octal escapes decoded) at or below `dir`.
pub fn mounts_under(mountinfo: &str, dir: &str) -> Vec<String> {
    let prefix = format!("{}/", dir.trim_end_matches('/'));
    mountinfo
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(unescape)
        .filter(|m| m.starts_with(&prefix) || m == dir.trim_end_matches('/'))
        .collect()
}

/// mountinfo writes space, tab, newline and backslash as `\ooo`.
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && b.len() >= i + 4
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            out.push((b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0'));
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    const MI: &str = "22 27 0:21 / /proc rw - proc proc rw\n\
        90 27 0:50 / /var/pods/p1/stage1/rootfs rw - tmpfs tmpfs rw\n\
        91 27 0:51 / /var/pods/p1\\040x/a rw - tmpfs tmpfs rw\n\
        92 27 0:52 / /var/pods/p10 rw - tmpfs tmpfs rw\n";

    #[test]
    fn finds_mounts_below_a_dir() {
        assert_eq!(
            mounts_under(MI, "/var/pods/p1"),
            ["/var/pods/p1/stage1/rootfs"]
        );
        assert_eq!(mounts_under(MI, "/var/pods/p1 x"), ["/var/pods/p1 x/a"]);
        assert_eq!(mounts_under(MI, "/var/pods/p10/"), ["/var/pods/p10"]);
        assert!(mounts_under(MI, "/srv").is_empty());
    }
}
