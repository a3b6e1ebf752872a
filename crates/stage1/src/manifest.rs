//! The pod as stage0 left it: the reified appc PodManifest in `<pod>/pod`, and per app
//! `appsinfo/<app>/treeStoreID` and `appsinfo/<app>/manifest` (the image manifest). Each app's
//! mounts come resolved against the pod's volumes (see volumes.rs for how they are made).

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
    #[serde(default)]
    volumes: Vec<Volume>,
}

#[derive(Debug, Deserialize)]
struct RuntimeApp {
    name: String,
    image: Image,
    app: Option<App>,
    #[serde(default, rename = "readOnlyRootFS")]
    read_only_root_fs: bool,
    #[serde(default)]
    mounts: Vec<Mount>,
}

/// What has an app section: an image manifest, an app of the pod manifest. Read once for the
/// App, once for its mount points, which only the mounts need (so App stays what a process
/// needs, and an unknown field is skipped, never buffered).
#[derive(Debug, Deserialize)]
struct HasApp<A> {
    app: Option<A>,
}

#[derive(Debug, Deserialize)]
struct PodMountPoints {
    #[serde(default)]
    apps: Vec<HasApp<MountPoints>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct MountPoints {
    #[serde(default)]
    mount_points: Vec<MountPoint>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct MountPoint {
    name: String,
    #[serde(default)]
    read_only: bool,
}

#[derive(Debug, Deserialize)]
struct Mount {
    volume: String,
    path: String,
}

/// appc's Volume, as the pod manifest has it.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Volume {
    name: String,
    kind: String,
    source: Option<String>,
    read_only: Option<bool>,
    recursive: Option<bool>,
    mode: Option<String>,
    uid: Option<u32>,
    gid: Option<u32>,
}

#[derive(Debug, Deserialize)]
struct Image {
    id: String,
}

/// An app section (appc `types.App`), fully resolved by stage0.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct App {
    pub exec: Vec<String>,
    pub user: String,
    /// Empty: none given, and the user's groups come from the image's /etc/passwd and /etc/group.
    #[serde(default)]
    pub group: String,
    #[serde(default, rename = "supplementaryGIDs")]
    pub supplementary_gids: Vec<u32>,
    #[serde(default)]
    pub working_directory: Option<String>,
    #[serde(default)]
    pub environment: Vec<EnvVar>,
    /// appc isolators (the image's, or the CLI's in their place); stage1 applies the capability sets.
    #[serde(default)]
    pub isolators: Vec<Isolator>,
    /// appc event handlers: at most one `pre-start` and one `post-stop` (check_app).
    #[serde(default)]
    pub event_handlers: Vec<EventHandler>,
}

/// appc's `eventHandlers[]` entry: a program run with the app's plan around its exec.
#[derive(Debug, Clone, Deserialize, PartialEq)]
pub struct EventHandler {
    pub name: String,
    /// Defaulted so that a missing exec is refused by check_app with the app's name, as an
    /// empty one is, rather than by serde.
    #[serde(default)]
    pub exec: Vec<String>,
}

/// The event handlers appc defines, in the order they run around the app.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hook {
    PreStart,
    PostStop,
}

impl Hook {
    pub const ALL: [Hook; 2] = [Hook::PreStart, Hook::PostStop];

    /// appc's name, also the name of the hook's file in `<pod>/hooks/<app>/`.
    pub fn name(self) -> &'static str {
        match self {
            Hook::PreStart => "pre-start",
            Hook::PostStop => "post-stop",
        }
    }
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
pub struct Isolator {
    pub name: String,
    pub value: serde_json::Value,
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
    /// What is mounted in the app's root, in the pod manifest's order.
    pub volumes: Vec<AppVolume>,
    /// appc's readOnlyRootFS: the root is mounted read-only (its volumes, /dev, /proc as they are).
    pub read_only_root: bool,
}

/// One mount of a volume in an app.
#[derive(Debug, Clone, PartialEq)]
pub struct AppVolume {
    /// Absolute inside the app's root, without `..`.
    pub target: String,
    pub source: VolumeSource,
    /// The volume's readOnly, else the app's mount point of the volume's name (rkt's rule).
    pub read_only: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub enum VolumeSource {
    /// A host path, bound (with the mounts below it when recursive).
    Host { path: String, recursive: bool },
    /// `<pod>/sharedVolumes/<name>`, made with this mode and owner, shared by the pod's apps.
    Empty {
        name: String,
        mode: u32,
        uid: u32,
        gid: u32,
    },
}

impl App {
    pub fn working_directory(&self) -> &str {
        match self.working_directory.as_deref() {
            Some(w) if !w.is_empty() => w,
            _ => "/",
        }
    }

    /// The exec of the app's `hook` handler, if it has one (check_app allows one of each).
    pub fn handler(&self, hook: Hook) -> Option<&[String]> {
        self.event_handlers
            .iter()
            .find(|h| h.name == hook.name())
            .map(|h| h.exec.as_slice())
    }
}

/// Reads and validates the pod through the pod directory fd (never through a path, so it
/// is the locked directory that is read).
pub fn load(pod_dir: impl AsFd + Copy) -> Result<Vec<PodApp>> {
    resolve(|path| fsutil::read_at(pod_dir, path))
}

/// A mutable pod's apps (`init --mutable`): as [`load`], but it may have none yet, since they
/// come later with `app-add`.
pub fn load_sandbox(pod_dir: impl AsFd + Copy) -> Result<Vec<PodApp>> {
    let raw = fsutil::read_at(pod_dir, "pod").ctx("read pod manifest <pod>/pod")?;
    if parse_any_pod(&raw)?.0.is_empty() {
        return Ok(Vec::new());
    }
    load(pod_dir)
}

/// The pod's apps from its files, which `read` gives by their path in the pod directory.
fn resolve(read: impl Fn(&str) -> nix::Result<Vec<u8>>) -> Result<Vec<PodApp>> {
    let raw = read("pod").ctx("read pod manifest <pod>/pod")?;
    let (apps, volumes) = parse_pod(&raw)?;
    let points: PodMountPoints =
        serde_json::from_slice(&raw).ctx("parse the pod manifest's mount points")?;
    let metadata_url = metadata_url(&read)?;
    let mut out = Vec::with_capacity(apps.len());
    for (ra, in_pod) in apps.into_iter().zip(points.apps) {
        let id_path = format!("appsinfo/{}/treeStoreID", ra.name);
        let id = read(&id_path).with_ctx(|| format!("read <pod>/{id_path}"))?;
        let tree_store_id = String::from_utf8_lossy(&id).trim().to_string();
        check_tree_store_id(&ra.name, &tree_store_id)?;
        let (app, points) = match ra.app {
            Some(app) => (app, in_pod.app.unwrap_or_default()),
            None => {
                let path = format!("appsinfo/{}/manifest", ra.name);
                let raw = read(&path).with_ctx(|| format!("read <pod>/{path}"))?;
                let im: HasApp<App> =
                    serde_json::from_slice(&raw).ctx(format!("parse <pod>/{path}"))?;
                let points: HasApp<MountPoints> =
                    serde_json::from_slice(&raw).ctx(format!("parse <pod>/{path}"))?;
                match im.app {
                    Some(app) => (app, points.app.unwrap_or_default()),
                    None => bail!(
                        "app {:?}: neither the pod nor the image manifest has an app section",
                        ra.name
                    ),
                }
            }
        };
        check_app(&ra.name, &app)?;
        let mut app = app;
        if let Some(url) = &metadata_url {
            // Last, so it wins over an image's own variable of that name (build_env).
            app.environment.push(EnvVar {
                name: "AC_METADATA_URL".into(),
                value: url.clone(),
            });
        }
        let volumes = app_volumes(&ra.name, &ra.mounts, &volumes, &points.mount_points)?;
        out.push(PodApp {
            name: ra.name,
            tree_store_id,
            app,
            volumes,
            read_only_root: ra.read_only_root_fs,
        });
    }
    Ok(out)
}

/// The metadata service's URL for the pod's apps (`AC_METADATA_URL`), which stage0 writes to
/// `<pod>/metadata-url` when it registers the pod (`run --mds-register`); none otherwise.
fn metadata_url(read: impl Fn(&str) -> nix::Result<Vec<u8>>) -> Result<Option<String>> {
    let raw = match read("metadata-url") {
        Ok(raw) => raw,
        Err(nix::errno::Errno::ENOENT) => return Ok(None),
        Err(e) => return Err(e).ctx("read <pod>/metadata-url"),
    };
    let url = String::from_utf8(raw)
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| s.starts_with("http://") && !s.chars().any(char::is_control))
        .ok_or_else(|| crate::error::Error::msg("<pod>/metadata-url is not an http:// URL"))?;
    Ok(Some(url))
}

fn parse_pod(raw: &[u8]) -> Result<(Vec<RuntimeApp>, Vec<PodVolume>)> {
    let (apps, volumes) = parse_any_pod(raw)?;
    if apps.is_empty() {
        bail!("pod manifest: no apps");
    }
    Ok((apps, volumes))
}

/// A pod manifest with any number of apps, none included.
fn parse_any_pod(raw: &[u8]) -> Result<(Vec<RuntimeApp>, Vec<PodVolume>)> {
    let pm: PodManifest = serde_json::from_slice(raw).ctx("parse pod manifest")?;
    if pm.ac_kind != "PodManifest" {
        bail!(
            "pod manifest: acKind is {:?}, expected \"PodManifest\"",
            pm.ac_kind
        );
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
    let mut volumes = Vec::with_capacity(pm.volumes.len());
    for v in pm.volumes {
        if volumes.iter().any(|p: &PodVolume| p.name == v.name) {
            bail!("pod manifest: duplicate volume name {:?}", v.name);
        }
        let source = volume_source(&v).with_ctx(|| format!("pod manifest: volume {:?}", v.name))?;
        volumes.push(PodVolume {
            name: v.name,
            source,
            read_only: v.read_only,
        });
    }
    Ok((pm.apps, volumes))
}

/// A volume of the pod, checked.
struct PodVolume {
    name: String,
    source: VolumeSource,
    read_only: Option<bool>,
}

/// A volume as appc's Volume.assertValid takes it, with its defaults (an empty volume is root's,
/// 0755, unless it says otherwise).
fn volume_source(v: &Volume) -> Result<VolumeSource> {
    if !is_ac_name(&v.name) {
        bail!("the name is not a valid ACName");
    }
    match v.kind.as_str() {
        "host" => {
            let path = match &v.source {
                Some(p) if p.starts_with('/') && !p.contains('\0') => p.clone(),
                _ => bail!("source for host volume must be absolute path"),
            };
            if v.mode.is_some() || v.uid.is_some() || v.gid.is_some() {
                bail!("mode, uid and gid cannot be set for a host volume");
            }
            Ok(VolumeSource::Host {
                path,
                recursive: v.recursive.unwrap_or(false),
            })
        }
        "empty" => {
            if v.source.is_some() {
                bail!("source for empty volume must be empty");
            }
            let mode = v.mode.as_deref().unwrap_or("0755");
            let mode = match u32::from_str_radix(mode, 8) {
                Ok(m) if m <= 0o7777 && !mode.starts_with('+') => m,
                _ => bail!("mode {mode:?} is not an octal file mode"),
            };
            let id = |id: Option<u32>, what: &str| match id {
                Some(u32::MAX) => bail!("{what} -1 is not an id"),
                id => Ok(id.unwrap_or(0)),
            };
            Ok(VolumeSource::Empty {
                name: v.name.clone(),
                mode,
                uid: id(v.uid, "uid")?,
                gid: id(v.gid, "gid")?,
            })
        }
        kind => bail!("unrecognized volume type {kind:?}: should be one of \"empty\", \"host\""),
    }
}

/// An app's mounts, each with its volume: every target absolute, not the root, without `..`,
/// and no two on the same path.
fn app_volumes(
    app: &str,
    mounts: &[Mount],
    volumes: &[PodVolume],
    points: &[MountPoint],
) -> Result<Vec<AppVolume>> {
    let mut out: Vec<AppVolume> = Vec::with_capacity(mounts.len());
    for m in mounts {
        let Some(volume) = volumes.iter().find(|v| v.name == m.volume) else {
            bail!("app {app:?}: could not find volume {:?}", m.volume);
        };
        let target =
            clean_target(&m.path).with_ctx(|| format!("app {app:?}: mount target {:?}", m.path))?;
        if out.iter().any(|v| v.target == target) {
            bail!("app {app:?}: two mounts on {target:?}");
        }
        let point = points.iter().find(|p| p.name == m.volume);
        out.push(AppVolume {
            target,
            source: volume.source.clone(),
            read_only: volume
                .read_only
                .unwrap_or_else(|| point.is_some_and(|p| p.read_only)),
        });
    }
    Ok(out)
}

/// `/a//b/./c/` as `/a/b/c`; refuses a relative path, `..`, NUL and the root itself.
fn clean_target(path: &str) -> Result<String> {
    if !path.starts_with('/') || path.contains('\0') {
        bail!("not an absolute path");
    }
    let parts: Vec<&str> = path
        .split('/')
        .filter(|p| !p.is_empty() && *p != ".")
        .collect();
    if parts.contains(&"..") {
        bail!("has a \"..\" component");
    }
    if parts.is_empty() {
        bail!("is the app's root");
    }
    Ok(format!("/{}", parts.join("/")))
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
    if app.user.is_empty() {
        bail!("app {name:?}: user is required");
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
    check_event_handlers(name, &app.event_handlers)
}

/// appc's handlers, as stage1 runs them: a known name, each at most once (which of two would
/// run is not said anywhere), and an exec to run.
fn check_event_handlers(name: &str, handlers: &[EventHandler]) -> Result<()> {
    for (i, h) in handlers.iter().enumerate() {
        if !Hook::ALL.iter().any(|k| k.name() == h.name) {
            bail!(
                "app {name:?}: event handler {:?}: unknown name (appc defines \"pre-start\" and \"post-stop\")",
                h.name
            );
        }
        if handlers[..i].iter().any(|o| o.name == h.name) {
            bail!("app {name:?}: event handler {:?} given twice", h.name);
        }
        if h.exec.first().is_none_or(String::is_empty) {
            bail!("app {name:?}: event handler {:?}: empty exec", h.name);
        }
        if h.exec.iter().any(|s| s.contains('\0')) {
            bail!("app {name:?}: event handler {:?}: NUL byte in exec", h.name);
        }
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
    use std::fs::{self, File};

    use super::*;

    const POD: &str = r#"{"acKind":"PodManifest","acVersion":"0.8.11","apps":[
        {"name":"web","image":{"id":"sha512-aa","name":"example.com/busybox"},
         "app":{"exec":["/bin/sh","-c","exit 3"],"user":"0","group":"0","supplementaryGIDs":[10,20],
                "workingDirectory":"/tmp","environment":[{"name":"FOO","value":"bar"}]}},
        {"name":"side-car","image":{"id":"sha512-bb"}}]}"#;

    #[test]
    fn parses_a_reified_pod() {
        let (apps, volumes) = parse_pod(POD.as_bytes()).unwrap();
        assert_eq!(apps.len(), 2);
        assert!(volumes.is_empty());
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
    fn only_a_sandbox_may_have_no_apps() {
        let dir = tempfile::tempdir().unwrap();
        let pod = |text: &str| {
            fs::write(dir.path().join("pod"), text).unwrap();
            File::open(dir.path()).unwrap()
        };
        let empty = pod(r#"{"acKind":"PodManifest","apps":[]}"#);
        assert_eq!(load_sandbox(&empty).unwrap(), []);
        assert_eq!(
            load(&empty).unwrap_err().to_string(),
            "pod manifest: no apps"
        );
        let bad = pod(r#"{"acKind":"ImageManifest","apps":[]}"#);
        assert!(load_sandbox(&bad).is_err());
        // With apps, a sandbox's are read as any pod's.
        let one = pod(r#"{"acKind":"PodManifest","apps":[{"name":"a","image":{"id":"x"}}]}"#);
        let err = load_sandbox(&one).unwrap_err().to_string();
        assert!(err.contains("appsinfo/a/treeStoreID"), "{err}");
    }

    const VOLUMES: &str = r#"{"acKind":"PodManifest","apps":[
        {"name":"web","image":{"id":"sha512-aa"},
         "app":{"exec":["/bin/true"],"user":"0","mountPoints":[{"name":"logs","path":"/var/log","readOnly":true}]},
         "mounts":[{"volume":"data","path":"/srv//data/"},{"volume":"logs","path":"/var/log"},
                   {"volume":"scratch","path":"/tmp/./s"}]}],
        "volumes":[{"name":"data","kind":"host","source":"/srv/data","recursive":true},
                   {"name":"logs","kind":"host","source":"/var/log/web","readOnly":false},
                   {"name":"scratch","kind":"empty","mode":"1777","uid":1000}]}"#;

    fn tree_ids(read: &str) -> nix::Result<Vec<u8>> {
        match read {
            "appsinfo/web/treeStoreID" => Ok(b"t1".to_vec()),
            _ => Err(nix::Error::ENOENT),
        }
    }

    #[test]
    fn resolves_mounts_against_volumes() {
        let apps = resolve(|p| {
            if p == "pod" {
                Ok(VOLUMES.as_bytes().to_vec())
            } else {
                tree_ids(p)
            }
        })
        .unwrap();
        assert_eq!(
            apps[0].volumes,
            [
                AppVolume {
                    target: "/srv/data".into(),
                    source: VolumeSource::Host {
                        path: "/srv/data".into(),
                        recursive: true
                    },
                    read_only: false,
                },
                // The volume's readOnly wins over the mount point's.
                AppVolume {
                    target: "/var/log".into(),
                    source: VolumeSource::Host {
                        path: "/var/log/web".into(),
                        recursive: false
                    },
                    read_only: false,
                },
                AppVolume {
                    target: "/tmp/s".into(),
                    source: VolumeSource::Empty {
                        name: "scratch".into(),
                        mode: 0o1777,
                        uid: 1000,
                        gid: 0
                    },
                    read_only: false,
                },
            ]
        );
    }

    #[test]
    fn refuses_bad_volumes_and_mounts() {
        let vol = |v: &str, mounts: &str| {
            format!(
                r#"{{"acKind":"PodManifest","apps":[{{"name":"web","image":{{"id":"x"}},
                "app":{{"exec":["/bin/true"],"user":"0","mountPoints":[{{"name":"d","path":"/d"}}]}},
                "mounts":[{mounts}]}}],"volumes":[{v}]}}"#
            )
        };
        let ok = r#"{"name":"d","kind":"empty"}"#;
        let cases = [
            vol(r#"{"name":"d","kind":"host","source":"rel"}"#, ""),
            vol(r#"{"name":"d","kind":"host"}"#, ""),
            vol(
                r#"{"name":"d","kind":"host","source":"/x","mode":"0755"}"#,
                "",
            ),
            vol(r#"{"name":"d","kind":"empty","source":"/x"}"#, ""),
            vol(r#"{"name":"d","kind":"empty","mode":"0999"}"#, ""),
            vol(r#"{"name":"d","kind":"empty","mode":"17777"}"#, ""),
            vol(r#"{"name":"d","kind":"empty","uid":4294967295}"#, ""),
            vol(r#"{"name":"d","kind":"tmpfs"}"#, ""),
            vol(r#"{"name":"D","kind":"empty"}"#, ""),
            vol(&format!("{ok},{ok}"), ""),
            vol(ok, r#"{"volume":"e","path":"/d"}"#),
            vol(ok, r#"{"volume":"d","path":"d"}"#),
            vol(ok, r#"{"volume":"d","path":"/a/../b"}"#),
            vol(ok, r#"{"volume":"d","path":"/./"}"#),
            vol(
                ok,
                r#"{"volume":"d","path":"/a"},{"volume":"d","path":"/a/"}"#,
            ),
        ];
        for bad in cases {
            let r = resolve(|p| {
                if p == "pod" {
                    Ok(bad.clone().into_bytes())
                } else {
                    tree_ids(p)
                }
            });
            assert!(r.is_err(), "{bad}");
        }
        let good = vol(ok, r#"{"volume":"d","path":"/a"}"#);
        resolve(|p| {
            if p == "pod" {
                Ok(good.clone().into_bytes())
            } else {
                tree_ids(p)
            }
        })
        .unwrap();
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
            isolators: vec![],
            event_handlers: vec![],
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
    fn event_handlers() {
        let pod = |handlers: &str| {
            format!(
                r#"{{"acKind":"PodManifest","apps":[{{"name":"web","image":{{"id":"x"}},
                "app":{{"exec":["/bin/true"],"user":"0","eventHandlers":[{handlers}]}}}}]}}"#
            )
        };
        let load = |handlers: &str| {
            let text = pod(handlers);
            resolve(|p| {
                if p == "pod" {
                    Ok(text.clone().into_bytes())
                } else {
                    tree_ids(p)
                }
            })
            .map_err(|e| e.to_string())
        };
        let apps = load(
            r#"{"name":"post-stop","exec":["/bin/sh","-c","echo bye"]},
               {"name":"pre-start","exec":["/bin/touch","/prestart"]}"#,
        )
        .unwrap();
        let app = &apps[0].app;
        assert_eq!(
            app.handler(Hook::PreStart),
            Some(&["/bin/touch".to_string(), "/prestart".to_string()][..])
        );
        assert_eq!(app.handler(Hook::PostStop).unwrap()[2], "echo bye");
        assert!(load("").unwrap()[0].app.handler(Hook::PreStart).is_none());
        for (bad, msg) in [
            (
                r#"{"name":"post-start","exec":["/bin/true"]}"#,
                r#"app "web": event handler "post-start": unknown name (appc defines "pre-start" and "post-stop")"#,
            ),
            (
                r#"{"name":"pre-start","exec":[]}"#,
                r#"app "web": event handler "pre-start": empty exec"#,
            ),
            (
                r#"{"name":"pre-start"}"#,
                r#"app "web": event handler "pre-start": empty exec"#,
            ),
            (
                r#"{"name":"post-stop","exec":[""]}"#,
                r#"app "web": event handler "post-stop": empty exec"#,
            ),
            (
                r#"{"name":"post-stop","exec":["/bin/true"]},{"name":"post-stop","exec":["/bin/false"]}"#,
                r#"app "web": event handler "post-stop" given twice"#,
            ),
            (
                r#"{"name":"pre-start","exec":["/bin/sh","a\u0000b"]}"#,
                r#"app "web": event handler "pre-start": NUL byte in exec"#,
            ),
        ] {
            assert_eq!(load(bad).unwrap_err(), msg, "{bad}");
        }
        assert!(load(r#"{"name":"pre-start","exec":"/bin/true"}"#).is_err());
        // A pod without eventHandlers reads as one with none.
        let text = POD.to_string();
        let apps = resolve(|p| match p {
            "pod" => Ok(text.clone().into_bytes()),
            "appsinfo/side-car/manifest" => {
                Ok(br#"{"app":{"exec":["/bin/true"],"user":"0"}}"#.to_vec())
            }
            p if p.ends_with("treeStoreID") => Ok(b"t1".to_vec()),
            _ => Err(nix::Error::ENOENT),
        })
        .unwrap();
        assert!(apps.iter().all(|a| a.app.event_handlers.is_empty()));
    }

    #[test]
    fn metadata_url_is_every_apps_last_variable() {
        let text = POD.to_string();
        let with = |url: &'static [u8]| {
            resolve(|p| match p {
                "pod" => Ok(text.clone().into_bytes()),
                "metadata-url" => Ok(url.to_vec()),
                "appsinfo/side-car/manifest" => {
                    Ok(br#"{"app":{"exec":["/bin/true"],"user":"0"}}"#.to_vec())
                }
                p if p.ends_with("treeStoreID") => Ok(b"t1".to_vec()),
                _ => Err(nix::Error::ENOENT),
            })
        };
        let apps = with(b"http://172.16.28.1:18112\n").unwrap();
        for a in &apps {
            let last = a.app.environment.last().unwrap();
            assert_eq!(
                (last.name.as_str(), last.value.as_str()),
                ("AC_METADATA_URL", "http://172.16.28.1:18112")
            );
        }
        assert!(with(b"file:///etc/passwd").is_err());
        assert!(with(b"http://a\nB=c").is_err());
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

/// Generated pod manifests. Valid ones load as written; mutated ones (a key removed, a value
/// replaced by one of any type, size or depth, bytes cut or changed) load exactly when an
/// independent reading of the schema says they should, and never panic: anything else is
/// stage1's error, which ends it with exit code 254.
#[cfg(test)]
mod properties {
    use std::collections::{BTreeMap, HashSet};
    use std::fs::{self, File};

    use proptest::collection::{btree_map, vec};
    use proptest::prelude::*;
    use proptest::sample::Index;
    use proptest::string::{string_regex, RegexGeneratorStrategy};
    use proptest::test_runner::RngAlgorithm;
    use serde_json::{json, Map, Value};

    use super::*;

    /// A compiled string strategy: a `&str` strategy would compile its regex for every value.
    fn re(pattern: &str) -> RegexGeneratorStrategy<String> {
        string_regex(pattern).unwrap()
    }

    fn config(cases: u32) -> ProptestConfig {
        ProptestConfig {
            cases,
            // A failure found here becomes a named unit test above, not a file beside the source.
            failure_persistence: None,
            // ChaCha, the default, costs more than the rest of a case in a debug build.
            rng_algorithm: RngAlgorithm::XorShift,
            ..ProptestConfig::default()
        }
    }

    /// One app as stage0 writes it: its files in appsinfo/ and, maybe, its app section in the pod.
    #[derive(Debug, Clone)]
    struct GenApp {
        image_id: String,
        tree_store_id: String,
        in_pod: Option<App>,
        in_image: App,
    }

    type GenPod = BTreeMap<String, GenApp>;

    fn app() -> impl Strategy<Value = App> {
        let text = re("[^\u{0}]{0,12}");
        let env = (re("[A-Za-z_][A-Za-z0-9_.-]{0,8}"), re("[^\u{0}]{0,12}"))
            .prop_map(|(name, value)| EnvVar { name, value });
        (
            (re("[^\u{0}]{1,12}"), vec(text, 0..3)),
            (re("[^\u{0}]{1,8}"), re("[^\u{0}]{1,8}")),
            vec(any::<u32>(), 0..3),
            prop_oneof![
                Just(None),
                Just(Some(String::new())),
                re("/[^\u{0}]{0,12}").prop_map(Some)
            ],
            vec(env, 0..3),
            handlers(),
        )
            .prop_map(
                |((exec0, args), (user, group), gids, wd, environment, event_handlers)| App {
                    exec: std::iter::once(exec0).chain(args).collect(),
                    user,
                    group,
                    supplementary_gids: gids,
                    working_directory: wd,
                    environment,
                    isolators: vec![],
                    event_handlers,
                },
            )
    }

    /// None, either or both of appc's handlers, in either order.
    fn handlers() -> impl Strategy<Value = Vec<EventHandler>> {
        let exec = || {
            (re("[^\u{0}]{1,12}"), vec(re("[^\u{0}]{0,12}"), 0..3))
                .prop_map(|(e0, args)| std::iter::once(e0).chain(args).collect::<Vec<_>>())
        };
        (
            proptest::option::of(exec()),
            proptest::option::of(exec()),
            any::<bool>(),
        )
            .prop_map(|(pre, post, swap)| {
                let mut hs: Vec<EventHandler> = [(Hook::PreStart, pre), (Hook::PostStop, post)]
                    .into_iter()
                    .filter_map(|(k, exec)| {
                        exec.map(|exec| EventHandler {
                            name: k.name().into(),
                            exec,
                        })
                    })
                    .collect();
                if swap {
                    hs.reverse();
                }
                hs
            })
    }

    fn pod() -> impl Strategy<Value = GenPod> {
        let one = (
            re("sha512-[0-9a-f]{1,16}"),
            re("[A-Za-z0-9_-][A-Za-z0-9._-]{0,20}"),
            proptest::option::of(app()),
            app(),
        )
            .prop_map(|(image_id, tree_store_id, in_pod, in_image)| GenApp {
                image_id,
                tree_store_id,
                in_pod,
                in_image,
            });
        btree_map(re("[a-z0-9]{1,6}(-[a-z0-9]{1,6}){0,2}"), one, 1..4)
    }

    fn app_json(a: &App) -> Value {
        let env: Vec<Value> = a
            .environment
            .iter()
            .map(|e| json!({"name": e.name, "value": e.value}))
            .collect();
        let mut v = json!({
            "exec": a.exec, "user": a.user, "group": a.group,
            "supplementaryGIDs": a.supplementary_gids, "environment": env,
        });
        if let Some(w) = &a.working_directory {
            v["workingDirectory"] = json!(w);
        }
        if !a.event_handlers.is_empty() {
            let hs: Vec<Value> = a
                .event_handlers
                .iter()
                .map(|h| json!({"name": h.name, "exec": h.exec}))
                .collect();
            v["eventHandlers"] = json!(hs);
        }
        v
    }

    fn pod_json(pod: &GenPod) -> Value {
        let apps: Vec<Value> = pod
            .iter()
            .map(|(name, a)| {
                let mut v =
                    json!({"name": name, "image": {"id": a.image_id, "name": "example.com/x"}});
                if let Some(app) = &a.in_pod {
                    v["app"] = app_json(app);
                }
                v
            })
            .collect();
        json!({"acKind": "PodManifest", "acVersion": "0.8.11", "apps": apps, "volumes": [], "isolators": []})
    }

    /// The pod directory stage0 leaves for `pod`, with `pod_text` as its pod manifest.
    fn files(pod: &GenPod, pod_text: &[u8]) -> BTreeMap<String, Vec<u8>> {
        let mut files = BTreeMap::from([("pod".to_string(), pod_text.to_vec())]);
        for (name, a) in pod {
            let image = json!({"acKind": "ImageManifest", "name": "example.com/x", "app": app_json(&a.in_image)});
            files.insert(
                format!("appsinfo/{name}/treeStoreID"),
                format!("{}\n", a.tree_store_id).into_bytes(),
            );
            files.insert(
                format!("appsinfo/{name}/manifest"),
                image.to_string().into_bytes(),
            );
        }
        files
    }

    fn resolve_text(pod: &GenPod, pod_text: &[u8]) -> Result<Vec<PodApp>> {
        let files = files(pod, pod_text);
        resolve(|path| files.get(path).cloned().ok_or(nix::Error::ENOENT))
    }

    /// Through a real pod directory, as stage1 reads it.
    fn load_text(pod: &GenPod, pod_text: &[u8]) -> Result<Vec<PodApp>> {
        let dir = tempfile::tempdir().unwrap();
        for (path, data) in files(pod, pod_text) {
            let path = dir.path().join(path);
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            fs::write(path, data).unwrap();
        }
        load(&File::open(dir.path()).unwrap())
    }

    /// The JSON pointer of every node below the root, with its parent's pointer and its own key.
    fn nodes(v: &Value, here: &str, out: &mut Vec<(String, String, String)>) {
        let children: Vec<(String, &Value)> = match v {
            Value::Array(a) => a
                .iter()
                .enumerate()
                .map(|(i, c)| (i.to_string(), c))
                .collect(),
            Value::Object(o) => o.iter().map(|(k, c)| (k.clone(), c)).collect(),
            _ => vec![],
        };
        for (key, child) in children {
            let path = format!("{here}/{}", key.replace('~', "~0").replace('/', "~1"));
            out.push((path.clone(), here.to_string(), key));
            nodes(child, &path, out);
        }
    }

    #[derive(Debug, Clone)]
    enum Mutation {
        /// Removes a key of an object (or an element of an array).
        Remove(Index),
        Replace(Index, Value),
        AddKey(Index, String, Value),
    }

    /// Values of every JSON type, including huge strings, odd numbers and nesting deeper than any
    /// parser should follow.
    fn hostile() -> impl Strategy<Value = Value> {
        let small = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            any::<u64>().prop_map(Value::from),
            any::<f64>().prop_map(Value::from),
            Just(json!(u64::from(u32::MAX) + 1)),
            Just(json!(-1)),
            Just(json!(1.0)),
            any::<String>().prop_map(Value::from),
            Just(json!("")),
            Just(json!("/")),
            Just(json!("PodManifest")),
            re("[a-z0-9]{1,4}").prop_map(Value::from),
            re("[A-Z_]{1,4}").prop_map(Value::from),
            re("[^\u{0}]{0,4}\u{0}[^\u{0}]{0,4}").prop_map(Value::from),
        ];
        let big = prop_oneof![
            (1usize..(1 << 17)).prop_map(|n| Value::from("x".repeat(n))),
            (100usize..1000)
                .prop_map(|depth| (0..depth).fold(json!("x"), |v, _| Value::Array(vec![v]))),
            (100usize..1000).prop_map(|depth| {
                (0..depth).fold(json!({}), |v, _| {
                    Value::Object(Map::from_iter([("a".to_string(), v)]))
                })
            }),
        ];
        // Big values cost more to write and read than all the rest: one case in a hundred or so.
        let leaf = prop_oneof![60 => small, 1 => big];
        leaf.prop_recursive(3, 12, 4, |inner| {
            prop_oneof![
                vec(inner.clone(), 0..4).prop_map(Value::Array),
                btree_map(re("[a-zA-Z]{0,8}"), inner, 0..4)
                    .prop_map(|m| Value::Object(m.into_iter().collect::<Map<_, _>>())),
            ]
        })
    }

    fn mutation() -> impl Strategy<Value = Mutation> {
        let key = prop_oneof![
            proptest::sample::select(vec![
                "acKind",
                "apps",
                "name",
                "image",
                "id",
                "app",
                "exec",
                "user",
                "group",
                "supplementaryGIDs",
                "workingDirectory",
                "environment",
                "value",
                "eventHandlers",
                "pre-start",
                "post-stop",
            ])
            .prop_map(String::from),
            re("[a-zA-Z]{0,8}"),
        ];
        prop_oneof![
            any::<Index>().prop_map(Mutation::Remove),
            (any::<Index>(), hostile()).prop_map(|(i, v)| Mutation::Replace(i, v)),
            (any::<Index>(), key, hostile()).prop_map(|(i, k, v)| Mutation::AddKey(i, k, v)),
        ]
    }

    fn mutate(mut v: Value, m: &Mutation) -> Value {
        let mut all = Vec::new();
        nodes(&v, "", &mut all);
        match m {
            Mutation::Remove(i) => {
                let (_, parent, key) = i.get(&all);
                match v.pointer_mut(parent) {
                    Some(Value::Object(o)) => drop(o.remove(key)),
                    Some(Value::Array(a)) => drop(a.remove(key.parse().unwrap())),
                    _ => unreachable!("a node's parent is an object or an array"),
                }
            }
            Mutation::Replace(i, new) => *v.pointer_mut(&i.get(&all).0).unwrap() = new.clone(),
            Mutation::AddKey(i, k, new) => {
                let objects: Vec<&str> = std::iter::once("")
                    .chain(all.iter().map(|(p, _, _)| p.as_str()))
                    .filter(|p| v.pointer(p).is_some_and(Value::is_object))
                    .collect();
                let path = i.get(&objects).to_string();
                v.pointer_mut(&path).unwrap()[k.as_str()] = new.clone();
            }
        }
        v
    }

    /// What stage1 must make of a pod manifest, read from the appc schema against the JSON itself:
    /// Some(accept) or, for a struct written as an array of its fields (which serde also takes and
    /// no writer produces), None.
    fn expected(v: &Value, pod: &GenPod) -> Option<bool> {
        let Some(top) = v.as_object() else {
            return if v.is_array() { None } else { Some(false) };
        };
        if top.get("acKind") != Some(&json!("PodManifest")) {
            return Some(false);
        }
        let apps = match top.get("apps") {
            Some(Value::Array(a)) if !a.is_empty() => a,
            _ => return Some(false),
        };
        let mut names = HashSet::new();
        let mut verdict = list_expected(top.get("volumes"));
        if verdict == Some(false) {
            return verdict;
        }
        for ra in apps {
            let Some(ra) = ra.as_object() else {
                return if ra.is_array() { None } else { Some(false) };
            };
            let name = match ra.get("name") {
                Some(Value::String(n)) if is_ac_name(n) && names.insert(n) => n,
                _ => return Some(false),
            };
            match ra.get("image") {
                Some(Value::Object(i)) if matches!(i.get("id"), Some(Value::String(id)) if !id.is_empty()) =>
                    {}
                Some(Value::Array(_)) => verdict = None,
                _ => return Some(false),
            }
            if !pod.contains_key(name) {
                return Some(false);
            }
            match list_expected(ra.get("mounts")) {
                Some(true) => {}
                Some(false) => return Some(false),
                None => verdict = None,
            }
            match ra.get("app") {
                None | Some(Value::Null) => {}
                Some(app) => match app_expected(app) {
                    Some(true) => {}
                    Some(false) => return Some(false),
                    None => verdict = None,
                },
            }
        }
        verdict
    }

    fn app_expected(app: &Value) -> Option<bool> {
        let Some(app) = app.as_object() else {
            return if app.is_array() { None } else { Some(false) };
        };
        let strings = |v: Option<&Value>| -> Option<Vec<String>> {
            v?.as_array()?
                .iter()
                .map(|s| s.as_str().map(String::from))
                .collect()
        };
        let nonempty = |k: &str| matches!(app.get(k), Some(Value::String(s)) if !s.is_empty());
        let exec_ok = strings(app.get("exec")).is_some_and(|e| {
            e.first().is_some_and(|e0| !e0.is_empty()) && e.iter().all(|s| !s.contains('\0'))
        });
        let gids_ok = match app.get("supplementaryGIDs") {
            None => true,
            Some(Value::Array(g)) => g
                .iter()
                .all(|g| g.as_u64().is_some_and(|g| g <= u64::from(u32::MAX))),
            _ => false,
        };
        let wd_ok = match app.get("workingDirectory") {
            None | Some(Value::Null) => true,
            Some(Value::String(w)) => w.is_empty() || w.starts_with('/'),
            _ => false,
        };
        let env_ok = match app.get("environment") {
            None => true,
            Some(Value::Array(env)) => env.iter().all(|e| {
                matches!(
                    (e.get("name"), e.get("value")),
                    (Some(Value::String(n)), Some(Value::String(v))) if is_env_name(n) && !v.contains('\0')
                ) && e.is_object()
            }),
            _ => false,
        };
        let env_as_arrays = matches!(app.get("environment"), Some(Value::Array(env)) if env.iter().any(Value::is_array));
        if env_as_arrays {
            return None;
        }
        // A group is optional (absent or empty: the user's own), but a string when it is there.
        let group_ok = matches!(app.get("group"), None | Some(Value::String(_)));
        if !(exec_ok && nonempty("user") && group_ok && gids_ok && wd_ok && env_ok) {
            return Some(false);
        }
        match handlers_expected(app.get("eventHandlers")) {
            Some(true) => list_expected(app.get("mountPoints")),
            other => other,
        }
    }

    /// appc's eventHandlers: a list of objects, each with a known name given once and an exec
    /// of strings whose first is not empty, none with a NUL.
    fn handlers_expected(v: Option<&Value>) -> Option<bool> {
        let hs = match v {
            None => return Some(true),
            Some(Value::Array(hs)) => hs,
            Some(_) => return Some(false),
        };
        let mut names = HashSet::new();
        for h in hs {
            let Some(h) = h.as_object() else {
                return if h.is_array() { None } else { Some(false) };
            };
            let name_ok = matches!(h.get("name"), Some(Value::String(n))
                if ["pre-start", "post-stop"].contains(&n.as_str()) && names.insert(n.clone()));
            let exec_ok = match h.get("exec") {
                Some(Value::Array(e)) => {
                    e.iter()
                        .all(|s| s.as_str().is_some_and(|s| !s.contains('\0')))
                        && e.first()
                            .and_then(Value::as_str)
                            .is_some_and(|s| !s.is_empty())
                }
                _ => false,
            };
            if !(name_ok && exec_ok) {
                return Some(false);
            }
        }
        Some(true)
    }

    /// A list stage1 reads beside the apps (volumes, mounts, mountPoints): absent or empty is
    /// fine, anything but a list is refused, and the entries of a non-empty one are the unit
    /// tests' to judge.
    fn list_expected(v: Option<&Value>) -> Option<bool> {
        match v {
            None => Some(true),
            Some(Value::Array(a)) if a.is_empty() => Some(true),
            Some(Value::Array(_)) => None,
            Some(_) => Some(false),
        }
    }

    /// What every loaded app promises the code that uses it.
    fn assert_usable(apps: &[PodApp]) {
        assert!(!apps.is_empty());
        let names: HashSet<_> = apps.iter().map(|a| &a.name).collect();
        assert_eq!(names.len(), apps.len(), "app names are unique");
        for a in apps {
            assert!(is_ac_name(&a.name), "{:?}", a.name);
            check_tree_store_id(&a.name, &a.tree_store_id).unwrap();
            check_app(&a.name, &a.app).unwrap();
        }
    }

    fn as_written(pod: &GenPod) -> Vec<PodApp> {
        pod.iter()
            .map(|(name, a)| PodApp {
                name: name.clone(),
                tree_store_id: a.tree_store_id.clone(),
                app: a.in_pod.clone().unwrap_or_else(|| a.in_image.clone()),
                volumes: vec![],
                read_only_root: false,
            })
            .collect()
    }

    proptest! {
        #![proptest_config(config(300))]

        #[test]
        fn valid_pods_load_from_a_pod_directory(pod in pod()) {
            let apps = load_text(&pod, pod_json(&pod).to_string().as_bytes()).unwrap();
            prop_assert_eq!(apps, as_written(&pod));
        }
    }

    proptest! {
        #![proptest_config(config(5_000))]

        #[test]
        fn valid_pods_load_as_written(pod in pod()) {
            let apps = resolve_text(&pod, pod_json(&pod).to_string().as_bytes()).unwrap();
            prop_assert_eq!(apps, as_written(&pod));
        }
    }

    proptest! {
        #![proptest_config(config(10_000))]

        #[test]
        fn mutated_pods_load_exactly_when_the_schema_allows(pod in pod(), m in mutation()) {
            let v = mutate(pod_json(&pod), &m);
            let loaded = resolve_text(&pod, v.to_string().as_bytes());
            if let Ok(apps) = &loaded {
                assert_usable(apps);
            }
            if let Some(accept) = expected(&v, &pod) {
                prop_assert_eq!(loaded.is_ok(), accept, "{:?}", loaded.err());
            }
        }
    }

    proptest! {
        #![proptest_config(config(15_000))]

        #[test]
        fn cut_or_changed_bytes_are_refused_or_usable(
            pod in pod(),
            cut in any::<Index>(),
            flips in vec((any::<Index>(), any::<u8>()), 0..4),
        ) {
            let mut text = pod_json(&pod).to_string().into_bytes();
            for (i, b) in &flips {
                let i = i.index(text.len());
                text[i] = *b;
            }
            text.truncate(cut.index(text.len() + 1));
            if let Ok(apps) = resolve_text(&pod, &text) {
                assert_usable(&apps);
            }
        }
    }
}
