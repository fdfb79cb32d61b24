//! The e-mail templates (minijinja) and what they are given: the built-in ones in `templates/`,
//! any of them replaced by a file of the same name in an e-mail destination's `templates_dir`.
//! The HTML templates own the layout; Rust hands them a view of the review or digest with
//! everything chosen, ordered and linked ([`crate::review::render::view`],
//! [`crate::digest::view`]), and keeps the HTML part within [`HTML_BUDGET_BYTES`].

use std::path::Path;
use std::sync::LazyLock;

use crate::config::Invalid;
use crate::digest::Digest;
use crate::review::Review;

/// Gmail clips an HTML part past 102 KB ("[Message clipped]", the rest behind a link): a review
/// e-mail over this size is rendered compact, its appendix left to the attached JSON.
pub const HTML_BUDGET_BYTES: usize = 100 * 1024;

const TEMPLATES: [(&str, &str); 7] = [
    ("macros.html.j2", include_str!("../../templates/macros.html.j2")),
    ("review.subject.j2", include_str!("../../templates/review.subject.j2")),
    ("review.txt.j2", include_str!("../../templates/review.txt.j2")),
    ("review.html.j2", include_str!("../../templates/review.html.j2")),
    ("digest.subject.j2", include_str!("../../templates/digest.subject.j2")),
    ("digest.txt.j2", include_str!("../../templates/digest.txt.j2")),
    ("digest.html.j2", include_str!("../../templates/digest.html.j2")),
];

/// The three parts of a message.
#[derive(Debug, Clone)]
pub struct Rendered {
    pub subject: String,
    pub text: String,
    pub html: String,
    /// The HTML was rendered compact to stay within [`HTML_BUDGET_BYTES`].
    pub compact: bool,
}

pub struct Templates {
    env: minijinja::Environment<'static>,
}

static BUILTIN: LazyLock<Result<Templates, String>> =
    LazyLock::new(|| Templates::load(None).map_err(|e| format!("built-in {}: {}", e.key, e.message)));

impl Templates {
    /// The built-in templates, compiled once (tests render every sample with them).
    pub fn builtin() -> Result<&'static Templates, String> {
        BUILTIN.as_ref().map_err(Clone::clone)
    }

    /// The built-in templates, each replaced by the file of the same name in `dir` if there is
    /// one. A template that does not compile is an error naming the file and the line.
    pub fn load(dir: Option<&Path>) -> Result<Templates, Invalid> {
        let mut env = minijinja::Environment::new();
        for (name, builtin) in TEMPLATES {
            let source = match dir.map(|d| d.join(name)).filter(|p| p.is_file()) {
                Some(path) => std::fs::read_to_string(&path)
                    .map_err(|e| Invalid::new("templates_dir", format!("{}: {e}", path.display())))?,
                None => builtin.to_owned(),
            };
            env.add_template_owned(name, source).map_err(|e| Invalid::new("templates_dir", format!("{name}: {e}")))?;
        }
        // minijinja escapes HTML in templates whose name ends in .html; ours end in .html.j2.
        env.set_auto_escape_callback(|name| {
            if name.ends_with(".html.j2") { minijinja::AutoEscape::Html } else { minijinja::AutoEscape::None }
        });
        Ok(Templates { env })
    }

    /// Whether template `name` reads `body`, the whole document pre-rendered: only templates
    /// written before the view did, and rendering it for every message would be wasted.
    fn uses_body(&self, name: &str) -> bool {
        self.env.get_template(name).is_ok_and(|t| t.undeclared_variables(false).contains("body"))
    }

    fn render(&self, name: &str, ctx: &minijinja::Value) -> Result<String, String> {
        self.env.get_template(name).and_then(|t| t.render(ctx)).map_err(|e| format!("template {name}: {e:#}"))
    }

    /// Subject, text and HTML of a review's message; `id` is the notification's idempotency key.
    pub fn review(&self, review: &Review, id: &str) -> Result<Rendered, String> {
        use crate::review::render;
        let value = minijinja::Value::from_serialize(review);
        let mut view = render::view::EmailView::of(review);
        let ctx = |body: String, view: &render::view::EmailView| {
            minijinja::context! { review => value.clone(), id => id, body => body, view => minijinja::Value::from_serialize(view) }
        };
        let subject = self.render("review.subject.j2", &ctx(String::new(), &view))?;
        let text = self.render("review.txt.j2", &ctx(render::text(review), &view))?;
        let fragment = if self.uses_body("review.html.j2") { render::html_fragment(review) } else { String::new() };
        let mut html = self.render("review.html.j2", &ctx(fragment.clone(), &view))?;
        if html.len() > HTML_BUDGET_BYTES {
            view.compact();
            html = self.render("review.html.j2", &ctx(fragment, &view))?;
        }
        Ok(Rendered { subject: one_line_subject(&subject), text, html, compact: view.compact })
    }

    /// Subject, text and HTML of a digest's message.
    pub fn digest(&self, digest: &Digest, id: &str) -> Result<Rendered, String> {
        use crate::digest::render;
        let value = minijinja::Value::from_serialize(digest);
        let view = minijinja::Value::from_serialize(crate::digest::view::DigestView::of(digest));
        let ctx = |body: String| minijinja::context! { digest => value.clone(), id => id, body => body, view => view.clone() };
        let subject = self.render("digest.subject.j2", &ctx(String::new()))?;
        let text = self.render("digest.txt.j2", &ctx(render::text(digest)))?;
        let fragment = if self.uses_body("digest.html.j2") { render::html_fragment(digest) } else { String::new() };
        let html = self.render("digest.html.j2", &ctx(fragment))?;
        Ok(Rendered { subject: one_line_subject(&subject), text, html, compact: false })
    }
}

/// The longest Subject sent, in characters: a mail client shows far less, and once encoded
/// (RFC 2047, up to 4 bytes a character) and folded it stays well within RFC 5322's 998.
pub const SUBJECT_MAX_CHARS: usize = 200;

/// One line without control characters (an incident title may carry CR/LF, ESC or BEL), and
/// short: a 100 KB title made a 100 KB header, past RFC 5322's 998-character line limit, which
/// relays refuse, so the mail was dead-lettered.
fn one_line_subject(s: &str) -> String {
    crate::text::clip(&crate::text::one_line(s), SUBJECT_MAX_CHARS).into_owned()
}
