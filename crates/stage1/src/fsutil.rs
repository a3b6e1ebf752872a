//! File access relative to directory fds. After pivot_root the pod directory has no path,
//! and an image's rootfs must be walked as if it were `/` so that its symlinks cannot point
//! stage1 (still root on the host) at host files.

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};

use nix::errno::Errno;
use nix::fcntl::{openat, openat2, renameat, OFlag, OpenHow, ResolveFlag};
use nix::sys::stat::{mkdirat, Mode};

pub fn read_at(dir: impl AsFd, path: &str) -> nix::Result<Vec<u8>> {
    let fd = openat(dir, path, OFlag::O_RDONLY | OFlag::O_CLOEXEC, Mode::empty())?;
    read_all(fd)
}

fn read_all(fd: OwnedFd) -> nix::Result<Vec<u8>> {
    let mut buf = Vec::new();
    File::from(fd)
        .read_to_end(&mut buf)
        .map_err(|e| Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO)))?;
    Ok(buf)
}

/// Writes `name` (which may be below a subdirectory of `dir`) so that a reader sees the old
/// content or the new one, never a torn file.
pub fn write_atomic(dir: impl AsFd + Copy, name: &str, data: &[u8]) -> nix::Result<()> {
    let tmp = match name.rsplit_once('/') {
        Some((parent, base)) => format!("{parent}/.{base}.tmp"),
        None => format!(".{name}.tmp"),
    };
    let fd = openat(
        dir,
        tmp.as_str(),
        OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_TRUNC | OFlag::O_CLOEXEC | OFlag::O_NOFOLLOW,
        Mode::from_bits_truncate(0o644),
    )?;
    File::from(fd)
        .write_all(data)
        .map_err(|e| Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO)))?;
    renameat(dir, tmp.as_str(), dir, name)
}

/// `mkdir -p` below `dir`; existing directories are fine (every step is idempotent).
pub fn mkdir_all_at(dir: impl AsFd + Copy, rel: &str, mode: u32) -> nix::Result<()> {
    let mut path = String::with_capacity(rel.len());
    for part in rel.split('/').filter(|p| !p.is_empty()) {
        if !path.is_empty() {
            path.push('/');
        }
        path.push_str(part);
        match mkdirat(dir, path.as_str(), Mode::from_bits_truncate(mode)) {
            Ok(()) | Err(Errno::EEXIST) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Opens the directory `rel` below `dir` without following a symlink anywhere on the way and
/// without leaving `dir`: for paths stage0 created, which must be exactly what they seem.
pub fn open_plain_dir(dir: impl AsFd, rel: &str) -> nix::Result<OwnedFd> {
    let how = OpenHow::new()
        .flags(OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC)
        .resolve(ResolveFlag::RESOLVE_BENEATH | ResolveFlag::RESOLVE_NO_SYMLINKS);
    openat2(dir, rel, how)
}

/// Opens `rel` below `dir` as an O_PATH fd (a file or a directory) without following a symlink
/// anywhere on the way, the last component included, and without leaving `dir`.
pub fn open_path_beneath(dir: impl AsFd, rel: &str) -> nix::Result<OwnedFd> {
    let how = OpenHow::new()
        .flags(OFlag::O_PATH | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC)
        .resolve(ResolveFlag::RESOLVE_BENEATH | ResolveFlag::RESOLVE_NO_SYMLINKS);
    let rel = rel.trim_start_matches('/');
    openat2(dir, if rel.is_empty() { "." } else { rel }, how)
}

/// The name mount(2) takes for the exact file `fd` holds: a mount made through it goes on that
/// file, whatever its path names now (the runc CVE-2021-30465 fix).
pub fn fd_path(fd: &impl AsRawFd) -> String {
    format!("/proc/self/fd/{}", fd.as_raw_fd())
}

/// Opens `path` inside the tree rooted at `root`: `..` and symlinks (absolute ones too)
/// resolve as if `root` were `/`.
pub fn open_in_root(root: impl AsFd, path: &str, flags: OFlag, mode: u32) -> nix::Result<OwnedFd> {
    let how = OpenHow::new()
        .flags(flags | OFlag::O_CLOEXEC)
        .mode(Mode::from_bits_truncate(mode))
        .resolve(ResolveFlag::RESOLVE_IN_ROOT | ResolveFlag::RESOLVE_NO_MAGICLINKS);
    let rel = path.trim_start_matches('/');
    openat2(root, if rel.is_empty() { "." } else { rel }, how)
}

/// The content of a file of the image, or `None` if it does not exist.
pub fn read_in_root(root: impl AsFd, path: &str) -> nix::Result<Option<Vec<u8>>> {
    match open_in_root(root, path, OFlag::O_RDONLY, 0) {
        Ok(fd) => read_all(fd).map(Some),
        Err(Errno::ENOENT) => Ok(None),
        Err(e) => Err(e),
    }
}
