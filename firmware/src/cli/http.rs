//! The CLI's HTTP client for a node's admin API.

use super::ClientArgs;
use crate::proc::client_config::{default_path, ClientConfig};
use anyhow::{anyhow, bail, Context};
use std::io::Read;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, ToSocketAddrs};
use std::time::Duration;

/// The node could not be reached at all (as opposed to answering with an error).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Unreachable(String);

/// `text` as one URL path segment or query value: every byte but ASCII letters and
/// digits percent-encoded, so an app name, path or filter cannot change the request.
pub fn encode(text: &str) -> String {
    percent_encoding::utf8_percent_encode(text, percent_encoding::NON_ALPHANUMERIC).to_string()
}

/// A connection to one node.
#[derive(Debug)]
pub struct Client {
    agent: ureq::Agent,
    /// Base URL without a trailing slash.
    pub server: String,
    token: Option<String>,
}

/// Resolves like a browser: `localhost` and every `*.localhost` name is loopback
/// (RFC 6761), so `http://admin.localhost:8080` works with no DNS or /etc/hosts entry.
fn resolve(netloc: &str) -> std::io::Result<Vec<SocketAddr>> {
    let (host, port) = netloc.rsplit_once(':').ok_or_else(|| std::io::Error::other("missing port"))?;
    let port: u16 = port.parse().map_err(|_| std::io::Error::other("bad port"))?;
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    if host == "localhost" || host.ends_with(".localhost") {
        return Ok(vec![
            SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port),
            SocketAddr::new(IpAddr::V6(Ipv6Addr::LOCALHOST), port),
        ]);
    }
    Ok(netloc.to_socket_addrs()?.collect())
}

impl Client {
    /// A client from flags, environment and the config file, in that order.
    pub fn from_args(args: &ClientArgs) -> anyhow::Result<Self> {
        let path = args.config.clone().unwrap_or_else(default_path);
        let saved = if args.server.is_none() || args.token.is_none() {
            Some(ClientConfig::load(&path))
        } else {
            None
        };
        let server = match (&args.server, &saved) {
            (Some(s), _) => s.clone(),
            (None, Some(Ok(c))) => c.server.clone(),
            (None, Some(Err(e))) => bail!("{e:#}"),
            (None, None) => unreachable!("config loaded when server is missing"),
        };
        let token = args.token.clone().or_else(|| saved.and_then(|c| c.ok()).map(|c| c.token));
        let mut client = Self::new(&server, token);
        if let Some(path) = &args.ca_file {
            let tls = crate::net::tls::client_config_trusting(path).map_err(|e| anyhow!("--ca-file: {e}"))?;
            client.agent = Self::builder(resolve).tls_config(tls).build();
        }
        Ok(client)
    }

    /// A client for `server` with an optional token.
    pub fn new(server: &str, token: Option<String>) -> Self {
        Self::with_resolver(server, token, resolve)
    }

    /// A client for the node on this machine: whatever the host name in `server`, it
    /// connects to loopback (no DNS look-up for the node's public name).
    pub fn local(server: &str) -> Self {
        Self::with_resolver(server, None, |netloc: &str| {
            let port: u16 = netloc
                .rsplit_once(':')
                .and_then(|(_, p)| p.parse().ok())
                .ok_or_else(|| std::io::Error::other("missing port"))?;
            Ok(vec![
                SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port),
                SocketAddr::new(IpAddr::V6(Ipv6Addr::LOCALHOST), port),
            ])
        })
    }

    /// A client for `server` that connects to `addr` whatever the host name says (a
    /// node found through its lock file), with short timeouts.
    pub fn at(server: &str, addr: SocketAddr) -> Self {
        let agent = Self::builder(move |_: &str| Ok(vec![addr]))
            .timeout_connect(Duration::from_secs(2))
            .timeout_read(Duration::from_secs(5))
            .build();
        Client { agent, server: server.trim_end_matches('/').to_string(), token: None }
    }

    fn with_resolver(server: &str, token: Option<String>, resolver: impl ureq::Resolver + 'static) -> Self {
        let agent = Self::builder(resolver).build();
        Client { agent, server: server.trim_end_matches('/').to_string(), token }
    }

    fn builder(resolver: impl ureq::Resolver + 'static) -> ureq::AgentBuilder {
        ureq::AgentBuilder::new()
            .resolver(resolver)
            .timeout_connect(Duration::from_secs(10))
            .timeout_read(Duration::from_secs(600))
    }

    fn request(&self, method: &str, path: &str) -> ureq::Request {
        let mut req = self.agent.request(method, &format!("{}{path}", self.server));
        if let Some(token) = &self.token {
            req = req.set("Authorization", &format!("Bearer {token}"));
        }
        req
    }

    /// GET a JSON document.
    pub fn get_json(&self, path: &str) -> anyhow::Result<serde_json::Value> {
        self.finish(self.request("GET", path).call())
    }

    /// GET a text document (e.g. a PEM file).
    pub fn get_text(&self, path: &str) -> anyhow::Result<String> {
        match self.request("GET", path).call() {
            Ok(resp) => resp.into_string().context("reading the node's answer"),
            Err(err) => self.finish(Err(err)).map(|v| v.to_string()),
        }
    }

    /// GET a body to read as it arrives (a stream of Server-Sent Events), asking for
    /// `accept`. A node that cannot be reached gives an [`Unreachable`] error.
    pub fn get_stream(&self, path: &str, accept: &str) -> anyhow::Result<Box<dyn Read + Send + Sync>> {
        match self.request("GET", path).set("Accept", accept).call() {
            Ok(resp) => Ok(Box::new(resp.into_reader())),
            Err(ureq::Error::Transport(t)) => Err(anyhow::Error::new(Unreachable(format!(
                "cannot reach the node at {}: {t} (is it running? check --server)",
                self.server
            )))),
            Err(err) => {
                self.finish(Err(err)).map(|_| -> Box<dyn Read + Send + Sync> { Box::new(std::io::empty()) })
            }
        }
    }

    /// POST a JSON document.
    pub fn post_json(&self, path: &str, body: &serde_json::Value) -> anyhow::Result<serde_json::Value> {
        self.finish(self.request("POST", path).send_json(body.clone()))
    }

    /// PUT a JSON document.
    pub fn put_json(&self, path: &str, body: &serde_json::Value) -> anyhow::Result<serde_json::Value> {
        self.finish(self.request("PUT", path).send_json(body.clone()))
    }

    /// DELETE a resource.
    pub fn delete(&self, path: &str) -> anyhow::Result<serde_json::Value> {
        self.finish(self.request("DELETE", path).call())
    }

    /// POST a body of known length from a reader.
    pub fn post_stream(
        &self,
        path: &str,
        content_type: &str,
        len: u64,
        body: impl Read,
    ) -> anyhow::Result<serde_json::Value> {
        let req = self
            .request("POST", path)
            .set("Content-Type", content_type)
            .set("Content-Length", &len.to_string());
        self.finish(req.send(body))
    }

    fn finish(&self, result: Result<ureq::Response, ureq::Error>) -> anyhow::Result<serde_json::Value> {
        match result {
            Ok(resp) => {
                let text = resp.into_string().context("reading the node's answer")?;
                serde_json::from_str(&text)
                    .with_context(|| format!("the node at {} did not answer JSON", self.server))
            }
            Err(ureq::Error::Status(status, resp)) => {
                let body: serde_json::Value = resp.into_json().unwrap_or_default();
                let code = body["error"]["code"].as_str().unwrap_or("http_error");
                let message = body["error"]["message"].as_str().unwrap_or("no details").to_string();
                Err(anyhow!("{message} ({code}, HTTP {status})"))
            }
            Err(ureq::Error::Transport(t)) => {
                Err(anyhow!("cannot reach the node at {}: {t} (is it running? check --server)", self.server))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn localhost_names_resolve_to_loopback() {
        let addrs = resolve("admin.localhost:8080").unwrap();
        assert!(addrs.iter().all(|a| a.ip().is_loopback() && a.port() == 8080));
        assert!(resolve("nope").is_err());
    }
}
