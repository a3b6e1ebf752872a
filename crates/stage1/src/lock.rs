//! rkt's pod lock contract: stage0 opens the pod directory, takes an exclusive flock and
//! passes the fd as `RKT_LOCK_FD`. The pod counts as running exactly while that lock is held.

use std::os::fd::{AsFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{open, OFlag};
use nix::sys::stat::{fstat, stat, Mode, SFlag};
use nix::unistd::Pid;

use crate::error::{bail, Context, Result};
use crate::sys;

/// The locked pod directory: its fd (the lock itself, and the way to write into the pod dir
/// after pivot_root) and its canonical path (for mount options).
pub struct PodDir {
    fd: OwnedFd,
    pub path: PathBuf,
}

impl PodDir {
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// Takes over `RKT_LOCK_FD` and checks it is `pod_dir`, locked exclusively by it.
    pub fn from_env(pod_dir: &Path) -> Result<PodDir> {
        const NOT_LOCKED: &str = "pod directory is not locked";
        let raw: RawFd = match std::env::var("RKT_LOCK_FD")
            .ok()
            .and_then(|v| v.parse().ok())
        {
            // 0-2 are stdio: never take them over (and close stderr before the message).
            Some(fd) if fd >= 3 => fd,
            _ => bail!("{NOT_LOCKED}: RKT_LOCK_FD is not set to a file descriptor number above 2"),
        };
        // SAFETY: fcntl(F_GETFD) only checks that the number is an open descriptor.
        if unsafe { libc::fcntl(raw, libc::F_GETFD) } < 0 {
            bail!("{NOT_LOCKED}: RKT_LOCK_FD={raw} is not an open file descriptor");
        }
        // SAFETY: the descriptor is open (checked above) and handed to us by stage0 for
        // the pod's lifetime; nothing else in this process owns it.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        let st = fstat(&fd).ctx("fstat RKT_LOCK_FD")?;
        if SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT != SFlag::S_IFDIR {
            bail!("{NOT_LOCKED}: RKT_LOCK_FD={raw} is not a directory");
        }
        let path = std::fs::canonicalize(pod_dir)
            .with_ctx(|| format!("pod directory {}", pod_dir.display()))?;
        let pst = stat(&path).with_ctx(|| format!("stat {}", path.display()))?;
        if (pst.st_dev, pst.st_ino) != (st.st_dev, st.st_ino) {
            bail!("{NOT_LOCKED}: RKT_LOCK_FD={raw} is not {}", path.display());
        }
        if !is_locked(&path)? {
            bail!("{NOT_LOCKED}: {}", path.display());
        }
        // Someone holds it; re-locking our own open file description is a no-op, while
        // another holder makes this fail.
        match sys::flock(fd.as_fd(), libc::LOCK_EX | libc::LOCK_NB) {
            Ok(()) => {}
            Err(Errno::EWOULDBLOCK) => {
                bail!("{NOT_LOCKED} by RKT_LOCK_FD={raw}: another process holds the lock")
            }
            Err(e) => return Err(e).ctx("flock RKT_LOCK_FD"),
        }
        // Apps must not inherit the lock (rkt #3295: a leftover child kept a dead pod "running").
        nix::fcntl::fcntl(
            &fd,
            nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::FD_CLOEXEC),
        )
        .ctx("set FD_CLOEXEC on RKT_LOCK_FD")?;
        Ok(PodDir { fd, path })
    }
}

/// The pod directory by its canonical path, and opened (read-only, close-on-exec).
pub fn open_pod_dir(pod_dir: &Path) -> Result<(PathBuf, OwnedFd)> {
    let path = std::fs::canonicalize(pod_dir)
        .with_ctx(|| format!("pod directory {}", pod_dir.display()))?;
    let fd = open_dir(&path)?;
    Ok((path, fd))
}

fn open_dir(dir: &Path) -> Result<OwnedFd> {
    open(
        dir,
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .with_ctx(|| format!("open {}", dir.display()))
}

/// rkt's observer probe: a shared non-blocking lock fails while the pod's lock is held.
pub fn is_locked(pod_dir: &Path) -> Result<bool> {
    let probe = open_dir(pod_dir)?;
    match sys::flock(probe.as_fd(), libc::LOCK_SH | libc::LOCK_NB) {
        Ok(()) => Ok(false),
        Err(Errno::EWOULDBLOCK) => Ok(true),
        Err(e) => Err(e).with_ctx(|| format!("flock {}", pod_dir.display())),
    }
}

/// A running pod's PID 1, as a pidfd. The pid comes from `<pod>/pid`; the lock must be held
/// (a stale pid file of an exited pod may name a recycled pid) and the process must be
/// PID 1 of a pid namespace of its own (`NSpid: <host pid> 1`).
pub fn running_pod_pid1(pod_dir: &Path) -> Result<(Pid, OwnedFd)> {
    let dir = open_dir(pod_dir)?;
    let raw = match crate::fsutil::read_at(&dir, "pid") {
        Ok(raw) => raw,
        Err(Errno::ENOENT) => bail!("pod is not running: {} has no pid file", pod_dir.display()),
        Err(e) => return Err(e).ctx("read <pod>/pid"),
    };
    let pid = match String::from_utf8_lossy(&raw).trim().parse::<i32>() {
        Ok(p) if p > 0 => Pid::from_raw(p),
        _ => bail!("<pod>/pid: not a pid: {:?}", String::from_utf8_lossy(&raw)),
    };
    if !is_locked(pod_dir)? {
        bail!("pod is not running (its directory is not locked)");
    }
    let pidfd = match crate::sys::pidfd_open(pid) {
        Ok(fd) => fd,
        Err(Errno::ESRCH) => bail!("pod is not running: process {pid} is gone"),
        Err(e) => return Err(e).ctx("pidfd_open"),
    };
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    if !is_namespace_init(&status) {
        bail!("process {pid} from <pod>/pid is not a pod's PID 1");
    }
    Ok((pid, pidfd))
}

/// `NSpid:` lists the pid in each nested pid namespace, outermost first.
pub fn is_namespace_init(proc_status: &str) -> bool {
    proc_status
        .lines()
        .find_map(|l| l.strip_prefix("NSpid:"))
        .map(|v| v.split_whitespace().collect::<Vec<_>>())
        .is_some_and(|ids| ids.len() >= 2 && ids.last() == Some(&"1"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn namespace_init() {
        assert!(is_namespace_init("Name:\tx\nNSpid:\t4242\t1\n"));
        assert!(!is_namespace_init("NSpid:\t4242\n"));
        assert!(!is_namespace_init("NSpid:\t4242\t7\n"));
        assert!(!is_namespace_init(""));
    }
}
