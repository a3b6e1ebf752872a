//! The app's `/dev`: a fresh tmpfs with the standard nodes (youki's `default_devices`, the
//! OCI runtime-spec list), never the host's /dev.

use std::path::Path;

use nix::fcntl::{AtFlags, AT_FDCWD};
use nix::mount::MsFlags;
use nix::sys::stat::{makedev, mknod, Mode, SFlag};
use nix::unistd::{fchownat, mkdir, symlinkat, Gid, Uid};

use crate::error::{Context, Result};
use crate::mounts;
use crate::userns::IdRange;

/// (name, major, minor), all mode 0666.
const DEVICES: [(&str, u64, u64); 6] = [
    ("null", 1, 3),
    ("zero", 1, 5),
    ("full", 1, 7),
    ("random", 1, 8),
    ("urandom", 1, 9),
    ("tty", 5, 0),
];

const SYMLINKS: [(&str, &str); 5] = [
    ("ptmx", "pts/ptmx"),
    ("fd", "/proc/self/fd"),
    ("stdin", "/proc/self/fd/0"),
    ("stdout", "/proc/self/fd/1"),
    ("stderr", "/proc/self/fd/2"),
];

/// Mounts and fills `dev` (a directory of the app rootfs, already checked not to be a
/// symlink). The caller's umask is 0, so modes are exact. With the pod's own users, everything
/// is the pod root's (the tty group the pod's group 5).
pub fn setup(dev: &Path, users: Option<&IdRange>) -> Result<()> {
    let root = users.map_or(0, |r| r.shift);
    let tty = users.map_or(Some(TTY_GID), |r| r.host_id(TTY_GID));
    mounts::fs(
        "tmpfs",
        dev,
        "tmpfs",
        MsFlags::MS_NOSUID | MsFlags::MS_STRICTATIME,
        Some(&format!("mode=755,size=65536k,uid={root},gid={root}")),
    )?;
    for (name, major, minor) in DEVICES {
        let p = dev.join(name);
        mknod(
            &p,
            SFlag::S_IFCHR,
            Mode::from_bits_truncate(0o666),
            makedev(major, minor),
        )
        .with_ctx(|| format!("mknod {}", p.display()))?;
        own(&p, root)?;
    }
    for (name, target) in SYMLINKS {
        symlinkat(target, nix::fcntl::AT_FDCWD, &dev.join(name))
            .with_ctx(|| format!("symlink /dev/{name}"))?;
        own(&dev.join(name), root)?;
    }
    let pts = dev.join("pts");
    mkdir(&pts, Mode::from_bits_truncate(0o755)).ctx("mkdir /dev/pts")?;
    own(&pts, root)?;
    // Without a tty group in the range, new terminals keep the opener's group.
    let tty = tty.map_or(String::new(), |gid| format!(",gid={gid}"));
    mounts::fs(
        "devpts",
        &pts,
        "devpts",
        MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC,
        Some(&format!("newinstance,ptmxmode=0666,mode=0620{tty}")),
    )?;
    let shm = dev.join("shm");
    mkdir(&shm, Mode::from_bits_truncate(0o1777)).ctx("mkdir /dev/shm")?;
    mounts::fs(
        "shm",
        &shm,
        "tmpfs",
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
        Some(&format!("mode=1777,size=65536k,uid={root},gid={root}")),
    )
}

/// The tty group, which owns terminals (devpts gid=).
const TTY_GID: u32 = 5;

fn own(path: &Path, id: u32) -> Result<()> {
    if id == 0 {
        return Ok(());
    }
    fchownat(
        AT_FDCWD,
        path,
        Some(Uid::from_raw(id)),
        Some(Gid::from_raw(id)),
        AtFlags::AT_SYMLINK_NOFOLLOW,
    )
    .with_ctx(|| format!("chown {}", path.display()))
}
