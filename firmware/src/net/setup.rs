//! The first-boot setup page: how a node with no keyboard, screen or serial cable is
//! claimed from a browser on the LAN.
//!
//! While the node is unclaimed (see [`crate::security::setup`]) and `setup.page` lets the
//! client in, `GET /` of the node's own names (the dashboard host, the bare domain, the
//! IP address, `<name>.local`) shows a page with the one-time setup code and a form that
//! sets the admin password (`POST /api/setup`). A request that came through a proxy
//! (`Forwarded`, `X-Forwarded-For`, `X-Real-IP`) never counts as local: on a VPS a
//! reverse proxy on loopback would otherwise bring the internet in.

use super::api::read_json;
use super::host::Route;
use super::limits::HttpGuard;
use super::response::{ok, ApiError, Body, Resp};
use crate::kernel::Kernel;
use crate::security::sessions;
use crate::syscall::setup::Claim;
use crate::syscall::{self, Caller, SyscallError};
use bytes::Bytes;
use http::{header, HeaderValue, Method, Request, Response, StatusCode};
use hyper::body::Incoming;
use serde::Deserialize;
use std::net::SocketAddr;
use std::sync::Arc;

/// The setup endpoint's path.
const SETUP_PATH: &str = "/api/setup";

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SetupBody {
    code: String,
    #[serde(default)]
    username: Option<String>,
    password: String,
}

/// Answers the setup page or the setup endpoint; gives the request back when it is
/// neither (or the page is not for this client), so it is served as usual.
pub async fn intercept(
    kernel: &Arc<Kernel>,
    http: &HttpGuard,
    peer: SocketAddr,
    req: Request<Incoming>,
    route: &Route,
) -> Result<Resp, Request<Incoming>> {
    let own_host = match route {
        Route::Admin => true,
        // Before the claim nobody can deploy, so `root` is still fazt's own landing app
        // and `/api/setup` on it is ours; after it, the path belongs to the app.
        Route::App(name) => name == "root" && kernel.setup.maybe_unclaimed(),
        Route::Unknown => false,
    };
    if !own_host {
        return Err(req);
    }
    if req.uri().path() == SETUP_PATH {
        return Ok(post(kernel, http, peer, req).await.unwrap_or_else(ApiError::into_response));
    }
    let wants_page = req.uri().path() == "/"
        && matches!(*req.method(), Method::GET | Method::HEAD)
        && kernel.setup.maybe_unclaimed();
    if !wants_page {
        return Err(req);
    }
    match syscall::setup::code(&kernel.storage, &kernel.setup, &visitor(peer, &req)).await {
        Ok(Some(code)) => {
            tracing::warn!(%peer, "first-boot setup page shown");
            Ok(page(kernel, &code, *req.method() == Method::HEAD))
        }
        Ok(None) => Err(req),
        Err(SyscallError::Storage(err)) => {
            tracing::warn!(error = %err, "cannot read the setup state; serving the usual page");
            Err(req)
        }
        // Not for this client: the usual page.
        Err(_) => Err(req),
    }
}

/// The caller a client of the setup page is: its address, unless the request came
/// through a proxy (then its real address is unknown, and it never counts as local).
fn visitor(peer: SocketAddr, req: &Request<Incoming>) -> Caller {
    let proxied =
        ["forwarded", "x-forwarded-for", "x-real-ip"].iter().any(|h| req.headers().contains_key(*h));
    Caller::Visitor { ip: (!proxied).then_some(peer.ip()) }
}

/// `POST /api/setup`: checks the code, sets the admin password, claims the node.
async fn post(
    kernel: &Arc<Kernel>,
    http: &HttpGuard,
    peer: SocketAddr,
    req: Request<Incoming>,
) -> Result<Resp, ApiError> {
    let caller = visitor(peer, &req);
    syscall::setup::admit(&kernel.setup, &caller)?;
    if req.method() != Method::POST {
        let mut err = ApiError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            format!("{} is not allowed on {SETUP_PATH}", req.method()),
        );
        err.allow = Some("POST".into());
        return Err(err);
    }
    syscall::setup::still_open(&kernel.setup)?;
    // The page's script sends this header; a form on another site cannot.
    let csrf_header = req.headers().get("x-requested-with").is_some_and(|v| v.as_bytes() == b"fazt");
    if !csrf_header {
        return Err(ApiError::new(StatusCode::FORBIDDEN, "csrf", "missing X-Requested-With: fazt header"));
    }
    let secure = crate::net::over_tls(&req);
    let body: SetupBody = read_json(http, req).await?;
    let claim = Claim { code: &body.code, username: body.username.as_deref(), password: body.password };
    let (username, claimed) = syscall::setup::claim(
        &kernel.storage,
        &kernel.clock,
        &kernel.login_limiter,
        &kernel.setup,
        &caller,
        claim,
    )
    .await?;
    let dashboard = kernel.app_url("admin");
    let server = dashboard.trim_end_matches('/').to_string();
    let mut resp = ok(serde_json::json!({
        "user": username,
        "token": claimed.token,
        "dashboard": dashboard,
        "cli": format!("fazt client set-auth-token {} --server {server}", claimed.token),
    }));
    if let Ok(v) = HeaderValue::from_str(&sessions::set_cookie(&claimed.session, secure)) {
        resp.headers_mut().insert(header::SET_COOKIE, v);
    }
    Ok(resp)
}

/// The setup page: the code, the form, and what to do after.
fn page(kernel: &Kernel, code: &str, head_only: bool) -> Resp {
    let name = escape(&kernel.beacon.name());
    let dashboard = escape(&kernel.app_url("admin"));
    let html =
        PAGE.replace("{name}", &name).replace("{code}", &escape(code)).replace("{dashboard}", &dashboard);
    let body = if head_only { Bytes::new() } else { Bytes::from(html) };
    let mut resp = Response::new(Body::new(body));
    let headers = resp.headers_mut();
    let pairs = [
        (header::CONTENT_TYPE, "text/html; charset=utf-8"),
        (header::CACHE_CONTROL, "no-store"),
        (header::REFERRER_POLICY, "no-referrer"),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (
            header::CONTENT_SECURITY_POLICY,
            "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
        ),
    ];
    for (name, value) in pairs {
        headers.insert(name, HeaderValue::from_static(value));
    }
    resp
}

/// Escapes text for HTML (the values are DNS names and the code, but the page must not
/// depend on that).
fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

const PAGE: &str = r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Set up fazt {name}</title>
<style>
body{font:16px/1.5 system-ui,sans-serif;max-width:34rem;margin:2rem auto;padding:0 1rem;color:#222}
code,.code{font-family:ui-monospace,monospace}.code{font-size:1.6rem;letter-spacing:.08em;background:#f3f3f3;padding:.2rem .5rem}
label{display:block;margin:.6rem 0 .2rem}input{font:inherit;width:100%;box-sizing:border-box;padding:.4rem}
button{font:inherit;margin-top:1rem;padding:.5rem 1rem}#msg{margin-top:1rem}.err{color:#b00020}
pre{background:#f3f3f3;padding:.5rem;white-space:pre-wrap;word-break:break-all}
</style></head><body>
<h1>Set up fazt <code>{name}</code></h1>
<p>Nobody has claimed this node yet. Choose the admin password now. This page is shown
only to this network and only until the admin logs in.</p>
<p>Setup code: <span class="code" id="code">{code}</span><br>
<small>It is printed on the serial console too. It works once.</small></p>
<form id="f">
<label for="u">Admin user name</label><input id="u" name="u" value="admin" autocomplete="username">
<label for="p">New password (8 characters or more)</label><input id="p" type="password" autocomplete="new-password" required minlength="8">
<label for="p2">The same password again</label><input id="p2" type="password" autocomplete="new-password" required minlength="8">
<button type="submit">Set the password</button>
</form>
<div id="msg"></div>
<script>
const f=document.getElementById('f'),msg=document.getElementById('msg');
function show(cls,text){msg.className=cls;msg.textContent=text;}
f.addEventListener('submit',async e=>{
  e.preventDefault();
  const p=document.getElementById('p').value;
  if(p!==document.getElementById('p2').value){show('err','The two passwords differ.');return;}
  let r,j;
  try{
    r=await fetch('/api/setup',{method:'POST',headers:{'Content-Type':'application/json','X-Requested-With':'fazt'},
      body:JSON.stringify({code:document.getElementById('code').textContent,username:document.getElementById('u').value,password:p})});
    j=await r.json();
  }catch(err){show('err','The node did not answer: '+err);return;}
  if(!r.ok){show('err',(j.error&&j.error.message)||('error '+r.status));return;}
  f.remove();
  msg.className='';
  msg.innerHTML='<p><b>Done.</b> Log in to the dashboard as <code></code> with your new password:</p><p><a></a></p>'
    +'<p>An API token for the CLI, shown only now:</p><pre></pre>'
    +'<p>The dashboard is served at <code>admin.&lt;domain&gt;</code>; from another computer, pick a domain in fazt.toml and add it to that computer\'s hosts file (see docs/flash.md).</p>';
  msg.querySelector('code').textContent=j.user;
  const a=msg.querySelector('a');a.href=j.dashboard;a.textContent=j.dashboard;
  msg.querySelector('pre').textContent=j.cli;
});
</script>
<noscript><p>This page needs JavaScript to send the form; or set the password with
<code>fazt server set-credentials</code> and the card in a computer.</p></noscript>
<p><small>The dashboard will be at <a href="{dashboard}">{dashboard}</a>.</small></p>
</body></html>
"#;
