//! Which events a reader asked for and may see: the same rule in Rust (live events) and
//! in SQL (the ring), so a reader sees one history whichever side answers.

use super::event::{type_matches, Event, Visibility};

/// Who is reading.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Viewer {
    /// The admin (API, CLI): every event.
    #[default]
    Admin,
    /// An app (by id): its own events and public ones, never another app's private ones.
    App(String),
}

/// A reader's filter.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    /// Types equal to this or under it (`app` matches `app.x`); `None`: every type.
    pub type_prefix: Option<String>,
    /// Only events of this app (its id or name).
    pub app: Option<String>,
    /// Who reads, which limits what can be seen at all.
    pub viewer: Viewer,
}

impl Filter {
    /// True when the event passes the filter and the viewer may see it.
    pub fn matches(&self, event: &Event) -> bool {
        let visible = match &self.viewer {
            Viewer::Admin => true,
            Viewer::App(id) => event.visibility == Visibility::Public || event.app.as_deref() == Some(id),
        };
        let typed = self.type_prefix.as_deref().is_none_or(|p| type_matches(&event.kind, p));
        let of_app = self
            .app
            .as_deref()
            .is_none_or(|a| event.app.as_deref() == Some(a) || event.app_name.as_deref() == Some(a));
        visible && typed && of_app
    }

    /// The prefix as the SQL of [`super::ring::query`] wants it (no trailing dot, none
    /// when empty).
    pub(crate) fn sql_prefix(&self) -> Option<&str> {
        self.type_prefix.as_deref().map(|p| p.trim_end_matches('.')).filter(|p| !p.is_empty())
    }

    /// The app id a viewing app is limited to.
    pub(crate) fn sql_viewer(&self) -> Option<&str> {
        match &self.viewer {
            Viewer::Admin => None,
            Viewer::App(id) => Some(id),
        }
    }
}
