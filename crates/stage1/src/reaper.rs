//! Pod PID 1 after the apps have started: reap every child (apps and orphans), record each
//! app's exit code and stats, and apply rkt's exit policy: the pod's code is the first failing app's
//! code, else 0; when one app fails, or the pod gets SIGTERM, the others are stopped
//! (SIGTERM to each app's process group, SIGKILL to the whole namespace after the grace).

use std::os::fd::BorrowedFd;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::sys::signal::{kill, SigSet, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

use crate::cgroups::Cgroups;
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

/// What the reaper loop needs from the system, so that its policy can be unit-tested.
pub trait Host {
    /// Reaps one exited child without blocking: its pid and exit code.
    fn reap(&mut self) -> Option<(Pid, i32)>;
    /// Asks an app to stop (SIGTERM).
    fn terminate(&mut self, app: Pid);
    /// SIGKILL to every process of the pid namespace but PID 1.
    fn kill_all(&mut self);
    /// Blocks until a child may have exited, a stop was requested or `timeout` passed.
    fn wait(&mut self, timeout: Option<Duration>) -> Wake;
    /// Records an app's exit code, and what its cgroup tells of it (stats.rs).
    fn record(&mut self, app: &str, code: i32);
    fn now(&self) -> Instant;
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Wake {
    Child,
    Stop,
    Timeout,
}

/// Runs until every app has exited; returns the pod's exit code.
pub fn run(mut pod: PodState, host: &mut impl Host, grace: Duration) -> i32 {
    let mut stop_requested = false;
    let mut deadline: Option<Instant> = None;
    let mut killed = false;
    loop {
        while let Some((pid, code)) = host.reap() {
            if let Some(name) = pod.exited(pid, code) {
                host.record(name, code);
            }
        }
        if pod.done() {
            return pod.exit_code();
        }
        if (stop_requested || pod.failed()) && deadline.is_none() {
            for pid in pod.running() {
                host.terminate(pid);
            }
            deadline = Some(host.now() + grace);
        }
        let mut timeout = deadline.map(|d| d.saturating_duration_since(host.now()));
        if timeout == Some(Duration::ZERO) {
            if !killed {
                host.kill_all();
                killed = true;
            }
            timeout = None;
        }
        if host.wait(timeout) == Wake::Stop {
            stop_requested = true;
        }
    }
}

/// The real host: PID 1 of the pod's pid namespace, with [`signals`] blocked. Exit codes go
/// to `<pod>/status/<app>` (decimal, no newline) through `status_dir`, each after what the
/// app's cgroup tells of it in `<pod>/appstats/<app>`, so that a reader who sees the code
/// finds the stats.
pub struct System<'a> {
    pub status_dir: BorrowedFd<'a>,
    pub appstats_dir: BorrowedFd<'a>,
    pub cgroups: &'a Cgroups,
    pub signals: SigSet,
}

impl Host for System<'_> {
    fn reap(&mut self) -> Option<(Pid, i32)> {
        loop {
            match waitpid(None, Some(WaitPidFlag::WNOHANG | WaitPidFlag::__WALL)) {
                Ok(WaitStatus::StillAlive) | Err(_) => return None,
                Ok(status) => {
                    if let (Some(pid), Some(code)) = (status.pid(), exit_code(status)) {
                        return Some((pid, code));
                    }
                }
            }
        }
    }

    /// SIGTERM to the app's process group (it is a session leader), or to the app itself if
    /// it has not called setsid yet.
    fn terminate(&mut self, app: Pid) {
        if kill(Pid::from_raw(-app.as_raw()), Signal::SIGTERM) == Err(Errno::ESRCH) {
            let _ = kill(app, Signal::SIGTERM);
        }
    }

    fn kill_all(&mut self) {
        let _ = kill(Pid::from_raw(-1), Signal::SIGKILL);
    }

    fn wait(&mut self, timeout: Option<Duration>) -> Wake {
        match sys::sigtimedwait(&self.signals, timeout) {
            Ok(Some(Signal::SIGCHLD)) | Err(Errno::EINTR) => Wake::Child,
            Ok(None) => Wake::Timeout,
            Ok(Some(_)) => Wake::Stop,
            Err(e) => {
                // Cannot wait any more: end the pod rather than spin.
                eprintln!("podlog-stage1: sigtimedwait: {e}");
                self.kill_all();
                Wake::Child
            }
        }
    }

    fn record(&mut self, app: &str, code: i32) {
        debug!("app {app:?} exited with {code}");
        let stats = self.cgroups.stats(app).to_json(code);
        if let Err(e) = fsutil::write_atomic(self.appstats_dir, app, stats.as_bytes()) {
            eprintln!("podlog-stage1: write stats of app {app:?}: {e}");
        }
        if let Err(e) = fsutil::write_atomic(self.status_dir, app, code.to_string().as_bytes()) {
            eprintln!("podlog-stage1: write status of app {app:?}: {e}");
        }
    }

    fn now(&self) -> Instant {
        Instant::now()
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

    /// A scripted host: each `wait` pops the next step, which may let children exit.
    struct Fake {
        steps: Vec<(Wake, Vec<(i32, i32)>)>,
        exited: Vec<(Pid, i32)>,
        clock: Instant,
        log: Vec<String>,
    }

    impl Fake {
        fn new(steps: Vec<(Wake, Vec<(i32, i32)>)>) -> Self {
            Fake {
                steps,
                exited: Vec::new(),
                clock: Instant::now(),
                log: Vec::new(),
            }
        }
    }

    impl Host for Fake {
        fn reap(&mut self) -> Option<(Pid, i32)> {
            self.exited.pop()
        }
        fn terminate(&mut self, app: Pid) {
            self.log.push(format!("term {app}"));
        }
        fn kill_all(&mut self) {
            self.log.push("kill all".into());
        }
        fn wait(&mut self, timeout: Option<Duration>) -> Wake {
            self.log.push(format!("wait {timeout:?}"));
            assert!(
                !self.steps.is_empty(),
                "the loop waits past the script: {:?}",
                self.log
            );
            let (wake, exits) = self.steps.remove(0);
            if wake == Wake::Timeout {
                self.clock += timeout.expect("a timeout only when one was asked for");
            }
            self.exited
                .extend(exits.into_iter().map(|(p, c)| (Pid::from_raw(p), c)));
            wake
        }
        fn record(&mut self, app: &str, code: i32) {
            self.log.push(format!("{app}={code}"));
        }
        fn now(&self) -> Instant {
            self.clock
        }
    }

    const GRACE: Duration = Duration::from_secs(10);

    #[test]
    fn waits_for_every_app() {
        let mut h = Fake::new(vec![
            (Wake::Child, vec![(10, 0)]),
            (Wake::Child, vec![(11, 0), (99, 1)]),
        ]);
        assert_eq!(run(pod(), &mut h, GRACE), 0);
        assert_eq!(h.log, ["wait None", "a=0", "wait None", "b=0"]);
    }

    #[test]
    fn a_failure_stops_the_others_then_kills_after_the_grace() {
        let mut h = Fake::new(vec![
            (Wake::Child, vec![(11, 5)]),
            (Wake::Timeout, vec![]),
            (Wake::Child, vec![(10, 137)]),
        ]);
        assert_eq!(run(pod(), &mut h, GRACE), 5);
        assert_eq!(
            h.log,
            [
                "wait None",
                "b=5",
                "term 10",
                "wait Some(10s)",
                "kill all",
                "wait None",
                "a=137"
            ]
        );
    }

    #[test]
    fn a_stop_request_terminates_all_apps_once() {
        let mut h = Fake::new(vec![
            (Wake::Stop, vec![]),
            (Wake::Stop, vec![(10, 143)]),
            (Wake::Child, vec![(11, 0)]),
        ]);
        assert_eq!(run(pod(), &mut h, GRACE), 143);
        assert_eq!(
            h.log,
            [
                "wait None",
                "term 10",
                "term 11",
                "wait Some(10s)",
                "a=143",
                "wait Some(10s)",
                "b=0"
            ]
        );
    }
}
