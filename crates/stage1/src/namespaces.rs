//! Namespace creation (init) and joining (enter).

use std::os::fd::{AsFd, AsRawFd, OwnedFd};

use nix::errno::Errno;
use nix::sched::{setns, unshare, CloneFlags};
use nix::sys::socket::{socket, AddressFamily, SockFlag, SockType};

use crate::cli::NetMode;
use crate::error::{Context, Result};

/// The namespaces pod PID 1 creates for itself. The pid namespace is not among them: the
/// supervisor unshares it before forking, because only children enter a new pid namespace.
/// The mount namespace is PID 1's own and not the supervisor's, so pivot_root (which moves
/// the root of every process in the namespace) never touches the supervisor. The cgroup
/// namespace hides the host's cgroup paths from /proc/self/cgroup.
pub fn pod_flags(net: NetMode) -> CloneFlags {
    let mut flags = CloneFlags::CLONE_NEWNS
        | CloneFlags::CLONE_NEWUTS
        | CloneFlags::CLONE_NEWIPC
        | CloneFlags::CLONE_NEWCGROUP;
    if net == NetMode::None {
        flags |= CloneFlags::CLONE_NEWNET;
    }
    flags
}

pub fn unshare_pod(net: NetMode) -> Result<()> {
    unshare(pod_flags(net)).ctx("unshare mount/uts/ipc/cgroup/net namespaces")
}

/// `--net netns`: joins the namespace `netns create` kept (see netns.rs).
pub fn join_net(ns: OwnedFd) -> Result<()> {
    setns(ns, CloneFlags::CLONE_NEWNET).ctx("setns into the pod's kept network namespace")
}

/// Joins all of the pod's namespaces at once through a pidfd (Linux 5.8): atomic, and the
/// pid cannot have been recycled. Joining the pid namespace takes effect for children only.
pub fn join_pod(pidfd: impl AsFd) -> Result<()> {
    let flags = CloneFlags::CLONE_NEWNS
        | CloneFlags::CLONE_NEWUTS
        | CloneFlags::CLONE_NEWIPC
        | CloneFlags::CLONE_NEWCGROUP
        | CloneFlags::CLONE_NEWNET
        | CloneFlags::CLONE_NEWPID;
    setns(pidfd, flags).ctx("setns into the pod's namespaces")
}

/// A new network namespace starts with `lo` down.
pub fn loopback_up() -> Result<()> {
    let sock = socket(
        AddressFamily::Inet,
        SockType::Datagram,
        SockFlag::SOCK_CLOEXEC,
        None,
    )
    .ctx("socket")?;
    // SAFETY: ifreq is plain data; all-zero is a valid value.
    let mut ifr: libc::ifreq = unsafe { std::mem::zeroed() };
    for (d, s) in ifr.ifr_name.iter_mut().zip(b"lo\0") {
        *d = *s as libc::c_char;
    }
    // SAFETY: SIOCGIFFLAGS/SIOCSIFFLAGS read and write an ifreq we own, through a valid socket.
    let r = unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCGIFFLAGS, &mut ifr) };
    Errno::result(r).ctx("get flags of lo")?;
    // SAFETY: ifru_flags is the member SIOCGIFFLAGS filled in.
    unsafe { ifr.ifr_ifru.ifru_flags |= (libc::IFF_UP | libc::IFF_RUNNING) as libc::c_short };
    // SAFETY: as above.
    let r = unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCSIFFLAGS, &ifr) };
    Errno::result(r).ctx("bring lo up")?;
    Ok(())
}
