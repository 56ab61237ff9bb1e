//! `_redirects`: Netlify-style rules applied before static files (docs/serving.md).

use crate::support::Node;

const RULES: &str = "\
# Netlify-style rules
/home              /                      301
/old-blog/*        /blog/:splat           302
/blog/:year/:month /posts/:year-:month.html 301
/app/*             /app/index.html        200
/page.html         /forced.html           200!
/store id=:id      /products/:id          301
/closed/*          /gone.html             404
/go/*              /:splat                302
/docs/*            https://docs.example.com/:splat 308
";

fn node() -> Node {
    let node = Node::in_process();
    let resp = node.deploy_files(
        "site",
        &[
            ("_redirects", RULES.as_bytes()),
            ("index.html", b"home"),
            ("page.html", b"the page"),
            ("forced.html", b"forced"),
            ("app/index.html", b"the app"),
            ("posts/2024-05.html", b"may"),
            ("gone.html", b"gone"),
            ("404.html", b"site 404"),
        ],
    );
    assert_eq!(resp.status, 200, "{}", resp.text());
    node
}

#[test]
fn rules_apply_before_static_files() {
    let node = node();
    let get = |path: &str| node.get("site.localhost", path);

    let home = get("/home");
    assert_eq!(home.status, 301);
    assert_eq!(home.header("location"), Some("/"));
    assert!(home.body.is_empty());

    // A splat, and the query string carried along.
    let splat = get("/old-blog/2024/hello?x=1");
    assert_eq!(splat.status, 302);
    assert_eq!(splat.header("location"), Some("/blog/2024/hello?x=1"));

    let placeholder = get("/blog/2024/05");
    assert_eq!(placeholder.status, 301);
    assert_eq!(placeholder.header("location"), Some("/posts/2024-05.html"));

    // A rewrite serves the target's file under the requested URL.
    let rewrite = get("/app/settings/profile");
    assert_eq!((rewrite.status, rewrite.text().as_str()), (200, "the app"));
    assert!(rewrite.header("location").is_none());

    // A forced rule wins over an existing file; existing files win over the others.
    assert_eq!(get("/page.html").text(), "forced");
    assert_eq!(get("/app/index.html").text(), "the app");

    let query = get("/store?id=42");
    assert_eq!(query.status, 301);
    assert_eq!(query.header("location"), Some("/products/42"));
    // Without the parameter the rule does not match: the site's 404.
    assert_eq!(get("/store").status, 404);

    let custom = get("/closed/anything");
    assert_eq!((custom.status, custom.text().as_str()), (404, "gone"));
    assert_eq!(custom.header("cache-control"), Some("no-store"));

    // No rule: the usual 404.
    let missing = get("/nothing-here");
    assert_eq!((missing.status, missing.text().as_str()), (404, "site 404"));

    // External targets are allowed (the owner wrote them).
    let ext = get("/docs/a/b");
    assert_eq!(ext.status, 308);
    assert_eq!(ext.header("location"), Some("https://docs.example.com/a/b"));

    // The rules file itself is not served.
    assert_eq!(get("/_redirects").status, 404);
}

#[test]
fn placeholder_values_cannot_leave_the_site_or_split_headers() {
    let node = node();
    let get = |path: &str| node.get("site.localhost", path);
    // A backslash names no file, and matches no rule either.
    assert_eq!(get("/go/%5Cevil.com").status, 404);
    for path in ["/go//evil.com", "/go/%2F%2Fevil.com", "/go/%2fevil.com", "/go/.//evil.com"] {
        let resp = get(path);
        assert_eq!(resp.status, 302, "{path}");
        let location = resp.header("location").unwrap();
        assert!(location.starts_with('/') && !location.starts_with("//"), "{path}: {location}");
        assert!(!location.contains('\\'), "{path}: {location}");
    }
    let resp = get("/go/a%0d%0aSet-Cookie:%20x=1");
    assert_eq!(resp.status, 302);
    assert!(resp.header("set-cookie").is_none());
    assert_eq!(resp.header("location"), Some("/a%0D%0ASet-Cookie:%20x%3D1"));
}

#[test]
fn a_malformed_file_refuses_the_deploy() {
    let node = Node::in_process();
    let resp =
        node.deploy_files("site", &[("_redirects", b"/ok /fine\n/bad /x 418\n"), ("index.html", b"home")]);
    assert_eq!(resp.status, 400, "{}", resp.text());
    assert_eq!(resp.code(), "bad_redirects");
    assert!(resp.text().contains("line 2"), "{}", resp.text());
    // Nothing was deployed.
    assert_eq!(node.get("site.localhost", "/").status, 404);

    let huge = "/a /b\n".repeat(20_000);
    let resp = node.deploy_files("site", &[("_redirects", huge.as_bytes()), ("index.html", b"home")]);
    assert_eq!(resp.code(), "bad_redirects", "{}", resp.text());
}
