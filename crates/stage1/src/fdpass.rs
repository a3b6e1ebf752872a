//! Messages that carry file descriptors over unix sockets (SCM_RIGHTS): the pod's terminal from
//! PID 1 to the supervisor (pty.rs), an app's mounts and cgroups from `app-add` to PID 1
//! (control.rs).

use std::io::{IoSlice, IoSliceMut};
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd, RawFd};

use nix::errno::Errno;
use nix::sys::socket::{recvmsg, sendmsg, ControlMessage, ControlMessageOwned, MsgFlags};

/// The most descriptors one message carries: a mount tree, and per cgroup hierarchy two.
pub const MAX_FDS: usize = 16;

/// Sends `data` (not empty: a receiver tells end-of-file by an empty read) with `fds`.
/// MSG_NOSIGNAL: a peer that went away is an error, never a SIGPIPE.
pub fn send(sock: impl AsFd, data: &[u8], fds: &[impl AsFd]) -> nix::Result<()> {
    let raw: Vec<RawFd> = fds.iter().map(|fd| fd.as_fd().as_raw_fd()).collect();
    let cmsgs: Vec<ControlMessage> = if raw.is_empty() {
        Vec::new()
    } else {
        vec![ControlMessage::ScmRights(&raw)]
    };
    let sent = sendmsg::<()>(
        sock.as_fd().as_raw_fd(),
        &[IoSlice::new(data)],
        &cmsgs,
        MsgFlags::MSG_NOSIGNAL,
        None,
    )?;
    if sent != data.len() {
        return Err(Errno::EMSGSIZE);
    }
    Ok(())
}

/// Receives one message into `buf`: its length and the descriptors it carried (close-on-exec).
/// A message cut short (a bigger one, or more than [`MAX_FDS`] descriptors) is EMSGSIZE, and
/// what it carried is closed.
pub fn receive(sock: impl AsFd, buf: &mut [u8]) -> nix::Result<(usize, Vec<OwnedFd>)> {
    let mut iov = [IoSliceMut::new(buf)];
    let mut space = nix::cmsg_space!([RawFd; MAX_FDS]);
    let msg = recvmsg::<()>(
        sock.as_fd().as_raw_fd(),
        &mut iov,
        Some(&mut space),
        MsgFlags::MSG_CMSG_CLOEXEC,
    )?;
    let mut fds = Vec::new();
    if let Ok(cmsgs) = msg.cmsgs() {
        for cmsg in cmsgs {
            if let ControlMessageOwned::ScmRights(received) = cmsg {
                // SAFETY: the kernel installed these fds in our table for this message, and
                // nothing else owns them.
                fds.extend(
                    received
                        .into_iter()
                        .map(|fd| unsafe { OwnedFd::from_raw_fd(fd) }),
                );
            }
        }
    }
    let cut = MsgFlags::MSG_TRUNC | MsgFlags::MSG_CTRUNC;
    if msg.flags.intersects(cut) {
        return Err(Errno::EMSGSIZE);
    }
    Ok((msg.bytes, fds))
}

#[cfg(test)]
mod tests {
    use nix::sys::socket::{socketpair, AddressFamily, SockFlag, SockType};

    use super::*;

    fn pair() -> (OwnedFd, OwnedFd) {
        socketpair(
            AddressFamily::Unix,
            SockType::SeqPacket,
            None,
            SockFlag::SOCK_CLOEXEC,
        )
        .unwrap()
    }

    #[test]
    fn carries_data_and_descriptors() {
        let (a, b) = pair();
        let file = std::fs::File::open("/proc/self/exe").unwrap();
        send(&a, b"hello", &[&file, &file]).unwrap();
        let mut buf = [0u8; 16];
        let (n, fds) = receive(&b, &mut buf).unwrap();
        assert_eq!(&buf[..n], b"hello");
        assert_eq!(fds.len(), 2);
        let same = |fd: &OwnedFd| nix::sys::stat::fstat(fd).unwrap().st_ino;
        assert_eq!(same(&fds[0]), same(&OwnedFd::from(file)));
        send(&a, b"x", &[] as &[OwnedFd]).unwrap();
        assert_eq!(receive(&b, &mut buf).unwrap().1.len(), 0);
    }

    #[test]
    fn a_message_cut_short_is_refused() {
        let (a, b) = pair();
        send(&a, &[7u8; 64], &[] as &[OwnedFd]).unwrap();
        let mut small = [0u8; 8];
        assert_eq!(receive(&b, &mut small).unwrap_err(), Errno::EMSGSIZE);
        drop(a);
        assert_eq!(receive(&b, &mut small).unwrap().0, 0, "end of file");
    }
}
