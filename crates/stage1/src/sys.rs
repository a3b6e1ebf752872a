//! Thin wrappers for the few system calls nix does not cover.

use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::time::Duration;

use nix::errno::Errno;
use nix::sys::signal::{SigSet, Signal};
use nix::unistd::Pid;

/// A pidfd: signals and setns through it cannot hit a recycled pid.
pub fn pidfd_open(pid: Pid) -> nix::Result<OwnedFd> {
    // SAFETY: integer arguments only; on success the kernel returns a new fd that we own.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid.as_raw(), 0) };
    Errno::result(fd).map(|fd| {
        // SAFETY: fd is a fresh descriptor returned by pidfd_open, owned by nobody else.
        unsafe { OwnedFd::from_raw_fd(fd as RawFd) }
    })
}

pub fn pidfd_send_signal(pidfd: BorrowedFd<'_>, sig: Signal) -> nix::Result<()> {
    // SAFETY: a null siginfo is allowed (the kernel fills in a SI_USER siginfo).
    let r = unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            pidfd.as_raw_fd(),
            sig as libc::c_int,
            std::ptr::null::<libc::siginfo_t>(),
            0,
        )
    };
    Errno::result(r).map(drop)
}

/// Marks every fd from 3 up close-on-exec, so an app inherits only its stdio.
pub fn cloexec_from_3() -> nix::Result<()> {
    // SAFETY: integer arguments only.
    let r = unsafe { libc::close_range(3, u32::MAX, libc::CLOSE_RANGE_CLOEXEC as libc::c_int) };
    Errno::result(r).map(drop)
}

pub fn flock(fd: BorrowedFd<'_>, op: libc::c_int) -> nix::Result<()> {
    // SAFETY: integer arguments only; fd is a valid borrowed descriptor.
    let r = unsafe { libc::flock(fd.as_raw_fd(), op) };
    Errno::result(r).map(drop)
}

/// Waits for one of `set` (which must be blocked), at most `timeout` if given.
/// `Ok(None)` means the timeout passed.
pub fn sigtimedwait(set: &SigSet, timeout: Option<Duration>) -> nix::Result<Option<Signal>> {
    let ts = timeout.map(|t| libc::timespec {
        tv_sec: t.as_secs() as libc::time_t,
        tv_nsec: t.subsec_nanos() as libc::c_long,
    });
    let tsp = ts
        .as_ref()
        .map_or(std::ptr::null(), |t| t as *const libc::timespec);
    // SAFETY: set and ts outlive the call; a null siginfo pointer is allowed.
    let r = unsafe { libc::sigtimedwait(set.as_ref(), std::ptr::null_mut(), tsp) };
    match Errno::result(r) {
        Ok(sig) => Signal::try_from(sig).map(Some),
        Err(Errno::EAGAIN) => Ok(None),
        Err(e) => Err(e),
    }
}

/// A detached copy of the mount tree at `path` (open_tree(2) with OPEN_TREE_CLONE, Linux 5.2): it
/// is attached nowhere until move_mount, and vanishes with its last fd.
pub fn open_tree_clone(path: &std::ffi::CStr, recursive: bool) -> nix::Result<OwnedFd> {
    let mut flags = libc::OPEN_TREE_CLONE | libc::OPEN_TREE_CLOEXEC;
    if recursive {
        flags |= libc::AT_RECURSIVE as libc::c_uint;
    }
    // SAFETY: path is a NUL-terminated string that outlives the call; on success the kernel
    // returns a new fd that we own.
    let fd = unsafe { libc::syscall(libc::SYS_open_tree, libc::AT_FDCWD, path.as_ptr(), flags) };
    Errno::result(fd).map(|fd| {
        // SAFETY: fd is a fresh descriptor returned by open_tree, owned by nobody else.
        unsafe { OwnedFd::from_raw_fd(fd as RawFd) }
    })
}

/// mount_setattr(2) (Linux 5.12) on the mount `fd` refers to, and with `recursive` on every mount
/// below it.
pub fn mount_setattr(
    fd: BorrowedFd<'_>,
    recursive: bool,
    attr: &libc::mount_attr,
) -> nix::Result<()> {
    let mut flags = libc::AT_EMPTY_PATH;
    if recursive {
        flags |= libc::AT_RECURSIVE;
    }
    // SAFETY: `fd` is an open fd, the path an empty NUL-terminated string (AT_EMPTY_PATH: the fd
    // itself), and `attr` a mount_attr that outlives the call, passed with its size.
    let r = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            fd.as_raw_fd(),
            c"".as_ptr(),
            flags,
            attr as *const libc::mount_attr,
            std::mem::size_of::<libc::mount_attr>(),
        )
    };
    Errno::result(r).map(drop)
}

/// Sets `set` and clears `clear` (MOUNT_ATTR_*) on the one mount `fd` is the root of, leaving
/// its other flags.
pub fn change_mount_attrs(fd: BorrowedFd<'_>, set: u64, clear: u64) -> nix::Result<()> {
    let attr = libc::mount_attr {
        attr_set: set,
        attr_clr: clear,
        propagation: 0,
        userns_fd: 0,
    };
    mount_setattr(fd, false, &attr)
}

/// Attaches the detached mount `fd` (from open_tree) on `target`.
pub fn move_mount(fd: BorrowedFd<'_>, target: &std::ffi::CStr) -> nix::Result<()> {
    // SAFETY: `fd` is an open fd, both paths NUL-terminated strings that outlive the call.
    let r = unsafe {
        libc::syscall(
            libc::SYS_move_mount,
            fd.as_raw_fd(),
            c"".as_ptr(),
            libc::AT_FDCWD,
            target.as_ptr(),
            libc::MOVE_MOUNT_F_EMPTY_PATH,
        )
    };
    Errno::result(r).map(drop)
}

/// The kind of namespace an nsfs file refers to, as a `CLONE_NEW*` value (NS_GET_NSTYPE, Linux
/// 4.11).
pub fn ns_type(fd: BorrowedFd<'_>) -> nix::Result<libc::c_int> {
    // _IO(0xb7, 0x3) in <linux/nsfs.h>, which the libc crate does not define.
    const NS_GET_NSTYPE: libc::Ioctl = 0xb703;
    // SAFETY: NS_GET_NSTYPE takes no argument and only returns a value; fd is a valid descriptor.
    let r = unsafe { libc::ioctl(fd.as_raw_fd(), NS_GET_NSTYPE) };
    Errno::result(r)
}
