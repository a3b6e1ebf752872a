//! An app's lower directories. A tree-store entry is either a rendered tree (`<tree>/rootfs`, ACIs
//! and their dependencies) or a stack of OCI layers stored once each and shared between images
//! (`<tree>/layers`: one layer key per line, top first; each layer at `<cas>/layers/<key>/rootfs`,
//! where `<cas>` holds the tree store). overlayfs stacks the layers itself (`lowerdir=top:…:bottom`).

use std::path::{Path, PathBuf};

use crate::error::{bail, Context, Result};

/// The lower dirs, as names relative to `dir`: relative, so that a deep stack fits in the one page
/// of mount options (absolute paths would cost some 80 bytes a layer).
#[derive(Debug, PartialEq, Eq)]
pub struct Lowers {
    pub dir: PathBuf,
    /// Top first.
    pub names: Vec<String>,
}

fn is_key(key: &str) -> bool {
    key.len() == 32
        && key
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// The lower dirs of the tree `tree_store_id`, each checked to be a directory.
pub fn of_tree(tree_store: &Path, tree_store_id: &str) -> Result<Lowers> {
    let tree = tree_store.join(tree_store_id);
    if tree.join("rootfs").is_dir() {
        return Ok(Lowers {
            dir: tree,
            names: vec!["rootfs".to_string()],
        });
    }
    let list = match std::fs::read_to_string(tree.join("layers")) {
        Ok(list) => list,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            bail!(
                "tree store has no {} (nor a list of layers)",
                tree.join("rootfs").display()
            )
        }
        Err(e) => return Err(e).with_ctx(|| format!("reading {}", tree.join("layers").display())),
    };
    let dir = match tree_store.parent() {
        Some(cas) => cas.join("layers"),
        None => bail!(
            "tree store {} has no parent directory",
            tree_store.display()
        ),
    };
    let mut names = Vec::new();
    for key in list.lines() {
        if !is_key(key) {
            bail!("tree {tree_store_id}: {key:?} in its list of layers is not a layer key");
        }
        let name = format!("{key}/rootfs");
        if !dir.join(&name).is_dir() {
            bail!(
                "tree {tree_store_id}: layer {key} is missing ({} is not a directory)",
                dir.join(&name).display()
            );
        }
        names.push(name);
    }
    if names.is_empty() {
        bail!("tree {tree_store_id}: its list of layers is empty");
    }
    Ok(Lowers { dir, names })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rendered_tree_or_a_stack_of_layers() {
        let cas = tempfile::tempdir().unwrap();
        let store = cas.path().join("tree");
        let top = "a".repeat(32);
        let bottom = "b".repeat(32);
        std::fs::create_dir_all(store.join("flat/rootfs")).unwrap();
        std::fs::create_dir_all(store.join("stacked")).unwrap();
        std::fs::write(store.join("stacked/layers"), format!("{top}\n{bottom}\n")).unwrap();
        assert_eq!(
            of_tree(&store, "flat").unwrap(),
            Lowers {
                dir: store.join("flat"),
                names: vec!["rootfs".into()]
            }
        );
        let missing = of_tree(&store, "stacked").unwrap_err().to_string();
        assert!(
            missing.contains(&format!("layer {top} is missing")),
            "{missing}"
        );
        for key in [&top, &bottom] {
            std::fs::create_dir_all(cas.path().join("layers").join(key).join("rootfs")).unwrap();
        }
        assert_eq!(
            of_tree(&store, "stacked").unwrap(),
            Lowers {
                dir: cas.path().join("layers"),
                names: vec![format!("{top}/rootfs"), format!("{bottom}/rootfs")]
            }
        );
        std::fs::write(store.join("stacked/layers"), "../../etc\n").unwrap();
        assert!(of_tree(&store, "stacked")
            .unwrap_err()
            .to_string()
            .contains("not a layer key"));
        assert!(of_tree(&store, "absent")
            .unwrap_err()
            .to_string()
            .contains("nor a list of layers"));
    }
}
