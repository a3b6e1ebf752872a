//! App Container images (appc spec 0.8.11): the layout (`manifest` and `rootfs/` only, no duplicate
//! entries), the manifest, the image id, and rendering `rootfs/` into a tree.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use crate::archive::{components, join, show, Beside, Budget, Diagnosis, End, Entry, Stream};
use crate::compression::Compression;
use crate::errors::{Code, Error, Result};
use crate::extract::{into_fresh_dir, Limits, Options, Stats, Tree};
use crate::treehash;

/// Real manifests are a few KiB; the limit keeps a hostile one from being read into memory.
pub const MANIFEST_LIMIT: u64 = 1 << 20;

#[derive(Debug)]
pub struct ImageInfo {
    /// `sha512-` and the full hex sha512 of the uncompressed tar: the appc image id.
    pub id: String,
    /// rkt's image key: the id cut to 64 hex characters.
    pub key: String,
    pub compression: Compression,
    /// Bytes of uncompressed tar.
    pub size: u64,
    pub manifest: String,
}

enum Place<'a> {
    Root,
    Manifest,
    Rootfs(&'a [&'a [u8]]),
}

#[derive(Default)]
struct Layout {
    seen: HashSet<Vec<u8>>,
    manifest: Option<String>,
    rootfs: bool,
}

impl Layout {
    fn admit<'a>(
        &mut self,
        comps: &'a [&'a [u8]],
        name: &[u8],
        kind: tar::EntryType,
    ) -> Result<Place<'a>> {
        let Some(top) = comps.first() else {
            return Ok(Place::Root);
        };
        let bad = |why: String| Error::new(Code::BadLayout, why);
        if !self.seen.insert(join(comps)) {
            return Err(bad(format!("duplicate entry {}", show(name))));
        }
        match *top {
            b"manifest" if comps.len() == 1 => {
                if kind.is_file() {
                    Ok(Place::Manifest)
                } else {
                    Err(bad(format!("manifest is a {kind:?}, not a regular file")))
                }
            }
            b"rootfs" => {
                if comps.len() == 1 && !kind.is_dir() {
                    return Err(bad(format!("rootfs is a {kind:?}, not a directory")));
                }
                self.rootfs = true;
                Ok(Place::Rootfs(&comps[1..]))
            }
            _ => Err(bad(format!(
                "unexpected entry {}: an ACI holds only manifest and rootfs/",
                show(name)
            ))),
        }
    }

    fn read_manifest(&mut self, entry: &mut Entry<'_>, diagnosis: &Diagnosis) -> Result<()> {
        let size = entry.size();
        if size > MANIFEST_LIMIT {
            return Err(Error::new(
                Code::BadManifest,
                format!("manifest is {size} bytes, larger than the {MANIFEST_LIMIT} bytes allowed"),
            ));
        }
        let mut bytes = Vec::with_capacity(size as usize);
        let mut buf = [0u8; 8192];
        diagnosis.copy_data(entry, size, &mut buf, |chunk| {
            bytes.extend_from_slice(chunk);
            Ok(())
        })?;
        self.manifest = Some(check_manifest(bytes)?);
        Ok(())
    }

    fn finish(self) -> Result<String> {
        if !self.rootfs {
            return Err(Error::new(Code::BadLayout, "the image has no rootfs/"));
        }
        self.manifest
            .ok_or_else(|| Error::new(Code::BadManifest, "the image has no manifest"))
    }
}

fn check_manifest(bytes: Vec<u8>) -> Result<String> {
    let bad = |why: String| Error::new(Code::BadManifest, why);
    let text = String::from_utf8(bytes).map_err(|e| bad(format!("manifest is not UTF-8: {e}")))?;
    let value: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| bad(format!("manifest is not JSON: {e}")))?;
    match value.get("acKind") {
        Some(serde_json::Value::String(kind)) if kind == "ImageManifest" => Ok(text),
        Some(other) => Err(bad(format!(
            "manifest acKind is {other}, expected \"ImageManifest\""
        ))),
        None => Err(bad("manifest has no acKind".to_string())),
    }
}

/// The rootfs-relative target of a hardlink entry. ACI link names are archive paths (`rootfs/...`).
fn hardlink_target<'a>(entry_name: &[u8], link: &'a [u8]) -> Result<Vec<&'a [u8]>> {
    let hostile = |why: String| {
        Error::new(
            Code::HostileArchive,
            format!("hardlink {} {why} (hardlink escape)", show(entry_name)),
        )
    };
    let comps = components(link).map_err(|e| hostile(format!("target {}", e.message)))?;
    match comps.split_first() {
        Some((top, rest)) if *top == b"rootfs" && !rest.is_empty() => Ok(rest.to_vec()),
        _ => Err(hostile(format!(
            "points at {}, outside rootfs/",
            show(link)
        ))),
    }
}

/// Walks an ACI, checking its layout and manifest, and hands every entry below `rootfs/` (with its
/// rootfs-relative path and, for hardlinks, its target) to `rootfs_entry`.
fn walk(
    path: &Path,
    beside: Beside<'_>,
    budget: Budget,
    mut rootfs_entry: impl FnMut(&[&[u8]], &mut Entry<'_>, Option<&[&[u8]]>, &Diagnosis) -> Result<()>,
) -> Result<(String, End)> {
    let mut stream = Stream::open(path, beside)?;
    stream.limit(budget);
    let mut layout = Layout::default();
    stream.for_each(|entry, diagnosis| {
        let name = entry.path_bytes().into_owned();
        let comps =
            components(&name).map_err(|e| Error::new(e.code, format!("entry {}", e.message)))?;
        let kind = entry.header().entry_type();
        match layout.admit(&comps, &name, kind)? {
            Place::Root => Ok(()),
            Place::Manifest => layout.read_manifest(entry, diagnosis),
            Place::Rootfs(rel) => {
                let link = entry.link_name_bytes().map(|l| l.into_owned());
                let target = match (&link, kind) {
                    (Some(link), tar::EntryType::Link) => Some(hardlink_target(&name, link)?),
                    _ => None,
                };
                rootfs_entry(rel, entry, target.as_deref(), diagnosis)
            }
        }
    })?;
    let manifest = layout.finish()?;
    Ok((manifest, stream.finish()?))
}

fn image_info(end: &mut End, manifest: String) -> Result<ImageInfo> {
    let digest = hex::encode(end.wait()?.expect("hashing was asked for"));
    Ok(ImageInfo {
        key: format!("sha512-{}", &digest[..64]),
        id: format!("sha512-{digest}"),
        compression: end.compression,
        size: end.size,
        manifest,
    })
}

/// Checks an image and computes its id without writing anything; refused as soon as it unpacks past
/// `limits`.
pub fn read_image(path: &Path, limits: Limits) -> Result<ImageInfo> {
    let beside = Beside {
        hash: true,
        copy_to: None,
    };
    let (manifest, mut end) = walk(path, beside, limits.budget(path, 0)?, |_, _, _, _| Ok(()))?;
    image_info(&mut end, manifest)
}

/// Extracts the image's `rootfs/` to `dest` (which must not exist) and returns the manifest.
pub fn render(path: &Path, dest: &Path, options: Options) -> Result<(String, Stats)> {
    into_fresh_dir(dest, options.sync, |root| {
        let mut tree = Tree::new(root, options.allow_devices);
        let budget = Limits::default().budget(path, 0)?;
        let (manifest, _) = walk(
            path,
            Beside::default(),
            budget,
            |rel, entry, link, diagnosis| tree.put(rel, entry, link, diagnosis),
        )?;
        Ok((manifest, tree.finish()?))
    })
}

#[derive(Debug)]
pub struct Imported {
    pub image: ImageInfo,
    pub stats: Stats,
    /// rkt's tree hash of the tree directory.
    pub tree_hash: String,
}

/// Imports an image reading it once: checks it and computes its id (read_image), renders its
/// `rootfs/` to `<tree>/rootfs` (render; `tree` holds nothing else) and computes the tree hash of
/// `tree`; with `copy_to`, the bytes read are written there too. The archive's hash and the copy are
/// done beside the extraction; the tree hash, which walks the finished tree in its own order, starts
/// as soon as the tree is complete, beside what remains of the archive's hash. Refused as soon as the
/// image unpacks past `limits`.
pub fn import(
    path: &Path,
    tree: &Path,
    copy_to: Option<&Path>,
    options: Options,
    limits: Limits,
) -> Result<Imported> {
    let beside = Beside {
        hash: true,
        copy_to,
    };
    let (manifest, stats, mut end) = into_fresh_dir(&tree.join("rootfs"), options.sync, |root| {
        let mut rootfs = Tree::new(root, options.allow_devices);
        let budget = limits.budget(path, 0)?;
        let (manifest, end) = walk(path, beside, budget, |rel, entry, link, diagnosis| {
            rootfs.put(rel, entry, link, diagnosis)
        })?;
        Ok((manifest, rootfs.finish()?, end))
    })?;
    let tree_hash = treehash::tree_hash(tree);
    let image = image_info(&mut end, manifest)?;
    Ok(Imported {
        image,
        stats,
        tree_hash: tree_hash?,
    })
}

/// One image of a dependency chain, as rkt's acirenderer lists them: upper images first, each with its
/// depth in the dependency tree (the rendered image is level 0).
#[derive(Debug, Clone)]
pub struct ChainImage {
    pub path: PathBuf,
    /// The image's `pathWhitelist`: absolute paths in the rootfs; empty means everything.
    pub path_whitelist: Vec<String>,
    pub level: u32,
}

/// A whitelist as rootfs-relative component paths; `None` when the list is empty.
fn whitelist(paths: &[String]) -> Option<HashSet<Vec<u8>>> {
    (!paths.is_empty()).then(|| {
        paths
            .iter()
            .map(|p| join(&components(p.trim_start_matches('/').as_bytes()).unwrap_or_default()))
            .collect()
    })
}

/// rkt's getUpperPWLM: the whitelist of the nearest image above `pos` on its branch (a lower level)
/// that has one; it limits what `pos` may add.
fn upper_whitelist(images: &[ChainImage], pos: usize) -> Option<HashSet<Vec<u8>>> {
    let mut found = None;
    let mut level = images[pos].level;
    for image in images[..=pos].iter().rev() {
        if image.level < level && found.is_none() && !image.path_whitelist.is_empty() {
            found = whitelist(&image.path_whitelist);
        }
        level = image.level;
    }
    found
}

/// Renders a dependency chain into `dest` (which must not exist) the way rkt's acirenderer does:
/// images in order, upper first, and a path is taken from the first image that has it. A path is
/// skipped when an upper image provided it or provided one of its parents as a non-directory, and
/// when the image's own `pathWhitelist` or the nearest upper one on its branch leaves it out
/// (directories are always kept, so whitelisted files keep their parents' metadata). Returns the
/// top image's manifest.
/// `limits` bound the images together, as the layers of an OCI image are.
pub fn render_chain(
    images: &[ChainImage],
    dest: &Path,
    options: Options,
    limits: Limits,
) -> Result<(String, Stats)> {
    if images.is_empty() {
        return Err(Error::new(Code::InvalidArgument, "no image to render"));
    }
    into_fresh_dir(dest, options.sync, |root| {
        let mut tree = Tree::new(root, options.allow_devices);
        // Every path the images above the current one provided, and whether it is a directory. The
        // current image's own entries are not in it: within one image, what an entry does to a later
        // one (a symlink, then a file below it) is the extractor's to judge, and refuse if hostile.
        let mut provided: HashMap<Vec<u8>, bool> = HashMap::new();
        let mut manifest = None;
        let mut used = 0;
        for (i, image) in images.iter().enumerate() {
            let own = whitelist(&image.path_whitelist);
            let upper = upper_whitelist(images, i);
            let mut added: HashMap<Vec<u8>, bool> = HashMap::new();
            let budget = limits.budget(&image.path, used)?;
            let (m, end) = walk(
                &image.path,
                Beside::default(),
                budget,
                |rel, entry, link, diagnosis| {
                    let is_dir = entry.header().entry_type().is_dir();
                    let path = join(rel);
                    let listed =
                        |w: &Option<HashSet<Vec<u8>>>| w.as_ref().is_none_or(|w| w.contains(&path));
                    let whitelisted = is_dir || (listed(&own) && listed(&upper));
                    if !whitelisted || provided.contains_key(&path) {
                        return Ok(());
                    }
                    if (1..rel.len()).any(|end| provided.get(&join(&rel[..end])) == Some(&false)) {
                        return Ok(());
                    }
                    added.insert(path, is_dir);
                    tree.put(rel, entry, link, diagnosis)
                },
            )
            .map_err(|e| Error::new(e.code, format!("{}: {}", image.path.display(), e.message)))?;
            manifest.get_or_insert(m);
            provided.extend(added);
            used += end.size;
        }
        let manifest = manifest.expect("the chain is not empty");
        Ok((manifest, tree.finish()?))
    })
}
