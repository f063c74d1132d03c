//! The operator's session: who is signed in (the `Operator` every page extracts, with the
//! CSRF token its forms carry), where a sign-in may send them back to, and signing in and
//! out.

use super::*;
use herald_wire::keys::{Actor, Scope};

/// A signed-in operator (anyone, in development mode), with the CSRF token their forms
/// carry. A request without an open session is sent to the sign-in page and back.
///
/// Found once per request: the extractors that need it too ([`KeyPath`], [`Checked`]) take
/// the one the request keeps.
#[derive(Clone)]
pub struct Operator {
    pub csrf: String,
    /// Whether there is a session to sign out of (not in development mode).
    pub signed_in: bool,
    /// Who: the key signed in with, and what it allows.
    pub actor: Actor,
}

impl FromRequestParts<AppState> for Operator {
    type Rejection = Refused;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Refused> {
        if let Some(op) = parts.extensions.get::<Operator>() {
            return Ok(op.clone());
        }
        let op = Self::find(parts, state).await?;
        parts.extensions.insert(op.clone());
        Ok(op)
    }
}

impl Operator {
    async fn find(parts: &Parts, state: &AppState) -> Result<Self, Response> {
        let auth = &state.auth;
        if !auth.required() {
            return Ok(Self {
                csrf: auth.csrf_token(None),
                signed_in: false,
                actor: Actor::admin(herald_wire::keys::DEV_ACTOR),
            });
        }
        let found = match session_cookie(&parts.headers) {
            Some(cookie) => auth
                .session(state, cookie)
                .await
                .map_err(|e| e.into_response())?
                .map(|actor| (actor, cookie.to_owned())),
            None => None,
        };
        match found {
            Some((actor, cookie)) => {
                let op = Self {
                    csrf: auth.csrf_token(Some(&cookie)),
                    signed_in: true,
                    actor,
                };
                // Every page shows campaigns: a key that may not read them sees none, and
                // can still sign out.
                if !op.actor.may(Scope::Read) {
                    return Err(views::error_page(
                        StatusCode::FORBIDDEN,
                        Some(&op),
                        "Your key does not allow reading campaigns",
                        &format!(
                            "You signed in with key {:?} ({}); the dashboard needs the scope read.",
                            op.actor.name,
                            op.actor.scope_list()
                        ),
                    ));
                }
                Ok(op)
            }
            None => {
                let next = parts
                    .uri
                    .path_and_query()
                    .map(|p| p.as_str())
                    .unwrap_or("/");
                Err(Redirect::to(&format!("/sign-in?next={}", encode(next))).into_response())
            }
        }
    }
}

/// Whether the browser says a request comes from another site (`Sec-Fetch-Site`) or another
/// origin (`Origin`).
pub(super) fn cross_origin(headers: &HeaderMap) -> bool {
    let cross_site = headers
        .get("sec-fetch-site")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v == "cross-site" || v == "same-site");
    let foreign_origin = match (headers.get(header::ORIGIN), headers.get(header::HOST)) {
        (Some(origin), Some(host)) => {
            let origin = origin.to_str().unwrap_or("");
            let host = host.to_str().unwrap_or("");
            origin != "null" && origin.split_once("://").map(|(_, h)| h) != Some(host)
        }
        (Some(origin), None) => origin != "null",
        _ => false,
    };
    cross_site || foreign_origin
}

impl Operator {
    /// Refuse a form that does not carry this session's CSRF token, that the browser says
    /// comes from another site, or that asks what the operator's key does not allow.
    pub(super) fn check(
        &self,
        headers: &HeaderMap,
        shown: &str,
        scope: Scope,
    ) -> Result<(), Refused> {
        let matches = bool::from(subtle::ConstantTimeEq::ct_eq(
            shown.as_bytes(),
            self.csrf.as_bytes(),
        ));
        if cross_origin(headers) || !matches {
            return Err(Refused::page(
                StatusCode::FORBIDDEN,
                self,
                "This form has expired or came from another site",
                "Nothing was changed. Reload the page and try again.",
            ));
        }
        if !self.actor.may(scope) {
            return Err(Refused::page(
                StatusCode::FORBIDDEN,
                self,
                "Your key does not allow this",
                &format!(
                    "Nothing was changed. You signed in with key {:?} ({}); this needs the scope {scope}.",
                    self.actor.name,
                    self.actor.scope_list()
                ),
            ));
        }
        Ok(())
    }
}

/// Percent-encode a value for a query string.
pub(super) fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Where to go after signing in: a path on this server only. `next` must be a relative
/// reference made of a path (and a query) with no authority: it starts with one `/`, and
/// holds only the characters a URL may carry unescaped, so that no browser can read it as
/// another host. Browsers drop tabs and newlines and read `\` as `/` (WHATWG URL parsing):
/// `/<TAB>/evil.example` would be `//evil.example`. Escapes that decode to a control
/// character, a backslash or (in the path) a slash are refused too, for whatever decodes
/// the path again on the way.
pub(super) fn safe_next(next: Option<&str>) -> &str {
    match next {
        Some(n) if is_local_path(n) => n,
        _ => "/campaigns",
    }
}

fn is_local_path(n: &str) -> bool {
    const ALLOWED: &[u8] = b"-._~!$&'()*+,;=:@/?%";
    let Some(rest) = n.strip_prefix('/') else {
        return false;
    };
    if n.len() > 2_048 || rest.starts_with('/') {
        return false;
    }
    let query_at = n.find('?').unwrap_or(n.len());
    let bytes = n.as_bytes();
    bytes.iter().enumerate().all(|(i, &b)| {
        if b != b'%' {
            return b.is_ascii_alphanumeric() || ALLOWED.contains(&b);
        }
        let escaped = bytes
            .get(i + 1..i + 3)
            .and_then(|hex| std::str::from_utf8(hex).ok())
            .and_then(|hex| u8::from_str_radix(hex, 16).ok());
        match escaped {
            Some(c) => !(c.is_ascii_control() || c == b'\\' || (c == b'/' && i < query_at)),
            None => false,
        }
    })
}

#[derive(Deserialize)]
pub(super) struct NextQuery {
    next: Option<String>,
    signed_out: Option<String>,
}

pub(super) async fn sign_in_page(
    State(state): State<AppState>,
    Query(q): Query<NextQuery>,
) -> Response {
    if !state.auth.required() {
        return Redirect::to("/campaigns").into_response();
    }
    let notice = q.signed_out.is_some().then_some("You are signed out.");
    views::sign_in(safe_next(q.next.as_deref()), None, notice).into_response()
}

#[derive(Deserialize)]
pub(super) struct SignInForm {
    #[serde(default)]
    token: String,
    next: Option<String>,
}

pub(super) async fn sign_in(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(form): Form<SignInForm>,
) -> Response {
    let next = safe_next(form.next.as_deref());
    if !state.auth.required() {
        return Redirect::to(next).into_response();
    }
    // There is no session to tie a token to yet: the browser's word on where the form came
    // from, with the SameSite cookie, is the sign-in's CSRF protection.
    if cross_origin(&headers) {
        return views::error_page(
            StatusCode::FORBIDDEN,
            None,
            "This sign-in came from another site",
            "Nothing was changed. Open the dashboard's own sign-in page and try again.",
        );
    }
    let actor = if form.token.trim().is_empty() {
        None
    } else {
        match state.auth.key(&state, &form.token).await {
            Ok(actor) => actor,
            Err(e) => return e.into_response(),
        }
    };
    let Some(actor) = actor else {
        let error = if form.token.trim().is_empty() {
            "Enter an API key (one from `herald keys create`, or HERALD_API_TOKEN)."
        } else {
            "That is not this server's API token or one of its keys (a revoked key no longer signs in)."
        };
        let mut page = views::sign_in(next, Some(error), None).into_response();
        *page.status_mut() = StatusCode::UNAUTHORIZED;
        return page;
    };
    let session = match state.control.start_session(&actor, form.token.trim()).await {
        Ok(session) => session,
        Err(e) => return ApiError::from(e).into_response(),
    };
    // Secure whenever the browser reached us over HTTPS (directly or through a proxy).
    let https = headers
        .get(header::ORIGIN)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|o| o.starts_with("https://"));
    let cookie = format!(
        "{SESSION_COOKIE}={session}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}{}",
        SESSION_HOURS * 3600,
        if https { "; Secure" } else { "" }
    );
    ([(header::SET_COOKIE, cookie)], Redirect::to(next)).into_response()
}

#[derive(Deserialize)]
pub(super) struct CsrfForm {
    #[serde(default)]
    pub(super) csrf: String,
}

/// Sign out: any session may, whatever its key allows, with its CSRF token. The session
/// ends on the server: a copy of the cookie opens nothing from now on.
pub(super) async fn sign_out(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(form): Form<CsrfForm>,
) -> Response {
    let session = session_cookie(&headers);
    if cross_origin(&headers) || !state.auth.csrf_valid(session, &form.csrf) {
        return views::error_page(
            StatusCode::FORBIDDEN,
            None,
            "This form has expired or came from another site",
            "Nothing was changed. Reload the page and try again.",
        );
    }
    if let Some(session) = session
        && let Err(e) = state.control.end_session(session).await
    {
        return ApiError::from(e).into_response();
    }
    let cookie = format!("{SESSION_COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0");
    (
        [(header::SET_COOKIE, cookie)],
        Redirect::to("/sign-in?signed_out=1"),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_stays_on_this_server() {
        assert_eq!(safe_next(Some("/campaigns/a?x=1")), "/campaigns/a?x=1");
        assert_eq!(
            safe_next(Some("/campaigns?status=paused&q=a%20b")),
            "/campaigns?status=paused&q=a%20b"
        );
        for bad in [
            "//evil.example",
            "https://evil.example",
            "/\\evil",
            "",
            "campaigns",
            "/\t/evil.example",
            "/\n/evil.example",
            "/\r/evil.example",
            "/\t\t//evil.example",
            "/%2F/evil.example",
            "/%2f/evil.example",
            "/%5C/evil.example",
            "/%5c%5cevil.example",
            "/%09/evil.example",
            "/%0A/evil.example",
            "/%0d%0a/evil.example",
            "/%",
            "/%zz",
            "/campaigns evil",
            "/campaigns\"",
            "/campaigns<x>",
            "/\u{a0}/evil.example",
            "javascript:alert(1)",
            "/ /evil.example",
        ] {
            assert_eq!(safe_next(Some(bad)), "/campaigns", "{bad}");
        }
        assert_eq!(
            encode("/campaigns?status=paused&x= y"),
            "/campaigns%3Fstatus%3Dpaused%26x%3D%20y"
        );
    }
}
