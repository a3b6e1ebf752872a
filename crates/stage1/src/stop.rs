//! `stop`: SIGTERM to the pod's PID 1, which stops the apps gracefully (SIGKILL after the
//! grace period); `--force` sends SIGKILL, and the kernel then kills the whole pid namespace.

use nix::sys::signal::Signal;
use std::os::fd::AsFd;

use crate::cli::StopOpts;
use crate::error::{Context, Result};
use crate::{lock, sys};

pub fn run(opts: StopOpts) -> Result<i32> {
    let (pid, pidfd) = lock::running_pod_pid1(&opts.pod_dir)?;
    let sig = if opts.force {
        Signal::SIGKILL
    } else {
        Signal::SIGTERM
    };
    sys::pidfd_send_signal(pidfd.as_fd(), sig)
        .with_ctx(|| format!("send {sig} to pod PID 1 (host pid {pid})"))?;
    Ok(0)
}
