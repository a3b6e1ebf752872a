//! OCI layers stored once each, in overlayfs's own form, as containerd's overlay snapshotter keeps
//! them: a layer is applied through an overlay mount whose lower dirs are the layers below it and whose
//! upper dir starts empty, so the upper ends up holding exactly that layer's changes (files it wrote,
//! whiteouts as 0/0 character devices, opaque directories marked by overlayfs). Stacked as
//! `lowerdir=top:…:bottom`, the layers give the same tree as applying every layer into one directory
//! (whiteout.rs), because here too each entry is looked up in the merged tree (a symlinked parent
//! below is followed inside the root, a whiteout removes what the layers below hold).
//!
//! The mount lives in a mount namespace of its own, made by one short-lived thread: unshare(CLONE_NEWNS)
//! affects only the calling thread (it implies CLONE_FS, which a thread may unshare alone), its mounts
//! are private, and they vanish with the thread, so nothing is ever mounted in the host's namespace.
//!
//! Layout, under one directory of layers: `<key>/rootfs` is a layer's tree; a new layer is built in a
//! staging directory beside it (`rootfs`, `work` and a mount point) and renamed into place whole.

use std::ffi::CString;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use rustix::fs::Mode;
use rustix::mount::{self, MountFlags, MountPropagationFlags, UnmountFlags};
use rustix::process;
use rustix::thread::UnshareFlags;

use crate::errors::{Code, Context, Error, Result};
use crate::extract::{into_fresh_dir, Limits, Options, Stats};
use crate::{fsat, whiteout};

/// A layer's key: its directory's name. Short, so that many fit in one page of mount options.
fn check_key(key: &str) -> Result<()> {
    if key.len() == 32
        && key
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        return Ok(());
    }
    Err(Error::new(
        Code::InvalidArgument,
        format!("{key:?} is not a layer key (32 lowercase hex digits)"),
    ))
}

/// The kernel reads mount options from one page.
const MOUNT_DATA_MAX: usize = 4095;

/// The options of an overlay with `upper` over `lowers` (top first, each a directory). Only what a
/// layer needs: no index, redirects or metacopy, so that an upper dir holds whole files and plain
/// directories and reads the same over any stack of the same lowers.
pub fn overlay_options(lowers: &[String], upper: &str, work: &str) -> Result<CString> {
    let data = format!(
        "lowerdir={},upperdir={upper},workdir={work},index=off,metacopy=off,redirect_dir=off",
        lowers.join(":")
    );
    if data.len() > MOUNT_DATA_MAX {
        return Err(Error::new(
            Code::TooLarge,
            format!(
                "{} layers do not fit in one overlay mount's options ({} bytes, at most {MOUNT_DATA_MAX})",
                lowers.len(),
                data.len()
            ),
        ));
    }
    CString::new(data).map_err(|_| Error::new(Code::InvalidArgument, "a path holds a NUL byte"))
}

/// Runs `f` on a new thread in a mount namespace of its own, with private propagation.
pub(crate) fn in_private_mount_namespace<T: Send>(
    f: impl FnOnce() -> Result<T> + Send,
) -> Result<T> {
    std::thread::scope(|scope| {
        scope
            .spawn(|| {
                // SAFETY: CLONE_NEWNS (and the CLONE_FS it implies) changes only this thread's mount
                // namespace, root and working directory; the file table stays shared, so every fd
                // stays valid everywhere. The thread runs nothing but `f` and then exits.
                unsafe { rustix::thread::unshare_unsafe(UnshareFlags::NEWNS) }
                    .context(|| "unsharing a mount namespace (applying layers needs root)")?;
                mount::mount_change(
                    "/",
                    MountPropagationFlags::PRIVATE | MountPropagationFlags::REC,
                )
                .context(|| "making the layer's mount namespace private")?;
                f()
            })
            .join()
            .unwrap_or_else(|_| Err(Error::new(Code::Io, "the layer thread panicked")))
    })
}

/// Applies the layer tar `layer` over the layers `lowers` (keys, top first) in `dir`, as the new layer
/// `dir/<key>`, which must not exist; refused as soon as it unpacks past `limits`, the layers below
/// having unpacked to `below` bytes. On failure nothing is left.
pub fn render_layer(
    layer: &Path,
    dir: &Path,
    key: &str,
    lowers: &[String],
    options: Options,
    limits: Limits,
    below: u64,
) -> Result<Stats> {
    check_key(key)?;
    for lower in lowers {
        check_key(lower)?;
        let root = dir.join(lower).join("rootfs");
        if !root.is_dir() {
            return Err(Error::new(
                Code::NoEntry,
                format!(
                    "layer {lower} is missing ({} is not a directory)",
                    root.display()
                ),
            ));
        }
    }
    let layer: PathBuf =
        std::path::absolute(layer).context(|| format!("resolving {}", layer.display()))?;
    into_fresh_dir(&dir.join(key), options.sync, |staging| {
        for name in ["rootfs", "work", "merged", "empty"] {
            rustix::fs::mkdirat(staging, name, Mode::from_raw_mode(0o755))
                .context(|| format!("creating the layer's {name} directory"))?;
        }
        // Its path, for the mount namespace's copy of it: an fd opened before the namespace existed
        // names the host's mount, which overlayfs refuses to use as upper ("failed to clone upperpath").
        let staging_path =
            rustix::fs::readlink(format!("/proc/self/fd/{}", staging.as_raw_fd()), Vec::new())
                .context(|| "finding the layer's staging directory")?;
        let stats = in_private_mount_namespace(|| {
            // Relative to the staging directory, so that each lower costs few bytes of the one page.
            process::chdir(staging_path.as_c_str())
                .context(|| "entering the layer's staging directory")?;
            let lowers: Vec<String> = if lowers.is_empty() {
                vec!["empty".to_string()]
            } else {
                lowers.iter().map(|k| format!("../{k}/rootfs")).collect()
            };
            let data = overlay_options(&lowers, "rootfs", "work")?;
            mount::mount(
                "overlay",
                "merged",
                "overlay",
                MountFlags::empty(),
                data.as_c_str(),
            )
            .context(|| "mounting the layers below as an overlay")?;
            let applied = fsat::open_dir(Path::new("merged"))
                .context(|| "opening the overlay")
                .and_then(|merged| {
                    whiteout::apply_layers(
                        merged.as_fd(),
                        std::slice::from_ref(&layer),
                        options,
                        limits,
                        below,
                    )
                });
            // EBUSY: a process forked meanwhile by another thread holds a copy of our fds on the
            // overlay until it execs (they are close-on-exec). Detached, the overlay goes with them;
            // every write went through to the upper dir already.
            let unmounted = match mount::unmount("merged", UnmountFlags::empty()) {
                Err(rustix::io::Errno::BUSY) => mount::unmount("merged", UnmountFlags::DETACH),
                other => other,
            }
            .context(|| "unmounting the overlay");
            let stats = applied?;
            unmounted?;
            Ok(stats)
        })?;
        remove_scaffolding(staging)?;
        let rootfs = Path::new(std::ffi::OsStr::from_bytes(staging_path.as_bytes())).join("rootfs");
        drop_bookkeeping(&rootfs).context(|| "removing overlayfs's bookkeeping from the layer")?;
        Ok(stats)
    })
}

/// Removes what only the mount needed, leaving the layer's `rootfs`.
fn remove_scaffolding(staging: BorrowedFd<'_>) -> Result<()> {
    for name in ["work", "merged", "empty"] {
        fsat::remove_all_at(staging, name.as_bytes())
            .context(|| format!("removing the layer's {name} directory"))?;
    }
    Ok(())
}

/// overlayfs's own marks on what it copied up (the lower inode's file handle, the layer's uuid, an
/// "impure" flag): they name inodes of this render, so two renders of one layer would differ, and they
/// mean nothing once the layer is a lower dir. Opaque markers are content, and stay.
fn drop_bookkeeping(dir: &Path) -> std::io::Result<()> {
    let mut stack = vec![dir.to_path_buf()];
    while let Some(path) = stack.pop() {
        let mut names = vec![0u8; rustix::fs::llistxattr_query(&path)?];
        let size = rustix::fs::llistxattr(&path, &mut names[..])?;
        for name in names[..size].split(|b| *b == 0) {
            if name.starts_with(b"trusted.overlay.") && name != b"trusted.overlay.opaque" {
                rustix::fs::lremovexattr(&path, name)?;
            }
        }
        if std::fs::symlink_metadata(&path)?.is_dir() {
            for entry in std::fs::read_dir(&path)? {
                stack.push(entry?.path());
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_short_hex_names() {
        assert!(check_key("0123456789abcdef0123456789abcdef").is_ok());
        for bad in [
            "",
            "../etc",
            "0123456789ABCDEF0123456789abcdef",
            "0123456789abcdef0123456789abcde/",
        ] {
            assert_eq!(check_key(bad).unwrap_err().code, Code::InvalidArgument);
        }
    }

    #[test]
    fn too_many_lowers_for_one_page_are_refused_by_count() {
        let lowers: Vec<String> = (0..200).map(|i| format!("../{i:032x}/rootfs")).collect();
        let e = overlay_options(&lowers, "rootfs", "work").unwrap_err();
        assert_eq!(e.code, Code::TooLarge);
        assert!(e.message.starts_with("200 layers"), "{}", e.message);
        assert!(overlay_options(&lowers[..80], "rootfs", "work").is_ok());
    }
}
