//! Who may call what.
//!
//! - **Services** present `Authorization: Bearer <HERALD_API_TOKEN>` and may call everything.
//! - **Apps** may call one user's inbox with that user's token: the lowercase hex of
//!   HMAC-SHA256(key = `HERALD_INBOX_SECRET`, message = the user id in decimal), computed by
//!   the app's backend. It opens `/v1/users/{id}/…` for that id only.
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

/// The API's secrets.
pub struct Auth {
    /// `None`: development mode, every caller is a service.
    service_token: Option<String>,
    inbox_secret: Option<String>,
}

enum Caller {
    Service,
    /// Shaped like a user token; whose is checked against the path.
    UserToken(String),
}

impl Auth {
    pub fn new(service_token: Option<String>, inbox_secret: Option<String>) -> Self {
        Self {
            service_token,
            inbox_secret,
        }
    }

    fn caller(&self, headers: &HeaderMap) -> ApiResult<Caller> {
        let Some(value) = headers.get(header::AUTHORIZATION) else {
            return match self.service_token {
                None => Ok(Caller::Service),
                Some(_) => Err(ApiError::unauthorized(
                    "no credentials: send `Authorization: Bearer <token>`",
                )),
            };
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

/// A user's inbox token: lowercase hex of HMAC-SHA256(secret, user id in decimal).
pub fn user_token(secret: &str, user: i64) -> String {
    let mut mac =
        Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes a key of any length");
    mac.update(user.to_string().as_bytes());
    mac.finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
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
            Caller::UserToken(token) if state.auth.opens(&token, user) => Ok(Self(user)),
            Caller::UserToken(_) => Err(ApiError::forbidden(format!(
                "this token does not open user {user}'s inbox"
            ))),
        }
    }
}

/// A user id from a path: a positive whole number.
fn parse_user(raw: &str) -> ApiResult<i64> {
    raw.parse::<i64>().ok().filter(|id| *id > 0).ok_or_else(|| {
        let shown: String = raw.chars().take(40).collect();
        ApiError::invalid(format!("user id {shown:?} is not a positive whole number"))
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
    fn user_ids_are_positive_whole_numbers() {
        assert_eq!(parse_user("7").unwrap(), 7);
        for bad in ["0", "-1", "x", "1.0", "99999999999999999999", ""] {
            assert!(parse_user(bad).is_err(), "{bad:?}");
        }
    }
}
