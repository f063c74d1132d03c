//! A Standard Webhooks verifier written from the specification
//! (<https://github.com/standard-webhooks/standard-webhooks/blob/main/spec/standard-webhooks.md>),
//! not from Herald's signing code, so that the sink catches a sender that signs its own
//! way: the secret is `whsec_` and base64, the signed content is `id.timestamp.body`, the
//! header holds space-separated `v1,<base64>` signatures, and a timestamp more than five
//! minutes off is refused.

use base64::{Engine, engine::general_purpose::STANDARD};
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// How far a timestamp may be from the receiver's clock.
const TOLERANCE_SECS: u64 = 5 * 60;

pub struct Verifier {
    key: Vec<u8>,
}

impl Verifier {
    /// A verifier for a secret as the standard gives it: `whsec_` is optional, the rest is
    /// base64.
    pub fn new(secret: &str) -> Result<Self, String> {
        let b64 = secret.strip_prefix("whsec_").unwrap_or(secret);
        let key = STANDARD
            .decode(b64)
            .map_err(|e| format!("the secret is not base64: {e}"))?;
        Ok(Self { key })
    }

    /// Whether `signatures` (the `webhook-signature` header) holds a valid `v1` signature
    /// of the message, and its timestamp is within the tolerance of `now`.
    pub fn verify(
        &self,
        id: &str,
        timestamp: &str,
        signatures: &str,
        body: &[u8],
        now: u64,
    ) -> bool {
        let Ok(ts) = timestamp.parse::<u64>() else {
            return false;
        };
        if ts.abs_diff(now) > TOLERANCE_SECS {
            return false;
        }
        signatures.split(' ').any(|entry| {
            let Some(("v1", sig)) = entry.split_once(',') else {
                return false;
            };
            let Ok(sig) = STANDARD.decode(sig) else {
                return false;
            };
            let mut mac = Hmac::<Sha256>::new_from_slice(&self.key).expect("any key length");
            mac.update(format!("{id}.{timestamp}.").as_bytes());
            mac.update(body);
            // Constant-time comparison.
            mac.verify_slice(&sig).is_ok()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_specifications_example_verifies() {
        // The example the standard's reference libraries test against.
        let v = Verifier::new("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        let (id, ts, body) = (
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            "1614265330",
            br#"{"test": 2432232314}"#,
        );
        let sig = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";
        assert!(v.verify(id, ts, sig, body, 1614265330));
        assert!(v.verify(id, ts, &format!("v1,bm9wZQ== {sig}"), body, 1614265330));
        assert!(!v.verify(id, ts, sig, br#"{"test": 2432232315}"#, 1614265330));
        assert!(!v.verify(id, ts, sig, body, 1614265330 + 301));
        assert!(!v.verify(id, ts, &sig.replace("v1,", "v2,"), body, 1614265330));
    }
}
