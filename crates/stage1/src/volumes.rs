//! An app's volumes (manifest::AppVolume), bound into its root in pod PID 1's private mount
//! namespace after the overlay and before pivot_root:
//!
//! ```text
//! host    <host source>              → <app root>/<target>   (MS_REC when recursive)
//! empty   <pod>/sharedVolumes/<name> → <app root>/<target>   (one directory, every app that mounts it)
//! ```
//!
//! Neither path may redirect a mount: the source is opened with no symlink followed on the way
//! (stage0 refused a source that is not its real path), the target is made and opened inside
//! the app's root (RESOLVE_IN_ROOT: the image's symlinks, absolute ones too, resolve as if the
//! root were `/`), and the bind goes from the one fd to the other through /proc/self/fd. A
//! read-only volume is a read-only remount of the bind (and of every mount below it when
//! recursive).

use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;

use nix::errno::Errno;
use nix::fcntl::{openat, OFlag};
use nix::mount::{mount, MsFlags};
use nix::sys::stat::{fchmod, fstat, mkdirat, Mode, SFlag};
use nix::sys::statvfs::{fstatvfs, FsFlags};
use nix::unistd::{fchown, Gid, Uid};

use crate::error::{bail, Context, Error, Result};
use crate::fsutil;
use crate::manifest::{AppVolume, VolumeSource};
use crate::mounts;
use crate::userns::{as_pod_root, IdRange};

/// Where empty volumes live, in the pod directory (rkt's name); they go with it at gc.
pub const SHARED_VOLUMES: &str = "sharedVolumes";

/// Mounts `volumes` in the app's root (`root`, an fd on it), in order. With the pod's own users
/// (`users`), an empty volume's owner is the pod's uid and gid, and missing targets are made as
/// the pod's root; a host volume is bound as it is, so what the pod writes there is owned by its
/// host ids.
pub fn mount_all(
    pod_dir: &Path,
    root: &OwnedFd,
    app: &str,
    volumes: &[AppVolume],
    users: Option<&IdRange>,
) -> Result<()> {
    for v in volumes {
        mount_one(pod_dir, root, v, users)
            .with_ctx(|| format!("app {app:?}: volume on {}", v.target))?;
        debug!("app {app:?}: volume mounted on {}", v.target);
    }
    Ok(())
}

fn mount_one(pod_dir: &Path, root: &OwnedFd, v: &AppVolume, users: Option<&IdRange>) -> Result<()> {
    let (source, recursive) = match &v.source {
        VolumeSource::Host { path, recursive } => {
            let host_root = nix::fcntl::open(
                "/",
                OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
                Mode::empty(),
            )
            .ctx("open /")?;
            let fd = fsutil::open_path_beneath(&host_root, path).with_ctx(|| {
                format!("host source {path} (a symlink on the way is not followed)")
            })?;
            (fd, *recursive)
        }
        VolumeSource::Empty {
            name,
            mode,
            uid,
            gid,
        } => {
            let host = |id: u32, what: &str| match users {
                None => Ok(id),
                Some(r) => r.host_id(id).ok_or_else(|| {
                    Error::msg(format!(
                        "{what} {id} is outside the pod's {} user ids",
                        r.count
                    ))
                }),
            };
            let (uid, gid) = (host(*uid, "uid")?, host(*gid, "gid")?);
            (empty_dir(pod_dir, name, *mode, uid, gid)?, false)
        }
    };
    let st = fstat(&source).ctx("stat the source")?;
    let is_dir = SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT == SFlag::S_IFDIR;
    let target = as_pod_root(users, || target_in_root(root, &v.target, is_dir))?;
    let rec = if recursive {
        MsFlags::MS_REC
    } else {
        MsFlags::empty()
    };
    mount(
        Some(fsutil::fd_path(&source).as_str()),
        fsutil::fd_path(&target).as_str(),
        None::<&str>,
        MsFlags::MS_BIND | rec,
        None::<&str>,
    )
    .ctx("bind")?;
    if v.read_only {
        // Opening the target again crosses into the new mount: the remount is of the bind only.
        let bound = fsutil::open_in_root(root, &v.target, OFlag::O_PATH, 0).ctx("open the bind")?;
        let kept = fstatvfs(&bound).ctx("statvfs the bind")?.flags();
        let flags = [
            (FsFlags::ST_NOSUID, MsFlags::MS_NOSUID),
            (FsFlags::ST_NODEV, MsFlags::MS_NODEV),
            (FsFlags::ST_NOEXEC, MsFlags::MS_NOEXEC),
        ]
        .into_iter()
        .filter(|(st, _)| kept.contains(*st))
        .fold(MsFlags::empty(), |acc, (_, ms)| acc | ms);
        mounts::remount_readonly(Path::new(&fsutil::fd_path(&bound)), flags)?;
        if recursive {
            readonly_below(&bound)?;
        }
    }
    Ok(())
}

/// `<pod>/sharedVolumes/<name>`, made once with the volume's mode and owner (PID 1's umask is 0).
fn empty_dir(pod_dir: &Path, name: &str, mode: u32, uid: u32, gid: u32) -> Result<OwnedFd> {
    let pod = nix::fcntl::open(
        pod_dir,
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .with_ctx(|| format!("open {}", pod_dir.display()))?;
    let rel = format!("{SHARED_VOLUMES}/{name}");
    fsutil::mkdir_all_at(&pod, &rel, 0o755).with_ctx(|| format!("mkdir <pod>/{rel}"))?;
    let dir = fsutil::open_plain_dir(&pod, &rel).with_ctx(|| format!("open <pod>/{rel}"))?;
    fchown(&dir, Some(Uid::from_raw(uid)), Some(Gid::from_raw(gid)))
        .with_ctx(|| format!("chown <pod>/{rel} to {uid}:{gid}"))?;
    // After the chown, which clears set-id bits.
    fchmod(&dir, Mode::from_bits_truncate(mode)).with_ctx(|| format!("chmod <pod>/{rel}"))?;
    Ok(dir)
}

/// Opens `target` (absolute, clean) inside the app's root as the mount point, making what is
/// missing first: directories 0755 and root's (the ACE's rule), and the last component a
/// directory or an empty file to match the source. Every step resolves inside the root.
fn target_in_root(root: &OwnedFd, target: &str, dir: bool) -> Result<OwnedFd> {
    let (parent, name) = target.rsplit_once('/').unwrap_or(("", target));
    let mut at = String::with_capacity(parent.len());
    let mut here = fsutil::open_in_root(root, "/", OFlag::O_PATH | OFlag::O_DIRECTORY, 0)
        .ctx("open the app's root")?;
    for part in parent.split('/').filter(|p| !p.is_empty()) {
        at.push('/');
        at.push_str(part);
        make(&here, part, true).with_ctx(|| format!("mkdir {at}"))?;
        here = fsutil::open_in_root(root, &at, OFlag::O_PATH | OFlag::O_DIRECTORY, 0)
            .with_ctx(|| format!("open {at} in the app's root (is it a directory?)"))?;
    }
    make(&here, name, dir).with_ctx(|| format!("create {target}"))?;
    let fd = fsutil::open_in_root(root, target, OFlag::O_PATH, 0)
        .with_ctx(|| format!("open {target} in the app's root"))?;
    let st = fstat(&fd).ctx("stat the target")?;
    let is_dir = SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT == SFlag::S_IFDIR;
    if is_dir != dir {
        let (want, got) = if dir {
            ("a directory", "a file")
        } else {
            ("a file", "a directory")
        };
        bail!("the source is {want}, and the image has {got} there");
    }
    let root_st = fstat(root).ctx("stat the app's root")?;
    if (st.st_dev, st.st_ino) == (root_st.st_dev, root_st.st_ino) {
        bail!("the target is the app's root itself (a symlink in the image leads there)");
    }
    Ok(fd)
}

/// Makes `name` in `dir` (a directory, or an empty file) unless something is there already; a
/// symlink there is left to be resolved inside the root.
fn make(dir: &OwnedFd, name: &str, is_dir: bool) -> nix::Result<()> {
    let made = if is_dir {
        mkdirat(dir, name, Mode::from_bits_truncate(0o755))
    } else {
        openat(
            dir,
            name,
            OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            Mode::from_bits_truncate(0o644),
        )
        .map(drop)
    };
    match made {
        Ok(()) | Err(Errno::EEXIST) => Ok(()),
        Err(e) => Err(e),
    }
}

/// Makes every mount below the bind read-only too: a remount changes one mount only, so
/// mount_setattr(2) (Linux 5.12) with AT_RECURSIVE.
fn readonly_below(bound: &OwnedFd) -> Result<()> {
    let attr = libc::mount_attr {
        attr_set: libc::MOUNT_ATTR_RDONLY,
        attr_clr: 0,
        propagation: 0,
        userns_fd: 0,
    };
    crate::sys::mount_setattr(bound.as_fd(), true, &attr).ctx("make the mounts below it read-only")
}
