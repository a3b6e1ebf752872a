//! rkt's pod and store locks: flock on a directory fd. The fd number goes back to JS so the lock can
//! be handed to a spawned stage1 (rkt's RKT_LOCK_FD contract) and outlive this process's interest.

use std::os::fd::{BorrowedFd, OwnedFd};
use std::path::Path;

use rustix::fs::{self, FlockOperation};
use rustix::io::Errno;

use crate::errors::{Code, Context, Error, Result};
use crate::fsat;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Shared,
    Exclusive,
}

pub fn open(dir: &Path) -> Result<OwnedFd> {
    fsat::open_dir(dir).context(|| format!("opening {}", dir.display()))
}

/// Takes (or converts: flock on an fd that holds a lock changes its mode) a lock. Without `wait`,
/// a lock held elsewhere fails at once with ELOCKED.
pub fn lock(fd: BorrowedFd<'_>, mode: Mode, wait: bool, what: &str) -> Result<()> {
    let op = match (mode, wait) {
        (Mode::Shared, true) => FlockOperation::LockShared,
        (Mode::Shared, false) => FlockOperation::NonBlockingLockShared,
        (Mode::Exclusive, true) => FlockOperation::LockExclusive,
        (Mode::Exclusive, false) => FlockOperation::NonBlockingLockExclusive,
    };
    loop {
        match fs::flock(fd, op) {
            Err(Errno::INTR) => continue,
            Err(Errno::WOULDBLOCK) => {
                return Err(Error::new(
                    Code::Locked,
                    format!("{what} is locked by another process"),
                ))
            }
            other => return other.context(|| format!("locking {what}")),
        }
    }
}

pub fn unlock(fd: BorrowedFd<'_>) -> Result<()> {
    fs::flock(fd, FlockOperation::Unlock).context(|| "unlocking")
}

/// rkt's liveness probe: a shared non-blocking lock on a fresh fd fails only if someone holds the
/// directory exclusively (a running pod's stage1, or a preparer). The probe's fd, and with it the
/// probe's own lock, is closed before returning.
pub fn is_locked(dir: &Path) -> Result<bool> {
    let fd = open(dir)?;
    let shown = dir.display().to_string();
    match lock(rustix::fd::AsFd::as_fd(&fd), Mode::Shared, false, &shown) {
        Ok(()) => Ok(false),
        Err(e) if e.code == Code::Locked => Ok(true),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsFd;

    #[test]
    fn an_exclusive_lock_is_seen_by_the_probe_and_released_on_close() {
        let dir = tempfile::tempdir().unwrap();
        assert!(!is_locked(dir.path()).unwrap());
        let fd = open(dir.path()).unwrap();
        lock(fd.as_fd(), Mode::Exclusive, false, "pod").unwrap();
        assert!(is_locked(dir.path()).unwrap());
        let other = open(dir.path()).unwrap();
        let e = lock(other.as_fd(), Mode::Shared, false, "pod").unwrap_err();
        assert_eq!(e.code, Code::Locked);
        assert_eq!(e.to_string(), "ELOCKED: pod is locked by another process");
        drop(fd);
        assert!(!is_locked(dir.path()).unwrap());
    }

    #[test]
    fn shared_locks_coexist_and_unlock_releases() {
        let dir = tempfile::tempdir().unwrap();
        let a = open(dir.path()).unwrap();
        let b = open(dir.path()).unwrap();
        lock(a.as_fd(), Mode::Shared, false, "d").unwrap();
        lock(b.as_fd(), Mode::Shared, false, "d").unwrap();
        assert!(!is_locked(dir.path()).unwrap());
        unlock(b.as_fd()).unwrap();
        lock(a.as_fd(), Mode::Exclusive, false, "d").unwrap();
        assert!(is_locked(dir.path()).unwrap());
    }
}
