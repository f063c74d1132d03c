//! Who may call what.
//!
//! - **Services** present `Authorization: Bearer <HERALD_API_TOKEN>` and may call everything.
//! - **Apps** may call one user's inbox with that user's token: the lowercase hex of
//!   HMAC-SHA256(key = `HERALD_INBOX_SECRET`, message = the user id in decimal), computed by
//!   the app's backend. It opens `/v1/users/{id}/…` for that id only.
//!
//! - **Operators** sign in to the dashboard with the service token and then carry a session
//!   cookie (`herald_session`: HttpOnly, SameSite=Strict), a stateless value that expires
//!   after [`SESSION_HOURS`]: its expiry and an HMAC of it keyed by the service token, so it
//!   holds across restarts and API instances, and changing the token ends every session. The
//!   cookie opens the service routes like the token, but a request that changes something
//!   (not GET or HEAD) must also carry the session's CSRF token in `X-CSRF-Token`.
//!
//! Answers: no token, a token that is not Bearer, or one that is neither the service token
//! nor shaped like a user token → 401. A user token on another user's inbox, or on a service
//! route → 403. (A token of a user token's shape that matches the path's user is accepted;
//! one that does not cannot be told from another user's, since tokens do not say whose they
//! are, so it gets 403 too.) Comparisons are constant-time, and tokens are never logged.

use axum::{
    extract::FromRequestParts,
    http::{HeaderMap, header, request::Parts},
};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

use crate::{
    AppState,
    error::{ApiError, ApiResult, path_param},
};

/// The name of the dashboard's session cookie.
pub const SESSION_COOKIE: &str = "herald_session";
/// How long a dashboard session lasts.
pub const SESSION_HOURS: i64 = 12;
/// The header that carries a session's CSRF token on requests that change something.
pub const CSRF_HEADER: &str = "x-csrf-token";

/// The API's secrets.
pub struct Auth {
    /// `None`: development mode, every caller is a service.
    service_token: Option<String>,
    inbox_secret: Option<String>,
    /// Keys CSRF tokens in development mode, where there is no service token: random, per
    /// process.
    dev_key: String,
}

enum Caller {
    Service,
    /// A signed-in dashboard session, by its cookie.
    Session(String),
    /// Shaped like a user token; whose is checked against the path.
    UserToken(String),
}

impl Auth {
    pub fn new(service_token: Option<String>, inbox_secret: Option<String>) -> Self {
        Self {
            service_token,
            inbox_secret,
            dev_key: random_hex(32),
        }
    }

    /// Whether callers need credentials at all (not in development mode).
    pub fn required(&self) -> bool {
        self.service_token.is_some()
    }

    /// Whether `token` is the service token (what an operator signs in with).
    pub fn is_service_token(&self, token: &str) -> bool {
        self.service_token
            .as_deref()
            .is_some_and(|t| bool::from(token.trim().as_bytes().ct_eq(t.as_bytes())))
    }

    /// A new session for a signed-in operator, valid for [`SESSION_HOURS`] from `now` (unix
    /// seconds). `None` in development mode, where nobody signs in.
    pub fn new_session(&self, now: i64) -> Option<String> {
        let key = self.service_token.as_deref()?;
        let expires = now + SESSION_HOURS * 3600;
        Some(format!(
            "v1.{expires}.{}",
            mac_hex(key, &format!("session|{expires}"))
        ))
    }

    /// Whether a session cookie's value is one of ours and has not expired at `now`.
    pub fn session_valid(&self, value: &str, now: i64) -> bool {
        let Some(key) = self.service_token.as_deref() else {
            return false;
        };
        let mut parts = value.splitn(3, '.');
        let (Some("v1"), Some(expires), Some(mac)) = (parts.next(), parts.next(), parts.next())
        else {
            return false;
        };
        let Ok(at) = expires.parse::<i64>() else {
            return false;
        };
        let expected = mac_hex(key, &format!("session|{at}"));
        at > now && bool::from(mac.as_bytes().ct_eq(expected.as_bytes()))
    }

    /// The CSRF token of a session (`None`: development mode's one anonymous session). Forms
    /// carry it in a hidden field, scripts in [`CSRF_HEADER`].
    pub fn csrf_token(&self, session: Option<&str>) -> String {
        let key = self.service_token.as_deref().unwrap_or(&self.dev_key);
        mac_hex(key, &format!("csrf|{}", session.unwrap_or("dev")))
    }

    /// Whether `token` is the CSRF token of `session`.
    pub fn csrf_valid(&self, session: Option<&str>, token: &str) -> bool {
        bool::from(token.as_bytes().ct_eq(self.csrf_token(session).as_bytes()))
    }

    fn caller(&self, headers: &HeaderMap) -> ApiResult<Caller> {
        let Some(value) = headers.get(header::AUTHORIZATION) else {
            if self.service_token.is_none() {
                return Ok(Caller::Service);
            }
            if let Some(session) = session_cookie(headers)
                && self.session_valid(session, chrono::Utc::now().timestamp())
            {
                return Ok(Caller::Session(session.to_owned()));
            }
            return Err(ApiError::unauthorized(
                "no credentials: send `Authorization: Bearer <token>`",
            ));
        };
        let token = value
            .to_str()
            .ok()
            .and_then(|v| {
                let (scheme, token) = v.split_once(' ')?;
                scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
            })
            .ok_or_else(|| {
                ApiError::unauthorized("the Authorization header must be `Bearer <token>`")
            })?;
        match &self.service_token {
            None => return Ok(Caller::Service),
            Some(expected) if bool::from(token.as_bytes().ct_eq(expected.as_bytes())) => {
                return Ok(Caller::Service);
            }
            Some(_) => {}
        }
        if self.inbox_secret.is_some() && is_user_token_shaped(token) {
            return Ok(Caller::UserToken(token.to_owned()));
        }
        Err(ApiError::unauthorized("the token is not valid"))
    }

    /// Whether `token` is `user`'s inbox token.
    fn opens(&self, token: &str, user: i64) -> bool {
        self.inbox_secret.as_deref().is_some_and(|secret| {
            let expected = user_token(secret, user);
            bool::from(token.as_bytes().ct_eq(expected.as_bytes()))
        })
    }
}

/// The dashboard's session cookie in a request, if it has one.
pub fn session_cookie(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|pair| {
            let (name, value) = pair.trim().split_once('=')?;
            (name == SESSION_COOKIE).then_some(value)
        })
}

fn mac_hex(key: &str, message: &str) -> String {
    let mut mac =
        Hmac::<Sha256>::new_from_slice(key.as_bytes()).expect("HMAC takes a key of any length");
    mac.update(message.as_bytes());
    mac.finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// `bytes` random bytes from the kernel, in hex.
fn random_hex(bytes: usize) -> String {
    use std::io::Read;
    let mut buf = vec![0u8; bytes];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut buf))
        .expect("/dev/urandom is readable");
    buf.iter().map(|b| format!("{b:02x}")).collect()
}

/// A user's inbox token: lowercase hex of HMAC-SHA256(secret, user id in decimal).
pub fn user_token(secret: &str, user: i64) -> String {
    mac_hex(secret, &user.to_string())
}

fn is_user_token_shaped(token: &str) -> bool {
    token.len() == 64
        && token
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// A handler that only services may call.
pub struct Service;

impl FromRequestParts<AppState> for Service {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> ApiResult<Self> {
        match state.auth.caller(&parts.headers)? {
            Caller::Service => Ok(Self),
            Caller::Session(session) => session_may(state, parts, &session).map(|()| Self),
            Caller::UserToken(_) => Err(ApiError::forbidden(
                "a user token opens only its user's /v1/users/{id}/inbox routes",
            )),
        }
    }
}

/// A handler on one user's inbox: a service, or the user's own token. Holds the user id
/// from the path.
pub struct UserScope(pub i64);

impl FromRequestParts<AppState> for UserScope {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> ApiResult<Self> {
        let caller = state.auth.caller(&parts.headers)?;
        let raw = path_param(parts, "id").await?;
        let user = parse_user(&raw)?;
        match caller {
            Caller::Service => Ok(Self(user)),
            Caller::Session(session) => session_may(state, parts, &session).map(|()| Self(user)),
            Caller::UserToken(token) if state.auth.opens(&token, user) => Ok(Self(user)),
            Caller::UserToken(_) => Err(ApiError::forbidden(format!(
                "this token does not open user {user}'s inbox"
            ))),
        }
    }
}

/// A session may read; to change something it must show its CSRF token.
fn session_may(state: &AppState, parts: &Parts, session: &str) -> ApiResult<()> {
    if parts.method.is_safe() {
        return Ok(());
    }
    let shown = parts
        .headers
        .get(CSRF_HEADER)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if state.auth.csrf_valid(Some(session), shown) {
        Ok(())
    } else {
        Err(ApiError::forbidden(
            "a dashboard session must send its CSRF token in X-CSRF-Token to change anything",
        ))
    }
}

/// A user id from a path: a positive whole number.
pub(crate) fn parse_user(raw: &str) -> ApiResult<i64> {
    use herald_wire::users::{MAX_USER_ID, is_user_id};
    raw.parse::<i64>()
        .ok()
        .filter(|id| is_user_id(*id))
        .ok_or_else(|| {
            let shown: String = raw.chars().take(40).collect();
            ApiError::invalid(format!(
                "user id {shown:?} is not a whole number from 1 to {MAX_USER_ID}"
            ))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_tokens_are_the_documented_hmac() {
        // HMAC-SHA256(key="key", message="The quick brown fox jumps over the lazy dog"), the
        // published test vector, shows the construction; for a user id the message is its
        // decimal text.
        let mut mac = Hmac::<Sha256>::new_from_slice(b"key").unwrap();
        mac.update(b"The quick brown fox jumps over the lazy dog");
        let hex: String = mac
            .finalize()
            .into_bytes()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(
            hex,
            "f7bc83f430538424b13298e6aa6fb143ef4d59a14946175997479dbc2d1a3cd8"
        );
        let t = user_token("a-secret-of-16-chars", 42);
        assert!(is_user_token_shaped(&t), "{t}");
        assert_ne!(t, user_token("a-secret-of-16-chars", 43));
        assert!(!is_user_token_shaped(&t.to_uppercase()));
    }

    #[test]
    fn sessions_expire_and_belong_to_their_token() {
        let auth = Auth::new(Some("a-service-token-0123".into()), None);
        let s = auth.new_session(1_000).unwrap();
        assert!(auth.session_valid(&s, 1_001));
        assert!(!auth.session_valid(&s, 1_000 + SESSION_HOURS * 3600));
        let forged = s.replacen(
            &(1_000 + SESSION_HOURS * 3600).to_string(),
            "99999999999",
            1,
        );
        assert!(
            !auth.session_valid(&forged, 1_001),
            "a longer expiry breaks the MAC"
        );
        let other = Auth::new(Some("another-token-0123456".into()), None);
        assert!(
            !other.session_valid(&s, 1_001),
            "a new token ends every session"
        );
        assert!(auth.csrf_valid(Some(&s), &auth.csrf_token(Some(&s))));
        assert!(!auth.csrf_valid(Some(&s), &auth.csrf_token(Some("v1.1.x"))));
        assert!(!auth.csrf_valid(Some(&s), ""));
        let dev = Auth::new(None, None);
        assert!(dev.new_session(1).is_none());
        assert!(dev.csrf_valid(None, &dev.csrf_token(None)));
    }

    #[test]
    fn user_ids_are_positive_whole_numbers() {
        assert_eq!(parse_user("7").unwrap(), 7);
        for bad in ["0", "-1", "x", "1.0", "99999999999999999999", ""] {
            assert!(parse_user(bad).is_err(), "{bad:?}");
        }
    }
}
