//! `enter`: run a command in a running pod, in an app's rootfs, with the app's user,
//! environment, capabilities, no_new_privs, oom_score_adj and seccomp filter (the app's
//! isolators'). Returns the command's code.

use std::os::fd::AsFd;

use nix::fcntl::OFlag;
use nix::sys::signal::{signal, SigHandler, Signal};
use nix::sys::stat::Mode;
use nix::sys::wait::waitpid;
use nix::unistd::{fork, ForkResult};

use crate::cli::EnterOpts;
use crate::error::{bail, Context, Result, STAGE1_FAILURE};
use crate::{cgroups, fsutil, lock, manifest, namespaces, process, reaper, rootfs, userns};

pub fn run(opts: EnterOpts) -> Result<i32> {
    let (pod_dir, dir) = lock::open_pod_dir(&opts.pod_dir)?;
    let apps = manifest::load(&dir)?;
    let Some(app) = apps.into_iter().find(|a| a.name == opts.app) else {
        bail!("the pod has no app {:?}", opts.app);
    };
    let (pid1, pidfd) = lock::running_pod_pid1(&pod_dir)?;
    // Before setns: the pod's mount namespace has no /proc outside the apps' roots.
    let users = userns::of_pod_apps(pid1)?;
    join_cgroups(&dir, &pod_dir, &app.name);
    namespaces::join_pod(&pidfd)?;
    drop(pidfd);
    // setns into a mount namespace moved our root and cwd to its root: the stage1 tmpfs.
    let root = rootfs::app_root_after_pivot(&app.name);
    let rootfd = nix::fcntl::open(
        root.as_str(),
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .with_ctx(|| format!("open {root} in the pod"))?;
    let argv = if opts.cmd.is_empty() {
        vec![default_shell(&rootfd).to_string()]
    } else {
        opts.cmd
    };
    let plan = process::plan(&app.name, &app.app, &root, &rootfd, &argv)?.unconfined(opts.insecure);
    // Like system(3): a ^C reaches the command (same process group); we only wait for it.
    for sig in [Signal::SIGINT, Signal::SIGQUIT] {
        // SAFETY: SIG_IGN installs no handler.
        unsafe { signal(sig, SigHandler::SigIgn) }.ctx("ignore SIGINT/SIGQUIT")?;
    }
    // SAFETY: single-threaded; the child only applies the plan and execs or _exits. The
    // fork is needed to be inside the pid namespace, which setns applies to children only.
    match unsafe { fork() }.ctx("fork")? {
        ForkResult::Child => process::exec_child(
            &plan,
            false,
            None,
            None,
            users.as_ref().map(|fd| fd.as_fd()),
        ),
        ForkResult::Parent { child } => loop {
            match waitpid(child, None) {
                Err(nix::errno::Errno::EINTR) => continue,
                r => return Ok(reaper::exit_code(r.ctx("wait")?).unwrap_or(STAGE1_FAILURE)),
            }
        },
    }
}

/// rkt's default command for `enter`: `/bin/bash` where the app's image has it, else `/bin/sh`.
/// Looked up inside the app's root, so a symlink in the image cannot point it at the host.
fn default_shell(root: impl AsFd) -> &'static str {
    let executable = fsutil::open_in_root(root, "/bin/bash", OFlag::O_PATH, 0)
        .and_then(nix::sys::stat::fstat)
        .is_ok_and(|st| st.st_mode & libc::S_IFMT == libc::S_IFREG && st.st_mode & 0o111 != 0);
    if executable {
        "/bin/bash"
    } else {
        "/bin/sh"
    }
}

/// Into the app's cgroups, as `docker exec` does: the command counts against the app's limits
/// and stats. Best effort, before setns: the cgroup paths are host paths.
fn join_cgroups(dir: impl AsFd, pod_dir: &std::path::Path, app: &str) {
    let uuid = pod_dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let Ok(list) = fsutil::read_at(dir, "subcgroup") else {
        return;
    };
    for line in String::from_utf8_lossy(&list).lines() {
        if cgroups::is_pod_cgroup(line, &uuid) {
            cgroups::join_self(&std::path::Path::new(line).join(app));
        }
    }
}
