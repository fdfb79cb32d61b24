//! Which sources this replica polls, when several split an MSSP's tenants (`daemon.shard`).
//!
//! A source belongs to shard `i` of `n` when the first eight bytes of SHA-256 of its name, read
//! as a big-endian number, leave `i` modulo `n`. The rule needs nothing shared between replicas
//! (no lease, no coordinator): every replica reads the same configuration, and each keeps the
//! sources that are its own, in its own store. SHA-256 rather than std's hasher because the
//! assignment must not change with the Rust version: a source that moved would be read again
//! from its backfill window by a store that has never seen it.

use sha2::{Digest, Sha256};

/// `daemon.shard` as written: `"i/n"`, or `"ordinal/n"` for a StatefulSet pod, whose index is
/// the number after the last `-` of its host name (`hindsight-2` is shard 2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShardSetting {
    index: Option<u32>,
    count: u32,
}

/// This replica's share: shard `index` of `count`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    pub index: u32,
    pub count: u32,
}

/// More shards than this is a typo, not a deployment (each shard is a process with its store).
const MAX_SHARDS: u32 = 1024;

impl std::str::FromStr for ShardSetting {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let bad = |why: &str| {
            format!(
                "{s:?} {why}; write \"i/n\" (this replica is shard i of n, counting from 0) or \"ordinal/n\" (i from a StatefulSet pod's name)"
            )
        };
        let (i, n) = s.trim().split_once('/').ok_or_else(|| bad("has no '/'"))?;
        let count: u32 = n.trim().parse().map_err(|_| bad("does not end in a number of shards"))?;
        if count == 0 || count > MAX_SHARDS {
            return Err(bad(&format!("must have between 1 and {MAX_SHARDS} shards")));
        }
        let index = match i.trim() {
            "ordinal" => None,
            i => {
                let i: u32 = i.parse().map_err(|_| bad("does not start with a shard number or \"ordinal\""))?;
                if i >= count {
                    return Err(bad(&format!("names shard {i}, but shards count from 0 to {}", count - 1)));
                }
                Some(i)
            }
        };
        Ok(ShardSetting { index, count })
    }
}

impl<'de> serde::Deserialize<'de> for ShardSetting {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

impl ShardSetting {
    /// The shard, with `"ordinal"` taken from `host` (the machine's host name when `None`).
    pub fn resolve(self, host: Option<&str>) -> Result<Shard, String> {
        let count = self.count;
        let index = match self.index {
            Some(i) => i,
            None => {
                let host = match host {
                    Some(h) => h.to_owned(),
                    None => host_name(),
                };
                let ordinal = host.rsplit_once('-').and_then(|(_, n)| n.parse::<u32>().ok()).ok_or_else(|| {
                    format!(
                        "\"ordinal/{count}\" takes the shard from the host name, and {host:?} does not end in -<number> as a StatefulSet pod's does; write the shard as \"i/{count}\""
                    )
                })?;
                if ordinal >= count {
                    return Err(format!(
                        "this pod is {host:?}, ordinal {ordinal}, but there are {count} shards (0 to {}): the StatefulSet's replicas and the shard count must be the same number",
                        count - 1
                    ));
                }
                ordinal
            }
        };
        Ok(Shard { index, count })
    }
}

/// This process's shard from `daemon.shard` (none when unset); the error names the key.
pub fn configured(setting: Option<ShardSetting>) -> Result<Option<Shard>, String> {
    setting.map(|s| s.resolve(None)).transpose().map_err(|m| format!("configuration key daemon.shard: {m}"))
}

impl Shard {
    /// Whether the source named `name` is polled here.
    pub fn owns(&self, name: &str) -> bool {
        shard_of(name, self.count) == self.index
    }
}

impl std::fmt::Display for Shard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

/// The shard of `count` that polls the source named `name`.
pub fn shard_of(name: &str, count: u32) -> u32 {
    let hash = Sha256::digest(name.as_bytes());
    let mut first = [0u8; 8];
    first.copy_from_slice(&hash[..8]);
    (u64::from_be_bytes(first) % u64::from(count.max(1))) as u32
}

/// The kernel's host name, which Kubernetes sets to the pod's name.
fn host_name() -> String {
    rustix::system::uname().nodename().to_string_lossy().into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_parse_or_say_what_is_wrong() {
        assert_eq!("1/3".parse(), Ok(ShardSetting { index: Some(1), count: 3 }));
        assert_eq!(" ordinal / 2 ".parse(), Ok(ShardSetting { index: None, count: 2 }));
        for (bad, says) in [
            ("3", "has no '/'"),
            ("3/3", "shards count from 0 to 2"),
            ("0/0", "between 1 and 1024"),
            ("a/2", "\"ordinal\""),
            ("0/x", "number of shards"),
        ] {
            let e = bad.parse::<ShardSetting>().unwrap_err();
            assert!(e.contains(says), "{bad}: {e}");
        }
    }

    #[test]
    fn the_ordinal_comes_from_a_statefulset_pod_name() {
        let s: ShardSetting = "ordinal/3".parse().unwrap();
        assert_eq!(s.resolve(Some("hindsight-2")), Ok(Shard { index: 2, count: 3 }));
        let e = s.resolve(Some("hindsight-3")).unwrap_err();
        assert!(e.contains("replicas and the shard count"), "{e}");
        let e = s.resolve(Some("laptop")).unwrap_err();
        assert!(e.contains("\"i/3\""), "{e}");
    }

    #[test]
    fn every_source_has_exactly_one_shard_and_they_spread() {
        let names: Vec<String> = (0..3000).map(|i| format!("tenant-{i:04}")).collect();
        for count in [1, 2, 3, 7] {
            let shards: Vec<Shard> = (0..count).map(|index| Shard { index, count }).collect();
            let mut per = vec![0usize; count as usize];
            for n in &names {
                let owners: Vec<&Shard> = shards.iter().filter(|s| s.owns(n)).collect();
                assert_eq!(owners.len(), 1, "{n} among {count}");
                per[owners[0].index as usize] += 1;
            }
            // Within 15 % of an even split: a hash, not a round-robin, but no shard starves.
            let even = names.len() / count as usize;
            assert!(per.iter().all(|&p| p.abs_diff(even) * 100 <= even * 15), "{count} shards: {per:?}");
        }
    }

    #[test]
    fn the_assignment_is_fixed_across_versions() {
        // Written down once: a change here moves sources between replicas, and a moved source
        // is read again from its backfill window by a store that has not seen it. The figures are
        // Python's `int.from_bytes(hashlib.sha256(name).digest()[:8], "big") % 4`.
        let got: Vec<u32> =
            ["contoso", "fabrikam", "tenant-0000", "tenant-0001", "tenant-0002", "tenant-0003", "tenant-0004"]
                .iter()
                .map(|n| shard_of(n, 4))
                .collect();
        assert_eq!(got, EXPECTED);
    }
    const EXPECTED: [u32; 7] = [3, 2, 3, 3, 2, 1, 3];
}
