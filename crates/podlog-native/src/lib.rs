//! podlog's native addon: thin napi bindings over the modules below. Errors reach JS as
//! `"<CODE>: <message>"`; `src/native.ts` turns them into PodlogError with that code.

mod aci;
mod archive;
mod compression;
mod errors;
mod extract;
mod fsat;
mod layer;
mod lock;
mod mountinfo;
mod pidfd;
mod remove;
mod shift;
mod treehash;
mod whiteout;

#[cfg(test)]
mod properties;
#[cfg(test)]
mod tests;

use std::os::fd::{AsFd, BorrowedFd, FromRawFd, IntoRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::time::Duration;

use napi::bindgen_prelude::*;
use napi_derive::napi;

use crate::errors::{Code, Context, Error as PodlogError};

#[napi(object)]
pub struct ImageInfo {
    /// `sha512-<128 hex>`: sha512 of the uncompressed tar (the appc image id).
    pub id: String,
    /// `sha512-<64 hex>`: rkt's image key, the id cut short.
    pub key: String,
    /// "none", "gzip", "bzip2", "xz" or "zstd".
    pub compression: String,
    /// Size of the uncompressed tar in bytes.
    pub size: i64,
    /// The manifest's JSON text, checked to be JSON with acKind "ImageManifest".
    pub manifest: String,
}

#[napi(object)]
pub struct ImportedImage {
    pub image: ImageInfo,
    pub stats: ExtractStats,
    /// rkt's tree hash of the tree directory once rendered: `sha512-<64 hex>`.
    pub tree_hash: String,
}

#[napi(object)]
#[derive(Default)]
pub struct ExtractOptions {
    /// Create character and block devices (default false: they are skipped and counted).
    pub allow_devices: Option<bool>,
    /// syncfs the tree before renaming it into place, fsync its parent after (default false).
    pub sync: Option<bool>,
    /// extractLayers only: bytes of uncompressed tar one layer may unpack to (default: no limit).
    pub max_layer_size: Option<i64>,
    /// extractLayers only: bytes of uncompressed tar all the layers may unpack to (default: no limit).
    pub max_image_size: Option<i64>,
    /// extractLayers only: past `ratioFloor` bytes, a layer may unpack to at most this many times its
    /// compressed size (default: no limit).
    pub max_ratio: Option<i64>,
    pub ratio_floor: Option<i64>,
}

#[napi(object)]
pub struct ExtractStats {
    pub files: u32,
    pub dirs: u32,
    pub symlinks: u32,
    pub hardlinks: u32,
    pub fifos: u32,
    pub devices: u32,
    pub skipped_devices: u32,
    /// Bytes of regular-file data written.
    pub bytes: i64,
    /// extractLayers: bytes of uncompressed tar read, what the size limits count (0 for ACIs).
    pub unpacked: i64,
}

#[napi(object)]
pub struct RenderedImage {
    pub manifest: String,
    pub stats: ExtractStats,
}

/// One image of a dependency chain for renderImages.
#[napi(object)]
pub struct ChainImage {
    pub path: String,
    /// The image manifest's `pathWhitelist` (absolute paths); empty or absent means everything.
    pub path_whitelist: Option<Vec<String>>,
    /// Depth in the dependency tree: 0 for the rendered image, 1 for its dependencies, ...
    pub level: u32,
}

/// What removeTrees did with one path.
#[napi(object)]
pub struct RemovedTree {
    pub path: String,
    /// Absent when the tree is gone (or was not there); else the error's code, `EBUSY` for a mount
    /// point in the tree.
    pub code: Option<String>,
    pub error: Option<String>,
}

#[napi(object)]
pub struct MountEntry {
    pub mount_id: u32,
    pub parent_id: u32,
    pub major_minor: String,
    /// The path inside the mounted filesystem that is mounted here (not `/` for bind mounts).
    pub root: String,
    pub mount_point: String,
    pub options: String,
    pub fs_type: String,
    pub source: String,
    pub super_options: String,
}

impl From<aci::ImageInfo> for ImageInfo {
    fn from(info: aci::ImageInfo) -> Self {
        ImageInfo {
            id: info.id,
            key: info.key,
            compression: info.compression.name().to_string(),
            size: info.size as i64,
            manifest: info.manifest,
        }
    }
}

impl From<extract::Stats> for ExtractStats {
    fn from(s: extract::Stats) -> Self {
        ExtractStats {
            files: s.files,
            dirs: s.dirs,
            symlinks: s.symlinks,
            hardlinks: s.hardlinks,
            fifos: s.fifos,
            devices: s.devices,
            skipped_devices: s.skipped_devices,
            bytes: s.bytes as i64,
            unpacked: s.unpacked as i64,
        }
    }
}

impl From<&ExtractOptions> for extract::Options {
    fn from(o: &ExtractOptions) -> Self {
        extract::Options {
            allow_devices: o.allow_devices.unwrap_or(false),
            sync: o.sync.unwrap_or(false),
        }
    }
}

impl From<&ExtractOptions> for extract::Limits {
    fn from(o: &ExtractOptions) -> Self {
        // A negative limit can only be a mistake: taken as 0, it refuses, the safe reading.
        let bound = |v: Option<i64>, none: u64| v.map_or(none, |v| u64::try_from(v).unwrap_or(0));
        let unlimited = extract::Limits::default();
        extract::Limits {
            layer: bound(o.max_layer_size, unlimited.layer),
            image: bound(o.max_image_size, unlimited.image),
            ratio: bound(o.max_ratio, unlimited.ratio),
            ratio_floor: bound(o.ratio_floor, unlimited.ratio_floor),
        }
    }
}

/// A task whose work is one closure run on the libuv thread pool, resolving to its result.
pub struct Job<T: Send + 'static>(Option<Box<dyn FnOnce() -> errors::Result<T> + Send>>);

impl<T: Send + ToNapiValue + TypeName + 'static> Task for Job<T> {
    type Output = T;
    type JsValue = T;

    fn compute(&mut self) -> Result<T> {
        let work = self
            .0
            .take()
            .ok_or_else(|| Error::from_reason("EIO: task ran twice"))?;
        Ok(work()?)
    }

    fn resolve(&mut self, _env: Env, output: T) -> Result<T> {
        Ok(output)
    }
}

fn job<T: Send + ToNapiValue + TypeName + 'static>(
    work: impl FnOnce() -> errors::Result<T> + Send + 'static,
) -> AsyncTask<Job<T>> {
    AsyncTask::new(Job(Some(Box::new(work))))
}

/// Checks an ACI (compression, layout, manifest) and computes its image id. Reads the whole file,
/// refused as soon as it unpacks past the options' size limits.
#[napi(ts_return_type = "Promise<ImageInfo>")]
pub fn read_image(path: String, options: Option<ExtractOptions>) -> AsyncTask<Job<ImageInfo>> {
    job(move || {
        let info = aci::read_image(Path::new(&path), (&options.unwrap_or_default()).into())?;
        Ok(info.into())
    })
}

/// Imports an ACI reading it once: checks it and computes its id (readImage), renders its rootfs/ to
/// `<tree>/rootfs` (extractImage; `tree` is a directory that holds nothing else) and computes the tree
/// hash of `tree` (treeHash), within the options' size limits. With `copyTo`, a new file, the bytes
/// read are written there too: stored, that copy is the archive that was checked. The archive's hash
/// and the copy are done on a thread beside the extraction, and the tree hash starts as soon as the
/// tree is complete. On failure no rootfs is left; a partial copy is the caller's to remove.
#[napi(ts_return_type = "Promise<ImportedImage>")]
pub fn import_image(
    path: String,
    tree: String,
    copy_to: Option<String>,
    options: Option<ExtractOptions>,
) -> AsyncTask<Job<ImportedImage>> {
    job(move || {
        let options = options.unwrap_or_default();
        let imported = aci::import(
            Path::new(&path),
            Path::new(&tree),
            copy_to.as_deref().map(Path::new),
            (&options).into(),
            (&options).into(),
        )?;
        Ok(ImportedImage {
            image: imported.image.into(),
            stats: imported.stats.into(),
            tree_hash: imported.tree_hash,
        })
    })
}

/// Extracts an ACI's rootfs/ to `dest`, which must not exist: into a private staging directory next
/// to it first, renamed into place when complete, removed on failure.
#[napi(ts_return_type = "Promise<RenderedImage>")]
pub fn extract_image(
    path: String,
    dest: String,
    options: Option<ExtractOptions>,
) -> AsyncTask<Job<RenderedImage>> {
    job(move || {
        let opts = (&options.unwrap_or_default()).into();
        let (manifest, stats) = aci::render(Path::new(&path), Path::new(&dest), opts)?;
        Ok(RenderedImage {
            manifest,
            stats: stats.into(),
        })
    })
}

/// Renders an image and its dependencies (upper first, as rkt's acirenderer orders them) into
/// `dest`, which must not exist: the first image to provide a path wins, and each image's
/// pathWhitelist applies, and the options' size limits bound the images together. Resolves to the top
/// image's manifest. Staged and renamed like extractImage.
#[napi(ts_return_type = "Promise<RenderedImage>")]
pub fn render_images(
    images: Vec<ChainImage>,
    dest: String,
    options: Option<ExtractOptions>,
) -> AsyncTask<Job<RenderedImage>> {
    job(move || {
        let images: Vec<aci::ChainImage> = images
            .into_iter()
            .map(|i| aci::ChainImage {
                path: PathBuf::from(i.path),
                path_whitelist: i.path_whitelist.unwrap_or_default(),
                level: i.level,
            })
            .collect();
        let options = options.unwrap_or_default();
        let (manifest, stats) = aci::render_chain(
            &images,
            Path::new(&dest),
            (&options).into(),
            (&options).into(),
        )?;
        Ok(RenderedImage {
            manifest,
            stats: stats.into(),
        })
    })
}

/// Applies OCI layer tars (bottom first, any compression), with whiteouts, into `dest`, which must
/// not exist; staged and renamed like extractImage.
#[napi(ts_return_type = "Promise<ExtractStats>")]
pub fn extract_layers(
    layers: Vec<String>,
    dest: String,
    options: Option<ExtractOptions>,
) -> AsyncTask<Job<ExtractStats>> {
    job(move || {
        let layers: Vec<PathBuf> = layers.into_iter().map(PathBuf::from).collect();
        let options = options.unwrap_or_default();
        let stats = whiteout::render_layers_within(
            &layers,
            Path::new(&dest),
            (&options).into(),
            (&options).into(),
        )?;
        Ok(stats.into())
    })
}

/// Applies the OCI layer tar `layer` over the layers `lowers` (keys, top first) of the layer store
/// `dir`, as the new layer `dir/<key>/rootfs` in overlayfs's form (see layer.rs); `below` is what the
/// layers below unpacked to, counted against the image limit. `dir/<key>` must not exist.
#[napi(ts_return_type = "Promise<ExtractStats>")]
pub fn render_layer(
    layer: String,
    dir: String,
    key: String,
    lowers: Vec<String>,
    below: i64,
    options: Option<ExtractOptions>,
) -> AsyncTask<Job<ExtractStats>> {
    job(move || {
        let options = options.unwrap_or_default();
        let stats = layer::render_layer(
            Path::new(&layer),
            Path::new(&dir),
            &key,
            &lowers,
            (&options).into(),
            (&options).into(),
            u64::try_from(below).unwrap_or(0),
        )?;
        Ok(stats.into())
    })
}

/// `--private-users` without idmapped mounts: moves every owner in the copied tree `dir` into the
/// pod's ids (N becomes shift + N); resolves to the number of entries changed.
#[napi(ts_return_type = "Promise<number>")]
pub fn shift_owners(dir: String, shift: u32, count: u32) -> AsyncTask<Job<f64>> {
    job(move || {
        shift::shift_owners(Path::new(&dir), shift::Range { shift, count }).map(|n| n as f64)
    })
}

/// Removes each path's directory tree (or file) completely, several at once, never following a
/// symlink nor entering a mount point (that path's report says EBUSY); a missing path is removed
/// already. Resolves to one report per path, in order; it never rejects.
#[napi(ts_return_type = "Promise<Array<RemovedTree>>")]
pub fn remove_trees(paths: Vec<String>) -> AsyncTask<Job<Vec<RemovedTree>>> {
    job(move || {
        let paths: Vec<PathBuf> = paths.into_iter().map(PathBuf::from).collect();
        let results = remove::remove_trees(&paths);
        Ok(paths
            .into_iter()
            .zip(results)
            .map(|(path, result)| {
                let path = path.to_string_lossy().into_owned();
                match result {
                    Ok(()) => RemovedTree {
                        path,
                        code: None,
                        error: None,
                    },
                    Err(e) => RemovedTree {
                        path,
                        code: Some(e.code.as_str().to_string()),
                        error: Some(e.message),
                    },
                }
            })
            .collect())
    })
}

/// rkt's tree hash of a rendered tree directory (the one holding rootfs/): `sha512-<64 hex>`.
#[napi(ts_return_type = "Promise<string>")]
pub fn tree_hash(dir: String) -> AsyncTask<Job<String>> {
    job(move || treehash::tree_hash(Path::new(&dir)))
}

fn lock_mode(exclusive: bool) -> lock::Mode {
    if exclusive {
        lock::Mode::Exclusive
    } else {
        lock::Mode::Shared
    }
}

/// Opens `dir` (O_RDONLY|O_DIRECTORY|O_CLOEXEC) and flocks it; resolves to the fd. Without `wait`,
/// fails at once with ELOCKED when another process holds a conflicting lock. A waiting lock occupies
/// a thread-pool thread until granted.
#[napi(ts_return_type = "Promise<number>")]
pub fn lock_dir(dir: String, exclusive: bool, wait: bool) -> AsyncTask<Job<i32>> {
    job(move || {
        let fd = lock::open(Path::new(&dir))?;
        lock::lock(fd.as_fd(), lock_mode(exclusive), wait, &dir)?;
        Ok(fd.into_raw_fd())
    })
}

/// Takes a lock on an fd from lockDir/openDir, or converts the one it holds (shared <-> exclusive).
#[napi(ts_return_type = "Promise<void>")]
pub fn lock_fd(fd: i32, exclusive: bool, wait: bool) -> Result<AsyncTask<Job<()>>> {
    // The lock belongs to the open file description, which a duplicate shares: locking through our own
    // duplicate on the pool thread cannot touch an unrelated file if JS closes `fd` meanwhile.
    let dup = rustix::io::fcntl_dupfd_cloexec(borrow_fd(fd)?, 0)
        .context(|| format!("duplicating fd {fd}"))?;
    Ok(job(move || {
        lock::lock(dup.as_fd(), lock_mode(exclusive), wait, &format!("fd {fd}"))
    }))
}

/// What this build of the addon is, for `podlog version`.
#[napi(object)]
pub struct NativeVersion {
    /// The crate's version, as built.
    pub version: String,
    /// The compressions image and layer files may use.
    pub compressions: Vec<String>,
}

/// This build's version and what it reads.
#[napi]
pub fn version() -> NativeVersion {
    NativeVersion {
        version: env!("CARGO_PKG_VERSION").to_string(),
        compressions: compression::ALL
            .iter()
            .map(|c| c.name().to_string())
            .collect(),
    }
}

/// Opens a directory fd (O_RDONLY|O_DIRECTORY|O_CLOEXEC) without locking it.
#[napi]
pub fn open_dir(dir: String) -> Result<i32> {
    Ok(lock::open(Path::new(&dir))?.into_raw_fd())
}

#[napi]
pub fn unlock_fd(fd: i32) -> Result<()> {
    Ok(lock::unlock(borrow_fd(fd)?)?)
}

/// rkt's probe: whether another process holds `dir` locked exclusively.
#[napi]
pub fn is_locked(dir: String) -> Result<bool> {
    Ok(lock::is_locked(Path::new(&dir))?)
}

/// Closes an fd this addon returned (a lock fd, which releases its lock if no other process shares
/// it, or a pidfd).
#[napi]
pub fn close_fd(fd: i32) -> Result<()> {
    check_fd(fd)?;
    // SAFETY: the caller hands back an fd this addon gave it, which it owns and will not use again;
    // dropping the OwnedFd is the close(2) syscall.
    drop(unsafe { OwnedFd::from_raw_fd(fd) });
    Ok(())
}

#[napi]
pub fn pidfd_open(pid: i32) -> Result<i32> {
    Ok(pidfd::open(pid)?.into_raw_fd())
}

fn timeout(ms: i64) -> Option<Duration> {
    u64::try_from(ms).ok().map(Duration::from_millis)
}

/// Resolves true when the process behind `pidfd` has exited, false after `timeoutMs` (negative: no
/// limit, holding a thread-pool thread until then).
#[napi(ts_return_type = "Promise<boolean>")]
pub fn wait_pidfd(pidfd: i32, timeout_ms: i64) -> Result<AsyncTask<Job<bool>>> {
    let dup = rustix::io::fcntl_dupfd_cloexec(borrow_fd(pidfd)?, 0)
        .context(|| format!("duplicating fd {pidfd}"))?;
    Ok(job(move || pidfd::wait(dup.as_fd(), timeout(timeout_ms))))
}

/// Like waitPidfd for a pid; a pid that does not exist counts as exited.
#[napi(ts_return_type = "Promise<boolean>")]
pub fn wait_pid(pid: i32, timeout_ms: i64) -> AsyncTask<Job<bool>> {
    job(move || pidfd::wait_pid(pid, timeout(timeout_ms)))
}

/// Mounts at or below `path`, from /proc/self/mountinfo, parents before children.
#[napi]
pub fn mounts_under(path: String) -> Result<Vec<MountEntry>> {
    let mounts = mountinfo::mounts_under(Path::new(&path))?;
    Ok(mounts
        .into_iter()
        .map(|m| MountEntry {
            mount_id: m.id,
            parent_id: m.parent_id,
            major_minor: m.major_minor,
            root: m.root,
            mount_point: m.mount_point,
            options: m.options,
            fs_type: m.fs_type,
            source: m.source,
            super_options: m.super_options,
        })
        .collect())
}

/// The entries of a seccomp isolator's set (syscall names and `@` groups) that stage1 could not
/// compile on this machine: syscall names unknown on its architecture, unknown groups.
#[napi]
pub fn unknown_seccomp_entries(entries: Vec<String>) -> Vec<String> {
    podlog_seccomp::unknown_entries(&entries)
}

/// The entries of a seccomp remove set that stage1 itself calls after loading the filter when
/// no_new_privs is off (os/linux/no-new-privileges false): such a set needs no_new_privs.
#[napi]
pub fn seccomp_entries_stage1_needs(entries: Vec<String>) -> Vec<String> {
    podlog_seccomp::needed_after_early_load(&entries)
}

fn check_fd(fd: i32) -> errors::Result<()> {
    if fd < 0 {
        return Err(PodlogError::new(
            Code::InvalidArgument,
            format!("{fd} is not a file descriptor"),
        ));
    }
    Ok(())
}

fn borrow_fd(fd: i32) -> errors::Result<BorrowedFd<'static>> {
    check_fd(fd)?;
    // SAFETY: borrow_raw only requires the fd to stay open while borrowed. Every use is a syscall made
    // before this binding returns (flock, or the dup that a task then owns); a closed or reused number
    // makes that syscall fail with EBADF or act on JS's own fd, never on memory.
    Ok(unsafe { BorrowedFd::borrow_raw(fd) })
}
