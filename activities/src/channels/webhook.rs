//! The webhook channel: one signed HTTP POST per recipient, the Standard Webhooks way
//! (<https://www.standardwebhooks.com/>).
//!
//! Each request carries `webhook-id` (the recipient's delivery id, the same on every try: the
//! receiver's idempotency key), `webhook-timestamp` (Unix seconds of this try) and
//! `webhook-signature`: `v1,` and the base64 HMAC-SHA256 of `id.timestamp.body` keyed with
//! the bytes of `HERALD_WEBHOOK_SECRET` (`whsec_` and base64, as the standard says).
//! Connections are pooled and kept alive; redirects are not followed (a redirect is a
//! failure that names where it pointed).
//!
//! Every connection goes only where `HERALD_WEBHOOK_ALLOW` allows: the resolver drops the
//! addresses the policy refuses, so a name that resolves to nothing allowed fails for good,
//! with the class `forbidden`; so does an address in the URL itself. A receiver's answer is
//! read up to [`BODY_MAX`]; past that the connection is closed instead of read on.

use std::{
    net::{IpAddr, SocketAddr},
    sync::Arc,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use base64::{Engine, engine::general_purpose::STANDARD as BASE64};
use herald_wire::{Destinations, webhooks::Host};
use hmac::{Hmac, Mac};
use reqwest::{
    StatusCode,
    dns::{Addrs, Name, Resolve, Resolving},
    header::HeaderMap,
};
use serde::Serialize;
use sha2::Sha256;

use super::{Attempt, Deliver, Message, Settings};

/// The most of a receiver's answer that is read. Herald needs only its status; a longer
/// body is cut off by closing the connection.
pub const BODY_MAX: usize = 4 * 1024;

pub struct Webhook {
    client: reqwest::Client,
    key: Vec<u8>,
    destinations: Arc<Destinations>,
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
        let secret = settings.webhook_secret.as_ref().ok_or(
            "HERALD_WEBHOOK_SECRET is not set on this worker: webhook requests cannot be signed",
        )?;
        let destinations = Arc::new(settings.destinations.clone());
        let client = reqwest::Client::builder()
            .dns_resolver(Arc::new(PolicyResolver(destinations.clone())))
            // A proxy from the environment would resolve the destination itself, past the
            // policy's resolver.
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(settings.webhook_timeout)
            .connect_timeout(settings.webhook_timeout.min(Duration::from_secs(5)))
            .pool_max_idle_per_host(settings.concurrency.max(1) * 16)
            .pool_idle_timeout(Duration::from_secs(60))
            .tcp_nodelay(true)
            .user_agent(concat!("herald/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| format!("cannot build the webhook client: {e}"))?;
        Ok(Self {
            client,
            key: secret.key().to_vec(),
            destinations,
        })
    }

    /// `webhook-signature` for one request.
    pub fn sign(&self, id: &str, timestamp: u64, body: &[u8]) -> String {
        sign(&self.key, id, timestamp, body)
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
        // A name is checked by the resolver, on the addresses it connects to.
        let (host, port) = url.host_port();
        let allowed = match host {
            Host::Ip(_) => self.destinations.check(&host, port, &[]),
            Host::Name(_) => self.destinations.refuse_service(&host, port),
        };
        if let Err(refused) = allowed {
            return Attempt::fail(FORBIDDEN, refused.0);
        }
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
            .post(url.url().clone())
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
                drain(response).await;
                classify(status, after)
            }
            Err(e) => failed(&e),
        }
    }
}

/// What a request that got no answer comes to.
fn failed(e: &reqwest::Error) -> Attempt {
    if let Some(refused) = forbidden(e) {
        return Attempt::fail(FORBIDDEN, refused);
    }
    if e.is_timeout() {
        Attempt::retry("timeout", format!("no answer within the timeout: {e}"))
    } else if e.is_connect() {
        Attempt::retry("connect", format!("cannot connect: {}", root_cause(e)))
    } else {
        Attempt::retry("network", root_cause(e))
    }
}

/// The class of a send to a destination the policy refuses: permanent.
pub const FORBIDDEN: &str = "forbidden";

/// Read a small answer to its end, so that the connection goes back to the pool; drop one
/// longer than [`BODY_MAX`] (or endless) unread, which closes its connection.
async fn drain(mut response: reqwest::Response) {
    if response
        .content_length()
        .is_some_and(|n| n > BODY_MAX as u64)
    {
        return;
    }
    let mut read = 0;
    while let Ok(Some(chunk)) = response.chunk().await {
        read += chunk.len();
        if read > BODY_MAX {
            return;
        }
    }
}

/// Resolves names as the system does, keeping only the addresses the policy allows.
struct PolicyResolver(Arc<Destinations>);

/// A name that resolved only to addresses the policy refuses.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct Forbidden(String);

impl Resolve for PolicyResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let destinations = self.0.clone();
        Box::pin(async move {
            let name = name.as_str().to_owned();
            let found: Vec<SocketAddr> =
                tokio::net::lookup_host((name.as_str(), 0)).await?.collect();
            if destinations.allows_name(&name) {
                return Ok(Box::new(found.into_iter()) as Addrs);
            }
            let allowed: Vec<SocketAddr> = found
                .iter()
                .copied()
                .filter(|a| destinations.allows_ip(a.ip()))
                .collect();
            if allowed.is_empty() {
                let ips: Vec<IpAddr> = found.iter().map(SocketAddr::ip).collect();
                let why = match destinations.check(&Host::Name(name.clone()), 0, &ips) {
                    Err(refused) => refused.0,
                    Ok(()) => format!("{name} resolves to no address"),
                };
                return Err(Box::new(Forbidden(why)) as Box<_>);
            }
            Ok(Box::new(allowed.into_iter()) as Addrs)
        })
    }
}

/// The policy's refusal, when that is what failed a request.
fn forbidden(e: &(dyn std::error::Error + 'static)) -> Option<String> {
    let mut source = Some(e);
    while let Some(e) = source {
        if let Some(f) = e.downcast_ref::<Forbidden>() {
            return Some(f.0.clone());
        }
        source = e.source();
    }
    None
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
        let secret = herald_wire::WebhookSecret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw");
        let key = secret.unwrap().key().to_vec();
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
}
