//! The post-incident review: a pure function of (incident, catalog, detection inventory, history
//! of earlier reviews). No clock, no network, no store: everything comes in as arguments, so a
//! review is deterministic, fast, snapshot-testable and safe to re-run.
//!
//! [`Engine`] holds what is derived once per catalog (the attribution index); [`Engine::review`]
//! makes one review. The analyses each live in their own module: [`mapping`] (alerts → ATT&CK,
//! kill chain), [`gaps`] (coverage, blind stages, late detections), [`attribution`],
//! [`knowledge`], [`follow_ups`], [`layer`]; [`render`] turns a review into text, Markdown and HTML.

pub mod attribution;
mod coverage;
mod follow_ups;
mod gaps;
mod hunting;
mod implied;
mod knowledge;
pub mod layer;
mod mapping;
pub mod model;
pub mod navigator;
mod platforms;
pub mod render;
mod response;
pub mod retro_hunts;
mod scope;
mod similar;
mod story;
mod timeline;
mod times;
mod warnings;

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::sync::Arc;
use std::time::Duration;

pub use model::*;
pub use similar::past_incident;

use crate::attack::Catalog;
use crate::model::Incident;

/// What the organisation can detect, as far as the review needs to know: the seam to the
/// detection inventory readers (`crate::inventory`).
pub trait DetectionInventory: Send + Sync {
    /// Whether a rule covers the technique (a canonical, current ATT&CK ID).
    fn covers(&self, catalog: &Catalog, technique: &str) -> bool;
    /// Files or rule sets the inventory was read from.
    fn source_count(&self) -> usize;
    /// Techniques named by at least one rule.
    fn technique_count(&self) -> usize;
    /// The rules that cover a technique (as [`DetectionInventory::covers`] counts them).
    fn rules(&self, _catalog: &Catalog, _technique: &str) -> Vec<String> {
        vec![]
    }
    /// The rules that name exactly this technique (a parent's own rules, without its
    /// sub-techniques').
    fn rules_naming(&self, _technique: &str) -> Vec<String> {
        vec![]
    }
    /// Rules naming the technique that do not run (disabled, auto-disabled), labelled with why.
    fn disabled_rules(&self, _technique: &str) -> Vec<String> {
        vec![]
    }
    /// The rules read from the tenant, with when, if any are part of this inventory.
    fn deployed(&self) -> Option<DeployedRules> {
        None
    }
}

/// One security capability's use against one technique.
#[derive(Debug, Clone, PartialEq)]
pub struct ControlRef {
    pub capability_id: String,
    pub description: String,
    pub group: String,
    /// protect, detect or respond.
    pub category: String,
    /// minimal, partial or significant.
    pub score: String,
    pub licence: Option<String>,
}

/// Security capabilities mapped to techniques: the seam to the Microsoft 365 mappings
/// (`crate::controls`).
pub trait ControlCatalog: Send + Sync {
    fn controls_for(&self, technique: &str) -> Vec<ControlRef>;
    /// The ATT&CK release the mappings were made against.
    fn mapped_attack_version(&self) -> String;
}

/// What the organisation has met before: the techniques of earlier reviews, and its earlier
/// incidents (the last 180 days) for similar incidents and recurrence.
#[derive(Debug, Default, Clone)]
pub struct History {
    pub techniques_seen: HashSet<String>,
    pub incidents: Vec<PastIncident>,
    /// Built from the store's earlier reviews (the daemon). `false` (the default: an offline
    /// review, a test): `techniques_seen` says nothing, so no technique is called new to the
    /// organisation and the review says it had no history instead.
    pub recorded: bool,
}

/// How far back (days) a review looks for similar incidents: the history the store keeps.
pub const SIMILAR_WINDOW_DAYS: i64 = 180;

/// What a later review needs of an earlier incident of the same source (tenant).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct PastIncident {
    pub id: String,
    pub title: String,
    pub created: Option<chrono::DateTime<chrono::Utc>>,
    pub alert_titles: Vec<String>,
    pub techniques: Vec<String>,
    /// Entity keys ("kind:name", lower case) of its evidence.
    pub entities: Vec<String>,
    /// Its Initial Access techniques.
    pub initial_access: Vec<String>,
    /// Its recorded root cause, in the analysts' words.
    pub root_cause: Option<String>,
    /// Its tenant, when known: a history shared by several tenants never links them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant_id: Option<String>,
    /// The IDs of the follow-ups its review raised: a later incident raising one again says so.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub follow_ups: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct Settings {
    /// An alert raised this long after its activity began is a late detection.
    pub late_detection: Duration,
    /// How many groups and campaigns the attribution lists.
    pub attribution_top: usize,
    /// How many likely techniques each blind stage lists.
    pub likely_per_stage: usize,
    /// Alerts reviewed per incident: the first ones, in the order received
    /// (`review.max_alerts`). The review stage reads no more than this of a stored snapshot;
    /// the cap here covers files reviewed offline.
    pub max_alerts: usize,
    /// Evidence items read per alert of a stored snapshot (`review.max_evidence`).
    pub max_evidence: usize,
    /// A high-severity alert not acted on within this long is listed as unattended.
    pub unattended_high: Duration,
    /// A medium-severity alert not acted on within this long is listed as unattended.
    pub unattended_medium: Duration,
    /// Who owns follow-ups, by area (`identity`, `endpoint`, `email`, `cloud`, `detection`,
    /// `soc`, `legal`) or `default`.
    pub follow_up_owners: BTreeMap<String, String>,
    /// Days from the incident's resolution to a follow-up's due date: high, medium, low.
    pub follow_up_due_days: [u32; 3],
    /// The Microsoft 365 licence the organisation has (`review.licence`): only the controls
    /// available at it are listed. `None`: every control, whatever its tier.
    pub licence: Option<crate::controls::Licence>,
    /// Where the full review is published (`review.link`).
    pub review_link: Option<ReviewLink>,
    /// Sources whose reviews are hunted in the tenant afterwards (`hunts = true`): the review
    /// stage queues their reviews for the hunt stage.
    pub retro_hunt_sources: BTreeSet<String>,
}

/// `review.link`: an https address with `{source}`, `{incident}` and `{revision}` in it, each
/// filled in percent-encoded, so an incident ID cannot change the address's path or host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReviewLink(String);

impl ReviewLink {
    pub fn parse(template: &str) -> Result<ReviewLink, String> {
        let sample = template.replace("{source}", "s").replace("{incident}", "1").replace("{revision}", "1");
        let url = reqwest::Url::parse(&sample).map_err(|e| format!("{template:?} is not an address: {e}"))?;
        if url.scheme() != "https" {
            return Err(format!("{template:?}: the review link must be an https address"));
        }
        if sample.contains(['{', '}']) {
            return Err(format!("{template:?}: only {{source}}, {{incident}} and {{revision}} are filled in"));
        }
        if !template.contains("{incident}") {
            return Err(format!("{template:?}: the address must name the incident ({{incident}})"));
        }
        Ok(ReviewLink(template.to_owned()))
    }

    /// The address of one review.
    pub fn fill(&self, source: &str, incident: &str, revision: u32) -> String {
        // Everything but RFC 3986's unreserved characters is percent-encoded: a `/`, `?`, `#`
        // or `@` in an incident ID stays inside its part of the address.
        let enc = |s: &str| {
            s.bytes()
                .map(|b| match b {
                    b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => (b as char).to_string(),
                    b => format!("%{b:02X}"),
                })
                .collect::<String>()
        };
        self.0
            .replace("{source}", &enc(source))
            .replace("{incident}", &enc(incident))
            .replace("{revision}", &revision.to_string())
    }
}

impl Settings {
    /// How much of a stored snapshot the review stage reads.
    pub fn limits(&self) -> crate::model::Limits {
        crate::model::Limits { max_alerts: self.max_alerts, max_evidence: self.max_evidence }
    }
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            late_detection: Duration::from_secs(3600),
            attribution_top: 5,
            likely_per_stage: 5,
            max_alerts: crate::model::Limits::DEFAULT.max_alerts,
            max_evidence: crate::model::Limits::DEFAULT.max_evidence,
            unattended_high: Duration::from_secs(3600),
            unattended_medium: Duration::from_secs(4 * 3600),
            follow_up_owners: BTreeMap::new(),
            follow_up_due_days: [7, 30, 90],
            review_link: None,
            retro_hunt_sources: BTreeSet::new(),
            licence: None,
        }
    }
}

/// Everything a review needs besides the incident, built once and shared by every review.
///
/// It owns what it reads (shared, so that the daemon's workers and the CLI hold the same
/// catalog without copying it): no borrowed lifetimes to thread through the workers.
pub struct Engine {
    pub catalog: Arc<Catalog>,
    pub inventory: Option<Arc<dyn DetectionInventory>>,
    pub controls: Option<Arc<dyn ControlCatalog>>,
    pub settings: Settings,
    attribution: attribution::Index,
    /// The hunting queries blind-stage candidates are given (the embedded library unless
    /// [`Engine::with_hunts`] says otherwise).
    hunts: Arc<crate::hunts::Library>,
    /// ATT&CK software by the names alerts and evidence give it.
    software: crate::attack::software::SoftwareIndex,
    /// Active techniques of each tactic, by kill-chain position: the candidates for blind stages.
    by_tactic: Vec<Vec<usize>>,
}

/// Whether the incident was real (not a false positive or expected activity): what gap-driven
/// work such as retro-hunts is for.
pub fn is_real_incident(r: &Review) -> bool {
    follow_ups::is_real(r)
}

/// Which resolution of which incident is being reviewed.
#[derive(Debug, Clone)]
pub struct Subject<'a> {
    pub incident: &'a Incident,
    pub source: &'a str,
    pub revision: u32,
    /// The state changes the daemon saw while it polled the incident (none offline).
    pub transitions: &'a [crate::model::Transition],
}

pub const ATTRIBUTION_NOTE: &str = "A hypothesis, not a verdict, and no response decision depends on it: groups and campaigns the alerts name, that use software the incident names (weighted by how few others use it), or that share several of its techniques including a rare one. Technique overlap alone does not attribute an intrusion.";

/// The attribution note when no candidate clears the evidence bar.
pub const NO_RESEMBLANCE: &str = "No meaningful resemblance to a known group or campaign: no alert names one, no software the incident names is used by few enough groups to tell them apart, and none shares three or more of its techniques including a rare one. `hindsight attribute` lists the full ranking.";

impl Engine {
    pub fn new(
        catalog: Arc<Catalog>,
        inventory: Option<Arc<dyn DetectionInventory>>,
        controls: Option<Arc<dyn ControlCatalog>>,
        settings: Settings,
    ) -> Self {
        let mut by_tactic = vec![Vec::new(); catalog.tactics().len()];
        for (i, t) in catalog.techniques().iter().enumerate().filter(|(_, t)| t.lifecycle.is_active()) {
            for p in t.tactics.iter().filter_map(|x| catalog.tactic_position(x)) {
                by_tactic[p].push(i);
            }
        }
        let attribution = attribution::Index::new(&catalog);
        let software = crate::attack::software::SoftwareIndex::new(&catalog);
        Engine {
            catalog,
            inventory,
            controls,
            settings,
            attribution,
            hunts: crate::hunts::Library::embedded(),
            software,
            by_tactic,
        }
    }

    /// Uses this hunt library (the embedded one with a site's folders added) instead of the
    /// embedded one.
    pub fn with_hunts(mut self, hunts: Arc<crate::hunts::Library>) -> Self {
        self.hunts = hunts;
        self
    }

    pub fn hunts(&self) -> &crate::hunts::Library {
        &self.hunts
    }

    pub fn attribution_index(&self) -> &attribution::Index {
        &self.attribution
    }

    /// The full attribution ranking of an incident, without the review's evidence bar: every
    /// group and campaign with some evidence, best first, at most `top`. For analysts and for
    /// measurement (`hindsight attribute`); a review lists only those over the bar.
    pub fn attribute(&self, incident: &Incident, top: usize) -> Vec<Candidate> {
        let capped = incident.first_alerts(self.settings.max_alerts);
        let incident = capped.as_ref().unwrap_or(incident);
        let catalog = &*self.catalog;
        let mapped = mapping::map(incident, catalog);
        let vector = attribution::vector(catalog, mapped.catalog_ix.iter().flatten().copied());
        let evidence = attribution::Evidence::of(incident, catalog, &self.software);
        self.attribution.attribute(catalog, &vector, &evidence, top, false)
    }

    pub(crate) fn techniques_of_tactic(&self, position: usize) -> &[usize] {
        self.by_tactic.get(position).map(Vec::as_slice).unwrap_or_default()
    }

    pub fn review(&self, subject: &Subject, history: &History) -> Review {
        self.review_against(subject, history, self.inventory.as_deref())
    }

    /// [`Engine::review`] against `inventory` instead of the engine's own: a source's deployed
    /// rules layered over the inventory files (`crate::inventory::Layered`).
    pub fn review_against(
        &self,
        subject: &Subject,
        history: &History,
        inventory: Option<&dyn DetectionInventory>,
    ) -> Review {
        let capped = subject.incident.first_alerts(self.settings.max_alerts);
        let incident = capped.as_ref().unwrap_or(subject.incident);
        let catalog = &*self.catalog;
        let mut mapped = mapping::map(incident, catalog);
        if let Some(inv) = inventory {
            for t in mapped.techniques.iter_mut().filter(|t| t.name.is_some()) {
                t.covered = Some(inv.covers(catalog, &t.id));
            }
        }
        let observed: Vec<usize> = mapped.catalog_ix.iter().flatten().copied().collect();
        let vector = attribution::vector(catalog, observed.iter().copied());
        // A false positive or expected activity was no attack: its "gaps" and "attribution"
        // would be noise that a reader has to discount. Its review is about tuning.
        let benign = matches!(
            incident.classification,
            crate::model::Classification::FalsePositive | crate::model::Classification::InformationalExpectedActivity
        );
        // The phishing that most likely gave a sign-in its credentials: the blind stage's reason
        // and its candidates both read it.
        let phish = if benign { None } else { implied::phishing_source(incident, &mapped) };
        if !benign {
            implied::mark(incident, &mut mapped, phish.as_ref());
        }
        let sims = self.attribution.similarities(&vector);
        let evidence = attribution::Evidence::of(incident, catalog, &self.software);
        let (attribution, gaps) = if benign {
            (
                vec![],
                Gaps {
                    uncovered: vec![],
                    coverage: vec![],
                    blind_stages: vec![],
                    late_detections: vec![],
                    platforms: platforms::infer(incident),
                    hunt_window: None,
                    estate_hunts: vec![],
                },
            )
        } else {
            (
                self.attribution.attribute(catalog, &vector, &evidence, self.settings.attribution_top, true),
                gaps::find(
                    self,
                    inventory,
                    incident,
                    &mapped,
                    &vector,
                    &sims,
                    gaps::Leads { software: &evidence.software, phish: phish.as_ref() },
                ),
            )
        };
        // Nothing was attacked in a false or benign positive: no mitigations or controls.
        let mitigations = if benign { vec![] } else { mitigations(catalog, &observed) };
        let licence = self.settings.licence;
        let controls = match self.controls.as_deref() {
            Some(c) if !benign => controls(c, catalog, &observed, &gaps, licence),
            _ => vec![],
        };
        let knowledge_gaps = knowledge::find(catalog, &mapped, history, benign);
        let mut summary = summary(incident, subject);
        summary.review_url =
            self.settings.review_link.as_ref().map(|l| l.fill(&summary.source, &summary.id, summary.revision));
        let metrics = metrics(incident);
        let mut review = Review {
            schema_version: SCHEMA_VERSION,
            warnings: vec![],
            story: Story::default(),
            alerts: scope::alerts(incident, catalog),
            timeline: vec![],
            timeline_untimed: 0,
            unattended_alerts: vec![],
            basis: Basis {
                attack_domain: catalog.meta().domain.clone(),
                attack_version: catalog.meta().attack_version.clone(),
                inventory: inventory.map(|i| InventoryBasis {
                    sources: i.source_count(),
                    techniques: i.technique_count(),
                    deployed: i.deployed(),
                }),
                controls_attack_version: self.controls.as_deref().map(|c| c.mapped_attack_version()),
                licence: licence.map(|l| l.as_str().to_owned()),
                history_recorded: history.recorded,
            },
            incident: summary,
            metrics,
            techniques: mapped.techniques,
            tactics: mapped.tactics,
            gaps,
            mitigations,
            controls,
            attribution_note: if attribution.is_empty() && !benign {
                NO_RESEMBLANCE.to_owned()
            } else {
                ATTRIBUTION_NOTE.to_owned()
            },
            attribution,
            knowledge_gaps,
            follow_ups: vec![],
            layer: navigator::Layer::empty(),
            retro_hunts: None,
        };
        // Each part reads what the parts before it found: the response before the times (which
        // time containment), both before the story (which tells them), all before the warnings.
        let transitions = subject.transitions;
        review.story.response = response::find(incident, transitions, &review);
        (review.metrics, review.unattended_alerts) = times::measure(incident, transitions, &review, &self.settings);
        // Hunts are scoped to the window up to containment, which the times found.
        if !benign {
            hunting::attach(&mut review, incident, &self.hunts);
        }
        // The story reads the response (what worked), so it is told before the response is
        // moved into it.
        let told = story::tell(&review, incident, history);
        let response = std::mem::take(&mut review.story.response);
        review.story = Story { response, ..told };
        (review.timeline, review.timeline_untimed) = timeline::build(&review, incident, transitions);
        review.warnings = warnings::find(&review, incident);
        review.follow_ups = follow_ups::derive(&review, incident, history, &self.settings);
        review.layer = navigator::for_review(&review);
        review
    }
}

fn summary(incident: &Incident, subject: &Subject) -> IncidentSummary {
    let mut tags = incident.custom_tags.clone();
    tags.extend(incident.system_tags.iter().cloned());
    IncidentSummary {
        id: incident.id.clone(),
        source: subject.source.to_owned(),
        revision: subject.revision,
        title: incident.title.clone(),
        severity: incident.severity.as_str().to_owned(),
        classification: incident.classification.as_str().to_owned(),
        determination: incident.determination.as_str().to_owned(),
        status: incident.status.as_str().to_owned(),
        owner: incident.assigned_to.clone(),
        tenant_id: incident.tenant_id.clone(),
        created: incident.created,
        resolved: resolved_at(incident),
        url: incident.url.clone(),
        review_url: None,
        tags,
        resolving_comment: incident.resolving_comment.clone(),
        alerts: incident.alerts.len() + incident.alerts_omitted,
        alerts_reviewed: (incident.alerts_omitted > 0).then_some(incident.alerts.len()),
        entities: scope::entities(incident),
        products: scope::products(incident),
        comments: scope::comments(incident),
    }
}

/// Graph has no incident resolution time: the latest alert resolution, else the last update
/// of the resolved incident.
fn resolved_at(incident: &Incident) -> Option<chrono::DateTime<chrono::Utc>> {
    if incident.status != crate::model::IncidentStatus::Resolved {
        return None;
    }
    incident.alerts.iter().filter_map(|a| a.resolved).max().or(Some(incident.last_update))
}

fn metrics(incident: &Incident) -> Metrics {
    let first_activity = incident.first_activity();
    let first_alert = incident.first_alert();
    let secs = |a: Option<chrono::DateTime<chrono::Utc>>, b: Option<chrono::DateTime<chrono::Utc>>| match (a, b) {
        (Some(a), Some(b)) if b >= a => Some((b - a).num_seconds()),
        _ => None,
    };
    Metrics {
        first_activity,
        first_alert,
        time_to_detect_s: secs(first_activity, first_alert),
        time_to_resolve_s: secs(incident.created.or(first_alert), resolved_at(incident)),
        ..Metrics::default()
    }
}

/// ATT&CK mitigations of the observed techniques, those covering most techniques first.
fn mitigations(catalog: &Catalog, observed: &[usize]) -> Vec<MitigationFinding> {
    // (mitigation, technique) pairs by index, grouped by sorting: no strings until the output.
    let mut pairs: Vec<(usize, usize)> = observed
        .iter()
        .flat_map(|&t| catalog.mitigation_ixs_of(t).map(move |m| (m, t)))
        .filter(|&(m, _)| catalog.data().mitigations[m].lifecycle.is_active())
        .collect();
    pairs.sort_unstable_by_key(|&(m, t)| (m, catalog.technique_id_rank(t)));
    pairs.dedup();
    let mut groups: Vec<&[(usize, usize)]> = pairs.chunk_by(|a, b| a.0 == b.0).collect();
    let mitigation = |g: &[(usize, usize)]| &catalog.data().mitigations[g[0].0];
    groups.sort_by(|a, b| b.len().cmp(&a.len()).then_with(|| mitigation(a).id.cmp(&mitigation(b).id)));
    groups
        .into_iter()
        .map(|g| {
            let m = mitigation(g);
            MitigationFinding {
                id: m.id.clone(),
                name: m.name.clone(),
                techniques: g.iter().map(|&(_, t)| catalog.techniques()[t].id.clone()).collect(),
            }
        })
        .collect()
}

/// Microsoft 365 capabilities against the observed techniques and those likely in blind stages,
/// those available at `licence` when it is set.
fn controls(
    controls: &dyn ControlCatalog,
    catalog: &Catalog,
    observed: &[usize],
    gaps: &Gaps,
    licence: Option<crate::controls::Licence>,
) -> Vec<ControlFinding> {
    let mut targets: Vec<(String, bool)> =
        observed.iter().map(|&t| (catalog.techniques()[t].id.clone(), true)).collect();
    for stage in &gaps.blind_stages {
        targets.extend(stage.likely.iter().map(|l| (l.id.clone(), false)));
    }
    let mut by: BTreeMap<String, ControlFinding> = BTreeMap::new();
    for (id, observed) in targets {
        for c in controls.controls_for(&id) {
            if licence.is_some_and(|l| !l.includes(c.licence.as_deref())) {
                continue;
            }
            let f = by.entry(c.capability_id.clone()).or_insert_with(|| ControlFinding {
                capability_id: c.capability_id.clone(),
                description: c.description.clone(),
                group: c.group.clone(),
                licence: c.licence.clone(),
                techniques: vec![],
            });
            if !f.techniques.iter().any(|u| u.technique == id && u.category == c.category) {
                f.techniques.push(ControlUse {
                    technique: id.clone(),
                    category: c.category.clone(),
                    score: c.score.clone(),
                    observed,
                });
            }
        }
    }
    let mut out: Vec<ControlFinding> = by.into_values().collect();
    let weight = |f: &ControlFinding| f.techniques.iter().filter(|u| u.observed).count();
    out.sort_by(|a, b| {
        weight(b)
            .cmp(&weight(a))
            .then(b.techniques.len().cmp(&a.techniques.len()))
            .then_with(|| a.capability_id.cmp(&b.capability_id))
    });
    out
}
