//! OCI image layers: applying a list of layer tars, in order, into one fresh tree, with whiteouts
//! (image-spec layer.md). `dir/.wh.NAME` removes NAME that lower layers put there; `dir/.wh..wh..opq`
//! empties `dir` of lower-layer contents. Following umoci, a whiteout only removes paths this layer
//! has not itself written, so the order of entries within a layer does not matter: a whiteout listed
//! before or after a file of the same layer leaves that file in place either way. A whiteout below a
//! symlinked directory follows it inside the root, and one whose directory resolves to nothing does
//! nothing (see `lower_dir`).

use std::collections::HashSet;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::rc::Rc;

use rustix::io::Errno;

use crate::archive::{components, join, show, Beside, Budget, Stream};
use crate::errors::{Code, Context, Error, Result};
use crate::extract::{into_fresh_dir, Limits, Options, Stats, Tree};
use crate::fsat;

const PREFIX: &[u8] = b".wh.";
const OPAQUE: &[u8] = b".wh..wh..opq";

#[derive(Debug, PartialEq, Eq)]
enum Whiteout<'a> {
    Opaque,
    Remove(&'a [u8]),
    /// `.wh..wh.*` other than the opaque marker: aufs bookkeeping (e.g. `.wh..wh.plnk`), not content.
    Aufs,
}

fn parse(base: &[u8]) -> Result<Option<Whiteout<'_>>> {
    if base == OPAQUE {
        return Ok(Some(Whiteout::Opaque));
    }
    let Some(target) = base.strip_prefix(PREFIX) else {
        return Ok(None);
    };
    if target.starts_with(PREFIX) {
        return Ok(Some(Whiteout::Aufs));
    }
    if target.is_empty() || target == b"." || target == b".." {
        return Err(Error::new(
            Code::HostileArchive,
            format!("whiteout {} names no file in its directory (it would remove the directory or its parent)", show(base)),
        ));
    }
    Ok(Some(Whiteout::Remove(target)))
}

/// The paths a layer has written, and their ancestors: what its own whiteouts must leave alone.
#[derive(Default)]
struct Upper(HashSet<Vec<u8>>);

impl Upper {
    fn touch(&mut self, comps: &[&[u8]]) {
        for end in 1..=comps.len() {
            self.0.insert(join(&comps[..end]));
        }
    }

    fn contains(&self, path: &[u8]) -> bool {
        self.0.contains(path)
    }
}

/// Removes `name` (at `path`) from `dir` unless this layer wrote it; a directory the layer wrote into
/// is kept and pruned of what it did not write.
fn prune(
    dir: BorrowedFd<'_>,
    name: &[u8],
    path: &[u8],
    upper: &Upper,
) -> std::result::Result<(), Errno> {
    if !upper.contains(path) {
        return match fsat::remove_all_at(dir, name) {
            Err(Errno::NOENT) => Ok(()),
            other => other,
        };
    }
    match fsat::is_dir_at(dir, name) {
        Ok(true) => {
            let sub = fsat::open_dir_at(dir, name)?;
            prune_children(sub.as_fd(), path, upper)
        }
        Ok(false) | Err(Errno::NOENT) => Ok(()),
        Err(e) => Err(e),
    }
}

fn prune_children(
    dir: BorrowedFd<'_>,
    path: &[u8],
    upper: &Upper,
) -> std::result::Result<(), Errno> {
    for child in fsat::children(dir)? {
        let child_path = if path.is_empty() {
            child.clone()
        } else {
            [path, b"/", &child].concat()
        };
        prune(dir, &child, &child_path, upper)?;
    }
    Ok(())
}

/// The directory a whiteout applies to, or None when there is none, and so nothing to hide.
///
/// One rule for plain and opaque whiteouts alike: the directory is looked up as any entry's parent is,
/// symlinks followed inside the root (`lib -> usr/lib`, then `lib/.wh.x`, removes `usr/lib/x`). When it
/// resolves to nothing (absent, or a symlink to a missing directory) the whiteout does nothing: it
/// never creates a directory, so it can never write through a dangling symlink, and nothing outside the
/// root is reachable either way.
fn lower_dir(tree: &mut Tree<'_>, dir: &[&[u8]]) -> Result<Option<Rc<OwnedFd>>> {
    match tree.dir(dir, false) {
        Ok(fd) => Ok(Some(fd)),
        Err(e) if e.code == Code::NoEntry => Ok(None),
        Err(e) => Err(e),
    }
}

/// Applies one layer, refused once it unpacks past `budget`; returns the bytes it unpacked to.
fn apply_layer(tree: &mut Tree<'_>, layer: &Path, budget: Budget) -> Result<u64> {
    let mut stream = Stream::open(layer, Beside::default())?;
    stream.limit(budget);
    let mut upper = Upper::default();
    let context = |what: &[u8]| format!("{}: applying whiteout {}", layer.display(), show(what));
    stream.for_each(|entry, diagnosis| {
        let name = entry.path_bytes().into_owned();
        let comps =
            components(&name).map_err(|e| Error::new(e.code, format!("entry {}", e.message)))?;
        let whiteout = match comps.split_last() {
            Some((base, _)) => parse(base)?,
            None => None,
        };
        match (whiteout, comps.split_last()) {
            (Some(Whiteout::Opaque), Some((_, dir))) => {
                upper.touch(dir);
                if let Some(fd) = lower_dir(tree, dir)? {
                    prune_children(fd.as_fd(), &join(dir), &upper).context(|| context(&name))?;
                    tree.forget_cached_parent();
                }
            }
            (Some(Whiteout::Remove(target)), Some((_, dir))) => {
                if let Some(fd) = lower_dir(tree, dir)? {
                    let path = join(&[dir, &[target]].concat());
                    prune(fd.as_fd(), target, &path, &upper).context(|| context(&name))?;
                    tree.forget_cached_parent();
                }
            }
            (Some(Whiteout::Aufs), _) => {}
            _ => {
                let link = entry.link_name_bytes().map(|l| l.into_owned());
                let target = match (&link, entry.header().entry_type()) {
                    (Some(link), tar::EntryType::Link) => Some(components(link).map_err(|e| {
                        Error::new(
                            Code::HostileArchive,
                            format!(
                                "hardlink {} target {} (hardlink escape)",
                                show(&name),
                                e.message
                            ),
                        )
                    })?),
                    _ => None,
                };
                tree.put(&comps, entry, target.as_deref(), diagnosis)?;
                upper.touch(&comps);
            }
        }
        Ok(())
    })?;
    Ok(stream.finish()?.size)
}

/// Applies `layers` (bottom first) into `dest`, which must not exist.
#[cfg(test)]
pub fn render_layers(layers: &[PathBuf], dest: &Path, options: Options) -> Result<Stats> {
    render_layers_within(layers, dest, options, Limits::default())
}

/// Applies `layers` (bottom first) into `dest`, which must not exist, refusing them as soon as they
/// unpack past `limits`: the staging tree goes with the refusal, so nothing is left.
pub fn render_layers_within(
    layers: &[PathBuf],
    dest: &Path,
    options: Options,
    limits: Limits,
) -> Result<Stats> {
    into_fresh_dir(dest, options.sync, |root| {
        apply_layers(root, layers, options, limits, 0)
    })
}

/// Applies `layers` (bottom first) onto the tree at `root`, whose layers below unpacked to `below`
/// bytes already (they count against the image limit).
pub fn apply_layers(
    root: BorrowedFd<'_>,
    layers: &[PathBuf],
    options: Options,
    limits: Limits,
    below: u64,
) -> Result<Stats> {
    let mut tree = Tree::new(root, options.allow_devices);
    let mut unpacked = below;
    for layer in layers {
        unpacked += limits
            .budget(layer, unpacked)
            .and_then(|b| apply_layer(&mut tree, layer, b))
            .map_err(|e| Error::new(e.code, format!("layer {}: {}", layer.display(), e.message)))?;
    }
    let mut stats = tree.finish()?;
    stats.unpacked = unpacked - below;
    Ok(stats)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_whiteout_names() {
        assert_eq!(parse(b"passwd").unwrap(), None);
        assert_eq!(
            parse(b".wh.passwd").unwrap(),
            Some(Whiteout::Remove(b"passwd"))
        );
        assert_eq!(parse(b".wh..wh..opq").unwrap(), Some(Whiteout::Opaque));
        assert_eq!(parse(b".wh..wh.plnk").unwrap(), Some(Whiteout::Aufs));
        for hostile in [&b".wh."[..], b".wh..", b".wh..."] {
            assert_eq!(parse(hostile).unwrap_err().code, Code::HostileArchive);
        }
    }
}
