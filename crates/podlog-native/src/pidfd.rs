//! Waiting for a process to exit without racing pid reuse: a pidfd refers to one process for good,
//! and becomes readable when that process exits.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::time::{Duration, Instant};

use rustix::event::{poll, PollFd, PollFlags, Timespec};
use rustix::io::Errno;
use rustix::process::{pidfd_open, Pid, PidfdFlags};

use crate::errors::{Code, Context, Error, Result};

pub fn open(pid: i32) -> Result<OwnedFd> {
    let pid = Some(pid)
        .filter(|p| *p > 0)
        .and_then(Pid::from_raw)
        .ok_or_else(|| Error::new(Code::InvalidArgument, format!("{pid} is not a process id")))?;
    pidfd_open(pid, PidfdFlags::empty())
        .context(|| format!("opening a pidfd for process {}", pid.as_raw_nonzero()))
}

/// Waits until the process behind `pidfd` exits, or `timeout` passes (None: no limit).
/// Returns whether it exited.
pub fn wait(pidfd: BorrowedFd<'_>, timeout: Option<Duration>) -> Result<bool> {
    let deadline = timeout.map(|t| Instant::now() + t);
    loop {
        let left = deadline.map(|d| d.saturating_duration_since(Instant::now()));
        let ts = left.map(|d| Timespec {
            tv_sec: d.as_secs() as i64,
            tv_nsec: i64::from(d.subsec_nanos()),
        });
        let mut fds = [PollFd::new(&pidfd, PollFlags::IN)];
        match poll(&mut fds, ts.as_ref()) {
            Ok(0) => return Ok(false),
            Ok(_) => return Ok(true),
            Err(Errno::INTR) => continue,
            Err(e) => return Err(Error::io("waiting on a pidfd", &e.into())),
        }
    }
}

/// Waits for `pid` to exit. A pid that no longer exists has exited (and been reaped) already.
pub fn wait_pid(pid: i32, timeout: Option<Duration>) -> Result<bool> {
    match open(pid) {
        Ok(fd) => wait(fd.as_fd(), timeout),
        Err(e) if e.code == Code::NoProcess => Ok(true),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    #[test]
    fn waits_for_a_child_to_exit_and_times_out_while_it_runs() {
        let mut child = Command::new("sleep").arg("30").spawn().unwrap();
        let fd = open(child.id() as i32).unwrap();
        assert!(!wait(fd.as_fd(), Some(Duration::from_millis(50))).unwrap());
        child.kill().unwrap();
        assert!(wait(fd.as_fd(), Some(Duration::from_secs(10))).unwrap());
        child.wait().unwrap();
        assert!(wait_pid(child.id() as i32, Some(Duration::ZERO)).unwrap());
    }

    #[test]
    fn refuses_impossible_pids() {
        assert_eq!(open(0).unwrap_err().code, Code::InvalidArgument);
        assert_eq!(open(-5).unwrap_err().code, Code::InvalidArgument);
    }
}
