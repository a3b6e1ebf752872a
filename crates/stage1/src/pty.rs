//! `--interactive`: the pod's one app on a pseudo-terminal (rkt's interactive mode, podman's `-it`).
//!
//! The terminal belongs to the pod: PID 1 opens the master on the app's own devpts instance (the
//! `newinstance` mount stage1 made at `<app root>/dev/pts`) and gets the slave with TIOCGPTPEER, so no
//! path of the image is looked up, and `tty` in the pod names a device the pod has. The app takes
//! the slave as its controlling terminal and stdio. The master goes to the supervisor (outside the
//! pod, holding the caller's stdio) over a socketpair as SCM_RIGHTS, as runc's console socket does.
//! The supervisor puts its stdin in raw mode, so Ctrl-C reaches the app's line discipline as a byte
//! and becomes the app's SIGINT; it relays bytes both ways and passes window sizes on at SIGWINCH.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

use nix::errno::Errno;
use nix::fcntl::{open, OFlag};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{sigaction, SaFlags, SigAction, SigHandler, SigSet, Signal};
use nix::sys::stat::Mode;
use nix::sys::termios::{cfmakeraw, tcgetattr, tcsetattr, SetArg, Termios};
use nix::unistd::{dup2_stderr, dup2_stdin, dup2_stdout, isatty, read, write};

use crate::error::{bail, Context, Result};
use crate::fdpass;

/// Opens a terminal on the devpts mounted at `<app_root>/dev/pts`: (master, slave).
pub fn open_pair(app_root: &Path) -> Result<(OwnedFd, OwnedFd)> {
    let ptmx = app_root.join("dev/pts/ptmx");
    let master = open(
        &ptmx,
        OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC | OFlag::O_NOFOLLOW,
        Mode::empty(),
    )
    .with_ctx(|| format!("open {}", ptmx.display()))?;
    let unlock: libc::c_int = 0;
    // SAFETY: TIOCSPTLCK reads one int through the pointer, which outlives the call.
    Errno::result(unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCSPTLCK, &unlock) })
        .ctx("unlock the terminal")?;
    // SAFETY: TIOCGPTPEER takes open flags and returns a new fd on the slave, which we own.
    let slave = Errno::result(unsafe {
        libc::ioctl(
            master.as_raw_fd(),
            libc::TIOCGPTPEER,
            libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC,
        )
    })
    .ctx("open the terminal's slave")?;
    // SAFETY: `slave` is a fresh descriptor returned by the ioctl above.
    Ok((master, unsafe { OwnedFd::from_raw_fd(slave) }))
}

/// Sends `fd` over the unix socket `sock`.
pub fn send(sock: &OwnedFd, fd: &OwnedFd) -> Result<()> {
    fdpass::send(sock, b"t", &[fd]).ctx("send the terminal to the supervisor")
}

/// Receives the fd sent over `sock` by [`send`].
pub fn receive(sock: &OwnedFd) -> Result<OwnedFd> {
    let (_, fds) = fdpass::receive(sock, &mut [0u8; 1]).ctx("receive the terminal from PID 1")?;
    match fds.into_iter().next() {
        Some(fd) => Ok(fd),
        None => bail!("PID 1 sent no terminal"),
    }
}

/// In the app's child, after setsid: the slave becomes its controlling terminal and stdio.
pub fn take(slave: BorrowedFd<'_>) -> Result<()> {
    // SAFETY: TIOCSCTTY takes an int argument (0: do not steal from another session).
    Errno::result(unsafe { libc::ioctl(slave.as_raw_fd(), libc::TIOCSCTTY, 0) })
        .ctx("make the terminal the app's controlling terminal")?;
    dup2_stdin(slave).ctx("dup2 the terminal to stdin")?;
    dup2_stdout(slave).ctx("dup2 the terminal to stdout")?;
    dup2_stderr(slave).ctx("dup2 the terminal to stderr")?;
    Ok(())
}

/// The caller's terminal in raw mode until dropped.
struct Raw<'a> {
    fd: BorrowedFd<'a>,
    saved: Termios,
}

impl<'a> Raw<'a> {
    fn enter(fd: BorrowedFd<'a>) -> Result<Self> {
        let saved = tcgetattr(fd).ctx("read the terminal's settings")?;
        let mut raw = saved.clone();
        cfmakeraw(&mut raw);
        tcsetattr(fd, SetArg::TCSANOW, &raw).ctx("put the terminal in raw mode")?;
        Ok(Raw { fd, saved })
    }
}

impl Drop for Raw<'_> {
    fn drop(&mut self) {
        let _ = tcsetattr(self.fd, SetArg::TCSADRAIN, &self.saved);
    }
}

/// Copies the caller's window size to the pod's terminal.
fn copy_window_size(from: BorrowedFd<'_>, to: BorrowedFd<'_>) {
    // SAFETY: a zeroed winsize is valid; both ioctls read or write exactly one winsize.
    unsafe {
        let mut size: libc::winsize = std::mem::zeroed();
        if libc::ioctl(from.as_raw_fd(), libc::TIOCGWINSZ, &mut size) == 0 {
            libc::ioctl(to.as_raw_fd(), libc::TIOCSWINSZ, &size);
        }
    }
}

static RESIZED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_resize(_: libc::c_int) {
    RESIZED.store(true, Ordering::Relaxed);
}

fn write_all(fd: BorrowedFd<'_>, mut data: &[u8]) -> Result<()> {
    while !data.is_empty() {
        match write(fd, data) {
            Ok(n) => data = &data[n..],
            Err(Errno::EINTR) => {}
            Err(e) => return Err(e).ctx("relay the terminal"),
        }
    }
    Ok(())
}

/// Relays between stage1's own stdio and the pod's terminal `master` until the pod (its PID 1,
/// whose pidfd is `pod`) has exited and its output is drained.
pub fn relay(master: OwnedFd, pod: BorrowedFd<'_>) -> Result<()> {
    let stdin = std::io::stdin();
    let stdout = std::io::stdout();
    let (input, output) = (stdin.as_fd(), stdout.as_fd());
    let tty = isatty(input).unwrap_or(false);
    let _raw = if tty { Some(Raw::enter(input)?) } else { None };
    if tty {
        copy_window_size(input, master.as_fd());
        let act = SigAction::new(
            SigHandler::Handler(on_resize),
            SaFlags::empty(),
            SigSet::empty(),
        );
        // SAFETY: the handler only stores to an atomic.
        unsafe { sigaction(Signal::SIGWINCH, &act) }.ctx("sigaction SIGWINCH")?;
    }
    let mut input_open = true;
    let mut output_open = true;
    let mut buf = [0u8; 16 * 1024];
    loop {
        if RESIZED.swap(false, Ordering::Relaxed) {
            copy_window_size(input, master.as_fd());
        }
        // Only what is still open is polled: a closed end would report POLLHUP forever.
        let mut fds = vec![PollFd::new(pod, PollFlags::POLLIN)];
        if output_open {
            fds.push(PollFd::new(master.as_fd(), PollFlags::POLLIN));
        }
        if input_open {
            fds.push(PollFd::new(input, PollFlags::POLLIN));
        }
        match poll(&mut fds, PollTimeout::NONE) {
            Err(Errno::EINTR) => continue,
            r => r.ctx("poll the terminal")?,
        };
        let ready: Vec<bool> = fds
            .iter()
            .map(|fd| fd.revents().is_some_and(|r| !r.is_empty()))
            .collect();
        let exited = ready[0];
        let from_pod = output_open && ready[1];
        let from_caller = input_open && ready[if output_open { 2 } else { 1 }];
        if from_pod {
            match read(&master, &mut buf) {
                // EIO: every slave fd is closed (the app is gone).
                Ok(0) | Err(Errno::EIO) => output_open = false,
                Ok(n) => write_all(output, &buf[..n])?,
                Err(Errno::EINTR | Errno::EAGAIN) => {}
                Err(e) => return Err(e).ctx("read the pod's terminal"),
            }
        }
        if from_caller {
            match read(input, &mut buf) {
                Ok(n) if n > 0 => write_all(master.as_fd(), &buf[..n])?,
                Err(Errno::EINTR | Errno::EAGAIN) => {}
                _ => input_open = false,
            }
        }
        // Once the pod is gone, what its terminal still holds is written out first.
        if exited && !from_pod {
            return Ok(());
        }
    }
}
