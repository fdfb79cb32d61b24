//! Packs: sealed review-log segments rewritten with their live reviews compressed together
//! (schema 9). A review compressed on its own cannot use what the reviews beside it share (the
//! same hunts' KQL, devices, controls, phrasing), and the review stage cannot wait to compress
//! many at once; so each review is written to the log on its own, and once its segment is
//! sealed the segment's live reviews, each with the snapshot of the resolution it was made
//! from, are compressed in blocks of about 512 KiB at zstd level 9 into `NNNNNNNN.pack`. On the
//! sample incidents that keeps 40 % less than one frame per review (BENCHMARKS.md, 2026-12-07).
//!
//! A pack is `[block length u32][crc32 of the block u32][zstd frame]` per block (big-endian, as
//! a segment's entries); a block's content is, per review,
//! `[key length u16][key][review length u32][review JSON][snapshot length u32][snapshot JSON]`
//! (length 0: no snapshot). A pointer into a pack names the block and the review's place in it.
//! A pack is written whole to `NNNNNNNN.pack.tmp`, synced and renamed: a `.pack` is never torn.
//! Reading one review decompresses its block, about half a millisecond.

use std::fs::File;
use std::io::{self, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use super::review_log::{HEADER, MAX_BODY, Pointer, ReadError, Stored, crc_of, list_ids, read_framed, sync_dir};

/// Reviews are added to a block until its content reaches this. Reading one review decompresses
/// its block; 512 KiB kept 11 % less than 256 KiB on the sample incidents' reviews.
const BLOCK_BYTES: usize = 512 << 10;

/// Level 9 kept 9 % less than level 6 in blocks; at about 17 MB/s a sealed segment of 4 MiB
/// (about 30 MB of review JSON) takes about two seconds, off the review stage's path. Level 15
/// kept 5 % less again at five times the time.
const LEVEL: i32 = 9;

pub(super) fn pack_name(id: u32) -> String {
    format!("{id:08}.pack")
}

/// The packs in `dir`, oldest first.
pub(super) fn list(dir: &Path) -> io::Result<Vec<u32>> {
    list_ids(dir, ".pack")
}

/// One review to pack: its key, its JSON, its resolution's snapshot JSON (if the entry held it).
pub(crate) struct Item {
    pub key: Vec<u8>,
    pub review: Vec<u8>,
    pub snapshot: Option<Vec<u8>>,
}

/// Writes the pack of segment `id` a block at a time (a segment's reviews are tens of
/// megabytes as JSON; only one block is held). [`Writer::finish`] syncs the file, renames it
/// and syncs the directory: once it returns the pack is durable and whole; a crash before leaves
/// at most a `.tmp` that [`remove_leftovers`] deletes.
pub(super) struct Writer {
    dir: std::path::PathBuf,
    id: u32,
    file: File,
    compressor: zstd::bulk::Compressor<'static>,
    content: Vec<u8>,
    in_block: usize,
    offset: u64,
    pointers: Vec<Pointer>,
}

impl Writer {
    pub(super) fn new(dir: &Path, id: u32) -> io::Result<Writer> {
        let mut compressor = zstd::bulk::Compressor::with_dictionary(LEVEL, super::codec::DICTIONARY)?;
        compressor.set_parameter(zstd::zstd_safe::CParameter::ChecksumFlag(true))?;
        let file =
            std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(tmp_path(dir, id))?;
        Ok(Writer {
            dir: dir.to_owned(),
            id,
            file,
            compressor,
            content: Vec::with_capacity(BLOCK_BYTES + (64 << 10)),
            in_block: 0,
            offset: 0,
            pointers: Vec::new(),
        })
    }

    /// Adds a review; its pointer is in [`Writer::finish`]'s answer, in the order added.
    pub(super) fn add(&mut self, item: &Item) -> io::Result<()> {
        let key_len = u16::try_from(item.key.len()).map_err(|_| io::Error::other("a review key longer than 64 KiB"))?;
        self.content.extend_from_slice(&key_len.to_be_bytes());
        self.content.extend_from_slice(&item.key);
        for part in [item.review.as_slice(), item.snapshot.as_deref().unwrap_or_default()] {
            let len = u32::try_from(part.len()).map_err(|_| io::Error::other("a review larger than 4 GiB"))?;
            self.content.extend_from_slice(&len.to_be_bytes());
            self.content.extend_from_slice(part);
        }
        self.in_block += 1;
        if self.content.len() >= BLOCK_BYTES || self.in_block == usize::from(u16::MAX) {
            self.write_block()?;
        }
        Ok(())
    }

    fn write_block(&mut self) -> io::Result<()> {
        if self.in_block == 0 {
            return Ok(());
        }
        let frame = self.compressor.compress(&self.content)?;
        let len = u32::try_from(frame.len())
            .ok()
            .filter(|l| *l <= MAX_BODY)
            .ok_or_else(|| io::Error::other("a pack block too large"))?;
        let crc = crc_of(&frame);
        self.file.write_all(&len.to_be_bytes())?;
        self.file.write_all(&crc.to_be_bytes())?;
        self.file.write_all(&frame)?;
        for index in 0..self.in_block {
            let packed = Some(index as u16);
            self.pointers.push(Pointer { segment: self.id, offset: self.offset, len, crc, packed });
        }
        self.offset += (HEADER + frame.len()) as u64;
        self.content.clear();
        self.in_block = 0;
        Ok(())
    }

    /// Makes the pack durable under its name and says where each review is.
    pub(super) fn finish(mut self) -> io::Result<Vec<Pointer>> {
        self.write_block()?;
        self.file.sync_all()?;
        std::fs::rename(tmp_path(&self.dir, self.id), self.dir.join(pack_name(self.id)))?;
        sync_dir(&self.dir)?;
        Ok(self.pointers)
    }

    /// Gives the pack up: its temporary file is deleted.
    pub(super) fn abandon(self) -> io::Result<()> {
        std::fs::remove_file(tmp_path(&self.dir, self.id))
    }
}

fn tmp_path(dir: &Path, id: u32) -> std::path::PathBuf {
    dir.join(format!("{}.tmp", pack_name(id)))
}

/// Writes `items` as the pack of segment `id` ([`Writer`]).
#[cfg(test)]
pub(super) fn write(dir: &Path, id: u32, items: &[Item]) -> io::Result<Vec<Pointer>> {
    let mut w = Writer::new(dir, id)?;
    for item in items {
        w.add(item)?;
    }
    w.finish()
}

/// Deletes what a pack written in part left (`NNNNNNNN.pack.tmp`): nothing points into it.
pub(super) fn remove_leftovers(dir: &Path) -> io::Result<()> {
    for id in list_ids(dir, ".pack.tmp")? {
        std::fs::remove_file(tmp_path(dir, id))?;
    }
    Ok(())
}

/// The review at `p` (a pointer into a pack) under `key`.
pub(super) fn read(dir: &Path, p: &Pointer, key: &[u8]) -> Result<Stored, ReadError> {
    let name = pack_name(p.segment);
    // A pack is never torn (written whole, then renamed): one shorter than a block is damage.
    let cut = || ReadError::Damaged(format!("{name} ends before its block at byte {}", p.offset));
    let block = read_framed(dir, &name, ("pack", "block"), p, cut)?;
    let frame = &block[HEADER..];
    let content = super::codec::unpack(frame)
        .map_err(|e| ReadError::Damaged(format!("the block at byte {} of {name}: {e}", p.offset)))?;
    let index = usize::from(p.packed.unwrap_or_default());
    let all =
        items(&content).map_err(|e| ReadError::Damaged(format!("the block at byte {} of {name}: {e}", p.offset)))?;
    let item = all
        .get(index)
        .ok_or_else(|| ReadError::Damaged(format!("the block at byte {} of {name} has no review {index}", p.offset)))?;
    if item.0 != key {
        return Err(ReadError::Damaged(format!(
            "review {index} of the block at byte {} of {name} is another's",
            p.offset
        )));
    }
    Ok(Stored { review: item.1.to_vec(), snapshot: (!item.2.is_empty()).then(|| item.2.to_vec()) })
}

/// A review in a pack: its key, where it is, whether its snapshot is beside it.
pub(super) type PackEntry = (Vec<u8>, Pointer, bool);

/// Every review in the pack of segment `id`. `false` with them when a block could not be read
/// (damage): what it held cannot be told.
pub(super) fn entries(dir: &Path, id: u32) -> io::Result<(Vec<PackEntry>, bool)> {
    let mut bytes = Vec::new();
    File::open(dir.join(pack_name(id)))?.read_to_end(&mut bytes)?;
    let mut out = Vec::new();
    let mut at = 0usize;
    while let Some(header) = bytes.get(at..at + HEADER) {
        let len = u32::from_be_bytes([header[0], header[1], header[2], header[3]]);
        let crc = u32::from_be_bytes([header[4], header[5], header[6], header[7]]);
        let Some(frame) = bytes.get(at + HEADER..at + HEADER + len as usize) else { return Ok((out, false)) };
        if crc_of(frame) != crc {
            return Ok((out, false));
        }
        let Ok(content) = super::codec::unpack(frame) else { return Ok((out, false)) };
        let Ok(all) = items(&content) else { return Ok((out, false)) };
        for (index, (key, _, snapshot)) in all.into_iter().enumerate() {
            let p = Pointer { segment: id, offset: at as u64, len, crc, packed: Some(index as u16) };
            out.push((key.to_vec(), p, !snapshot.is_empty()));
        }
        at += HEADER + len as usize;
    }
    Ok((out, at == bytes.len()))
}

/// The reviews in a block's content: key, review, snapshot (empty: none).
type Parts<'a> = (&'a [u8], &'a [u8], &'a [u8]);

fn items(content: &[u8]) -> Result<Vec<Parts<'_>>, &'static str> {
    fn take<'a>(content: &'a [u8], at: &mut usize, n: usize) -> Result<&'a [u8], &'static str> {
        let part = content.get(*at..*at + n).ok_or("a block that ends inside a review")?;
        *at += n;
        Ok(part)
    }
    let mut out = Vec::new();
    let mut at = 0usize;
    while at < content.len() {
        let key_len = take(content, &mut at, 2)?;
        let key = take(content, &mut at, usize::from(u16::from_be_bytes([key_len[0], key_len[1]])))?;
        let mut parts = [&[][..]; 2];
        for part in &mut parts {
            let len = take(content, &mut at, 4)?;
            *part = take(content, &mut at, u32::from_be_bytes([len[0], len[1], len[2], len[3]]) as usize)?;
        }
        out.push((key, parts[0], parts[1]));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(key: &str, review: String, snapshot: Option<String>) -> Item {
        Item { key: key.as_bytes().to_vec(), review: review.into_bytes(), snapshot: snapshot.map(String::into_bytes) }
    }

    #[test]
    fn reviews_read_back_from_their_blocks_and_the_pack_lists_them() {
        let dir = tempfile::tempdir().unwrap();
        // Enough to fill more than one block: reviews of about 100 KB each.
        let items: Vec<Item> = (0..12)
            .map(|i| {
                let review = format!("{{\"n\":{i},\"text\":\"{}\"}}", format!("technique {i} ").repeat(8_000));
                item(&format!("src\0{i}"), review, (i % 2 == 0).then(|| format!("{{\"id\":\"{i}\"}}")))
            })
            .collect();
        let pointers = write(dir.path(), 7, &items).unwrap();
        assert_eq!(list(dir.path()).unwrap(), [7]);
        let blocks: std::collections::BTreeSet<u64> = pointers.iter().map(|p| p.offset).collect();
        assert!(blocks.len() >= 2, "{blocks:?}");
        for (item, p) in items.iter().zip(&pointers) {
            let stored = read(dir.path(), p, &item.key).unwrap();
            assert_eq!(stored.review, item.review);
            assert_eq!(stored.snapshot, item.snapshot);
            assert_eq!(Pointer::decode(&p.encode()), Some(*p));
        }
        let (entries, whole) = entries(dir.path(), 7).unwrap();
        assert!(whole);
        let listed: Vec<_> = entries.iter().map(|(k, p, s)| (k.clone(), *p, *s)).collect();
        let expected: Vec<_> =
            items.iter().zip(&pointers).map(|(i, p)| (i.key.clone(), *p, i.snapshot.is_some())).collect();
        assert_eq!(listed, expected);
        // Another key at the place, or a pointer into a block that is not there, is refused.
        assert!(matches!(read(dir.path(), &pointers[0], b"src\x001"), Err(ReadError::Damaged(_))));
        let shifted = Pointer { offset: pointers[0].offset + 1, ..pointers[0] };
        assert!(matches!(read(dir.path(), &shifted, &items[0].key), Err(ReadError::Damaged(_))));
        assert!(matches!(
            read(dir.path(), &Pointer { segment: 8, ..pointers[0] }, &items[0].key),
            Err(ReadError::Missing(_))
        ));
    }

    #[test]
    fn a_damaged_block_is_reported_and_the_pack_does_not_read_whole() {
        let dir = tempfile::tempdir().unwrap();
        let items: Vec<Item> = (0..3)
            .map(|i| item(&format!("k{i}"), format!("{{\"n\":{i},\"pad\":\"{}\"}}", "x".repeat(300)), None))
            .collect();
        let pointers = write(dir.path(), 1, &items).unwrap();
        let path = dir.path().join(pack_name(1));
        let mut bytes = std::fs::read(&path).unwrap();
        let last = bytes.len() - 5;
        bytes[last] ^= 0xFF;
        std::fs::write(&path, bytes).unwrap();
        assert!(matches!(read(dir.path(), &pointers[1], b"k1"), Err(ReadError::Damaged(_))));
        assert!(!entries(dir.path(), 1).unwrap().1);
    }

    #[test]
    fn a_pack_written_in_part_leaves_a_temporary_file_that_is_removed() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("00000003.pack.tmp"), b"cut short").unwrap();
        assert!(list(dir.path()).unwrap().is_empty(), "a .tmp is not a pack");
        remove_leftovers(dir.path()).unwrap();
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }
}
