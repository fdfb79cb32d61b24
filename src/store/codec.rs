//! How the records are stored: the incident snapshots (`incidents`, `resolutions`), the reviews
//! (`reviews`), and since schema 5 the follow-up texts (`follow_ups`), the incident history
//! (`history`) and the outbox entries (`outbox`) are JSON compressed with zstd, one frame per
//! value. Every reader takes either form, so a store of schema 5 written before a tree was
//! compressed needs no upgrade.
//!
//! A review of a 1–3 alert incident is about 30 KB of JSON and one of a 10-alert ransomware
//! incident about 75 KB: keys, technique names, KQL and prose repeat within each, and zstd at
//! level 3 keeps a fifth to a quarter of it, in under a tenth of a millisecond (BENCHMARKS.md).
//! sled's own compression would do it per page, but it is fixed when a store is created and
//! cannot be turned on for an existing one; per value it can, and a store mixes both forms safely: a
//! zstd frame starts with the magic number 28 B5 2F FD, a JSON record with `{`, so each value
//! says which it is. Stores of schema 3 and before hold plain JSON; the upgrade to schema 4
//! compresses them in place ([`super::Store::compress_stored`]), and reading never depends on
//! whether that finished. Frames are made with a dictionary ([`DICTIONARY`]) since schema 5;
//! frames made before without one are read as they are (each frame names its dictionary or
//! none), and are not rewritten: retention ages them out.

use std::borrow::Cow;

use serde::Serialize;
use serde::de::DeserializeOwned;

/// `meta` key present while the upgrade to schema 4 compresses what is stored.
pub(super) const COMPRESSING: &str = "compressing";

/// Records rewritten between flushes during the upgrade: what a kill part-way costs again.
const FLUSH_EVERY: usize = 500;

/// What [`super::Store::compress_stored`] did.
#[derive(Debug, Default)]
pub(super) struct Compressed {
    pub records: usize,
    /// Bytes of the values rewritten, before and after.
    pub before: u64,
    pub after: u64,
}

impl super::Store {
    /// Compresses every plain record of the trees that hold large ones. Idempotent: a record
    /// already compressed (or too small to gain) is left; one rewritten is readable either way.
    pub(super) fn compress_stored(&self) -> super::Result<Compressed> {
        let mut done = Compressed::default();
        for (name, tree) in
            [("incidents", &self.incidents), ("resolutions", &self.resolutions), ("reviews", &self.reviews)]
        {
            for item in tree.iter() {
                let (k, v) = item.map_err(|e| self.io(e))?;
                if is_packed(&v) || v.len() < MIN_BYTES {
                    continue;
                }
                // A record that is not JSON is left as it is, for its reader to report.
                if serde_json::from_slice::<serde::de::IgnoredAny>(&v).is_err() {
                    tracing::warn!(tree = name, key = %String::from_utf8_lossy(&k).replace('\0', "/"), "not compressed: the record is not JSON");
                    continue;
                }
                let packed = pack(v.to_vec());
                if !is_packed(&packed) {
                    continue;
                }
                self.ensure_room()?;
                done.before += v.len() as u64;
                done.after += packed.len() as u64;
                tree.insert(k, packed).map_err(|e| self.io(e))?;
                done.records += 1;
                if done.records % FLUSH_EVERY == 0 {
                    self.flush()?;
                }
            }
        }
        Ok(done)
    }
}

/// The first four bytes of every zstd frame (RFC 8878, 3.1.1).
const MAGIC: [u8; 4] = [0x28, 0xB5, 0x2F, 0xFD];

/// zstd's default level. Level 9 kept 10 % less of a 76 KB review at an eighth of the speed
/// (`zstd -b`: 108 against 913 MB/s; reading is 2.9 GB/s at either).
const LEVEL: i32 = 3;

/// Below this, a frame's header and checksum (about a dozen bytes) gain nothing worth a
/// decompression. With the dictionary, a follow-up's text of 200 bytes or an incident's entry in
/// the history of 350 shrinks by half or more, so the small records are compressed too.
const MIN_BYTES: usize = 64;

/// A decompressed value larger than this is damage, not a record: the largest review (an
/// incident at `review.max_alerts`) is a few megabytes.
const MAX_BYTES: usize = 256 << 20;

/// `json` as stored: compressed when that pays.
pub(super) fn pack(json: Vec<u8>) -> Vec<u8> {
    if json.len() < MIN_BYTES {
        return json;
    }
    let packed = COMPRESSOR.with(|c| match &mut *c.borrow_mut() {
        Some(c) => c.compress(&json).ok(),
        None => None,
    });
    match packed {
        Some(z) if z.len() < json.len() => z,
        _ => json,
    }
}

/// The dictionary new frames are compressed with: 64 KB trained on generated reviews and
/// snapshots (`cargo bench --bench dictionary -- train src/store/zstd-1.dict`). Records share
/// most of their keys, texts and KQL with each other, which one frame per record cannot use
/// and a dictionary can: a review takes about half the bytes with it (BENCHMARKS.md). Its ID
/// (chosen by zstd from its content) is in every frame made with it, so a frame says which
/// dictionary reads it. Once released, a dictionary stays in the binary for good: a new one
/// is added beside it, never in its place.
pub(super) static DICTIONARY: &[u8] = include_bytes!("zstd-1.dict");

/// The ID in [`DICTIONARY`]'s header (0 if the file were not a dictionary: frames then name none).
fn dictionary_id() -> u32 {
    zstd::zstd_safe::get_dict_id_from_dict(DICTIONARY).map_or(0, |id| id.get())
}

/// [`DICTIONARY`] prepared once for compression at [`LEVEL`] and once for decompression, shared by
/// every thread's context. Each context loading the dictionary itself built its own tables, about
/// 1.2 MiB per compressing thread (heaptrack, in the soak).
static ENCODER_DICTIONARY: std::sync::LazyLock<zstd::dict::EncoderDictionary<'static>> =
    std::sync::LazyLock::new(|| zstd::dict::EncoderDictionary::copy(DICTIONARY, LEVEL));
static DECODER_DICTIONARY: std::sync::LazyLock<zstd::dict::DecoderDictionary<'static>> =
    std::sync::LazyLock::new(|| zstd::dict::DecoderDictionary::copy(DICTIONARY));

thread_local! {
    /// One context per thread: making one allocates about a megabyte for level 3's window,
    /// which per record would churn the allocator. With a checksum, so that a damaged record
    /// fails to read instead of reading back different.
    static COMPRESSOR: std::cell::RefCell<Option<zstd::bulk::Compressor<'static>>> = std::cell::RefCell::new(
        zstd::bulk::Compressor::with_prepared_dictionary(&ENCODER_DICTIONARY)
            .and_then(|mut c| c.set_parameter(zstd::zstd_safe::CParameter::ChecksumFlag(true)).map(|()| c))
            .ok(),
    );
    /// Likewise for reading: making a context per record was a tenth of a digest's time. Frames
    /// made without a dictionary (schema 4) and with it each have theirs.
    static DECOMPRESSOR: std::cell::RefCell<Option<zstd::bulk::Decompressor<'static>>> =
        std::cell::RefCell::new(zstd::bulk::Decompressor::new().ok());
    static DICT_DECOMPRESSOR: std::cell::RefCell<Option<zstd::bulk::Decompressor<'static>>> =
        std::cell::RefCell::new(zstd::bulk::Decompressor::with_prepared_dictionary(&DECODER_DICTIONARY).ok());
}

/// The JSON of a stored value, whichever form it was stored in.
pub(super) fn unpack(stored: &[u8]) -> Result<Cow<'_, [u8]>, String> {
    if !is_packed(stored) {
        return Ok(Cow::Borrowed(stored));
    }
    // The frame header says how large the content is (zstd::bulk::compress writes it).
    let size = zstd::zstd_safe::get_frame_content_size(stored)
        .map_err(|_| "a compressed record whose frame header is damaged".to_owned())?
        .ok_or("a compressed record that does not say its size")?;
    let size = usize::try_from(size)
        .ok()
        .filter(|s| *s <= MAX_BYTES)
        .ok_or("a compressed record claiming an impossible size")?;
    let mut out = Vec::with_capacity(size);
    let decompress = |d: &std::cell::RefCell<Option<zstd::bulk::Decompressor<'static>>>| match &mut *d.borrow_mut() {
        Some(d) => d.decompress_to_buffer(stored, &mut out).map_err(|e| e.to_string()),
        None => Err("no zstd context could be made".to_owned()),
    };
    match zstd::zstd_safe::get_dict_id_from_frame(stored).map_or(0, |id| id.get()) {
        0 => DECOMPRESSOR.with(decompress),
        id if id == dictionary_id() => DICT_DECOMPRESSOR.with(decompress),
        id => {
            Err(format!("it names zstd dictionary {id}, which this Hindsight does not have (written by a newer one?)"))
        }
    }
    .map_err(|e| format!("a compressed record that does not decompress: {e}"))?;
    Ok(Cow::Owned(out))
}

/// The JSON of a value of `incidents`, `resolutions` or `reviews` as sled holds it, compressed
/// or not: for tests and audits that open the store's trees directly.
pub fn stored_json(stored: &[u8]) -> Result<Vec<u8>, String> {
    unpack(stored).map(Cow::into_owned)
}

/// The JSON of a value of `reviews` as sled holds it in the store at `store_dir`: a pointer into
/// the review log (schema 8 on), or the review itself, compressed or not (before); for tests
/// and audits that open the store's trees directly.
pub fn stored_review_json(store_dir: &std::path::Path, key: &[u8], stored: &[u8]) -> Result<Vec<u8>, String> {
    match super::review_log::Pointer::decode(stored) {
        Some(p) => {
            let bytes = super::review_log::read_in(&store_dir.join(super::REVIEW_LOG_DIR), &p, key)
                .map_err(|e| e.to_string())?;
            stored_json(&bytes.review)
        }
        None => stored_json(stored),
    }
}

/// A stored value compressed again if it is not (a review or snapshot read from a pack is JSON).
pub(super) fn repack(stored: Vec<u8>) -> Vec<u8> {
    if is_packed(&stored) { stored } else { pack(stored) }
}

/// Whether a stored value is compressed.
pub(super) fn is_packed(stored: &[u8]) -> bool {
    stored.starts_with(&MAGIC)
}

/// `v` as JSON, compressed.
pub(super) fn to_packed<T: Serialize>(v: &T) -> serde_json::Result<Vec<u8>> {
    serde_json::to_vec(v).map(pack)
}

/// A value stored by [`to_packed`], or as plain JSON by an older Hindsight.
pub(super) fn from_packed<T: DeserializeOwned>(stored: &[u8]) -> Result<T, String> {
    let json = unpack(stored)?;
    serde_json::from_slice(&json).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_forms_read_back_and_small_values_stay_plain() {
        let big = serde_json::json!({ "text": "T1059.001 PowerShell ".repeat(100) });
        let packed = to_packed(&big).unwrap();
        assert!(is_packed(&packed) && packed.len() < 200, "{} bytes", packed.len());
        assert_eq!(from_packed::<serde_json::Value>(&packed).unwrap(), big);
        let plain = serde_json::to_vec(&big).unwrap();
        assert_eq!(from_packed::<serde_json::Value>(&plain).unwrap(), big);
        let small = serde_json::json!({ "a": 1 });
        assert!(!is_packed(&to_packed(&small).unwrap()));
    }

    #[test]
    fn frames_name_the_dictionary_and_frames_without_one_still_read() {
        assert_ne!(dictionary_id(), 0, "the embedded file is a trained zstd dictionary");
        let review =
            serde_json::json!({ "gaps": { "uncovered": [{ "id": "T1059.001", "hunts": ["DeviceProcessEvents"] }] } });
        let big = serde_json::json!({ "review": vec![review; 20] });
        let packed = to_packed(&big).unwrap();
        let named = zstd::zstd_safe::get_dict_id_from_frame(&packed).map(|id| id.get());
        assert_eq!(named, Some(dictionary_id()));
        assert_eq!(from_packed::<serde_json::Value>(&packed).unwrap(), big);
        // As schema 4 wrote them: no dictionary.
        let plain_frame = zstd::bulk::compress(&serde_json::to_vec(&big).unwrap(), LEVEL).unwrap();
        assert!(is_packed(&plain_frame) && zstd::zstd_safe::get_dict_id_from_frame(&plain_frame).is_none());
        assert_eq!(from_packed::<serde_json::Value>(&plain_frame).unwrap(), big);
    }

    #[test]
    fn a_frame_naming_an_unknown_dictionary_says_so() {
        let mut packed = to_packed(&serde_json::json!({ "text": "T1059.001 PowerShell ".repeat(100) })).unwrap();
        // RFC 8878 3.1.1.1: after the magic, the frame header descriptor, then the window
        // descriptor unless the frame is a single segment, then the dictionary ID.
        let descriptor = packed[4];
        assert_ne!(descriptor & 3, 0, "the frame carries a dictionary ID");
        let at = 5 + usize::from(descriptor & 0x20 == 0);
        packed[at] ^= 0x55;
        let e = from_packed::<serde_json::Value>(&packed).unwrap_err();
        assert!(e.contains("zstd dictionary") && e.contains("does not have"), "{e}");
    }

    #[test]
    fn damage_is_an_error_not_a_panic() {
        let packed = to_packed(&serde_json::json!({ "text": "x".repeat(5000) })).unwrap();
        for cut in [4, 8, packed.len() / 2, packed.len() - 1] {
            assert!(from_packed::<serde_json::Value>(&packed[..cut]).is_err(), "cut at {cut}");
        }
        let mut flipped = packed.clone();
        let last = flipped.len() - 3;
        flipped[last] ^= 0xFF;
        assert!(from_packed::<serde_json::Value>(&flipped).is_err());
        // A header claiming 1 TB is refused before anything is allocated.
        let mut huge = MAGIC.to_vec();
        huge.extend([0xC0, 0, 0, 0, 0, 0, 0, 0x01, 0]);
        assert!(unpack(&huge).is_err());
    }
}
