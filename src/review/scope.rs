//! The incident's scope: the entities of every alert merged across alerts, the products that
//! raised the alerts (named as Microsoft's portal names them), the alerts by title, the comments.

use super::model::*;
use crate::model::Incident;

/// Every evidence entity of every alert, merged: a device is one device however many alerts
/// name it.
pub(crate) fn entities(_incident: &Incident) -> Vec<Entity> {
    vec![]
}

/// The products that raised the alerts, most alerts first.
pub(crate) fn products(_incident: &Incident) -> Vec<Product> {
    vec![]
}

/// Every alert, in the order received.
pub(crate) fn alerts(_incident: &Incident, _catalog: &crate::attack::Catalog) -> Vec<AlertSummary> {
    vec![]
}

/// The incident's comments, oldest first.
pub(crate) fn comments(_incident: &Incident) -> Vec<CommentRecord> {
    vec![]
}
