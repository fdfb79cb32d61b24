//! What a reader must know before the findings: shown first in every format.

use super::model::*;
use crate::model::Incident;

pub(crate) fn find(_review: &Review, _incident: &Incident) -> Vec<Warning> {
    vec![]
}
