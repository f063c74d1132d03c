//! The webhook channel: one signed HTTP POST per recipient, the Standard Webhooks way
//! (<https://www.standardwebhooks.com/>).
//!
//! Each request carries `webhook-id` (the recipient's delivery id, the same on every try: the
//! receiver's idempotency key), `webhook-timestamp` (Unix seconds of this try) and
//! `webhook-signature`: `v1,` and the base64 HMAC-SHA256 of `id.timestamp.body` keyed with
//! the bytes of `HERALD_WEBHOOK_SECRET` (`whsec_` and base64, as the standard says).
//! Connections are kept alive ([`super::http`]); redirects are not followed (a redirect is a
//! permanent failure).
//!
//! Every connection goes only where `HERALD_WEBHOOK_ALLOW` allows: the client drops the
//! addresses the policy refuses, so a name that resolves to nothing allowed fails for good,
//! with the class `forbidden`; so does an address in the URL itself. A receiver's answer is
//! read up to [`BODY_MAX`]; past that the connection is closed instead of read on.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::{Engine, engine::general_purpose::STANDARD as BASE64};
use hmac::{Hmac, Mac};
use http::{
    StatusCode,
    header::{HeaderMap, HeaderName, HeaderValue},
};
use serde::Serialize;
use sha2::Sha256;

use super::{
    Attempt, Deliver, Message, Settings,
    http::{Client, Failure},
};

pub use super::http::BODY_MAX;

pub struct Webhook {
    client: Client,
    /// HMAC-SHA256 keyed with the secret: each signature starts from a copy of it.
    mac: Hmac<Sha256>,
}

const WEBHOOK_ID: HeaderName = HeaderName::from_static("webhook-id");
const WEBHOOK_TIMESTAMP: HeaderName = HeaderName::from_static("webhook-timestamp");
const WEBHOOK_SIGNATURE: HeaderName = HeaderName::from_static("webhook-signature");

/// The JSON body of a delivery.
#[derive(Serialize)]
struct Body<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    delivery_id: &'a str,
    campaign: &'a str,
    recipient: Recipient<'a>,
    title: &'a str,
    body: &'a str,
    /// The recipient's one-click unsubscribe link, for the app to show; `null` for a
    /// transactional campaign.
    unsubscribe_url: Option<&'a str>,
}

#[derive(Serialize)]
struct Recipient<'a> {
    id: i64,
    /// `null` for a user without an address.
    email: Option<&'a str>,
}

impl Webhook {
    pub fn new(settings: &Settings) -> Result<Self, String> {
        let secret = settings.webhook_secret.as_ref().ok_or(
            "HERALD_WEBHOOK_SECRET is not set on this worker: webhook requests cannot be signed",
        )?;
        let client = Client::new(
            std::sync::Arc::new(settings.destinations.clone()),
            settings.webhook_timeout,
            settings.concurrency.max(1) * 16,
        )?;
        Ok(Self {
            client,
            mac: keyed(secret.key()),
        })
    }
}

fn keyed(key: &[u8]) -> Hmac<Sha256> {
    Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes keys of any length")
}

/// The Standard Webhooks signature of `id.timestamp.body`, with `mac` keyed by the secret.
fn sign_with(mut mac: Hmac<Sha256>, id: &str, timestamp: &str, body: &[u8]) -> String {
    mac.update(id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("v1,{}", BASE64.encode(mac.finalize().into_bytes()))
}

impl Deliver for Webhook {
    async fn send(&self, message: Message<'_>) -> Attempt {
        let Some(url) = message.campaign.spec.webhook_url.as_ref() else {
            return Attempt::fail("config", "the campaign has no webhook URL");
        };
        let id = message.delivery_id();
        let body = serde_json::to_vec(&Body {
            kind: if message.test.is_some() {
                "herald.message.test"
            } else {
                "herald.message"
            },
            delivery_id: &id,
            campaign: message.campaign.key.as_str(),
            recipient: Recipient {
                id: message.user_id,
                email: Some(message.email).filter(|e| !e.is_empty()),
            },
            title: message.title,
            body: message.body,
            unsubscribe_url: message.unsubscribe_url,
        })
        .expect("the body serializes");
        let timestamp = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs())
            .to_string();
        let signature = sign_with(self.mac.clone(), &id, &timestamp, &body);
        let mut headers = HeaderMap::with_capacity(8);
        headers.insert(
            http::header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        for (name, value) in [
            (WEBHOOK_ID, id),
            (WEBHOOK_TIMESTAMP, timestamp),
            (WEBHOOK_SIGNATURE, signature),
        ] {
            let value = HeaderValue::try_from(value).expect("ids, numbers and base64 are ASCII");
            headers.insert(name, value);
        }
        match self.client.post(url, headers, body).await {
            Ok(answer) => classify(answer.status, retry_after(&answer.headers)),
            Err(failure) => failed(failure),
        }
    }
}

/// What a request that got no answer comes to.
fn failed(failure: Failure) -> Attempt {
    let error = failure.to_string();
    match failure {
        Failure::Forbidden(_) => Attempt::fail(FORBIDDEN, error),
        Failure::Timeout(_) => Attempt::retry("timeout", error),
        Failure::Connect(_) => Attempt::retry("connect", error),
        Failure::Network(_) => Attempt::retry("network", error),
    }
}

/// The class of a send to a destination the policy refuses: permanent.
pub const FORBIDDEN: &str = "forbidden";

/// 2xx is sent. 408, 425, 429 and 5xx may pass; every other answer is permanent.
pub fn classify(status: StatusCode, retry_after: Option<Duration>) -> Attempt {
    if status.is_success() {
        return Attempt::Sent;
    }
    let class = format!("http_{}", status.as_u16());
    let error = match status.canonical_reason() {
        Some(reason) => format!("{} {reason}", status.as_u16()),
        None => status.as_u16().to_string(),
    };
    let transient = matches!(status.as_u16(), 408 | 425 | 429) || status.is_server_error();
    if transient {
        Attempt::Retry {
            class,
            error,
            after: retry_after,
        }
    } else if status.is_redirection() {
        Attempt::fail(class, format!("{error} (redirects are not followed)"))
    } else {
        Attempt::fail(class, error)
    }
}

/// `Retry-After` as seconds or an HTTP date.
fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let value = headers
        .get(http::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = chrono::DateTime::parse_from_rfc2822(value).ok()?;
    (at.with_timezone(&chrono::Utc) - chrono::Utc::now())
        .to_std()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signs_like_the_standard_webhooks_reference() {
        // The example of the Standard Webhooks specification's reference libraries.
        let secret = herald_wire::WebhookSecret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw");
        let mac = keyed(secret.unwrap().key());
        let body = br#"{"test": 2432232314}"#;
        // Twice from the one keyed HMAC, as a worker signs: a signature leaves nothing in it.
        for _ in 0..2 {
            assert_eq!(
                sign_with(
                    mac.clone(),
                    "msg_p5jXN8AQM9LWM0D4loKWxJek",
                    "1614265330",
                    body
                ),
                "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
            );
        }
    }

    #[test]
    fn answers_are_classified() {
        assert_eq!(classify(StatusCode::OK, None), Attempt::Sent);
        assert_eq!(classify(StatusCode::NO_CONTENT, None), Attempt::Sent);
        for transient in [408, 425, 429, 500, 502, 503, 504] {
            let a = classify(StatusCode::from_u16(transient).unwrap(), None);
            assert!(matches!(a, Attempt::Retry { .. }), "{transient}: {a:?}");
        }
        for permanent in [301, 400, 401, 403, 404, 410, 422] {
            let a = classify(StatusCode::from_u16(permanent).unwrap(), None);
            assert!(matches!(a, Attempt::Fail { .. }), "{permanent}: {a:?}");
        }
        let Attempt::Retry {
            class,
            error,
            after,
        } = classify(StatusCode::TOO_MANY_REQUESTS, Some(Duration::from_secs(2)))
        else {
            panic!()
        };
        assert_eq!(class, "http_429");
        assert_eq!(error, "429 Too Many Requests");
        assert_eq!(after, Some(Duration::from_secs(2)));
    }
}
