//! How the `app-*` entrypoints reach the PID 1 of a mutable pod: a unix socket, `<pod>/stage1/control`
//! (mode 0600, root's; a peer that is not uid 0 is refused), bound by the supervisor before it
//! forks PID 1, which keeps the listening socket (the pod directory has no path after its
//! pivot_root). One request per connection, one message each way (SOCK_SEQPACKET keeps them
//! whole): a JSON request, with the descriptors `add` carries, then a JSON reply, sent when the
//! request is done, which for `start` and `stop` may be later. No client holds PID 1 for
//! long: the listening socket is non-blocking, a request must arrive within [`REQUEST_TIMEOUT`]
//! of the connection, and replies are sent without waiting (a client gone is a reply lost).

use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::Path;
use std::time::Duration;

use nix::errno::Errno;
use nix::fcntl::AtFlags;
use nix::sys::socket::{
    accept4, bind, connect, getsockopt, listen, setsockopt, socket, sockopt, AddressFamily,
    Backlog, SockFlag, SockType, UnixAddr,
};
use nix::sys::stat::{fchmodat, fstatat, FchmodatFlags, Mode};
use nix::sys::time::TimeVal;
use nix::unistd::{unlinkat, UnlinkatFlags};
use serde::{Deserialize, Serialize};

use crate::error::{bail, Context, Result};
use crate::fdpass;
use crate::manifest::is_ac_name;

/// In the pod directory.
pub const SOCKET: &str = "stage1/control";
/// rkt's `app stop` code for an app that is not running (systemctl's "unit not active").
pub const NOT_RUNNING: i32 = 5;
/// `app-rm` of an app that runs, or whose post-stop handler still runs (EBUSY's number).
pub const BUSY: i32 = 16;
/// How long PID 1 waits for a request once a client has connected.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(1);
/// A request or a reply is far smaller.
const MAX_MESSAGE: usize = 4096;

#[derive(Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "kebab-case", deny_unknown_fields)]
pub enum Request {
    /// Whether the app is in the pod (added): the reply's code is 0 if it is, else 1.
    Has {
        app: String,
    },
    /// Attaches the app's root, a detached mount tree (the first descriptor), and takes its
    /// cgroups: for each index of the pod's hierarchies in `cgroups`, the app's join file and
    /// directory (two descriptors); `limited`: the app has limits, and must join them.
    Add {
        app: String,
        cgroups: Vec<usize>,
        limited: bool,
    },
    Start {
        app: String,
    },
    Stop {
        app: String,
        force: bool,
    },
    Rm {
        app: String,
    },
}

impl Request {
    pub fn app(&self) -> &str {
        match self {
            Request::Has { app }
            | Request::Add { app, .. }
            | Request::Start { app }
            | Request::Stop { app, .. }
            | Request::Rm { app } => app,
        }
    }

    /// How many descriptors come with it.
    fn fds(&self) -> usize {
        match self {
            Request::Add { cgroups, .. } => 1 + 2 * cgroups.len(),
            _ => 0,
        }
    }
}

#[derive(Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Reply {
    /// The entrypoint's exit code: 0, [`NOT_RUNNING`], [`BUSY`], an app's or a handler's code,
    /// or 254.
    pub code: i32,
    /// Said on stderr when the code is not 0.
    pub message: String,
}

impl Reply {
    pub fn ok() -> Self {
        Reply::new(0, "")
    }

    pub fn new(code: i32, message: impl Into<String>) -> Self {
        Reply {
            code,
            message: message.into(),
        }
    }
}

pub fn encode<T: Serialize>(msg: &T) -> Vec<u8> {
    serde_json::to_vec(msg).expect("requests and replies serialize")
}

/// A request as PID 1 takes it: well-formed, for an app with a valid name, with exactly the
/// descriptors it needs.
pub fn decode_request(raw: &[u8], fds: usize) -> Result<Request> {
    let req: Request = serde_json::from_slice(raw).ctx("malformed request")?;
    if !is_ac_name(req.app()) {
        bail!(
            "malformed request: app name {:?} is not an ACName",
            req.app()
        );
    }
    if fds != req.fds() {
        bail!(
            "malformed request: {} descriptors, {} expected",
            fds,
            req.fds()
        );
    }
    Ok(req)
}

pub fn decode_reply(raw: &[u8]) -> Result<Reply> {
    serde_json::from_slice(raw).ctx("malformed reply from pod PID 1")
}

fn new_socket(flags: SockFlag) -> Result<OwnedFd> {
    socket(
        AddressFamily::Unix,
        SockType::SeqPacket,
        flags | SockFlag::SOCK_CLOEXEC,
        None,
    )
    .ctx("socket")
}

/// The socket's address through `<pod>/stage1` open as `dir`: a pod directory's path may be too
/// long for a unix socket's (108 bytes).
fn address(dir: &OwnedFd) -> Result<UnixAddr> {
    let name = Path::new(SOCKET).file_name().expect("a file name");
    UnixAddr::new(&Path::new(&crate::fsutil::fd_path(dir)).join(name)).ctx("socket address")
}

fn stage1_dir(pod: impl AsFd) -> Result<OwnedFd> {
    let dir = Path::new(SOCKET).parent().expect("a directory");
    crate::fsutil::open_plain_dir(pod, &dir.to_string_lossy()).ctx("open <pod>/stage1")
}

/// The supervisor (host namespaces): binds and listens on `<pod>/stage1/control`, replacing one
/// an earlier run left. Non-blocking: PID 1 accepts when poll says a client waits.
pub fn listen_at(pod: impl AsFd) -> Result<OwnedFd> {
    let dir = stage1_dir(pod)?;
    let name = "control";
    match unlinkat(&dir, name, UnlinkatFlags::NoRemoveDir) {
        Ok(()) | Err(Errno::ENOENT) => {}
        Err(e) => return Err(e).ctx(format!("remove a stale <pod>/{SOCKET}")),
    }
    let sock = new_socket(SockFlag::SOCK_NONBLOCK)?;
    bind(sock.as_raw_fd(), &address(&dir)?).ctx(format!("bind <pod>/{SOCKET}"))?;
    // Before listen: until then a connect is refused, so nobody connects through a wider mode.
    fchmodat(
        &dir,
        name,
        Mode::from_bits_truncate(0o600),
        FchmodatFlags::FollowSymlink,
    )
    .ctx(format!("chmod <pod>/{SOCKET}"))?;
    listen(&sock, Backlog::new(16).ctx("backlog")?).ctx(format!("listen on <pod>/{SOCKET}"))?;
    Ok(sock)
}

/// Removes the socket once the pod has ended: a later connect finds no pod rather than a
/// refusal.
pub fn remove_at(pod: impl AsFd) {
    let _ = unlinkat(pod, SOCKET, UnlinkatFlags::NoRemoveDir);
}

/// A request received by PID 1, with the connection its reply goes to.
pub struct Incoming {
    pub conn: OwnedFd,
    pub request: Request,
    pub fds: Vec<OwnedFd>,
}

/// PID 1: takes one waiting client's request, if any. A client that is not root, sends
/// nothing in time, or sends a malformed request is answered (if it can be) and dropped.
pub fn accept(listener: impl AsFd) -> Option<Incoming> {
    let raw = accept4(listener.as_fd().as_raw_fd(), SockFlag::SOCK_CLOEXEC).ok()?;
    // SAFETY: accept4 returned a new descriptor that nothing else owns.
    let conn = unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(raw) };
    match receive_request(&conn) {
        Ok((request, fds)) => Some(Incoming { conn, request, fds }),
        Err(e) => {
            answer(
                &conn,
                &Reply::new(crate::error::STAGE1_FAILURE, e.to_string()),
            );
            None
        }
    }
}

fn receive_request(conn: &OwnedFd) -> Result<(Request, Vec<OwnedFd>)> {
    let peer = getsockopt(conn, sockopt::PeerCredentials).ctx("SO_PEERCRED")?;
    if peer.uid() != 0 {
        bail!("refused: only root may control a pod");
    }
    let timeout = TimeVal::new(REQUEST_TIMEOUT.as_secs() as _, 0);
    setsockopt(conn, sockopt::ReceiveTimeout, &timeout).ctx("SO_RCVTIMEO")?;
    let mut buf = vec![0u8; MAX_MESSAGE];
    let (n, fds) = fdpass::receive(conn, &mut buf).ctx("receive a request")?;
    Ok((decode_request(&buf[..n], fds.len())?, fds))
}

/// Sends `reply` without waiting: a client that went away misses it.
pub fn answer(conn: impl AsFd, reply: &Reply) {
    if let Err(e) = fdpass::send(conn, &encode(reply), &[] as &[OwnedFd]) {
        debug!("control: reply lost: {e}");
    }
}

/// An entrypoint: sends `request` (with `fds`) to the PID 1 of the running mutable pod at
/// `pod_dir` and waits for its reply.
pub fn call(pod_dir: &Path, request: &Request, fds: &[OwnedFd]) -> Result<Reply> {
    crate::lock::running_pod_pid1(pod_dir)?;
    send(pod_dir, request, fds)
}

/// [`call`] without its check that the pod runs, which looks its PID 1 up by its host pid: for
/// a process in the pod's pid namespace (`app-add`'s builder), which the caller checked before.
pub fn send(pod_dir: &Path, request: &Request, fds: &[OwnedFd]) -> Result<Reply> {
    let pod = crate::lock::open_pod_dir(pod_dir)?.1;
    let dir = stage1_dir(&pod)?;
    let st = match fstatat(&dir, "control", AtFlags::AT_SYMLINK_NOFOLLOW) {
        Err(Errno::ENOENT) => bail!(
            "the pod is not mutable: it has no control socket <pod>/{SOCKET} (init --mutable makes one)"
        ),
        r => r.ctx(format!("stat <pod>/{SOCKET}"))?,
    };
    if st.st_mode & libc::S_IFMT != libc::S_IFSOCK {
        bail!("<pod>/{SOCKET} is not a socket");
    }
    let sock = new_socket(SockFlag::empty())?;
    connect(sock.as_raw_fd(), &address(&dir)?).ctx(format!("connect to <pod>/{SOCKET}"))?;
    fdpass::send(&sock, &encode(request), fds).ctx("send the request to pod PID 1")?;
    let mut buf = vec![0u8; MAX_MESSAGE];
    let (n, _) = fdpass::receive(&sock, &mut buf).ctx("receive pod PID 1's reply")?;
    if n == 0 {
        bail!("pod PID 1 closed the connection without a reply (the pod ended?)");
    }
    decode_reply(&buf[..n])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_round_trip() {
        let reqs = [
            Request::Has { app: "web".into() },
            Request::Add {
                app: "web".into(),
                cgroups: vec![0, 2],
                limited: true,
            },
            Request::Start { app: "a-1".into() },
            Request::Stop {
                app: "web".into(),
                force: true,
            },
            Request::Rm { app: "web".into() },
        ];
        for r in reqs {
            let fds = r.fds();
            assert_eq!(decode_request(&encode(&r), fds).unwrap(), r);
        }
        let add = br#"{"op":"add","app":"web","cgroups":[1],"limited":false}"#;
        assert_eq!(decode_request(add, 3).unwrap().app(), "web");
        let reply = Reply::new(143, "app \"web\" exited with 143");
        assert_eq!(decode_reply(&encode(&reply)).unwrap(), reply);
        assert_eq!(
            decode_reply(br#"{"code":0,"message":""}"#).unwrap(),
            Reply::ok()
        );
    }

    #[test]
    fn malformed_requests_are_refused() {
        for (raw, fds) in [
            (&br#"{"op":"start","app":"../x"}"#[..], 0),
            (br#"{"op":"start","app":""}"#, 0),
            (br#"{"op":"start"}"#, 0),
            (br#"{"op":"start","app":"web","extra":1}"#, 0),
            (br#"{"op":"launch","app":"web"}"#, 0),
            (br#"{"op":"stop","app":"web"}"#, 0),
            (br#"{"op":"start","app":"web"}"#, 1),
            (
                br#"{"op":"add","app":"web","cgroups":[0],"limited":false}"#,
                1,
            ),
            (
                br#"{"op":"add","app":"web","cgroups":[],"limited":false}"#,
                0,
            ),
            (b"start web", 0),
            (b"", 0),
        ] {
            assert!(
                decode_request(raw, fds).is_err(),
                "{:?} with {fds} fds",
                String::from_utf8_lossy(raw)
            );
        }
        assert!(decode_reply(b"{\"code\":\"0\"}").is_err());
    }
}
