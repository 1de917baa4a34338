//! The back-room page: `GET /` and its assets under `/ui/`, compiled into the binary.
//!
//! Plain HTML, CSS and JavaScript modules, no build step: what is in `src/ui/` is what the
//! browser gets. The page talks only to the JSON API of the server it came from; the
//! Content-Security-Policy on every asset says so to the browser, which then refuses any other
//! host, inline script or style, plugin and framing. Print-sheet barcodes arrive as `blob:`
//! images fetched with the bearer token (an `<img src>` cannot send one).

use crate::web::response::Reply;

/// Only this server: scripts, styles, fetches and images (plus the `blob:` URLs the page makes
/// of fetched barcode SVGs); no plugins, no `<base>`, no framing, forms post nowhere else.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; \
     style-src 'self'; img-src 'self' blob:; connect-src 'self'; font-src 'self'; \
     object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

const JS: &str = "text/javascript; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";

/// (file name under `/ui/`, content type, contents).
const ASSETS: &[(&str, &str, &str)] = &[
    ("app.css", CSS, include_str!("app.css")),
    ("app.js", JS, include_str!("app.js")),
    ("api.js", JS, include_str!("api.js")),
    ("dom.js", JS, include_str!("dom.js")),
    ("voucher.js", JS, include_str!("voucher.js")),
    ("issue.js", JS, include_str!("issue.js")),
    ("sheet.js", JS, include_str!("sheet.js")),
    ("dashboard.js", JS, include_str!("dashboard.js")),
    ("webhooks.js", JS, include_str!("webhooks.js")),
    ("favicon.svg", "image/svg+xml", include_str!("favicon.svg")),
];

const INDEX: &str = include_str!("index.html");

/// `GET /`: the page.
pub fn page() -> Reply {
    with_policy(Reply::bytes(
        200,
        "text/html; charset=utf-8",
        INDEX.as_bytes().to_vec(),
    ))
}

/// `GET /ui/NAME`: one asset, or `None` for a name that is not one.
pub fn asset(name: &str) -> Option<Reply> {
    ASSETS
        .iter()
        .find(|(file, _, _)| *file == name)
        .map(|(_, content_type, body)| {
            with_policy(Reply::bytes(200, content_type, body.as_bytes().to_vec()))
        })
}

fn with_policy(reply: Reply) -> Reply {
    // `no-cache`: a browser revalidates, so a new binary's page is used at once.
    reply
        .with_header("Content-Security-Policy", CONTENT_SECURITY_POLICY)
        .with_header("X-Content-Type-Options", "nosniff")
        .with_header("Referrer-Policy", "no-referrer")
        .with_header("X-Frame-Options", "DENY")
        .with_header("Cache-Control", "no-cache")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Names after `/ui/` (in the page and the stylesheet) and after `from './'` (imports).
    fn named_files() -> Vec<String> {
        let mut named = Vec::new();
        for (_, _, body) in ASSETS.iter().chain([&("index.html", "", INDEX)]) {
            for part in body.split("/ui/").skip(1) {
                let name: String = part
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '.' || *c == '-')
                    .collect();
                named.push(name.trim_end_matches('.').to_string());
            }
            for part in body.split("from './").skip(1) {
                named.push(part.chars().take_while(|c| *c != '\'').collect());
            }
        }
        named.retain(|name| !name.is_empty());
        named
    }

    #[test]
    fn every_file_the_page_names_is_served() {
        let named = named_files();
        assert!(named.iter().any(|n| n == "app.js"));
        assert!(named.iter().any(|n| n == "voucher.js"));
        for name in named {
            assert!(
                asset(&name).is_some(),
                "/ui/{name} is referenced but not served"
            );
        }
    }

    #[test]
    fn nothing_points_at_another_host() {
        for (name, _, body) in ASSETS.iter().chain([&("index.html", "", INDEX)]) {
            for scheme in ["http://", "https://", "//fonts.", "@import"] {
                // The SVG namespace is a name, not a request.
                let stripped = body.replace("http://www.w3.org/2000/svg", "");
                assert!(!stripped.contains(scheme), "{name} mentions {scheme}");
            }
        }
    }
}
