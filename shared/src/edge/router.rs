//! Route tables: a function lists its routes once (method, path template, who may call it,
//! handler) and the edge picks one per request.
//!
//! A template's segments are literals (`leads`) or captures (`{id}`, one non-empty segment,
//! put into [`InboundRequest::path_params`]). A template matches the trailing segments of the
//! path, so a custom domain's base path in front (`/v1/leads/{id}`) changes nothing; the stage
//! prefix is already gone ([`InboundRequest::path`]). The most specific template wins: more
//! segments, then more literal ones, then table order. Its routes are then chosen by method
//! (`*`: any); a path whose template has no route for the method is 405.

use std::future::Future;
use std::pin::Pin;

use super::auth::Scope;
use super::{AppError, InboundRequest, Response};
use crate::telemetry::Metrics;

/// A boxed, sendable future: what handlers return, so a route table can hold plain function
/// pointers.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A route's handler: the function's state, the request, the request's metrics record.
pub type Handler<S> = for<'a> fn(
    &'a S,
    &'a InboundRequest,
    &'a mut Metrics,
) -> BoxFuture<'a, Result<Response, AppError>>;

/// Who may call a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Auth {
    /// Anyone; the handler authenticates what it must (platform signatures, the Trustpilot key).
    Public,
    /// A configured key with this scope in `x-api-key` (`Service::api_keys`).
    ApiKey(Scope),
    /// The same, or a dashboard-only key as `?key=` for pages opened in a browser.
    ApiKeyOrQuery(Scope),
}

pub struct Route<S: 'static> {
    /// `GET`, `POST`, ... or `*` for any method (the handler answers 405 itself).
    pub method: &'static str,
    /// `/leads/{id}/events`.
    pub path: &'static str,
    pub auth: Auth,
    pub handler: Handler<S>,
}

impl<S> Route<S> {
    pub const fn new(
        method: &'static str,
        path: &'static str,
        auth: Auth,
        handler: Handler<S>,
    ) -> Route<S> {
        Route {
            method,
            path,
            auth,
            handler,
        }
    }

    pub const fn get(path: &'static str, auth: Auth, handler: Handler<S>) -> Route<S> {
        Route::new("GET", path, auth, handler)
    }

    pub const fn post(path: &'static str, auth: Auth, handler: Handler<S>) -> Route<S> {
        Route::new("POST", path, auth, handler)
    }

    pub const fn delete(path: &'static str, auth: Auth, handler: Handler<S>) -> Route<S> {
        Route::new("DELETE", path, auth, handler)
    }

    /// Every method: the handler answers 405 itself where it must.
    pub const fn any(path: &'static str, auth: Auth, handler: Handler<S>) -> Route<S> {
        Route::new("*", path, auth, handler)
    }
}

/// What a path and method found in a table.
pub(crate) enum Found<'r, S: 'static> {
    Route(&'r Route<S>, Vec<(String, String)>),
    /// The path has routes, none for this method.
    WrongMethod(&'r Route<S>, Vec<(String, String)>),
    Nothing,
}

impl<'r, S> Found<'r, S> {
    /// The route whose template matched the path, whatever the method.
    pub(crate) fn template(&self) -> Option<&'r Route<S>> {
        match self {
            Found::Route(r, _) | Found::WrongMethod(r, _) => Some(r),
            Found::Nothing => None,
        }
    }
}

fn segments(path: &str) -> Vec<&str> {
    path.split('/').filter(|s| !s.is_empty()).collect()
}

/// The captures of `template` on the end of `path`, or `None` when it does not match.
fn captures(template: &str, path: &[&str]) -> Option<Vec<(String, String)>> {
    let wanted = segments(template);
    let tail = path.get(path.len().checked_sub(wanted.len())?..)?;
    let mut params = Vec::new();
    for (want, got) in wanted.iter().zip(tail) {
        match want.strip_prefix('{').and_then(|w| w.strip_suffix('}')) {
            Some(name) => params.push((name.to_string(), got.to_string())),
            None if want == got => {}
            None => return None,
        }
    }
    Some(params)
}

/// How specific a template is: segments, then literal segments.
fn specificity(template: &str) -> (usize, usize) {
    let s = segments(template);
    let literals = s.iter().filter(|x| !x.starts_with('{')).count();
    (s.len(), literals)
}

/// Path parameters captured by a template, in order.
type Params = Vec<(String, String)>;

pub(crate) fn find<'r, S>(routes: &'r [Route<S>], method: &str, path: &str) -> Found<'r, S> {
    let path = segments(path);
    let mut best: Option<(&'r Route<S>, Params)> = None;
    for route in routes {
        let Some(params) = captures(route.path, &path) else {
            continue;
        };
        if best
            .as_ref()
            .is_none_or(|(b, _)| specificity(route.path) > specificity(b.path))
        {
            best = Some((route, params));
        }
    }
    let Some((template, params)) = best else {
        return Found::Nothing;
    };
    match routes
        .iter()
        .find(|r| r.path == template.path && (r.method == "*" || r.method == method))
    {
        Some(route) => Found::Route(route, params),
        None => Found::WrongMethod(template, params),
    }
}

/// `GET /leads, POST /leads/{id}/events, ...`: the table, for a 404's message.
pub(crate) fn describe<S>(routes: &[Route<S>]) -> String {
    let mut out: Vec<String> = Vec::new();
    for r in routes {
        let line = if r.method == "*" {
            r.path.to_string()
        } else {
            format!("{} {}", r.method, r.path)
        };
        if !out.contains(&line) {
            out.push(line);
        }
    }
    out.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok<'a>(
        _: &'a (),
        _: &'a InboundRequest,
        _: &'a mut Metrics,
    ) -> BoxFuture<'a, Result<Response, AppError>> {
        Box::pin(async { Ok(Response::default()) })
    }

    const ROUTES: &[Route<()>] = &[
        Route {
            method: "GET",
            path: "/leads",
            auth: Auth::ApiKey(Scope::Read),
            handler: ok,
        },
        Route {
            method: "GET",
            path: "/leads/{id}",
            auth: Auth::ApiKey(Scope::Read),
            handler: ok,
        },
        Route {
            method: "DELETE",
            path: "/leads/{id}",
            auth: Auth::ApiKey(Scope::Read),
            handler: ok,
        },
        Route {
            method: "POST",
            path: "/leads/{id}/events",
            auth: Auth::ApiKey(Scope::Read),
            handler: ok,
        },
        Route {
            method: "POST",
            path: "/webhooks/form",
            auth: Auth::Public,
            handler: ok,
        },
        Route {
            method: "*",
            path: "/webhooks/{provider}",
            auth: Auth::Public,
            handler: ok,
        },
    ];

    fn found(method: &str, path: &str) -> (String, Vec<(String, String)>) {
        match find(ROUTES, method, path) {
            Found::Route(r, p) => (format!("{} {}", r.method, r.path), p),
            Found::WrongMethod(r, _) => (format!("405 {}", r.path), Vec::new()),
            Found::Nothing => ("404".to_string(), Vec::new()),
        }
    }

    #[test]
    fn routes_match_by_method_and_path() {
        assert_eq!(found("GET", "/leads").0, "GET /leads");
        assert_eq!(
            found("GET", "/leads/01J/").1,
            [("id".to_string(), "01J".to_string())]
        );
        assert_eq!(found("DELETE", "/leads/01J").0, "DELETE /leads/{id}");
        assert_eq!(
            found("POST", "/leads/01J/events").0,
            "POST /leads/{id}/events"
        );
        assert_eq!(found("PUT", "/leads/01J").0, "405 /leads/{id}");
        assert_eq!(found("GET", "/nowhere").0, "404");
        assert_eq!(found("GET", "/").0, "404");
        assert_eq!(found("GET", "/leads/a/b").0, "404");
    }

    #[test]
    fn literals_beat_captures_and_base_paths_do_not_matter() {
        assert_eq!(found("POST", "/webhooks/form").0, "POST /webhooks/form");
        assert_eq!(found("GET", "/webhooks/form").0, "405 /webhooks/form");
        assert_eq!(found("PUT", "/webhooks/tally").0, "* /webhooks/{provider}");
        assert_eq!(
            found("POST", "/v1/webhooks/tally").0,
            "* /webhooks/{provider}"
        );
        assert_eq!(found("GET", "/api/leads/7").1[0].1, "7");
    }

    #[test]
    fn the_table_describes_itself() {
        assert!(describe(ROUTES).starts_with("GET /leads, GET /leads/{id}, DELETE"));
        assert!(describe(ROUTES).ends_with("POST /webhooks/form, /webhooks/{provider}"));
    }
}
