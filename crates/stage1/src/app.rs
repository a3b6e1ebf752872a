//! `app-add`, `app-start`, `app-stop`, `app-rm`: the stage1 half of rkt's `app` verbs on a mutable
//! pod (mutable.rs). Each sends one request to the pod's PID 1 over its control socket
//! (control.rs) and exits with the reply's code.
//!
//! `app-add` builds the app's file systems itself, with init's code (rootfs.rs), in a private copy
//! of its caller's mount namespace, where the tree store, the pod directory and the host's files
//! have their paths (PID 1, after its pivot_root, reaches none of them), and inside the pod's pid
//! and network namespaces, so that the `proc` and `sysfs` it mounts are the pod's. It hands PID 1
//! the result as one detached mount tree (open_tree), with the app's cgroups, which it made.

use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;

use nix::sched::{setns, unshare, CloneFlags};
use nix::sys::wait::waitpid;
use nix::unistd::{fork, unlinkat, ForkResult, UnlinkatFlags};

use crate::cgroups::Cgroups;
use crate::cli::{self, AppCommand, AppVerb, InitOpts};
use crate::control::{self, Reply, Request};
use crate::error::{bail, Context, Result, STAGE1_FAILURE};
use crate::etc::EtcFiles;
use crate::manifest::{self, Hook, PodApp};
use crate::rootfs::{self, PodFs};
use crate::userns::UserNs;
use crate::{fsutil, init, lock, lowers, mounts, reaper, sys};

/// `init --mutable`'s arguments, NUL-separated: how `app-add` builds an app as init would.
pub const INIT_ARGS: &str = "stage1/init-args";

pub fn run(cmd: AppCommand) -> Result<i32> {
    let app = cmd.app;
    let request = match cmd.verb {
        AppVerb::Add { tree_store } => return add(&cmd.pod_dir, &app, &tree_store),
        AppVerb::Start => Request::Start { app },
        AppVerb::Stop { force } => Request::Stop { app, force },
        AppVerb::Rm => return rm(&cmd.pod_dir, &app),
    };
    Ok(said(control::call(&cmd.pod_dir, &request, &[])?))
}

/// The reply's code, its message on stderr when it is not 0.
fn said(reply: Reply) -> i32 {
    if reply.code != 0 {
        eprintln!("podlog-stage1: {}", reply.message);
    }
    reply.code
}

fn add(pod_dir: &Path, name: &str, tree_store: &Path) -> Result<i32> {
    let has = Request::Has {
        app: name.to_string(),
    };
    // Never built twice: a second overlay on the app's upper dir would corrupt it.
    if control::call(pod_dir, &has, &[])?.code == 0 {
        debug!("app {name:?} is in the pod already");
        return Ok(0);
    }
    let (pod_path, pod) = lock::open_pod_dir(pod_dir)?;
    let Some(app) = manifest::load_sandbox(&pod)?
        .into_iter()
        .find(|a| a.name == name)
    else {
        bail!("the pod manifest has no app {name:?} (stage0 adds it before app-add)");
    };
    let opts = init_opts(&pod)?;
    let tree_store = std::fs::canonicalize(tree_store)
        .with_ctx(|| format!("tree store {}", tree_store.display()))?;
    lowers::of_tree(&tree_store, &app.tree_store_id).with_ctx(|| format!("app {name:?}"))?;
    init::check_overlay_dirs(pod.as_fd(), &pod_path, std::slice::from_ref(&app))?;
    // Here, in the host's pid namespace, as init makes it (its helper's maps are written
    // through /proc): an idmapped mount needs a namespace with the pod's map, not the pod's own.
    let users = opts
        .private_users
        .map(UserNs::create)
        .transpose()
        .ctx("--private-users")?;
    let mut cgroups = Cgroups::of_sandbox(pod.as_fd())?;
    cgroups.add_app(&app)?;
    let (_, pidfd) = lock::running_pod_pid1(&pod_path)?;
    // Holding host fds in the pod's pid namespace, like PID 1: its /proc entries stay closed.
    nix::sys::prctl::set_dumpable(false).ctx("clear PR_SET_DUMPABLE")?;
    setns(&pidfd, CloneFlags::CLONE_NEWPID | CloneFlags::CLONE_NEWNET)
        .ctx("setns into the pod's pid and network namespaces")?;
    unshare(CloneFlags::CLONE_NEWNS).ctx("unshare the mount namespace")?;
    mounts::make_everything_private()?;
    let build = Build {
        pod_path: &pod_path,
        tree_store: &tree_store,
        opts: &opts,
        app: &app,
        users: users.as_ref(),
    };
    // SAFETY: single-threaded; the child builds, sends and _exits.
    match unsafe { fork() }.ctx("fork")? {
        ForkResult::Child => {
            let code = build.send(&mut cgroups).map(said).unwrap_or_else(|e| {
                eprintln!("podlog-stage1: {e}");
                STAGE1_FAILURE
            });
            // SAFETY: ends the child without running the parent's destructors (its cgroups).
            unsafe { libc::_exit(code) }
        }
        ForkResult::Parent { child } => loop {
            match waitpid(child, None) {
                Err(nix::errno::Errno::EINTR) => continue,
                r => return Ok(reaper::exit_code(r.ctx("wait")?).unwrap_or(STAGE1_FAILURE)),
            }
        },
    }
}

/// What `app-add`'s child builds from.
struct Build<'a> {
    pod_path: &'a Path,
    tree_store: &'a Path,
    opts: &'a InitOpts,
    app: &'a PodApp,
    users: Option<&'a UserNs>,
}

impl Build<'_> {
    /// In the pod's pid namespace (this process's own): the app's root under a stage1 root of
    /// its own, as init builds it, then the whole tree, detached, to PID 1.
    fn send(&self, cgroups: &mut Cgroups) -> Result<Reply> {
        let name = &self.app.name;
        let hostname = init::hostname(self.opts, &init::pod_uuid(self.pod_path))?;
        let fs = PodFs {
            pod_dir: self.pod_path,
            tree_store: self.tree_store,
            etc: EtcFiles {
                hostname: &hostname,
                resolv: &self.opts.resolv,
                hosts: &self.opts.hosts,
            },
            users: self.users,
            mask_paths: !self.opts.insecure.paths,
        };
        let stage1_root = fs.mount_stage1_root()?;
        let rootfd = fs.setup_app(&stage1_root, self.app)?;
        cgroups.show_in_app(rootfd.as_fd(), name)?;
        drop(rootfd);
        let root = stage1_root.join(rootfs::app_root_after_pivot(name).trim_start_matches('/'));
        let path = std::ffi::CString::new(root.as_os_str().as_encoded_bytes())
            .map_err(|_| crate::error::Error::msg("a NUL byte in the pod directory's path"))?;
        let tree = sys::open_tree_clone(&path, true)
            .with_ctx(|| format!("app {name:?}: clone its mounts"))?;
        let (indices, cgroup_fds, limited) = cgroups.app_descriptors(name);
        let fds: Vec<OwnedFd> = std::iter::once(tree).chain(cgroup_fds).collect();
        let request = Request::Add {
            app: name.clone(),
            cgroups: indices,
            limited,
        };
        control::send(self.pod_path, &request, &fds)
    }
}

/// The options `init --mutable` ran with.
fn init_opts(pod: &OwnedFd) -> Result<InitOpts> {
    let raw = fsutil::read_at(pod, INIT_ARGS).ctx(format!("read <pod>/{INIT_ARGS}"))?;
    let args = String::from_utf8_lossy(&raw);
    let argv = args.split('\0').map(String::from).collect();
    match cli::parse(argv).ctx(format!("<pod>/{INIT_ARGS}"))? {
        cli::Command::Init(opts) if opts.mutable => Ok(opts),
        _ => bail!("<pod>/{INIT_ARGS}: not the arguments of init --mutable"),
    }
}

/// PID 1 detaches the app's mounts and forgets it; then its cgroups and records go.
fn rm(pod_dir: &Path, name: &str) -> Result<i32> {
    let reply = control::call(pod_dir, &Request::Rm { app: name.into() }, &[])?;
    if reply.code != 0 {
        return Ok(said(reply));
    }
    let pod = lock::open_pod_dir(pod_dir)?.1;
    Cgroups::of_sandbox(pod.as_fd())?.remove_app(name)?;
    let hooks = Hook::ALL.map(|h| format!("hooks/{name}/{}", h.name()));
    let records = [format!("status/{name}"), format!("appstats/{name}")];
    for file in records.iter().chain(&hooks) {
        match unlinkat(&pod, file.as_str(), UnlinkatFlags::NoRemoveDir) {
            Ok(()) | Err(nix::errno::Errno::ENOENT) => {}
            Err(e) => return Err(e).with_ctx(|| format!("remove <pod>/{file}")),
        }
    }
    match unlinkat(
        &pod,
        format!("hooks/{name}").as_str(),
        UnlinkatFlags::RemoveDir,
    ) {
        Ok(()) | Err(nix::errno::Errno::ENOENT) => Ok(0),
        Err(e) => Err(e).with_ctx(|| format!("remove <pod>/hooks/{name}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn init_args_are_read_back() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("stage1")).unwrap();
        let pod = lock::open_pod_dir(dir.path()).unwrap().1;
        let write = |args: &[&str]| {
            std::fs::write(dir.path().join(INIT_ARGS), args.join("\0")).unwrap();
        };
        write(&[
            "init",
            "--pod-dir",
            "/p",
            "--tree-store",
            "/t",
            "--hostname",
            "h",
            "--mutable",
        ]);
        let opts = init_opts(&pod).unwrap();
        assert_eq!(opts.hostname.as_deref(), Some("h"));
        write(&["init", "--pod-dir", "/p", "--tree-store", "/t"]);
        assert!(init_opts(&pod).is_err(), "not a mutable pod's");
        write(&["stop", "--pod-dir", "/p"]);
        assert!(init_opts(&pod).is_err());
    }
}
