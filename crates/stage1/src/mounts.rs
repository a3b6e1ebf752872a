//! Mount primitives. Everything here runs in pod PID 1's own mount namespace, after
//! [`make_everything_private`]: no mount made here can propagate to the host, and no host
//! mount is ever changed.

use std::ffi::CString;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::DirBuilderExt;
use std::path::Path;

use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::unistd::{chdir, pivot_root};

use crate::error::{bail, Context, Error, Result};
use crate::lowers::Lowers;
use crate::sys;

/// The first thing done in a new mount namespace: its copies of the host's mounts stop
/// receiving and sending propagation events, so later mounts and unmounts stay here.
pub fn make_everything_private() -> Result<()> {
    mount(
        None::<&str>,
        "/",
        None::<&str>,
        MsFlags::MS_REC | MsFlags::MS_PRIVATE,
        None::<&str>,
    )
    .ctx("make / recursively private")
}

pub fn fs(
    source: &str,
    target: &Path,
    fstype: &str,
    flags: MsFlags,
    data: Option<&str>,
) -> Result<()> {
    mount(Some(source), target, Some(fstype), flags, data)
        .with_ctx(|| format!("mount {fstype} on {}", target.display()))
}

/// A recursive bind of `source` onto `target`.
pub fn bind(source: &Path, target: &Path) -> Result<()> {
    mount(
        Some(source),
        target,
        None::<&str>,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None::<&str>,
    )
    .with_ctx(|| format!("bind {} on {}", source.display(), target.display()))
}

/// A read-only bind of `target` onto itself, keeping `flags` (nosuid etc.): a bind mount
/// takes MS_RDONLY only on a remount.
pub fn bind_readonly(target: &Path, flags: MsFlags) -> Result<()> {
    mount(
        Some(target),
        target,
        None::<&str>,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None::<&str>,
    )
    .with_ctx(|| format!("bind {}", target.display()))?;
    remount_readonly(target, flags)
}

pub fn remount_readonly(target: &Path, flags: MsFlags) -> Result<()> {
    mount(
        None::<&str>,
        target,
        None::<&str>,
        MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY | flags,
        None::<&str>,
    )
    .with_ctx(|| format!("remount {} read-only", target.display()))
}

/// Hides a file behind `/dev/null` (`null` is the app's own node).
pub fn mask_file(null: &Path, target: &Path) -> Result<()> {
    mount(
        Some(null),
        target,
        None::<&str>,
        MsFlags::MS_BIND,
        None::<&str>,
    )
    .with_ctx(|| format!("mask {}", target.display()))
}

/// Hides a directory behind an empty read-only tmpfs.
pub fn mask_dir(target: &Path) -> Result<()> {
    fs("tmpfs", target, "tmpfs", MsFlags::MS_RDONLY, None)
}

/// lowerdir/upperdir/workdir values are split on `,` (options) and `:` (lower layers), and
/// `\` escapes: escape all three.
pub fn escape_overlay_path(p: &str) -> String {
    let mut out = String::with_capacity(p.len());
    for c in p.chars() {
        if matches!(c, '\\' | ',' | ':') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// An overlay with `volatile` (Linux 5.10): without it, unmounting the overlay (when the
/// pod's mount namespace dies) runs syncfs on the whole upper file system, which costs
/// milliseconds on a busy host. The upper dir is the app's scratch space; what the pod reports
/// (pid, status) is written outside it. Falls back to a plain overlay where unsupported.
/// The lower dirs are named relative to their directory, entered for the mount.
pub fn overlay(lowers: &Lowers, upper: &Path, work: &Path, target: &Path) -> Result<()> {
    // A volatile overlay leaves work/incompat/volatile behind and refuses to mount with it
    // (a guard against reusing an upper dir after a crash); the pod's upper is scratch, and
    // this run owns the locked pod directory, so a marker from an earlier run is removed.
    let marker = work.join("work/incompat/volatile");
    let _ = std::fs::remove_file(marker.join("dirty"));
    let _ = std::fs::remove_dir(&marker);
    let lowerdir: Vec<String> = lowers
        .names
        .iter()
        .map(|n| escape_overlay_path(n))
        .collect();
    let opts = format!(
        "lowerdir={},upperdir={},workdir={}",
        lowerdir.join(":"),
        escape_overlay_path(&upper.to_string_lossy()),
        escape_overlay_path(&work.to_string_lossy()),
    );
    let volatile = format!("{opts},volatile");
    if volatile.len() > MOUNT_DATA_MAX {
        bail!(
            "{} layers do not fit in one overlay mount's options ({} bytes, at most {MOUNT_DATA_MAX})",
            lowers.names.len(),
            volatile.len()
        );
    }
    chdir(&lowers.dir).with_ctx(|| format!("chdir {}", lowers.dir.display()))?;
    let mounted = match mount(
        Some("overlay"),
        target,
        Some("overlay"),
        MsFlags::empty(),
        Some(volatile.as_str()),
    ) {
        Err(nix::errno::Errno::EINVAL) => {
            fs("overlay", target, "overlay", MsFlags::empty(), Some(&opts))
        }
        r => r.with_ctx(|| format!("mount overlay on {}", target.display())),
    };
    chdir("/").ctx("chdir /")?;
    mounted
}

/// The kernel reads mount options from one page.
const MOUNT_DATA_MAX: usize = 4095;

/// Makes `new_root` (a mount point) the root of this mount namespace and drops the old root:
/// after this, no host path is reachable from the pod. The pivot_root(".", ".") form
/// (runc, youki) needs no directory for the old root inside the new one.
pub fn pivot_into(new_root: &Path) -> Result<()> {
    chdir(new_root).with_ctx(|| format!("chdir {}", new_root.display()))?;
    pivot_root(".", ".").ctx("pivot_root")?;
    umount2(".", MntFlags::MNT_DETACH).ctx("detach the old root")?;
    chdir("/").ctx("chdir /")
}

/// A mutable pod's PID 1, after pivot_root: attaches an app's root, a detached mount tree that
/// `app-add` built (open_tree), at `target` (`/opt/stage2/<app>/rootfs`).
pub fn attach(tree: &OwnedFd, target: &str) -> Result<()> {
    with_writable_root(|| {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o755)
            .create(target)
            .with_ctx(|| format!("mkdir {target}"))
    })?;
    let path =
        CString::new(target).map_err(|_| Error::msg(format!("{target:?} has a NUL byte")))?;
    sys::move_mount(tree.as_fd(), &path).with_ctx(|| format!("attach the app's root at {target}"))
}

/// Undoes [`attach`]: the tree at `target` and every mount below it, detached (whatever the
/// kernel still holds goes with its last user), then its directory and the app's.
pub fn detach(target: &str) -> Result<()> {
    match umount2(target, MntFlags::MNT_DETACH) {
        Ok(()) | Err(nix::errno::Errno::EINVAL | nix::errno::Errno::ENOENT) => {}
        Err(e) => return Err(e).with_ctx(|| format!("detach {target}")),
    }
    with_writable_root(|| {
        let target = Path::new(target);
        for dir in [Some(target), target.parent()].into_iter().flatten() {
            match std::fs::remove_dir(dir) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    return Err(e).with_ctx(|| format!("rmdir {}", dir.display()))
                }
                _ => {}
            }
        }
        Ok(())
    })
}

/// The stage1 root is read-only (a skeleton of mount points): writable only while `f` runs.
fn with_writable_root<T>(f: impl FnOnce() -> Result<T>) -> Result<T> {
    let root = nix::fcntl::open(
        "/",
        nix::fcntl::OFlag::O_PATH | nix::fcntl::OFlag::O_DIRECTORY | nix::fcntl::OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .ctx("open /")?;
    let rdonly = libc::MOUNT_ATTR_RDONLY;
    sys::change_mount_attrs(root.as_fd(), 0, rdonly).ctx("make the stage1 root writable")?;
    let r = f();
    sys::change_mount_attrs(root.as_fd(), rdonly, 0).ctx("make the stage1 root read-only")?;
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_overlay_separators() {
        assert_eq!(escape_overlay_path("/a/b"), "/a/b");
        assert_eq!(escape_overlay_path("/a,b:c\\d"), "/a\\,b\\:c\\\\d");
    }
}
