//! Pod PID 1 after the apps have started: reap every child (apps and orphans), record each
//! app's exit code, and apply rkt's exit policy: the pod's code is the first failing app's
//! code, else 0; when one app fails, or the pod gets SIGTERM, the others are stopped
//! (SIGTERM to each app's process group, SIGKILL to the whole namespace after the grace).

use std::os::fd::BorrowedFd;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::sys::signal::{kill, SigSet, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

use crate::fsutil;
use crate::sys;

/// The shell's convention, as rkt reports it: a signal `s` is exit code 128+s.
pub fn exit_code(status: WaitStatus) -> Option<i32> {
    match status {
        WaitStatus::Exited(_, code) => Some(code),
        WaitStatus::Signaled(_, sig, _) => Some(128 + sig as i32),
        _ => None,
    }
}

struct Slot {
    name: String,
    pid: Pid,
    code: Option<i32>,
}

/// The pure part: which apps run, which exited with what, and what the pod exits with.
pub struct PodState {
    apps: Vec<Slot>,
    first_failure: Option<i32>,
}

impl PodState {
    pub fn new(apps: impl IntoIterator<Item = (String, Pid)>) -> Self {
        PodState {
            apps: apps
                .into_iter()
                .map(|(name, pid)| Slot {
                    name,
                    pid,
                    code: None,
                })
                .collect(),
            first_failure: None,
        }
    }

    /// Records a reaped child; returns the app's name if it was an app.
    pub fn exited(&mut self, pid: Pid, code: i32) -> Option<&str> {
        let slot = self
            .apps
            .iter_mut()
            .find(|s| s.pid == pid && s.code.is_none())?;
        slot.code = Some(code);
        if code != 0 && self.first_failure.is_none() {
            self.first_failure = Some(code);
        }
        Some(&slot.name)
    }

    pub fn failed(&self) -> bool {
        self.first_failure.is_some()
    }

    pub fn running(&self) -> impl Iterator<Item = Pid> + '_ {
        self.apps.iter().filter(|s| s.code.is_none()).map(|s| s.pid)
    }

    pub fn done(&self) -> bool {
        self.running().next().is_none()
    }

    pub fn exit_code(&self) -> i32 {
        self.first_failure.unwrap_or(0)
    }
}

/// Signals pod PID 1 waits for; they are blocked in PID 1 from its first instruction.
pub fn signals() -> SigSet {
    let mut set = SigSet::empty();
    for s in [
        Signal::SIGCHLD,
        Signal::SIGTERM,
        Signal::SIGINT,
        Signal::SIGHUP,
    ] {
        set.add(s);
    }
    set
}

/// Runs until every app has exited; returns the pod's exit code. Exit codes are written to
/// `<pod>/status/<app>` (decimal, no newline) through `status_dir`, as each app exits.
pub fn run(mut pod: PodState, status_dir: BorrowedFd<'_>, grace: Duration) -> i32 {
    let set = signals();
    let mut stop_requested = false;
    let mut deadline: Option<Instant> = None;
    let mut killed = false;
    loop {
        reap(&mut pod, status_dir);
        if pod.done() {
            return pod.exit_code();
        }
        if (stop_requested || pod.failed()) && deadline.is_none() {
            for pid in pod.running() {
                terminate(pid);
            }
            deadline = Some(Instant::now() + grace);
        }
        let mut timeout = deadline.map(|d| d.saturating_duration_since(Instant::now()));
        if timeout == Some(Duration::ZERO) {
            if !killed {
                // Everything in the pid namespace but PID 1 itself.
                let _ = kill(Pid::from_raw(-1), Signal::SIGKILL);
                killed = true;
            }
            timeout = None;
        }
        match sys::sigtimedwait(&set, timeout) {
            Ok(Some(Signal::SIGCHLD)) | Ok(None) | Err(Errno::EINTR) => {}
            Ok(Some(_)) => stop_requested = true,
            Err(e) => {
                eprintln!("podlog-stage1: sigtimedwait: {e}");
                let _ = kill(Pid::from_raw(-1), Signal::SIGKILL);
                killed = true;
            }
        }
    }
}

/// SIGTERM to the app's process group (it is a session leader), or to the app itself if it
/// has not called setsid yet.
fn terminate(pid: Pid) {
    if kill(Pid::from_raw(-pid.as_raw()), Signal::SIGTERM) == Err(Errno::ESRCH) {
        let _ = kill(pid, Signal::SIGTERM);
    }
}

fn reap(pod: &mut PodState, status_dir: BorrowedFd<'_>) {
    loop {
        match waitpid(None, Some(WaitPidFlag::WNOHANG | WaitPidFlag::__WALL)) {
            Ok(WaitStatus::StillAlive) | Err(_) => return,
            Ok(status) => {
                let (Some(pid), Some(code)) = (status.pid(), exit_code(status)) else {
                    continue;
                };
                if let Some(name) = pod.exited(pid, code) {
                    debug!("app {name:?} exited with {code}");
                    if let Err(e) =
                        fsutil::write_atomic(status_dir, name, code.to_string().as_bytes())
                    {
                        eprintln!("podlog-stage1: write status of app {name:?}: {e}");
                    }
                    debug!("status of app {name:?} written");
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes() {
        let p = Pid::from_raw(7);
        assert_eq!(exit_code(WaitStatus::Exited(p, 3)), Some(3));
        assert_eq!(
            exit_code(WaitStatus::Signaled(p, Signal::SIGTERM, false)),
            Some(143)
        );
        assert_eq!(
            exit_code(WaitStatus::Signaled(p, Signal::SIGKILL, true)),
            Some(137)
        );
        assert_eq!(exit_code(WaitStatus::Stopped(p, Signal::SIGSTOP)), None);
    }

    fn pod() -> PodState {
        PodState::new([
            ("a".to_string(), Pid::from_raw(10)),
            ("b".to_string(), Pid::from_raw(11)),
        ])
    }

    #[test]
    fn all_succeed() {
        let mut s = pod();
        assert_eq!(s.exited(Pid::from_raw(10), 0), Some("a"));
        assert!(!s.done() && !s.failed());
        assert_eq!(s.exited(Pid::from_raw(99), 1), None, "orphans do not count");
        assert_eq!(s.exited(Pid::from_raw(11), 0), Some("b"));
        assert!(s.done());
        assert_eq!(s.exit_code(), 0);
    }

    #[test]
    fn first_failure_wins() {
        let mut s = pod();
        s.exited(Pid::from_raw(11), 5);
        assert!(s.failed());
        assert_eq!(s.running().collect::<Vec<_>>(), [Pid::from_raw(10)]);
        s.exited(Pid::from_raw(10), 143);
        assert_eq!(s.exit_code(), 5);
    }

    #[test]
    fn a_pid_is_recorded_once() {
        let mut s = pod();
        s.exited(Pid::from_raw(10), 0);
        assert_eq!(s.exited(Pid::from_raw(10), 9), None);
        assert_eq!(s.exit_code(), 0);
    }
}
