//! Who may call what.
//!
//! - **Services** present `Authorization: Bearer <key>`: a key made with `herald keys create`
//!   (`hk_…`, with scopes: read, operate, launch, admin), or `HERALD_API_TOKEN`, the
//!   bootstrap admin key (acting as `api-token`). A route needs one scope ([`Can`]); `admin`
//!   allows every route.
//! - **Apps** may call one user's inbox with that user's token: the lowercase hex of
//!   HMAC-SHA256(key = `HERALD_INBOX_SECRET`, message = the user id in decimal), computed by
//!   the app's backend. It opens `/v1/users/{id}/…` for that id only.
//! - **Operators** sign in to the dashboard with a key and then carry a session cookie
//!   (`herald_session`: HttpOnly, SameSite=Strict), a random value whose hash is a row in
//!   `api_sessions`. Signing out ends it wherever the cookie was copied to; revoking its key
//!   (or changing `HERALD_API_TOKEN`, for a session of that token) ends it too; it expires
//!   after [`SESSION_HOURS`]. The cookie acts as its key, but a request that changes
//!   something (not GET or HEAD) must also carry the session's CSRF token in `X-CSRF-Token`.
//!
//! Answers: no token, a token that is not Bearer, a key that is unknown or revoked → 401. A
//! key without the route's scope → 403. A user token on another user's inbox, or on a
//! service route → 403. (A token of a user token's shape that matches the path's user is
//! accepted; one that does not cannot be told from another user's, since tokens do not say
//! whose they are, so it gets 403 too.) Comparisons of secrets are constant-time or by
//! their SHA-256, and they are never logged.

use std::marker::PhantomData;

use axum::{
    extract::FromRequestParts,
    http::{HeaderMap, header, request::Parts},
};
use herald_wire::keys::{API_TOKEN_ACTOR, Actor, DEV_ACTOR, Scope};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

pub use herald_control::keys::SESSION_HOURS;

use crate::{
    AppState,
    error::{ApiError, ApiResult, path_param},
};

/// The name of the dashboard's session cookie.
pub const SESSION_COOKIE: &str = "herald_session";
/// The header that carries a session's CSRF token on requests that change something.
pub const CSRF_HEADER: &str = "x-csrf-token";

/// The API's secrets.
pub struct Auth {
    /// `None`: development mode, every caller is an admin.
    service_token: Option<String>,
    inbox_secret: Option<String>,
    /// Keys CSRF tokens: the service token, shared by every instance of the API (a form
    /// served by one may be posted to another); in development mode, random per process.
    csrf_key: String,
}

pub enum Caller {
    /// A key: who, and the key itself when it is one of `herald keys` (which can be revoked).
    Key(Actor, Option<String>),
    /// A signed-in dashboard session: who, and its cookie.
    Session(Actor, String),
    /// Shaped like a user token; whose is checked against the path.
    UserToken(String),
}

impl Auth {
    pub fn new(service_token: Option<String>, inbox_secret: Option<String>) -> Self {
        Self {
            csrf_key: service_token
                .clone()
                .unwrap_or_else(|| herald_control::keys::random_hex(32)),
            service_token,
            inbox_secret,
        }
    }

    /// Whether callers need credentials at all (not in development mode).
    pub fn required(&self) -> bool {
        self.service_token.is_some()
    }

    /// The bootstrap token, to check the sessions opened with it.
    pub fn api_token(&self) -> Option<&str> {
        self.service_token.as_deref()
    }

    /// Who a presented key is: the bootstrap token, a key of `herald keys`, or nobody.
    pub async fn key(&self, state: &AppState, token: &str) -> ApiResult<Option<Actor>> {
        let token = token.trim();
        match &self.service_token {
            None => return Ok(Some(Actor::admin(DEV_ACTOR))),
            Some(t) if bool::from(token.as_bytes().ct_eq(t.as_bytes())) => {
                return Ok(Some(Actor::admin(API_TOKEN_ACTOR)));
            }
            Some(_) => {}
        }
        Ok(state.control.key(token).await?)
    }

    /// Who a session cookie signs in, if its session is open.
    pub async fn session(&self, state: &AppState, cookie: &str) -> ApiResult<Option<Actor>> {
        Ok(state.control.session(cookie, self.api_token()).await?)
    }

    /// The CSRF token of a session (`None`: development mode's one anonymous session). Forms
    /// carry it in a hidden field, scripts in [`CSRF_HEADER`].
    pub fn csrf_token(&self, session: Option<&str>) -> String {
        mac_hex(
            &self.csrf_key,
            &format!("csrf|{}", session.unwrap_or("dev")),
        )
    }

    /// Whether `token` is the CSRF token of `session`.
    pub fn csrf_valid(&self, session: Option<&str>, token: &str) -> bool {
        bool::from(token.as_bytes().ct_eq(self.csrf_token(session).as_bytes()))
    }

    async fn caller(&self, state: &AppState, headers: &HeaderMap) -> ApiResult<Caller> {
        let Some(value) = headers.get(header::AUTHORIZATION) else {
            if self.service_token.is_none() {
                return Ok(Caller::Key(Actor::admin(DEV_ACTOR), None));
            }
            if let Some(cookie) = session_cookie(headers)
                && let Some(actor) = self.session(state, cookie).await?
            {
                return Ok(Caller::Session(actor, cookie.to_owned()));
            }
            return Err(ApiError::unauthorized(
                "no credentials: send `Authorization: Bearer <key>`",
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
                ApiError::unauthorized("the Authorization header must be `Bearer <key>`")
            })?;
        if let Some(actor) = self.key(state, token).await? {
            let revocable = ![API_TOKEN_ACTOR, DEV_ACTOR].contains(&actor.name.as_str());
            return Ok(Caller::Key(actor, revocable.then(|| token.to_owned())));
        }
        if self.inbox_secret.is_some() && is_user_token_shaped(token) {
            return Ok(Caller::UserToken(token.to_owned()));
        }
        Err(ApiError::unauthorized(
            "the key is not valid (unknown, or revoked)",
        ))
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

/// The scope a route needs, as a type: `Can<Operate>`.
pub trait Needs {
    const SCOPE: Scope;
}

macro_rules! scopes {
    ($($name:ident => $scope:expr),* $(,)?) => {$(
        pub struct $name;
        impl Needs for $name {
            const SCOPE: Scope = $scope;
        }
    )*};
}

scopes! {
    Read => Scope::Read,
    Operate => Scope::Operate,
    Launch => Scope::Launch,
    Admin => Scope::Admin,
}

/// A handler a key (or a session) with scope `S` may call; holds who called, and with what.
pub struct Can<S>(pub Actor, Credential, PhantomData<S>);

/// What a caller presented, to ask again later whether it still opens anything.
#[derive(Clone)]
pub enum Credential {
    /// `HERALD_API_TOKEN`, or none in development mode: good while the server runs.
    Lasting,
    Key(String),
    /// A dashboard session's cookie.
    Session(String),
}

impl<S> Can<S> {
    /// The caller's name, recorded as the actor of what it does.
    pub fn name(&self) -> &str {
        &self.0.name
    }

    /// What the caller presented.
    pub fn credential(&self) -> Credential {
        self.1.clone()
    }
}

impl Credential {
    /// Whether it still opens the API: a key not revoked, a session not ended. A database
    /// that cannot be asked is taken as a yes (a stream is not cut for a blip).
    pub async fn still_good(&self, state: &AppState) -> bool {
        let found = match self {
            Self::Lasting => return true,
            Self::Key(key) => state.auth.key(state, key).await.map(|a| a.is_some()),
            Self::Session(cookie) => state.auth.session(state, cookie).await.map(|a| a.is_some()),
        };
        found.unwrap_or(true)
    }
}

impl<S: Needs> FromRequestParts<AppState> for Can<S> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> ApiResult<Self> {
        let (actor, credential) = match state.auth.caller(state, &parts.headers).await? {
            Caller::Key(actor, key) => (actor, key.map_or(Credential::Lasting, Credential::Key)),
            Caller::Session(actor, cookie) => {
                session_may(state, parts, &cookie)?;
                (actor, Credential::Session(cookie))
            }
            Caller::UserToken(_) => {
                return Err(ApiError::forbidden(
                    "a user token opens only its user's /v1/users/{id}/inbox routes",
                ));
            }
        };
        allowed(&actor, S::SCOPE)?;
        Ok(Self(actor, credential, PhantomData))
    }
}

/// Refuse an actor without `scope`.
pub fn allowed(actor: &Actor, scope: Scope) -> ApiResult<()> {
    if actor.may(scope) {
        return Ok(());
    }
    Err(ApiError::forbidden(format!(
        "key {:?} may not do this: it needs the scope {scope}, and has {}",
        actor.name,
        actor.scope_list()
    )))
}

/// A handler on one user's inbox: a key that may read it (`read`; `operate` to mark it read),
/// or the user's own token. Holds the user id from the path.
pub struct UserScope(pub i64);

impl FromRequestParts<AppState> for UserScope {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> ApiResult<Self> {
        let caller = state.auth.caller(state, &parts.headers).await?;
        let raw = path_param(parts, "id").await?;
        let user = parse_user(&raw)?;
        // A key reads any inbox with `read`; marking messages read changes the campaigns'
        // read counts, which takes `operate`.
        let needs = if parts.method.is_safe() {
            Scope::Read
        } else {
            Scope::Operate
        };
        match caller {
            Caller::Key(actor, _) => allowed(&actor, needs).map(|()| Self(user)),
            Caller::Session(actor, cookie) => {
                session_may(state, parts, &cookie)?;
                allowed(&actor, needs).map(|()| Self(user))
            }
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
    fn csrf_tokens_belong_to_their_session() {
        let auth = Auth::new(Some("a-service-token-0123".into()), None);
        let s = "a".repeat(64);
        assert!(auth.csrf_valid(Some(&s), &auth.csrf_token(Some(&s))));
        assert!(!auth.csrf_valid(Some(&s), &auth.csrf_token(Some(&"b".repeat(64)))));
        assert!(!auth.csrf_valid(Some(&s), ""));
        let instance = Auth::new(Some("a-service-token-0123".into()), None);
        assert!(
            instance.csrf_valid(Some(&s), &auth.csrf_token(Some(&s))),
            "every instance of the API takes the forms of the others"
        );
        let dev = Auth::new(None, None);
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
