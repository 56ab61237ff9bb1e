//! Who calls a syscall, and the one place that decides what each caller may do.
//!
//! The adapters build a [`Caller`] (the HTTP API from the session or token it checked,
//! the CLI working offline on the data file, the JavaScript runtime for the app it
//! runs, the setup page for a client with no credentials yet); the syscalls ask it with
//! [`Caller::require_admin`], [`Caller::require_app`], [`Caller::require`] or
//! [`Caller::require_setup`]. Per-app permissions (from `app.json`, a later issue)
//! belong in [`Caller::allows`].
//!
//! The node's own calls (appending an app's log lines, loading its environment and
//! limits to run it) go through the same syscalls as [`Caller::Kernel`]: an adapter
//! never builds it from a request, so nothing outside reaches them that way.

use super::{Kind, SyscallError};
use crate::security::setup::SetupMode;
use std::net::IpAddr;

/// The identity a syscall runs as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Caller {
    /// The admin in a browser session.
    Admin {
        /// The user's id.
        user: String,
    },
    /// The holder of an API token (the CLI talking to a node).
    Token {
        /// The token's id.
        id: String,
    },
    /// An app's JavaScript.
    App {
        /// The app's id.
        id: String,
    },
    /// The CLI working offline on the data file: whoever can open the file owns the
    /// node, so it has the admin's rights.
    Local,
    /// The node itself, running an app (its log lines, environment and limits); built
    /// only by the kernel's own code, never from a request.
    Kernel,
    /// A client with no credentials (the first-boot setup page): it may claim an
    /// unclaimed node from a local address and nothing else.
    Visitor {
        /// Its address; `None` when it came through a proxy, so the real one is unknown.
        ip: Option<IpAddr>,
    },
}

/// What a syscall is about to touch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope<'a> {
    /// Node-wide state: apps, deploys, tokens, keys, config, certificates, time, peers.
    Node,
    /// The data of one app (by id): its KV, logs, environment, limits, events, files.
    App(&'a str),
    /// The clock's public state (`fazt.time.status()`: the time, its source, whether it
    /// is synchronized): every caller with credentials, apps included.
    Clock,
}

impl Caller {
    /// An app caller.
    pub fn app(id: impl Into<String>) -> Self {
        Caller::App { id: id.into() }
    }

    /// True when this caller may touch `scope`: the admin, a token, the local CLI and
    /// the kernel everything, an app only its own data and the clock, a visitor nothing.
    pub fn allows(&self, scope: Scope<'_>) -> bool {
        match (self, scope) {
            (Caller::Admin { .. } | Caller::Token { .. } | Caller::Local | Caller::Kernel, _) => true,
            (Caller::App { id }, Scope::App(app)) => id == app,
            (Caller::App { .. }, Scope::Clock) => true,
            (Caller::App { .. }, Scope::Node) => false,
            (Caller::Visitor { .. }, _) => false,
        }
    }

    /// Refuses unless the caller may touch `scope`.
    pub fn require(&self, scope: Scope<'_>) -> Result<(), SyscallError> {
        if self.allows(scope) {
            return Ok(());
        }
        let what = match scope {
            Scope::Node => "the node's administration".to_string(),
            Scope::App(_) => "another app's data".to_string(),
            Scope::Clock => "the clock".to_string(),
        };
        Err(SyscallError::refused(
            Kind::Forbidden,
            "forbidden",
            format!("{} may not touch {what}", self.describe()),
        ))
    }

    /// Refuses unless the caller administers the node.
    pub fn require_admin(&self) -> Result<(), SyscallError> {
        self.require(Scope::Node)
    }

    /// Refuses unless the caller may touch the data of the app `app_id`.
    pub fn require_app(&self, app_id: &str) -> Result<(), SyscallError> {
        self.require(Scope::App(app_id))
    }

    /// Refuses unless the caller may claim an unclaimed node through the first-boot
    /// setup page in `mode`: a visitor from an address the mode lets in (`not_local`
    /// otherwise, also when it came through a proxy) or the local CLI.
    pub fn require_setup(&self, mode: SetupMode) -> Result<(), SyscallError> {
        match self {
            Caller::Local => Ok(()),
            Caller::Visitor { ip: Some(ip) } if mode.allows(*ip) => Ok(()),
            Caller::Visitor { .. } => Err(SyscallError::refused(
                Kind::Forbidden,
                "not_local",
                "first-boot setup answers only clients on this machine or its local network (setup.page)",
            )),
            other => Err(SyscallError::refused(
                Kind::Forbidden,
                "forbidden",
                format!("{} may not claim the node through the setup page", other.describe()),
            )),
        }
    }

    /// The app this caller is, if it is one.
    pub fn app_id(&self) -> Option<&str> {
        match self {
            Caller::App { id } => Some(id),
            _ => None,
        }
    }

    /// The user behind a session, if this is one.
    pub fn user(&self) -> Option<&str> {
        match self {
            Caller::Admin { user } => Some(user),
            _ => None,
        }
    }

    /// How error messages name the caller.
    fn describe(&self) -> String {
        match self {
            Caller::Admin { .. } => "the admin".into(),
            Caller::Token { .. } => "an API token".into(),
            Caller::App { id } => format!("app {id}"),
            Caller::Local => "the local CLI".into(),
            Caller::Kernel => "the node itself".into(),
            Caller::Visitor { .. } => "a client without credentials".into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn apps_touch_only_their_own_data_and_never_the_node() {
        let app = Caller::app("a");
        assert!(app.require_app("a").is_ok());
        let err = app.require_app("b").unwrap_err();
        assert_eq!((err.code(), err.kind()), ("forbidden", Kind::Forbidden));
        assert_eq!(app.require_admin().unwrap_err().code(), "forbidden");
        for admin in [Caller::Admin { user: "u".into() }, Caller::Token { id: "t".into() }, Caller::Local] {
            assert!(admin.require_admin().is_ok() && admin.require_app("b").is_ok(), "{admin:?}");
        }
        assert!(app.require(Scope::Clock).is_ok() && Caller::Kernel.require_app("b").is_ok());
    }

    #[test]
    fn visitors_touch_nothing_and_claim_only_from_where_the_mode_allows() {
        let lan = Caller::Visitor { ip: Some("192.168.1.9".parse().unwrap()) };
        let proxied = Caller::Visitor { ip: None };
        for scope in [Scope::Node, Scope::App("a"), Scope::Clock] {
            assert_eq!(lan.require(scope).unwrap_err().code(), "forbidden", "{scope:?}");
        }
        assert!(lan.require_setup(SetupMode::Lan).is_ok());
        for (caller, mode) in
            [(&lan, SetupMode::Loopback), (&lan, SetupMode::Off), (&proxied, SetupMode::Lan)]
        {
            let err = caller.require_setup(mode).unwrap_err();
            assert_eq!((err.code(), err.kind()), ("not_local", Kind::Forbidden), "{caller:?} {mode:?}");
        }
        let app = Caller::app("a").require_setup(SetupMode::Lan).unwrap_err();
        assert_eq!(app.code(), "forbidden");
        assert!(Caller::Local.require_setup(SetupMode::Loopback).is_ok());
    }
}
