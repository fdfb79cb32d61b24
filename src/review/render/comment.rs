//! The review as a comment on the Defender incident (write-back) and the tags that go with it.
//!
//! The comment is for the analyst who opens the incident in the portal: the outcome, the
//! summary, the stages nobody saw, the first follow-ups and a link to the full review. How
//! Defender renders a comment (Markdown or not) and how long one may be are not documented, so
//! it is plain text, one item per line, and at most [`MAX_COMMENT_CHARS`] characters. Its
//! first line is a fixed marker naming the revision: a retried write finds it among the
//! incident's comments and does not post the review twice (comments cannot be edited or
//! deleted through the API).

use crate::review::Review;
use crate::text::{clip, one_line};

/// Longest comment written; anything past it is cut at a line, with a pointer to the review.
pub const MAX_COMMENT_CHARS: usize = 2000;

/// Every tag Hindsight writes starts with this; tags without it are the analysts' and are kept.
pub const TAG_PREFIX: &str = "hindsight:";

/// Follow-ups listed in the comment.
const FOLLOW_UPS_SHOWN: usize = 3;

/// The first line of the comment of `revision`: what a retry looks for.
pub fn marker(revision: u32) -> String {
    format!("[Hindsight review r{revision}]")
}

/// The revision whose review `comment` is (its first line is that revision's marker).
pub fn marker_revision(comment: &str) -> Option<u32> {
    let first = comment.trim_start().lines().next()?.trim();
    first.strip_prefix("[Hindsight review r")?.strip_suffix(']')?.parse().ok()
}

/// Whether an incident comment is the one written for `revision`.
pub fn is_marked(comment: &str, revision: u32) -> bool {
    marker_revision(comment) == Some(revision)
}

/// The comment for `review`, at most [`MAX_COMMENT_CHARS`] characters.
pub fn comment(review: &Review) -> String {
    let mut lines = vec![marker(review.incident.revision)];
    let headline = review.story.outcome.headline.trim();
    if !headline.is_empty() {
        lines.push(clip(&one_line(headline), 300).into_owned());
    }
    lines.extend(review.story.summary.iter().map(|s| format!("• {}", clip(&one_line(s), 450))));
    if !review.gaps.blind_stages.is_empty() {
        let names: Vec<&str> = review.gaps.blind_stages.iter().map(|b| b.name.as_str()).collect();
        lines.push(format!("Not seen by any alert: {}.", names.join(", ")));
    }
    if !review.follow_ups.is_empty() {
        let shown = review.follow_ups.len().min(FOLLOW_UPS_SHOWN);
        lines.push(format!("Follow-ups ({shown} of {}):", review.follow_ups.len()));
        for (n, f) in review.follow_ups.iter().take(FOLLOW_UPS_SHOWN).enumerate() {
            let priority = super::priority(f.priority);
            lines.push(format!("{}. [{priority}] {} ({})", n + 1, clip(&one_line(&f.title), 200), f.id));
        }
    }
    let link = match &review.incident.review_url {
        Some(url) => format!("Full review: {url}"),
        None => "The full review was sent to the team by Hindsight.".to_owned(),
    };
    let tail = if review.follow_ups.is_empty() {
        link
    } else {
        format!("{link}\nMark a follow-up done with a comment here: done FU-…")
    };
    fit(lines, &tail)
}

/// `lines` and `tail` joined, dropping lines from the end (never the marker or the tail) until
/// the whole fits [`MAX_COMMENT_CHARS`].
fn fit(mut lines: Vec<String>, tail: &str) -> String {
    let tail = clip(tail, 400);
    loop {
        let text = format!("{}\n{tail}", lines.join("\n"));
        if text.chars().count() <= MAX_COMMENT_CHARS || lines.len() <= 1 {
            return clip(&text, MAX_COMMENT_CHARS).into_owned();
        }
        lines.pop();
    }
}

/// The tags that say what the review found: `hindsight:reviewed`, and one
/// `hindsight:blind-<tactic>` per stage no alert showed.
pub fn tags(review: &Review) -> Vec<String> {
    let mut out = vec![format!("{TAG_PREFIX}reviewed")];
    for b in &review.gaps.blind_stages {
        let tactic: String = b
            .tactic
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
            .collect::<String>()
            .to_ascii_lowercase();
        if !tactic.is_empty() {
            out.push(format!("{TAG_PREFIX}blind-{tactic}"));
        }
    }
    out.dedup();
    out
}

/// The incident's tags with ours merged in: the analysts' tags kept in their order, the
/// `hindsight:` tags of an earlier revision replaced by this one's (a stage seen since is no
/// longer tagged blind).
pub fn merge_tags(current: &[String], ours: &[String]) -> Vec<String> {
    let mut out: Vec<String> = current.iter().filter(|t| !t.starts_with(TAG_PREFIX)).cloned().collect();
    for t in ours {
        if !out.contains(t) {
            out.push(t.clone());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_marker_is_recognised_on_the_first_line_only() {
        assert!(is_marked("[Hindsight review r2]\nTrue positive", 2));
        assert!(is_marked("  [Hindsight review r2]  \n", 2));
        assert!(!is_marked("[Hindsight review r1]\n", 2));
        assert!(!is_marked("see [Hindsight review r2]", 2));
        assert!(!is_marked("", 2));
    }

    #[test]
    fn analysts_tags_are_kept_and_ours_replaced() {
        let current: Vec<String> =
            ["Ransomware", "hindsight:reviewed", "hindsight:blind-execution"].iter().map(|s| s.to_string()).collect();
        let ours = vec!["hindsight:reviewed".to_owned(), "hindsight:blind-initial-access".to_owned()];
        assert_eq!(merge_tags(&current, &ours), ["Ransomware", "hindsight:reviewed", "hindsight:blind-initial-access"]);
    }

    #[test]
    fn a_long_comment_is_cut_at_a_line_and_keeps_its_marker_and_link() {
        let mut lines = vec![marker(1)];
        lines.extend((0..100).map(|i| format!("• line {i} {}", "x".repeat(60))));
        let text = fit(lines, "Full review: https://soc.example/r/1");
        assert!(text.chars().count() <= MAX_COMMENT_CHARS);
        assert!(text.starts_with("[Hindsight review r1]\n"));
        assert!(text.ends_with("\nFull review: https://soc.example/r/1"));
    }
}
