//! A real headless Chromium, driven over the W3C WebDriver protocol through Debian's
//! chromedriver: the few commands the dashboard's tests need (navigate, find, click, type,
//! read, run a script, screenshot), spoken as plain JSON over HTTP.
//!
//! `scripts/test` installs the `chromium` and `chromium-driver` packages when they are
//! missing; `HERALD_CHROMIUM` and `HERALD_CHROMEDRIVER` point elsewhere.

use std::{
    path::PathBuf,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};

/// The key WebDriver names elements by.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// One chromedriver and one browser session in it. Both end when dropped.
pub struct Browser {
    driver: Child,
    http: reqwest::Client,
    session: String,
    endpoint: String,
    /// Where the dashboard is served, e.g. `http://127.0.0.1:4567`.
    pub base: String,
    _profile: TempDir,
}

/// An element of the current page.
#[derive(Clone, Debug)]
pub struct Element(String);

struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn program(env: &str, default: &str) -> String {
    std::env::var(env).unwrap_or_else(|_| default.to_owned())
}

impl Browser {
    /// Start chromedriver and a headless Chromium with an empty profile, `width` × `height`.
    pub async fn start(base: &str, width: u32, height: u32) -> Result<Self> {
        let chromium = program("HERALD_CHROMIUM", "/usr/bin/chromium");
        let chromedriver = program("HERALD_CHROMEDRIVER", "/usr/bin/chromedriver");
        for p in [&chromium, &chromedriver] {
            if !std::path::Path::new(p).exists() {
                bail!(
                    "{p} is missing: the dashboard's tests need Debian's chromium and chromium-driver \
                     (scripts/test installs them; or `apt-get install chromium chromium-driver`)"
                );
            }
        }
        let port = crate::api::free_port()?;
        let driver = Command::new(&chromedriver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .with_context(|| format!("starting {chromedriver}"))?;
        let profile =
            TempDir(std::env::temp_dir().join(format!("herald-chromium-{}", crate::unique("p"))));
        std::fs::create_dir_all(&profile.0)?;
        herald_activities::channels::install_crypto();
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(60))
            .build()?;
        let endpoint = format!("http://127.0.0.1:{port}");
        let started = Instant::now();
        loop {
            if http.get(format!("{endpoint}/status")).send().await.is_ok() {
                break;
            }
            if started.elapsed() > Duration::from_secs(20) {
                bail!("chromedriver did not answer on {endpoint} within 20 s");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let args = [
            "--headless".to_owned(),
            "--no-sandbox".to_owned(),
            "--disable-gpu".to_owned(),
            "--disable-quic".to_owned(),
            "--no-first-run".to_owned(),
            "--disable-background-networking".to_owned(),
            "--disable-component-update".to_owned(),
            "--disable-sync".to_owned(),
            "--disable-dev-shm-usage".to_owned(),
            format!("--user-data-dir={}", profile.0.display()),
            format!("--window-size={width},{height}"),
        ];
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {"binary": chromium, "args": args},
        }}});
        let answer: Value = http
            .post(format!("{endpoint}/session"))
            .json(&caps)
            .send()
            .await?
            .json()
            .await?;
        let session = answer["value"]["sessionId"]
            .as_str()
            .with_context(|| format!("chromedriver did not start a session: {answer}"))?
            .to_owned();
        let browser = Self {
            driver,
            http,
            session,
            endpoint,
            base: base.trim_end_matches('/').to_owned(),
            _profile: profile,
        };
        browser.resize(width, height).await?;
        Ok(browser)
    }

    async fn command(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value> {
        let url = format!("{}/session/{}{path}", self.endpoint, self.session);
        let mut request = self.http.request(method.clone(), &url);
        if let Some(b) = body {
            request = request.json(&b);
        } else if method == reqwest::Method::POST {
            request = request.json(&json!({}));
        }
        let answer: Value = request.send().await?.json().await?;
        if let Some(error) = answer["value"]["error"].as_str() {
            bail!("WebDriver {path}: {error}: {}", answer["value"]["message"]);
        }
        Ok(answer["value"].clone())
    }

    async fn post(&self, path: &str, body: Value) -> Result<Value> {
        self.command(reqwest::Method::POST, path, Some(body)).await
    }

    async fn get(&self, path: &str) -> Result<Value> {
        self.command(reqwest::Method::GET, path, None).await
    }

    /// Set the window's size (the layout's width).
    pub async fn resize(&self, width: u32, height: u32) -> Result<()> {
        self.post("/window/rect", json!({"width": width, "height": height}))
            .await?;
        Ok(())
    }

    /// Open a path of the dashboard (or a full URL).
    pub async fn open(&self, path: &str) -> Result<()> {
        let url = if path.starts_with("http") {
            path.to_owned()
        } else {
            format!("{}{path}", self.base)
        };
        self.post("/url", json!({"url": url})).await?;
        Ok(())
    }

    /// The current address, without the server part.
    pub async fn path(&self) -> Result<String> {
        let url = self.get("/url").await?;
        let url = url.as_str().unwrap_or_default();
        Ok(url.strip_prefix(&self.base).unwrap_or(url).to_owned())
    }

    /// The first element matching a CSS selector.
    pub async fn find(&self, css: &str) -> Result<Element> {
        let found = match self
            .post("/element", json!({"using": "css selector", "value": css}))
            .await
        {
            Ok(found) => found,
            Err(e) => bail!("finding {css:?} on {}: {e}", self.path_now().await),
        };
        Ok(Element(
            found[ELEMENT].as_str().context("an element id")?.to_owned(),
        ))
    }

    async fn path_now(&self) -> String {
        self.path().await.unwrap_or_default()
    }

    /// How many elements match a CSS selector.
    pub async fn count(&self, css: &str) -> Result<usize> {
        let found = self
            .post("/elements", json!({"using": "css selector", "value": css}))
            .await?;
        Ok(found.as_array().map_or(0, Vec::len))
    }

    /// Wait until an element matching `css` exists.
    pub async fn wait_for(&self, css: &str, timeout: Duration) -> Result<Element> {
        let started = Instant::now();
        loop {
            if let Ok(e) = self.find(css).await {
                return Ok(e);
            }
            if started.elapsed() > timeout {
                bail!("no {css:?} on {} after {timeout:?}", self.path_now().await);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The visible text of the first element matching `css` (read in one step, so a
    /// fragment the page swaps in meanwhile cannot leave a stale element).
    pub async fn text(&self, css: &str) -> Result<String> {
        let text = self
            .script(
                "const e = document.querySelector(arguments[0]); return e ? e.innerText : null",
                json!([css]),
            )
            .await?;
        match text.as_str() {
            Some(t) => Ok(t.trim().to_owned()),
            None => bail!("no {css:?} on {}", self.path_now().await),
        }
    }

    /// Wait until the text of `css` satisfies `ok`; returns it.
    pub async fn wait_text(
        &self,
        css: &str,
        timeout: Duration,
        ok: impl Fn(&str) -> bool,
    ) -> Result<String> {
        let started = Instant::now();
        let mut last = String::new();
        loop {
            if let Ok(t) = self.text(css).await {
                if ok(&t) {
                    return Ok(t);
                }
                last = t;
            }
            if started.elapsed() > timeout {
                bail!(
                    "{css:?} on {} still reads {last:?} after {timeout:?}",
                    self.path_now().await
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub async fn click(&self, css: &str) -> Result<()> {
        let e = self.find(css).await?;
        self.post(&format!("/element/{}/click", e.0), json!({}))
            .await?;
        Ok(())
    }

    /// Replace the value of a field with `text`, as typed.
    pub async fn fill(&self, css: &str, text: &str) -> Result<()> {
        let e = self.find(css).await?;
        self.post(&format!("/element/{}/clear", e.0), json!({}))
            .await?;
        if !text.is_empty() {
            self.post(&format!("/element/{}/value", e.0), json!({"text": text}))
                .await?;
        }
        Ok(())
    }

    /// Pick the option with `value` in a select.
    pub async fn select(&self, css: &str, value: &str) -> Result<()> {
        self.click(&format!("{css} option[value=\"{value}\"]"))
            .await
    }

    /// An element's DOM property (`value`, `hidden`, …), read in one step.
    pub async fn property(&self, css: &str, name: &str) -> Result<Value> {
        let value = self
            .script(
                "const e = document.querySelector(arguments[0]); return e ? [e[arguments[1]]] : null",
                json!([css, name]),
            )
            .await?;
        match value {
            Value::Array(mut v) if !v.is_empty() => Ok(v.remove(0)),
            _ => bail!("no {css:?} on {}", self.path_now().await),
        }
    }

    /// The key of the campaign whose page is open (its live element's `data-key`).
    pub async fn campaign_key(&self) -> Result<String> {
        let key = self
            .script(
                "const e = document.querySelector('[data-live-campaign]'); return e ? e.dataset.key : null",
                json!([]),
            )
            .await?;
        match key {
            Value::String(key) => Ok(key),
            _ => bail!("no campaign page open at {}", self.path_now().await),
        }
    }

    /// Run a script in the page; its `return` comes back.
    pub async fn script(&self, script: &str, args: Value) -> Result<Value> {
        self.post("/execute/sync", json!({"script": script, "args": args}))
            .await
    }

    /// The browser's cookies for this page.
    pub async fn cookies(&self) -> Result<Vec<Value>> {
        Ok(self
            .get("/cookie")
            .await?
            .as_array()
            .cloned()
            .unwrap_or_default())
    }

    /// A PNG of the window, saved as `target/screenshots/<name>.png`, and copied into
    /// `docs/screenshots/` when `HERALD_UPDATE_SCREENSHOTS` is set. Returns where it went.
    pub async fn screenshot(&self, name: &str) -> Result<PathBuf> {
        use base64::Engine;
        let png = self.get("/screenshot").await?;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(png.as_str().context("a screenshot")?)
            .context("decoding the screenshot")?;
        let dir = crate::repo_root().join("target/screenshots");
        std::fs::create_dir_all(&dir)?;
        let path = dir.join(format!("{name}.png"));
        std::fs::write(&path, &bytes)?;
        if std::env::var_os("HERALD_UPDATE_SCREENSHOTS").is_some() {
            let docs = crate::repo_root().join("docs/screenshots");
            std::fs::create_dir_all(&docs)?;
            std::fs::write(docs.join(format!("{name}.png")), &bytes)?;
        }
        Ok(path)
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let url = format!("{}/session/{}", self.endpoint, self.session);
        // Close the browser before the driver, so no Chromium is left behind.
        let _ = std::thread::scope(|s| {
            s.spawn(|| {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .ok()?;
                rt.block_on(async { reqwest::Client::new().delete(&url).send().await.ok() })
            })
            .join()
        });
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}
