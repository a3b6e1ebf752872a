//! An app's own cgroups, shown read-only at `/sys/fs/cgroup` in its root, as rkt and Docker show
//! a container's: runtimes that size themselves (a JVM's heap, Go's GOMAXPROCS) and an operator
//! read the app's limits where they expect them. Each hierarchy is where the host mounts it
//! (`memory`, `cpu`, or `cpu,cpuacct` with `cpu` and `cpuacct` as symlinks to it), with the app's
//! cgroup as its root; on a unified host the app's cgroup is `/sys/fs/cgroup` itself. Read-only,
//! or the app could raise its own limits. Done by pod PID 1 before pivot_root, in its own mount
//! namespace, through fds opened without following a symlink (a volume may be on /sys).

use std::os::fd::{AsFd, BorrowedFd};
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::mount::MsFlags;
use nix::sys::stat::{mkdirat, Mode};
use nix::unistd::symlinkat;

use crate::error::{Context, Result};
use crate::{fsutil, mounts, sys};

/// How each cgroup is shown: nothing runs or is written there.
const SHOWN: u64 = libc::MOUNT_ATTR_RDONLY
    | libc::MOUNT_ATTR_NOSUID
    | libc::MOUNT_ATTR_NODEV
    | libc::MOUNT_ATTR_NOEXEC;

/// `shown`: per hierarchy, its place below `/sys/fs/cgroup` ("" for a unified root) and the
/// host path of the app's cgroup there.
pub fn mount(root: BorrowedFd<'_>, shown: &[(&str, PathBuf)]) -> Result<()> {
    if shown.is_empty() {
        return Ok(());
    }
    let target = match fsutil::open_path_beneath(root, "sys/fs/cgroup") {
        // Not stage1's /sys: a volume the user put there.
        Err(Errno::ENOENT) => return Ok(()),
        r => r.ctx("open /sys/fs/cgroup")?,
    };
    if let [("", source)] = shown {
        return attach(source, root, "sys/fs/cgroup");
    }
    let kernel = MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
    let on = fsutil::fd_path(&target);
    mounts::fs(
        "tmpfs",
        Path::new(&on),
        "tmpfs",
        kernel,
        Some("mode=755,size=64k"),
    )?;
    let dir =
        fsutil::open_plain_dir(root, "sys/fs/cgroup").ctx("open the tmpfs at /sys/fs/cgroup")?;
    for (inside, source) in shown {
        mkdirat(&dir, *inside, Mode::from_bits_truncate(0o755))
            .with_ctx(|| format!("mkdir /sys/fs/cgroup/{inside}"))?;
        attach(source, dir.as_fd(), inside)?;
        for alias in aliases(inside) {
            symlinkat(*inside, &dir, alias)
                .with_ctx(|| format!("symlink /sys/fs/cgroup/{alias}"))?;
        }
    }
    sys::change_mount_attrs(dir.as_fd(), libc::MOUNT_ATTR_RDONLY, 0)
        .ctx("make the tmpfs at /sys/fs/cgroup read-only")
}

/// Binds `source` (a host cgroup directory) on `rel` below `base`, read-only before any app
/// runs. (mount(2), which follows the fd's magic link, where move_mount would need
/// MOVE_MOUNT_T_SYMLINKS.)
fn attach(source: &Path, base: BorrowedFd<'_>, rel: &str) -> Result<()> {
    let at = fsutil::open_path_beneath(base, rel).with_ctx(|| format!("open {rel}"))?;
    mounts::bind(source, Path::new(&fsutil::fd_path(&at)))?;
    // Opened again: the path now leads into the new mount.
    let bound = fsutil::open_path_beneath(base, rel).with_ctx(|| format!("open {rel}"))?;
    sys::change_mount_attrs(bound.as_fd(), SHOWN, 0)
        .with_ctx(|| format!("make the app's cgroup {} read-only", source.display()))
}

/// A co-mounted pair is also found by each controller's name: `cpu` -> `cpu,cpuacct`.
fn aliases(inside: &str) -> Vec<&str> {
    if inside.contains(',') {
        inside.split(',').collect()
    } else {
        Vec::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn co_mounted_hierarchies_get_an_alias_per_controller() {
        assert_eq!(aliases("cpu,cpuacct"), ["cpu", "cpuacct"]);
        assert!(aliases("memory").is_empty());
        assert!(aliases("").is_empty());
    }
}
