//! A real `herald-api` process for one [`TestApp`], and an HTTP client for it.

use std::{
    process::{Child, Command, Stdio},
    time::Duration,
};

use anyhow::{Context, Result};
use reqwest::{Method, StatusCode};
use serde_json::Value;

use crate::{TestApp, bin, wait_until};

/// The service token every test API is started with.
pub const TOKEN: &str = "test-service-token-0123456789";
/// The inbox secret every test API is started with.
pub const INBOX_SECRET: &str = "test-inbox-secret-0123456789";

/// One `herald-api` process, on a port of its own, serving a [`TestApp`]'s database and task
/// queue. Stopped (SIGTERM, then SIGKILL) when dropped.
pub struct ApiServer {
    pub base: String,
    pub client: reqwest::Client,
    child: Option<Child>,
}

/// An answer: status, headers and the body as JSON (`Value::Null` when it is not JSON).
#[derive(Debug)]
pub struct Answer {
    pub status: StatusCode,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
    pub text: String,
}

impl Answer {
    /// The error code of an error answer.
    pub fn code(&self) -> &str {
        self.body["error"]["code"].as_str().unwrap_or("")
    }
}

impl TestApp {
    /// Start `herald-api` for this app, with [`TOKEN`] and [`INBOX_SECRET`], and wait until
    /// it answers.
    pub async fn api(&self) -> Result<ApiServer> {
        self.api_with_env(&[]).await
    }

    pub async fn api_with_env(&self, extra: &[(&str, &str)]) -> Result<ApiServer> {
        self.api_at(free_port()?, extra).await
    }

    /// `herald-api` on `port` (another start on the port of one that has stopped, say).
    pub async fn api_at(&self, port: u16, extra: &[(&str, &str)]) -> Result<ApiServer> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(std::env::temp_dir().join(format!("{}.api.log", self.db_name)))?;
        let child = Command::new(bin("herald-api"))
            .envs(self.envs())
            .env("HERALD_API_ADDR", format!("127.0.0.1:{port}"))
            .env("HERALD_API_TOKEN", TOKEN)
            .env("HERALD_INBOX_SECRET", INBOX_SECRET)
            .env("RUST_LOG", "warn")
            .envs(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .context("starting herald-api")?;
        herald_activities::channels::install_crypto();
        let server = ApiServer {
            base: format!("http://127.0.0.1:{port}"),
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(60))
                .build()?,
            child: Some(child),
        };
        let probe = server.client.clone();
        let url = format!("{}/healthz", server.base);
        wait_until(Duration::from_secs(30), || {
            let (probe, url) = (probe.clone(), url.clone());
            async move { probe.get(&url).send().await.is_ok() }
        })
        .await
        .context("herald-api did not answer /healthz")?;
        Ok(server)
    }
}

/// A port nobody listens on now.
/// A port nobody listens on now.
pub fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// A user's inbox token, as an app's backend computes it.
pub fn user_token(user: i64) -> String {
    herald_api::auth::user_token(INBOX_SECRET, user)
}

impl ApiServer {
    /// A request with the service token.
    pub async fn service(&self, method: Method, path: &str, body: Option<Value>) -> Answer {
        self.call(method, path, Some(TOKEN), body).await
    }

    pub async fn get(&self, path: &str) -> Answer {
        self.service(Method::GET, path, None).await
    }

    pub async fn post(&self, path: &str, body: Value) -> Answer {
        self.service(Method::POST, path, Some(body)).await
    }

    /// A request with `token` as its bearer (none when `None`).
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Answer {
        let mut request = self.client.request(method, format!("{}{path}", self.base));
        if let Some(t) = token {
            request = request.bearer_auth(t);
        }
        if let Some(b) = body {
            request = request.json(&b);
        }
        answer(request.send().await.expect("the API answers")).await
    }

    /// A request built by the caller (headers and bodies of any shape).
    pub async fn raw(&self, request: reqwest::RequestBuilder) -> Answer {
        answer(request.send().await.expect("the API answers")).await
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.base
            .rsplit(':')
            .next()
            .and_then(|p| p.parse().ok())
            .expect("a port")
    }

    /// SIGTERM, then wait up to `within` for the process to exit; whether it did.
    pub fn terminate(&mut self, within: Duration) -> Option<std::process::ExitStatus> {
        let mut child = self.child.take()?;
        crate::sigterm(child.id());
        let deadline = std::time::Instant::now() + within;
        while std::time::Instant::now() < deadline {
            if let Ok(Some(status)) = child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = child.kill();
        let _ = child.wait();
        None
    }
}

async fn answer(response: reqwest::Response) -> Answer {
    let status = response.status();
    let headers = response.headers().clone();
    let text = response.text().await.unwrap_or_default();
    Answer {
        status,
        headers,
        body: serde_json::from_str(&text).unwrap_or(Value::Null),
        text,
    }
}

impl Drop for ApiServer {
    fn drop(&mut self) {
        self.terminate(Duration::from_secs(5));
    }
}

/// A Server-Sent Events stream, read event by event.
pub struct Events {
    body: std::pin::Pin<Box<dyn futures::Stream<Item = reqwest::Result<bytes::Bytes>> + Send>>,
    buffer: String,
}

/// One event: its name and its data (as JSON when it is JSON).
#[derive(Clone, Debug)]
pub struct Event {
    pub name: String,
    pub data: Value,
}

impl ApiServer {
    /// Open an event stream with the service token, requiring 200.
    pub async fn events(&self, path: &str) -> Events {
        self.events_with(path, |r| r.bearer_auth(TOKEN)).await
    }

    /// Open an event stream with the credentials `auth` adds to the request, requiring 200.
    pub async fn events_with(
        &self,
        path: &str,
        auth: impl FnOnce(reqwest::RequestBuilder) -> reqwest::RequestBuilder,
    ) -> Events {
        let request = self.client.get(self.url(path));
        let response = auth(request)
            .timeout(Duration::from_secs(3600))
            .send()
            .await
            .expect("the API answers");
        assert_eq!(response.status(), StatusCode::OK, "opening {path}");
        assert_eq!(
            response.headers()["content-type"],
            "text/event-stream",
            "{path}"
        );
        Events {
            body: Box::pin(response.bytes_stream()),
            buffer: String::new(),
        }
    }
}

impl Events {
    /// The next event (comments skipped); `None` when the stream has ended.
    pub async fn next(&mut self) -> Option<Event> {
        use futures::StreamExt;
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                let mut name = String::from("message");
                let mut data = String::new();
                for line in block.lines() {
                    if let Some(v) = line.strip_prefix("event:") {
                        name = v.trim().to_owned();
                    } else if let Some(v) = line.strip_prefix("data:") {
                        data.push_str(v.trim_start());
                    }
                }
                if data.is_empty() && name == "message" {
                    continue; // a comment (keep-alive)
                }
                let data = serde_json::from_str(&data).unwrap_or(Value::String(data));
                return Some(Event { name, data });
            }
            match self.body.next().await {
                Some(Ok(chunk)) => self.buffer.push_str(&String::from_utf8_lossy(&chunk)),
                _ => return None,
            }
        }
    }

    /// Events until one satisfies `pred` (returned with it), failing after `timeout`.
    pub async fn until(
        &mut self,
        timeout: Duration,
        mut pred: impl FnMut(&Event) -> bool,
    ) -> Result<Vec<Event>> {
        let mut seen = Vec::new();
        tokio::time::timeout(timeout, async {
            while let Some(e) = self.next().await {
                let done = pred(&e);
                seen.push(e);
                if done {
                    return Ok(());
                }
            }
            anyhow::bail!("the stream ended first")
        })
        .await
        .map_err(|_| anyhow::anyhow!("timed out after {timeout:?}"))??;
        Ok(seen)
    }
}

/// A client that keeps the session cookie by hand and does not follow redirects.
pub fn plain() -> reqwest::Client {
    herald_activities::channels::install_crypto();
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

/// An HTML form's body, `application/x-www-form-urlencoded`.
pub trait FormBody {
    fn form_body(self, fields: &[(&str, &str)]) -> Self;
}

impl FormBody for reqwest::RequestBuilder {
    fn form_body(self, fields: &[(&str, &str)]) -> Self {
        let encode = |s: &str| -> String {
            s.bytes()
                .map(|b| match b {
                    b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                        (b as char).to_string()
                    }
                    _ => format!("%{b:02X}"),
                })
                .collect()
        };
        let body: Vec<String> = fields
            .iter()
            .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
            .collect();
        self.header(
            reqwest::header::CONTENT_TYPE,
            "application/x-www-form-urlencoded",
        )
        .body(body.join("&"))
    }
}

/// The CSRF token in a dashboard page's forms.
pub fn csrf_of(html: &str) -> String {
    let at = html.find("name=\"csrf\" value=\"").expect("a CSRF field") + 19;
    html[at..at + 64].to_owned()
}
