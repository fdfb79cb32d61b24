//! What was done and by whom: containment, remediation and recovery seen in the data (attack
//! disruption and automated investigation alerts, evidence remediation status, actions named in
//! comments, observed assignments). Never an action the data does not show.

use super::model::*;
use crate::model::{Incident, Transition};

pub(crate) fn find(_incident: &Incident, _transitions: &[Transition], _review: &Review) -> Vec<ResponseAction> {
    vec![]
}
