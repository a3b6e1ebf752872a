//! `init`: run a pod. Two processes, both single-threaded:
//!
//! * the **supervisor** (this process, host namespaces): with `--parent-pid`, dies with the
//!   process that spawned it; checks the lock, reads the pod, checks the pod directory,
//!   creates the cgroups, unshares the pid namespace and forks; then writes `<pod>/pid` once
//!   every app has exec'd, answers `--ready-fd`, waits for PID 1 and exits with its code.
//!   It holds `RKT_LOCK_FD` to the end, so the pod is "running" exactly while it lives.
//! * pod **PID 1** (new pid namespace): dies with the supervisor (PR_SET_PDEATHSIG), builds
//!   its own mount/uts/ipc(/net) namespaces (or joins the network namespace kept at
//!   `<pod>/netns`) and the pod's file systems, pivots into a tmpfs root, runs the apps'
//!   pre-start handlers, starts the apps and reaps (see reaper); or, with `--mutable`, starts
//!   none and serves the `app-*` entrypoints' requests until it is stopped (see mutable).
//!
//! Every mount belongs to PID 1's mount namespace and vanishes with it, whatever is killed
//! when.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::atomic::{AtomicI32, Ordering};

use nix::errno::Errno;
use nix::fcntl::{openat, AtFlags, OFlag};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sched::{unshare, CloneFlags};
use nix::sys::signal::{
    kill, sigaction, sigprocmask, SaFlags, SigAction, SigHandler, SigSet, SigmaskHow, Signal,
};
use nix::sys::socket::{socketpair, AddressFamily, SockFlag, SockType};
use nix::sys::stat::{fstatat, umask, Mode, SFlag};
use nix::sys::wait::waitpid;
use nix::unistd::{
    fork, getpid, getppid, pipe2, read, sethostname, unlinkat, write, ForkResult, Pid,
    UnlinkatFlags,
};

use crate::cgroups::Cgroups;
use crate::cli::{InitOpts, NetMode};
use crate::error::{bail, Context, Result, STAGE1_FAILURE};
use crate::etc::EtcFiles;
use crate::lock::PodDir;
use crate::manifest::{self, Hook, PodApp};
use crate::rootfs::{self, PodFs};
use crate::userns::UserNs;
use crate::{control, fsutil, lowers, mounts, mutable, namespaces, netns, process, pty, ready};
use crate::{reaper, sys};

/// `argv`: init's own arguments, which a mutable pod keeps for its `app-add` (app.rs).
pub fn run(opts: InitOpts, argv: &[String]) -> Result<i32> {
    debug!("init starts");
    if let Some(parent) = opts.parent_pid {
        die_with_parent(Pid::from_raw(parent))?;
    }
    // Owned from here on: every early return closes it with nothing written.
    let ready_out = opts.ready_fd.map(ready::take).transpose()?;
    let pod = PodDir::from_env(&opts.pod_dir)?;
    // A sandbox's apps come later, through app-add and app-start: none runs now.
    let apps = match opts.mutable {
        true => manifest::load_sandbox(pod.fd()).map(|_| Vec::new())?,
        false => manifest::load(pod.fd())?,
    };
    debug!("locked, manifest read");
    let tree_store = std::fs::canonicalize(&opts.tree_store)
        .with_ctx(|| format!("tree store {}", opts.tree_store.display()))?;
    for app in &apps {
        lowers::of_tree(&tree_store, &app.tree_store_id)
            .with_ctx(|| format!("app {:?}", app.name))?;
    }
    if opts.interactive && opts.mutable {
        bail!("--interactive: a mutable pod has no app to give a terminal to");
    }
    if opts.interactive && apps.len() != 1 {
        bail!(
            "--interactive: a terminal is for one app, the pod has {}",
            apps.len()
        );
    }
    // --interactive: PID 1 sends the pod's terminal to the supervisor through this (pty.rs).
    let terminal = opts
        .interactive
        .then(|| {
            socketpair(
                AddressFamily::Unix,
                SockType::Stream,
                None,
                SockFlag::SOCK_CLOEXEC,
            )
            .ctx("socketpair")
        })
        .transpose()?;
    let uuid = pod_uuid(&pod.path);
    let hostname = hostname(&opts, &uuid)?;
    // Checked before anything is changed; PID 1 joins it.
    let netns = (opts.net == NetMode::Netns)
        .then(|| netns::open_kept(&pod.path))
        .transpose()?;
    prepare_pod_dir(&pod, &apps)?;
    debug!("pod dir prepared");
    let open_dir = |name: &str| {
        let flags = OFlag::O_DIRECTORY | OFlag::O_RDONLY | OFlag::O_CLOEXEC;
        openat(pod.fd(), name, flags, Mode::empty()).with_ctx(|| format!("open <pod>/{name}"))
    };
    let status_dir = open_dir("status")?;
    let appstats_dir = open_dir("appstats")?;
    let hook_dirs = apps
        .iter()
        .filter(|a| !a.app.event_handlers.is_empty())
        .map(|a| Ok((a.name.clone(), open_dir(&format!("hooks/{}", a.name))?)))
        .collect::<Result<Vec<_>>>()?;
    // From here every way out drops it, which removes the pod's cgroups.
    let mut cgroups = Cgroups::create(pod.fd(), &uuid, &apps)?;
    let control = match opts.mutable {
        true => Some(keep_for_apps(&pod, &cgroups, argv)?),
        false => None,
    };
    debug!("pod {uuid}: {} app(s), hostname {hostname}", apps.len());

    let supervisor = sys::pidfd_open(getpid()).ctx("pidfd_open self")?;
    // ready: PID 1 -> supervisor, "every app has exec'd". go: supervisor -> PID 1, "you are
    // in the pod's v2 cgroup, start the apps" (see cgroups for why this overlaps PID 1's
    // set-up).
    let (ready_r, ready_w) = pipe2(OFlag::O_CLOEXEC).ctx("pipe")?;
    let (go_r, go_w) = pipe2(OFlag::O_CLOEXEC).ctx("pipe")?;
    // Blocked before the fork: PID 1 waits for them with sigtimedwait, and a pid namespace's
    // init drops signals that arrive from outside while they have the default action.
    sigprocmask(SigmaskHow::SIG_BLOCK, Some(&reaper::signals()), None).ctx("block signals")?;
    // Here, in the host's pid namespace, whose pids /proc shows (its helper child's maps are
    // written through /proc), and before the next child becomes the new namespace's init.
    let users = opts
        .private_users
        .map(UserNs::create)
        .transpose()
        .ctx("--private-users")?;
    unshare(CloneFlags::CLONE_NEWPID).ctx("unshare the pid namespace")?;
    // SAFETY: single-threaded process; the child only runs our own code before exec or exit.
    match unsafe { fork() }.ctx("fork pod PID 1")? {
        ForkResult::Child => {
            // Only the supervisor may answer (or, by dying, close) the readiness fd.
            drop(ready_out);
            drop(ready_r);
            drop(go_w);
            let ctx = Pid1 {
                terminal: terminal.map(|(_, pid1_end)| pid1_end),
                control,
                opts: &opts,
                pod: &pod,
                apps: &apps,
                tree_store: &tree_store,
                hostname: &hostname,
                status_dir,
                appstats_dir,
                hook_dirs,
                cgroups: &mut cgroups,
                users: users.as_ref(),
                netns,
            };
            let code = match ctx.run(supervisor, go_r, ready_w) {
                Ok(code) => code,
                Err(e) => {
                    eprintln!("podlog-stage1: {e}");
                    STAGE1_FAILURE
                }
            };
            // SAFETY: ends PID 1 (and with it the namespaces) without running anything else.
            unsafe { libc::_exit(code) }
        }
        ForkResult::Parent { child } => {
            drop(ready_w);
            drop(go_r);
            drop(status_dir);
            drop(appstats_dir);
            drop(hook_dirs);
            drop(netns);
            drop(control);
            let terminal = terminal.map(|(supervisor_end, _)| supervisor_end);
            supervise(child, cgroups, go_w, ready_r, ready_out, &pod, terminal)
        }
    }
}

/// `--parent-pid`: the supervisor gets SIGKILL when the process that spawned it exits (PID 1
/// dies with the supervisor, the apps with PID 1's pid namespace), so a `kill -9` of the
/// engine ends the pod and frees its lock.
fn die_with_parent(expected: Pid) -> Result<()> {
    nix::sys::prctl::set_pdeathsig(Signal::SIGKILL).ctx("set PR_SET_PDEATHSIG")?;
    // Checked after the line above: a parent that died before it has already handed us to
    // a reaper, and one that dies after it kills us.
    let actual = getppid();
    if actual != expected {
        bail!(
            "--parent-pid {expected}: stage1's parent is process {actual}: the process that \
             started it has exited (or the flag names another process)"
        );
    }
    Ok(())
}

/// The pod directory's name.
pub fn pod_uuid(pod_dir: &Path) -> String {
    pod_dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// `--hostname`, else `podlog-<uuid>`.
pub fn hostname(opts: &InitOpts, uuid: &str) -> Result<String> {
    let hostname = opts
        .hostname
        .clone()
        .unwrap_or_else(|| format!("podlog-{uuid}"));
    if hostname.is_empty() || hostname.len() > 64 || hostname.contains('\0') {
        bail!("hostname {hostname:?}: must be 1 to 64 bytes");
    }
    Ok(hostname)
}

/// What a mutable pod's `app-*` entrypoints need: init's arguments (app-add builds an app's
/// file systems as init would), the cgroup hierarchies, and the control socket, whose listening
/// end goes to PID 1.
fn keep_for_apps(pod: &PodDir, cgroups: &Cgroups, argv: &[String]) -> Result<OwnedFd> {
    fsutil::write_atomic(pod.fd(), crate::app::INIT_ARGS, argv.join("\0").as_bytes())
        .ctx(format!("write <pod>/{}", crate::app::INIT_ARGS))?;
    cgroups.save_for_apps(pod.fd())?;
    control::listen_at(pod.fd())
}

/// The overlay directories stage0 created for each app must be plain directories (no
/// symlink on the way: the overlay is mounted by path, with full privileges).
pub fn check_overlay_dirs(pod: BorrowedFd<'_>, pod_path: &Path, apps: &[PodApp]) -> Result<()> {
    for app in apps {
        if rootfs::copied_root_fd(pod, app)?.is_some() {
            continue;
        }
        for (kind, rel) in [
            ("upper", rootfs::overlay_upper(app)),
            ("work", rootfs::overlay_work(app)),
        ] {
            let path = pod_path.join(&rel);
            let what = || {
                format!(
                    "app {:?}: overlay {kind} directory {}",
                    app.name,
                    path.display()
                )
            };
            match fsutil::open_plain_dir(pod, &rel) {
                Ok(_) => {}
                Err(Errno::ENOENT) => bail!(
                    "{} is missing (stage0 creates it when it prepares the pod)",
                    what()
                ),
                Err(e @ (Errno::ELOOP | Errno::ENOTDIR)) => {
                    // O_DIRECTORY reports a symlink at the end as ENOTDIR: tell them apart.
                    let leaf = fstatat(pod, rel.as_str(), AtFlags::AT_SYMLINK_NOFOLLOW)
                        .map(|st| SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT);
                    match (leaf, e) {
                        (Ok(SFlag::S_IFLNK), _) => bail!("{} is a symlink", what()),
                        (_, Errno::ELOOP) => bail!("{} has a symlink in its path", what()),
                        _ => bail!("{} is not a directory", what()),
                    }
                }
                Err(e) => return Err(e).with_ctx(what),
            }
        }
    }
    Ok(())
}

/// Checks what stage0 prepared, creates what stage1 needs in the pod dir (idempotent), and
/// removes stale results from a previous run: `pid` must only ever name this run's PID 1.
fn prepare_pod_dir(pod: &PodDir, apps: &[PodApp]) -> Result<()> {
    check_overlay_dirs(pod.fd(), &pod.path, apps)?;
    let fd = pod.fd();
    for name in ["pid", "subcgroup", "cgroups.json"] {
        match unlinkat(fd, name, UnlinkatFlags::NoRemoveDir) {
            Ok(()) | Err(Errno::ENOENT) => {}
            Err(e) => return Err(e).ctx(format!("remove stale <pod>/{name}")),
        }
    }
    fsutil::mkdir_all_at(fd, "status", 0o755).ctx("mkdir <pod>/status")?;
    fsutil::mkdir_all_at(fd, "appstats", 0o755).ctx("mkdir <pod>/appstats")?;
    fsutil::mkdir_all_at(fd, "hooks", 0o755).ctx("mkdir <pod>/hooks")?;
    fsutil::mkdir_all_at(fd, rootfs::STAGE1_ROOT, 0o755).ctx("mkdir <pod>/stage1/rootfs")?;
    for app in apps {
        let hooks = Hook::ALL.map(|h| format!("hooks/{}/{}", app.name, h.name()));
        for stale in [
            format!("status/{}", app.name),
            format!("appstats/{}", app.name),
        ]
        .iter()
        .chain(&hooks)
        {
            // ENOTDIR: `hooks/<app>` is not a directory, which the mkdir below reports.
            match unlinkat(fd, stale.as_str(), UnlinkatFlags::NoRemoveDir) {
                Ok(()) | Err(Errno::ENOENT | Errno::ENOTDIR) => {}
                Err(e) => return Err(e).with_ctx(|| format!("remove stale <pod>/{stale}")),
            }
        }
        // Only for an app with handlers: every inode made here costs the pod's start.
        if !app.app.event_handlers.is_empty() {
            let dir = format!("hooks/{}", app.name);
            fsutil::mkdir_all_at(fd, &dir, 0o755).with_ctx(|| format!("mkdir <pod>/{dir}"))?;
        }
    }
    Ok(())
}

/// PID 1's host pid, for the signal handlers.
static POD_PID1: AtomicI32 = AtomicI32::new(0);

/// A signal to the supervisor (e.g. the engine stopping its child) becomes a graceful stop.
extern "C" fn forward_stop(_: libc::c_int) {
    let pid = POD_PID1.load(Ordering::Relaxed);
    if pid > 0 {
        // SAFETY: kill is async-signal-safe.
        unsafe { libc::kill(pid, libc::SIGTERM) };
    }
}

/// Runs the pod to its end: PID 1 is always reaped before its cgroups are removed (a failure
/// on the way kills it first), so that removing them kills nothing.
fn supervise(
    child: Pid,
    cgroups: Cgroups,
    go: OwnedFd,
    ready: OwnedFd,
    ready_out: Option<OwnedFd>,
    pod: &PodDir,
    terminal: Option<OwnedFd>,
) -> Result<i32> {
    let up = bring_up(child, &cgroups, go, ready, ready_out, pod, terminal);
    if up.is_err() {
        // PID 1 would die with us (PR_SET_PDEATHSIG), but only once we had removed its cgroups.
        let _ = kill(child, Signal::SIGKILL);
    }
    let status = loop {
        match waitpid(child, None) {
            Err(Errno::EINTR) => continue,
            r => break r.ctx("wait for pod PID 1")?,
        }
    };
    debug!("pod PID 1 exited");
    control::remove_at(pod.fd());
    drop(cgroups);
    debug!("cgroups removed");
    up?;
    Ok(reaper::exit_code(status).unwrap_or(STAGE1_FAILURE))
}

/// Until the pod is up (or never will be), and with `--interactive` until its terminal closes.
fn bring_up(
    child: Pid,
    cgroups: &Cgroups,
    go: OwnedFd,
    ready: OwnedFd,
    ready_out: Option<OwnedFd>,
    pod: &PodDir,
    terminal: Option<OwnedFd>,
) -> Result<()> {
    POD_PID1.store(child.as_raw(), Ordering::Relaxed);
    let act = SigAction::new(
        SigHandler::Handler(forward_stop),
        SaFlags::SA_RESTART,
        SigSet::empty(),
    );
    for sig in [Signal::SIGTERM, Signal::SIGINT, Signal::SIGHUP] {
        // SAFETY: the handler only calls kill(2) with an atomic's value.
        unsafe { sigaction(sig, &act) }.ctx("sigaction")?;
    }
    sigprocmask(SigmaskHow::SIG_UNBLOCK, Some(&reaper::signals()), None).ctx("unblock signals")?;

    if cgroups.has_v2() {
        cgroups.add_v2(child);
        debug!("pod PID 1 is in its v2 cgroup");
    }
    let _ = write(&go, b"1");
    drop(go);

    let mut byte = [0u8; 1];
    let up = loop {
        match read(&ready, &mut byte) {
            Err(Errno::EINTR) => continue,
            r => break matches!(r, Ok(1)),
        }
    };
    drop(ready);
    let pid_written = up
        && match fsutil::write_atomic(pod.fd(), "pid", child.as_raw().to_string().as_bytes()) {
            Ok(()) => true,
            Err(e) => {
                // Without `pid` nobody can enter or stop the pod: take it down.
                eprintln!("podlog-stage1: write <pod>/pid: {e}");
                let _ = kill(child, Signal::SIGKILL);
                false
            }
        };
    if pid_written {
        debug!("pod PID 1 is host pid {child}");
    }
    match ready_out {
        Some(fd) if pid_written => ready::report(fd, child),
        // Closed empty, now and not when the pod ends: it never came up.
        unanswered => drop(unanswered),
    }
    if let (Some(sock), true) = (terminal, pid_written) {
        let master = pty::receive(&sock)?;
        let pidfd = sys::pidfd_open(child).ctx("pidfd_open pod PID 1")?;
        if let Err(e) = pty::relay(master, pidfd.as_fd()) {
            eprintln!("podlog-stage1: {e}");
        }
    }
    Ok(())
}

struct Pid1<'a> {
    /// --interactive: where the pod's terminal goes to the supervisor.
    terminal: Option<OwnedFd>,
    /// --mutable: the listening control socket (mutable.rs).
    control: Option<OwnedFd>,
    opts: &'a InitOpts,
    pod: &'a PodDir,
    apps: &'a [PodApp],
    tree_store: &'a Path,
    hostname: &'a str,
    status_dir: OwnedFd,
    /// `<pod>/appstats`, written before `status` (see reaper).
    appstats_dir: OwnedFd,
    /// `<pod>/hooks/<app>` of each app with event handlers.
    hook_dirs: Vec<(String, OwnedFd)>,
    cgroups: &'a mut Cgroups,
    users: Option<&'a UserNs>,
    /// `--net netns`: the kept network namespace to join.
    netns: Option<OwnedFd>,
}

impl Pid1<'_> {
    fn run(mut self, supervisor: OwnedFd, go: OwnedFd, ready: OwnedFd) -> Result<i32> {
        nix::sys::prctl::set_pdeathsig(Signal::SIGKILL).ctx("set PR_SET_PDEATHSIG")?;
        // The supervisor may have died before the line above: its pidfd is readable then.
        let mut fds = [PollFd::new(supervisor.as_fd(), PollFlags::POLLIN)];
        if poll(&mut fds, PollTimeout::ZERO).ctx("poll the supervisor's pidfd")? > 0 {
            bail!("the supervisor died during start-up");
        }
        drop(supervisor);
        // PID 1 keeps full capabilities and host fds (the pod dir): not dumpable, so its
        // /proc entries (fd/, root, environ) stay closed to the apps even as uid 0.
        nix::sys::prctl::set_dumpable(false).ctx("clear PR_SET_DUMPABLE")?;
        hide_command_line().ctx("hide the host command line from the pod")?;
        nix::unistd::setsid().ctx("setsid")?;
        self.cgroups.join_v1_self();
        debug!("pid 1 up, in its v1 cgroups");
        // Exact modes for device nodes and directories; apps get 022 back.
        umask(Mode::empty());

        namespaces::unshare_pod(self.opts.net)?;
        mounts::make_everything_private()?;
        if let Some(ns) = self.netns.take() {
            namespaces::join_net(ns)?;
        }
        // In a joined namespace too: harmless if stage0's plugins brought it up already.
        if self.opts.net != NetMode::Host {
            namespaces::loopback_up()?;
        }
        sethostname(self.hostname).ctx("sethostname")?;
        let users = self.users;

        let fs = PodFs {
            pod_dir: &self.pod.path,
            tree_store: self.tree_store,
            etc: EtcFiles {
                hostname: self.hostname,
                resolv: &self.opts.resolv,
                hosts: &self.opts.hosts,
            },
            users,
            mask_paths: !self.opts.insecure.paths,
        };
        debug!("namespaces ready");
        let stage1_root: PathBuf = fs.mount_stage1_root()?;
        let mut plans = Vec::with_capacity(self.apps.len());
        let mut hooks = Vec::with_capacity(self.hook_dirs.len());
        let mut hook_dirs = std::mem::take(&mut self.hook_dirs).into_iter();
        for app in self.apps {
            let rootfd = fs.setup_app(&stage1_root, app)?;
            self.cgroups.show_in_app(rootfd.as_fd(), &app.name)?;
            let root = rootfs::app_root_after_pivot(&app.name);
            // Each app's seccomp filter is compiled here, once, before any fork.
            let join = Rc::new(self.cgroups.take_join(&app.name));
            let p = process::app_plans(app, &root, &rootfd, self.opts.insecure, join)?;
            if !app.app.event_handlers.is_empty() {
                let (name, dir) = hook_dirs
                    .next()
                    .filter(|(name, _)| *name == app.name)
                    .ok_or_else(|| crate::error::Error::msg("hooks directories out of order"))?;
                hooks.push(reaper::AppHooks {
                    app: name,
                    dir,
                    pre_start: p.pre_start,
                    post_stop: p.post_stop,
                });
            }
            plans.push(p.app);
        }
        debug!("apps' rootfs ready");
        mounts::pivot_into(&stage1_root)?;
        // The stage1 root is only a skeleton of mount points: nothing may write to it.
        mounts::remount_readonly(
            Path::new("/"),
            nix::mount::MsFlags::MS_NOSUID | nix::mount::MsFlags::MS_NODEV,
        )?;
        debug!("pod file systems ready");
        // The app's terminal, on its own devpts; the master leaves for the supervisor at once.
        let slave = match &self.terminal {
            Some(sock) => {
                let root = rootfs::app_root_after_pivot(&self.apps[0].name);
                let (master, slave) = pty::open_pair(Path::new(&root))?;
                pty::send(sock, &master)?;
                Some(slave)
            }
            None => None,
        };
        let mut byte = [0u8; 1];
        if read(&go, &mut byte) != Ok(1) {
            bail!("the supervisor died during start-up");
        }
        drop(go);
        if let Some(control) = self.control.take() {
            // Up with no app: they come through the control socket.
            let _ = write(&ready, b"1");
            drop(ready);
            return mutable::run(mutable::Sandbox {
                pod: self.pod.fd(),
                status_dir: self.status_dir.as_fd(),
                appstats_dir: self.appstats_dir.as_fd(),
                cgroups: self.cgroups,
                users: users.map(UserNs::fd),
                insecure: self.opts.insecure,
                grace: self.opts.stop_grace,
                control,
            });
        }

        let mut host = reaper::System {
            status_dir: self.status_dir.as_fd(),
            appstats_dir: self.appstats_dir.as_fd(),
            cgroups: self.cgroups,
            signals: reaper::signals(),
            hooks: &hooks,
            users: users.map(UserNs::fd),
        };
        let pre_starts: Vec<&str> = hooks
            .iter()
            .filter(|h| h.pre_start.is_some())
            .map(|h| h.app.as_str())
            .collect();
        // Before any app starts (appc: before the app's exec; run in turn, so that PID 1 waits
        // for each alone). The pod is not up yet: `ready` closes unanswered on a way out here.
        match reaper::pre_start(&pre_starts, &mut host, self.opts.stop_grace) {
            reaper::PreStart::Done => {}
            reaper::PreStart::Failed(app, code) => {
                eprintln!("podlog-stage1: app {app:?}: pre-start handler exited with {code}");
                return Ok(code);
            }
            reaper::PreStart::Stopped => return Ok(0),
        }

        let mut started = Vec::with_capacity(plans.len());
        let mut exec_reports = Vec::with_capacity(plans.len());
        for (app, plan) in self.apps.iter().zip(&plans) {
            let (report_r, report_w) = pipe2(OFlag::O_CLOEXEC).ctx("pipe")?;
            // SAFETY: single-threaded; the child only applies the plan and execs or _exits.
            match unsafe { fork() }.with_ctx(|| format!("fork app {:?}", app.name))? {
                ForkResult::Child => process::exec_child(
                    plan,
                    true,
                    Some(&report_w),
                    slave.as_ref().map(|s| s.as_fd()),
                    users.map(UserNs::fd),
                ),
                ForkResult::Parent { child } => {
                    // Before the next fork: only this app may hold its report's write end.
                    drop(report_w);
                    started.push((app.name.clone(), child));
                    exec_reports.push(report_r);
                }
            }
        }
        // The app holds the terminal now: PID 1's copy would keep it open after the app exits.
        drop(slave);
        // Up means every app runs its own program: a late execve failure (a bad ELF
        // interpreter, say) is a pod that never came up, not one that started and failed.
        if exec_reports.into_iter().all(|r| process::execd(r).is_ok()) {
            debug!("started {} app(s)", started.len());
            let _ = write(&ready, b"1");
        }
        drop(ready);
        let post_stops = hooks
            .iter()
            .filter(|h| h.post_stop.is_some())
            .map(|h| h.app.as_str());
        let pod = reaper::PodState::new(started).with_post_stop(post_stops);
        Ok(reaper::run(pod, &mut host, self.opts.stop_grace))
    }
}

/// PID 1's command line as the pod sees it: stage1's own names host paths (the binary,
/// `--pod-dir`), which /proc/1/cmdline shows every app even though PID 1 is not dumpable.
const POD_PID1_TITLE: &[u8] = b"podlog-stage1 init";

/// Overwrites our argv strings in place, as setproctitle(3) does: the title, NULs, and a
/// non-NUL last byte, which makes the kernel show /proc/<pid>/cmdline only up to the first
/// NUL. Chosen over PR_SET_MM_ARG_START/END, which needs CAP_SYS_RESOURCE (containers often
/// lack it), and over a re-exec from a memfd, which would run stage1's start-up twice.
fn hide_command_line() -> Result<()> {
    let stat = std::fs::read_to_string("/proc/self/stat").ctx("read /proc/self/stat")?;
    // Fields after the command name, which may hold spaces and parentheses: the 3rd onwards.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map_or(vec![], |(_, rest)| rest.split_whitespace().collect());
    let field = |n: usize| fields.get(n - 3).and_then(|f| f.parse::<usize>().ok());
    let (Some(start), Some(end)) = (field(48), field(49)) else {
        bail!("no arg_start and arg_end in /proc/self/stat");
    };
    let len = end.saturating_sub(start);
    if len < POD_PID1_TITLE.len() + 2 {
        bail!("the command line is too short to hold {POD_PID1_TITLE:?}");
    }
    // SAFETY: [start, end) is this process's argv strings area as the kernel recorded it at
    // execve, on the stack and writable; nothing holds a Rust reference into it (main copied
    // its arguments into Strings, and nothing calls std::env::args after), and only bytes
    // inside it are written, so every argv pointer still points at readable memory.
    let area = unsafe { std::slice::from_raw_parts_mut(start as *mut u8, len) };
    area.fill(0);
    area[..POD_PID1_TITLE.len()].copy_from_slice(POD_PID1_TITLE);
    area[len - 1] = b' ';
    Ok(())
}
