//! Consent's vocabulary (docs/consent.md): a campaign's category, what an opt-out covers,
//! and the unsubscribe token a recipient's link carries.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use crate::{Channel, InvalidInput};

/// What a campaign is about, as far as a user's "no" goes: `marketing` unless the operator
/// says otherwise, `transactional` (reserved: it ignores opt-outs), or a name an operator
/// declared (`herald categories add`). 1–40 characters of `a-z`, `0-9`, `_` and `-`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Category(String);

impl Category {
    pub const MARKETING: &'static str = "marketing";
    pub const TRANSACTIONAL: &'static str = "transactional";

    pub fn parse(s: &str) -> Result<Self, InvalidInput> {
        let ok = (1..=40).contains(&s.len())
            && s.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
            && s.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-');
        if ok {
            Ok(Self(s.to_owned()))
        } else {
            Err(InvalidInput(format!(
                "category {s:?} must be 1 to 40 characters of a-z, 0-9, _ and -, starting with a letter or digit"
            )))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether it ignores opt-outs.
    pub fn is_transactional(&self) -> bool {
        self.0 == Self::TRANSACTIONAL
    }

    pub fn is_marketing(&self) -> bool {
        self.0 == Self::MARKETING
    }
}

impl Default for Category {
    fn default() -> Self {
        Self(Self::MARKETING.to_owned())
    }
}

impl TryFrom<String> for Category {
    type Error = InvalidInput;
    fn try_from(s: String) -> Result<Self, InvalidInput> {
        Self::parse(&s)
    }
}

impl From<Category> for String {
    fn from(c: Category) -> String {
        c.0
    }
}

impl std::fmt::Display for Category {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// The channels an opt-out covers: one, or all of them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum OptOutChannel {
    One(Channel),
    All,
}

impl OptOutChannel {
    pub fn name(self) -> &'static str {
        match self {
            Self::One(c) => c.name(),
            Self::All => "all",
        }
    }
}

impl std::str::FromStr for OptOutChannel {
    type Err = InvalidInput;
    fn from_str(s: &str) -> Result<Self, InvalidInput> {
        match s {
            "all" => Ok(Self::All),
            s => s.parse().map(Self::One).map_err(|_| {
                InvalidInput(format!(
                    "channel {s:?} is not one of inbox, webhook, email and all"
                ))
            }),
        }
    }
}

impl TryFrom<String> for OptOutChannel {
    type Error = InvalidInput;
    fn try_from(s: String) -> Result<Self, InvalidInput> {
        s.parse()
    }
}

impl From<OptOutChannel> for String {
    fn from(c: OptOutChannel) -> String {
        c.name().to_owned()
    }
}

/// What an unsubscribe link stands for: this user, out of this category, on this channel.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Unsubscribe {
    pub user_id: i64,
    pub category: Category,
    pub channel: Channel,
}

/// The key unsubscribe tokens are signed with: `HERALD_UNSUBSCRIBE_SECRET`, or the one Herald
/// made and keeps in the ledger when that is not set.
#[derive(Clone)]
pub struct UnsubscribeKey(Hmac<Sha256>);

impl std::fmt::Debug for UnsubscribeKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("UnsubscribeKey(..)")
    }
}

/// Bytes of the token's signature: 128 bits cannot be guessed, and keep links short.
const SIGNATURE_BYTES: usize = 16;

impl UnsubscribeKey {
    pub fn new(secret: &[u8]) -> Self {
        Self(Hmac::new_from_slice(secret).expect("HMAC takes a key of any length"))
    }

    fn sign(&self, payload: &str) -> [u8; SIGNATURE_BYTES] {
        let mut mac = self.0.clone();
        mac.update(payload.as_bytes());
        let full = mac.finalize().into_bytes();
        let mut out = [0; SIGNATURE_BYTES];
        out.copy_from_slice(&full[..SIGNATURE_BYTES]);
        out
    }

    /// The token of a link: `USER.CATEGORY.CHANNEL` in base64url, a dot, and its signature.
    /// It needs no state to check, and never expires: a link in a year-old e-mail must work.
    pub fn token(&self, u: &Unsubscribe) -> String {
        let payload = format!("{}.{}.{}", u.user_id, u.category, u.channel);
        format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(&payload),
            URL_SAFE_NO_PAD.encode(self.sign(&payload))
        )
    }

    /// What a token stands for, if this key signed it.
    pub fn verify(&self, token: &str) -> Option<Unsubscribe> {
        let (payload, signature) = token.split_once('.')?;
        let payload = String::from_utf8(URL_SAFE_NO_PAD.decode(payload).ok()?).ok()?;
        let signature = URL_SAFE_NO_PAD.decode(signature).ok()?;
        if signature.len() != SIGNATURE_BYTES {
            return None;
        }
        let mut mac = self.0.clone();
        mac.update(payload.as_bytes());
        // Constant time, on the truncated tag.
        mac.verify_truncated_left(&signature).ok()?;
        let mut parts = payload.splitn(3, '.');
        let user_id = parts.next()?.parse().ok()?;
        let category = Category::parse(parts.next()?).ok()?;
        let channel = parts.next()?.parse().ok()?;
        Some(Unsubscribe {
            user_id,
            category,
            channel,
        })
    }

    /// The link of a token under `base` (HERALD_PUBLIC_URL, without a trailing slash).
    pub fn url(&self, base: &str, u: &Unsubscribe) -> String {
        format!("{}/u/{}", base.trim_end_matches('/'), self.token(u))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn marketing(user_id: i64) -> Unsubscribe {
        Unsubscribe {
            user_id,
            category: Category::default(),
            channel: Channel::Email,
        }
    }

    #[test]
    fn a_token_stands_for_what_it_was_made_for_under_its_key_only() {
        let key = UnsubscribeKey::new(b"a secret of some length");
        let token = key.token(&marketing(42));
        assert_eq!(key.verify(&token), Some(marketing(42)));
        assert!(token.len() < 64, "{token}");
        let other = UnsubscribeKey::new(b"another secret");
        assert_eq!(other.verify(&token), None);
        // Another user's payload with this signature.
        let (_, sig) = token.split_once('.').unwrap();
        let forged = format!("{}.{sig}", URL_SAFE_NO_PAD.encode("43.marketing.email"));
        assert_eq!(key.verify(&forged), None);
        for junk in ["", ".", "x.y", "Zm9v", "Zm9v.", &token[..token.len() - 1]] {
            assert_eq!(key.verify(junk), None, "{junk}");
        }
    }

    #[test]
    fn categories_are_short_lowercase_names() {
        assert!(Category::parse("product-news").is_ok());
        assert!(Category::parse("Marketing").is_err());
        assert!(Category::parse("").is_err());
        assert!(Category::parse("-x").is_err());
        assert!(Category::parse(&"a".repeat(41)).is_err());
        assert!(Category::default().is_marketing());
        assert!(Category::parse("transactional").unwrap().is_transactional());
        assert_eq!("all".parse::<OptOutChannel>(), Ok(OptOutChannel::All));
        assert!("sms".parse::<OptOutChannel>().is_err());
    }
}
