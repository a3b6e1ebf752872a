//! `init --ready-fd N`: how stage0 learns that the pod is up. Once `<pod>/pid` is written the
//! supervisor writes PID 1's host pid and a newline to fd N and closes it; a pod that never
//! comes up closes it with nothing written. Only the supervisor holds it: it is close-on-exec
//! and pod PID 1 closes its copy first thing, so the reader sees end-of-file exactly when the
//! supervisor has answered or died.

use std::os::fd::{FromRawFd, OwnedFd, RawFd};

use nix::errno::Errno;
use nix::fcntl::{fcntl, FcntlArg, FdFlag};
use nix::sys::stat::{fstat, SFlag};
use nix::unistd::{write, Pid};

use crate::error::{bail, Context, Result};

/// Takes over fd `raw` after checking that it is an open pipe or socket above stdio (the
/// apps inherit 0-2, so a readiness fd there would leak into them).
pub fn take(raw: RawFd) -> Result<OwnedFd> {
    if raw < 3 {
        bail!("--ready-fd {raw}: must be above 2 (0-2 are the apps' stdio)");
    }
    // SAFETY: fcntl(F_GETFD) only checks that the number is an open descriptor.
    if unsafe { libc::fcntl(raw, libc::F_GETFD) } < 0 {
        bail!("--ready-fd {raw}: not an open file descriptor");
    }
    // SAFETY: the descriptor is open (checked above) and handed to us by stage0 for this
    // purpose; nothing else in this process owns it.
    let fd = unsafe { OwnedFd::from_raw_fd(raw) };
    let st = fstat(&fd).with_ctx(|| format!("--ready-fd {raw}: fstat"))?;
    if !is_pipe_or_socket(st.st_mode) {
        bail!("--ready-fd {raw}: not a pipe or a socket");
    }
    fcntl(&fd, FcntlArg::F_SETFD(FdFlag::FD_CLOEXEC))
        .with_ctx(|| format!("--ready-fd {raw}: set FD_CLOEXEC"))?;
    Ok(fd)
}

pub fn is_pipe_or_socket(st_mode: libc::mode_t) -> bool {
    let kind = SFlag::from_bits_truncate(st_mode) & SFlag::S_IFMT;
    kind == SFlag::S_IFIFO || kind == SFlag::S_IFSOCK
}

pub fn message(pid1: Pid) -> String {
    format!("{pid1}\n")
}

/// Writes the message and closes the fd. A reader that went away (EPIPE: the engine died) is
/// no reason to end the pod; `--parent-pid` is the way to tie them together.
pub fn report(fd: OwnedFd, pid1: Pid) {
    let msg = message(pid1);
    let mut rest = msg.as_bytes();
    while !rest.is_empty() {
        match write(&fd, rest) {
            Ok(n) => rest = &rest[n..],
            Err(Errno::EINTR) => {}
            Err(e) => {
                debug!("--ready-fd: write: {e}");
                return;
            }
        }
    }
    debug!("reported ready");
}

#[cfg(test)]
mod tests {
    use std::os::fd::{AsRawFd, IntoRawFd};

    use nix::fcntl::OFlag;
    use nix::sys::socket::{socketpair, AddressFamily, SockFlag, SockType};
    use nix::unistd::{pipe2, read};

    use super::*;

    #[test]
    fn takes_pipes_and_sockets_only() {
        let (r, w) = pipe2(OFlag::empty()).unwrap();
        let fd = take(w.into_raw_fd()).unwrap();
        let flags = fcntl(&fd, FcntlArg::F_GETFD).unwrap();
        assert!(FdFlag::from_bits_truncate(flags).contains(FdFlag::FD_CLOEXEC));
        report(fd, Pid::from_raw(4242));
        let mut buf = [0u8; 16];
        assert_eq!(read(&r, &mut buf), Ok(5));
        assert_eq!(&buf[..5], b"4242\n");
        assert_eq!(read(&r, &mut buf), Ok(0), "closed after the message");

        let (a, _b) = socketpair(
            AddressFamily::Unix,
            SockType::Stream,
            None,
            SockFlag::empty(),
        )
        .unwrap();
        take(a.into_raw_fd()).unwrap();

        let file = std::fs::File::open("/proc/self/exe").unwrap();
        let err = take(file.as_raw_fd()).unwrap_err().to_string();
        assert!(err.ends_with("not a pipe or a socket"), "{err}");
        // take() owned and closed it on the error path.
        std::mem::forget(file);

        assert!(take(1).unwrap_err().to_string().contains("must be above 2"));
    }

    #[test]
    fn closed_numbers_are_refused() {
        // Far above any RLIMIT_NOFILE: never open, whatever other test threads do.
        let err = take(i32::MAX).unwrap_err().to_string();
        assert!(err.ends_with("not an open file descriptor"), "{err}");
    }
}
