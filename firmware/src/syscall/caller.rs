//! Who calls a syscall, and the one place that decides what each caller may do.
//!
//! The adapters build a [`Caller`] (the HTTP API from the session or token it checked,
//! the CLI working offline on the data file, the JavaScript runtime for the app it
//! runs); the syscalls ask it with [`Caller::require_admin`] or [`Caller::require_app`].
//! Per-app permissions (from `app.json`, a later issue) belong in [`Caller::allows`].

use super::{Kind, SyscallError};

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
}

/// What a syscall is about to touch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope<'a> {
    /// Node-wide state: apps, deploys, tokens, keys, config, certificates, time, peers.
    Node,
    /// The data of one app (by id): its KV, logs, environment, limits, events, files.
    App(&'a str),
}

impl Caller {
    /// An app caller.
    pub fn app(id: impl Into<String>) -> Self {
        Caller::App { id: id.into() }
    }

    /// True when this caller may touch `scope`: the admin, a token and the local CLI
    /// everything, an app only its own data.
    pub fn allows(&self, scope: Scope<'_>) -> bool {
        match (self, scope) {
            (Caller::Admin { .. } | Caller::Token { .. } | Caller::Local, _) => true,
            (Caller::App { id }, Scope::App(app)) => id == app,
            (Caller::App { .. }, Scope::Node) => false,
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
    }
}
