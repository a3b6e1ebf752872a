//! Pod PID 1 once its file systems are up: runs each app's pre-start handler in turn, then (the
//! apps started) reaps every child (apps, their post-stop handlers and orphans), records each
//! app's exit code and stats and each handler's code, and applies rkt's exit policy: the pod's
//! code is the first failing app's code, else 0; when one app fails, or the pod gets SIGTERM,
//! the others are stopped (SIGTERM to each app's process group, SIGKILL to the whole namespace
//! after the grace). The pod ends when no app and no post-stop handler runs.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::sys::signal::{kill, SigSet, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::{fork, ForkResult, Pid};

use crate::cgroups::Cgroups;
use crate::error::STAGE1_FAILURE;
use crate::manifest::Hook;
use crate::process::{self, ExecPlan};
use crate::{fsutil, sys};

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
    /// The app has a post-stop handler, to start when it exits.
    post_stop: bool,
}

/// A running or exited post-stop handler.
struct HookSlot {
    app: String,
    pid: Pid,
    code: Option<i32>,
}

/// What a reaped pid was.
#[derive(Debug, PartialEq)]
pub enum Reaped {
    /// An app; `post_stop`: its post-stop handler is to run now.
    App { name: String, post_stop: bool },
    /// An app's post-stop handler: its code is the handler's, never the app's or the pod's.
    PostStop(String),
    /// An orphan the pod's namespace handed to PID 1, or a pid reaped already.
    Other,
}

/// The pure part: which apps and post-stop handlers run, which exited with what, and what the
/// pod exits with.
pub struct PodState {
    apps: Vec<Slot>,
    hooks: Vec<HookSlot>,
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
                    post_stop: false,
                })
                .collect(),
            hooks: Vec::new(),
            first_failure: None,
        }
    }

    /// The apps named have a post-stop handler.
    pub fn with_post_stop<'n>(mut self, apps: impl IntoIterator<Item = &'n str>) -> Self {
        for name in apps {
            if let Some(slot) = self.apps.iter_mut().find(|s| s.name == name) {
                slot.post_stop = true;
            }
        }
        self
    }

    /// Records a reaped child.
    pub fn exited(&mut self, pid: Pid, code: i32) -> Reaped {
        // Only a live slot matches: a pid the kernel reused after an app's exit is another's.
        if let Some(slot) = self
            .apps
            .iter_mut()
            .find(|s| s.pid == pid && s.code.is_none())
        {
            slot.code = Some(code);
            if code != 0 && self.first_failure.is_none() {
                self.first_failure = Some(code);
            }
            return Reaped::App {
                name: slot.name.clone(),
                post_stop: slot.post_stop,
            };
        }
        if let Some(hook) = self
            .hooks
            .iter_mut()
            .find(|h| h.pid == pid && h.code.is_none())
        {
            hook.code = Some(code);
            return Reaped::PostStop(hook.app.clone());
        }
        Reaped::Other
    }

    /// `app`'s post-stop handler runs as `pid`.
    pub fn post_stop_started(&mut self, app: &str, pid: Pid) {
        self.hooks.push(HookSlot {
            app: app.to_string(),
            pid,
            code: None,
        });
    }

    pub fn failed(&self) -> bool {
        self.first_failure.is_some()
    }

    /// The apps still running (handlers are not apps: a stop does not terminate them, the
    /// grace bounds them).
    pub fn running(&self) -> impl Iterator<Item = Pid> + '_ {
        self.apps.iter().filter(|s| s.code.is_none()).map(|s| s.pid)
    }

    /// No app and no post-stop handler runs.
    pub fn done(&self) -> bool {
        self.running().next().is_none() && self.hooks.iter().all(|h| h.code.is_some())
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
    /// Asks an app (or a pre-start handler) to stop (SIGTERM).
    fn terminate(&mut self, app: Pid);
    /// SIGKILL to every process of the pid namespace but PID 1.
    fn kill_all(&mut self);
    /// Blocks until a child may have exited, a stop was requested or `timeout` passed.
    fn wait(&mut self, timeout: Option<Duration>) -> Wake;
    /// Records an app's exit code, and what its cgroup tells of it (stats.rs).
    fn record(&mut self, app: &str, code: i32);
    /// Starts `app`'s `hook` handler; None if it could not be forked (said on stderr).
    fn start_hook(&mut self, app: &str, hook: Hook) -> Option<Pid>;
    /// Records the exit code of `app`'s `hook` handler.
    fn record_hook(&mut self, app: &str, hook: Hook, code: i32);
    fn now(&self) -> Instant;
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Wake {
    Child,
    Stop,
    Timeout,
}

/// The clock of a stop: once it begins, everything left (apps, handlers, orphans) is killed
/// when the grace has passed.
struct Stopping {
    grace: Duration,
    deadline: Option<Instant>,
    killed: bool,
}

impl Stopping {
    fn new(grace: Duration) -> Self {
        Stopping {
            grace,
            deadline: None,
            killed: false,
        }
    }

    /// Starts the clock; true the first time only.
    fn begin(&mut self, now: Instant) -> bool {
        let first = self.deadline.is_none();
        self.deadline.get_or_insert(now + self.grace);
        first
    }

    /// How long to wait for: until the deadline, or for ever once it has passed, the moment
    /// at which everything is killed (once).
    fn timeout(&mut self, host: &mut impl Host) -> Option<Duration> {
        let left = self.deadline?.saturating_duration_since(host.now());
        if !left.is_zero() {
            return Some(left);
        }
        if !self.killed {
            host.kill_all();
            self.killed = true;
        }
        None
    }
}

/// How the pre-start handlers ended.
#[derive(Debug, PartialEq)]
pub enum PreStart {
    /// Each exited 0: start the apps.
    Done,
    /// This app's handler exited with this code (not 0): no app starts, the pod exits with it.
    Failed(String, i32),
    /// The pod was asked to stop while one ran, and it exited 0: no app starts.
    Stopped,
}

/// Runs the pre-start handler of each of `apps` (those that have one, in the pod's order), one
/// after the other, before any app runs: PID 1's only children are then these handlers and
/// their orphans. A failing handler fails its app (its status is the handler's code) and the
/// pod; a stop terminates the running handler and, after the grace, kills everything.
pub fn pre_start(apps: &[&str], host: &mut impl Host, grace: Duration) -> PreStart {
    let mut stopping = Stopping::new(grace);
    for &app in apps {
        let code = match host.start_hook(app, Hook::PreStart) {
            None => STAGE1_FAILURE,
            Some(pid) => 'wait: loop {
                while let Some((reaped, code)) = host.reap() {
                    if reaped == pid {
                        break 'wait code;
                    }
                }
                let timeout = stopping.timeout(host);
                if host.wait(timeout) == Wake::Stop && stopping.begin(host.now()) {
                    host.terminate(pid);
                }
            },
        };
        host.record_hook(app, Hook::PreStart, code);
        if code != 0 {
            host.record(app, code);
            return PreStart::Failed(app.to_string(), code);
        }
        if stopping.deadline.is_some() {
            return PreStart::Stopped;
        }
    }
    PreStart::Done
}

/// Runs until every app and post-stop handler has exited; returns the pod's exit code.
pub fn run(mut pod: PodState, host: &mut impl Host, grace: Duration) -> i32 {
    let mut stop_requested = false;
    let mut stopping = Stopping::new(grace);
    loop {
        while let Some((pid, code)) = host.reap() {
            match pod.exited(pid, code) {
                Reaped::App { name, post_stop } => {
                    host.record(&name, code);
                    if !post_stop {
                        continue;
                    }
                    if stopping.killed {
                        // Started now it would outlive the bound the grace sets on the stop.
                        eprintln!(
                            "podlog-stage1: app {name:?}: post-stop handler not run: the stop's grace period is over"
                        );
                        continue;
                    }
                    match host.start_hook(&name, Hook::PostStop) {
                        Some(pid) => pod.post_stop_started(&name, pid),
                        None => host.record_hook(&name, Hook::PostStop, STAGE1_FAILURE),
                    }
                }
                Reaped::PostStop(app) => host.record_hook(&app, Hook::PostStop, code),
                Reaped::Other => {}
            }
        }
        if pod.done() {
            return pod.exit_code();
        }
        if (stop_requested || pod.failed()) && stopping.begin(host.now()) {
            for pid in pod.running() {
                host.terminate(pid);
            }
        }
        let timeout = stopping.timeout(host);
        if host.wait(timeout) == Wake::Stop {
            stop_requested = true;
        }
    }
}

/// An app's event handlers: each a plan (the app's, with the handler's exec), and
/// `<pod>/hooks/<app>`, where their codes go.
pub struct AppHooks {
    pub app: String,
    pub dir: OwnedFd,
    pub pre_start: Option<ExecPlan>,
    pub post_stop: Option<ExecPlan>,
}

impl AppHooks {
    pub fn plan(&self, hook: Hook) -> Option<&ExecPlan> {
        match hook {
            Hook::PreStart => self.pre_start.as_ref(),
            Hook::PostStop => self.post_stop.as_ref(),
        }
    }
}

/// The real host: PID 1 of the pod's pid namespace, with [`signals`] blocked. Exit codes go
/// to `<pod>/status/<app>` (decimal, no newline) through `status_dir`, each after what the
/// app's cgroup tells of it in `<pod>/appstats/<app>`, so that a reader who sees the code
/// finds the stats; a handler's to `<pod>/hooks/<app>/<pre-start|post-stop>`.
pub struct System<'a> {
    pub status_dir: BorrowedFd<'a>,
    pub appstats_dir: BorrowedFd<'a>,
    pub cgroups: &'a Cgroups,
    pub signals: SigSet,
    /// The apps that have event handlers.
    pub hooks: &'a [AppHooks],
    /// The pod's user namespace (`--private-users`), which handlers join as apps do.
    pub users: Option<BorrowedFd<'a>>,
}

/// Reaps one exited child of PID 1 without blocking: its pid and exit code.
pub fn reap() -> Option<(Pid, i32)> {
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

/// `sig` to the app's process group (it is a session leader), or to the app itself if it has
/// not called setsid yet.
pub fn signal_app(app: Pid, sig: Signal) {
    if kill(Pid::from_raw(-app.as_raw()), sig) == Err(Errno::ESRCH) {
        let _ = kill(app, sig);
    }
}

/// Writes app `app`'s exit: what its cgroup tells of it in `appstats/<app>`, then its code in
/// `status/<app>`, so that a reader who sees the code finds the stats.
pub fn record_exit(
    status_dir: BorrowedFd<'_>,
    appstats_dir: BorrowedFd<'_>,
    cgroups: &Cgroups,
    app: &str,
    code: i32,
) {
    debug!("app {app:?} exited with {code}");
    let stats = cgroups.stats(app).to_json(code);
    if let Err(e) = fsutil::write_atomic(appstats_dir, app, stats.as_bytes()) {
        eprintln!("podlog-stage1: write stats of app {app:?}: {e}");
    }
    if let Err(e) = fsutil::write_atomic(status_dir, app, code.to_string().as_bytes()) {
        eprintln!("podlog-stage1: write status of app {app:?}: {e}");
    }
}

/// Forks `app`'s `hook` handler as an app is forked, in a session of its own (a stop's SIGTERM
/// reaches its process group), with PID 1's stdio: the pod's terminal, if any, is the app's
/// alone. None if it could not be forked (said on stderr).
pub fn start_handler(
    app: &str,
    hook: Hook,
    plan: &ExecPlan,
    users: Option<BorrowedFd<'_>>,
) -> Option<Pid> {
    // SAFETY: single-threaded; the child only applies the plan and execs or _exits.
    match unsafe { fork() } {
        Ok(ForkResult::Child) => process::exec_child(plan, true, None, None, users),
        Ok(ForkResult::Parent { child }) => {
            debug!("app {app:?}: {} handler started", hook.name());
            Some(child)
        }
        Err(e) => {
            eprintln!(
                "podlog-stage1: app {app:?}: fork its {} handler: {}",
                hook.name(),
                e.desc()
            );
            None
        }
    }
}

/// Writes the code of `app`'s `hook` handler in `hooks/<app>/<hook>` (`dir`).
pub fn record_handler(dir: BorrowedFd<'_>, app: &str, hook: Hook, code: i32) {
    debug!("app {app:?}: {} handler exited with {code}", hook.name());
    if let Err(e) = fsutil::write_atomic(dir, hook.name(), code.to_string().as_bytes()) {
        eprintln!(
            "podlog-stage1: write the {} code of app {app:?}: {e}",
            hook.name()
        );
    }
}

impl Host for System<'_> {
    fn reap(&mut self) -> Option<(Pid, i32)> {
        reap()
    }

    fn terminate(&mut self, app: Pid) {
        signal_app(app, Signal::SIGTERM);
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
        record_exit(self.status_dir, self.appstats_dir, self.cgroups, app, code);
    }

    fn start_hook(&mut self, app: &str, hook: Hook) -> Option<Pid> {
        let plan = self.hooks.iter().find(|h| h.app == app)?.plan(hook)?;
        start_handler(app, hook, plan, self.users)
    }

    fn record_hook(&mut self, app: &str, hook: Hook, code: i32) {
        if let Some(h) = self.hooks.iter().find(|h| h.app == app) {
            record_handler(h.dir.as_fd(), app, hook, code);
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

    fn app(name: &str, post_stop: bool) -> Reaped {
        Reaped::App {
            name: name.into(),
            post_stop,
        }
    }

    #[test]
    fn all_succeed() {
        let mut s = pod();
        assert_eq!(s.exited(Pid::from_raw(10), 0), app("a", false));
        assert!(!s.done() && !s.failed());
        assert_eq!(
            s.exited(Pid::from_raw(99), 1),
            Reaped::Other,
            "orphans do not count"
        );
        assert_eq!(s.exited(Pid::from_raw(11), 0), app("b", false));
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
        assert_eq!(s.exited(Pid::from_raw(10), 9), Reaped::Other);
        assert_eq!(s.exit_code(), 0);
    }

    #[test]
    fn post_stop_handlers_are_not_apps() {
        let mut s = pod().with_post_stop(["b", "nosuch"]);
        assert_eq!(s.exited(Pid::from_raw(11), 0), app("b", true));
        s.post_stop_started("b", Pid::from_raw(20));
        assert_eq!(s.running().collect::<Vec<_>>(), [Pid::from_raw(10)]);
        assert_eq!(s.exited(Pid::from_raw(10), 0), app("a", false));
        assert!(!s.done(), "b's post-stop handler still runs");
        assert_eq!(s.exited(Pid::from_raw(20), 3), Reaped::PostStop("b".into()));
        assert!(s.done());
        assert_eq!(s.exit_code(), 0, "a handler's code is not the pod's");
        assert_eq!(s.exited(Pid::from_raw(20), 3), Reaped::Other);
    }

    #[test]
    fn a_reused_pid_is_the_live_process() {
        // The kernel may give an exited app's pid to its post-stop handler.
        let mut s = pod().with_post_stop(["a"]);
        assert_eq!(s.exited(Pid::from_raw(10), 1), app("a", true));
        s.post_stop_started("a", Pid::from_raw(10));
        assert_eq!(s.exited(Pid::from_raw(10), 0), Reaped::PostStop("a".into()));
        assert_eq!(s.exit_code(), 1);
    }

    /// A scripted host: each `wait` pops the next step, which may let children exit. Handlers
    /// get pids 100, 101, ... in the order they start, except for apps in `fork_fails`.
    struct Fake {
        steps: Vec<(Wake, Vec<(i32, i32)>)>,
        exited: Vec<(Pid, i32)>,
        clock: Instant,
        log: Vec<String>,
        next_pid: i32,
        fork_fails: Vec<&'static str>,
    }

    impl Fake {
        fn new(steps: Vec<(Wake, Vec<(i32, i32)>)>) -> Self {
            Fake {
                steps,
                exited: Vec::new(),
                clock: Instant::now(),
                log: Vec::new(),
                next_pid: 100,
                fork_fails: Vec::new(),
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
            // reap pops: the first listed is reaped first.
            self.exited
                .extend(exits.into_iter().rev().map(|(p, c)| (Pid::from_raw(p), c)));
            wake
        }
        fn record(&mut self, app: &str, code: i32) {
            self.log.push(format!("{app}={code}"));
        }
        fn start_hook(&mut self, app: &str, hook: Hook) -> Option<Pid> {
            if self.fork_fails.contains(&app) {
                self.log.push(format!("{app} {} fork fails", hook.name()));
                return None;
            }
            let pid = self.next_pid;
            self.next_pid += 1;
            self.log.push(format!("start {app} {} {pid}", hook.name()));
            Some(Pid::from_raw(pid))
        }
        fn record_hook(&mut self, app: &str, hook: Hook, code: i32) {
            self.log.push(format!("{app} {}={code}", hook.name()));
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

    #[test]
    fn post_stop_runs_after_its_app_and_the_pod_waits_for_it() {
        let mut h = Fake::new(vec![
            (Wake::Child, vec![(10, 0)]),
            (Wake::Child, vec![(11, 0)]),
            (Wake::Child, vec![(99, 0), (100, 4)]),
        ]);
        assert_eq!(run(pod().with_post_stop(["a"]), &mut h, GRACE), 0);
        assert_eq!(
            h.log,
            [
                "wait None",
                "a=0",
                "start a post-stop 100",
                "wait None",
                "b=0",
                "wait None",
                "a post-stop=4"
            ]
        );
    }

    #[test]
    fn a_stopped_app_gets_its_post_stop_which_the_stop_does_not_terminate() {
        let mut h = Fake::new(vec![
            (Wake::Stop, vec![]),
            (Wake::Child, vec![(10, 143), (11, 143)]),
            (Wake::Child, vec![(100, 0)]),
        ]);
        assert_eq!(run(pod().with_post_stop(["a"]), &mut h, GRACE), 143);
        assert_eq!(
            h.log,
            [
                "wait None",
                "term 10",
                "term 11",
                "wait Some(10s)",
                "a=143",
                "start a post-stop 100",
                "b=143",
                "wait Some(10s)",
                "a post-stop=0"
            ]
        );
    }

    #[test]
    fn the_grace_bounds_post_stop_handlers_and_none_starts_after_it() {
        let mut h = Fake::new(vec![
            (Wake::Stop, vec![]),
            (Wake::Child, vec![(10, 143)]),
            (Wake::Timeout, vec![]),
            (Wake::Child, vec![(100, 137), (11, 137)]),
        ]);
        let pod = pod().with_post_stop(["a", "b"]);
        assert_eq!(run(pod, &mut h, GRACE), 143);
        assert_eq!(
            h.log,
            [
                "wait None",
                "term 10",
                "term 11",
                "wait Some(10s)",
                "a=143",
                "start a post-stop 100",
                "wait Some(10s)",
                "kill all",
                "wait None",
                "a post-stop=137",
                "b=137"
            ]
        );
    }

    #[test]
    fn a_post_stop_that_cannot_fork_is_recorded_as_stage1s_failure() {
        let mut h = Fake::new(vec![(Wake::Child, vec![(10, 0), (11, 0)])]);
        h.fork_fails.push("b");
        assert_eq!(run(pod().with_post_stop(["b"]), &mut h, GRACE), 0);
        assert_eq!(
            h.log,
            [
                "wait None",
                "a=0",
                "b=0",
                "b post-stop fork fails",
                "b post-stop=254"
            ]
        );
    }

    #[test]
    fn pre_start_handlers_run_one_after_the_other() {
        let mut h = Fake::new(vec![
            (Wake::Child, vec![(77, 0)]),
            (Wake::Child, vec![(100, 0)]),
            (Wake::Child, vec![(101, 0)]),
        ]);
        assert_eq!(pre_start(&["a", "b"], &mut h, GRACE), PreStart::Done);
        assert_eq!(
            h.log,
            [
                "start a pre-start 100",
                "wait None",
                "wait None",
                "a pre-start=0",
                "start b pre-start 101",
                "wait None",
                "b pre-start=0"
            ]
        );
        let mut h = Fake::new(vec![]);
        assert_eq!(pre_start(&[], &mut h, GRACE), PreStart::Done);
        assert!(h.log.is_empty());
    }

    #[test]
    fn a_failing_pre_start_fails_its_app_and_starts_nothing_more() {
        let mut h = Fake::new(vec![(Wake::Child, vec![(100, 7)])]);
        assert_eq!(
            pre_start(&["a", "b"], &mut h, GRACE),
            PreStart::Failed("a".into(), 7)
        );
        assert_eq!(
            h.log,
            ["start a pre-start 100", "wait None", "a pre-start=7", "a=7"]
        );
        let mut h = Fake::new(vec![]);
        h.fork_fails.push("a");
        assert_eq!(
            pre_start(&["a"], &mut h, GRACE),
            PreStart::Failed("a".into(), 254)
        );
        assert_eq!(
            h.log,
            ["a pre-start fork fails", "a pre-start=254", "a=254"]
        );
    }

    #[test]
    fn a_stop_during_a_pre_start_terminates_it_and_starts_nothing() {
        let mut h = Fake::new(vec![(Wake::Stop, vec![]), (Wake::Child, vec![(100, 0)])]);
        assert_eq!(pre_start(&["a", "b"], &mut h, GRACE), PreStart::Stopped);
        assert_eq!(
            h.log,
            [
                "start a pre-start 100",
                "wait None",
                "term 100",
                "wait Some(10s)",
                "a pre-start=0"
            ]
        );
        // One that ignores SIGTERM is killed after the grace, and fails its app.
        let mut h = Fake::new(vec![
            (Wake::Stop, vec![]),
            (Wake::Stop, vec![]),
            (Wake::Timeout, vec![]),
            (Wake::Child, vec![(100, 137)]),
        ]);
        assert_eq!(
            pre_start(&["a"], &mut h, GRACE),
            PreStart::Failed("a".into(), 137)
        );
        assert_eq!(
            h.log,
            [
                "start a pre-start 100",
                "wait None",
                "term 100",
                "wait Some(10s)",
                "wait Some(10s)",
                "kill all",
                "wait None",
                "a pre-start=137",
                "a=137"
            ]
        );
    }
}
