//! What an app's cgroup tells once the app has exited: whether the OOM killer struck, its
//! memory peak and its CPU time (`<pod>/appstats/<app>`, docs/stage1.md). Pure: the caller
//! gives a reader of the cgroup's files.

use serde_json::json;

/// The app's exit code when the kernel's OOM killer (or any SIGKILL) ends it.
const KILLED: i32 = 128 + libc::SIGKILL;

#[derive(Debug, Default, Clone, Copy, PartialEq)]
pub struct AppStats {
    /// OOM kills in the app's cgroup; None where no memory hierarchy was read.
    oom_kills: Option<u64>,
    /// Bytes.
    pub memory_peak: Option<u64>,
    /// Nanoseconds.
    pub cpu_time: Option<u64>,
}

impl AppStats {
    /// Adds what one hierarchy's cgroup of the app holds; `read` gives a file's content, None
    /// where the file is not there (a controller the hierarchy does not have).
    pub fn collect(&mut self, v2: bool, read: impl Fn(&str) -> Option<String>) {
        let (oom, peak) = if v2 {
            (read("memory.events"), read("memory.peak"))
        } else {
            (
                read("memory.oom_control"),
                read("memory.max_usage_in_bytes"),
            )
        };
        if let Some(t) = oom {
            let kills = keyed(&t, "oom_kill").unwrap_or(0);
            self.oom_kills = Some(self.oom_kills.unwrap_or(0) + kills);
        }
        self.memory_peak = self
            .memory_peak
            .or(peak.and_then(|t| t.trim().parse().ok()));
        let cpu = if v2 {
            read("cpu.stat")
                .and_then(|t| keyed(&t, "usage_usec"))
                .map(|us| us.saturating_mul(1000))
        } else {
            read("cpuacct.usage").and_then(|t| t.trim().parse().ok())
        };
        self.cpu_time = self.cpu_time.or(cpu);
    }

    /// Whether the OOM killer ended the app, which exited with `code`: the cgroup also counts
    /// kills of the app's children and of commands entered into it, which the app may outlive.
    pub fn oom(self, code: i32) -> Option<bool> {
        self.oom_kills.map(|kills| code == KILLED && kills > 0)
    }

    pub fn to_json(self, code: i32) -> String {
        json!({"oom": self.oom(code), "memoryPeak": self.memory_peak, "cpuTime": self.cpu_time})
            .to_string()
    }
}

/// The value of `key` in the kernel's `key value` lines (memory.events, cpu.stat, v1's
/// memory.oom_control).
fn keyed(text: &str, key: &str) -> Option<u64> {
    text.lines().find_map(|l| {
        let (k, v) = l.split_once(' ')?;
        (k == key).then(|| v.trim().parse().ok()).flatten()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn files(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn reads_v1_hierarchies() {
        let memory = files(&[
            (
                "memory.oom_control",
                "oom_kill_disable 0\nunder_oom 0\noom_kill 1\n",
            ),
            ("memory.max_usage_in_bytes", "33554432\n"),
        ]);
        let cpuacct = files(&[("cpuacct.usage", "200123456\n")]);
        let mut s = AppStats::default();
        for h in [&files(&[]), &memory, &cpuacct] {
            s.collect(false, |f| h.get(f).cloned());
        }
        assert_eq!(
            s,
            AppStats {
                oom_kills: Some(1),
                memory_peak: Some(33_554_432),
                cpu_time: Some(200_123_456)
            }
        );
        assert_eq!(
            s.to_json(137),
            r#"{"cpuTime":200123456,"memoryPeak":33554432,"oom":true}"#
        );
    }

    #[test]
    fn reads_a_v2_hierarchy() {
        let cg = files(&[
            (
                "memory.events",
                "low 0\nhigh 0\nmax 3\noom 1\noom_kill 0\noom_group_kill 0\n",
            ),
            ("memory.peak", "1048576\n"),
            (
                "cpu.stat",
                "usage_usec 1500\nuser_usec 1000\nsystem_usec 500\n",
            ),
        ]);
        let mut s = AppStats::default();
        s.collect(true, |f| cg.get(f).cloned());
        assert_eq!(
            s,
            AppStats {
                oom_kills: Some(0),
                memory_peak: Some(1_048_576),
                cpu_time: Some(1_500_000)
            },
        );
        assert_eq!(
            s.oom(137),
            Some(false),
            "an oom event without a kill is no OOM kill"
        );
    }

    #[test]
    fn null_where_nothing_tells() {
        let mut s = AppStats::default();
        s.collect(false, |_| None);
        assert_eq!(
            s.to_json(137),
            r#"{"cpuTime":null,"memoryPeak":null,"oom":null}"#,
            "no memory hierarchy read: nobody knows"
        );
        assert_eq!(keyed("oom_kill x\n", "oom_kill"), None);
        assert_eq!(keyed("oom_kill_disable 1\n", "oom_kill"), None);
    }

    #[test]
    fn an_oom_kill_is_the_apps_only_when_it_died_of_sigkill() {
        let s = AppStats {
            oom_kills: Some(2),
            ..AppStats::default()
        };
        assert_eq!(s.oom(137), Some(true));
        assert_eq!(s.oom(0), Some(false), "a child of the app was killed");
        assert_eq!(s.oom(1), Some(false));
        let mut v1 = AppStats::default();
        v1.collect(false, |f| {
            (f == "memory.oom_control").then(|| "oom_kill 0\n".into())
        });
        assert_eq!(
            v1.oom(137),
            Some(false),
            "killed, but not by the OOM killer"
        );
    }
}
