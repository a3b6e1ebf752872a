//! Pod PID 1 of a mutable pod (`init --mutable`, rkt's `app sandbox`): the pod runs with no app
//! until it is stopped. Apps come and go through the `app-*` entrypoints (app.rs), whose requests
//! arrive on the control socket (control.rs); PID 1 waits for them, its children and its
//! signals at once (a signalfd and the socket, in one poll), single-threaded:
//!
//! * `add`: attaches the app's root, which `app-add` built (a detached mount tree), at
//!   `/opt/stage2/<app>/rootfs`, takes its cgroups and resolves its plans as `init` does;
//! * `start`: clears the app's last exit, runs its pre-start handler, then forks the app and
//!   answers once it has exec'd (or failed to);
//! * `stop`: SIGTERM to the app's process group, SIGKILL (to its cgroups too) after the grace;
//!   answers once the app has exited, its exit is recorded and its post-stop handler has run;
//! * `rm`: detaches everything of an app that does not run, and forgets it.
//!
//! An app that exits is recorded as in any pod (`appstats`, `status`, its post-stop handler),
//! and neither stops the others nor ends the pod. SIGTERM (`stop`) stops every app as `init`
//! stops a pod: SIGTERM, and SIGKILL to the whole namespace after the grace; the pod then exits
//! 0 (rkt's mutable pods never pass an app's code on).

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::rc::Rc;
use std::time::{Duration, Instant};

use nix::fcntl::OFlag;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{kill, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::stat::Mode;
use nix::unistd::{fork, pipe2, unlinkat, ForkResult, Pid, UnlinkatFlags};

use crate::cgroups::Cgroups;
use crate::cli::Insecure;
use crate::control::{self, Incoming, Reply, Request};
use crate::error::{bail, Context, Result, STAGE1_FAILURE};
use crate::manifest::{self, Hook};
use crate::process::{self, AppPlans};
use crate::{fsutil, mounts, reaper, rootfs};

/// What PID 1 of a sandbox works with; everything it writes goes through these fds.
pub struct Sandbox<'a> {
    pub pod: BorrowedFd<'a>,
    pub status_dir: BorrowedFd<'a>,
    pub appstats_dir: BorrowedFd<'a>,
    pub cgroups: &'a mut Cgroups,
    pub users: Option<BorrowedFd<'a>>,
    pub insecure: Insecure,
    pub grace: Duration,
    /// The listening control socket.
    pub control: OwnedFd,
}

/// Where an added app is.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Phase {
    /// Never started since it was added.
    Added,
    PreStart(Pid),
    Running(Pid),
    /// The app exited with `code`; its post-stop handler runs.
    PostStop {
        pid: Pid,
        code: i32,
    },
    Exited(i32),
}

/// What follows the exit of the process a phase waits for.
#[derive(Debug, PartialEq)]
enum Step {
    /// The pre-start handler failed: so did the app, with its code.
    PreStartFailed(i32),
    /// The pre-start handler exited 0 after a stop: the app does not start.
    Cancelled,
    /// The pre-start handler exited 0: start the app.
    Launch,
    /// The app exited: record it, then its post-stop handler, if it has one.
    AppExited(i32),
    /// The post-stop handler exited with `handler`; the app had exited with `code`.
    PostStopDone { code: i32, handler: i32 },
}

impl Phase {
    /// The process PID 1 waits for in this phase.
    fn pid(self) -> Option<Pid> {
        match self {
            Phase::PreStart(pid) | Phase::Running(pid) | Phase::PostStop { pid, .. } => Some(pid),
            Phase::Added | Phase::Exited(_) => None,
        }
    }

    /// What a stop terminates: the app, or its pre-start handler (then the app never starts).
    fn stoppable(self) -> Option<Pid> {
        match self {
            Phase::PreStart(pid) | Phase::Running(pid) => Some(pid),
            _ => None,
        }
    }

    fn refuse_start(self, app: &str) -> Option<Reply> {
        match self {
            Phase::Added | Phase::Exited(_) => None,
            Phase::PreStart(_) | Phase::Running(_) => Some(Reply::new(
                STAGE1_FAILURE,
                format!("app {app} is already running"),
            )),
            Phase::PostStop { .. } => Some(Reply::new(
                STAGE1_FAILURE,
                format!("app {app}: its post-stop handler still runs"),
            )),
        }
    }

    fn refuse_rm(self, app: &str) -> Option<Reply> {
        self.pid().map(|_| {
            Reply::new(
                control::BUSY,
                format!("app {app} is running (or its post-stop handler is): stop it first"),
            )
        })
    }

    /// The exit with `code` of the process this phase waits for.
    fn step(self, code: i32, cancelled: bool) -> Option<Step> {
        Some(match self {
            Phase::PreStart(_) if code != 0 => Step::PreStartFailed(code),
            Phase::PreStart(_) if cancelled => Step::Cancelled,
            Phase::PreStart(_) => Step::Launch,
            Phase::Running(_) => Step::AppExited(code),
            Phase::PostStop { code: app, .. } => Step::PostStopDone {
                code: app,
                handler: code,
            },
            Phase::Added | Phase::Exited(_) => return None,
        })
    }
}

struct App {
    name: String,
    plans: AppPlans,
    /// `<pod>/hooks/<app>`, for an app with event handlers.
    hooks: Option<OwnedFd>,
    phase: Phase,
    /// A stop asked for during the pre-start handler: the app does not start.
    cancelled: bool,
    /// Its child reported that execve failed, and why: the start is answered with its code.
    exec_failed: Option<String>,
    /// When an `app-stop`'s grace ends.
    kill_at: Option<Instant>,
    /// Clients of `app-start` waiting for the exec, of `app-stop` for the end.
    starters: Vec<OwnedFd>,
    stoppers: Vec<OwnedFd>,
}

impl App {
    fn answer_starters(&mut self, reply: &Reply) {
        for conn in self.starters.drain(..) {
            control::answer(conn, reply);
        }
    }

    fn answer_stoppers(&mut self) {
        for conn in self.stoppers.drain(..) {
            control::answer(conn, &Reply::ok());
        }
    }
}

/// Runs the sandbox until it is stopped and every process it waits for has exited; returns the
/// pod's code.
pub fn run(mut sb: Sandbox) -> Result<i32> {
    let signals = SignalFd::with_flags(
        &reaper::signals(),
        SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK,
    )
    .ctx("signalfd")?;
    let mut apps: Vec<App> = Vec::new();
    // The pod's stop: its deadline, and whether everything has been killed.
    let mut stop: Option<Instant> = None;
    let mut killed = false;
    loop {
        while let Some((pid, code)) = reaper::reap() {
            if let Some(app) = apps.iter_mut().find(|a| a.phase.pid() == Some(pid)) {
                sb.exited(app, code, killed);
            }
        }
        if stop.is_some() && apps.iter().all(|a| a.phase.pid().is_none()) {
            return Ok(0);
        }
        let now = Instant::now();
        for app in apps
            .iter_mut()
            .filter(|a| a.kill_at.is_some_and(|t| t <= now))
        {
            app.kill_at = None;
            sb.kill(app);
        }
        if stop.is_some_and(|t| t <= now) && !killed {
            let _ = kill(Pid::from_raw(-1), Signal::SIGKILL);
            killed = true;
        }
        let deadline = apps
            .iter()
            .filter_map(|a| a.kill_at)
            .chain(stop.filter(|_| !killed))
            .min();
        let timeout = match deadline {
            None => PollTimeout::NONE,
            Some(t) => {
                let ms = t
                    .saturating_duration_since(now)
                    .as_millis()
                    .clamp(1, 60_000);
                PollTimeout::try_from(ms as i32).unwrap_or(PollTimeout::MAX)
            }
        };
        let mut fds = [
            PollFd::new(signals.as_fd(), PollFlags::POLLIN),
            PollFd::new(sb.control.as_fd(), PollFlags::POLLIN),
        ];
        match poll(&mut fds, timeout) {
            Ok(_) | Err(nix::errno::Errno::EINTR) => {}
            Err(e) => bail!("poll: {e}"),
        }
        let ready = |fd: &PollFd| fd.revents().is_some_and(|r| !r.is_empty());
        let (signalled, requested) = (ready(&fds[0]), ready(&fds[1]));
        if signalled {
            while let Ok(Some(info)) = signals.read_signal() {
                if info.ssi_signo as i32 != libc::SIGCHLD && stop.is_none() {
                    debug!("sandbox: stopping");
                    stop = Some(Instant::now() + sb.grace);
                    for app in &mut apps {
                        sb.terminate(app, Signal::SIGTERM);
                    }
                }
            }
        }
        if requested {
            while let Some(incoming) = control::accept(&sb.control) {
                sb.handle(&mut apps, incoming, stop.is_some());
            }
        }
    }
}

impl Sandbox<'_> {
    fn handle(&mut self, apps: &mut Vec<App>, incoming: Incoming, stopping: bool) {
        let Incoming { conn, request, fds } = incoming;
        let name = request.app().to_string();
        debug!("sandbox: request {request:?}");
        let at = apps.iter().position(|a| a.name == name);
        let reply = match request {
            Request::Has { .. } => match at {
                Some(_) => Reply::ok(),
                None => Reply::new(1, format!("app {name} is not in the pod")),
            },
            Request::Add { .. } | Request::Start { .. } if stopping => {
                Reply::new(STAGE1_FAILURE, "the pod is stopping")
            }
            Request::Add { .. } if at.is_some() => Reply::ok(),
            Request::Add {
                cgroups, limited, ..
            } => match self.add(&name, &cgroups, fds, limited) {
                Ok(app) => {
                    apps.push(app);
                    Reply::ok()
                }
                Err(e) => Reply::new(STAGE1_FAILURE, e.to_string()),
            },
            Request::Start { .. } => match at {
                None => Reply::new(STAGE1_FAILURE, format!("app {name} is not added")),
                Some(i) => match apps[i].phase.refuse_start(&name) {
                    Some(refusal) => refusal,
                    None => {
                        apps[i].starters.push(conn);
                        self.start(&mut apps[i]);
                        return;
                    }
                },
            },
            Request::Stop { force, .. } => {
                match at.filter(|&i| apps[i].phase.stoppable().is_some()) {
                    None => Reply::new(control::NOT_RUNNING, format!("app {name} is not running")),
                    Some(i) => {
                        let app = &mut apps[i];
                        app.stoppers.push(conn);
                        if force {
                            self.kill(app);
                        } else {
                            self.terminate(app, Signal::SIGTERM);
                            app.kill_at = Some(Instant::now() + self.grace);
                        }
                        return;
                    }
                }
            }
            Request::Rm { .. } => match at {
                None => Reply::ok(),
                Some(i) => match apps[i].phase.refuse_rm(&name) {
                    Some(refusal) => refusal,
                    None => {
                        drop(apps.remove(i));
                        self.cgroups.forget_app(&name);
                        match mounts::detach(&rootfs::app_root_after_pivot(&name)) {
                            Ok(()) => Reply::ok(),
                            Err(e) => Reply::new(STAGE1_FAILURE, format!("app {name}: {e}")),
                        }
                    }
                },
            },
        };
        control::answer(conn, &reply);
    }

    /// Attaches the app's root and takes what it runs with; on a failure nothing of it is left.
    fn add(
        &mut self,
        name: &str,
        cgroups: &[usize],
        fds: Vec<OwnedFd>,
        limited: bool,
    ) -> Result<App> {
        let mut fds = fds.into_iter();
        let tree = fds.next().expect("control checked the descriptors");
        let Some(app) = manifest::load_sandbox(self.pod)?
            .into_iter()
            .find(|a| a.name == name)
        else {
            bail!("app {name:?} is not in the pod manifest");
        };
        let root = rootfs::app_root_after_pivot(name);
        mounts::attach(&tree, &root).with_ctx(|| format!("app {name:?}"))?;
        drop(tree);
        let made = (|| {
            let join = self
                .cgroups
                .adopt_app(name, cgroups, fds.collect(), limited)?;
            let rootfd = nix::fcntl::open(
                root.as_str(),
                OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
                Mode::empty(),
            )
            .with_ctx(|| format!("open {root}"))?;
            let plans = process::app_plans(&app, &root, &rootfd, self.insecure, Rc::new(join))?;
            let hooks = match app.app.event_handlers.is_empty() {
                true => None,
                false => {
                    let dir = format!("hooks/{name}");
                    fsutil::mkdir_all_at(self.pod, &dir, 0o755)
                        .with_ctx(|| format!("mkdir <pod>/{dir}"))?;
                    Some(
                        fsutil::open_plain_dir(self.pod, &dir)
                            .with_ctx(|| format!("open <pod>/{dir}"))?,
                    )
                }
            };
            Ok(App {
                name: name.to_string(),
                plans,
                hooks,
                phase: Phase::Added,
                cancelled: false,
                exec_failed: None,
                kill_at: None,
                starters: Vec::new(),
                stoppers: Vec::new(),
            })
        })();
        if made.is_err() {
            self.cgroups.forget_app(name);
            let _ = mounts::detach(&root);
        }
        debug!("sandbox: app {name:?} added");
        made
    }

    /// Clears the app's last run (a restart's records are its own), then its pre-start handler
    /// or the app itself.
    fn start(&mut self, app: &mut App) {
        let _ = unlinkat(
            self.status_dir,
            app.name.as_str(),
            UnlinkatFlags::NoRemoveDir,
        );
        let _ = unlinkat(
            self.appstats_dir,
            app.name.as_str(),
            UnlinkatFlags::NoRemoveDir,
        );
        for hook in Hook::ALL {
            if let Some(dir) = &app.hooks {
                let _ = unlinkat(dir, hook.name(), UnlinkatFlags::NoRemoveDir);
            }
        }
        app.cancelled = false;
        app.exec_failed = None;
        match &app.plans.pre_start {
            None => self.launch(app),
            Some(plan) => {
                match reaper::start_handler(&app.name, Hook::PreStart, plan, self.users) {
                    Some(pid) => app.phase = Phase::PreStart(pid),
                    None => {
                        self.record_handler(app, Hook::PreStart, STAGE1_FAILURE);
                        self.failed_start(
                            app,
                            STAGE1_FAILURE,
                            "its pre-start handler could not be forked",
                        );
                    }
                }
            }
        }
    }

    /// Forks the app; answers its starters once it has exec'd.
    fn launch(&mut self, app: &mut App) {
        let forked = pipe2(OFlag::O_CLOEXEC)
            .ctx("pipe")
            .and_then(|(report_r, report_w)| {
                // SAFETY: single-threaded; the child only applies the plan and execs or _exits.
                match unsafe { fork() }.ctx("fork")? {
                    ForkResult::Child => {
                        process::exec_child(&app.plans.app, true, Some(&report_w), None, self.users)
                    }
                    ForkResult::Parent { child } => {
                        drop(report_w);
                        Ok((child, report_r))
                    }
                }
            });
        match forked {
            Ok((pid, report)) => {
                app.phase = Phase::Running(pid);
                match process::execd(report) {
                    Ok(()) => {
                        debug!("sandbox: app {:?} started", app.name);
                        app.answer_starters(&Reply::ok());
                    }
                    // Answered with its code when it is reaped, which is at once.
                    Err(why) => app.exec_failed = Some(why),
                }
            }
            Err(e) => {
                eprintln!("podlog-stage1: app {:?}: {e}", app.name);
                self.failed_start(app, STAGE1_FAILURE, &e.to_string());
            }
        }
    }

    /// The app did not start: recorded as exited with `code`, as in any pod.
    fn failed_start(&mut self, app: &mut App, code: i32, why: &str) {
        self.record_exit(app, code);
        app.phase = Phase::Exited(code);
        app.answer_starters(&Reply::new(code, format!("app {}: {why}", app.name)));
        app.answer_stoppers();
    }

    /// The process of the app's phase exited with `code`. After the pod's grace (`killed`) no
    /// post-stop handler starts.
    fn exited(&mut self, app: &mut App, code: i32, killed: bool) {
        let Some(step) = app.phase.step(code, app.cancelled) else {
            return;
        };
        match step {
            Step::PreStartFailed(code) => {
                self.record_handler(app, Hook::PreStart, code);
                self.failed_start(app, code, &format!("pre-start handler exited with {code}"));
            }
            Step::Cancelled => {
                self.record_handler(app, Hook::PreStart, code);
                app.phase = Phase::Added;
                let why = format!("app {}: stopped before it started", app.name);
                app.answer_starters(&Reply::new(STAGE1_FAILURE, why));
                app.answer_stoppers();
            }
            Step::Launch => {
                self.record_handler(app, Hook::PreStart, code);
                self.launch(app);
            }
            Step::AppExited(code) => {
                app.kill_at = None;
                self.record_exit(app, code);
                if let Some(why) = app.exec_failed.take() {
                    let why = format!("app {}: {why}", app.name);
                    app.answer_starters(&Reply::new(code, why));
                }
                let handler = match &app.plans.post_stop {
                    Some(_) if killed => {
                        eprintln!(
                            "podlog-stage1: app {:?}: post-stop handler not run: the stop's grace period is over",
                            app.name
                        );
                        None
                    }
                    Some(plan) => {
                        let pid =
                            reaper::start_handler(&app.name, Hook::PostStop, plan, self.users);
                        if pid.is_none() {
                            self.record_handler(app, Hook::PostStop, STAGE1_FAILURE);
                        }
                        pid
                    }
                    None => None,
                };
                match handler {
                    Some(pid) => app.phase = Phase::PostStop { pid, code },
                    None => {
                        app.phase = Phase::Exited(code);
                        app.answer_stoppers();
                    }
                }
            }
            Step::PostStopDone { code, handler } => {
                self.record_handler(app, Hook::PostStop, handler);
                app.phase = Phase::Exited(code);
                app.answer_stoppers();
            }
        }
    }

    fn terminate(&self, app: &mut App, sig: Signal) {
        if let Some(pid) = app.phase.stoppable() {
            if matches!(app.phase, Phase::PreStart(_)) {
                app.cancelled = true;
            }
            reaper::signal_app(pid, sig);
        }
    }

    /// SIGKILL to the app (or its pre-start handler) and whatever is left in its cgroups.
    fn kill(&self, app: &mut App) {
        self.terminate(app, Signal::SIGKILL);
        self.cgroups.kill_app(&app.name);
    }

    fn record_exit(&self, app: &App, code: i32) {
        reaper::record_exit(
            self.status_dir,
            self.appstats_dir,
            self.cgroups,
            &app.name,
            code,
        );
    }

    fn record_handler(&self, app: &App, hook: Hook, code: i32) {
        if let Some(dir) = &app.hooks {
            reaper::record_handler(dir.as_fd(), &app.name, hook, code);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const P: Pid = Pid::from_raw(7);

    #[test]
    fn starts_and_stops_only_when_they_make_sense() {
        for p in [Phase::Added, Phase::Exited(3)] {
            assert_eq!(p.refuse_start("web"), None, "{p:?}");
            assert_eq!(p.stoppable(), None);
            assert_eq!(p.refuse_rm("web"), None);
        }
        let running = Phase::Running(P).refuse_start("web").unwrap();
        assert_eq!(running.message, "app web is already running");
        assert_ne!(running.code, 0);
        assert!(Phase::PreStart(P).refuse_start("web").is_some());
        assert!(Phase::PostStop { pid: P, code: 0 }
            .refuse_start("web")
            .is_some());
        assert_eq!(Phase::Running(P).stoppable(), Some(P));
        assert_eq!(Phase::PreStart(P).stoppable(), Some(P));
        assert_eq!(Phase::PostStop { pid: P, code: 1 }.stoppable(), None);
        for p in [
            Phase::PreStart(P),
            Phase::Running(P),
            Phase::PostStop { pid: P, code: 0 },
        ] {
            assert_eq!(
                p.refuse_rm("web").map(|r| r.code),
                Some(control::BUSY),
                "{p:?}"
            );
            assert_eq!(p.pid(), Some(P));
        }
    }

    #[test]
    fn what_follows_an_exit() {
        assert_eq!(Phase::PreStart(P).step(0, false), Some(Step::Launch));
        assert_eq!(Phase::PreStart(P).step(0, true), Some(Step::Cancelled));
        assert_eq!(
            Phase::PreStart(P).step(143, true),
            Some(Step::PreStartFailed(143)),
            "a stopped handler that fails fails its app"
        );
        assert_eq!(
            Phase::Running(P).step(143, true),
            Some(Step::AppExited(143))
        );
        assert_eq!(
            Phase::PostStop { pid: P, code: 143 }.step(3, false),
            Some(Step::PostStopDone {
                code: 143,
                handler: 3
            }),
            "the app's code stays its own"
        );
        assert_eq!(Phase::Exited(0).step(0, false), None);
        assert_eq!(Phase::Added.step(0, false), None);
    }
}
