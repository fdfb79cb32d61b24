//! The review as the HTML e-mail template sees it (`view` in `templates/review.html.j2`): the
//! facts already chosen, ordered, shortened and linked, with no markup. The template owns the
//! layout — colours, tables, what goes below the fold — so a site restyles the e-mail by
//! overriding one file, and the Rust side keeps the decisions a template should not make (which
//! follow-ups come first, where the longest silence is, which link may be followed).
//!
//! Links are made only where they are known to point where they say: the incident and its
//! alerts only to a Defender portal host (an incident file could carry any URL), techniques,
//! groups, campaigns and software only to ATT&CK's site, built from IDs of the expected shape.

use serde::Serialize;

use super::{Block, Hunts, duration, gaps, is_benign, short};
use crate::review::model::*;

/// How many follow-ups the e-mail shows in full; the others are listed by title.
pub const FOLLOW_UPS_SHOWN: usize = 5;
/// How many timeline entries the e-mail shows; the JSON and the text part have more.
pub const TIMELINE_SHOWN: usize = 10;

/// One element of an outline, as data for a template: `kind` is `heading`, `para`, `strong`,
/// `bullets`, `numbered`, `table` or `code`.
#[derive(Debug, Clone, Serialize)]
pub struct BlockView {
    pub kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub level: Option<u8>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub items: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub head: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub rows: Vec<Vec<String>>,
}

impl From<Block> for BlockView {
    fn from(b: Block) -> BlockView {
        let mut v = BlockView { kind: "para", level: None, text: None, items: vec![], head: vec![], rows: vec![] };
        match b {
            Block::Heading(l, t) => (v.kind, v.level, v.text) = ("heading", Some(l), Some(t)),
            Block::Para(t) => v.text = Some(t),
            Block::Strong(t) => (v.kind, v.text) = ("strong", Some(t)),
            Block::Code(t) => (v.kind, v.text) = ("code", Some(t)),
            Block::Bullets(i) => (v.kind, v.items) = ("bullets", i),
            Block::Numbered(i) => (v.kind, v.items) = ("numbered", i),
            Block::Table(h, r) => (v.kind, v.head, v.rows) = ("table", h, r),
        }
        v
    }
}

pub(crate) fn blocks(b: Vec<Block>) -> Vec<BlockView> {
    b.into_iter().map(BlockView::from).collect()
}

#[derive(Debug, Clone, Serialize)]
pub struct Link {
    pub text: String,
    /// `None` where no trustworthy address is known: the template shows the text alone.
    pub href: Option<String>,
}

/// A line of the story's summary: "Impact" and what follows it.
#[derive(Debug, Clone, Serialize)]
pub struct SummaryLine {
    pub lead: Option<String>,
    pub text: String,
}

/// One tactic of the kill chain: `state` is `observed`, `blind` or `outside`.
#[derive(Debug, Clone, Serialize)]
pub struct Stage {
    pub name: String,
    pub shortname: String,
    pub state: &'static str,
    /// Observed techniques at this stage; for a blind stage, the techniques likely there.
    pub techniques: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct MatrixTechnique {
    pub id: String,
    pub name: String,
    pub href: Option<String>,
    /// `detected` (an alert named it), `rule` (the inventory covers it), `none` (a manual alert
    /// only, no rule), or `unknown` without coverage data.
    pub coverage: &'static str,
}

/// A tactic with the incident's techniques under it: a row of the compact matrix.
#[derive(Debug, Clone, Serialize)]
pub struct MatrixRow {
    pub tactic: String,
    pub state: &'static str,
    pub techniques: Vec<MatrixTechnique>,
}

#[derive(Debug, Clone, Serialize)]
pub struct FollowUpView {
    pub n: usize,
    pub priority: &'static str,
    pub title: String,
    pub detail: String,
    pub done_when: String,
    pub owner: Option<String>,
    pub due: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct TimelineRow {
    pub at: String,
    pub text: String,
    /// A row standing for a stretch with nothing recorded, not an event.
    pub silence: bool,
    /// The longest silence after the first alert: the review's most telling gap.
    pub longest: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct CandidateView {
    pub id: String,
    pub name: String,
    pub href: Option<String>,
    pub kind: String,
    pub confidence: &'static str,
    pub evidence: Vec<String>,
    pub software: Vec<Link>,
    pub techniques: Vec<Link>,
    /// The incident's techniques its known software is known for and it is not.
    pub via_software: Vec<Link>,
    pub against: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct AlertRow {
    pub raised: String,
    pub title: String,
    pub href: Option<String>,
    pub severity: String,
    pub product: String,
    pub techniques: Vec<Link>,
}

/// Everything the HTML template lays out, in REVIEW-V2 §6's order.
#[derive(Debug, Clone, Serialize)]
pub struct EmailView {
    pub title: String,
    pub outcome: String,
    /// `attack` (a true positive), `benign` (false positive, expected activity) or `open`
    /// (not classified): the headline's colour.
    pub tone: &'static str,
    pub severity: String,
    /// "Incident 1077 (file, resolution 1)", "created …", "tags: …".
    pub facts: Vec<String>,
    pub incident_link: Option<String>,
    pub warnings: Vec<String>,
    pub notes: Vec<String>,
    pub summary: Vec<SummaryLine>,
    pub strip: Vec<Stage>,
    pub scope: Vec<String>,
    pub follow_ups: Vec<FollowUpView>,
    pub follow_ups_total: usize,
    pub more_follow_ups: Vec<FollowUpView>,
    /// What the retro-hunts found (empty until they ran).
    pub retro_hunts: Vec<BlockView>,
    pub response: Vec<BlockView>,
    pub timeline: Vec<TimelineRow>,
    pub timeline_more: usize,
    pub timeline_untimed: usize,
    pub times: Vec<BlockView>,
    pub similar: Vec<BlockView>,
    pub matrix: Vec<MatrixRow>,
    pub not_blind: Vec<String>,
    pub gaps: Vec<BlockView>,
    pub attribution_note: Option<String>,
    pub attribution: Vec<CandidateView>,
    pub alerts: Vec<AlertRow>,
    pub appendix: Vec<BlockView>,
    pub footer: String,
    /// Set when the full e-mail would pass the size budget: the template leaves out the hunt
    /// queries and the comments (they are in the attached JSON) and says so.
    pub compact: bool,
}

/// `url` if it is an https address on a Defender portal host.
fn portal(url: Option<&str>) -> Option<String> {
    url.and_then(|u| crate::notify::presets::portal_link(u, crate::notify::presets::DEFAULT_PORTAL_HOSTS))
}

/// ATT&CK's page of a technique ("T1059.001" → …/techniques/T1059/001/), group (G…), campaign
/// (C…), software (S…) or mitigation (M…), for IDs of the exact shape only.
pub fn attack_url(id: &str) -> Option<String> {
    let digits = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_digit());
    let (head, rest) = id.split_at_checked(1)?;
    match head {
        "T" => {
            let (base, sub) = match rest.split_once('.') {
                Some((b, s)) if digits(s, 3) => (b, Some(s)),
                Some(_) => return None,
                None => (rest, None),
            };
            if !digits(base, 4) {
                return None;
            }
            Some(match sub {
                Some(s) => format!("https://attack.mitre.org/techniques/T{base}/{s}/"),
                None => format!("https://attack.mitre.org/techniques/T{base}/"),
            })
        }
        "G" | "C" | "S" | "M" if digits(rest, 4) => {
            let kind = match head {
                "G" => "groups",
                "C" => "campaigns",
                "S" => "software",
                _ => "mitigations",
            };
            Some(format!("https://attack.mitre.org/{kind}/{id}/"))
        }
        _ => None,
    }
}

fn state(s: StageState) -> &'static str {
    match s {
        StageState::Observed => "observed",
        StageState::Blind => "blind",
        StageState::Outside => "outside",
    }
}

impl EmailView {
    pub fn of(r: &Review) -> EmailView {
        let i = &r.incident;
        let outcome = if r.story.outcome.headline.is_empty() {
            format!("{} / {} · status {}", i.classification, i.determination, i.status)
        } else {
            r.story.outcome.headline.clone()
        };
        let tone = if is_benign(r) {
            "benign"
        } else if i.classification == "truePositive" {
            "attack"
        } else {
            "open"
        };
        let mut facts = vec![
            format!("Incident {} ({}, resolution {})", i.id, i.source, i.revision),
            format!("created {}", super::ts(&i.created)),
            format!("resolved {}", super::ts(&i.resolved)),
        ];
        if let Some(o) = &i.owner {
            facts.push(format!("owner {o}"));
        }
        if !i.tags.is_empty() {
            facts.push(format!("tags: {}", i.tags.join(", ")));
        }
        let mut notes = Vec::new();
        if let Some(n) = i.alerts_reviewed {
            notes.push(format!(
                "Only the first {n} alerts of {} were reviewed (review.max_alerts): every finding below leaves the others out.",
                i.alerts
            ));
        }
        if let Some(c) = &r.story.outcome.resolving_comment {
            notes.push(format!("Resolving comment: “{c}”"));
        }
        match &r.story.root_cause {
            Some(rc) => notes.push(format!(
                "Root cause, as recorded{}: “{}”",
                rc.author.as_ref().map(|a| format!(" by {a}")).unwrap_or_default(),
                rc.text
            )),
            None if !is_benign(r) => notes.push("Root cause: not recorded.".into()),
            None => {}
        }
        let follow_up = |(k, f): (usize, &FollowUp)| FollowUpView {
            n: k + 1,
            priority: super::priority(f.priority),
            title: f.title.clone(),
            detail: f.detail.clone(),
            done_when: f.done_when.clone(),
            owner: f.owner.clone(),
            due: f.due.map(|d| d.to_string()),
        };
        let (timeline, timeline_more) = timeline(r);
        let mut not_blind = Vec::new();
        for t in r.tactics.iter().filter(|t| t.state != StageState::Blind) {
            if let Some(why) = &t.reason {
                not_blind.push(format!("{} is not a blind stage: {why}", t.name));
            }
        }
        // The attack-chain table is left out: the matrix says the same, linked and coloured.
        let gaps_blocks = super::detection_gaps(r, Hunts::Appendix);
        let mut appendix: Vec<BlockView> = super::scope(r).into_iter().skip(1).map(BlockView::from).collect();
        if !appendix.is_empty() {
            appendix.insert(0, Block::Heading(3, "Entities".into()).into());
        }
        appendix.extend(blocks(comments(r)));
        appendix.extend(blocks(gaps::hunt_appendix(r)));
        EmailView {
            title: i.title.clone(),
            outcome,
            tone,
            severity: i.severity.clone(),
            facts,
            incident_link: portal(i.url.as_deref()),
            warnings: r.warnings.iter().map(|w| w.message.clone()).collect(),
            notes,
            summary: summary(r),
            strip: r
                .tactics
                .iter()
                .map(|t| Stage {
                    name: t.name.clone(),
                    shortname: t.shortname.clone(),
                    state: state(t.state),
                    techniques: match t.state {
                        StageState::Blind => {
                            r.gaps.blind_stages.iter().find(|b| b.tactic == t.shortname).map_or(0, |b| b.likely.len())
                        }
                        _ => t.techniques.len(),
                    },
                })
                .collect(),
            scope: scope_lines(r),
            follow_ups: r.follow_ups.iter().enumerate().take(FOLLOW_UPS_SHOWN).map(follow_up).collect(),
            follow_ups_total: r.follow_ups.len(),
            more_follow_ups: r.follow_ups.iter().enumerate().skip(FOLLOW_UPS_SHOWN).map(follow_up).collect(),
            retro_hunts: blocks(gaps::retro_hunts(r)),
            response: blocks(super::response(r)),
            timeline,
            timeline_more,
            timeline_untimed: r.timeline_untimed,
            times: blocks(super::times(r)),
            similar: blocks(super::similar(r)),
            matrix: matrix(r),
            not_blind,
            gaps: blocks(gaps_blocks),
            attribution_note: (!r.attribution.is_empty() || r.attribution_note == crate::review::NO_RESEMBLANCE)
                .then(|| r.attribution_note.clone()),
            attribution: r.attribution.iter().map(candidate).collect(),
            alerts: r
                .alerts
                .iter()
                .map(|a| AlertRow {
                    raised: a.created.as_ref().map_or("—".into(), short),
                    title: a.title.clone(),
                    href: portal(a.url.as_deref()),
                    severity: a.severity.clone(),
                    product: a.product.clone(),
                    techniques: a.techniques.iter().map(|t| Link { text: t.clone(), href: attack_url(t) }).collect(),
                })
                .collect(),
            appendix,
            footer: super::made_against(r),
            compact: false,
        }
    }
}

/// Lists longer than this are cut in a compact e-mail, the rest left to the attached JSON.
const COMPACT_LIST: usize = 40;

impl EmailView {
    /// The e-mail for a review too large to send whole: no entities, comments or queries, and
    /// every list cut to its first [`COMPACT_LIST`] entries with a line saying how many more
    /// the attached review.json holds (an incident of thousands of alerts stays readable).
    pub fn compact(&mut self) {
        self.compact = true;
        let more = |n: usize| format!("… and {n} more in the attached review.json");
        if self.alerts.len() > COMPACT_LIST {
            let n = self.alerts.len() - COMPACT_LIST;
            self.alerts.truncate(COMPACT_LIST);
            self.alerts.push(AlertRow {
                raised: String::new(),
                title: more(n),
                href: None,
                severity: String::new(),
                product: String::new(),
                techniques: vec![],
            });
        }
        for b in self.response.iter_mut().chain(&mut self.times).chain(&mut self.similar).chain(&mut self.gaps) {
            if b.items.len() > COMPACT_LIST {
                let n = b.items.len() - COMPACT_LIST;
                b.items.truncate(COMPACT_LIST);
                b.items.push(more(n));
            }
            if b.rows.len() > COMPACT_LIST {
                let n = b.rows.len() - COMPACT_LIST;
                b.rows.truncate(COMPACT_LIST);
                let mut row = vec![String::new(); b.head.len()];
                if let Some(first) = row.first_mut() {
                    *first = more(n);
                }
                b.rows.push(row);
            }
        }
        self.appendix.clear();
    }
}

fn summary(r: &Review) -> Vec<SummaryLine> {
    if r.story.summary.is_empty() {
        return vec![SummaryLine {
            lead: None,
            text: format!(
                "{} alert(s), {} ATT&CK technique(s). Time to detect {}; time to resolve {}.",
                r.incident.alerts,
                r.techniques.iter().filter(|t| t.name.is_some()).count(),
                duration(r.metrics.time_to_detect_s),
                duration(r.metrics.time_to_resolve_s)
            ),
        }];
    }
    r.story
        .summary
        .iter()
        .map(|line| match line.split_once(": ") {
            // "Impact: …": the lead in bold, as the five lines are read down their first words.
            Some((lead, rest)) if lead.len() <= 24 && !lead.contains(['.', ',']) => {
                SummaryLine { lead: Some(format!("{lead}:")), text: rest.to_owned() }
            }
            _ => SummaryLine { lead: None, text: line.clone() },
        })
        .collect()
}

/// The entity counts and the products that saw them: the lines of the scope a reader needs first.
fn scope_lines(r: &Review) -> Vec<String> {
    super::entity_counts(r).into_iter().chain(super::seen_by(r)).collect()
}

/// The first entries with the silences of four hours or more as rows of their own, the longest
/// after the first alert marked; and how many entries are left out.
fn timeline(r: &Review) -> (Vec<TimelineRow>, usize) {
    let (gaps, longest) = super::silences(r);
    let mut rows = Vec::new();
    let shown = r.timeline.len().min(TIMELINE_SHOWN);
    for (k, e) in r.timeline.iter().enumerate().take(shown) {
        rows.push(TimelineRow { at: short(&e.at), text: e.text.clone(), silence: false, longest: false });
        if let Some(&g) = gaps.get(k)
            && g >= super::SILENCE_S
            && k + 1 < shown
        {
            let is_longest = Some(k) == longest;
            let mark = if is_longest { " — the longest silence after the first alert" } else { "" };
            rows.push(TimelineRow {
                at: String::new(),
                text: format!("{} with nothing recorded{mark}", duration(Some(g))),
                silence: true,
                longest: is_longest,
            });
        }
    }
    // The longest silence past the entries shown is still the fact to see: said after them.
    if let Some(k) = longest
        && k + 1 >= shown
    {
        rows.push(TimelineRow {
            at: short(&r.timeline[k].at),
            text: format!(
                "later: {} with nothing recorded after “{}” — the longest silence after the first alert",
                duration(gaps.get(k).copied()),
                r.timeline[k].text
            ),
            silence: true,
            longest: true,
        });
    }
    (rows, r.timeline.len() - shown)
}

/// The incident's techniques under their tactics, in kill-chain order, each with what covered it.
fn matrix(r: &Review) -> Vec<MatrixRow> {
    r.tactics
        .iter()
        .filter(|t| !t.techniques.is_empty())
        .map(|t| MatrixRow {
            tactic: t.name.clone(),
            state: state(t.state),
            techniques: t
                .techniques
                .iter()
                .map(|id| {
                    let finding = r.techniques.iter().find(|f| &f.id == id);
                    let cov = r.gaps.coverage.iter().find(|c| &c.technique == id);
                    MatrixTechnique {
                        id: id.clone(),
                        name: finding.and_then(|f| f.name.clone()).unwrap_or_else(|| "(unknown to ATT&CK)".into()),
                        href: finding.filter(|f| f.name.is_some()).and_then(|_| attack_url(id)),
                        coverage: match cov.map(|c| c.state) {
                            Some(CoverageState::Vendor | CoverageState::Both) => "detected",
                            Some(CoverageState::Inventory) => "rule",
                            Some(CoverageState::None) => "none",
                            None => "unknown",
                        },
                    }
                })
                .collect(),
        })
        .collect()
}

fn candidate(c: &Candidate) -> CandidateView {
    let kind = match c.kind {
        CandidateKind::Group => "group".to_owned(),
        CandidateKind::Campaign if c.attributed_to.is_empty() => "campaign".to_owned(),
        CandidateKind::Campaign => format!("campaign attributed to {}", c.attributed_to.join(", ")),
    };
    let mut evidence = Vec::new();
    if let Some(a) = &c.actor_match {
        evidence.push(format!("alerts name the actor “{a}”"));
    }
    match (c.shared_techniques.len(), c.techniques_via_software.len()) {
        (0, 0) => {}
        (n, 0) => evidence.push(format!("shares {n} of the incident's techniques (strength {:.2})", c.score)),
        (0, v) => evidence
            .push(format!("{v} of the incident's techniques through the software it uses (strength {:.2})", c.score)),
        (n, v) => evidence.push(format!(
            "shares {n} of the incident's techniques and {v} more through the software it uses (strength {:.2})",
            c.score
        )),
    }
    CandidateView {
        id: c.id.clone(),
        name: c.name.clone(),
        href: attack_url(&c.id),
        kind,
        confidence: c.confidence.as_str(),
        evidence,
        software: c
            .software
            .iter()
            .map(|s| Link {
                text: format!("{} {} (named as “{}”)", s.id, s.name, s.matched), href: attack_url(&s.id)
            })
            .collect(),
        techniques: c.shared_techniques.iter().map(|t| Link { text: t.clone(), href: attack_url(t) }).collect(),
        via_software: c.techniques_via_software.iter().map(|t| Link { text: t.clone(), href: attack_url(t) }).collect(),
        against: c.against.clone(),
    }
}

fn comments(r: &Review) -> Vec<Block> {
    if r.incident.comments.is_empty() {
        return vec![];
    }
    vec![Block::Heading(3, "Comments".into()), Block::Bullets(super::comment_lines(r))]
}

#[cfg(test)]
mod tests {
    use super::attack_url;

    #[test]
    fn attack_links_only_for_ids_of_the_expected_shape() {
        assert_eq!(attack_url("T1059.001").as_deref(), Some("https://attack.mitre.org/techniques/T1059/001/"));
        assert_eq!(attack_url("T1133").as_deref(), Some("https://attack.mitre.org/techniques/T1133/"));
        assert_eq!(attack_url("G0016").as_deref(), Some("https://attack.mitre.org/groups/G0016/"));
        assert_eq!(attack_url("C0027").as_deref(), Some("https://attack.mitre.org/campaigns/C0027/"));
        assert_eq!(attack_url("S0154").as_deref(), Some("https://attack.mitre.org/software/S0154/"));
        for bad in ["T1059.1", "T10590", "t1059", "G16", "X0001", "T1059/../x", "", "T", "S0154?x=1", "Té059"] {
            assert_eq!(attack_url(bad), None, "{bad}");
        }
    }
}
