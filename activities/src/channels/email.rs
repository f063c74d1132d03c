//! The e-mail channel: one message per recipient (to `users.email`) through an SMTP relay,
//! with lettre's pooled async transport.
//!
//! The relay is `HERALD_SMTP_URL`: `smtp://host:port` (plain), `smtp://host:port?tls=required`
//! (STARTTLS), `smtps://host:port` (TLS from the start), with `user:password@` for
//! credentials. The sender is `HERALD_EMAIL_FROM`. Each message's `Message-ID` is stable per
//! (campaign, recipient), so a message resent after a crash is recognisable as the same one.
//! SMTP 4xx replies, timeouts and connection failures are transient; 5xx replies and
//! addresses that cannot be written in a message are permanent.
//!
//! Every message but a transactional one carries `List-Unsubscribe` with the recipient's one-click link (and a
//! `mailto:` when `HERALD_UNSUBSCRIBE_MAILTO` is set) and `List-Unsubscribe-Post:
//! List-Unsubscribe=One-Click`, as RFC 8058 and Gmail's and Yahoo's bulk sender rules ask.

use lettre::{
    AsyncSmtpTransport, AsyncTransport, Tokio1Executor,
    message::{
        Mailbox, MultiPart,
        header::{ContentType, HeaderName, HeaderValue},
    },
    transport::smtp::PoolConfig,
};

use super::{Attempt, Deliver, Message, Settings};

pub struct Email {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    /// The domain of `Message-ID`s: the sender's.
    domain: String,
    /// The longest one message's exchange may take (`HERALD_SEND_TIMEOUT`).
    timeout: std::time::Duration,
}

impl Email {
    pub fn new(settings: &Settings) -> Result<Self, String> {
        let url = settings.smtp_url.as_deref().ok_or(
            "HERALD_SMTP_URL is not set on this worker: there is no relay to send e-mail through",
        )?;
        let from: Mailbox = settings
            .email_from
            .as_deref()
            .ok_or("HERALD_EMAIL_FROM is not set on this worker: e-mail needs a sender")?
            .parse()
            .map_err(|e| format!("HERALD_EMAIL_FROM is not an address: {e}"))?;
        let domain = from.email.domain().to_owned();
        let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
            .map_err(|e| format!("HERALD_SMTP_URL is not a relay URL (smtp://host:port): {e}"))?
            .timeout(Some(settings.webhook_timeout))
            .pool_config(
                PoolConfig::new()
                    .max_size(settings.concurrency.max(1) as u32 * 8)
                    .idle_timeout(std::time::Duration::from_secs(60)),
            )
            .build();
        Ok(Self {
            transport,
            from,
            domain,
            timeout: settings.webhook_timeout,
        })
    }
}

/// `List-Unsubscribe` (RFC 2369): the one-click link (RFC 8058: a POST to it unsubscribes),
/// then the `mailto:` if there is one.
fn list_unsubscribe(url: &str, mailto: Option<&str>) -> String {
    match mailto {
        Some(mailto) => format!("<{url}>, <mailto:{mailto}?subject=unsubscribe>"),
        None => format!("<{url}>"),
    }
}

/// A header whose value is ASCII Herald made (a URL, an address checked at start), written
/// as it is: encoding would break the angle brackets mail clients look for.
fn ascii_header(name: &'static str, value: String) -> HeaderValue {
    debug_assert!(value.is_ascii() && !value.contains(['\r', '\n']));
    HeaderValue::dangerous_new_pre_encoded(
        HeaderName::new_from_ascii_str(name),
        value.clone(),
        value,
    )
}

impl Deliver for Email {
    async fn send(&self, message: Message<'_>) -> Attempt {
        if message.email.is_empty() {
            return Attempt::fail("address", "the user has no e-mail address");
        }
        let to: Mailbox = match message.email.parse() {
            Ok(to) => to,
            Err(e) => {
                return Attempt::fail(
                    "address",
                    format!("{:?} is not an address: {e}", message.email),
                );
            }
        };
        let subject = message.subject.unwrap_or(message.title);
        let subject = if message.test.is_some() {
            format!("[Test] {subject}")
        } else {
            subject.to_owned()
        };
        let mut builder = lettre::Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(subject)
            .message_id(Some(format!("<{}@{}>", message.delivery_id(), self.domain)));
        // A transactional message has no link: nobody unsubscribes from receipts.
        if let Some(url) = message.unsubscribe_url {
            builder = builder
                .raw_header(ascii_header(
                    "List-Unsubscribe",
                    list_unsubscribe(url, message.unsubscribe_mailto),
                ))
                .raw_header(ascii_header(
                    "List-Unsubscribe-Post",
                    "List-Unsubscribe=One-Click".to_owned(),
                ));
        }
        let email = match message.html {
            Some(html) => builder.multipart(MultiPart::alternative_plain_html(
                message.body.to_owned(),
                html.to_owned(),
            )),
            None => builder
                .header(ContentType::TEXT_PLAIN)
                .body(message.body.to_owned()),
        };
        let email = match email {
            Ok(email) => email,
            Err(e) => return Attempt::fail("message", format!("cannot build the message: {e}")),
        };
        // lettre's own timeout covers the connection only: a relay that goes quiet
        // mid-exchange would hold the send for ever.
        let Ok(sent) = tokio::time::timeout(self.timeout, self.transport.send(email)).await else {
            return Attempt::retry(
                "timeout",
                format!("the relay did not finish within {:?}", self.timeout),
            );
        };
        match sent {
            Ok(_) => Attempt::Sent,
            Err(e) => match e.status() {
                Some(code) if e.is_permanent() => {
                    Attempt::fail(format!("smtp_{code}"), e.to_string())
                }
                Some(code) => Attempt::retry(format!("smtp_{code}"), e.to_string()),
                None if e.is_timeout() => Attempt::retry("timeout", e.to_string()),
                None => Attempt::retry("connect", e.to_string()),
            },
        }
    }
}
