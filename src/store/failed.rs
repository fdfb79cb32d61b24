//! Resolutions that can never be reviewed: taken out of the review queue so that they stop
//! holding it up, and kept (with why) so that an operator sees them in `/readyz`, the
//! `hindsight_review_failures` gauge and `hindsight queue list --failed`.
//!
//! Without this, a queued key whose resolution record is missing or unreadable stayed first in
//! the queue for ever: with a batch of one the queue never moved again.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sled::Transactional;
use sled::transaction::{ConflictableTransactionError, TransactionError};

use super::{ResolutionKey, Result, Store};

/// Why a queued resolution was given up, and when.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FailedReview {
    pub source: String,
    pub incident_id: String,
    pub revision: u32,
    pub reason: String,
    pub at: DateTime<Utc>,
}

impl ResolutionKey {
    /// The key's parts (source, incident id, revision), or `None` when it is not laid out as
    /// [`ResolutionKey::new`] writes it.
    pub fn parts(&self) -> Option<(String, String, u32)> {
        let (rest, revision) = self.0.split_at_checked(self.0.len().checked_sub(4)?)?;
        let rest = rest.strip_suffix(b"\0")?;
        let sep = rest.iter().position(|b| *b == 0)?;
        let revision = u32::from_be_bytes(revision.try_into().ok()?);
        Some((
            String::from_utf8_lossy(&rest[..sep]).into_owned(),
            String::from_utf8_lossy(&rest[sep + 1..]).into_owned(),
            revision,
        ))
    }

    /// The key as people read it: `source/incident/revision`.
    pub fn display(&self) -> String {
        match self.parts() {
            Some((s, i, r)) => format!("{s}/{i}/{r}"),
            None => String::from_utf8_lossy(&self.0).replace('\0', "/"),
        }
    }
}

impl Store {
    /// Moves a queued resolution out of the queue into `failed`, in one transaction. Returns
    /// `false` when it was no longer queued.
    pub fn fail_review(&self, k: &ResolutionKey, why: &FailedReview) -> Result<bool> {
        self.ensure_room()?;
        let bytes = serde_json::to_vec(why).map_err(|e| self.corrupt("failed", &k.0, e))?;
        let result = (&self.pending, &self.failed).transaction(|(pending, failed)| {
            if pending.remove(k.0.as_slice())?.is_none() {
                return Ok(false);
            }
            failed.insert(k.0.as_slice(), bytes.as_slice())?;
            Ok::<_, ConflictableTransactionError<super::StoreError>>(true)
        });
        result.map_err(|e| match e {
            TransactionError::Abort(e) => e,
            TransactionError::Storage(e) => self.io(e),
        })
    }

    /// Puts a resolution given up back in the queue (`hindsight queue retry`). Returns `false`
    /// when it was not among the failed.
    pub fn requeue_failed(&self, k: &ResolutionKey) -> Result<bool> {
        self.ensure_room()?;
        let result = (&self.pending, &self.failed).transaction(|(pending, failed)| {
            if failed.remove(k.0.as_slice())?.is_none() {
                return Ok(false);
            }
            pending.insert(k.0.as_slice(), &[][..])?;
            Ok::<_, ConflictableTransactionError<super::StoreError>>(true)
        });
        result.map_err(|e| match e {
            TransactionError::Abort(e) => e,
            TransactionError::Storage(e) => self.io(e),
        })
    }

    /// Every resolution given up, oldest key first.
    pub fn failed_reviews(&self) -> Result<Vec<(ResolutionKey, FailedReview)>> {
        self.failed
            .iter()
            .map(|r| {
                let (k, v) = r.map_err(|e| self.io(e))?;
                let why = serde_json::from_slice(&v).map_err(|e| self.corrupt("failed", &k, e))?;
                Ok((ResolutionKey(k.to_vec()), why))
            })
            .collect()
    }

    /// How many resolutions were given up (cheap: for `/readyz` and the gauge).
    pub fn failed_count(&self) -> usize {
        self.failed.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_split_into_their_parts() {
        let k = ResolutionKey::new("contoso", "1042", 3);
        assert_eq!(k.parts(), Some(("contoso".into(), "1042".into(), 3)));
        assert_eq!(k.display(), "contoso/1042/3");
        assert_eq!(ResolutionKey(b"junk".to_vec()).parts(), None);
    }

    #[test]
    fn a_failed_resolution_leaves_the_queue_and_is_listed() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let k = ResolutionKey::new("s", "1", 1);
        store.pending.insert(&k.0, &[][..]).unwrap();
        let why = FailedReview {
            source: "s".into(),
            incident_id: "1".into(),
            revision: 1,
            reason: "queued without a resolution record".into(),
            at: Utc::now(),
        };
        assert!(store.fail_review(&k, &why).unwrap());
        assert!(!store.fail_review(&k, &why).unwrap(), "only a queued key can fail");
        assert_eq!(store.pending_count(), 0);
        assert_eq!(store.failed_count(), 1);
        assert_eq!(store.failed_reviews().unwrap(), vec![(k.clone(), why)]);
        assert!(store.requeue_failed(&k).unwrap());
        assert_eq!((store.pending_count(), store.failed_count()), (1, 0));
    }
}
