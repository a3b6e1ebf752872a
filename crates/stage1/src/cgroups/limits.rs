//! What an app's isolators ask of its cgroup, and the files that tell the kernel. Pure:
//! cgroups.rs decides where to write and does it.
//!
//! stage0 canonicalises the quantities before it writes the pod manifest (docs/stage1.md), so
//! only the canonical forms are accepted here: a limit that reads otherwise is a bug upstream,
//! better refused than guessed at.

use std::fmt;

use serde_json::Value;

use crate::error::{bail, Result};
use crate::manifest::Isolator;

const MEMORY: &str = "resource/memory";
const CPU: &str = "resource/cpu";
const CPU_SHARES: &str = "os/linux/cpu-shares";

/// The CFS period of a cpu limit, in µs (runc's and rkt's).
const CFS_PERIOD_US: u64 = 100_000;
/// The kernel refuses a CFS quota under 1 ms: 10 millicores of the period above.
const MIN_MILLICORES: u64 = 10;
/// cgroup v1's range of `cpu.shares`, which appc's isolator takes as it is.
const SHARES: std::ops::RangeInclusive<u64> = 2..=262_144;

/// One limit of one app.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Setting {
    /// Bytes.
    Memory(u64),
    /// Millicores.
    Cpu(u64),
    /// v1 shares.
    CpuShares(u64),
}

/// A file of the app's cgroup and what to write to it.
#[derive(Debug, PartialEq)]
pub struct Write {
    pub file: &'static str,
    pub value: String,
    /// Written only where the kernel has the file (swap accounting can be compiled or booted
    /// out); a missing one then means there is nothing to limit.
    pub if_present: bool,
}

impl Setting {
    /// The controller whose hierarchy holds the setting's files.
    pub fn controller(self) -> &'static str {
        match self {
            Setting::Memory(_) => "memory",
            Setting::Cpu(_) | Setting::CpuShares(_) => "cpu",
        }
    }

    /// In the order they must be written (v1 refuses a memsw limit below the memory limit).
    pub fn files(self, v2: bool) -> Vec<Write> {
        let w = |file, value: String, if_present| Write {
            file,
            value,
            if_present,
        };
        match (self, v2) {
            // Also for swap: a memory limit that spills into swap limits nothing.
            (Setting::Memory(b), false) => vec![
                w("memory.limit_in_bytes", b.to_string(), false),
                w("memory.memsw.limit_in_bytes", b.to_string(), true),
            ],
            (Setting::Memory(b), true) => vec![
                w("memory.max", b.to_string(), false),
                w("memory.swap.max", "0".into(), true),
            ],
            (Setting::Cpu(m), false) => vec![
                w("cpu.cfs_period_us", CFS_PERIOD_US.to_string(), false),
                w("cpu.cfs_quota_us", quota_us(m).to_string(), false),
            ],
            (Setting::Cpu(m), true) => {
                vec![w(
                    "cpu.max",
                    format!("{} {CFS_PERIOD_US}", quota_us(m)),
                    false,
                )]
            }
            (Setting::CpuShares(s), false) => vec![w("cpu.shares", s.to_string(), false)],
            (Setting::CpuShares(s), true) => {
                vec![w("cpu.weight", shares_to_weight(s).to_string(), false)]
            }
        }
    }
}

/// As the error messages name it.
impl fmt::Display for Setting {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Setting::Memory(b) => write!(f, "memory limit {b}"),
            Setting::Cpu(m) => write!(f, "cpu limit {m}m"),
            Setting::CpuShares(s) => write!(f, "cpu-shares {s}"),
        }
    }
}

/// Saturated rather than wrapped: the kernel refuses an absurd quota with a clear error.
fn quota_us(millicores: u64) -> u64 {
    millicores.saturating_mul(CFS_PERIOD_US / 1000)
}

/// runc's conversion: shares 2..262144 onto cgroup v2's weight 1..10000.
fn shares_to_weight(shares: u64) -> u64 {
    1 + ((shares - 2) * 9999) / 262_142
}

/// The limits an app's isolators ask for; other isolators are not ours, and a resource
/// isolator without a `limit` (appc allows `{"request": "1G"}` alone) sets nothing: stage0
/// lists those as ignored.
pub fn settings(isolators: &[Isolator]) -> Result<Vec<Setting>> {
    let mut out: Vec<Setting> = Vec::new();
    for i in isolators {
        let setting = match i.name.as_str() {
            MEMORY => match limit(MEMORY, &i.value)? {
                Some(l) => Setting::Memory(memory(l)?),
                None => continue,
            },
            CPU => match limit(CPU, &i.value)? {
                Some(l) => Setting::Cpu(cpu(l)?),
                None => continue,
            },
            CPU_SHARES => Setting::CpuShares(shares(&i.value)?),
            _ => continue,
        };
        if out
            .iter()
            .any(|s| std::mem::discriminant(s) == std::mem::discriminant(&setting))
        {
            bail!("isolator {} is given twice", i.name);
        }
        out.push(setting);
    }
    Ok(out)
}

/// `"<bytes>"`, a memory isolator's limit.
fn memory(limit: &str) -> Result<u64> {
    match canonical_number(limit) {
        Some(b) if b > 0 => Ok(b),
        _ => bail!(
            "isolator {MEMORY}: limit {limit:?} is not a positive whole number of bytes \
             (stage0 writes e.g. \"33554432\")"
        ),
    }
}

/// `"<millicores>m"`, a cpu isolator's limit.
fn cpu(limit: &str) -> Result<u64> {
    match limit.strip_suffix('m').and_then(canonical_number) {
        Some(m) if m >= MIN_MILLICORES => Ok(m),
        Some(_) => bail!(
            "isolator {CPU}: limit {limit:?} is below {MIN_MILLICORES}m (the kernel's least CFS \
             quota, 1 ms per 100 ms)"
        ),
        None => bail!(
            "isolator {CPU}: limit {limit:?} is not a whole number of millicores \
             (stage0 writes e.g. \"100m\")"
        ),
    }
}

/// A bare integer.
fn shares(value: &Value) -> Result<u64> {
    match value.as_u64() {
        Some(s) if SHARES.contains(&s) => Ok(s),
        _ => bail!(
            "isolator {CPU_SHARES}: {value} is not an integer from {} to {}",
            SHARES.start(),
            SHARES.end()
        ),
    }
}

/// A resource isolator's `limit`, None where it has none (`request` and `default` are not
/// ours to read).
fn limit<'a>(name: &str, value: &'a Value) -> Result<Option<&'a str>> {
    match value.as_object().map(|o| o.get("limit")) {
        Some(None) => Ok(None),
        Some(Some(Value::String(l))) => Ok(Some(l)),
        _ => bail!("isolator {name}: {value} is not an object with a string \"limit\""),
    }
}

/// Decimal digits without a sign or a leading zero, as stage0 writes numbers.
fn canonical_number(s: &str) -> Option<u64> {
    let digits = !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !digits || (s.len() > 1 && s.starts_with('0')) {
        return None;
    }
    s.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn iso(name: &str, value: Value) -> Isolator {
        Isolator {
            name: name.into(),
            value,
        }
    }

    fn one(name: &str, value: Value) -> Result<Vec<Setting>> {
        settings(&[iso(name, value)])
    }

    fn err(name: &str, value: Value) -> String {
        one(name, value).unwrap_err().to_string()
    }

    #[test]
    fn parses_the_canonical_forms() {
        let got = settings(&[
            iso(MEMORY, json!({"limit": "33554432", "request": "1k"})),
            iso("os/linux/capabilities-retain-set", json!({"set": []})),
            iso(CPU, json!({"limit": "1500m"})),
            iso(CPU_SHARES, json!(512)),
        ])
        .unwrap();
        assert_eq!(
            got,
            [
                Setting::Memory(33_554_432),
                Setting::Cpu(1500),
                Setting::CpuShares(512)
            ]
        );
        assert_eq!(settings(&[]).unwrap(), []);
    }

    #[test]
    fn a_request_alone_sets_nothing() {
        let got = settings(&[
            iso(MEMORY, json!({"request": "1G"})),
            iso(CPU, json!({"request": "500m", "default": true})),
        ]);
        assert_eq!(got.unwrap(), []);
    }

    #[test]
    fn refuses_what_stage0_would_not_write() {
        for bad in ["32M", "0", "032", "-1", "", "1.5", "99999999999999999999"] {
            assert!(
                err(MEMORY, json!({ "limit": bad })).contains("not a positive whole number"),
                "{bad}"
            );
        }
        assert!(err(MEMORY, json!(33554432)).contains("not an object with a string \"limit\""));
        assert!(err(CPU, json!({"limit": 2})).contains("not an object with a string \"limit\""));
        for bad in [
            "100",
            "0.5",
            "1.5m",
            "m",
            "0100m",
            "1000000000000000000000m",
        ] {
            assert!(
                err(CPU, json!({ "limit": bad })).contains("not a whole number of millicores"),
                "{bad}"
            );
        }
        assert!(err(CPU, json!({"limit": "9m"})).contains("below 10m"));
        assert_eq!(
            one(CPU, json!({"limit": "10m"})).unwrap(),
            [Setting::Cpu(10)]
        );
        for bad in [json!(1), json!(262145), json!("512"), json!(2.5), json!(-4)] {
            assert!(
                err(CPU_SHARES, bad.clone()).contains("not an integer from 2 to 262144"),
                "{bad}"
            );
        }
        let twice = settings(&[iso(CPU_SHARES, json!(2)), iso(CPU_SHARES, json!(262144))]);
        assert!(twice.unwrap_err().to_string().contains("given twice"));
    }

    fn files(s: Setting, v2: bool) -> Vec<(&'static str, String, bool)> {
        s.files(v2)
            .into_iter()
            .map(|w| (w.file, w.value, w.if_present))
            .collect()
    }

    #[test]
    fn plans_v1_files() {
        let m = Setting::Memory(33_554_432);
        assert_eq!(
            files(m, false),
            [
                ("memory.limit_in_bytes", "33554432".into(), false),
                ("memory.memsw.limit_in_bytes", "33554432".into(), true)
            ]
        );
        assert_eq!(
            files(Setting::Cpu(100), false),
            [
                ("cpu.cfs_period_us", "100000".into(), false),
                ("cpu.cfs_quota_us", "10000".into(), false)
            ]
        );
        assert_eq!(
            files(Setting::Cpu(1500), false)[1].1,
            "150000",
            "more than one CPU"
        );
        assert_eq!(
            files(Setting::CpuShares(512), false),
            [("cpu.shares", "512".into(), false)]
        );
    }

    #[test]
    fn plans_v2_files() {
        assert_eq!(
            files(Setting::Memory(4096), true),
            [
                ("memory.max", "4096".into(), false),
                ("memory.swap.max", "0".into(), true)
            ]
        );
        assert_eq!(
            files(Setting::Cpu(100), true),
            [("cpu.max", "10000 100000".into(), false)]
        );
        let weight = |s| files(Setting::CpuShares(s), true)[0].1.clone();
        assert_eq!(Setting::CpuShares(2).files(true)[0].file, "cpu.weight");
        // runc's table: the ends of the range and the v1 default (1024).
        assert_eq!(weight(2), "1");
        assert_eq!(weight(1024), "39");
        assert_eq!(weight(262_144), "10000");
    }

    #[test]
    fn names_settings_for_messages() {
        assert_eq!(Setting::Memory(5).to_string(), "memory limit 5");
        assert_eq!(Setting::Cpu(100).to_string(), "cpu limit 100m");
        assert_eq!(Setting::CpuShares(512).to_string(), "cpu-shares 512");
        assert_eq!(Setting::Memory(5).controller(), "memory");
        assert_eq!(Setting::CpuShares(5).controller(), "cpu");
    }
}
