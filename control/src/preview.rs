//! Seeing a campaign before it goes: its content rendered for chosen users (a preview), and
//! sent to up to [`MAX_TEST_SENDS`] of them through its real channel (a test send). Neither
//! writes to the ledger: a test send is recorded only in the test-send log.

use std::sync::Arc;

use herald_activities::channels::{Attempt, Deliver, Message, Unsubscribing, email, webhook};
use herald_store::{StoreError, sends::Delivery};
use herald_templates::{Profile, Templates, UserFields};
use herald_wire::{CampaignKey, CampaignSpec, Channel};

use crate::{Control, ControlError, Result, launch::LaunchRequest};

/// Users one test send may go to.
pub const MAX_TEST_SENDS: usize = 20;
/// The longest one test send may take: twenty at once end inside an API request's time.
pub const TEST_SEND_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);
/// Users a preview may show.
pub const MAX_PREVIEWS: usize = 20;
/// Recipients a preview picks at random when no user is named.
pub const RANDOM_PREVIEWS: usize = 3;

/// What to preview or test: a campaign launched already, or launch fields not launched.
pub enum Subject {
    Campaign(CampaignKey),
    Launch(Box<LaunchRequest>),
}

/// One user's rendering.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Rendering {
    pub user_id: i64,
    pub title: String,
    pub body: String,
    /// An e-mail's own subject and HTML part.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub html: Option<String>,
    /// Why it cannot be rendered for this user (`body: …`): this user would fail with class
    /// `render`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The variables the templates read, and those this user has no value for.
    pub variables: Vec<String>,
    pub missing: Vec<String>,
}

/// What a test send did for one user.
#[derive(Clone, Debug, serde::Serialize)]
pub struct TestSent {
    pub user_id: i64,
    /// `sent`, `failed`, `suppressed` (the address is suppressed: not sent), `render` (could
    /// not be rendered: not sent) or `shown` (the inbox:
    /// test sends put nothing in an inbox; the rendering is what the user would see).
    pub outcome: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The id the receiver saw: `test_KEY_USER_N`, never the campaign's own.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delivery_id: Option<String>,
}

/// A campaign to render: its key (or a stand-in), its spec, its compiled content.
struct Prepared {
    key: CampaignKey,
    spec: CampaignSpec,
    templates: Templates,
    launched: bool,
}

impl Control {
    async fn prepare(&self, subject: Subject) -> Result<Prepared> {
        let (key, spec, launched) = match subject {
            Subject::Campaign(key) => {
                let (_, spec) = herald_store::campaigns::stored_spec(&self.db, &key).await?;
                (key, spec, true)
            }
            Subject::Launch(mut request) => {
                self.settle_audience(&mut request).await?;
                let key = request
                    .key
                    .clone()
                    .unwrap_or_else(|| CampaignKey::parse("preview").expect("a valid key"));
                (key, request.spec, false)
            }
        };
        let templates = Templates::compile(key.as_str(), &spec.content, spec.channel)
            .unwrap_or_else(|_| Templates::verbatim(key.as_str(), &spec.content, spec.channel));
        Ok(Prepared {
            key,
            spec,
            templates,
            launched,
        })
    }

    /// The users named, each checked to exist, or [`RANDOM_PREVIEWS`] of the audience.
    async fn profiles_of(&self, p: &Prepared, users: &[i64], max: usize) -> Result<Vec<Profile>> {
        let mut ids = users.to_vec();
        ids.sort_unstable();
        ids.dedup();
        if ids.len() > max {
            return Err(ControlError::Field {
                field: "user_ids".into(),
                message: format!("at most {max} users at once, not {}", ids.len()),
            });
        }
        if ids.is_empty() {
            ids = herald_store::audience::random_members(
                &self.db,
                p.spec.audience.as_ref(),
                RANDOM_PREVIEWS,
            )
            .await?;
        }
        let mut conn = self.db.acquire().await.map_err(StoreError::from)?;
        let found = herald_store::users::profiles(&mut conn, &ids, &UserFields::all()).await?;
        if let Some(missing) = ids.iter().find(|id| !found.iter().any(|f| f.id == **id)) {
            return Err(StoreError::UnknownUser(*missing).into());
        }
        Ok(found)
    }

    async fn unsubscribing(&self) -> Result<Unsubscribing> {
        Ok(Unsubscribing {
            key: self.unsubscribe_key().await?.clone(),
            base: self.config.public_url.clone(),
            mailto: self.config.unsubscribe_mailto.clone(),
        })
    }

    /// The content for each user named (or three random recipients of the audience), as
    /// their page would render it now. Writes nothing.
    pub async fn preview(&self, subject: Subject, users: &[i64]) -> Result<Vec<Rendering>> {
        let p = self.prepare(subject).await?;
        let profiles = self.profiles_of(&p, users, MAX_PREVIEWS).await?;
        let unsubscribing = self.unsubscribing().await?;
        let variables = p.templates.variables();
        Ok(profiles
            .into_iter()
            .map(|profile| {
                let url = unsubscribing.url(profile.id, &p.spec);
                let missing = Templates::missing(&profile, &variables);
                let user_id = profile.id;
                let rendered = p.templates.render_with(&Arc::new(profile), url.as_deref());
                match rendered {
                    Ok(r) => Rendering {
                        user_id,
                        title: r.title.into_owned(),
                        body: r.body.into_owned(),
                        subject: r.subject.map(|s| s.into_owned()),
                        html: r.html.map(|s| s.into_owned()),
                        error: None,
                        variables: variables.clone(),
                        missing,
                    },
                    Err(e) => Rendering {
                        user_id,
                        title: String::new(),
                        body: String::new(),
                        subject: None,
                        html: None,
                        error: Some(e.to_string()),
                        variables: variables.clone(),
                        missing,
                    },
                }
            })
            .collect())
    }

    /// Send the campaign to `users` now through its channel, marked as a test (`[Test]`
    /// before an e-mail's subject, `herald.message.test` as a webhook's type, ids of their
    /// own), each recorded in the test-send log with `actor`; never in the ledger, never
    /// counted. Opt-outs do not stop a test (the operator named the users); a suppressed
    /// address does.
    pub async fn test_send(
        &self,
        subject: Subject,
        users: &[i64],
        actor: &str,
    ) -> Result<Vec<TestSent>> {
        if users.is_empty() {
            return Err(ControlError::Field {
                field: "user_ids".into(),
                message: "name the users to send the test to".into(),
            });
        }
        let p = self.prepare(subject).await?;
        self.config
            .check_channel(p.spec.channel)
            .map_err(|e| e.at("channel"))?;
        let profiles = self.profiles_of(&p, users, MAX_TEST_SENDS).await?;
        let unsubscribing = self.unsubscribing().await?;
        let settings = herald_activities::channels::Settings {
            webhook_secret: self.config.signing_secret()?,
            destinations: self.config.destinations(),
            webhook_timeout: TEST_SEND_TIMEOUT,
            smtp_url: self.config.smtp_url.clone(),
            email_from: self.config.email_from.clone(),
            concurrency: MAX_TEST_SENDS,
            unsubscribe: unsubscribing.clone(),
            suppress_bounces: false,
        };
        let delivery = Delivery {
            key: p.key.clone(),
            content: p.spec.content.clone(),
            spec: p.spec.clone(),
        };
        let logged_key = p.launched.then(|| p.key.as_str().to_owned());
        let (hook, mail) = match p.spec.channel {
            Channel::Inbox => (None, None),
            Channel::Webhook => (
                Some(webhook::Webhook::new(&settings).map_err(ControlError::Config)?),
                None,
            ),
            Channel::Email => (
                None,
                Some(email::Email::new(&settings).map_err(ControlError::Config)?),
            ),
        };
        // All at once, each within TEST_SEND_TIMEOUT: the whole call ends well inside an
        // API request's time.
        let sends = profiles.into_iter().map(|profile| {
            let (p, hook, mail, unsubscribing) = (&p, &hook, &mail, &unsubscribing);
            let (delivery, logged_key) = (&delivery, &logged_key);
            async move {
                let n = herald_store::consent::next_test_send(&self.db).await?;
                let url = unsubscribing.url(profile.id, &p.spec);
                let user_id = profile.id;
                let email_address = profile.email.clone();
                let suppressed = herald_store::consent::is_suppressed(
                    &self.db,
                    p.spec.channel,
                    user_id,
                    &email_address,
                )
                .await?;
                let rendered = p.templates.render_with(&Arc::new(profile), url.as_deref());
                let (title, sent) = match &rendered {
                    _ if suppressed => (
                        String::new(),
                        TestSent {
                            user_id,
                            outcome: "suppressed",
                            error: Some(format!(
                                "the user's address is suppressed on {}",
                                p.spec.channel
                            )),
                            delivery_id: None,
                        },
                    ),
                    Err(e) => (
                        String::new(),
                        TestSent {
                            user_id,
                            outcome: "render",
                            error: Some(e.to_string()),
                            delivery_id: None,
                        },
                    ),
                    Ok(r) => {
                        let message = Message {
                            campaign: delivery,
                            user_id,
                            email: &email_address,
                            title: &r.title,
                            body: &r.body,
                            subject: r.subject.as_deref(),
                            html: r.html.as_deref(),
                            test: Some(n),
                            unsubscribe_url: url.as_deref(),
                            unsubscribe_mailto: unsubscribing.mailto.as_deref(),
                        };
                        let id = message.delivery_id();
                        let attempt = match (hook, mail) {
                            (Some(hook), _) => Some(hook.send(message).await),
                            (_, Some(mail)) => Some(mail.send(message).await),
                            (None, None) => None,
                        };
                        let sent = match attempt {
                            None => TestSent {
                                user_id,
                                outcome: "shown",
                                error: None,
                                delivery_id: None,
                            },
                            Some(Attempt::Sent) => TestSent {
                                user_id,
                                outcome: "sent",
                                error: None,
                                delivery_id: Some(id),
                            },
                            Some(
                                Attempt::Retry { class, error, .. }
                                | Attempt::Fail { class, error },
                            ) => TestSent {
                                user_id,
                                outcome: "failed",
                                error: Some(format!("{class}: {error}")),
                                delivery_id: Some(id),
                            },
                        };
                        (r.title.clone().into_owned(), sent)
                    }
                };
                herald_store::consent::log_test_send(
                    &self.db,
                    n,
                    logged_key.as_deref(),
                    p.spec.channel,
                    user_id,
                    &title,
                    sent.outcome,
                    sent.error.as_deref(),
                    actor,
                )
                .await?;
                Ok::<_, ControlError>(sent)
            }
        });
        futures::future::join_all(sends).await.into_iter().collect()
    }
}
