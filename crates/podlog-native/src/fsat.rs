//! Directory-fd helpers. Every lookup below a root goes through openat2 with RESOLVE_IN_ROOT, so `..`
//! and symlinks (absolute or relative) are resolved as if the root were `/`: nothing a tree contains
//! can send a path operation outside it. Leaves are then handled by single-component *at calls that
//! never follow a final symlink.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use rustix::fs::{self, AtFlags, Mode, OFlags, ResolveFlags};
use rustix::io::Errno;

const IN_ROOT: ResolveFlags = ResolveFlags::IN_ROOT.union(ResolveFlags::NO_MAGICLINKS);

const DIR: OFlags = OFlags::RDONLY
    .union(OFlags::DIRECTORY)
    .union(OFlags::CLOEXEC);

/// Opens the directory at `path` (components joined by `/`; empty means the root itself) below `root`.
/// `follow_last` says whether a final symlink is followed (still inside the root): yes when looking up
/// where an entry goes, no when coming back to a directory that a later entry may have replaced.
pub fn open_dir_in_root(
    root: BorrowedFd<'_>,
    path: &[u8],
    follow_last: bool,
) -> Result<OwnedFd, Errno> {
    let path: &[u8] = if path.is_empty() { b"." } else { path };
    let flags = if follow_last {
        DIR
    } else {
        DIR | OFlags::NOFOLLOW
    };
    // openat2(RESOLVE_IN_ROOT) fails with EAGAIN when a rename anywhere on the system races a lookup
    // that follows `..` (openat2(2) says to retry); a few tries, then the error is real.
    let mut tries = 0;
    loop {
        match fs::openat2(root, path, flags, Mode::empty(), IN_ROOT) {
            Err(Errno::AGAIN) if tries < 16 => tries += 1,
            result => return result,
        }
    }
}

/// A path's parent directory (`.` for a bare name) and its last component: what the `*at` calls
/// act on. None when the path has no last component (`/`, `..`).
pub fn split_leaf(path: &std::path::Path) -> Option<(&std::path::Path, &std::ffi::OsStr)> {
    let leaf = path.file_name()?;
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => std::path::Path::new("."),
    };
    Some((parent, leaf))
}

/// Opens a directory from a plain path, the way a caller names a destination or a tree.
pub fn open_dir(path: &std::path::Path) -> Result<OwnedFd, Errno> {
    fs::open(path, DIR, Mode::empty())
}

/// Removes `name` in `dir` and, if it is a directory, everything below it, without following symlinks.
pub fn remove_all_at(dir: BorrowedFd<'_>, name: &[u8]) -> Result<(), Errno> {
    match fs::unlinkat(dir, name, AtFlags::empty()) {
        Err(Errno::ISDIR) => {}
        other => return other,
    }
    let sub = open_dir_at(dir, name)?;
    for child in children(sub.as_fd())? {
        remove_all_at(sub.as_fd(), &child)?;
    }
    fs::unlinkat(dir, name, AtFlags::REMOVEDIR)
}

/// Opens the directory `name` in `dir`, refusing a symlink in its place.
pub fn open_dir_at(dir: BorrowedFd<'_>, name: &[u8]) -> Result<OwnedFd, Errno> {
    fs::openat(dir, name, DIR | OFlags::NOFOLLOW, Mode::empty())
}

/// The names in a directory, without `.` and `..`.
pub fn children(dir: BorrowedFd<'_>) -> Result<Vec<Vec<u8>>, Errno> {
    let mut names = Vec::new();
    for entry in fs::Dir::read_from(dir)? {
        let name = entry?.file_name().to_bytes().to_vec();
        if name != b"." && name != b".." {
            names.push(name);
        }
    }
    Ok(names)
}

pub fn is_dir_at(dir: BorrowedFd<'_>, name: &[u8]) -> Result<bool, Errno> {
    let st = fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW)?;
    Ok(fs::FileType::from_raw_mode(st.st_mode) == fs::FileType::Directory)
}

#[cfg(test)]
mod split_leaf_tests {
    use super::split_leaf;
    use std::path::Path;

    #[test]
    fn a_path_is_its_parent_and_leaf() {
        assert_eq!(
            split_leaf(Path::new("/a/b/c")),
            Some((Path::new("/a/b"), "c".as_ref()))
        );
        assert_eq!(
            split_leaf(Path::new("c")),
            Some((Path::new("."), "c".as_ref()))
        );
        assert_eq!(
            split_leaf(Path::new("/c")),
            Some((Path::new("/"), "c".as_ref()))
        );
        assert_eq!(split_leaf(Path::new("/")), None);
        assert_eq!(split_leaf(Path::new("a/..")), None);
    }
}
