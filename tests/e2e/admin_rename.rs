//! Renaming an app from the admin dashboard's app list, in headless Chromium over
//! WebDriver (`crate::browser`).

use crate::browser::Browser;
use crate::support::Node;
use serde_json::json;

/// The message the API answers when `blog` is renamed to `name` (refused, so nothing
/// changes): what the dashboard must show.
fn refusal(node: &Node, name: &str) -> String {
    let resp = node.api("POST", "/api/apps/blog/rename", Some(&json!({ "name": name })));
    assert!(resp.status >= 400, "{}", resp.text());
    resp.json()["error"]["message"].as_str().unwrap().to_string()
}

#[test]
fn dashboard_renames_an_app_from_the_list_and_shows_the_apis_refusals() {
    let node = Node::start();
    for app in ["blog", "notes"] {
        assert_eq!(node.deploy_files(app, &[("index.html", app.as_bytes())]).status, 200);
    }
    let browser = Browser::start();
    browser.call("POST", "/url", Some(json!({ "url": format!("{}/", node.admin_url()) })));
    browser.type_into("#login-username", "admin");
    browser.type_into("#login-password", node.password.as_deref().unwrap());
    browser.click("#login-submit");
    let blog = "#apps-table tr[data-app=\"blog\"] .app-rename";
    browser.wait_for(blog);
    assert!(browser.exists("#apps-table tr[data-app=\"admin\"]"), "system apps are listed");
    assert!(!browser.exists("#apps-table tr[data-app=\"admin\"] .app-rename"), "but have no rename button");

    // Refused: the toast says what the API says, and the list is as it was.
    for (name, why) in [("notes", "taken"), ("Not A Name", "bad"), ("admin", "reserved")] {
        let message = refusal(&node, name);
        browser.click(blog);
        browser.answer_prompt(name);
        browser.wait_until(&format!("no toast for the {why} name {name}"), || {
            browser.exists("#toast.toast-error:not([hidden])") && browser.text_content("#toast") == message
        });
        assert!(browser.exists(blog), "{why}: blog keeps its name");
    }

    browser.click(blog);
    browser.answer_prompt("journal");
    browser.wait_for("#apps-table tr[data-app=\"journal\"] .app-rename");
    assert!(!browser.exists("#apps-table tr[data-app=\"blog\"]"), "the list was refreshed");
    assert_eq!(browser.text_content("#toast"), "Renamed blog to journal");
    assert_eq!(node.get("journal.localhost", "/").text(), "blog");
    assert_eq!(node.get("blog.localhost", "/").status, 404);
}
