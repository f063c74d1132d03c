//! The webhook channel: one signed HTTP POST per recipient, the Standard Webhooks way
//! (<https://www.standardwebhooks.com/>).
//!
//! Each request carries `webhook-id` (the recipient's delivery id, the same on every try: the
//! receiver's idempotency key), `webhook-timestamp` (Unix seconds of this try) and
//! `webhook-signature`: `v1,` and the base64 HMAC-SHA256 of `id.timestamp.body` keyed with
//! `HERALD_WEBHOOK_SECRET` (a `whsec_…` secret is base64-decoded first, as the standard
//! says). Connections are pooled and kept alive; redirects are not followed (a redirect is
//! a failure that names where it pointed).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::{Engine, engine::general_purpose::STANDARD as BASE64};
use hmac::{Hmac, Mac};
use reqwest::{StatusCode, header::HeaderMap};
use serde::Serialize;
use sha2::Sha256;

use super::{Attempt, Deliver, Message, Settings};

pub struct Webhook {
    client: reqwest::Client,
    key: Vec<u8>,
}

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
}

#[derive(Serialize)]
struct Recipient<'a> {
    id: i64,
    /// `null` for a user without an address.
    email: Option<&'a str>,
}

impl Webhook {
    pub fn new(settings: &Settings) -> Result<Self, String> {
        let secret = settings.webhook_secret.as_deref().ok_or(
            "HERALD_WEBHOOK_SECRET is not set on this worker: webhook requests cannot be signed",
        )?;
        let key = signing_key(secret)?;
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(settings.webhook_timeout)
            .connect_timeout(settings.webhook_timeout.min(Duration::from_secs(5)))
            .pool_max_idle_per_host(settings.concurrency.max(1) * 16)
            .pool_idle_timeout(Duration::from_secs(60))
            .tcp_nodelay(true)
            .user_agent(concat!("herald/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| format!("cannot build the webhook client: {e}"))?;
        Ok(Self { client, key })
    }

    /// `webhook-signature` for one request.
    pub fn sign(&self, id: &str, timestamp: u64, body: &[u8]) -> String {
        sign(&self.key, id, timestamp, body)
    }
}

/// The HMAC key of a secret: a `whsec_` secret is base64 after its prefix; any other secret
/// is used as its bytes.
pub fn signing_key(secret: &str) -> Result<Vec<u8>, String> {
    match secret.strip_prefix("whsec_") {
        Some(b64) => BASE64.decode(b64).map_err(|e| {
            format!("HERALD_WEBHOOK_SECRET starts with whsec_ but is not base64: {e}")
        }),
        None if secret.len() < 16 => {
            Err("HERALD_WEBHOOK_SECRET is shorter than 16 characters".to_owned())
        }
        None => Ok(secret.as_bytes().to_vec()),
    }
}

/// The Standard Webhooks signature of `id.timestamp.body`.
pub fn sign(key: &[u8], id: &str, timestamp: u64, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes keys of any length");
    mac.update(id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.to_string().as_bytes());
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
            kind: "herald.message",
            delivery_id: &id,
            campaign: message.campaign.key.as_str(),
            recipient: Recipient {
                id: message.user_id,
                email: Some(message.email).filter(|e| !e.is_empty()),
            },
            title: message.campaign.content.title(),
            body: message.campaign.content.body(),
        })
        .expect("the body serializes");
        let timestamp = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let signature = self.sign(&id, timestamp, &body);
        let response = self
            .client
            .post(url.as_str())
            .header("content-type", "application/json")
            .header("webhook-id", &id)
            .header("webhook-timestamp", timestamp.to_string())
            .header("webhook-signature", signature)
            .body(body)
            .send()
            .await;
        match response {
            Ok(response) => {
                let status = response.status();
                let after = retry_after(response.headers());
                // Read the (small) body so that the connection goes back to the pool.
                let _ = response.bytes().await;
                classify(status, after)
            }
            Err(e) if e.is_timeout() => {
                Attempt::retry("timeout", format!("no answer within the timeout: {e}"))
            }
            Err(e) if e.is_connect() => {
                Attempt::retry("connect", format!("cannot connect: {}", root_cause(&e)))
            }
            Err(e) => Attempt::retry("network", root_cause(&e)),
        }
    }
}

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
        .get(reqwest::header::RETRY_AFTER)?
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

/// The innermost error: reqwest's own message is only "error sending request".
fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut source = e;
    while let Some(next) = source.source() {
        source = next;
    }
    source.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signs_like_the_standard_webhooks_reference() {
        // The example of the Standard Webhooks specification's reference libraries.
        let key = signing_key("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        let body = br#"{"test": 2432232314}"#;
        assert_eq!(
            sign(&key, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        );
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

    #[test]
    fn short_secrets_are_refused() {
        assert!(signing_key("short").is_err());
        assert!(signing_key("whsec_!!!").is_err());
        assert_eq!(
            signing_key("a-long-enough-secret").unwrap(),
            b"a-long-enough-secret"
        );
    }
}
