//! The pod as stage0 left it: the reified appc PodManifest in `<pod>/pod`, and per app
//! `appsinfo/<app>/treeStoreID` and `appsinfo/<app>/manifest` (the image manifest).

use std::os::fd::AsFd;

use serde::Deserialize;

use crate::error::{bail, Context, Result};
use crate::fsutil;

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct PodManifest {
    ac_kind: String,
    #[serde(default)]
    apps: Vec<RuntimeApp>,
}

#[derive(Debug, Deserialize)]
struct RuntimeApp {
    name: String,
    image: Image,
    app: Option<App>,
}

#[derive(Debug, Deserialize)]
struct Image {
    id: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ImageManifest {
    app: Option<App>,
}

/// An app section (appc `types.App`), fully resolved by stage0.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct App {
    pub exec: Vec<String>,
    pub user: String,
    pub group: String,
    #[serde(default, rename = "supplementaryGIDs")]
    pub supplementary_gids: Vec<u32>,
    #[serde(default)]
    pub working_directory: Option<String>,
    #[serde(default)]
    pub environment: Vec<EnvVar>,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
pub struct EnvVar {
    pub name: String,
    pub value: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct PodApp {
    pub name: String,
    pub tree_store_id: String,
    pub app: App,
}

impl App {
    pub fn working_directory(&self) -> &str {
        match self.working_directory.as_deref() {
            Some(w) if !w.is_empty() => w,
            _ => "/",
        }
    }
}

/// Reads and validates the pod through the pod directory fd (never through a path, so it
/// is the locked directory that is read).
pub fn load(pod_dir: impl AsFd + Copy) -> Result<Vec<PodApp>> {
    let raw = fsutil::read_at(pod_dir, "pod").ctx("read pod manifest <pod>/pod")?;
    let apps = parse_pod(&raw)?;
    let mut out = Vec::with_capacity(apps.len());
    for ra in apps {
        let id_path = format!("appsinfo/{}/treeStoreID", ra.name);
        let id = fsutil::read_at(pod_dir, id_path.as_str())
            .with_ctx(|| format!("read <pod>/{id_path}"))?;
        let tree_store_id = String::from_utf8_lossy(&id).trim().to_string();
        check_tree_store_id(&ra.name, &tree_store_id)?;
        let app = match ra.app {
            Some(app) => app,
            None => {
                let path = format!("appsinfo/{}/manifest", ra.name);
                let raw = fsutil::read_at(pod_dir, path.as_str())
                    .with_ctx(|| format!("read <pod>/{path}"))?;
                let im: ImageManifest =
                    serde_json::from_slice(&raw).ctx(format!("parse <pod>/{path}"))?;
                match im.app {
                    Some(app) => app,
                    None => bail!(
                        "app {:?}: neither the pod nor the image manifest has an app section",
                        ra.name
                    ),
                }
            }
        };
        check_app(&ra.name, &app)?;
        out.push(PodApp {
            name: ra.name,
            tree_store_id,
            app,
        });
    }
    Ok(out)
}

fn parse_pod(raw: &[u8]) -> Result<Vec<RuntimeApp>> {
    let pm: PodManifest = serde_json::from_slice(raw).ctx("parse pod manifest")?;
    if pm.ac_kind != "PodManifest" {
        bail!(
            "pod manifest: acKind is {:?}, expected \"PodManifest\"",
            pm.ac_kind
        );
    }
    if pm.apps.is_empty() {
        bail!("pod manifest: no apps");
    }
    for (i, a) in pm.apps.iter().enumerate() {
        if !is_ac_name(&a.name) {
            bail!("pod manifest: app name {:?} is not a valid ACName", a.name);
        }
        if pm.apps[..i].iter().any(|b| b.name == a.name) {
            bail!("pod manifest: duplicate app name {:?}", a.name);
        }
        if a.image.id.is_empty() {
            bail!("pod manifest: app {:?} has no image id", a.name);
        }
    }
    Ok(pm.apps)
}

/// Names become path components (overlay dirs, status files): validate, never sanitize.
fn check_tree_store_id(app: &str, id: &str) -> Result<()> {
    let ok = !id.is_empty()
        && id != "."
        && id != ".."
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
    if !ok {
        bail!("app {app:?}: invalid treeStoreID {id:?}");
    }
    Ok(())
}

fn check_app(name: &str, app: &App) -> Result<()> {
    if app.exec.is_empty() || app.exec[0].is_empty() {
        bail!("app {name:?}: empty exec");
    }
    if app.user.is_empty() || app.group.is_empty() {
        bail!("app {name:?}: user and group are required");
    }
    if !app.working_directory().starts_with('/') {
        bail!(
            "app {name:?}: workingDirectory {:?} is not absolute",
            app.working_directory()
        );
    }
    for e in &app.environment {
        if !is_env_name(&e.name) {
            bail!(
                "app {name:?}: invalid environment variable name {:?}",
                e.name
            );
        }
    }
    let nul = |s: &String| s.contains('\0');
    if app.exec.iter().any(nul) || app.environment.iter().any(|e| nul(&e.value)) {
        bail!("app {name:?}: NUL byte in exec or environment");
    }
    Ok(())
}

/// appc ACName: `^[a-z0-9]+([-][a-z0-9]+)*$`.
pub fn is_ac_name(s: &str) -> bool {
    !s.is_empty()
        && s.split('-').all(|part| {
            !part.is_empty()
                && part
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        })
}

/// appc environment names: `^[A-Za-z_][A-Za-z_0-9.-]*$`.
fn is_env_name(s: &str) -> bool {
    let mut b = s.bytes();
    matches!(b.next(), Some(c) if c.is_ascii_alphabetic() || c == b'_')
        && b.all(|c| c.is_ascii_alphanumeric() || b"_.-".contains(&c))
}

#[cfg(test)]
mod tests {
    use super::*;

    const POD: &str = r#"{"acKind":"PodManifest","acVersion":"0.8.11","apps":[
        {"name":"web","image":{"id":"sha512-aa","name":"example.com/busybox"},
         "app":{"exec":["/bin/sh","-c","exit 3"],"user":"0","group":"0","supplementaryGIDs":[10,20],
                "workingDirectory":"/tmp","environment":[{"name":"FOO","value":"bar"}]}},
        {"name":"side-car","image":{"id":"sha512-bb"}}]}"#;

    #[test]
    fn parses_a_reified_pod() {
        let apps = parse_pod(POD.as_bytes()).unwrap();
        assert_eq!(apps.len(), 2);
        let app = apps[0].app.as_ref().unwrap();
        assert_eq!(app.exec, ["/bin/sh", "-c", "exit 3"]);
        assert_eq!(app.supplementary_gids, [10, 20]);
        assert_eq!(app.working_directory(), "/tmp");
        assert_eq!(
            app.environment[0],
            EnvVar {
                name: "FOO".into(),
                value: "bar".into()
            }
        );
        assert!(apps[1].app.is_none());
        check_app("web", app).unwrap();
    }

    #[test]
    fn rejects_bad_pods() {
        for bad in [
            r#"{"acKind":"ImageManifest","apps":[{"name":"a","image":{"id":"x"}}]}"#,
            r#"{"acKind":"PodManifest","apps":[]}"#,
            r#"{"acKind":"PodManifest","apps":[{"name":"A","image":{"id":"x"}}]}"#,
            r#"{"acKind":"PodManifest","apps":[{"name":"../x","image":{"id":"x"}}]}"#,
            r#"{"acKind":"PodManifest","apps":[{"name":"a","image":{"id":"x"}},{"name":"a","image":{"id":"y"}}]}"#,
            r#"{"acKind":"PodManifest","apps":[{"name":"a","image":{"id":""}}]}"#,
            r#"not json"#,
        ] {
            assert!(parse_pod(bad.as_bytes()).is_err(), "{bad}");
        }
    }

    #[test]
    fn validates_apps() {
        let base = App {
            exec: vec!["/bin/true".into()],
            user: "0".into(),
            group: "0".into(),
            supplementary_gids: vec![],
            working_directory: None,
            environment: vec![],
        };
        check_app("a", &base).unwrap();
        assert_eq!(base.working_directory(), "/");
        let mut a = base.clone();
        a.exec.clear();
        assert!(check_app("a", &a).is_err());
        let mut a = base.clone();
        a.working_directory = Some("rel".into());
        assert!(check_app("a", &a).is_err());
        let mut a = base.clone();
        a.environment.push(EnvVar {
            name: "1X".into(),
            value: String::new(),
        });
        assert!(check_app("a", &a).is_err());
        let mut a = base.clone();
        a.user.clear();
        assert!(check_app("a", &a).is_err());
    }

    #[test]
    fn names() {
        assert!(is_ac_name("web"));
        assert!(is_ac_name("a-1-b"));
        assert!(!is_ac_name("a--b"));
        assert!(!is_ac_name("-a"));
        assert!(!is_ac_name("a_b"));
        assert!(is_env_name("_A.b-1"));
        assert!(!is_env_name("A=B"));
        assert!(check_tree_store_id("a", "deps-sha512-0123").is_ok());
        assert!(check_tree_store_id("a", "..").is_err());
        assert!(check_tree_store_id("a", "a/b").is_err());
    }
}
