//! `netns`: the pod's network namespace, kept as a bind mount of its nsfs file on `<pod>/netns`.
//! stage0 attaches the pod's CNI networks to it before `init --net netns` joins it, and detaches
//! them after the pod has exited, so it must outlive every process of the pod: the mount is made
//! in the caller's mount namespace, not in one of stage1's (which die with their processes).

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::Path;

use nix::errno::Errno;
use nix::fcntl::{open, openat, OFlag};
use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sched::{unshare, CloneFlags};
use nix::sys::stat::{fchmod, fstat, Mode, SFlag};
use nix::sys::statfs::{fstatfs, NSFS_MAGIC};
use nix::unistd::{unlinkat, UnlinkatFlags};

use crate::cli::{NetnsAction, NetnsOpts};
use crate::error::{bail, Context, Result};
use crate::{fsutil, lock, namespaces, sys};

/// The name of the kept namespace in the pod directory.
pub const FILE: &str = "netns";

pub fn run(opts: NetnsOpts) -> Result<i32> {
    let (pod_dir, dir) = lock::open_pod_dir(&opts.pod_dir)?;
    let path = pod_dir.join(FILE);
    match opts.action {
        NetnsAction::Create => create(dir.as_fd(), &path)?,
        NetnsAction::Remove => remove(dir.as_fd(), &path)?,
    }
    Ok(0)
}

/// What `<pod>/netns` is.
enum Kept {
    Missing,
    /// A regular file with no namespace mounted on it (an O_PATH fd).
    File(OwnedFd),
    /// A network namespace mounted on it, opened for reading (what setns takes).
    Netns(OwnedFd),
}

/// Looks at `<pod>/netns` without following a symlink; anything but a regular file, or a
/// namespace other than a network namespace, is refused.
fn inspect(dir: BorrowedFd<'_>, path: &Path) -> Result<Kept> {
    let fd = match fsutil::open_path_beneath(dir, FILE) {
        Ok(fd) => fd,
        Err(Errno::ENOENT) => return Ok(Kept::Missing),
        Err(e) => return Err(e).with_ctx(|| format!("open {}", path.display())),
    };
    let st = fstat(&fd).with_ctx(|| format!("fstat {}", path.display()))?;
    let kind = SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT;
    if kind != SFlag::S_IFREG {
        let what = match kind {
            SFlag::S_IFLNK => "a symlink",
            SFlag::S_IFDIR => "a directory",
            _ => "a special file",
        };
        bail!("{} is {what}, not a regular file", path.display());
    }
    // Only a mount puts an nsfs file in a directory.
    if fstatfs(&fd)
        .with_ctx(|| format!("fstatfs {}", path.display()))?
        .filesystem_type()
        != NSFS_MAGIC
    {
        return Ok(Kept::File(fd));
    }
    // Reopened through the O_PATH fd: the same file, no path looked up again.
    let ns = open(
        fsutil::fd_path(&fd).as_str(),
        OFlag::O_RDONLY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .with_ctx(|| format!("open {}", path.display()))?;
    let ns_type =
        sys::ns_type(ns.as_fd()).with_ctx(|| format!("NS_GET_NSTYPE {}", path.display()))?;
    if ns_type != libc::CLONE_NEWNET {
        bail!(
            "{} holds a namespace that is not a network namespace",
            path.display()
        );
    }
    Ok(Kept::Netns(ns))
}

/// A new network namespace with `lo` up, mounted on `<pod>/netns` (a new empty file, mode
/// 0644); nothing to do if one is already there.
fn create(dir: BorrowedFd<'_>, path: &Path) -> Result<()> {
    let target = match inspect(dir, path)? {
        Kept::Netns(_) => return Ok(()),
        // Left by a create that failed before its mount.
        Kept::File(fd) => fd,
        Kept::Missing => {
            let fd = openat(
                dir,
                FILE,
                OFlag::O_WRONLY
                    | OFlag::O_CREAT
                    | OFlag::O_EXCL
                    | OFlag::O_NOFOLLOW
                    | OFlag::O_CLOEXEC,
                Mode::from_bits_truncate(0o644),
            )
            .with_ctx(|| format!("create {}", path.display()))?;
            // Whatever the caller's umask.
            fchmod(&fd, Mode::from_bits_truncate(0o644))
                .with_ctx(|| format!("chmod {}", path.display()))?;
            fd
        }
    };
    // This process exits right after: no helper process is needed to hold the namespace while
    // it is mounted, and the caller's mount namespace is left as it is.
    unshare(CloneFlags::CLONE_NEWNET).ctx("unshare the network namespace")?;
    namespaces::loopback_up()?;
    mount(
        Some("/proc/self/ns/net"),
        fsutil::fd_path(&target).as_str(),
        None::<&str>,
        MsFlags::MS_BIND,
        None::<&str>,
    )
    .with_ctx(|| format!("bind the network namespace on {}", path.display()))
}

/// Unmounts what is mounted on `<pod>/netns` (each namespace, if several were stacked) and
/// removes the file; nothing to do if it is not there.
fn remove(dir: BorrowedFd<'_>, path: &Path) -> Result<()> {
    loop {
        match inspect(dir, path)? {
            Kept::Missing => return Ok(()),
            // Through the fd: exactly the mount inspect looked at, whatever the path names now.
            Kept::Netns(ns) => umount2(fsutil::fd_path(&ns).as_str(), MntFlags::MNT_DETACH)
                .with_ctx(|| format!("unmount {}", path.display()))?,
            Kept::File(_) => {
                return match unlinkat(dir, FILE, UnlinkatFlags::NoRemoveDir) {
                    Ok(()) | Err(Errno::ENOENT) => Ok(()),
                    Err(e) => Err(e).with_ctx(|| format!("remove {}", path.display())),
                }
            }
        }
    }
}

/// For `init --net netns`: the kept namespace, ready for setns. Looked up from the pod directory
/// opened by its path, in stage1's mount namespace, where `netns create` mounted it (a lookup
/// from the lock fd would stay in the mount tree of whoever opened that).
pub fn open_kept(pod_dir: &Path) -> Result<OwnedFd> {
    let (pod_dir, dir) = lock::open_pod_dir(pod_dir)?;
    let path = pod_dir.join(FILE);
    match inspect(dir.as_fd(), &path).with_ctx(|| "the pod's network namespace")? {
        Kept::Netns(ns) => Ok(ns),
        Kept::Missing => bail!(
            "the pod's network namespace {} is missing: stage0 creates it when it attaches the \
             pod's networks",
            path.display()
        ),
        Kept::File(_) => bail!(
            "the pod's network namespace {} is an empty file with no namespace mounted on it: \
             stage0 creates it when it attaches the pod's networks",
            path.display()
        ),
    }
}
