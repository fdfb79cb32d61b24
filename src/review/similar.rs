//! The tenant's earlier incidents that resemble this one, and whether its way in recurs.

use super::History;
use super::model::*;

pub(crate) fn find(_review: &Review, _history: &History) -> (Vec<SimilarIncident>, Option<Recurring>) {
    (vec![], None)
}
