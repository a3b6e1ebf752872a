//! Removing whole directory trees (gc's pods and trees), like `rm -rf` with its hazards closed:
//! - nothing is followed: every step is an *at call on a directory fd, leaves are unlinked by name and
//!   directories opened with O_NOFOLLOW, so a symlink in the tree is removed, never its target;
//! - no mount is entered: directories are opened with openat2(RESOLVE_NO_XDEV), which the kernel
//!   refuses for a mount point, bind mounts of the same file system included (st_dev alone would miss
//!   those). A tree with a mount in it is reported EBUSY, as rmdir would, before anything below that
//!   mount is touched: what is mounted there (a pod's bind of a host directory) is not the tree's;
//! - depth costs neither stack nor fds: an app can nest directories without limit in its pod's upper
//!   directory, so past MAX_DEPTH a directory is moved up to the tree's top and emptied from there.

use std::ffi::OsStr;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use rustix::fs::{self, AtFlags, Mode, OFlags, RenameFlags, ResolveFlags};
use rustix::io::Errno;

use crate::archive::show;
use crate::errors::{Code, Error, Result};
use crate::fsat;

/// Trees removed at once. Removal waits on the file system (its journal, inode locks) more than on
/// the CPU, so a few threads overlap those waits; more would only contend for the same locks.
const THREADS: usize = 4;

/// Directories nested deeper than this below a tree's top are moved up to the top before they are
/// emptied, so the open fds (one per level) and the recursion stay bounded.
const MAX_DEPTH: usize = 64;

/// Removes each path's tree, several at once; one result per path, in order. A missing path is not
/// an error (rm -f).
pub fn remove_trees(paths: &[PathBuf]) -> Vec<Result<()>> {
    let next = AtomicUsize::new(0);
    let mut results: Vec<Option<Result<()>>> = paths.iter().map(|_| None).collect();
    std::thread::scope(|scope| {
        let workers: Vec<_> = (0..THREADS.min(paths.len()))
            .map(|_| {
                scope.spawn(|| {
                    let mut done = Vec::new();
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some(path) = paths.get(i) else {
                            return done;
                        };
                        done.push((i, remove_tree(path)));
                    }
                })
            })
            .collect();
        for worker in workers {
            // A worker that panicked leaves its paths without a result, reported below.
            for (i, result) in worker.join().unwrap_or_default() {
                results[i] = Some(result);
            }
        }
    });
    results
        .into_iter()
        .zip(paths)
        .map(|(result, path)| {
            result.unwrap_or_else(|| {
                Err(Error::new(
                    Code::Io,
                    format!("{}: the removing thread failed", path.display()),
                ))
            })
        })
        .collect()
}

/// Removes the tree at `path` (or the file or symlink there).
pub fn remove_tree(path: &Path) -> Result<()> {
    let refuse = || {
        Error::new(
            Code::InvalidArgument,
            format!("{} does not name a tree to remove", path.display()),
        )
    };
    let (parent_path, leaf) = fsat::split_leaf(path).ok_or_else(refuse)?;
    let parent = match fsat::open_dir(parent_path) {
        Err(Errno::NOENT) => return Ok(()),
        other => other.map_err(|e| failed(path, b"", e))?,
    };
    let mut tree = Removal {
        path,
        parent: parent.as_fd(),
        leaf,
        deep: Vec::new(),
        moved: 0,
    };
    tree.remove()
}

struct Removal<'a> {
    path: &'a Path,
    parent: BorrowedFd<'a>,
    leaf: &'a OsStr,
    /// Directories moved up to the top (their name there, and where they were), still to empty.
    deep: Vec<(String, Vec<u8>)>,
    moved: u64,
}

impl Removal<'_> {
    fn remove(&mut self) -> Result<()> {
        match unlink(self.parent, self.leaf.as_bytes()) {
            Err(Errno::ISDIR) => {}
            other => return other.map_err(|e| failed(self.path, b"", e)),
        }
        let top =
            open_below(self.parent, self.leaf.as_bytes()).map_err(|e| failed(self.path, b"", e))?;
        self.empty(top.as_fd(), top.as_fd(), b"", 0)?;
        while let Some((name, was)) = self.deep.pop() {
            let dir =
                open_below(top.as_fd(), name.as_bytes()).map_err(|e| failed(self.path, &was, e))?;
            self.empty(dir.as_fd(), top.as_fd(), &was, MAX_DEPTH)?;
            rmdir(top.as_fd(), name.as_bytes()).map_err(|e| failed(self.path, &was, e))?;
        }
        rmdir(self.parent, self.leaf.as_bytes()).map_err(|e| failed(self.path, b"", e))
    }

    /// Removes what `dir` (at `rel` in the tree, `depth` levels below its top) holds.
    fn empty(
        &mut self,
        dir: BorrowedFd<'_>,
        top: BorrowedFd<'_>,
        rel: &[u8],
        depth: usize,
    ) -> Result<()> {
        let names = fsat::children(dir).map_err(|e| failed(self.path, rel, e))?;
        for name in names {
            let child = if rel.is_empty() {
                name.clone()
            } else {
                [rel, b"/", &name].concat()
            };
            match unlink(dir, &name) {
                Err(Errno::ISDIR) => {}
                other => {
                    other.map_err(|e| failed(self.path, &child, e))?;
                    continue;
                }
            }
            if depth + 1 >= MAX_DEPTH {
                let moved = self
                    .move_to_top(dir, &name, top)
                    .map_err(|e| failed(self.path, &child, e))?;
                self.deep.push((moved, child));
                continue;
            }
            let sub = open_below(dir, &name).map_err(|e| failed(self.path, &child, e))?;
            self.empty(sub.as_fd(), top, &child, depth + 1)?;
            rmdir(dir, &name).map_err(|e| failed(self.path, &child, e))?;
        }
        Ok(())
    }

    /// Renames the directory `name` in `dir` to a fresh name in `top`, returning that name.
    fn move_to_top(
        &mut self,
        dir: BorrowedFd<'_>,
        name: &[u8],
        top: BorrowedFd<'_>,
    ) -> std::result::Result<String, Errno> {
        loop {
            let moved = format!(".podlog-deep-{}", self.moved);
            self.moved += 1;
            match fs::renameat_with(dir, name, top, moved.as_str(), RenameFlags::NOREPLACE) {
                Err(Errno::EXIST) => continue,
                other => return other.map(|()| moved),
            }
        }
    }
}

/// Unlinks a non-directory; EISDIR for a directory. Already gone counts as done: gc may race another
/// gc, and the tree is what is wanted gone.
fn unlink(dir: BorrowedFd<'_>, name: &[u8]) -> std::result::Result<(), Errno> {
    match fs::unlinkat(dir, name, AtFlags::empty()) {
        Err(Errno::NOENT) => Ok(()),
        other => other,
    }
}

fn rmdir(dir: BorrowedFd<'_>, name: &[u8]) -> std::result::Result<(), Errno> {
    match fs::unlinkat(dir, name, AtFlags::REMOVEDIR) {
        Err(Errno::NOENT) => Ok(()),
        other => other,
    }
}

/// Opens the directory `name` in `dir`: EXDEV when it is a mount point, ELOOP/ENOTDIR when a symlink or
/// a file took its place.
fn open_below(dir: BorrowedFd<'_>, name: &[u8]) -> std::result::Result<OwnedFd, Errno> {
    fs::openat2(
        dir,
        name,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
        ResolveFlags::NO_XDEV | ResolveFlags::NO_SYMLINKS,
    )
}

/// The error for `rel` (empty: the tree itself) in the tree at `path`.
fn failed(path: &Path, rel: &[u8], e: Errno) -> Error {
    let at = if rel.is_empty() {
        path.display().to_string()
    } else {
        format!("{}/{}", path.display(), String::from_utf8_lossy(rel))
    };
    match e {
        Errno::XDEV | Errno::BUSY => Error::new(
            Code::Busy,
            format!("{at} is a mount point (or in use): the tree is not removed below it ({e})"),
        ),
        _ => Error::io(format!("removing {}", show(at.as_bytes())), &e.into()),
    }
}

#[cfg(test)]
mod tests {
    use std::fs;
    use std::os::unix::fs::{symlink, PermissionsExt};

    use super::*;

    /// A tree with files, nested directories, a read-only directory and symlinks (to a file and to a
    /// directory) pointing out of it, at `<dir>/tree`; the symlinks' targets are in `<dir>/outside`.
    fn tree(dir: &Path) -> PathBuf {
        let outside = dir.join("outside");
        fs::create_dir_all(outside.join("sub")).unwrap();
        fs::write(outside.join("file"), "keep").unwrap();
        fs::write(outside.join("sub/file"), "keep").unwrap();
        let tree = dir.join("tree");
        fs::create_dir_all(tree.join("a/b/c")).unwrap();
        fs::write(tree.join("a/b/c/file"), "x").unwrap();
        fs::write(tree.join("top"), "x").unwrap();
        symlink(outside.join("file"), tree.join("a/to-file")).unwrap();
        symlink(outside.join("sub"), tree.join("a/b/to-dir")).unwrap();
        symlink("../../outside", tree.join("a/relative")).unwrap();
        fs::create_dir(tree.join("ro")).unwrap();
        fs::write(tree.join("ro/file"), "x").unwrap();
        fs::set_permissions(tree.join("ro"), fs::Permissions::from_mode(0o555)).unwrap();
        tree
    }

    fn outside_intact(dir: &Path) {
        assert_eq!(
            fs::read_to_string(dir.join("outside/file")).unwrap(),
            "keep"
        );
        assert_eq!(
            fs::read_to_string(dir.join("outside/sub/file")).unwrap(),
            "keep"
        );
    }

    #[test]
    fn removes_trees_without_following_their_symlinks() {
        let dir = tempfile::tempdir().unwrap();
        let tree = tree(dir.path());
        let link = dir.path().join("link-to-outside");
        symlink(dir.path().join("outside"), &link).unwrap();
        let results = remove_trees(&[tree.clone(), link.clone()]);
        assert!(results.iter().all(Result::is_ok), "{results:?}");
        assert!(fs::symlink_metadata(&tree).is_err());
        assert!(
            fs::symlink_metadata(&link).is_err(),
            "a symlink given is removed itself"
        );
        outside_intact(dir.path());
    }

    #[test]
    fn a_missing_path_is_already_removed() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("file");
        fs::write(&file, "x").unwrap();
        let paths = [
            dir.path().join("absent"),
            dir.path().join("absent/below"),
            file.clone(),
        ];
        let results = remove_trees(&paths);
        assert!(results.iter().all(Result::is_ok), "{results:?}");
        assert!(!file.exists());
    }

    #[test]
    fn results_follow_the_paths_order() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("file");
        fs::write(&file, "x").unwrap();
        let mut paths: Vec<PathBuf> = (0..9).map(|i| dir.path().join(format!("t{i}"))).collect();
        for p in &paths {
            fs::create_dir_all(p.join("x/y")).unwrap();
        }
        paths.insert(4, file.join("below"));
        let results = remove_trees(&paths);
        for (i, r) in results.iter().enumerate() {
            if i == 4 {
                assert_eq!(r.as_ref().unwrap_err().code, Code::Io, "ENOTDIR: {r:?}");
            } else {
                assert!(r.is_ok(), "{i}: {r:?}");
                assert!(!paths[i].exists());
            }
        }
    }

    #[test]
    fn depth_is_not_limited_by_fds_or_path_length() {
        let dir = tempfile::tempdir().unwrap();
        let tree = dir.path().join("deep");
        fs::create_dir(&tree).unwrap();
        // Deeper than PATH_MAX allows to name from the top: built one level at a time through fds.
        let mut fd = fsat::open_dir(&tree).unwrap();
        let name = "d".repeat(200);
        for _ in 0..(3 * MAX_DEPTH) {
            rustix::fs::mkdirat(&fd, name.as_str(), Mode::from_raw_mode(0o755)).unwrap();
            fd = fsat::open_dir_at(fd.as_fd(), name.as_bytes()).unwrap();
        }
        rustix::fs::symlinkat("/", &fd, "root").unwrap();
        drop(fd);
        remove_tree(&tree).unwrap();
        assert!(!tree.exists());
    }

    #[test]
    fn a_path_that_names_no_tree_is_refused() {
        for p in ["/", "a/.."] {
            assert_eq!(
                remove_tree(Path::new(p)).unwrap_err().code,
                Code::InvalidArgument,
                "{p}"
            );
        }
    }
}
