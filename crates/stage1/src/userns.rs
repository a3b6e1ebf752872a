//! `--private-users`: the pod's apps run in a user namespace whose ids 0..count are the host's
//! shift..shift+count, so the pod's root is an unprivileged uid on the host (rkt's shifted range).
//!
//! Only the apps (and `enter`) join it. PID 1 stays in the host's user namespace, with the
//! privileges it needs to build the pod's mounts and write its status; the pod's other namespaces
//! are owned by the host's, so the pod's root cannot change its mounts, hostname or network.
//!
//! The apps' files must be the pod root's. Either their trees are mounted through idmapped mounts
//! (Linux 5.12; the file system must support them), which show a file owned by 0 on disk as owned
//! by the range's start, or stage0 copied each tree with every owner shifted (`Ownership::Chown`),
//! bound as it is. What stage1 itself writes in an app's root is written as the pod's root
//! (`as_pod_root`), so it lands with the owner the rest of the tree has.

use std::ffi::CString;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use nix::fcntl::{open, OFlag};
use nix::sched::{setns, unshare, CloneFlags};
use nix::sys::stat::Mode;
use nix::sys::wait::waitpid;
use nix::unistd::{fork, pipe2, read, setfsgid, setfsuid, setresgid, setresuid, ForkResult};
use nix::unistd::{Gid, Pid, Uid};

use crate::error::{bail, Context, Result};
use crate::sys;

/// How the apps' trees come to be owned by the pod's users.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ownership {
    /// Mounted through idmapped mounts: the image on disk is untouched.
    Idmap,
    /// stage0 made a copy with every owner shifted, which stage1 binds as it is.
    Chown,
}

/// The pod's id range: in-pod ids 0..count are host ids shift..shift+count, for users and groups.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IdRange {
    pub shift: u32,
    pub count: u32,
    pub ownership: Ownership,
}

impl IdRange {
    /// `SHIFT:COUNT:idmap|chown`, as stage0 passes `--private-users`.
    pub fn parse(value: &str) -> Result<Self> {
        let parts: Vec<&str> = value.split(':').collect();
        let [shift, count, ownership] = parts[..] else {
            bail!("--private-users: expected SHIFT:COUNT:idmap|chown, got {value:?}");
        };
        let number = |s: &str, what: &str| {
            s.parse::<u32>()
                .map_err(|_| crate::error::Error::msg(format!("--private-users: bad {what} {s:?}")))
        };
        let (shift, count) = (number(shift, "shift")?, number(count, "count")?);
        // The host's root, and ids past u32 (the last, -1, means "unchanged" to the kernel).
        if shift == 0 || count == 0 || u64::from(shift) + u64::from(count) > u64::from(u32::MAX) {
            bail!("--private-users: {shift}:{count} is not a range of host ids above 0");
        }
        let ownership = match ownership {
            "idmap" => Ownership::Idmap,
            "chown" => Ownership::Chown,
            other => bail!("--private-users: ownership is idmap or chown, got {other:?}"),
        };
        Ok(Self {
            shift,
            count,
            ownership,
        })
    }

    /// The host id of in-pod id `id`, if the range has it.
    pub fn host_id(&self, id: u32) -> Option<u32> {
        (id < self.count).then(|| self.shift + id)
    }

    fn map_line(&self) -> String {
        format!("0 {} {}\n", self.shift, self.count)
    }
}

/// A user namespace with the range mapped, held by an fd (no process lives in it until an app
/// joins).
pub struct UserNs {
    fd: OwnedFd,
    pub range: IdRange,
}

impl UserNs {
    /// A child unshares a user namespace; we (privileged in the parent namespace) write its maps
    /// and keep it by its fd; the child exits.
    pub fn create(range: IdRange) -> Result<Self> {
        let (ready_r, ready_w) = pipe2(OFlag::O_CLOEXEC).ctx("pipe")?;
        let (done_r, done_w) = pipe2(OFlag::O_CLOEXEC).ctx("pipe")?;
        // SAFETY: single-threaded; the child only makes system calls before _exit.
        match unsafe { fork() }.ctx("fork")? {
            ForkResult::Child => {
                drop(ready_r);
                drop(done_w);
                let ok = unshare(CloneFlags::CLONE_NEWUSER).is_ok();
                let _ = nix::unistd::write(&ready_w, if ok { b"1" } else { b"!" });
                // Until the parent has the namespace: read returns 0 when done_w is closed.
                let _ = read(&done_r, &mut [0u8; 1]);
                // SAFETY: ends the helper without running anything of the parent's.
                unsafe { libc::_exit(0) }
            }
            ForkResult::Parent { child } => {
                drop(ready_w);
                drop(done_r);
                let made = Self::adopt(child, range, &ready_r);
                drop(done_w);
                let _ = waitpid(child, None);
                made
            }
        }
    }

    fn adopt(child: Pid, range: IdRange, ready: &OwnedFd) -> Result<Self> {
        let mut byte = [0u8; 1];
        if read(ready, &mut byte) != Ok(1) || byte[0] != b'1' {
            bail!("could not create a user namespace (unshare CLONE_NEWUSER failed)");
        }
        let proc = format!("/proc/{child}");
        for map in ["uid_map", "gid_map"] {
            std::fs::write(format!("{proc}/{map}"), range.map_line())
                .with_ctx(|| format!("write the pod's {map} ({})", range.map_line().trim()))?;
        }
        let fd = open(
            format!("{proc}/ns/user").as_str(),
            OFlag::O_RDONLY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .ctx("open the user namespace")?;
        Ok(Self { fd, range })
    }

    pub fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// Mounts `source` on `target` through an idmapped mount: a file owned by id N on disk is
    /// seen, and written, as owned by the host's shift+N (the pod's N).
    pub fn bind_idmapped(&self, source: &Path, target: &Path) -> Result<()> {
        let tree = sys::open_tree_clone(&cstr(source)?, false)
            .with_ctx(|| format!("clone the mount at {}", source.display()))?;
        idmap(tree.as_fd(), self.fd())
            .with_ctx(|| format!("idmap the mount of {}", source.display()))?;
        sys::move_mount(tree.as_fd(), &cstr(target)?)
            .with_ctx(|| format!("mount {} on {}", source.display(), target.display()))
    }
}

/// Makes the detached mount `tree` show ids through the user namespace `ns`.
fn idmap(tree: BorrowedFd<'_>, ns: BorrowedFd<'_>) -> nix::Result<()> {
    let attr = libc::mount_attr {
        attr_set: libc::MOUNT_ATTR_IDMAP,
        attr_clr: 0,
        propagation: 0,
        userns_fd: ns.as_raw_fd() as u64,
    };
    sys::mount_setattr(tree, false, &attr)
}

fn cstr(path: &Path) -> Result<CString> {
    CString::new(path.as_os_str().as_bytes())
        .map_err(|_| crate::error::Error::msg(format!("{path:?} has a NUL byte")))
}

/// The user namespace of the pod's apps (`enter`), found through the children of pod PID 1 (host
/// pid `pid1`), which stays in the host's: None when they run in ours (no --private-users).
pub fn of_pod_apps(pid1: Pid) -> Result<Option<OwnedFd>> {
    let ours = nix::sys::stat::stat("/proc/self/ns/user").ctx("stat our user namespace")?;
    let children = std::fs::read_to_string(format!("/proc/{pid1}/task/{pid1}/children"))
        .ctx("list the pod's processes")?;
    for child in children.split_whitespace() {
        let Ok(fd) = open(
            format!("/proc/{child}/ns/user").as_str(),
            OFlag::O_RDONLY | OFlag::O_CLOEXEC,
            Mode::empty(),
        ) else {
            continue; // gone since
        };
        let st = nix::sys::stat::fstat(&fd).ctx("stat a user namespace")?;
        if (st.st_dev, st.st_ino) != (ours.st_dev, ours.st_ino) {
            return Ok(Some(fd));
        }
    }
    Ok(None)
}

/// Makes this process (forked, single-threaded, not yet in another root) the pod's root: in the
/// namespace, then uid and gid 0 there, which are the range's start on the host.
pub fn join(ns: BorrowedFd<'_>) -> Result<()> {
    setns(ns, CloneFlags::CLONE_NEWUSER).ctx("join the pod's user namespace")?;
    setresgid(Gid::from_raw(0), Gid::from_raw(0), Gid::from_raw(0)).ctx("setresgid 0")?;
    setresuid(Uid::from_raw(0), Uid::from_raw(0), Uid::from_raw(0)).ctx("setresuid 0")
}

/// Runs `f` with the file system ids of the pod's root, when the pod has its own users: what it
/// creates is owned by the pod's root, whichever way the tree is mounted (an idmapped mount
/// refuses a create by an id it does not map). Only for work relative to fds in the app's root:
/// without CAP_DAC_OVERRIDE (dropped with the fsuid), host paths are closed to it.
pub fn as_pod_root<T>(range: Option<&IdRange>, f: impl FnOnce() -> Result<T>) -> Result<T> {
    let Some(range) = range else {
        return f();
    };
    setfsgid(Gid::from_raw(range.shift));
    setfsuid(Uid::from_raw(range.shift));
    let r = f();
    // Back to 0 gives the file system capabilities back from the permitted set.
    setfsuid(Uid::from_raw(0));
    setfsgid(Gid::from_raw(0));
    r
}

/// Whether the file system of `dir` supports idmapped mounts: a detached idmapped clone of it,
/// made in a mount namespace of our own and thrown away. `Err(reason)` when it does not.
pub fn probe_idmap(dir: &Path) -> Result<std::result::Result<(), String>> {
    unshare(CloneFlags::CLONE_NEWNS).ctx("unshare the mount namespace")?;
    crate::mounts::make_everything_private()?;
    // A range no file is owned by: the probe writes nothing.
    let ns = UserNs::create(IdRange {
        shift: u32::MAX - 1,
        count: 1,
        ownership: Ownership::Idmap,
    })?;
    let tree = sys::open_tree_clone(&cstr(dir)?, false)
        .with_ctx(|| format!("clone the mount at {}", dir.display()))?;
    Ok(idmap(tree.as_fd(), ns.fd()).map_err(|e| {
        format!(
            "the file system of {} cannot be idmapped: {}",
            dir.display(),
            e.desc()
        )
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_parse_and_map() {
        let r = IdRange::parse("524288:65536:idmap").unwrap();
        assert_eq!(
            r,
            IdRange {
                shift: 524288,
                count: 65536,
                ownership: Ownership::Idmap
            }
        );
        assert_eq!(r.map_line(), "0 524288 65536\n");
        assert_eq!(r.host_id(0), Some(524288));
        assert_eq!(r.host_id(65535), Some(589823));
        assert_eq!(r.host_id(65536), None);
        assert_eq!(
            IdRange::parse("65536:65536:chown").unwrap().ownership,
            Ownership::Chown
        );
        for bad in [
            "",
            "1:2",
            "0:65536:idmap",
            "65536:0:idmap",
            "4294901760:65536:idmap",
            "x:1:idmap",
            "65536:65536:copy",
            "65536:65536:idmap:x",
        ] {
            assert!(IdRange::parse(bad).is_err(), "{bad:?}");
        }
    }
}
