//! Turning an app (or an `enter` command) into a process: the plan is computed up front
//! against the app's rootfs (credentials from the image's /etc/passwd and /etc/group, the
//! binary, the working directory), so bad input fails before anything starts; the forked
//! child then only applies it.

use std::ffi::CString;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::rc::Rc;

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::sys::signal::{signal, sigprocmask, SigHandler, SigSet, SigmaskHow, Signal};
use nix::sys::stat::{fstat, umask, Mode, SFlag};
use nix::unistd::{chdir, chroot, execve, setgroups, setresgid, setresuid, Gid, Uid};

use crate::caps;
use crate::cli::Insecure;
use crate::error::{bail, Context, Error, Result, STAGE1_FAILURE};
use crate::fsutil;
use crate::manifest::{App, Hook, Isolator, PodApp};
use crate::seccomp::{self, Filter};
use crate::user;

/// The ACE's default `$PATH` (appc spec/ace.md).
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

pub struct ExecPlan {
    /// Directory to chroot into, as seen by the process that forks the child.
    root: CString,
    cwd: CString,
    path: CString,
    argv: Vec<CString>,
    env: Vec<CString>,
    uid: Uid,
    gid: Gid,
    groups: Vec<Gid>,
    /// The app's capabilities (caps::app_mask); None: PID 1's, unrestricted (--disable-capabilities-restriction).
    caps: Option<u64>,
    /// `os/linux/no-new-privileges`; podlog's default is true.
    no_new_privs: bool,
    /// `os/linux/oom-score-adj`, written before privileges are dropped.
    oom_score_adj: Option<i32>,
    /// The app's seccomp filter; None: none (--disable-seccomp, a retain set of `@appc.io/all`).
    filter: Option<Filter>,
    /// The app's cgroups, joined first thing in the child (`joining`; none for `enter`, which
    /// joined before it forked). Shared by the plans of the app's event handlers, which run
    /// in its cgroups.
    cgroup: Rc<crate::cgroups::Join>,
}

/// Resolves everything needed to run `argv` (the app's exec unless overridden, as `enter`
/// does) as app `name`, inside the rootfs open as `rootfd` (chroot target `root`).
impl ExecPlan {
    /// rkt's --insecure-options: with `capabilities` the process keeps PID 1's capabilities,
    /// with `seccomp` it has no filter at all. (`paths` is the pod's mounts, not the process's.)
    pub fn unconfined(self, insecure: Insecure) -> Self {
        Self {
            caps: if insecure.capabilities {
                None
            } else {
                self.caps
            },
            filter: if insecure.seccomp { None } else { self.filter },
            ..self
        }
    }

    /// The app's cgroups, which its child joins before anything else (init); the same for
    /// its event handlers' plans.
    pub fn joining(self, cgroup: Rc<crate::cgroups::Join>) -> Self {
        Self { cgroup, ..self }
    }
}

pub const NO_NEW_PRIVILEGES: &str = "os/linux/no-new-privileges";
pub const OOM_SCORE_ADJ: &str = "os/linux/oom-score-adj";

/// `os/linux/no-new-privileges` (a JSON boolean); true when the app does not say.
pub fn no_new_privs(isolators: &[Isolator]) -> Result<bool> {
    match isolators.iter().find(|i| i.name == NO_NEW_PRIVILEGES) {
        None => Ok(true),
        Some(i) => i.value.as_bool().ok_or_else(|| {
            Error::msg(format!(
                "isolator {NO_NEW_PRIVILEGES}: {} is not a boolean",
                i.value
            ))
        }),
    }
}

/// `os/linux/oom-score-adj` (a JSON integer, -1000 to 1000), if the app has it.
pub fn oom_score_adj(isolators: &[Isolator]) -> Result<Option<i32>> {
    let Some(i) = isolators.iter().find(|i| i.name == OOM_SCORE_ADJ) else {
        return Ok(None);
    };
    match i.value.as_i64().filter(|v| (-1000..=1000).contains(v)) {
        Some(v) => Ok(Some(v as i32)),
        None => bail!(
            "isolator {OOM_SCORE_ADJ}: {} is not an integer from -1000 to 1000",
            i.value
        ),
    }
}

pub fn plan(
    name: &str,
    app: &App,
    root: &str,
    rootfd: impl AsFd + Copy,
    argv: &[String],
) -> Result<ExecPlan> {
    let in_app = |e: Error| Error::msg(format!("app {name:?}: {e}"));
    let text = |p: &str| -> Result<Option<String>> {
        let raw = fsutil::read_in_root(rootfd, p).with_ctx(|| format!("read the image's {p}"))?;
        Ok(raw.map(|b| String::from_utf8_lossy(&b).into_owned()))
    };
    let passwd = text("/etc/passwd").map_err(in_app)?;
    let group = text("/etc/group").map_err(in_app)?;
    // An app without a group reads as an empty one: its groups then come from the image.
    let given_group = Some(app.group.as_str()).filter(|g| !g.is_empty());
    let creds = user::resolve(&app.user, given_group, passwd.as_deref(), group.as_deref())
        .map_err(in_app)?;
    let env = build_env(name, app, &creds.home);
    let cwd = app.working_directory();
    match fsutil::open_in_root(rootfd, cwd, OFlag::O_PATH | OFlag::O_DIRECTORY, 0) {
        Ok(_) => {}
        Err(Errno::ENOENT) => {
            bail!("app {name:?}: working directory {cwd:?} does not exist in the image")
        }
        Err(Errno::ENOTDIR) => bail!("app {name:?}: working directory {cwd:?} is not a directory"),
        Err(e) => return Err(e).with_ctx(|| format!("app {name:?}: working directory {cwd:?}")),
    }
    let path_var = env
        .iter()
        .find(|(k, _)| k == "PATH")
        .map_or(DEFAULT_PATH, |(_, v)| v.as_str());
    let path = find_executable(rootfd, &argv[0], path_var, cwd).map_err(in_app)?;
    let cstr = |s: &str| {
        CString::new(s).map_err(|_| Error::msg(format!("app {name:?}: NUL byte in {s:?}")))
    };
    let caps = caps::app_mask(&app.isolators).map_err(in_app)?;
    let no_new_privs = no_new_privs(&app.isolators).map_err(in_app)?;
    let oom_score_adj = oom_score_adj(&app.isolators).map_err(in_app)?;
    let filter = seccomp::for_app(&app.isolators, !no_new_privs).map_err(in_app)?;
    Ok(ExecPlan {
        caps: Some(caps),
        no_new_privs,
        oom_score_adj,
        filter,
        cgroup: Default::default(),
        root: cstr(root)?,
        cwd: cstr(cwd)?,
        path: cstr(&path)?,
        argv: argv.iter().map(|a| cstr(a)).collect::<Result<_>>()?,
        env: env
            .iter()
            .map(|(k, v)| cstr(&format!("{k}={v}")))
            .collect::<Result<_>>()?,
        uid: Uid::from_raw(creds.uid),
        gid: Gid::from_raw(creds.gid),
        groups: creds
            .groups
            .iter()
            .chain(&app.supplementary_gids)
            .map(|g| Gid::from_raw(*g))
            .collect(),
    })
}

/// An app's process and its event handlers', each the app's plan with its own exec.
pub struct AppPlans {
    pub app: ExecPlan,
    pub pre_start: Option<ExecPlan>,
    pub post_stop: Option<ExecPlan>,
}

/// The plans of app `app` in its root (`root`, open as `rootfd`), joining `cgroup`: the
/// handlers' programs are resolved now like the app's, so a missing one fails before anything
/// runs.
pub fn app_plans(
    app: &PodApp,
    root: &str,
    rootfd: impl AsFd + Copy,
    insecure: Insecure,
    cgroup: Rc<crate::cgroups::Join>,
) -> Result<AppPlans> {
    let hook_plan = |hook: Hook| {
        let Some(exec) = app.app.handler(hook) else {
            return Ok(None);
        };
        let plan = plan(&app.name, &app.app, root, rootfd, exec)
            .map_err(|e| in_handler(&app.name, hook, e))?;
        Ok::<_, Error>(Some(plan.unconfined(insecure).joining(cgroup.clone())))
    };
    // The app's first: its errors come before its handlers'.
    let app_plan = plan(&app.name, &app.app, root, rootfd, &app.app.exec)?.unconfined(insecure);
    Ok(AppPlans {
        pre_start: hook_plan(Hook::PreStart)?,
        post_stop: hook_plan(Hook::PostStop)?,
        app: app_plan.joining(cgroup),
    })
}

/// A handler's set-up error, which names the app already: says which handler it was.
fn in_handler(app: &str, hook: Hook, e: Error) -> Error {
    let msg = e.to_string();
    let prefix = format!("app {app:?}: ");
    let why = msg.strip_prefix(&prefix).unwrap_or(&msg);
    Error::msg(format!("app {app:?}: {} handler: {why}", hook.name()))
}

/// Reads an app's exec report pipe (see [`exec_child`]): end-of-file without a byte means
/// execve succeeded (the close-on-exec write end closed); else the child failed before or in
/// execve, and says why.
pub fn execd(report: OwnedFd) -> std::result::Result<(), String> {
    let mut why = [0u8; 512];
    let mut len = 0;
    while len < why.len() {
        match nix::unistd::read(&report, &mut why[len..]) {
            Err(Errno::EINTR) => continue,
            Ok(n) if n > 0 => len += n,
            _ => break,
        }
    }
    match len {
        0 => Ok(()),
        _ => Err(String::from_utf8_lossy(&why[..len]).into_owned()),
    }
}

/// Defaults first, the manifest's variables over them, then the two variables the ACE
/// always sets. Order is kept (first occurrence wins the position) for reproducible output.
pub fn build_env(name: &str, app: &App, home: &str) -> Vec<(String, String)> {
    let mut env: Vec<(String, String)> = vec![
        ("PATH".into(), DEFAULT_PATH.into()),
        ("HOME".into(), home.into()),
    ];
    let forced = [("AC_APP_NAME", name), ("container", "podlog")];
    let pairs = app
        .environment
        .iter()
        .map(|e| (e.name.as_str(), e.value.as_str()));
    for (k, v) in pairs.chain(forced) {
        match env.iter_mut().find(|(ek, _)| ek == k) {
            Some(slot) => slot.1 = v.to_string(),
            None => env.push((k.to_string(), v.to_string())),
        }
    }
    env
}

/// Where `bin` would be found (rkt's findBinPath): absolute as is, with a slash relative to
/// the working directory, else each `$PATH` entry (empty or relative ones from `cwd`).
pub fn exec_candidates(bin: &str, path_var: &str, cwd: &str) -> Vec<String> {
    let join = |dir: &str, file: &str| format!("{}/{}", dir.trim_end_matches('/'), file);
    if bin.starts_with('/') {
        return vec![bin.to_string()];
    }
    if bin.contains('/') {
        return vec![join(cwd, bin)];
    }
    path_var
        .split(':')
        .map(|dir| match dir {
            "" => join(cwd, bin),
            d if d.starts_with('/') => join(d, bin),
            d => join(&join(cwd, d), bin),
        })
        .collect()
}

fn find_executable(
    rootfd: impl AsFd + Copy,
    bin: &str,
    path_var: &str,
    cwd: &str,
) -> Result<String> {
    let mut not_executable = None;
    for cand in exec_candidates(bin, path_var, cwd) {
        let Ok(fd) = fsutil::open_in_root(rootfd, &cand, OFlag::O_PATH, 0) else {
            continue;
        };
        let st = fstat(&fd).with_ctx(|| format!("stat {cand}"))?;
        let regular = SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT == SFlag::S_IFREG;
        if regular && st.st_mode & 0o111 != 0 {
            return Ok(cand);
        }
        not_executable.get_or_insert(cand);
    }
    match not_executable {
        Some(p) => bail!("exec {bin:?}: {p} is not an executable file"),
        None if bin.contains('/') => bail!("exec {bin:?}: no such file in the image"),
        None => bail!("exec {bin:?}: not found in PATH={path_var}"),
    }
}

/// Runs in the forked child: applies the plan and execs. Never returns; a failure is
/// reported on stderr, and on `exec_failed` if given (a close-on-exec pipe whose reader thus
/// sees end-of-file exactly when execve succeeded), and ends the child with 254 (stage1's own
/// failure code).
pub fn exec_child(
    plan: &ExecPlan,
    new_session: bool,
    exec_failed: Option<&OwnedFd>,
    terminal: Option<BorrowedFd<'_>>,
    userns: Option<BorrowedFd<'_>>,
) -> ! {
    let err = apply_and_exec(plan, new_session, terminal, userns);
    let why = format!(
        "{} ({}): {err}",
        plan.argv[0].to_string_lossy(),
        plan.path.to_string_lossy()
    );
    eprintln!("podlog-stage1: {why}");
    if let Some(fd) = exec_failed {
        let _ = nix::unistd::write(fd, why.as_bytes());
    }
    // SAFETY: _exit is async-signal-safe and skips the parent's atexit handlers and buffers.
    unsafe { libc::_exit(STAGE1_FAILURE) }
}

/// `terminal`: the slave of the pod's terminal (pty.rs), taken as controlling terminal and stdio in
/// the new session. `userns`: the pod's user namespace (`--private-users`), joined first, so that
/// the app's ids, capabilities and root are the pod's.
fn apply_and_exec(
    plan: &ExecPlan,
    new_session: bool,
    terminal: Option<BorrowedFd<'_>>,
    userns: Option<BorrowedFd<'_>>,
) -> Error {
    let r: Result<()> = (|| {
        plan.cgroup.join()?;
        // Rooted where the process now is, so that its /proc/self/cgroup reads `/`, as its
        // /sys/fs/cgroup shows its own cgroups: no path above them, whenever PID 1 was moved.
        nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWCGROUP)
            .ctx("unshare the cgroup namespace")?;
        // Blocked and ignored signals survive execve: PID 1 blocks some for sigtimedwait,
        // Rust's runtime ignores SIGPIPE, and `enter` ignores SIGINT/SIGQUIT while waiting.
        for sig in [
            Signal::SIGPIPE,
            Signal::SIGINT,
            Signal::SIGQUIT,
            Signal::SIGTERM,
            Signal::SIGHUP,
        ] {
            // SAFETY: restoring the default disposition installs no handler.
            unsafe { signal(sig, SigHandler::SigDfl) }.ctx("reset signal dispositions")?;
        }
        sigprocmask(SigmaskHow::SIG_SETMASK, Some(&SigSet::empty()), None)
            .ctx("reset the signal mask")?;
        if new_session {
            nix::unistd::setsid().ctx("setsid")?;
        }
        if let Some(slave) = terminal {
            crate::pty::take(slave)?;
        }
        if let Some(adj) = plan.oom_score_adj {
            // Through the app's /proc (the pod's pid namespace), before a pod user namespace is
            // joined: lowering it needs CAP_SYS_RESOURCE in the host's.
            let file = format!("{}/proc/self/oom_score_adj", plan.root.to_string_lossy());
            std::fs::write(&file, adj.to_string())
                .with_ctx(|| format!("write {adj} to /proc/self/oom_score_adj"))?;
        }
        if let Some(ns) = userns {
            crate::userns::join(ns)?;
        }
        umask(Mode::from_bits_truncate(0o022));
        chroot(plan.root.as_c_str()).ctx("chroot")?;
        chdir("/").ctx("chdir /")?;
        setgroups(&plan.groups).ctx("setgroups")?;
        // Without no_new_privs the kernel takes a filter only from a holder of CAP_SYS_ADMIN:
        // loaded now (as runc and youki do), it was compiled to allow what follows.
        if !plan.no_new_privs {
            plan.filter.as_ref().map_or(Ok(()), Filter::install)?;
        }
        if let Some(mask) = plan.caps {
            caps::restrict_to(mask)?;
        }
        setresgid(plan.gid, plan.gid, plan.gid).ctx("setresgid")?;
        setresuid(plan.uid, plan.uid, plan.uid).ctx("setresuid")?;
        // After setresuid, so that the app's user must be able to enter it.
        chdir(plan.cwd.as_c_str()).with_ctx(|| format!("chdir {}", plan.cwd.to_string_lossy()))?;
        crate::sys::cloexec_from_3().ctx("close_range")?;
        if plan.no_new_privs {
            nix::sys::prctl::set_no_new_privs().ctx("set no_new_privs")?;
            // Last, so that stage1's own calls are not filtered.
            plan.filter.as_ref().map_or(Ok(()), Filter::install)?;
        }
        Ok(())
    })();
    if let Err(e) = r {
        return e;
    }
    match execve(&plan.path, &plan.argv, &plan.env) {
        Err(e) => Error::msg(format!("execve: {}", e.desc())),
        Ok(never) => match never {},
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::EnvVar;

    fn app(env: &[(&str, &str)]) -> App {
        App {
            exec: vec!["/bin/true".into()],
            user: "0".into(),
            group: "0".into(),
            supplementary_gids: vec![],
            working_directory: None,
            environment: env
                .iter()
                .map(|(k, v)| EnvVar {
                    name: k.to_string(),
                    value: v.to_string(),
                })
                .collect(),
            isolators: vec![],
            event_handlers: vec![],
        }
    }

    #[test]
    fn env_defaults_manifest_then_forced() {
        let env = build_env(
            "web",
            &app(&[("FOO", "1"), ("PATH", "/bin"), ("container", "x")]),
            "/root",
        );
        let got: Vec<String> = env.iter().map(|(k, v)| format!("{k}={v}")).collect();
        assert_eq!(
            got,
            [
                "PATH=/bin",
                "HOME=/root",
                "FOO=1",
                "container=podlog",
                "AC_APP_NAME=web"
            ]
        );
        let env = build_env("a", &app(&[]), "/");
        assert_eq!(env[0], ("PATH".to_string(), DEFAULT_PATH.to_string()));
    }

    fn isolator(name: &str, value: serde_json::Value) -> Vec<Isolator> {
        vec![Isolator {
            name: name.into(),
            value,
        }]
    }

    #[test]
    fn no_new_privs_defaults_to_true() {
        assert!(no_new_privs(&[]).unwrap());
        let off = isolator(NO_NEW_PRIVILEGES, serde_json::json!(false));
        assert!(!no_new_privs(&off).unwrap());
        let bad = isolator(NO_NEW_PRIVILEGES, serde_json::json!("false"));
        assert_eq!(
            no_new_privs(&bad).unwrap_err().to_string(),
            "isolator os/linux/no-new-privileges: \"false\" is not a boolean"
        );
    }

    #[test]
    fn oom_score_adj_in_range() {
        assert_eq!(oom_score_adj(&[]).unwrap(), None);
        for v in [-1000, 0, 1000] {
            let i = isolator(OOM_SCORE_ADJ, serde_json::json!(v));
            assert_eq!(oom_score_adj(&i).unwrap(), Some(v));
        }
        for bad in [
            serde_json::json!(1001),
            serde_json::json!(-1001),
            serde_json::json!("5"),
            serde_json::json!(1.5),
        ] {
            let i = isolator(OOM_SCORE_ADJ, bad);
            assert!(oom_score_adj(&i).is_err());
        }
    }

    #[test]
    fn candidates() {
        assert_eq!(exec_candidates("/bin/sh", "/x", "/"), ["/bin/sh"]);
        assert_eq!(exec_candidates("bin/sh", "/x", "/srv"), ["/srv/bin/sh"]);
        assert_eq!(
            exec_candidates("sh", "/usr/bin::rel:/bin/", "/w/"),
            ["/usr/bin/sh", "/w/sh", "/w/rel/sh", "/bin/sh"]
        );
    }
}
