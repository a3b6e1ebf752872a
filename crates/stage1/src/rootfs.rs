//! Builds the pod's file system tree in pod PID 1's private mount namespace:
//!
//! ```text
//! <pod>/stage1/rootfs           tmpfs, becomes / of the namespace (pivot_root)
//!   opt/stage2/<app>/rootfs     overlay: lower <tree-store>/<treeStoreID>/rootfs or its layers (lowers.rs),
//!                               upper/work <pod>/overlay/<treeStoreID>/{upper,work}/<app>
//!     proc sys dev dev/pts dev/shm, and read-only or masked kernel files
//! ```
//!
//! Image-controlled paths are opened with RESOLVE_IN_ROOT (see fsutil), or checked not to be
//! symlinks before something is mounted on them.

use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{readlinkat, AtFlags, OFlag};
use nix::mount::{umount2, MntFlags, MsFlags};
use nix::sys::stat::{fstatat, mkdirat, Mode, SFlag};

use crate::dev;
use crate::error::{bail, Context, Result};
use crate::etc::EtcFiles;
use crate::fsutil;
use crate::lowers;
use crate::manifest::PodApp;
use crate::mounts;
use crate::userns::{as_pod_root, Ownership, UserNs};
use crate::volumes;

/// Where an app's rootfs lives once the stage1 tmpfs is `/`.
pub fn app_root_after_pivot(app: &str) -> String {
    format!("/opt/stage2/{app}/rootfs")
}

/// The pod directory's layout, relative to the pod directory.
pub fn overlay_upper(app: &PodApp) -> String {
    format!("overlay/{}/upper/{}", app.tree_store_id, app.name)
}
pub fn overlay_work(app: &PodApp) -> String {
    format!("overlay/{}/work/{}", app.tree_store_id, app.name)
}
/// `--no-overlay`: the copy of the app's tree that stage0 made, used instead of an overlay.
pub fn copied_root(app: &PodApp) -> String {
    format!("apps/{}/rootfs", app.name)
}

/// The app's root that stage0 copied (`--no-overlay`), opened as a plain directory (no symlink on
/// the way); None when the app runs on an overlay.
pub fn copied_root_fd(pod: impl AsFd, app: &PodApp) -> Result<Option<OwnedFd>> {
    match fsutil::open_plain_dir(pod, &copied_root(app)) {
        Ok(fd) => Ok(Some(fd)),
        Err(Errno::ENOENT) => Ok(None),
        Err(e) => {
            Err(e).with_ctx(|| format!("app {:?}: its copied root {}", app.name, copied_root(app)))
        }
    }
}
pub const STAGE1_ROOT: &str = "stage1/rootfs";

/// Kernel files an app may read but not write (runc's and youki's default list).
const READONLY: [&str; 5] = [
    "proc/bus",
    "proc/fs",
    "proc/irq",
    "proc/sys",
    "proc/sysrq-trigger",
];
/// Kernel files and directories an app may not see at all (same source).
const MASKED: [&str; 11] = [
    "proc/acpi",
    "proc/asound",
    "proc/kcore",
    "proc/keys",
    "proc/latency_stats",
    "proc/timer_list",
    "proc/timer_stats",
    "proc/sched_debug",
    "proc/scsi",
    "sys/firmware",
    "sys/devices/virtual/powercap",
];

pub struct PodFs<'a> {
    pub pod_dir: &'a Path,
    pub tree_store: &'a Path,
    pub etc: EtcFiles<'a>,
    /// `--private-users`: the apps' user namespace.
    pub users: Option<&'a UserNs>,
    /// Kernel files read-only or masked (not with --disable-paths).
    pub mask_paths: bool,
}

impl PodFs<'_> {
    /// Mounts the tmpfs that becomes the namespace's `/`; returns its path.
    pub fn mount_stage1_root(&self) -> Result<PathBuf> {
        let root = self.pod_dir.join(STAGE1_ROOT);
        mounts::fs(
            "tmpfs",
            &root,
            "tmpfs",
            MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
            Some("mode=755,size=1024k"),
        )?;
        Ok(root)
    }

    /// Sets up one app's rootfs under `stage1_root`; returns an O_PATH fd on it, which stays
    /// valid after pivot_root, for the credential and exec look-ups.
    pub fn setup_app(&self, stage1_root: &Path, app: &PodApp) -> Result<OwnedFd> {
        let rel = app_root_after_pivot(&app.name);
        let root = stage1_root.join(rel.trim_start_matches('/'));
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o755)
            .create(&root)
            .with_ctx(|| format!("mkdir {}", root.display()))?;
        // Opened by path in this mount namespace: an fd from before it names the host's mount,
        // which a bind refuses as its source.
        let pod = nix::fcntl::open(
            self.pod_dir,
            OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .with_ctx(|| format!("open {}", self.pod_dir.display()))?;
        let idmapped = self.users.filter(|u| u.range.ownership == Ownership::Idmap);
        if let Some(copy) = copied_root_fd(&pod, app)? {
            let copy = PathBuf::from(fsutil::fd_path(&copy));
            match idmapped {
                Some(ns) => ns.bind_idmapped(&copy, &root),
                None => mounts::bind(&copy, &root),
            }
            .with_ctx(|| format!("app {:?}", app.name))?;
            debug!("app {:?}: its copied root bound", app.name);
        } else {
            if self.users.is_some() && idmapped.is_none() {
                bail!(
                    "app {:?}: its files are shifted to the pod's users only in a copy, and the pod has none",
                    app.name
                );
            }
            let lowers = lowers::of_tree(self.tree_store, &app.tree_store_id)?;
            let upper = self.pod_dir.join(overlay_upper(app));
            let work = self.pod_dir.join(overlay_work(app));
            match idmapped {
                Some(ns) => overlay_idmapped(ns, stage1_root, &lowers, &upper, &work, &root),
                None => mounts::overlay(&lowers, &upper, &work, &root),
            }
            .with_ctx(|| format!("app {:?}", app.name))?;
            debug!("app {:?}: overlay mounted", app.name);
        }
        let rootfd = nix::fcntl::open(
            &root,
            OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .with_ctx(|| format!("open {}", root.display()))?;

        let kernel = MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
        let range = self.users.map(|u| &u.range);
        let plain_dir = |name| as_pod_root(range, || ensure_plain_dir(&rootfd, name, &app.name));
        plain_dir("dev")?;
        dev::setup(&root.join("dev"), range)?;
        plain_dir("proc")?;
        mounts::fs("proc", &root.join("proc"), "proc", kernel, None)?;
        plain_dir("sys")?;
        mounts::fs(
            "sysfs",
            &root.join("sys"),
            "sysfs",
            kernel | MsFlags::MS_RDONLY,
            None,
        )?;
        for p in READONLY.iter().filter(|_| self.mask_paths) {
            let target = root.join(p);
            if target.exists() {
                mounts::bind_readonly(&target, kernel)?;
            }
        }
        let null = root.join("dev/null");
        for p in MASKED.iter().filter(|_| self.mask_paths) {
            let target = root.join(p);
            match std::fs::metadata(&target) {
                Ok(m) if m.is_dir() => mounts::mask_dir(&target)?,
                Ok(_) => mounts::mask_file(&null, &target)?,
                Err(_) => {}
            }
        }
        debug!("app {:?}: /dev, /proc, /sys mounted", app.name);
        as_pod_root(range, || self.write_etc(&rootfd, &app.name))?;
        // Last: a volume on /etc or /dev is the user's choice, and nothing of stage1's lands in it.
        volumes::mount_all(self.pod_dir, &rootfd, &app.name, &app.volumes, range)?;
        if app.read_only_root {
            // The root mount alone: its volumes, /dev and /proc are mounts of their own.
            // mount_setattr adds the one flag; a remount would reset nosuid and the like.
            crate::sys::change_mount_attrs(rootfd.as_fd(), libc::MOUNT_ATTR_RDONLY, 0)
                .with_ctx(|| format!("app {:?}: make its root read-only", app.name))?;
        }
        Ok(rootfd)
    }

    /// `/etc/hosts` and `/etc/resolv.conf` (see etc): written files land in the app's upper
    /// dir, and the image stays untouched.
    fn write_etc(&self, rootfd: &OwnedFd, app: &str) -> Result<()> {
        ensure_plain_dir(rootfd, "etc", app)?;
        let etc = fsutil::open_in_root(rootfd, "etc", OFlag::O_DIRECTORY | OFlag::O_RDONLY, 0)
            .with_ctx(|| format!("app {app:?}: open the image's /etc"))?;
        self.etc.populate(&etc, app)
    }
}

/// The app's overlay over idmapped lower dirs: one idmapped mount of the directory that holds
/// them all (the tree, or the shared layers), in the stage1 root, given to overlayfs, which keeps
/// its own private copy of each layer's mount, so the staging mount goes at once. The upper dir
/// is not idmapped: what the pod writes is owned by the pod's host ids there, as on a host volume.
fn overlay_idmapped(
    ns: &UserNs,
    stage1_root: &Path,
    lowers: &lowers::Lowers,
    upper: &Path,
    work: &Path,
    target: &Path,
) -> Result<()> {
    let staging = stage1_root.join("idmapped-lowers");
    std::fs::DirBuilder::new()
        .mode(0o700)
        .create(&staging)
        .with_ctx(|| format!("mkdir {}", staging.display()))?;
    ns.bind_idmapped(&lowers.dir, &staging)?;
    let staged = lowers::Lowers {
        dir: staging.clone(),
        names: lowers.names.clone(),
    };
    let mounted = mounts::overlay(&staged, upper, work, target);
    umount2(&staging, MntFlags::MNT_DETACH).with_ctx(|| format!("detach {}", staging.display()))?;
    std::fs::remove_dir(&staging).with_ctx(|| format!("rmdir {}", staging.display()))?;
    mounted
}

/// Makes sure `name` (a top-level entry of the rootfs) is a real directory before a file
/// system is mounted on it or files are written in it: mount(2) follows symlinks, and
/// `/proc -> /etc` in an image must not make stage1 mount over a host path; `/etc`, where
/// stage1 writes hosts and resolv.conf, is held to the same rule.
fn ensure_plain_dir(rootfd: &OwnedFd, name: &str, app: &str) -> Result<()> {
    match mkdirat(rootfd, name, Mode::from_bits_truncate(0o755)) {
        Ok(()) | Err(Errno::EEXIST) => {}
        Err(e) => return Err(e).with_ctx(|| format!("app {app:?}: mkdir /{name}")),
    }
    let st =
        fstatat(rootfd, name, AtFlags::AT_SYMLINK_NOFOLLOW).with_ctx(|| format!("stat /{name}"))?;
    match SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT {
        SFlag::S_IFDIR => {}
        SFlag::S_IFLNK => {
            let target = readlinkat(rootfd, name).unwrap_or_default();
            bail!(
                "app {app:?}: the image's /{name} is a symlink (to {:?}); stage1 needs a real \
                 directory there and does not follow it",
                target.to_string_lossy()
            );
        }
        _ => bail!("app {app:?}: the image's /{name} is not a directory"),
    }
    Ok(())
}
