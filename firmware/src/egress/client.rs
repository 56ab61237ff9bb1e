//! Sending one request: for each hop, check the host against the allow-list, resolve
//! it, keep only the addresses the rules permit, ask the host's circuit breaker, and
//! connect to exactly those addresses (ureq is handed a resolver that answers with
//! them, so nothing is resolved twice); redirects are followed here, one hop at a time.

use super::target::{self, Target};
use super::{address, Egress, EgressError, Request, Response};
use std::collections::BTreeMap;
use std::io::Read;
use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::time::{Duration, Instant};

/// Addresses of one name tried at most.
const MAX_ADDRESSES: usize = 8;
/// Bytes of response headers handed to the app at most (ureq caps what it reads too).
const MAX_RESPONSE_HEADER_BYTES: usize = 64 * 1024;

/// Sends `request` under an app's allow-list `rules` and limits `settings`; `host` gets
/// the last hop's host, for the log.
pub(super) fn send(
    egress: &Egress,
    rules: &[super::store::Rule],
    settings: super::Settings,
    request: Request,
    budget: Option<Duration>,
    started: Instant,
    host: &mut String,
) -> Result<Response, EgressError> {
    let mut target = target::parse(&request.url)?;
    *host = target.host.clone();
    let mut method = if request.method.is_empty() { "GET" } else { target::method(&request.method)? };
    let mut headers = target::headers(request.headers)?;
    let mut body = request.body;
    if body.len() > settings.max_request_bytes {
        return Err(EgressError::TooLarge(format!(
            "the request body is {} bytes, over egress.max_request_bytes ({})",
            body.len(),
            settings.max_request_bytes
        )));
    }
    let time = budget.map_or(settings.timeout, |b| b.min(settings.timeout));
    let deadline = started + time;
    let mut hops = 0;
    loop {
        *host = target.host.clone();
        let matching: Vec<&super::store::Rule> =
            rules.iter().filter(|r| r.covers(&target.host, target.port)).collect();
        if matching.is_empty() {
            return Err(EgressError::HostNotAllowed(format!(
                "{} is not on this app's allow-list; the admin can add it with `fazt net allow <app> {}`",
                target.authority(),
                target.host
            )));
        }
        let private_ok = matching.iter().any(|r| r.private && r.port == target.port);
        let addresses = resolve(&target, private_ok)?;
        egress.admit(&target.host)?;
        let outcome =
            exchange(&target, method, &headers, &body, addresses, deadline, settings.max_response_bytes);
        // Every admitted request is recorded (a half-open probe must always report
        // back): an answer under 500 is a success, and so is one refused for its size
        // (the host answered); a timeout or a connection failure is a failure.
        let success = match &outcome {
            Ok(answer) => answer.status < 500,
            Err(err) => !err.is_failure(),
        };
        egress.record(&target.host, success);
        let answer = outcome?;
        let location = answer.location.clone();
        let (301 | 302 | 303 | 307 | 308, Some(location)) = (answer.status, location) else {
            return Ok(answer.response);
        };
        if hops >= settings.max_redirects {
            return Err(EgressError::TooManyRedirects(format!(
                "more than {} redirects (egress.max_redirects), the last to {}",
                settings.max_redirects,
                location.chars().take(200).collect::<String>()
            )));
        }
        hops += 1;
        let next = target::join(&target.url, &location)?;
        if answer.status == 303 || (matches!(answer.status, 301 | 302) && method == "POST") {
            method = "GET";
            body.clear();
        }
        if next.host != target.host || next.port != target.port {
            // Credentials meant for one host do not follow a redirect to another.
            headers.retain(|(name, _)| !matches!(name.as_str(), "authorization" | "cookie"));
        }
        target = next;
    }
}

/// The addresses of the target that may be reached, in the order DNS gave them.
fn resolve(target: &Target, private_ok: bool) -> Result<Vec<SocketAddr>, EgressError> {
    let found: Vec<SocketAddr> = match target.host.parse::<IpAddr>() {
        Ok(ip) => vec![SocketAddr::new(ip, target.port)],
        Err(_) => (target.host.as_str(), target.port)
            .to_socket_addrs()
            .map_err(|e| EgressError::Upstream(format!("cannot resolve {}: {e}", target.host)))?
            .take(64)
            .collect(),
    };
    let permitted: Vec<SocketAddr> = found
        .iter()
        .copied()
        .filter(|a| address::permitted(a.ip(), private_ok))
        .take(MAX_ADDRESSES)
        .collect();
    if permitted.is_empty() {
        let shown = found.first().map(|a| a.ip().to_string()).unwrap_or_else(|| "nothing".into());
        let hint = match found.first().map(|a| address::classify(a.ip())) {
            Some(address::Class::Private) => format!(
                "; to open this one LAN service: `fazt net allow <app> --private {}`",
                target.authority()
            ),
            _ => String::new(),
        };
        return Err(EgressError::PrivateAddress(format!(
            "{} resolves to {shown}, an address apps may not reach{hint}",
            target.host
        )));
    }
    Ok(permitted)
}

/// One hop's answer.
struct Answer {
    status: u16,
    location: Option<String>,
    response: Response,
}

/// Sends one request to `addresses` (and nowhere else) and reads the answer.
fn exchange(
    target: &Target,
    method: &str,
    headers: &[(String, String)],
    body: &str,
    addresses: Vec<SocketAddr>,
    deadline: Instant,
    max_bytes: usize,
) -> Result<Answer, EgressError> {
    let timed_out =
        || EgressError::Timeout(format!("no complete answer from {} in time", target.authority()));
    let left = deadline.saturating_duration_since(Instant::now());
    if left.is_zero() {
        return Err(timed_out());
    }
    let agent = ureq::AgentBuilder::new()
        .resolver(move |_: &str| Ok(addresses.clone()))
        .redirects(0)
        // Never through a proxy from the environment: the connection goes to the
        // checked addresses only.
        .try_proxy_from_env(false)
        .timeout_connect(left)
        .timeout(left)
        .max_idle_connections(0)
        .user_agent("fazt-egress")
        .build();
    let mut request = agent.request_url(method, &target.url);
    for (name, value) in headers {
        request = request.set(name, value);
    }
    let sent = if body.is_empty() && matches!(method, "GET" | "HEAD" | "DELETE" | "OPTIONS") {
        request.call()
    } else {
        request.send_string(body)
    };
    let response = match sent {
        Ok(r) | Err(ureq::Error::Status(_, r)) => r,
        Err(ureq::Error::Transport(t)) => {
            if Instant::now() + Duration::from_millis(20) >= deadline || is_timeout(&t) {
                return Err(timed_out());
            }
            return Err(EgressError::Upstream(format!("{}: {t}", target.authority())));
        }
    };
    let status = response.status();
    let mut names = response.headers_names();
    names.sort();
    names.dedup();
    let mut header_map = BTreeMap::new();
    let mut header_bytes = 0;
    for name in names {
        let value = response.all(&name).join(", ");
        header_bytes += name.len() + value.len();
        if header_bytes > MAX_RESPONSE_HEADER_BYTES {
            break;
        }
        header_map.insert(name.to_ascii_lowercase(), value);
    }
    let location = response.header("location").map(str::to_string);
    let too_large = |n: String| {
        EgressError::TooLarge(format!(
            "the answer of {} {n}, over egress.max_response_bytes ({max_bytes} bytes)",
            target.authority()
        ))
    };
    if let Some(length) = response.header("content-length").and_then(|v| v.trim().parse::<u64>().ok()) {
        if length > max_bytes as u64 {
            return Err(too_large(format!("is {length} bytes")));
        }
    }
    let url = response.get_url().to_string();
    let mut bytes = Vec::new();
    let read = response.into_reader().take(max_bytes as u64 + 1).read_to_end(&mut bytes);
    if let Err(err) = read {
        if Instant::now() + Duration::from_millis(20) >= deadline
            || matches!(err.kind(), std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock)
        {
            return Err(timed_out());
        }
        return Err(EgressError::Upstream(format!("reading the answer of {}: {err}", target.authority())));
    }
    if bytes.len() > max_bytes {
        return Err(too_large("is longer".to_string()));
    }
    let body =
        String::from_utf8(bytes).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned());
    Ok(Answer { status, location, response: Response { status, headers: header_map, body, url } })
}

/// True when a transport error is a timeout somewhere in its chain.
fn is_timeout(t: &ureq::Transport) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(t);
    while let Some(err) = source {
        if let Some(io) = err.downcast_ref::<std::io::Error>() {
            if matches!(io.kind(), std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock) {
                return true;
            }
        }
        source = err.source();
    }
    t.to_string().contains("timed out")
}
