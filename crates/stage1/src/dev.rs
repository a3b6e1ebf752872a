//! The app's `/dev`: a fresh tmpfs with the standard nodes (youki's `default_devices`, the
//! OCI runtime-spec list), never the host's /dev.

use std::path::Path;

use nix::mount::MsFlags;
use nix::sys::stat::{makedev, mknod, Mode, SFlag};
use nix::unistd::{mkdir, symlinkat};

use crate::error::{Context, Result};
use crate::mounts;

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
/// symlink). The caller's umask is 0, so modes are exact.
pub fn setup(dev: &Path) -> Result<()> {
    mounts::fs(
        "tmpfs",
        dev,
        "tmpfs",
        MsFlags::MS_NOSUID | MsFlags::MS_STRICTATIME,
        Some("mode=755,size=65536k"),
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
    }
    for (name, target) in SYMLINKS {
        symlinkat(target, nix::fcntl::AT_FDCWD, &dev.join(name))
            .with_ctx(|| format!("symlink /dev/{name}"))?;
    }
    let pts = dev.join("pts");
    mkdir(&pts, Mode::from_bits_truncate(0o755)).ctx("mkdir /dev/pts")?;
    mounts::fs(
        "devpts",
        &pts,
        "devpts",
        MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC,
        Some("newinstance,ptmxmode=0666,mode=0620,gid=5"),
    )?;
    let shm = dev.join("shm");
    mkdir(&shm, Mode::from_bits_truncate(0o1777)).ctx("mkdir /dev/shm")?;
    mounts::fs(
        "shm",
        &shm,
        "tmpfs",
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
        Some("mode=1777,size=65536k"),
    )
}
