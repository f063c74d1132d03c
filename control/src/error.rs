//! The control layer's errors, each with its [`Fault`].

use herald_store::{Fault, StoreError, connect::SchemaError};
use herald_wire::InvalidInput;

#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    #[error(transparent)]
    Store(StoreError),
    #[error(transparent)]
    Invalid(#[from] InvalidInput),
    /// One field of a request that cannot be valid: which (as the wire names it, `email`,
    /// `attrs.age`, `audience.all[2]`), and why. Front ends show it at their own name for
    /// the field.
    #[error("{}{message}", if field.is_empty() { String::new() } else { format!("{field}: ") })]
    Field { field: String, message: String },
    /// A request that the campaign's state or the data refuses (an empty audience, say).
    #[error("{0}")]
    Refused(String),
    /// A well-formed field that the data refuses: an audience nobody is in, a saved
    /// audience that does not exist, a channel this installation has no settings for.
    #[error("{}{message}", if field.is_empty() { String::new() } else { format!("{field}: ") })]
    Unmet { field: String, message: String },
    /// A request that contradicts what exists (a different campaign under a key in use).
    #[error("{0}")]
    Conflict(String),
    /// What the request names is not there (an unsubscribe link Herald did not sign).
    #[error("{0}")]
    NotFound(String),
    /// A setting that cannot work.
    #[error("{0}")]
    Config(String),
    #[error(
        "cannot reach PostgreSQL at {url} ({source}); start it with `scripts/services up` or set DATABASE_URL"
    )]
    DatabaseUnreachable { url: String, source: sqlx::Error },
    #[error(transparent)]
    Schema(#[from] SchemaError),
    #[error(
        "cannot reach Temporal at {address} ({reason}); start it with `scripts/services up` or set TEMPORAL_ADDRESS"
    )]
    TemporalUnreachable { address: String, reason: String },
    /// Temporal answered, but not with success.
    #[error("{action}: {reason}")]
    Temporal { action: String, reason: String },
}

impl ControlError {
    pub fn fault(&self) -> Fault {
        match self {
            Self::Store(e) => e.fault(),
            Self::Invalid(_) | Self::Field { .. } => Fault::Invalid,
            Self::Refused(_) | Self::Unmet { .. } | Self::Config(_) => Fault::Unmet,
            Self::Conflict(_) => Fault::Conflict,
            Self::NotFound(_) => Fault::NotFound,
            Self::DatabaseUnreachable { .. }
            | Self::TemporalUnreachable { .. }
            | Self::Temporal { .. } => Fault::Transient,
            Self::Schema(SchemaError::Missing | SchemaError::Behind(_)) => Fault::Unmet,
            Self::Schema(SchemaError::Database(_)) => Fault::Transient,
            Self::Schema(_) => Fault::Internal,
        }
    }
}

impl ControlError {
    /// The request's field this error is about, as the API names it.
    pub fn field(&self) -> Option<&str> {
        match self {
            Self::Field { field, .. } | Self::Unmet { field, .. } if !field.is_empty() => {
                Some(field)
            }
            _ => None,
        }
    }

    /// The same error, about `field`: input that cannot be valid becomes a [`Self::Field`],
    /// a refusal by the data or the settings a [`Self::Unmet`]; others stay as they are.
    pub fn at(self, field: &str) -> Self {
        match self {
            Self::Invalid(InvalidInput(message))
            | Self::Store(StoreError::Invalid(InvalidInput(message))) => Self::Field {
                field: field.to_owned(),
                message,
            },
            Self::Refused(message) | Self::Config(message) => Self::Unmet {
                field: field.to_owned(),
                message,
            },
            other => other,
        }
    }
}

impl From<StoreError> for ControlError {
    /// What the data refused at a field of the request is that field's error.
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Field(e) => Self::Unmet {
                field: e.field,
                message: e.message,
            },
            e => Self::Store(e),
        }
    }
}

impl From<herald_wire::FieldError> for ControlError {
    fn from(e: herald_wire::FieldError) -> Self {
        Self::Field {
            field: e.field,
            message: e.message,
        }
    }
}

pub type Result<T, E = ControlError> = std::result::Result<T, E>;

/// The exit code of a binary that failed with `chain` (an error and its causes): 2 when a
/// request was refused as it stands (bad input, a state that forbids it), 1 for everything
/// else (a service down, Herald's own fault). Every binary maps its failures here.
pub fn exit_code<'a>(
    chain: impl IntoIterator<Item = &'a (dyn std::error::Error + 'static)>,
) -> i32 {
    let fault = chain
        .into_iter()
        .find_map(|c| c.downcast_ref::<ControlError>().map(ControlError::fault));
    match fault {
        Some(fault) if fault.is_refusal() => 2,
        _ => 1,
    }
}

/// An error and its causes on one line, each cause once: many errors already print their
/// source in their own message (sqlx's do), and repeating it would say the same thing
/// several times.
pub fn one_line<'a>(
    chain: impl IntoIterator<Item = &'a (dyn std::error::Error + 'static)>,
) -> String {
    let mut line = String::new();
    for cause in chain {
        let text = cause.to_string();
        let text = text.trim();
        if text.is_empty() || line.contains(text) {
            continue;
        }
        if !line.is_empty() {
            line.push_str(": ");
        }
        line.push_str(text);
    }
    line
}

/// A connection string without its password, for messages: the password in the user part
/// and any `password=` parameter. A string that does not parse as a URL is not shown at
/// all, since where its password is cannot be told.
pub fn redact(url: &str) -> String {
    let Ok(mut u) = temporalio_client::Url::parse(url) else {
        return "(a DATABASE_URL that is not a valid URL)".to_owned();
    };
    if u.password().is_some() {
        let _ = u.set_password(Some("***"));
    }
    if u.query_pairs()
        .any(|(k, _)| k.eq_ignore_ascii_case("password"))
    {
        let pairs: Vec<(String, String)> = u
            .query_pairs()
            .map(|(k, v)| {
                let v = if k.eq_ignore_ascii_case("password") {
                    "***".to_owned()
                } else {
                    v.into_owned()
                };
                (k.into_owned(), v)
            })
            .collect();
        u.query_pairs_mut().clear().extend_pairs(pairs);
    }
    u.to_string()
}

#[cfg(test)]
mod tests {
    use super::{one_line, redact};

    #[derive(Debug, thiserror::Error)]
    #[error("database error: {0}")]
    struct Wrapping(#[source] Inner);

    #[derive(Debug, thiserror::Error)]
    #[error("canceling statement due to statement timeout")]
    struct Inner;

    #[test]
    fn a_cause_already_in_the_message_is_said_once() {
        let e = anyhow::Error::new(Wrapping(Inner)).context("launching");
        assert_eq!(
            one_line(e.chain()),
            "launching: database error: canceling statement due to statement timeout"
        );
    }

    #[test]
    fn passwords_never_show() {
        assert_eq!(
            redact("postgres://herald:s3cret@db:5432/herald"),
            "postgres://herald:***@db:5432/herald"
        );
        let r = redact("postgres://herald@db/herald?sslmode=require&password=s3cret");
        assert!(
            !r.contains("s3cret") && r.contains("sslmode=require"),
            "{r}"
        );
        let r = redact("postgres://herald:s3cret@db:port/herald");
        assert!(!r.contains("s3cret"), "{r}");
        assert_eq!(
            redact("postgres://herald@127.0.0.1:55432/herald"),
            "postgres://herald@127.0.0.1:55432/herald"
        );
    }
}
