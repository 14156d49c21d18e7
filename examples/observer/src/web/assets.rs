//! The web view's files, built into the binary: the page, its script and
//! style (`examples/observer/ui/`), and Cytoscape.js, vendored at a pinned
//! version whose checksum the build verifies (`build.rs`, against
//! `ui/vendor/cytoscape.lock`). Nothing is fetched from elsewhere: the
//! page's content security policy allows only its own origin.

use edgewise_http_server::Reply;

/// What every file of the view is sent with: only this origin, no
/// framing, no sniffing. The one inline style allowed, by its hash, is the
/// one Cytoscape.js 3.35.0 adds for its container (the browser test fails
/// on any other).
pub const HEADERS: &[(&str, &str)] = &[
    (
        "content-security-policy",
        "default-src 'none'; script-src 'self'; style-src 'self' 'sha256-pgvDUBa4IjFA2yuSJ2cqcyxmNYJMborsd0ORcRv9vw8='; img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
    ),
    ("x-content-type-options", "nosniff"),
    ("referrer-policy", "no-referrer"),
    ("cache-control", "no-cache"),
];

const INDEX: &str = include_str!("../../ui/index.html");
const APP: &str = include_str!("../../ui/app.js");
const STYLE: &str = include_str!("../../ui/style.css");
const CYTOSCAPE: &str = include_str!("../../ui/vendor/cytoscape.min.js");

/// The file at `path` (`/ui`, `/ui/`, `/ui/app.js`, ...), if it is one.
pub fn asset(path: &str) -> Option<Reply> {
    let (content_type, body) = match path {
        "/ui" | "/ui/" | "/ui/index.html" => ("text/html; charset=utf-8", INDEX),
        "/ui/app.js" => ("text/javascript; charset=utf-8", APP),
        "/ui/style.css" => ("text/css; charset=utf-8", STYLE),
        "/ui/cytoscape.min.js" => ("text/javascript; charset=utf-8", CYTOSCAPE),
        _ => return None,
    };
    Some(Reply::ok(content_type, body).with_headers(HEADERS))
}
