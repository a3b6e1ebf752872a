//! Writes archive entries into a directory tree without ever touching anything outside it, and stages
//! every extraction in a fresh private directory that is renamed into place only when complete.
//!
//! How each hostile or unusual entry is handled (the archive walkers refuse `..` and absolute names
//! before an entry gets here):
//! - parents are looked up with openat2(RESOLVE_IN_ROOT): a symlink among them (`a -> /etc`, then
//!   `a/passwd`) is followed as if the root were `/`, so the write lands in `<root>/etc/passwd`, as the
//!   image itself would see it at run time. A parent that is a symlink to nothing is refused.
//! - the leaf is created with O_CREAT|O_EXCL|O_NOFOLLOW, symlinkat, mknodat or linkat on a single name
//!   in the parent's fd: a symlink already at that name is replaced, never written through.
//! - symlinks are created with whatever target they carry: they are only dangerous when followed, and
//!   every lookup here resolves them inside the root.
//! - hardlinks must name an entry already extracted inside the tree (resolved in the root); anything
//!   else is refused as EHOSTILE_ARCHIVE.
//! - character and block devices are created only with `allow_devices`; otherwise skipped and counted
//!   (stage1 mounts its own /dev, and refusing would reject real base images that ship /dev nodes).
//! - ownership, setuid/setgid and sticky bits are kept as in the image (we run as root); ownership is
//!   set before the mode because chown clears setuid bits.
//! - `trusted.overlay.*` xattrs are dropped: the tree becomes an overlayfs lower directory, where they
//!   would act as redirects and opaque markers chosen by the image author.
//! - directory modes, owners and mtimes are applied at the end, on a directory reopened without
//!   following a final symlink, so a directory replaced later by a symlink never passes them on.

use std::collections::HashMap;
use std::fs::File;
use std::io::Write;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::Path;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{self, SyncSender};
use std::sync::Arc;
use std::thread::{self, JoinHandle};

use rustix::fs::{
    self, AtFlags, FileType, Gid, Mode, OFlags, RenameFlags, Timespec, Timestamps, Uid,
};
use rustix::io::Errno;

use crate::archive::{join, show, Budget, Diagnosis, Entry};
use crate::errors::{Code, Context, Error, Result};
use crate::fsat;

#[derive(Debug, Clone, Copy, Default)]
pub struct Options {
    pub allow_devices: bool,
    /// syncfs the new tree before renaming it into place, and fsync the destination's parent after.
    pub sync: bool,
}

/// How much OCI layers may unpack to (bytes of uncompressed tar). The values come from the caller
/// (src/config-file.ts holds the defaults and says why); the default here is no limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub layer: u64,
    pub image: u64,
    /// Past `ratio_floor` bytes, a layer may unpack to at most `ratio` times its compressed size.
    pub ratio: u64,
    pub ratio_floor: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            layer: u64::MAX,
            image: u64::MAX,
            ratio: u64::MAX,
            ratio_floor: u64::MAX,
        }
    }
}

impl Limits {
    /// What the archive `archive` (a layer, or an ACI) may unpack to, when what was unpacked below it
    /// (the image's lower layers, or the images it depends on) came to `used` bytes.
    pub fn budget(&self, archive: &Path, used: u64) -> Result<Budget> {
        let compressed = std::fs::metadata(archive)
            .context(|| format!("inspecting {}", archive.display()))?
            .len();
        let left = self.image.saturating_sub(used);
        let (max, limit) = if left < self.layer {
            let below = if used > 0 {
                format!(" less the {used} bytes of the layers below")
            } else {
                String::new()
            };
            (
                left,
                format!("image size limit ({} bytes){below}", self.image),
            )
        } else {
            (self.layer, "layer size limit".to_string())
        };
        Ok(Budget {
            max,
            limit,
            ratio: self.ratio,
            ratio_floor: self.ratio_floor,
            compressed,
        })
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    pub files: u32,
    pub dirs: u32,
    pub symlinks: u32,
    pub hardlinks: u32,
    pub fifos: u32,
    pub devices: u32,
    pub skipped_devices: u32,
    pub bytes: u64,
    /// Bytes of uncompressed tar read: what the size limits count.
    pub unpacked: u64,
}

#[derive(Debug, Clone)]
struct Meta {
    mode: u32,
    uid: u32,
    gid: u32,
    mtime: Option<u64>,
    xattrs: Vec<(String, Vec<u8>)>,
}

/// Why creating a leaf failed: a system error the caller may resolve (EEXIST) or explain, or an error
/// that is already final (a truncated archive while copying data, an unsupported entry type).
enum Fail {
    Sys(Errno),
    Final(Error),
}

impl From<Errno> for Fail {
    fn from(e: Errno) -> Self {
        Fail::Sys(e)
    }
}

impl From<Error> for Fail {
    fn from(e: Error) -> Self {
        Fail::Final(e)
    }
}

const COPY_BUFFER: usize = 256 * 1024;
/// Pieces of file data in flight to the writer (each up to COPY_BUFFER bytes, twice that at most).
const WRITES_IN_FLIGHT: usize = 64;

/// A file the walk created, for the writer to fill.
struct Created {
    file: File,
    /// The entry as the archive spells it, for messages.
    shown: String,
}

/// What the writer does after a file's last piece of data: its metadata, set after the data.
struct Finish {
    owner: (Option<Uid>, Option<Gid>),
    mode: Mode,
    xattrs: Vec<(String, Vec<u8>)>,
    mtime: Option<u64>,
}

struct Piece {
    file: Arc<Created>,
    data: Vec<u8>,
    last: Option<Finish>,
}

/// Writes regular files' data and metadata on a thread of its own, while the walk creates the next
/// files: on a disk file system, creating a file and writing it cost kernel time of the same order,
/// and the two then overlap. The walk creates every file itself (O_EXCL, in the parent it resolved),
/// so what the writer does cannot change where anything lands; it only fills files through their fds.
struct Writer {
    out: Option<SyncSender<Piece>>,
    thread: Option<JoinHandle<Result<()>>>,
    failed: Arc<AtomicBool>,
}

impl Writer {
    fn start() -> Writer {
        let (out, pieces) = mpsc::sync_channel::<Piece>(WRITES_IN_FLIGHT);
        let failed = Arc::new(AtomicBool::new(false));
        let flag = failed.clone();
        let thread = thread::spawn(move || {
            let mut failure = None;
            for piece in pieces {
                // After a failure the rest is drained unwritten: the walk stops at its next piece.
                if failure.is_none() {
                    failure = write_piece(piece).err();
                    flag.store(failure.is_some(), Ordering::Relaxed);
                }
            }
            failure.map_or(Ok(()), Err)
        });
        Writer {
            out: Some(out),
            thread: Some(thread),
            failed,
        }
    }

    fn send(&mut self, piece: Piece) -> Result<()> {
        let sent = match &self.out {
            Some(out) if !self.failed.load(Ordering::Relaxed) => out.send(piece).is_ok(),
            _ => false,
        };
        if sent {
            return Ok(());
        }
        // The writer failed: its error ends the walk.
        self.wait()?;
        Err(Error::new(
            Code::Io,
            "the file writing thread stopped early",
        ))
    }

    /// Waits for every piece sent to be written; the first failure, if any.
    fn wait(&mut self) -> Result<()> {
        self.out = None;
        match self.thread.take() {
            Some(thread) => thread
                .join()
                .map_err(|_| Error::new(Code::Io, "the file writing thread panicked"))?,
            None => Ok(()),
        }
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        // Dropped on a failure of the walk, which reports its own error; nothing must write into the
        // tree once it is being removed.
        let _ = self.wait();
    }
}

fn write_piece(piece: Piece) -> Result<()> {
    let Piece { file, data, last } = piece;
    let what = || format!("extracting {}", file.shown);
    let fd = &file.file;
    (&*fd).write_all(&data).context(what)?;
    let Some(finish) = last else {
        return Ok(());
    };
    let (uid, gid) = finish.owner;
    if uid.is_some() {
        fs::fchown(fd, uid, gid).context(what)?;
    }
    fs::fchmod(fd, finish.mode).context(what)?;
    set_xattrs(fd.as_fd(), &finish.xattrs).context(what)?;
    if let Some(t) = finish.mtime {
        fs::futimens(fd, &timestamps(t)).context(what)?;
    }
    Ok(())
}

pub struct Tree<'a> {
    root: BorrowedFd<'a>,
    allow_devices: bool,
    /// Ownership can only be kept when we may chown; unprivileged runs get files owned by the caller.
    keep_owner: bool,
    dir_meta: HashMap<Vec<u8>, Meta>,
    /// The last parent directory looked up: archives list a directory's files together.
    last_parent: Option<(Vec<u8>, Rc<OwnedFd>)>,
    buf: Vec<u8>,
    writer: Writer,
    stats: Stats,
}

impl<'a> Tree<'a> {
    pub fn new(root: BorrowedFd<'a>, allow_devices: bool) -> Self {
        let root_meta = Meta {
            mode: 0o755,
            uid: 0,
            gid: 0,
            mtime: None,
            xattrs: Vec::new(),
        };
        Tree {
            root,
            allow_devices,
            keep_owner: rustix::process::geteuid().is_root(),
            dir_meta: HashMap::from([(Vec::new(), root_meta)]),
            last_parent: None,
            buf: vec![0; COPY_BUFFER],
            writer: Writer::start(),
            stats: Stats::default(),
        }
    }

    /// Called after anything is removed: the cached parent may have been one of the removed paths.
    pub fn forget_cached_parent(&mut self) {
        self.last_parent = None;
    }

    /// Writes `entry` at `comps` (empty = the root itself). `hardlink` is the link's target, already
    /// turned into components of this tree by the caller (ACI link names start with `rootfs/`).
    pub fn put(
        &mut self,
        comps: &[&[u8]],
        entry: &mut Entry<'_>,
        hardlink: Option<&[&[u8]]>,
        diagnosis: &Diagnosis,
    ) -> Result<()> {
        let kind = entry.header().entry_type();
        let name = join(comps);
        let meta = read_meta(entry, &name)?;
        let Some((leaf, parents)) = comps.split_last() else {
            if !kind.is_dir() {
                return Err(Error::new(
                    Code::HostileArchive,
                    format!("the root entry would replace the root directory with a {kind:?}"),
                ));
            }
            self.dir_meta.insert(name, meta);
            return Ok(());
        };
        if (kind.is_character_special() || kind.is_block_special()) && !self.allow_devices {
            self.stats.skipped_devices += 1;
            return Ok(());
        }
        // Messages name the entry as the archive spells it.
        let shown = show(&entry.path_bytes());
        let parent = self
            .dir(parents, true)
            .map_err(|e| Error::new(e.code, format!("entry {shown}: {}", e.message)))?;
        let parent = parent.as_fd();
        let mut created = self.create(parent, leaf, &name, entry, &meta, hardlink, diagnosis);
        if let Err(Fail::Sys(Errno::EXIST)) = created {
            created = if kind.is_dir()
                && fsat::is_dir_at(parent, leaf)
                    .context(|| format!("inspecting {}", show(&name)))?
            {
                Ok(())
            } else {
                fsat::remove_all_at(parent, leaf)
                    .context(|| format!("replacing {}", show(&name)))?;
                self.forget_cached_parent();
                self.create(parent, leaf, &name, entry, &meta, hardlink, diagnosis)
            };
        }
        match created {
            Ok(()) => {}
            Err(Fail::Final(e)) => return Err(e),
            Err(Fail::Sys(e)) => return Err(explain(e, kind, &shown, hardlink)),
        }
        if kind.is_dir() {
            self.stats.dirs += 1;
            self.dir_meta.insert(name, meta);
        }
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    fn create(
        &mut self,
        parent: BorrowedFd<'_>,
        leaf: &[u8],
        name: &[u8],
        entry: &mut Entry<'_>,
        meta: &Meta,
        hardlink: Option<&[&[u8]]>,
        diagnosis: &Diagnosis,
    ) -> std::result::Result<(), Fail> {
        let kind = entry.header().entry_type();
        let mode = Mode::from_raw_mode(meta.mode & 0o7777);
        let (uid, gid) = self.owner(meta);
        match kind {
            tar::EntryType::Regular | tar::EntryType::Continuous => {
                let flags = OFlags::WRONLY
                    | OFlags::CREATE
                    | OFlags::EXCL
                    | OFlags::NOFOLLOW
                    | OFlags::CLOEXEC;
                let file = Arc::new(Created {
                    file: File::from(fs::openat(parent, leaf, flags, Mode::from_raw_mode(0o600))?),
                    shown: show(&entry.path_bytes()),
                });
                let size = entry.size();
                let (writer, buf) = (&mut self.writer, &mut self.buf);
                let mut data = Vec::with_capacity(size.min(COPY_BUFFER as u64) as usize);
                self.stats.bytes += diagnosis.copy_data(entry, size, buf, |chunk| {
                    data.extend_from_slice(chunk);
                    if data.len() < COPY_BUFFER {
                        return Ok(());
                    }
                    let full = std::mem::replace(&mut data, Vec::with_capacity(COPY_BUFFER));
                    writer.send(Piece {
                        file: file.clone(),
                        data: full,
                        last: None,
                    })
                })?;
                let last = Finish {
                    owner: (uid, gid),
                    mode,
                    xattrs: meta.xattrs.clone(),
                    mtime: meta.mtime,
                };
                self.writer.send(Piece {
                    file,
                    data,
                    last: Some(last),
                })?;
                self.stats.files += 1;
            }
            tar::EntryType::Directory => fs::mkdirat(parent, leaf, Mode::from_raw_mode(0o700))?,
            tar::EntryType::Symlink => {
                let target = entry
                    .link_name_bytes()
                    .filter(|t| !t.is_empty() && !t.contains(&0))
                    .ok_or_else(|| {
                        Error::new(
                            Code::BadArchive,
                            format!(
                                "symlink {} has no target, or one with a NUL byte",
                                show(name)
                            ),
                        )
                    })?;
                fs::symlinkat(&*target, parent, leaf)?;
                if uid.is_some() {
                    fs::chownat(parent, leaf, uid, gid, AtFlags::SYMLINK_NOFOLLOW)?;
                }
                if let Some(t) = meta.mtime {
                    fs::utimensat(parent, leaf, &timestamps(t), AtFlags::SYMLINK_NOFOLLOW)?;
                }
                self.stats.symlinks += 1;
            }
            tar::EntryType::Link => {
                let (target_leaf, target_parents) =
                    hardlink.and_then(|t| t.split_last()).ok_or(Errno::NOENT)?;
                let target_dir = match self.dir(target_parents, false) {
                    Ok(dir) => dir,
                    Err(e) if e.code == Code::NoEntry => return Err(Fail::Sys(Errno::NOENT)),
                    Err(e) => return Err(Fail::Final(e)),
                };
                fs::linkat(
                    target_dir.as_fd(),
                    *target_leaf,
                    parent,
                    leaf,
                    AtFlags::empty(),
                )?;
                self.stats.hardlinks += 1;
            }
            tar::EntryType::Char | tar::EntryType::Block | tar::EntryType::Fifo => {
                let file_type = match kind {
                    tar::EntryType::Char => FileType::CharacterDevice,
                    tar::EntryType::Block => FileType::BlockDevice,
                    _ => FileType::Fifo,
                };
                let dev = if file_type == FileType::Fifo {
                    0
                } else {
                    device_number(entry, name)?
                };
                fs::mknodat(parent, leaf, file_type, mode, dev)?;
                if uid.is_some() {
                    fs::chownat(parent, leaf, uid, gid, AtFlags::SYMLINK_NOFOLLOW)?;
                }
                // mknod applied the umask. The node was just made in our private directory, so
                // changing it by name cannot be redirected.
                fs::chmodat(parent, leaf, mode, AtFlags::empty())?;
                if file_type == FileType::Fifo {
                    self.stats.fifos += 1;
                } else {
                    self.stats.devices += 1;
                }
            }
            other => {
                return Err(Fail::Final(Error::new(
                    Code::BadArchive,
                    format!(
                        "entry {} has a type podlog does not extract: {other:?}",
                        show(name)
                    ),
                )))
            }
        }
        Ok(())
    }

    /// Opens the directory at `comps`, creating missing components when `create` is set. Symlinks on
    /// the way are followed inside the root (see the module comment).
    pub fn dir(&mut self, comps: &[&[u8]], create: bool) -> Result<Rc<OwnedFd>> {
        let path = join(comps);
        if let Some((cached, fd)) = &self.last_parent {
            if *cached == path {
                return Ok(fd.clone());
            }
        }
        let fd = match fsat::open_dir_in_root(self.root, &path, true) {
            Err(Errno::NOENT) if create => self.make_dirs(comps)?,
            other => other.map_err(|e| lookup_error(e, &path))?,
        };
        let fd = Rc::new(fd);
        self.last_parent = Some((path, fd.clone()));
        Ok(fd)
    }

    /// Creates the missing directories of `comps` one at a time, as 0755 root-owned like GNU tar's
    /// implied directories (an explicit entry later in the archive sets its own metadata).
    fn make_dirs(&mut self, comps: &[&[u8]]) -> Result<OwnedFd> {
        let mut dir =
            fsat::open_dir_in_root(self.root, b"", true).context(|| "opening the root")?;
        for (i, comp) in comps.iter().enumerate() {
            let path = join(&comps[..=i]);
            dir = match fsat::open_dir_in_root(self.root, &path, true) {
                Err(Errno::NOENT) => {
                    match fs::mkdirat(&dir, *comp, Mode::from_raw_mode(0o755)) {
                        Ok(()) => self.stats.dirs += 1,
                        // Something is there yet cannot be resolved: a symlink pointing at nothing.
                        Err(Errno::EXIST) => {
                            return Err(Error::new(
                                Code::HostileArchive,
                                format!(
                                    "{} is a symlink to a directory missing from the tree (symlink escape); \
                                     refusing to write through it",
                                    show(&path)
                                ),
                            ))
                        }
                        Err(e) => return Err(Error::io(format!("creating {}", show(&path)), &e.into())),
                    }
                    fsat::open_dir_in_root(self.root, &path, true)
                        .map_err(|e| lookup_error(e, &path))?
                }
                other => other.map_err(|e| lookup_error(e, &path))?,
            };
        }
        Ok(dir)
    }

    fn owner(&self, meta: &Meta) -> (Option<Uid>, Option<Gid>) {
        if self.keep_owner {
            (Some(Uid::from_raw(meta.uid)), Some(Gid::from_raw(meta.gid)))
        } else {
            (None, None)
        }
    }

    /// Applies the directories' metadata now that nothing more will be created in them.
    pub fn finish(mut self) -> Result<Stats> {
        self.writer.wait()?;
        for (path, meta) in &self.dir_meta {
            let dir = match fsat::open_dir_in_root(self.root, path, false) {
                Ok(dir) => dir,
                // Replaced by a later entry (a symlink or a file), or removed by a whiteout.
                Err(Errno::NOENT | Errno::LOOP | Errno::NOTDIR) => continue,
                Err(e) => return Err(Error::io(format!("reopening {}", show(path)), &e.into())),
            };
            let (uid, gid) = self.owner(meta);
            let what = || format!("setting the metadata of directory {}", show(path));
            if uid.is_some() {
                fs::fchown(&dir, uid, gid).context(what)?;
            }
            fs::fchmod(&dir, Mode::from_raw_mode(meta.mode & 0o7777)).context(what)?;
            set_xattrs(dir.as_fd(), &meta.xattrs).context(what)?;
            if let Some(t) = meta.mtime {
                fs::futimens(&dir, &timestamps(t)).context(what)?;
            }
        }
        Ok(self.stats)
    }
}

fn read_meta(entry: &mut Entry<'_>, name: &[u8]) -> Result<Meta> {
    let bad = |field: &str| {
        Error::new(
            Code::BadArchive,
            format!("entry {} has an invalid {field}", show(name)),
        )
    };
    let header = entry.header();
    let mode = header.mode().map_err(|_| bad("mode"))?;
    // u32::MAX is chown's "leave unchanged", not an owner.
    let id = |v: std::io::Result<u64>, field: &str| {
        v.ok()
            .and_then(|v| u32::try_from(v).ok())
            .filter(|v| *v != u32::MAX)
            .ok_or_else(|| bad(field))
    };
    let uid = id(header.uid(), "uid")?;
    let gid = id(header.gid(), "gid")?;
    let mtime = header.mtime().ok();
    let mut xattrs = Vec::new();
    if let Some(extensions) = entry.pax_extensions().map_err(|_| bad("pax header"))? {
        for ext in extensions {
            let ext = ext.map_err(|_| bad("pax header"))?;
            let Some(attr) = ext.key().ok().and_then(|k| k.strip_prefix("SCHILY.xattr.")) else {
                continue;
            };
            if !attr.starts_with("trusted.overlay.") {
                xattrs.push((attr.to_string(), ext.value_bytes().to_vec()));
            }
        }
    }
    Ok(Meta {
        mode,
        uid,
        gid,
        mtime,
        xattrs,
    })
}

fn device_number(entry: &Entry<'_>, name: &[u8]) -> std::result::Result<u64, Fail> {
    let header = entry.header();
    match (header.device_major(), header.device_minor()) {
        (Ok(Some(major)), Ok(Some(minor))) => Ok(fs::makedev(major, minor)),
        _ => Err(Fail::Final(Error::new(
            Code::BadArchive,
            format!("device {} has no valid device number", show(name)),
        ))),
    }
}

fn set_xattrs(fd: BorrowedFd<'_>, xattrs: &[(String, Vec<u8>)]) -> std::result::Result<(), Errno> {
    for (name, value) in xattrs {
        fs::fsetxattr(fd, name.as_str(), value, fs::XattrFlags::empty())?;
    }
    Ok(())
}

fn timestamps(mtime: u64) -> Timestamps {
    let t = Timespec {
        tv_sec: i64::try_from(mtime).unwrap_or(i64::MAX),
        tv_nsec: 0,
    };
    Timestamps {
        last_access: t,
        last_modification: t,
    }
}

fn lookup_error(e: Errno, path: &[u8]) -> Error {
    match e {
        Errno::NOTDIR => Error::new(
            Code::BadArchive,
            format!(
                "{} is not a directory, yet entries are written below it",
                show(path)
            ),
        ),
        Errno::LOOP => Error::new(
            Code::HostileArchive,
            format!(
                "{} is a symlink loop, yet entries are written below it",
                show(path)
            ),
        ),
        Errno::NAMETOOLONG => too_long(&show(path)),
        _ => Error::io(format!("opening directory {}", show(path)), &e.into()),
    }
}

fn explain(e: Errno, kind: tar::EntryType, shown: &str, hardlink: Option<&[&[u8]]>) -> Error {
    if kind == tar::EntryType::Link && matches!(e, Errno::NOENT | Errno::PERM | Errno::NOTDIR) {
        let target = hardlink.map(join).unwrap_or_default();
        return Error::new(
            Code::HostileArchive,
            format!(
                "hardlink {shown} points at {}, which is not a file already extracted in the tree (hardlink escape)",
                show(&target)
            ),
        );
    }
    if e == Errno::NAMETOOLONG {
        return too_long(shown);
    }
    Error::io(format!("extracting {shown}"), &e.into())
}

fn too_long(shown: &str) -> Error {
    Error::new(
        Code::BadArchive,
        format!("{shown}: a name component is longer than the file system takes (255 bytes)"),
    )
}

/// Runs `fill` on a fresh private directory next to `dest`, then renames it to `dest`. On any failure
/// the directory is removed, so `dest` is either absent or complete. The staging name starts with `.`
/// and contains `.podlog-tmp-`, so that a collector can find what a killed process left behind.
pub fn into_fresh_dir<T>(
    dest: &Path,
    sync: bool,
    fill: impl FnOnce(BorrowedFd<'_>) -> Result<T>,
) -> Result<T> {
    static SEQUENCE: AtomicU64 = AtomicU64::new(0);
    let invalid = || {
        Error::new(
            Code::InvalidArgument,
            format!("{} is not a usable destination", dest.display()),
        )
    };
    let (parent_path, leaf) = fsat::split_leaf(dest).ok_or_else(invalid)?;
    let parent =
        fsat::open_dir(parent_path).context(|| format!("opening {}", parent_path.display()))?;
    match fs::statat(&parent, leaf, AtFlags::SYMLINK_NOFOLLOW) {
        Err(Errno::NOENT) => {}
        Ok(_) => {
            return Err(Error::new(
                Code::Exists,
                format!("{} already exists", dest.display()),
            ))
        }
        Err(e) => {
            return Err(Error::io(
                format!("inspecting {}", dest.display()),
                &e.into(),
            ))
        }
    }
    let staging = format!(
        ".{}.podlog-tmp-{}-{}",
        leaf.to_string_lossy(),
        std::process::id(),
        SEQUENCE.fetch_add(1, Ordering::Relaxed)
    );
    fs::mkdirat(&parent, staging.as_str(), Mode::from_raw_mode(0o700))
        .context(|| format!("creating a staging directory in {}", parent_path.display()))?;
    let result = fs::openat(
        &parent,
        staging.as_str(),
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .context(|| format!("opening {staging}"))
    .and_then(|root| {
        let value = fill(root.as_fd())?;
        if sync {
            fs::syncfs(&root).context(|| format!("syncing {staging}"))?;
        }
        Ok(value)
    })
    .and_then(|value| {
        fs::renameat_with(
            &parent,
            staging.as_str(),
            &parent,
            leaf,
            RenameFlags::NOREPLACE,
        )
        .context(|| format!("renaming the new tree to {}", dest.display()))?;
        if sync {
            fs::fsync(&parent).context(|| format!("syncing {}", parent_path.display()))?;
        }
        Ok(value)
    });
    if let Err(mut e) = result {
        // ENOENT: the rename happened and only the final fsync failed; the tree is complete.
        match fsat::remove_all_at(parent.as_fd(), staging.as_bytes()) {
            Ok(()) | Err(Errno::NOENT) => {}
            Err(cleanup) => {
                e.message +=
                    &format!(" (and removing the staging directory {staging} failed: {cleanup})");
            }
        }
        return Err(e);
    }
    result
}
