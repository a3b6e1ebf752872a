//! `--private-users` where the file system cannot be idmapped: the app's copied tree with every
//! owner moved into the pod's id range (id N becomes shift + N), as rkt's uid-shifted rendering.
//!
//! An owner already in the range is left alone, so a second pass (after a crash, or through a
//! hard link met twice) changes nothing. chown(2) clears the set-user-id and set-group-id bits of a
//! file, so they are put back. File capabilities (`security.capability`) go with the chown: kept,
//! they would name the host's root, which the pod's processes are not.

use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use rustix::fs::{self, AtFlags, FileType, Mode};
use rustix::process::{Gid, Uid};

use crate::errors::{Code, Context, Error, Result};
use crate::fsat;

/// The pod's id range: in-pod ids 0..count are host ids shift..shift+count.
#[derive(Clone, Copy)]
pub struct Range {
    pub shift: u32,
    pub count: u32,
}

impl Range {
    /// The host id for `id`, None when it is already one (already shifted); an error when `id` is
    /// neither one of the pod's nor a host id of the range.
    fn shifted(&self, id: u32) -> std::result::Result<Option<u32>, ()> {
        if id < self.count {
            Ok(Some(self.shift + id))
        } else if id >= self.shift && id - self.shift < self.count {
            Ok(None)
        } else {
            Err(())
        }
    }
}

/// Shifts the owners of `dir` and everything below it, following no symlink; returns how many
/// entries it changed.
pub fn shift_owners(dir: &Path, range: Range) -> Result<u64> {
    if range.shift < range.count || range.shift.checked_add(range.count).is_none() {
        return Err(Error::new(
            Code::InvalidArgument,
            format!(
                "{}:{} is not a range of host ids above the pod's",
                range.shift, range.count
            ),
        ));
    }
    let fd = fsat::open_dir(dir).context(|| format!("opening {}", dir.display()))?;
    let mut changed = 0;
    // The top directory, through its parent-less fd: "." names it.
    shift_entry(fd.as_fd(), b".", range, &mut changed, dir)?;
    Ok(changed)
}

fn shift_entry(
    dir: BorrowedFd<'_>,
    name: &[u8],
    range: Range,
    changed: &mut u64,
    path: &Path,
) -> Result<()> {
    let st = fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW)
        .context(|| format!("stat {}", path.display()))?;
    let outside = |what: &str, id: u32| {
        Error::new(
            Code::InvalidArgument,
            format!(
                "{}: {what} {id} is not one of the pod's {} ids",
                path.display(),
                range.count
            ),
        )
    };
    let uid = range
        .shifted(st.st_uid)
        .map_err(|()| outside("owner", st.st_uid))?;
    let gid = range
        .shifted(st.st_gid)
        .map_err(|()| outside("group", st.st_gid))?;
    let kind = FileType::from_raw_mode(st.st_mode);
    if uid.is_some() || gid.is_some() {
        fs::chownat(
            dir,
            name,
            uid.map(Uid::from_raw),
            gid.map(Gid::from_raw),
            AtFlags::SYMLINK_NOFOLLOW,
        )
        .context(|| format!("chown {}", path.display()))?;
        if kind == FileType::RegularFile && st.st_mode & 0o6000 != 0 {
            // A regular file (statted without following): chmodat cannot meet a symlink here.
            fs::chmodat(
                dir,
                name,
                Mode::from_raw_mode(st.st_mode & 0o7777),
                AtFlags::empty(),
            )
            .context(|| format!("chmod {}", path.display()))?;
        }
        *changed += 1;
    }
    if kind == FileType::Directory {
        let sub = fsat::open_dir_at(dir, name).context(|| format!("opening {}", path.display()))?;
        for child in
            fsat::children(sub.as_fd()).context(|| format!("reading {}", path.display()))?
        {
            let child_path = path.join(std::ffi::OsStr::from_bytes(&child));
            shift_entry(sub.as_fd(), &child, range, changed, &child_path)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{MetadataExt, PermissionsExt};

    const RANGE: Range = Range {
        shift: 0x80000,
        count: 0x10000,
    };

    #[test]
    fn owners_move_into_the_range_once() {
        if !rustix::process::geteuid().is_root() {
            eprintln!("skipped: chown to other users needs root");
            return;
        }
        let t = tempfile::tempdir().unwrap();
        let root = t.path().join("rootfs");
        std::fs::create_dir_all(root.join("etc")).unwrap();
        std::fs::write(root.join("etc/passwd"), "x").unwrap();
        std::fs::write(root.join("su"), "x").unwrap();
        std::os::unix::fs::chown(root.join("su"), Some(0), Some(0)).unwrap();
        std::fs::set_permissions(root.join("su"), std::fs::Permissions::from_mode(0o4755)).unwrap();
        std::os::unix::fs::lchown(root.join("etc/passwd"), Some(1000), Some(100)).unwrap();
        std::fs::hard_link(root.join("etc/passwd"), root.join("passwd-link")).unwrap();
        std::os::unix::fs::symlink("/etc/shadow", root.join("link")).unwrap();

        let changed = shift_owners(&root, RANGE).unwrap();
        // rootfs, etc, etc/passwd (its second link is then in the range), su, link
        assert_eq!(changed, 5);
        let meta = |p: &str| std::fs::symlink_metadata(root.join(p)).unwrap();
        assert_eq!(
            (meta("etc/passwd").uid(), meta("etc/passwd").gid()),
            (0x80000 + 1000, 0x80000 + 100)
        );
        assert_eq!(meta("su").uid(), 0x80000);
        assert_eq!(meta("su").mode() & 0o7777, 0o4755, "set-uid bit put back");
        assert_eq!(
            meta("link").uid(),
            0x80000,
            "the symlink itself, not its target"
        );
        assert_eq!(meta(".").uid(), 0x80000);
        assert_eq!(
            shift_owners(&root, RANGE).unwrap(),
            0,
            "a second pass changes nothing"
        );
    }

    #[test]
    fn an_owner_outside_the_range_is_an_error() {
        if !rustix::process::geteuid().is_root() {
            eprintln!("skipped: chown to other users needs root");
            return;
        }
        let t = tempfile::tempdir().unwrap();
        std::fs::write(t.path().join("f"), "x").unwrap();
        std::os::unix::fs::chown(t.path().join("f"), Some(70000), None).unwrap();
        let e = shift_owners(t.path(), RANGE).unwrap_err();
        assert!(
            e.message
                .contains("owner 70000 is not one of the pod's 65536 ids"),
            "{}",
            e.message
        );
        assert!(shift_owners(
            t.path(),
            Range {
                shift: 10,
                count: 0x10000
            }
        )
        .is_err());
    }
}
