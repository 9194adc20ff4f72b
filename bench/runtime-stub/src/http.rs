//! The Lambda Runtime API's paths, as the stub serves them (HTTP/1.1 itself: `http_stub::http1`).

/// The Runtime API endpoints the stub serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route<'a> {
    /// `GET /2018-06-01/runtime/invocation/next`
    Next,
    /// `POST /2018-06-01/runtime/invocation/{id}/response`
    Response(&'a str),
    /// `POST /2018-06-01/runtime/invocation/{id}/error`
    Error(&'a str),
    /// `POST /2018-06-01/runtime/init/error`
    InitError,
    /// A known path with the wrong method.
    MethodNotAllowed,
    NotFound,
}

const PREFIX: &str = "/2018-06-01/runtime/";

/// Maps a method and request target to an endpoint. The query string is ignored.
pub fn route<'a>(method: &str, target: &'a str) -> Route<'a> {
    let path = target.split(['?', '#']).next().unwrap_or("");
    let Some(rest) = path.strip_prefix(PREFIX) else {
        return Route::NotFound;
    };
    let (route, want) = match rest.split('/').collect::<Vec<_>>().as_slice() {
        ["invocation", "next"] => (Route::Next, "GET"),
        ["init", "error"] => (Route::InitError, "POST"),
        ["invocation", id, "response"] if !id.is_empty() => (Route::Response(id), "POST"),
        ["invocation", id, "error"] if !id.is_empty() => (Route::Error(id), "POST"),
        _ => return Route::NotFound,
    };
    if method == want {
        route
    } else {
        Route::MethodNotAllowed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_runtime_paths() {
        assert_eq!(
            route("GET", "/2018-06-01/runtime/invocation/next"),
            Route::Next
        );
        assert_eq!(
            route("GET", "/2018-06-01/runtime/invocation/next?x=1"),
            Route::Next
        );
        assert_eq!(
            route("POST", "/2018-06-01/runtime/invocation/abc-1/response"),
            Route::Response("abc-1")
        );
        assert_eq!(
            route("POST", "/2018-06-01/runtime/invocation/abc-1/error"),
            Route::Error("abc-1")
        );
        assert_eq!(
            route("POST", "/2018-06-01/runtime/init/error"),
            Route::InitError
        );
        assert_eq!(
            route("POST", "/2018-06-01/runtime/invocation/next"),
            Route::MethodNotAllowed
        );
        assert_eq!(
            route("GET", "/2018-06-01/runtime/invocation/abc/response"),
            Route::MethodNotAllowed
        );
        assert_eq!(
            route("POST", "/2018-06-01/runtime/invocation//response"),
            Route::NotFound
        );
        assert_eq!(
            route("GET", "/2018-06-01/runtime/restore/next"),
            Route::NotFound
        );
        assert_eq!(route("GET", "/"), Route::NotFound);
    }
}
