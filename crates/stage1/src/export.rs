//! `export`: an ACI of an exited pod's app root, as the app saw it (rkt's `export`). stage0 checks
//! the pod's state in its log and passes the image manifest; stage1 owns everything that mounts.
//!
//! The root is a read-only overlay whose lower dirs are the app's upper dir on top of the tree's
//! layers (no upperdir, no workdir: the upper is read as a layer, never written, and the kernel
//! applies its whiteouts and opaque dirs), mounted in a private mount namespace of this process and
//! detached at once: the walk goes on through an fd, so no mount is left anywhere, even if the
//! process is killed. A `--no-overlay` pod's copy is read as it is.

use std::collections::HashMap;
use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io::{BufWriter, Read, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{openat, readlinkat, renameat2, AtFlags, OFlag, RenameFlags};
use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sched::{unshare, CloneFlags};
use nix::sys::stat::{fstat, fstatat, FileStat, Mode, SFlag};
use nix::unistd::{chdir, mkdtemp, unlinkat, UnlinkatFlags};
use tar::{Builder, EntryType, Header};

use crate::cli::ExportOpts;
use crate::error::{bail, Context, Result};
use crate::{fsutil, lock, lowers, manifest, mounts, rootfs, sys};

pub fn run(opts: ExportOpts) -> Result<i32> {
    let manifest_path = opts.manifest.display();
    let image_manifest = std::fs::read(&opts.manifest)
        .with_ctx(|| format!("read image manifest {manifest_path}"))?;
    check_manifest(&image_manifest).with_ctx(|| format!("image manifest {manifest_path}"))?;
    let manifest_st = fstat(
        File::open(&opts.manifest).with_ctx(|| format!("open image manifest {manifest_path}"))?,
    )
    .with_ctx(|| format!("stat image manifest {manifest_path}"))?;

    let (pod_path, pod) = lock::open_pod_dir(&opts.pod_dir)?;
    // The pod's lock, held to the end: a running pod (its stage1 holds the lock) is refused, and no
    // run or delete can start while its root is read.
    match sys::flock(pod.as_fd(), libc::LOCK_EX | libc::LOCK_NB) {
        Ok(()) => {}
        Err(Errno::EWOULDBLOCK) => bail!(
            "pod is running: {} is locked (only an exited pod can be exported)",
            pod_path.display()
        ),
        Err(e) => return Err(e).with_ctx(|| format!("flock {}", pod_path.display())),
    }
    let apps = manifest::load(&pod)?;
    let Some(app) = apps.iter().find(|a| a.name == opts.app) else {
        let names: Vec<&str> = apps.iter().map(|a| a.name.as_str()).collect();
        bail!(
            "app {:?} is not in the pod manifest {}/pod (its apps: {})",
            opts.app,
            pod_path.display(),
            names.join(", ")
        );
    };

    let out = Output::create(&opts.out)?;
    let root = match rootfs::copied_root_fd(&pod, app)? {
        Some(copy) => copy,
        None => {
            let lowers = lowers::of_tree(&opts.tree_store, &app.tree_store_id)
                .with_ctx(|| format!("app {:?}", app.name))?;
            merged_root(&pod_path, &pod, &rootfs::overlay_upper(app), &lowers)
                .with_ctx(|| format!("app {:?}", app.name))?
        }
    };
    let file = out.file.try_clone().ctx("dup the output file")?;
    let mut writer = BufWriter::new(file);
    write_aci(&mut writer, &image_manifest, &manifest_st, root.as_fd())
        .with_ctx(|| format!("write {}", out.tmp_path().display()))?;
    writer
        .into_inner()
        .map_err(|e| e.into_error())
        .and_then(|f| f.sync_all())
        .with_ctx(|| format!("write {}", out.tmp_path().display()))?;
    out.commit()?;
    Ok(0)
}

/// stage0 passes the image's manifest; a file that is not one would make an ACI nothing imports.
fn check_manifest(raw: &[u8]) -> Result<()> {
    let v: serde_json::Value = serde_json::from_slice(raw).ctx("not JSON")?;
    match v.get("acKind").and_then(|k| k.as_str()) {
        Some("ImageManifest") => Ok(()),
        other => bail!("acKind is {other:?}, not \"ImageManifest\""),
    }
}

/// The ACI being written: a temporary file beside `--out`, renamed to it (without replacing
/// anything) only once complete, and removed on any failure, so a failed export leaves nothing.
struct Output {
    dir: OwnedFd,
    dir_path: PathBuf,
    name: OsString,
    tmp: OsString,
    file: File,
    done: bool,
}

impl Output {
    fn create(out: &Path) -> Result<Output> {
        let Some(name) = out.file_name().map(OsStr::to_os_string) else {
            bail!("--out {}: not a file name", out.display());
        };
        let dir_path = match out.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let dir = nix::fcntl::open(
            &dir_path,
            OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .with_ctx(|| {
            format!(
                "--out {}: its directory {}",
                out.display(),
                dir_path.display()
            )
        })?;
        match fstatat(&dir, name.as_os_str(), AtFlags::AT_SYMLINK_NOFOLLOW) {
            Err(Errno::ENOENT) => {}
            Ok(_) => bail!("{} already exists", out.display()),
            Err(e) => return Err(e).with_ctx(|| format!("stat {}", out.display())),
        }
        let tmp = temp_name(&name, std::process::id());
        let fd = openat(
            &dir,
            tmp.as_os_str(),
            OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            Mode::from_bits_truncate(0o644),
        )
        .with_ctx(|| format!("create {}", dir_path.join(&tmp).display()))?;
        Ok(Output {
            dir,
            dir_path,
            name,
            tmp,
            file: File::from(fd),
            done: false,
        })
    }

    fn tmp_path(&self) -> PathBuf {
        self.dir_path.join(&self.tmp)
    }

    fn commit(mut self) -> Result<()> {
        let out = self.dir_path.join(&self.name);
        match renameat2(
            &self.dir,
            self.tmp.as_os_str(),
            &self.dir,
            self.name.as_os_str(),
            RenameFlags::RENAME_NOREPLACE,
        ) {
            Ok(()) => {}
            Err(Errno::EEXIST) => {
                bail!("{} already exists (made during the export)", out.display())
            }
            Err(e) => return Err(e).with_ctx(|| format!("rename to {}", out.display())),
        }
        self.done = true;
        Ok(())
    }
}

impl Drop for Output {
    fn drop(&mut self) {
        if !self.done {
            let _ = unlinkat(&self.dir, self.tmp.as_os_str(), UnlinkatFlags::NoRemoveDir);
        }
    }
}

/// A hidden name beside the ACI, this process's own.
fn temp_name(name: &OsStr, pid: u32) -> OsString {
    let mut tmp = OsString::from(".");
    tmp.push(name);
    tmp.push(format!(".export-{pid}.tmp"));
    tmp
}

/// The kernel reads mount options from one page.
const MOUNT_DATA_MAX: usize = 4095;

/// A read-only overlay of lower dirs only: `upper` (a path, escaped) over the tree's `lowers`
/// (relative names, top first). Without upperdir and workdir nothing can be written to any of them.
fn readonly_overlay_opts(upper: &str, lowers: &[String]) -> String {
    let mut dirs = vec![mounts::escape_overlay_path(upper)];
    dirs.extend(lowers.iter().map(|l| mounts::escape_overlay_path(l)));
    format!("lowerdir={}", dirs.join(":"))
}

/// The app's root as it saw it: the overlay mounted in a mount namespace of this process's own
/// (made private before anything is mounted), opened, and detached at once; the fd keeps it
/// readable and no mount is left behind. `upper` is relative to the pod directory.
fn merged_root(
    pod_path: &Path,
    pod: &OwnedFd,
    upper: &str,
    lowers: &lowers::Lowers,
) -> Result<OwnedFd> {
    // stage1 is single-threaded, so unshare applies to the whole process.
    unshare(CloneFlags::CLONE_NEWNS).ctx("unshare a mount namespace")?;
    mounts::make_everything_private()?;
    // overlayfs clones each layer's mount, which must be in this namespace: the locked fd names
    // the host's, so the pod directory is opened again by its path and checked to be that one.
    let here = nix::fcntl::open(
        pod_path,
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .with_ctx(|| format!("open {}", pod_path.display()))?;
    let (a, b) = (
        fstat(pod).ctx("stat the pod directory")?,
        fstat(&here).ctx("stat the pod directory")?,
    );
    if (a.st_dev, a.st_ino) != (b.st_dev, b.st_ino) {
        bail!(
            "{} is no longer the locked pod directory",
            pod_path.display()
        );
    }
    let upper = fsutil::open_plain_dir(&here, upper).with_ctx(|| {
        format!(
            "its overlay upper directory {}",
            pod_path.join(upper).display()
        )
    })?;
    // The upper dir through the fd checked here: overlayfs resolves the name in this process, so
    // it is exactly that directory, whatever its path names now.
    let opts = readonly_overlay_opts(&fsutil::fd_path(&upper), &lowers.names);
    if opts.len() > MOUNT_DATA_MAX {
        bail!(
            "{} layers do not fit in one overlay mount's options ({} bytes, at most {MOUNT_DATA_MAX})",
            lowers.names.len() + 1,
            opts.len()
        );
    }
    // Before the mount point is made, so that a failure leaves no directory behind.
    chdir(&lowers.dir).with_ctx(|| format!("chdir {}", lowers.dir.display()))?;
    let template = std::env::temp_dir().join("podlog-export.XXXXXX");
    let target = mkdtemp(&template).with_ctx(|| format!("mkdtemp {}", template.display()))?;
    let mounted = mount(
        Some("overlay"),
        &target,
        Some("overlay"),
        MsFlags::MS_RDONLY | MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
        Some(opts.as_str()),
    )
    .with_ctx(|| format!("mount a read-only overlay ({opts}) on {}", target.display()));
    let root = mounted.and_then(|()| {
        let root = nix::fcntl::open(
            &target,
            OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .with_ctx(|| format!("open {}", target.display()));
        let detached = umount2(&target, MntFlags::MNT_DETACH)
            .with_ctx(|| format!("detach {}", target.display()));
        root.and_then(|r| detached.map(|()| r))
    });
    let cwd = chdir("/").ctx("chdir /");
    let removed = std::fs::remove_dir(&target).with_ctx(|| format!("rmdir {}", target.display()));
    let root = root?;
    cwd?;
    removed?;
    Ok(root)
}

/// The ACI: `manifest` first, then `rootfs` and everything below it, depth first with each
/// directory's entries sorted by name (bytes), so the same tree gives the same archive and every
/// directory comes before what it holds.
fn write_aci<W: Write>(
    w: W,
    image_manifest: &[u8],
    manifest_st: &FileStat,
    root: BorrowedFd<'_>,
) -> Result<()> {
    let mut ar = Builder::new(w);
    let mut h = header(manifest_st, EntryType::Regular);
    h.set_mode(0o644);
    h.set_uid(0);
    h.set_gid(0);
    h.set_size(image_manifest.len() as u64);
    ar.append_data(&mut h, "manifest", image_manifest)
        .ctx("append manifest")?;
    let st = fstat(root).ctx("stat the app's root")?;
    ar.append_data(
        &mut header(&st, EntryType::Directory),
        "rootfs",
        std::io::empty(),
    )
    .ctx("append rootfs")?;
    append_dir(&mut ar, root, Path::new("rootfs"), &mut HashMap::new())?;
    ar.finish().ctx("finish the archive")?;
    Ok(())
}

fn header(st: &FileStat, ty: EntryType) -> Header {
    let mut h = Header::new_gnu();
    h.set_entry_type(ty);
    h.set_mode(st.st_mode & 0o7777);
    h.set_uid(u64::from(st.st_uid));
    h.set_gid(u64::from(st.st_gid));
    h.set_mtime(u64::try_from(st.st_mtime).unwrap_or(0));
    h.set_size(0);
    h
}

/// The names in a directory, sorted by their bytes.
fn sorted_names(dir: BorrowedFd<'_>) -> Result<Vec<OsString>> {
    // Through /proc/self/fd: the directory the fd holds, a path with no symlink of the image.
    let path = fsutil::fd_path(&dir);
    let mut names: Vec<OsString> = std::fs::read_dir(&path)
        .and_then(|it| it.map(|e| e.map(|e| e.file_name())).collect())
        .with_ctx(|| format!("read directory {path}"))?;
    sort_names(&mut names);
    Ok(names)
}

fn sort_names(names: &mut [OsString]) {
    names.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
}

/// Appends what `dir` holds, each entry looked at from its parent's fd and never followed if it is
/// a symlink: nothing outside the root is read. A file with other names already written (`seen`,
/// by device and inode) is a hard link to the first, as tar and ACIs have it.
fn append_dir<W: Write>(
    ar: &mut Builder<W>,
    dir: BorrowedFd<'_>,
    prefix: &Path,
    seen: &mut HashMap<(u64, u64), PathBuf>,
) -> Result<()> {
    for name in sorted_names(dir)? {
        let path = prefix.join(&name);
        let what = || path.display().to_string();
        let st = fstatat(dir, name.as_os_str(), AtFlags::AT_SYMLINK_NOFOLLOW)
            .with_ctx(|| format!("stat {}", what()))?;
        let kind = SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT;
        let appended = match kind {
            SFlag::S_IFDIR => {
                let sub = openat(
                    dir,
                    name.as_os_str(),
                    OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
                    Mode::empty(),
                )
                .with_ctx(|| format!("open {}", what()))?;
                ar.append_data(
                    &mut header(&st, EntryType::Directory),
                    &path,
                    std::io::empty(),
                )
                .with_ctx(|| format!("append {}", what()))?;
                append_dir(ar, sub.as_fd(), &path, seen)?;
                continue;
            }
            SFlag::S_IFREG if st.st_nlink > 1 && seen.contains_key(&(st.st_dev, st.st_ino)) => {
                let mut h = header(&st, EntryType::Link);
                ar.append_link(&mut h, &path, &seen[&(st.st_dev, st.st_ino)])
            }
            SFlag::S_IFREG => {
                if st.st_nlink > 1 {
                    seen.insert((st.st_dev, st.st_ino), path.clone());
                }
                let fd = openat(
                    dir,
                    name.as_os_str(),
                    OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
                    Mode::empty(),
                )
                .with_ctx(|| format!("open {}", what()))?;
                // The size of the file opened, which is the one read.
                let st = fstat(&fd).with_ctx(|| format!("stat {}", what()))?;
                let mut h = header(&st, EntryType::Regular);
                let size = u64::try_from(st.st_size).unwrap_or(0);
                h.set_size(size);
                ar.append_data(&mut h, &path, Exact::new(File::from(fd), size))
            }
            SFlag::S_IFLNK => {
                let target = readlinkat(dir, name.as_os_str())
                    .with_ctx(|| format!("readlink {}", what()))?;
                let mut h = header(&st, EntryType::Symlink);
                // The target's bytes as they are: set_link_name would normalize `a//b` and a
                // trailing `/`; a long one goes in append_link's GNU long-link entry, raw.
                if target.len() < 100 {
                    h.set_link_name_literal(target.as_bytes())
                        .and_then(|()| ar.append_data(&mut h, &path, std::io::empty()))
                } else {
                    ar.append_link(&mut h, &path, &target)
                }
            }
            SFlag::S_IFCHR | SFlag::S_IFBLK => {
                let ty = if kind == SFlag::S_IFCHR {
                    EntryType::Char
                } else {
                    EntryType::Block
                };
                let mut h = header(&st, ty);
                h.set_device_major(libc::major(st.st_rdev))
                    .and_then(|()| h.set_device_minor(libc::minor(st.st_rdev)))
                    .and_then(|()| ar.append_data(&mut h, &path, std::io::empty()))
            }
            SFlag::S_IFIFO => {
                ar.append_data(&mut header(&st, EntryType::Fifo), &path, std::io::empty())
            }
            // A socket is a running process's, meaningless in an image (tar has no type for it).
            _ => continue,
        };
        appended.with_ctx(|| format!("append {}", what()))?;
    }
    Ok(())
}

/// Exactly `size` bytes of a file, or an error: the archive's header already says `size`, and a
/// file that shrank meanwhile must not shift every entry after it.
struct Exact<R> {
    inner: std::io::Take<R>,
    size: u64,
}

impl<R: Read> Exact<R> {
    fn new(inner: R, size: u64) -> Self {
        Exact {
            inner: inner.take(size),
            size,
        }
    }
}

impl<R: Read> Read for Exact<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        if n == 0 && !buf.is_empty() && self.inner.limit() > 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                format!(
                    "the file shrank while it was read ({} of {} bytes)",
                    self.size - self.inner.limit(),
                    self.size
                ),
            ));
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{symlink, PermissionsExt};

    #[test]
    fn overlay_options_put_the_upper_on_top() {
        assert_eq!(
            readonly_overlay_opts("/proc/self/fd/5", &["rootfs".into()]),
            "lowerdir=/proc/self/fd/5:rootfs"
        );
        assert_eq!(
            readonly_overlay_opts("/p:x", &["a/rootfs".into(), "b,c/rootfs".into()]),
            "lowerdir=/p\\:x:a/rootfs:b\\,c/rootfs"
        );
    }

    #[test]
    fn names_sort_by_bytes() {
        let mut names: Vec<OsString> = ["b", "a.txt", "a", "B", "\u{e9}", "a-"]
            .iter()
            .map(OsString::from)
            .collect();
        sort_names(&mut names);
        assert_eq!(names, ["B", "a", "a-", "a.txt", "b", "\u{e9}"]);
        assert_eq!(
            temp_name(OsStr::new("x.aci"), 42),
            OsString::from(".x.aci.export-42.tmp")
        );
    }

    #[test]
    fn manifest_must_be_an_image_manifest() {
        assert!(check_manifest(br#"{"acKind":"ImageManifest","name":"x"}"#).is_ok());
        assert!(check_manifest(br#"{"acKind":"PodManifest"}"#).is_err());
        assert!(check_manifest(b"nope").is_err());
    }

    #[test]
    fn a_short_file_is_an_error() {
        let mut out = Vec::new();
        let err = Exact::new(&b"abc"[..], 5)
            .read_to_end(&mut out)
            .unwrap_err();
        assert!(err.to_string().contains("3 of 5 bytes"), "{err}");
        let mut out = Vec::new();
        Exact::new(&b"abcdef"[..], 5).read_to_end(&mut out).unwrap();
        assert_eq!(out, b"abcde");
    }

    #[test]
    fn writes_the_tree_in_order_without_following_symlinks() {
        let t = tempfile::tempdir().unwrap();
        let root = t.path().join("root");
        std::fs::create_dir_all(root.join("a/b")).unwrap();
        std::fs::write(root.join("a.txt"), "hello").unwrap();
        std::fs::write(root.join("a/b/c"), "").unwrap();
        std::fs::hard_link(root.join("a/b/c"), root.join("hard")).unwrap();
        std::fs::set_permissions(root.join("a.txt"), std::fs::Permissions::from_mode(0o4750))
            .unwrap();
        symlink("/etc/passwd", root.join("link")).unwrap();
        symlink("../..", root.join("a/up")).unwrap();
        let long = "x/".repeat(80);
        symlink(&long, root.join("long")).unwrap();
        nix::unistd::mkfifo(&root.join("fifo"), Mode::from_bits_truncate(0o600)).unwrap();
        std::os::unix::net::UnixListener::bind(root.join("sock")).unwrap();
        let manifest = br#"{"acKind":"ImageManifest"}"#;
        let mst = fstat(File::open(t.path()).unwrap()).unwrap();
        let rootfd =
            nix::fcntl::open(&root, OFlag::O_RDONLY | OFlag::O_DIRECTORY, Mode::empty()).unwrap();

        let mut tar = Vec::new();
        write_aci(&mut tar, manifest, &mst, rootfd.as_fd()).unwrap();
        let mut archive = tar::Archive::new(&tar[..]);
        let mut seen = Vec::new();
        for e in archive.entries().unwrap() {
            let mut e = e.unwrap();
            let path = e.path().unwrap().display().to_string();
            let link = e.link_name().unwrap().map(|l| l.display().to_string());
            let mut body = String::new();
            e.read_to_string(&mut body).unwrap();
            seen.push((
                path,
                e.header().entry_type(),
                link,
                body,
                e.header().mode().unwrap(),
            ));
        }
        let names: Vec<&str> = seen.iter().map(|s| s.0.as_str()).collect();
        assert_eq!(
            names,
            [
                "manifest",
                "rootfs",
                "rootfs/a",
                "rootfs/a/b",
                "rootfs/a/b/c",
                "rootfs/a/up",
                "rootfs/a.txt",
                "rootfs/fifo",
                "rootfs/hard",
                "rootfs/link",
                "rootfs/long",
            ]
        );
        let find = |n: &str| seen.iter().find(|s| s.0 == n).unwrap();
        assert_eq!(find("manifest").3, String::from_utf8_lossy(manifest));
        assert_eq!(find("rootfs/a.txt").3, "hello");
        assert_eq!(find("rootfs/a.txt").4, 0o4750);
        assert_eq!(find("rootfs/link").1, EntryType::Symlink);
        assert_eq!(find("rootfs/link").2.as_deref(), Some("/etc/passwd"));
        assert_eq!(find("rootfs/a/up").2.as_deref(), Some("../.."));
        assert_eq!(find("rootfs/long").2.as_deref(), Some(long.as_str()));
        assert_eq!(find("rootfs/fifo").1, EntryType::Fifo);
        assert_eq!(find("rootfs/hard").1, EntryType::Link);
        assert_eq!(find("rootfs/hard").2.as_deref(), Some("rootfs/a/b/c"));
        assert_eq!(find("rootfs/a").1, EntryType::Directory);
    }
}
