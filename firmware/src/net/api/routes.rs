//! The shape of the API's one route table (the table itself is in `mod.rs`, written
//! with [`routes!`](super::routes)): path patterns, who may call, and the lookup that
//! gives dispatch, 404 and 405 with its `Allow` header from the same rows.

use crate::net::response::ApiError;
use http::{Method, StatusCode};

/// One segment of a route's path (after `/api/`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Seg {
    /// This exact segment.
    Lit(&'static str),
    /// Any one segment, handed to the handler by name (`{id}`).
    Param,
    /// One or more segments to the end of the path (`{*path}`); always last.
    Rest,
}

/// Who may call a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Anyone; credentials are not looked at.
    Public,
    /// The admin: a session cookie or an API token, checked before the handler runs.
    Admin,
    /// Anyone without credentials (the public answer); with credentials they are
    /// checked and the handler gets the admin's view.
    PublicOrAdmin,
}

/// One row of the table.
#[derive(Debug)]
pub struct Route<H: 'static> {
    /// Which handler answers (an enum the `routes!` macro makes).
    pub handler: H,
    /// The method it answers.
    pub method: Method,
    /// The path after `/api/`.
    pub pattern: &'static [Seg],
    /// Who may call it.
    pub access: Access,
}

/// Most `Seg::Param`s in one pattern (checked by a test over the table).
pub const MAX_PARAMS: usize = 2;

/// What a path's segments were bound to.
#[derive(Debug, Default, Clone, Copy)]
pub struct Captures<'a> {
    /// The `Seg::Param` values, in order.
    pub params: [&'a str; MAX_PARAMS],
    /// How many of `params` are set.
    pub len: usize,
    /// The `Seg::Rest` part, `/`-joined as in the path ("" without one).
    pub rest: &'a str,
}

impl<'a> Captures<'a> {
    /// The bound parameters.
    pub fn params(&self) -> &[&'a str] {
        &self.params[..self.len]
    }
}

/// Matches `path` (the part after `/api/`, without leading or trailing `/`) against
/// `pattern`, with no allocation.
pub fn match_path<'a>(pattern: &[Seg], path: &'a str) -> Option<Captures<'a>> {
    let mut caps = Captures::default();
    let mut parts = path.split('/');
    let mut offset = 0;
    for seg in pattern {
        if *seg == Seg::Rest {
            return parts.next().map(|_| {
                caps.rest = &path[offset..];
                caps
            });
        }
        let part = parts.next()?;
        offset += part.len() + 1;
        match seg {
            Seg::Lit(lit) if part == *lit => {}
            Seg::Param if caps.len < MAX_PARAMS => {
                caps.params[caps.len] = part;
                caps.len += 1;
            }
            _ => return None,
        }
    }
    parts.next().is_none().then_some(caps)
}

/// The route for `method` on `path` with its captures; otherwise 404 when no route has
/// this path, or 405 with `Allow` listing the methods that do, in table order.
pub fn find<'a, H>(
    routes: &'static [Route<H>],
    method: &Method,
    path: &'a str,
    shown: &str,
) -> Result<(&'static Route<H>, Captures<'a>), ApiError> {
    let mut path_known = false;
    for route in routes {
        if let Some(caps) = match_path(route.pattern, path) {
            if route.method == *method {
                return Ok((route, caps));
            }
            path_known = true;
        }
    }
    if !path_known {
        return Err(ApiError::not_found(format!("no API endpoint {shown}")));
    }
    let mut err = ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        format!("{method} is not allowed on {shown}"),
    );
    err.allow = Some(allow(routes, path));
    Err(err)
}

/// The `Allow` header for a path: the methods of every route that has it, in table
/// order, each once.
pub fn allow<H>(routes: &[Route<H>], path: &str) -> String {
    let mut methods: Vec<&str> = Vec::new();
    for route in routes.iter().filter(|r| match_path(r.pattern, path).is_some()) {
        if !methods.contains(&route.method.as_str()) {
            methods.push(route.method.as_str());
        }
    }
    methods.join(", ")
}

/// True when some path matches both patterns (the table test checks no two rows of
/// one method do).
#[cfg(test)]
pub fn overlap(a: &[Seg], b: &[Seg]) -> bool {
    match (a.split_first(), b.split_first()) {
        (None, None) => true,
        // Rest takes one or more segments: it meets any non-empty remainder.
        (Some((Seg::Rest, _)), Some(_)) | (Some(_), Some((Seg::Rest, _))) => true,
        (None, Some(_)) | (Some(_), None) => false,
        (Some((x, xs)), Some((y, ys))) => {
            let same = match (x, y) {
                (Seg::Lit(x), Seg::Lit(y)) => x == y,
                _ => true,
            };
            same && overlap(xs, ys)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments_params_and_rest() {
        let pattern = [Seg::Lit("apps"), Seg::Param, Seg::Lit("files"), Seg::Rest];
        let caps = match_path(&pattern, "apps/blog/files/a//b.html").unwrap();
        assert_eq!((caps.params(), caps.rest), (&["blog"][..], "a//b.html"));
        assert!(match_path(&pattern, "apps/blog/files").is_none(), "rest needs a segment");
        assert!(match_path(&pattern, "apps/blog/nope/x").is_none());
        let two = [Seg::Lit("apps"), Seg::Param, Seg::Lit("env"), Seg::Param];
        assert_eq!(match_path(&two, "apps/a/env/B").unwrap().params(), ["a", "B"]);
        assert!(match_path(&two, "apps/a/env/B/c").is_none(), "no trailing segments");
        assert!(match_path(&two, "apps/a/env").is_none());
        assert!(match_path(&[Seg::Lit("me")], "").is_none());
        assert!(match_path(&[Seg::Lit("me")], "me").is_some());
    }

    #[test]
    fn overlap_of_patterns() {
        use Seg::*;
        assert!(overlap(&[Lit("a"), Param], &[Lit("a"), Lit("b")]));
        assert!(!overlap(&[Lit("a"), Param], &[Lit("a"), Param, Lit("c")]));
        assert!(!overlap(&[Lit("a"), Param], &[Lit("a"), Param, Rest]));
        assert!(overlap(&[Lit("a"), Param, Rest], &[Lit("a"), Lit("x"), Lit("y"), Param]));
        assert!(!overlap(&[Lit("a")], &[Lit("b")]));
    }
}
