//! The pod's cgroups: `podlog/<uuid>` below stage1's own cgroup in each hierarchy that
//! matters (v1 `pids`, `memory`, `cpu`, `cpuacct`, a co-mounted `cpu,cpuacct` being one; the
//! v2 hierarchy on a unified host, or on a hybrid one when it has one of our controllers), so
//! a limit stage0 lives under still applies to its pods; each app in its own child
//! `podlog/<uuid>/<app>`, which holds the app's limits (limits.rs) and tells its stats once
//! it has exited (stats.rs). Under v2 a cgroup whose children have controllers may hold no
//! process, so PID 1 sits in the leaf `<uuid>/_stage1` (an ACName has no `_`); and stage1's
//! own v2 cgroup, which holds stage1 itself, can give its children controllers only if it is
//! the root: elsewhere the pod goes below the root, `podlog/<uuid>` there (as runc's and
//! crun's cgroupfs drivers do with an absolute path), undelegated (`v2_parent`).
//!
//! Without limits this is best effort: a hierarchy that fails is left out. A limit that
//! cannot be applied fails the pod before any app starts (or, for a join, its app's child
//! before its execve). Whatever ends `init`, what was made is removed (`Drop`).
//!
//! Joining is the expensive part: moving a process through `cgroup.procs` takes the global
//! threadgroup rwsem for writing, which waits for an RCU grace period (often 5-15 ms here).
//! A single-threaded process that moves itself through a v1 `tasks` file skips that lock, so
//! pod PID 1 joins the v1 hierarchies that way, at once, and so does each app's child just
//! before its execve, through files the supervisor opened (after pivot_root no cgroup path
//! is reachable; the opener's credentials and cgroup namespace are what the kernel checks).
//! v2 has no such path: the supervisor moves PID 1 through `cgroup.procs` while PID 1 builds
//! the pod's file systems, and PID 1 starts the apps only after that. (clone3's
//! CLONE_INTO_CGROUP would avoid the wait on v2 hosts.)
//!
//! `<pod>/subcgroup` lists the pod's directories, one absolute path per line, written before
//! they are created so that `gc` can always find them; `<pod>/cgroups.json` says what was
//! made.

mod limits;
mod stats;
mod view;

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::time::Duration;

use nix::fcntl::{open, openat, OFlag};
use nix::sys::signal::{kill, Signal};
use nix::sys::stat::Mode;
use nix::unistd::{write, Pid};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::error::{bail, Context, Error, Result};
use crate::fsutil;
use crate::manifest::PodApp;
use limits::Setting;
pub use stats::AppStats;

const ROOT: &str = "/sys/fs/cgroup";
/// Limits and stats need memory, cpu and cpuacct; pids is cheap accounting, and where the
/// pods' tasks are.
const V1_CONTROLLERS: [&str; 4] = ["pids", "memory", "cpu", "cpuacct"];
const V2_CONTROLLERS: [&str; 3] = ["pids", "memory", "cpu"];
/// A mutable pod's hierarchies, for the `app-*` entrypoints ([`Cgroups::save_for_apps`]).
const SAVED: &str = "stage1/cgroups.json";

#[derive(Serialize, Deserialize)]
struct Saved {
    layout: Layout,
    hierarchies: Vec<Hierarchy>,
}

/// PID 1's leaf under v2 (see the module comment).
const STAGE1_LEAF: &str = "_stage1";

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Layout {
    /// /sys/fs/cgroup is the v2 hierarchy.
    Unified,
    /// v1 controllers, and a v2 hierarchy mounted below /sys/fs/cgroup (at `unified`).
    Hybrid,
    /// v1 controllers only.
    Legacy,
}

impl Layout {
    pub fn name(self) -> &'static str {
        match self {
            Layout::Unified => "unified",
            Layout::Hybrid => "hybrid",
            Layout::Legacy => "legacy",
        }
    }
}

/// A hierarchy the pod uses.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Hierarchy {
    /// `<mount point><stage1's cgroup>/podlog/<uuid>`, or for an undelegated v2 hierarchy
    /// `<mount point>/podlog/<uuid>`.
    pub pod: PathBuf,
    pub v2: bool,
    /// The pod is below stage1's own cgroup (see `v2_parent`).
    pub delegated: bool,
    /// v1: ours of the hierarchy's controllers; v2: ours of those the pod's parent has.
    pub controllers: Vec<String>,
    /// Its mount point below /sys/fs/cgroup (`memory`, `cpu,cpuacct`; "" for a unified root):
    /// where an app sees its cgroup in it (view.rs).
    pub inside: String,
}

impl Hierarchy {
    fn has(&self, controller: &str) -> bool {
        self.controllers.iter().any(|c| c == controller)
    }

    /// The file a process writes to move into a cgroup of this hierarchy.
    fn join_file(&self) -> &'static str {
        if self.v2 {
            "cgroup.procs"
        } else {
            "tasks"
        }
    }
}

/// A cgroup mount below /sys/fs/cgroup, from mountinfo.
struct Mount<'a> {
    /// The hierarchy's path that is mounted (not `/` in a container).
    root: &'a str,
    point: &'a str,
    v2: bool,
    /// v1: the super options, which name the controllers.
    options: Vec<&'a str>,
}

fn cgroup_mounts(mountinfo: &str) -> Vec<Mount<'_>> {
    mountinfo
        .lines()
        .filter_map(|l| {
            let (fields, tail) = l.split_once(" - ")?;
            let fields: Vec<&str> = fields.split(' ').collect();
            let mut tail = tail.split(' ');
            let (fstype, options) = (tail.next()?, tail.nth(1)?);
            let (root, point) = (*fields.get(3)?, *fields.get(4)?);
            // A path with an escaped character is none of the kernel's or systemd's names.
            let ours =
                (point == ROOT || point.starts_with(&format!("{ROOT}/"))) && !point.contains('\\');
            (ours && (fstype == "cgroup" || fstype == "cgroup2")).then(|| Mount {
                root,
                point,
                v2: fstype == "cgroup2",
                options: options.split(',').collect(),
            })
        })
        .collect()
}

/// The layout and the pod's hierarchies, from `/proc/self/cgroup` (`id:controllers:path`
/// lines) and `/proc/self/mountinfo`. `v2_controllers` reads `cgroup.controllers` of the v2
/// cgroup that holds `podlog` (`v2_parent`).
pub fn plan(
    self_cgroup: &str,
    mountinfo: &str,
    uuid: &str,
    v2_controllers: impl Fn(&Path) -> String,
) -> (Layout, Vec<Hierarchy>) {
    let mounts = cgroup_mounts(mountinfo);
    let layout = match mounts.iter().find(|m| m.v2) {
        Some(m) if m.point == ROOT => Layout::Unified,
        Some(_) => Layout::Hybrid,
        None => Layout::Legacy,
    };
    let mut out = Vec::new();
    for line in self_cgroup.lines() {
        let mut f = line.splitn(3, ':');
        let (Some(_), Some(ctrls), Some(path)) = (f.next(), f.next(), f.next()) else {
            continue;
        };
        let v2 = ctrls.is_empty();
        let listed: Vec<&str> = ctrls.split(',').collect();
        let Some(mount) = mounts
            .iter()
            .find(|m| m.v2 == v2 && (v2 || listed.iter().all(|c| m.options.contains(c))))
        else {
            continue;
        };
        // Our cgroup as the mount shows it; one outside the mounted part is out of reach.
        let rel = match mount.root {
            "/" => Some(path),
            root => path
                .strip_prefix(root)
                .filter(|r| r.is_empty() || r.starts_with('/')),
        };
        let Some(rel) = rel else { continue };
        let point = Path::new(mount.point);
        let own = point.join(rel.trim_start_matches('/'));
        let (parent, delegated) = if v2 {
            v2_parent(point, &own)
        } else {
            (own, true)
        };
        let controllers: Vec<String> = if v2 {
            let available = v2_controllers(&parent);
            let available: Vec<&str> = available.split_whitespace().collect();
            V2_CONTROLLERS
                .iter()
                .filter(|c| available.contains(c))
                .map(|c| c.to_string())
                .collect()
        } else {
            listed
                .iter()
                .filter(|c| V1_CONTROLLERS.contains(c))
                .map(|c| c.to_string())
                .collect()
        };
        // The v2 hierarchy of a unified host holds every process; a hybrid one only matters
        // for a controller of ours.
        if controllers.is_empty() && !(v2 && layout == Layout::Unified) {
            continue;
        }
        out.push(Hierarchy {
            pod: parent.join("podlog").join(uuid),
            v2,
            delegated,
            controllers,
            inside: mount.point[ROOT.len()..]
                .trim_start_matches('/')
                .to_string(),
        });
    }
    (layout, out)
}

/// Where a v2 hierarchy's `podlog` goes, `own` being stage1's cgroup, and whether that is
/// below `own`. A v2 cgroup whose children have controllers may hold no process unless it is
/// the root, and stage1's holds at least stage1 (and, say, the session's or service's
/// processes): enabling controllers in its `cgroup.subtree_control` fails with EBUSY, and no
/// limit could be written. So only a stage1 at the root (`point`, where the hierarchy is
/// mounted) keeps its pods below itself; elsewhere they go below the root, which has no such
/// rule. (In a cgroup namespace the mount's root is not the kernel's, and may hold processes:
/// nothing better is in reach there, and a limit then fails by name.)
fn v2_parent(point: &Path, own: &Path) -> (PathBuf, bool) {
    (point.to_path_buf(), own == point)
}

/// Checks a `subcgroup` line before gc deletes it: it must be a pod cgroup of this pod.
pub fn is_pod_cgroup(p: &str, uuid: &str) -> bool {
    p.starts_with("/sys/fs/cgroup/")
        && p.ends_with(&format!("/podlog/{uuid}"))
        && !p.split('/').any(|c| c == ".." || c == ".")
}

/// Directory names are used as cgroup names: accept what a UUID or an ACName can contain.
pub fn valid_uuid(uuid: &str) -> bool {
    !uuid.is_empty()
        && uuid != "."
        && uuid != ".."
        && uuid
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
}

/// Where an app's child process moves itself before execve: the app's cgroup files,
/// opened by the supervisor. Empty when the app has no cgroup.
#[derive(Default)]
pub struct Join {
    files: Vec<(OwnedFd, String)>,
    /// The app has limits: not being in its cgroup would escape them.
    required: bool,
}

impl Join {
    /// Call in the single-threaded child (see the module comment).
    pub fn join(&self) -> Result<()> {
        for (fd, path) in &self.files {
            match write(fd, b"0") {
                Err(e) if self.required => return Err(e).with_ctx(|| format!("join {path}")),
                _ => {}
            }
        }
        Ok(())
    }
}

struct AppCgroup {
    name: String,
    join: Join,
    /// The app's directory (O_PATH) in the hierarchies of these indices, for its stats after
    /// pivot_root.
    dirs: Vec<(usize, OwnedFd)>,
}

/// Removes what it made when dropped (`remove`): on every way out of `init`, which drops it
/// only once pod PID 1 has been reaped (the processes forked from it _exit without dropping).
pub struct Cgroups {
    layout: Layout,
    /// Every hierarchy planned, as listed in `subcgroup`: what `remove` looks for.
    planned: Vec<Hierarchy>,
    /// Only those whose pod directory was made whole.
    hierarchies: Vec<Hierarchy>,
    apps: Vec<AppCgroup>,
}

impl Cgroups {
    /// Creates the pod's and the apps' cgroups, applies the apps' limits, and writes
    /// `subcgroup` and `cgroups.json`. Fails only for a bad limit isolator, a limit that cannot
    /// be applied, or a failed write in the pod directory; what it made then is removed.
    pub fn create(pod_dir: BorrowedFd<'_>, uuid: &str, apps: &[PodApp]) -> Result<Cgroups> {
        let wanted = apps
            .iter()
            .map(|a| limits::settings(&a.app.isolators).map_err(|e| in_app(&a.name, e.to_string())))
            .collect::<Result<Vec<_>>>()?;
        let (layout, hierarchies) = discover(uuid);
        let mut cg = Cgroups {
            layout,
            planned: hierarchies.clone(),
            hierarchies,
            apps: Vec::new(),
        };
        // On failure, dropping `cg` removes what was made.
        cg.make(pod_dir, apps, &wanted).map(|()| cg)
    }

    /// The hierarchy that applies a limit: the first with its controller.
    fn home(&self, s: Setting) -> Option<usize> {
        self.hierarchies.iter().position(|h| h.has(s.controller()))
    }

    fn make(
        &mut self,
        pod_dir: BorrowedFd<'_>,
        apps: &[PodApp],
        wanted: &[Vec<Setting>],
    ) -> Result<()> {
        let asked = || {
            apps.iter()
                .zip(wanted)
                .flat_map(|(a, w)| w.iter().map(move |s| (a, *s)))
        };
        // Every limit must have its hierarchy before anything is made.
        for (app, settings) in apps.iter().zip(wanted) {
            self.check_homes(&app.name, settings)?;
        }
        let list: String = self
            .hierarchies
            .iter()
            .map(|h| format!("{}\n", h.pod.display()))
            .collect();
        fsutil::write_atomic(pod_dir, "subcgroup", list.as_bytes()).ctx("write <pod>/subcgroup")?;

        let mut kept = Vec::with_capacity(self.hierarchies.len());
        for (i, h) in self.hierarchies.iter().enumerate() {
            match make_pod_dir(h) {
                Ok(()) => kept.push(h.clone()),
                Err(e) => {
                    if let Some((app, s)) = asked().find(|&(_, s)| self.home(s) == Some(i)) {
                        return Err(in_app(&app.name, format!("{s}: {e}")));
                    }
                }
            }
        }
        // Each limit's home was kept, so it is still the first with its controller.
        self.hierarchies = kept;

        for (app, settings) in apps.iter().zip(wanted) {
            self.make_app(&app.name, settings)?;
        }
        let dirs: Vec<String> = self
            .hierarchies
            .iter()
            .map(|h| h.pod.display().to_string())
            .collect();
        let delegated = self.hierarchies.iter().all(|h| h.delegated);
        let report =
            json!({"layout": self.layout.name(), "dirs": dirs, "delegated": delegated}).to_string();
        fsutil::write_atomic(pod_dir, "cgroups.json", report.as_bytes())
            .ctx("write <pod>/cgroups.json")
    }

    /// Every limit of an app must have its hierarchy before anything is made.
    fn check_homes(&self, app: &str, settings: &[Setting]) -> Result<()> {
        if let Some(s) = settings.iter().find(|&&s| self.home(s).is_none()) {
            let msg = format!(
                "{s}: no cgroup hierarchy has the {} controller (cgroups: {})",
                s.controller(),
                self.layout.name()
            );
            return Err(in_app(app, msg));
        }
        Ok(())
    }

    /// Makes app `name`'s cgroup in each hierarchy, applies its limits and opens its join
    /// file and directory.
    fn make_app(&mut self, name: &str, settings: &[Setting]) -> Result<()> {
        let mut ac = AppCgroup {
            name: name.to_string(),
            join: Join {
                files: Vec::new(),
                required: !settings.is_empty(),
            },
            dirs: Vec::new(),
        };
        for (i, h) in self.hierarchies.iter().enumerate() {
            let mut here = settings.iter().filter(|&&s| self.home(s) == Some(i));
            match open_app_dir(h, name) {
                Ok((join, dir)) => {
                    ac.join.files.push(join);
                    ac.dirs.push((i, dir));
                }
                Err(e) => match here.next() {
                    Some(s) => return Err(in_app(name, format!("{s}: {e}"))),
                    None => continue,
                },
            }
            let dir = h.pod.join(name);
            for &s in here {
                apply(&dir, s, h.v2).map_err(|e| in_app(name, format!("{s}: {e}")))?;
            }
        }
        self.apps.push(ac);
        Ok(())
    }

    /// `init --mutable`: the hierarchies, for `app-add` and `app-rm`, which make and remove the
    /// cgroups of apps that come later, from another process (and maybe another cgroup).
    pub fn save_for_apps(&self, pod_dir: BorrowedFd<'_>) -> Result<()> {
        let saved = Saved {
            layout: self.layout,
            hierarchies: self.hierarchies.clone(),
        };
        let raw = serde_json::to_vec(&saved).ctx("encode the pod's cgroups")?;
        fsutil::write_atomic(pod_dir, SAVED, &raw).ctx(format!("write <pod>/{SAVED}"))
    }

    /// The cgroups of a running mutable pod, as `init` saved them; dropping it removes nothing.
    pub fn of_sandbox(pod_dir: BorrowedFd<'_>) -> Result<Cgroups> {
        let raw = fsutil::read_at(pod_dir, SAVED).ctx(format!("read <pod>/{SAVED}"))?;
        let saved: Saved = serde_json::from_slice(&raw).ctx(format!("parse <pod>/{SAVED}"))?;
        if let Some(h) = saved.hierarchies.iter().find(|h| {
            !h.pod
                .to_str()
                .is_some_and(|p| p.starts_with(&format!("{ROOT}/")) && !p.contains("/../"))
        }) {
            bail!("<pod>/{SAVED}: {} is not a cgroup", h.pod.display());
        }
        Ok(Cgroups {
            layout: saved.layout,
            planned: Vec::new(),
            hierarchies: saved.hierarchies,
            apps: Vec::new(),
        })
    }

    /// `app-add`: app's cgroups, its limits applied (a limit that cannot be is an error naming
    /// it, as at `init`).
    pub fn add_app(&mut self, app: &PodApp) -> Result<()> {
        let settings =
            limits::settings(&app.app.isolators).map_err(|e| in_app(&app.name, e.to_string()))?;
        self.check_homes(&app.name, &settings)?;
        self.make_app(&app.name, &settings)
    }

    /// What pod PID 1 needs of app `name`'s cgroups ([`adopt_app`](Self::adopt_app)): the
    /// hierarchies' indices, each one's join file and directory, and whether it has limits.
    pub fn app_descriptors(&mut self, name: &str) -> (Vec<usize>, Vec<OwnedFd>, bool) {
        let Some(at) = self.apps.iter().position(|a| a.name == name) else {
            return (Vec::new(), Vec::new(), false);
        };
        let app = self.apps.remove(at);
        let mut fds = Vec::with_capacity(2 * app.dirs.len());
        let mut indices = Vec::with_capacity(app.dirs.len());
        // make_app pushes a join file and a directory together.
        for ((join, _), (i, dir)) in app.join.files.into_iter().zip(app.dirs) {
            indices.push(i);
            fds.extend([join, dir]);
        }
        (indices, fds, app.join.required)
    }

    /// Pod PID 1: app `name`'s cgroups, from `app-add` ([`app_descriptors`](Self::app_descriptors)):
    /// what its processes join, kept for each start; its directories, for its stats.
    pub fn adopt_app(
        &mut self,
        name: &str,
        indices: &[usize],
        fds: Vec<OwnedFd>,
        limited: bool,
    ) -> Result<Join> {
        if let Some(i) = indices.iter().find(|&&i| i >= self.hierarchies.len()) {
            bail!("app {name:?}: no cgroup hierarchy {i}");
        }
        let mut join = Join {
            files: Vec::with_capacity(indices.len()),
            required: limited,
        };
        let mut dirs = Vec::with_capacity(indices.len());
        let mut fds = fds.into_iter();
        for &i in indices {
            let (Some(file), Some(dir)) = (fds.next(), fds.next()) else {
                bail!("app {name:?}: two descriptors per cgroup expected");
            };
            let h = &self.hierarchies[i];
            let path = h.pod.join(name).join(h.join_file());
            join.files.push((file, path.display().to_string()));
            dirs.push((i, dir));
        }
        self.forget_app(name);
        self.apps.push(AppCgroup {
            name: name.to_string(),
            join: Join::default(),
            dirs,
        });
        Ok(join)
    }

    /// Pod PID 1: app `name` is removed.
    pub fn forget_app(&mut self, name: &str) {
        self.apps.retain(|a| a.name != name);
    }

    /// `app-rm`: removes app `name`'s cgroups, killing what is left in them (a command that
    /// `enter` ran in the app).
    pub fn remove_app(&self, name: &str) -> Result<()> {
        for h in &self.hierarchies {
            let dir = h.pod.join(name);
            destroy(&dir).with_ctx(|| format!("remove cgroup {}", dir.display()))?;
        }
        Ok(())
    }

    /// Pod PID 1: SIGKILL to everything in app `name`'s cgroups (a stop's grace is over: what
    /// left the app's process group goes too).
    pub fn kill_app(&self, name: &str) {
        for (i, dir) in self
            .apps
            .iter()
            .filter(|a| a.name == name)
            .flat_map(|a| &a.dirs)
        {
            if self.hierarchies[*i].v2 {
                if let Ok(kill) = openat(
                    dir,
                    "cgroup.kill",
                    OFlag::O_WRONLY | OFlag::O_CLOEXEC,
                    Mode::empty(),
                ) {
                    let _ = write(kill, b"1");
                    continue;
                }
            }
            let procs = fsutil::read_at(dir, "cgroup.procs").unwrap_or_default();
            for pid in String::from_utf8_lossy(&procs)
                .lines()
                .filter_map(|l| l.trim().parse::<i32>().ok())
            {
                if pid > 1 {
                    let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
                }
            }
        }
    }

    /// Pod PID 1 moves itself into the v1 cgroups (see the module comment); its later
    /// children follow until they join their app's.
    pub fn join_v1_self(&self) {
        for h in self.hierarchies.iter().filter(|h| !h.v2) {
            let _ = std::fs::write(h.pod.join("tasks"), "0");
        }
    }

    pub fn has_v2(&self) -> bool {
        self.hierarchies.iter().any(|h| h.v2)
    }

    /// Moves `pid` (with all its threads) into PID 1's v2 leaf: waits for a grace period.
    pub fn add_v2(&self, pid: Pid) {
        for h in self.hierarchies.iter().filter(|h| h.v2) {
            let _ = std::fs::write(
                h.pod.join(STAGE1_LEAF).join("cgroup.procs"),
                pid.as_raw().to_string(),
            );
        }
    }

    /// What app `name`'s child needs to join its cgroups (once: the files move to the caller).
    pub fn take_join(&mut self, name: &str) -> Join {
        self.apps
            .iter_mut()
            .find(|a| a.name == name)
            .map(|a| std::mem::take(&mut a.join))
            .unwrap_or_default()
    }

    /// Read after the app has exited; usable after pivot_root.
    pub fn stats(&self, name: &str) -> AppStats {
        let mut stats = AppStats::default();
        for (i, dir) in self
            .apps
            .iter()
            .filter(|a| a.name == name)
            .flat_map(|a| &a.dirs)
        {
            stats.collect(self.hierarchies[*i].v2, |file| {
                let raw = fsutil::read_at(dir.as_fd(), file).ok()?;
                Some(String::from_utf8_lossy(&raw).into_owned())
            });
        }
        stats
    }

    /// Shows app `name` its cgroups at `/sys/fs/cgroup` in its root `root` (view.rs). Pod PID
    /// 1, before pivot_root: it reaches the host's cgroup paths in its own mount namespace.
    pub fn show_in_app(&self, root: BorrowedFd<'_>, name: &str) -> Result<()> {
        let shown: Vec<(&str, PathBuf)> = self
            .apps
            .iter()
            .filter(|a| a.name == name)
            .flat_map(|a| &a.dirs)
            .map(|&(i, _)| {
                let h = &self.hierarchies[i];
                (h.inside.as_str(), h.pod.join(name))
            })
            .collect();
        view::mount(root, &shown).map_err(|e| in_app(name, e.to_string()))
    }

    /// Removes every planned pod directory and whatever is below it, children first. After
    /// pod PID 1 has exited the pid namespace is empty, so the apps' cgroups are too; but a
    /// `podlog-stage1 enter` that joined an app's cgroup lives outside it and is only now
    /// seeing its command die: it gets a moment to exit before `destroy` kills what is left.
    fn remove(&self) {
        let mut left: Vec<&Path> = self.planned.iter().map(|h| h.pod.as_path()).collect();
        for _ in 0..REMOVE_TRIES {
            left.retain(|dir| remove_tree(dir).is_err());
            if left.is_empty() {
                return;
            }
            std::thread::sleep(RETRY);
        }
        for dir in left {
            let _ = destroy(dir);
        }
    }
}

impl Drop for Cgroups {
    fn drop(&mut self) {
        self.remove();
    }
}

fn in_app(app: &str, msg: String) -> Error {
    Error::msg(format!("app {app:?}: {msg}"))
}

/// The layout and hierarchies of this process (none where /proc says nothing usable).
fn discover(uuid: &str) -> (Layout, Vec<Hierarchy>) {
    let read = |p: &str| std::fs::read_to_string(p).unwrap_or_default();
    let (layout, hierarchies) = plan(
        &read("/proc/self/cgroup"),
        &read("/proc/self/mountinfo"),
        uuid,
        |own| std::fs::read_to_string(own.join("cgroup.controllers")).unwrap_or_default(),
    );
    if valid_uuid(uuid) {
        (layout, hierarchies)
    } else {
        (layout, Vec::new())
    }
}

/// `mkdir -p` of the pod's cgroup; under v2 with our controllers enabled below it (each
/// alone: the kernel takes a subtree_control line whole or not at all) and PID 1's leaf.
fn make_pod_dir(h: &Hierarchy) -> std::result::Result<(), String> {
    let mkdir =
        |d: &Path| std::fs::create_dir_all(d).map_err(|e| format!("mkdir {}: {e}", d.display()));
    mkdir(&h.pod)?;
    if h.v2 {
        // From the root (`v2_parent`), which has them all; each write that fails (a root that
        // is a cgroup namespace's, with processes: EBUSY) leaves a limit to fail by name.
        let parent = h.pod.parent().expect("<root>/podlog/<uuid>");
        for dir in [parent.parent().expect("<root>/podlog"), parent, &h.pod] {
            for c in &h.controllers {
                let _ = std::fs::write(dir.join("cgroup.subtree_control"), format!("+{c}"));
            }
        }
        mkdir(&h.pod.join(STAGE1_LEAF))?;
    }
    Ok(())
}

/// Makes the app's cgroup and opens its join file (write) and the directory (O_PATH).
fn open_app_dir(
    h: &Hierarchy,
    app: &str,
) -> std::result::Result<((OwnedFd, String), OwnedFd), String> {
    let dir = h.pod.join(app);
    match std::fs::create_dir(&dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(format!("mkdir {}: {e}", dir.display())),
    }
    let dirfd = open(
        &dir,
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| format!("open {}: {}", dir.display(), e.desc()))?;
    let path = dir.join(h.join_file());
    let join = openat(
        &dirfd,
        h.join_file(),
        OFlag::O_WRONLY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| format!("open {}: {}", path.display(), e.desc()))?;
    Ok(((join, path.display().to_string()), dirfd))
}

/// Writes one limit's files in the app's cgroup `dir`.
fn apply(dir: &Path, setting: Setting, v2: bool) -> std::result::Result<(), String> {
    for w in setting.files(v2) {
        let path = dir.join(w.file);
        match std::fs::write(&path, &w.value) {
            Ok(()) => {}
            Err(e) if w.if_present && e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(format!("write {:?} to {}: {e}", w.value, path.display())),
        }
    }
    Ok(())
}

/// Moves the calling single-threaded process into the cgroup `dir` (for `enter`).
pub fn join_self(dir: &Path) {
    let tasks = dir.join("tasks");
    let file = if tasks.exists() {
        tasks
    } else {
        dir.join("cgroup.procs")
    };
    let _ = std::fs::write(file, "0");
}

/// How long `remove` waits for the last processes of a pod's cgroups to go before `destroy`:
/// 1 s, an entered command's `podlog-stage1 enter` exiting after it.
const REMOVE_TRIES: u32 = 50;
/// Between two attempts at rmdir.
const RETRY: Duration = Duration::from_millis(20);

/// Removes a pod cgroup and the cgroups below it, which may still hold processes (a pod
/// whose stage1 was killed): kill them, then rmdir children before parents, retrying (2 s)
/// while the kernel finishes the exits.
pub fn destroy(dir: &Path) -> std::io::Result<()> {
    if !dir.exists() {
        return Ok(());
    }
    // v2 kills the whole subtree at once; v1 needs a signal per process.
    let _ = std::fs::write(dir.join("cgroup.kill"), "1");
    let mut last = Ok(());
    for _ in 0..100 {
        let mut tree = Vec::new();
        subtree(dir, &mut tree);
        for d in &tree {
            if let Ok(procs) = std::fs::read_to_string(d.join("cgroup.procs")) {
                for pid in procs.lines().filter_map(|l| l.trim().parse::<i32>().ok()) {
                    let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
                }
            }
        }
        last = remove_tree(dir);
        if last.is_ok() {
            return last;
        }
        std::thread::sleep(RETRY);
    }
    last
}

/// rmdir of `dir` and the cgroups below it, deepest first; one that is already gone is fine.
fn remove_tree(dir: &Path) -> std::io::Result<()> {
    let mut tree = Vec::new();
    subtree(dir, &mut tree);
    // `subtree` lists parents before their children.
    tree.iter()
        .rev()
        .try_for_each(|d| match std::fs::remove_dir(d) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        })
}

/// `dir` and the cgroups below it, each before its children. (A cgroup's subdirectories are
/// its child cgroups.)
fn subtree(dir: &Path, out: &mut Vec<PathBuf>) {
    out.push(dir.to_path_buf());
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        if e.file_type().is_ok_and(|t| t.is_dir()) {
            subtree(&e.path(), out);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HYBRID_CGROUP: &str = "9:name=systemd:/\n8:pids:/\n4:memory:/sandbox/x\n\
        2:cpuacct:/\n1:cpu:/\n3:cpuset:/\n0::/\n";
    const HYBRID_MOUNTS: &str = "\
        31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755\n\
        32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu\n\
        33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct\n\
        34 31 0:31 / /sys/fs/cgroup/cpuset rw,relatime - cgroup cgroup rw,cpuset\n\
        35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory\n\
        39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids\n\
        40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd\n\
        41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n";

    fn dirs(p: &[Hierarchy]) -> Vec<(&str, bool, Vec<&str>)> {
        p.iter()
            .map(|h| {
                let c = h.controllers.iter().map(String::as_str).collect();
                (h.pod.to_str().unwrap(), h.v2, c)
            })
            .collect()
    }

    #[test]
    fn plans_hybrid() {
        let (layout, p) = plan(HYBRID_CGROUP, HYBRID_MOUNTS, "u1", |_| "hugetlb\n".into());
        assert_eq!(layout, Layout::Hybrid);
        assert_eq!(
            dirs(&p),
            [
                ("/sys/fs/cgroup/pids/podlog/u1", false, vec!["pids"]),
                (
                    "/sys/fs/cgroup/memory/sandbox/x/podlog/u1",
                    false,
                    vec!["memory"]
                ),
                ("/sys/fs/cgroup/cpuacct/podlog/u1", false, vec!["cpuacct"]),
                ("/sys/fs/cgroup/cpu/podlog/u1", false, vec!["cpu"]),
            ]
        );
        let (_, p) = plan(HYBRID_CGROUP, HYBRID_MOUNTS, "u1", |own| {
            assert_eq!(own, Path::new("/sys/fs/cgroup/unified"));
            "hugetlb pids\n".into()
        });
        assert_eq!(
            dirs(&p)[4],
            ("/sys/fs/cgroup/unified/podlog/u1", true, vec!["pids"])
        );
        let inside: Vec<&str> = p.iter().map(|h| h.inside.as_str()).collect();
        assert_eq!(inside, ["pids", "memory", "cpuacct", "cpu", "unified"]);
    }

    #[test]
    fn a_co_mounted_pair_is_one_hierarchy() {
        let mounts = "32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct\n\
            35 31 0:32 /lxc/c1 /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n";
        let own = "5:cpu,cpuacct:/a\n4:memory:/lxc/c1/b\n3:memory:/elsewhere\n";
        let (layout, p) = plan(own, mounts, "u1", |_| unreachable!());
        assert_eq!(layout, Layout::Legacy);
        assert_eq!(
            dirs(&p),
            [
                (
                    "/sys/fs/cgroup/cpu,cpuacct/a/podlog/u1",
                    false,
                    vec!["cpu", "cpuacct"]
                ),
                // The mount shows /lxc/c1 of the hierarchy; /elsewhere is out of its reach.
                ("/sys/fs/cgroup/memory/b/podlog/u1", false, vec!["memory"]),
            ]
        );
        assert_eq!(p[0].inside, "cpu,cpuacct");
    }

    #[test]
    fn plans_unified() {
        let mounts = "25 21 0:23 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw,nsdelegate\n\
            40 21 0:40 / /mnt/other rw - cgroup cgroup rw,memory\n";
        let own = "0::/user.slice/session-1.scope\n";
        let (layout, p) = plan(own, mounts, "u1", |parent| {
            assert_eq!(
                parent,
                Path::new("/sys/fs/cgroup"),
                "the root's controllers"
            );
            "cpuset cpu io memory hugetlb pids rdma misc\n".into()
        });
        assert_eq!(layout, Layout::Unified);
        assert_eq!(
            dirs(&p),
            [(
                "/sys/fs/cgroup/podlog/u1",
                true,
                vec!["pids", "memory", "cpu"]
            )],
            "a session scope cannot delegate: the pod goes below the root"
        );
        assert!(!p[0].delegated);
        assert_eq!(
            p[0].inside, "",
            "the app's cgroup is all of its /sys/fs/cgroup"
        );
        let (_, p) = plan(own, mounts, "u1", |_| String::new());
        assert_eq!(
            p.len(),
            1,
            "the v2 hierarchy without controllers still holds the pod"
        );
        assert_eq!(Layout::Unified.name(), "unified");
    }

    #[test]
    fn v2_pods_stay_below_stage1_only_at_the_root() {
        let root = Path::new("/sys/fs/cgroup");
        assert_eq!(v2_parent(root, root), (root.to_path_buf(), true));
        assert_eq!(
            v2_parent(root, Path::new("/sys/fs/cgroup/")),
            (root.to_path_buf(), true)
        );
        let service = Path::new("/sys/fs/cgroup/system.slice/podlog.service");
        assert_eq!(v2_parent(root, service), (root.to_path_buf(), false));
        let hybrid = Path::new("/sys/fs/cgroup/unified");
        assert_eq!(
            v2_parent(hybrid, &hybrid.join("user.slice")),
            (hybrid.to_path_buf(), false)
        );
        // stage1 at the root of a unified host (`0::/`) keeps its pods below itself.
        let mounts = "25 21 0:23 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n";
        let (_, p) = plan("0::/\n", mounts, "u1", |_| "memory\n".into());
        assert_eq!(
            dirs(&p),
            [("/sys/fs/cgroup/podlog/u1", true, vec!["memory"])]
        );
        assert!(p[0].delegated);
    }

    #[test]
    fn removes_every_planned_directory_and_what_is_below_it() {
        let tmp = tempfile::tempdir().unwrap();
        let hierarchy = |pod: PathBuf| Hierarchy {
            pod,
            v2: true,
            delegated: true,
            controllers: vec![],
            inside: String::new(),
        };
        // One made whole, one whose leaf failed (so not kept), one never made.
        let whole = tmp.path().join("a/podlog/u1");
        let half = tmp.path().join("b/podlog/u1");
        for d in [whole.join("web"), whole.join(STAGE1_LEAF), half.clone()] {
            std::fs::create_dir_all(d).unwrap();
        }
        let planned = vec![
            hierarchy(whole.clone()),
            hierarchy(half.clone()),
            hierarchy(tmp.path().join("c/podlog/u1")),
        ];
        drop(Cgroups {
            layout: Layout::Unified,
            hierarchies: planned[..1].to_vec(),
            planned,
            apps: Vec::new(),
        });
        assert!(!whole.exists() && !half.exists());
        assert!(
            tmp.path().join("a/podlog").exists(),
            "shared with other pods"
        );
    }

    #[test]
    fn nothing_without_mounts() {
        let (layout, p) = plan(HYBRID_CGROUP, "", "u1", |_| String::new());
        assert_eq!((layout, p), (Layout::Legacy, vec![]));
    }

    #[test]
    fn validates_gc_input() {
        assert!(is_pod_cgroup("/sys/fs/cgroup/pids/podlog/u1", "u1"));
        assert!(is_pod_cgroup("/sys/fs/cgroup/memory/a/b/podlog/u1", "u1"));
        assert!(
            is_pod_cgroup("/sys/fs/cgroup/podlog/u1", "u1"),
            "undelegated v2"
        );
        assert!(!is_pod_cgroup("/sys/fs/cgroup/pids/podlog/u2", "u1"));
        assert!(!is_pod_cgroup("/etc/podlog/u1", "u1"));
        assert!(!is_pod_cgroup("/sys/fs/cgroup/../../etc/podlog/u1", "u1"));
        assert!(valid_uuid("0f9c2a1e-1234-4bcd-9abc-0123456789ab"));
        assert!(!valid_uuid("a/b"));
        assert!(!valid_uuid(".."));
    }
}
