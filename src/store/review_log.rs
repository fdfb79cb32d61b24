//! The reviews' own file (schema 8): an append-only log beside sled, in `<store>/reviews/`, and
//! in sled's `reviews` tree a 21-byte [`Pointer`] to each review instead of the review.
//!
//! Why (docs/decisions/0004): sled 0.34 keeps about twice what it holds on disk (it rewrites a
//! leaf whole every few updates and cleans a segment only once half of it is dead), and a
//! review is two thirds of what the store holds. Here a review costs its own bytes and a
//! header of 10 bytes and its key: the load bench's backlog went from 12 to 7 KiB per review on disk,
//! a backlog of the sample incidents from 25 to 15 (BENCHMARKS.md, 2026-12-07).
//!
//! The log is a row of segment files (`00000001.log`, …), each entry
//! `[body length u32][crc32 of the body u32][key length u16][key][value]` (big-endian). Only
//! the newest segment is written; a segment is made durable before the next one is started.
//! What makes it safe with sled:
//! - An entry is written before the transaction that points at it, and the store's flushes sync
//!   the log before sled ([`super::Store::flush`]): a pointer never becomes durable before what
//!   it points at, unless the machine loses power between sled writing a buffer of its own and
//!   the log's sync. For that case the store checks at open ([`super::Store::repair_review_log`])
//!   that every pointer reads, and queues again the resolutions of those that do not: their
//!   reviews are made again, their notifications keep their idempotency keys.
//! - The torn tail of a crash (an entry written in part) is cut off at open.
//! - An entry whose transaction never committed is dead weight, like one of a review removed:
//!   retention moves the live entries out of a segment that is mostly dead and deletes it
//!   ([`super::Store::compact_review_log`]).
//!
//! Since schema 9 an entry also carries the snapshot of the resolution its review was made from
//! (a second zstd frame after the review's: [`Stored`]), and a sealed segment is packed
//! (`review_pack`, `log_packing`): its live reviews and snapshots compressed together into
//! `NNNNNNNN.pack`, the pointers swapped to a second form (tag 0x02, the block and the review's
//! place in it), the incidents' records relieved of their snapshot copies, the segment deleted.

use std::fs::File;
use std::io::{self, Read};
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// The first byte of a pointer. Reviews stored inline (schema 7 and before) begin with a zstd
/// frame's magic number (0x28) or `{`, so either form says which it is.
const TAG: u8 = 0x01;

/// A new segment is started once the newest holds this much: small enough that retention
/// frees space in steps of a few megabytes and compaction reads one at a time, large enough
/// that a year of a busy tenant's reviews is a few hundred files.
const SEGMENT_BYTES: u64 = 4 << 20;

/// Entry header: body length and crc32.
pub(super) const HEADER: usize = 8;

/// A body larger than this is damage, not an entry (the largest review is a few megabytes).
pub(super) const MAX_BODY: u32 = 256 << 20;

/// The first byte of a pointer into a pack (`review_pack`): 0x02, which no inline review starts
/// with either.
const PACKED_TAG: u8 = 0x02;

/// Where an entry is: what the `reviews` tree holds for a review in the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Pointer {
    pub segment: u32,
    /// In a segment, where the entry starts; in a pack, where its block starts.
    pub offset: u64,
    /// The body's length and crc32, as in the entry's (or block's) header: a pointer whose
    /// entry was overwritten or cut off does not read as another entry.
    pub len: u32,
    pub crc: u32,
    /// In a pack: the review's place among its block's reviews. `None`: in a segment.
    pub packed: Option<u16>,
}

impl Pointer {
    /// Bytes of a pointer into a segment; one into a pack has two more.
    pub(crate) const BYTES: usize = 21;

    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut b = Vec::with_capacity(Self::BYTES + 2);
        b.push(if self.packed.is_some() { PACKED_TAG } else { TAG });
        b.extend_from_slice(&self.segment.to_be_bytes());
        b.extend_from_slice(&self.offset.to_be_bytes());
        b.extend_from_slice(&self.len.to_be_bytes());
        b.extend_from_slice(&self.crc.to_be_bytes());
        if let Some(index) = self.packed {
            b.extend_from_slice(&index.to_be_bytes());
        }
        b
    }

    /// The pointer a stored value is, or `None` for a review stored inline.
    pub(crate) fn decode(stored: &[u8]) -> Option<Pointer> {
        let packed = match (stored.first(), stored.len()) {
            (Some(&TAG), Self::BYTES) => None,
            (Some(&PACKED_TAG), n) if n == Self::BYTES + 2 => Some(u16::from_be_bytes([stored[21], stored[22]])),
            _ => return None,
        };
        let b = stored;
        let u32_at = |i: usize| u32::from_be_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
        let mut offset = [0u8; 8];
        offset.copy_from_slice(&b[5..13]);
        Some(Pointer {
            segment: u32_at(1),
            offset: u64::from_be_bytes(offset),
            len: u32_at(13),
            crc: u32_at(17),
            packed,
        })
    }

    /// Where the entry ends in its segment.
    pub(crate) fn end(&self) -> u64 {
        self.offset + HEADER as u64 + u64::from(self.len)
    }
}

/// An entry's key and where it is.
pub(crate) type Entry = (Vec<u8>, Pointer);

/// What an entry holds, each part as the store keeps a value (a zstd frame, or JSON): the
/// review, and the snapshot of the resolution it was made from (entries written since schema
/// 9; the snapshot then leaves the incident's record once the entry is packed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Stored {
    pub review: Vec<u8>,
    pub snapshot: Option<Vec<u8>>,
}

impl Stored {
    /// An entry's value: the review's zstd frame, then the snapshot. A review that is not a
    /// frame (never, for a real one: it would be JSON compressing to nothing) goes alone, so
    /// that the first frame's end always says where the snapshot starts.
    pub(crate) fn value(review: Vec<u8>, snapshot: Option<&[u8]>) -> Vec<u8> {
        match snapshot {
            Some(s) if super::codec::is_packed(&review) => [review.as_slice(), s].concat(),
            _ => review,
        }
    }

    /// An entry's value read back ([`Stored::value`]; entries from before schema 9 hold the
    /// review alone).
    pub(crate) fn from_value(mut value: Vec<u8>) -> Stored {
        if !super::codec::is_packed(&value) {
            return Stored { review: value, snapshot: None };
        }
        match zstd::zstd_safe::find_frame_compressed_size(&value) {
            Ok(n) if n < value.len() => {
                let snapshot = value.split_off(n);
                Stored { review: value, snapshot: Some(snapshot) }
            }
            _ => Stored { review: value, snapshot: None },
        }
    }
}

/// Why an entry could not be read.
#[derive(Debug)]
pub(crate) enum ReadError {
    /// Its segment is not there (compaction moved the entry and deleted it: read the pointer
    /// again), or the segment is shorter than the pointer says.
    Missing(String),
    /// It is there but is not the entry the pointer names.
    Damaged(String),
    Io(io::Error),
}

impl std::fmt::Display for ReadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReadError::Missing(why) | ReadError::Damaged(why) => f.write_str(why),
            ReadError::Io(e) => write!(f, "cannot read the review log: {e}"),
        }
    }
}

/// The segment being written.
struct Active {
    id: u32,
    /// Shared with a sync under way, which runs without holding [`ReviewLog::active`].
    file: std::sync::Arc<File>,
    len: u64,
    /// Written since its last sync.
    dirty: bool,
}

pub(crate) struct ReviewLog {
    dir: PathBuf,
    active: Mutex<Active>,
    /// Held for the whole of a sync: a second sync returns only once the first is on disk.
    syncing: Mutex<()>,
    /// [`SEGMENT_BYTES`], but in tests.
    segment_bytes: std::sync::atomic::AtomicU64,
}

impl std::fmt::Debug for ReviewLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReviewLog").field("dir", &self.dir).finish_non_exhaustive()
    }
}

/// What opening found at the end of the newest segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Tail {
    pub segment: u32,
    /// Where its last whole entry ends.
    pub end: u64,
    /// Bytes after that (an entry written in part when the process stopped): left in the
    /// segment, which is sealed, and the next one started.
    pub cut: u64,
    /// The directory held no segment: the log is new (or was lost).
    pub fresh: bool,
}

pub(super) fn segment_name(id: u32) -> String {
    format!("{id:08}.log")
}

pub(super) fn crc_of(body: &[u8]) -> u32 {
    crc32fast::hash(body)
}

impl ReviewLog {
    /// Opens the log in `dir` (made, 0700, when missing); after a torn tail, in a new segment.
    pub(crate) fn open(dir: &Path) -> io::Result<(ReviewLog, Tail)> {
        {
            use std::os::unix::fs::DirBuilderExt;
            std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir)?;
        }
        super::review_pack::remove_leftovers(dir)?;
        let segments = list_segments(dir)?;
        let packs = super::review_pack::list(dir)?;
        // The newest segment goes on being written; packs are of sealed segments, so a log
        // whose segments were all packed (restored so) starts after them.
        let id = match (segments.last(), packs.last()) {
            (Some(&log), Some(&pack)) if pack >= log => pack + 1,
            (Some(&log), _) => log,
            (None, Some(&pack)) => pack + 1,
            (None, None) => 1,
        };
        let path = dir.join(segment_name(id));
        let file =
            std::fs::OpenOptions::new().read(true).write(true).create(true).truncate(false).mode(0o600).open(&path)?;
        let on_disk = file.metadata()?.len();
        let end = valid_end(&file)?;
        if segments.last() != Some(&id) {
            sync_dir(dir)?;
        }
        let tail = Tail { segment: id, end, cut: on_disk - end, fresh: segments.is_empty() && packs.is_empty() };
        let log = ReviewLog {
            dir: dir.to_owned(),
            active: Mutex::new(Active { id, file: file.into(), len: end, dirty: false }),
            syncing: Mutex::new(()),
            segment_bytes: SEGMENT_BYTES.into(),
        };
        // A torn tail is not cut off but left behind: the segment is sealed as it is and the
        // next one started, so that nothing is overwritten should the tail be damage rather than
        // a torn write. Compaction never deletes a segment it cannot read to the end.
        if tail.cut > 0 {
            let mut active = log.lock();
            active.len = on_disk;
            log.roll(&mut active)?;
        }
        Ok((log, tail))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Active> {
        self.active.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Appends `value` under `key` and says where it is. Not durable until [`ReviewLog::sync`].
    pub(crate) fn append(&self, key: &[u8], value: &[u8]) -> io::Result<Pointer> {
        let key_len = u16::try_from(key.len()).map_err(|_| io::Error::other("a review key longer than 64 KiB"))?;
        let mut entry = Vec::with_capacity(HEADER + 2 + key.len() + value.len());
        entry.extend_from_slice(&[0; HEADER]);
        entry.extend_from_slice(&key_len.to_be_bytes());
        entry.extend_from_slice(key);
        entry.extend_from_slice(value);
        let body_len = entry.len() - HEADER;
        let len = u32::try_from(body_len).ok().filter(|l| *l <= MAX_BODY).ok_or_else(|| {
            io::Error::other(format!("a review of {body_len} bytes, more than the log takes in one entry"))
        })?;
        let crc = crc_of(&entry[HEADER..]);
        entry[..4].copy_from_slice(&len.to_be_bytes());
        entry[4..8].copy_from_slice(&crc.to_be_bytes());
        let mut active = self.lock();
        if active.len >= self.segment_bytes.load(std::sync::atomic::Ordering::Relaxed) {
            self.roll(&mut active)?;
        }
        let offset = active.len;
        // At the tracked end: a write that failed part-way is overwritten by the next one.
        active.file.write_all_at(&entry, offset)?;
        active.len += entry.len() as u64;
        active.dirty = true;
        Ok(Pointer { segment: active.id, offset, len, crc, packed: None })
    }

    /// Starts a new segment once the newest holds `bytes` (tests: many segments from few reviews).
    pub(crate) fn set_segment_bytes(&self, bytes: u64) {
        self.segment_bytes.store(bytes, std::sync::atomic::Ordering::Relaxed);
    }

    /// Makes the full segment durable and starts the next.
    fn roll(&self, active: &mut Active) -> io::Result<()> {
        active.file.sync_data()?;
        let id = active.id + 1;
        let file =
            std::fs::OpenOptions::new().read(true).write(true).create_new(true).mode(0o600).open(self.path(id))?;
        sync_dir(&self.dir)?;
        *active = Active { id, file: file.into(), len: 0, dirty: false };
        Ok(())
    }

    /// Makes every entry appended so far durable.
    /// Appends go on meanwhile: an fsync takes about half a millisecond here, and the store
    /// flushes after every delivery pass, so a sync holding the segment would hold the reviewer.
    pub(crate) fn sync(&self) -> io::Result<()> {
        let _one_at_a_time = self.syncing.lock().unwrap_or_else(|e| e.into_inner());
        let file = {
            let mut active = self.lock();
            if !active.dirty {
                return Ok(());
            }
            active.dirty = false;
            std::sync::Arc::clone(&active.file)
        };
        // A segment sealed meanwhile was synced by the roll; this syncs it again, harmlessly.
        file.sync_data().inspect_err(|_| self.lock().dirty = true)
    }

    fn path(&self, id: u32) -> PathBuf {
        self.dir.join(segment_name(id))
    }

    /// What is stored under `key` at `p`.
    pub(crate) fn read(&self, p: &Pointer, key: &[u8]) -> Result<Stored, ReadError> {
        read_in(&self.dir, p, key)
    }

    /// The segments, oldest first, but for the one being written.
    pub(crate) fn sealed(&self) -> io::Result<Vec<u32>> {
        let active = self.lock().id;
        Ok(list_segments(&self.dir)?.into_iter().filter(|id| *id < active).collect())
    }

    /// The segment being written.
    pub(crate) fn active_segment(&self) -> u32 {
        self.lock().id
    }

    /// Every whole entry of a segment, its key and pointer, in order; and whether the segment
    /// read to its end (`false`: damage or a torn tail stopped the reading).
    pub(crate) fn entries(&self, segment: u32) -> io::Result<(Vec<Entry>, bool)> {
        let mut bytes = Vec::new();
        File::open(self.path(segment))?.read_to_end(&mut bytes)?;
        let mut out = Vec::new();
        let mut at = 0usize;
        while let Some((len, crc, body)) = entry_at(&bytes, at) {
            let key_len = usize::from(u16::from_be_bytes([body[0], body[1]]));
            out.push((body[2..2 + key_len].to_vec(), Pointer { segment, offset: at as u64, len, crc, packed: None }));
            at += HEADER + len as usize;
        }
        Ok((out, at == bytes.len()))
    }

    /// The size of a segment on disk.
    pub(crate) fn segment_bytes(&self, segment: u32) -> io::Result<u64> {
        Ok(std::fs::metadata(self.path(segment))?.len())
    }

    /// Deletes a sealed segment (every live entry moved out of it, and that made durable).
    pub(crate) fn remove(&self, segment: u32) -> io::Result<()> {
        if segment >= self.active_segment() {
            return Err(io::Error::other("the segment being written is never removed"));
        }
        std::fs::remove_file(self.path(segment))?;
        sync_dir(&self.dir)
    }

    /// The packs, oldest first.
    pub(crate) fn packs(&self) -> io::Result<Vec<u32>> {
        super::review_pack::list(&self.dir)
    }

    /// Every review in the pack of `segment`, and whether it read whole.
    pub(crate) fn pack_entries(&self, segment: u32) -> io::Result<(Vec<super::review_pack::PackEntry>, bool)> {
        super::review_pack::entries(&self.dir, segment)
    }

    /// The size of a pack on disk.
    pub(crate) fn pack_bytes(&self, segment: u32) -> io::Result<u64> {
        Ok(std::fs::metadata(self.dir.join(super::review_pack::pack_name(segment)))?.len())
    }

    /// Starts the pack of sealed `segment` ([`super::review_pack::Writer`]).
    pub(crate) fn pack_writer(&self, segment: u32) -> io::Result<super::review_pack::Writer> {
        super::review_pack::Writer::new(&self.dir, segment)
    }

    /// Deletes a pack (every live review moved out of it, and that made durable).
    pub(crate) fn remove_pack(&self, segment: u32) -> io::Result<()> {
        std::fs::remove_file(self.dir.join(super::review_pack::pack_name(segment)))?;
        sync_dir(&self.dir)
    }
}

/// [`ReviewLog::read`] in the log at `dir`.
pub(crate) fn read_in(dir: &Path, p: &Pointer, key: &[u8]) -> Result<Stored, ReadError> {
    if p.packed.is_some() {
        return super::review_pack::read(dir, p, key);
    }
    let name = segment_name(p.segment);
    let cut = || {
        ReadError::Missing(format!(
            "{name} ends before byte {} where its entry would end (lost with the machine's power?)",
            p.end()
        ))
    };
    let entry = read_framed(dir, &name, ("segment", "entry"), p, cut)?;
    let body = &entry[HEADER..];
    let key_len = usize::from(u16::from_be_bytes([body[0], body[1]]));
    if body.get(2..2 + key_len) != Some(key) {
        return Err(ReadError::Damaged(format!("the entry at byte {} of {name} is another review's", p.offset)));
    }
    Ok(Stored::from_value(body[2 + key_len..].to_vec()))
}

/// What `p` points to in the file `name` of `dir` (a segment's entry, a pack's block: `what`
/// names both), header and body, the header checked against the pointer; `cut` when the file
/// ends before it.
pub(super) fn read_framed(
    dir: &Path,
    name: &str,
    what: (&str, &str),
    p: &Pointer,
    cut: impl FnOnce() -> ReadError,
) -> Result<Vec<u8>, ReadError> {
    let (file_kind, unit) = what;
    let file = match File::open(dir.join(name)) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Err(ReadError::Missing(format!("its {file_kind} {name} is not in the review log")));
        }
        Err(e) => return Err(ReadError::Io(e)),
    };
    if !(2..=MAX_BODY).contains(&p.len) {
        return Err(ReadError::Damaged(format!("a pointer into {name} claiming {} bytes", p.len)));
    }
    let mut framed = vec![0u8; HEADER + p.len as usize];
    match file.read_exact_at(&mut framed, p.offset) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Err(cut()),
        Err(e) => return Err(ReadError::Io(e)),
    }
    let body = &framed[HEADER..];
    if framed[..4] != p.len.to_be_bytes() || framed[4..8] != p.crc.to_be_bytes() || crc_of(body) != p.crc {
        return Err(ReadError::Damaged(format!(
            "the {unit} at byte {} of {name} is not the one it points to",
            p.offset
        )));
    }
    Ok(framed)
}

/// The entry starting at `at`, if a whole one with a matching crc is there.
fn entry_at(bytes: &[u8], at: usize) -> Option<(u32, u32, &[u8])> {
    let header = bytes.get(at..at + HEADER)?;
    let len = u32::from_be_bytes([header[0], header[1], header[2], header[3]]);
    let crc = u32::from_be_bytes([header[4], header[5], header[6], header[7]]);
    if !(2..=MAX_BODY).contains(&len) {
        return None;
    }
    let body = bytes.get(at + HEADER..at + HEADER + len as usize)?;
    let key_len = usize::from(u16::from_be_bytes([body[0], body[1]]));
    (crc_of(body) == crc && 2 + key_len <= body.len()).then_some((len, crc, body))
}

/// Where the entries of a segment end: past every whole entry, and past one whose bytes are
/// damaged if a whole entry follows it (damage in place, reported when it is read). What is
/// left is a torn write: an entry cut short, or zeros where the machine lost power.
fn walk(bytes: &[u8]) -> usize {
    let mut at = 0usize;
    while let Some(header) = bytes.get(at..at + HEADER) {
        let len = u32::from_be_bytes([header[0], header[1], header[2], header[3]]);
        let end = at + HEADER + len as usize;
        if !(2..=MAX_BODY).contains(&len) || end > bytes.len() {
            break;
        }
        if entry_at(bytes, at).is_none() && entry_at(bytes, end).is_none() {
            break;
        }
        at = end;
    }
    at
}

/// Where a segment's entries end ([`walk`]).
fn valid_end(file: &File) -> io::Result<u64> {
    let mut bytes = Vec::new();
    file.try_clone()?.read_to_end(&mut bytes)?;
    Ok(walk(&bytes) as u64)
}

fn list_segments(dir: &Path) -> io::Result<Vec<u32>> {
    list_ids(dir, ".log")
}

/// The ids of the files `NNNNNNNN<suffix>` in `dir`, in order.
pub(super) fn list_ids(dir: &Path, suffix: &str) -> io::Result<Vec<u32>> {
    let mut ids: Vec<u32> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok()?.file_name().to_str()?.strip_suffix(suffix)?.parse().ok())
        .collect();
    ids.sort_unstable();
    Ok(ids)
}

/// Makes a file's creation or removal in `dir` durable.
pub(super) fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_read_back_and_a_pointer_is_not_a_stored_review() {
        let dir = tempfile::tempdir().unwrap();
        let (log, tail) = ReviewLog::open(dir.path()).unwrap();
        assert_eq!(tail, Tail { segment: 1, end: 0, cut: 0, fresh: true });
        let a = log.append(b"src\x001\x001", b"first review").unwrap();
        let b = log.append(b"src\x002\x001", &[0x28, 0xB5, 0x2F, 0xFD, 9, 9]).unwrap();
        assert_eq!(Pointer::decode(&a.encode()), Some(a));
        assert_eq!(log.read(&a, b"src\x001\x001").unwrap().review, b"first review");
        assert_eq!(log.read(&b, b"src\x002\x001").unwrap().review, [0x28, 0xB5, 0x2F, 0xFD, 9, 9]);
        // Inline reviews (a zstd frame, JSON) are not pointers, even at the pointer's length.
        assert_eq!(Pointer::decode(&[0x28; Pointer::BYTES]), None);
        assert_eq!(Pointer::decode(b"{\"incident\":{}}      "), None);
        // The wrong key, or a pointer that does not match the entry, is refused.
        assert!(matches!(log.read(&a, b"src\x002\x001"), Err(ReadError::Damaged(_))));
        let shifted = Pointer { offset: a.offset + 1, ..a };
        assert!(matches!(log.read(&shifted, b"src\x001\x001"), Err(ReadError::Damaged(_))));
        let beyond = Pointer { offset: 1 << 20, ..a };
        assert!(matches!(log.read(&beyond, b"src\x001\x001"), Err(ReadError::Missing(_))));
        let all = vec![(b"src\x001\x001".to_vec(), a), (b"src\x002\x001".to_vec(), b)];
        assert_eq!(log.entries(1).unwrap(), (all, true));
    }

    #[test]
    fn an_entry_carries_the_snapshot_after_the_review_and_older_entries_read_alone() {
        let frame = |json: &str| super::super::codec::pack(json.repeat(20).into_bytes());
        let review = frame("{\"review\":1}");
        let snapshot = frame("{\"id\":\"42\"}");
        let value = Stored::value(review.clone(), Some(&snapshot));
        assert_eq!(Stored::from_value(value), Stored { review: review.clone(), snapshot: Some(snapshot) });
        // A small snapshot stays JSON after the review's frame.
        let value = Stored::value(review.clone(), Some(b"{}"));
        assert_eq!(Stored::from_value(value), Stored { review: review.clone(), snapshot: Some(b"{}".to_vec()) });
        // Before schema 9, and a review that is not a frame: the value is the review.
        assert_eq!(Stored::from_value(review.clone()), Stored { review, snapshot: None });
        assert_eq!(Stored::value(b"{\"r\":1}".to_vec(), Some(b"{}")), b"{\"r\":1}");
        assert_eq!(Stored::from_value(b"{\"r\":1}".to_vec()).snapshot, None);
        // A pointer into a pack is two bytes longer and reads back as one.
        let p = Pointer { segment: 3, offset: 9, len: 5, crc: 7, packed: Some(300) };
        assert_eq!((p.encode().len(), Pointer::decode(&p.encode())), (Pointer::BYTES + 2, Some(p)));
        assert_eq!(Pointer::decode(&p.encode()[..Pointer::BYTES]), None);
    }

    #[test]
    fn a_torn_tail_is_left_behind_at_open_and_the_whole_entries_stay() {
        let dir = tempfile::tempdir().unwrap();
        let (kept, torn) = {
            let (log, _) = ReviewLog::open(dir.path()).unwrap();
            let kept = log.append(b"k1", &[7u8; 300]).unwrap();
            let torn = log.append(b"k2", &[8u8; 300]).unwrap();
            log.sync().unwrap();
            (kept, torn)
        };
        // The process stopped while the second entry was being written.
        let path = dir.path().join(segment_name(1));
        let file = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
        file.set_len(torn.offset + 100).unwrap();
        let (log, tail) = ReviewLog::open(dir.path()).unwrap();
        assert_eq!(tail, Tail { segment: 1, end: kept.end(), cut: 100, fresh: false });
        assert_eq!(log.read(&kept, b"k1").unwrap().review, vec![7u8; 300]);
        assert!(matches!(log.read(&torn, b"k2"), Err(ReadError::Missing(_))));
        // The segment is sealed as it is; the next entry starts the next one.
        let next = log.append(b"k3", b"again").unwrap();
        assert_eq!((next.segment, next.offset), (2, 0));
        let (entries, whole) = log.entries(1).unwrap();
        assert_eq!((entries, whole), (vec![(b"k1".to_vec(), kept)], false));
        drop(log);
        let (log, tail) = ReviewLog::open(dir.path()).unwrap();
        assert_eq!(tail, Tail { segment: 2, end: next.end(), cut: 0, fresh: false });
        assert_eq!(log.read(&next, b"k3").unwrap().review, b"again");
    }

    #[test]
    fn damage_inside_a_segment_is_reported_on_reading_and_the_entries_after_it_stay() {
        let dir = tempfile::tempdir().unwrap();
        let (first, second) = {
            let (log, _) = ReviewLog::open(dir.path()).unwrap();
            (log.append(b"k1", &[7u8; 300]).unwrap(), log.append(b"k2", &[8u8; 300]).unwrap())
        };
        let path = dir.path().join(segment_name(1));
        let mut bytes = std::fs::read(&path).unwrap();
        bytes[(first.offset + 20) as usize] ^= 0xFF;
        std::fs::write(&path, bytes).unwrap();
        let (log, tail) = ReviewLog::open(dir.path()).unwrap();
        assert_eq!(tail, Tail { segment: 1, end: second.end(), cut: 0, fresh: false }, "not taken for a torn tail");
        assert!(matches!(log.read(&first, b"k1"), Err(ReadError::Damaged(_))));
        assert_eq!(log.read(&second, b"k2").unwrap().review, vec![8u8; 300]);
        assert!(!log.entries(1).unwrap().1, "a segment with damage does not read whole");
        assert_eq!(log.append(b"k3", b"v").unwrap().offset, second.end());
    }

    #[test]
    fn a_full_segment_is_sealed_and_the_next_started() {
        let dir = tempfile::tempdir().unwrap();
        let (log, _) = ReviewLog::open(dir.path()).unwrap();
        let big = vec![1u8; 3 << 20];
        let pointers: Vec<Pointer> = (0..4u8).map(|i| log.append(&[i], &big).unwrap()).collect();
        assert_eq!(pointers.iter().map(|p| p.segment).collect::<Vec<_>>(), [1, 1, 2, 2]);
        assert_eq!(log.sealed().unwrap(), [1]);
        assert!(log.remove(2).is_err(), "the segment being written stays");
        log.remove(1).unwrap();
        assert!(matches!(log.read(&pointers[0], &[0]), Err(ReadError::Missing(_))));
        assert_eq!(log.read(&pointers[3], &[3]).unwrap().review, big);
        drop(log);
        let (log, tail) = ReviewLog::open(dir.path()).unwrap();
        assert_eq!((tail.segment, tail.end), (2, pointers[3].end()));
        assert_eq!(log.append(b"k", b"v").unwrap().segment, 3, "the reopened segment was full already");
    }
}
