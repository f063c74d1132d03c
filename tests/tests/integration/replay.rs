//! Determinism guard: histories captured from real runs replay against the current workflow
//! code, without a server. A change that would break running campaigns fails here.
//!
//! To capture a fresh set (docs/testing.md says when):
//!
//! ```sh
//! scripts/services up && eval "$(scripts/services env)"
//! cargo build --release --bins
//! cargo test --release -p herald-tests --test integration -- --ignored replay::capture_histories
//! ```
//!
//! That runs each scenario below against the real services and rewrites the set in
//! `tests/histories/`. After the first release, a set captured before a workflow change is
//! kept in a subdirectory and replayed too (docs/operations.md). Histories are stored as the
//! SDK's own JSON (`WorkflowHistory::to_json`), which `WorkflowHistory::from_json` reads back.

use std::{path::PathBuf, time::Duration};

use herald_tests::{LONG, TestApp, repo_root, workflow_id};
use herald_wire::CampaignStatus;
use herald_workflows::CampaignWorkflow;
use temporalio_client::{
    WorkflowExecutionInfo, WorkflowFetchHistoryOptions, WorkflowHandle, WorkflowHistory,
    WorkflowListOptions,
};
use temporalio_common::{
    WorkflowDefinition,
    protos::temporal::api::{enums::v1::EventType, history::v1::HistoryEvent},
};
use temporalio_macros::{workflow, workflow_methods};
use temporalio_sdk::{
    WorkflowContext, WorkflowResult,
    workflow_replayer::{WorkflowReplayResult, WorkflowReplayer, WorkflowReplayerOptions},
};
use temporalio_workflow::workflows::WorkflowImplementation;

/// Scenarios captured by launching a campaign and waiting for it to complete: (name, the
/// options given to `herald launch`). 3,000 users in segment `h`.
const RUN_TO_COMPLETION: &[(&str, &[&str])] = &[
    ("complete", &["--page-size", "100", "--lanes", "3"]),
    (
        "regular",
        &[
            "--page-size",
            "100",
            "--lanes",
            "3",
            "--execution",
            "regular",
        ],
    ),
    // Paced to ~3 s: pages wait for their turns, and the workflow ends its own task with the
    // do-nothing activity every 300 ms of pages, which is how signals get in.
    (
        "paced",
        &["--page-size", "10", "--lanes", "2", "--rate", "1000"],
    ),
    (
        "continue-as-new",
        &["--page-size", "100", "--lanes", "2", "--pages-per-run", "4"],
    ),
];

/// Scenarios that `capture_histories` drives step by step (signals, faults).
const DRIVEN: &[&str] = &[
    "pause-resume",
    "cancel",
    "killed-worker",
    "fault-after-commit",
];

fn histories_dir() -> PathBuf {
    repo_root().join("tests").join("histories")
}

/// Every saved history in `tests/histories/` and its subdirectories (sets kept from before a
/// workflow change, once there has been a release), named by its path below it.
fn saved_histories() -> Vec<(String, WorkflowHistory)> {
    let root = histories_dir();
    let mut files = Vec::new();
    let mut dirs = vec![root.clone()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).expect("tests/histories exists") {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "json") {
                files.push(path);
            }
        }
    }
    files.sort();
    files
        .into_iter()
        .map(|p| {
            let bytes = std::fs::read(&p).unwrap();
            let name = p
                .strip_prefix(&root)
                .unwrap()
                .to_string_lossy()
                .into_owned();
            let history =
                WorkflowHistory::from_json(&bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
            (name, history)
        })
        .collect()
}

/// Replay `histories` against the workflow `W`, without a server.
async fn replay<W>(
    histories: impl IntoIterator<Item = WorkflowHistory>,
) -> Vec<WorkflowReplayResult>
where
    W: WorkflowImplementation,
    <W::Run as WorkflowDefinition>::Input: Send,
{
    let options = WorkflowReplayerOptions::new()
        .register_workflow::<W>()
        .unwrap()
        .build();
    WorkflowReplayer::new(options)
        .unwrap()
        .replay_workflows(histories)
        .await
        .unwrap()
}

/// The events of one saved history, by its path below `tests/histories/`.
async fn saved_events(file: &str) -> Vec<HistoryEvent> {
    let bytes = std::fs::read(histories_dir().join(file)).unwrap();
    WorkflowHistory::from_json(&bytes)
        .unwrap()
        .into_events()
        .await
        .unwrap()
}

#[tokio::test]
async fn saved_histories_replay_against_the_current_workflow() {
    let histories = saved_histories();
    let names: Vec<String> = histories.iter().map(|(n, _)| n.clone()).collect();
    let scenarios = RUN_TO_COMPLETION.iter().map(|(name, _)| *name);
    for scenario in scenarios.chain(DRIVEN.iter().copied()) {
        assert!(
            names.iter().any(|n| n.starts_with(scenario)),
            "no saved history for {scenario}: {names:?}"
        );
    }
    let results = replay::<CampaignWorkflow>(histories.into_iter().map(|(_, h)| h)).await;
    for (name, result) in names.iter().zip(results) {
        assert!(
            result.replay_failure.is_none(),
            "{name}: {:?}",
            result.replay_failure
        );
    }
}

/// The `paced` history must really contain what it is kept for: workflow tasks that the
/// workflow ended itself while pages ran, by scheduling the do-nothing activity.
#[tokio::test]
async fn the_paced_history_yields_between_pages() {
    let yields = saved_events("paced-run1.json")
        .await
        .iter()
        .filter(|e| e.event_type() == EventType::ActivityTaskScheduled)
        .count();
    assert!(yields >= 2, "only {yields} yields");
}

/// An impostor registered under the campaign's workflow type: it schedules nothing. Replaying
/// real histories against it must fail, which shows the guard above can fail.
#[workflow]
#[derive(Default)]
pub struct Impostor;

#[workflow_methods]
impl Impostor {
    #[run(name = herald_wire::names::CAMPAIGN_WORKFLOW)]
    pub async fn run(
        ctx: &mut WorkflowContext<Self>,
        _input: herald_wire::CampaignInput,
    ) -> WorkflowResult<()> {
        ctx.timer(Duration::from_secs(1)).await;
        Ok(())
    }
}

#[tokio::test]
async fn a_changed_workflow_fails_replay() {
    let (name, history) = saved_histories()
        .into_iter()
        .find(|(n, _)| n.starts_with("complete"))
        .unwrap();
    let result = replay::<Impostor>([history]).await.pop().unwrap();
    assert!(
        result.replay_failure.is_some(),
        "{name} replayed against a different workflow"
    );
}

/// Save every run of a campaign's workflow as `<scenario>-run<N>.json`.
async fn save(app: &TestApp, key: &str, scenario: &str) {
    let config = herald_control::Config {
        database_url: app.database_url.clone(),
        task_queue: app.task_queue.clone(),
        ..herald_tests::services()
    };
    let client = herald_control::temporal::connect(&config).await.unwrap();
    let wid = workflow_id(key);
    let mut runs: Vec<(String, i64)> = Vec::new();
    let mut stream = client.list_workflows(
        format!("WorkflowId = '{wid}'"),
        WorkflowListOptions::default(),
    );
    use futures::StreamExt;
    while let Some(execution) = stream.next().await {
        let execution = execution.unwrap();
        let started = execution
            .start_time()
            .map(|t| t.duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as i64);
        runs.push((execution.run_id().to_owned(), started.unwrap_or(0)));
    }
    runs.sort_by_key(|(_, t)| *t);
    assert!(!runs.is_empty(), "no runs for {wid}");
    for (i, (run_id, _)) in runs.iter().enumerate().take(3) {
        let handle: WorkflowHandle<_, CampaignWorkflow> = WorkflowHandle::new(
            client.clone(),
            WorkflowExecutionInfo::builder()
                .namespace(config.temporal_namespace.clone())
                .workflow_id(wid.clone())
                .run_id(run_id.clone())
                .build(),
        );
        let json = handle
            .fetch_history(WorkflowFetchHistoryOptions::default())
            .to_json()
            .await
            .unwrap();
        let path = histories_dir().join(format!("{scenario}-run{}.json", i + 1));
        std::fs::write(&path, json).unwrap();
        eprintln!("saved {}", path.display());
    }
}

/// Paced to a few seconds, so that signals and faults land mid-campaign.
fn paced(app: &TestApp) -> herald_tests::Launch<'_> {
    app.campaign("h").page_size(100).lanes(2).rate(1500)
}

#[tokio::test]
#[ignore = "captures new histories from the real services; run by hand (see the module docs)"]
async fn capture_histories() {
    std::fs::create_dir_all(histories_dir()).unwrap();
    // The current set only: sets kept in subdirectories stay.
    for entry in std::fs::read_dir(histories_dir()).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "json") {
            std::fs::remove_file(path).unwrap();
        }
    }

    let mut app = TestApp::spawn().await.unwrap();
    app.seed(3_000, "h");

    for (scenario, options) in RUN_TO_COMPLETION {
        let key = options
            .chunks(2)
            .fold(app.campaign("h"), |launch, pair| {
                launch.option(pair[0].trim_start_matches("--"), pair[1])
            })
            .launch();
        app.wait_status(&key, CampaignStatus::Completed, LONG)
            .await
            .unwrap();
        save(&app, &key, scenario).await;
    }

    // A webhook campaign: pages that come back unfinished and are retried, and a change of
    // rate while it runs.
    let sink =
        herald_tests::sinks::WebhookSink::start("127.0.0.1:0", herald_tests::sinks::WEBHOOK_SECRET)
            .await
            .unwrap();
    sink.set_faults(herald_tests::sinks::webhook::Faults {
        status_500: 0.15,
        status_429: 0.05,
        retry_after_secs: 3,
        ..Default::default()
    });
    let key = app
        .campaign("h")
        .webhook(&sink.url())
        .option("attempts", "10")
        .option("auto-pause", "0")
        .page_size(200)
        .lanes(2)
        .rate(400)
        .launch();
    herald_tests::wait_until(LONG, || async { sink.delivered() >= 400 })
        .await
        .unwrap();
    app.herald_ok(&["rate", &key, "5000"]);
    app.wait_status(&key, CampaignStatus::Completed, LONG)
        .await
        .unwrap();
    save(&app, &key, "webhook").await;

    let key = paced(&app).launch();
    app.wait_items(&key, 500, LONG).await.unwrap();
    app.herald_ok(&["pause", &key, "--reason", "replay capture"]);
    app.wait_status(&key, CampaignStatus::Paused, LONG)
        .await
        .unwrap();
    app.herald_ok(&["resume", &key]);
    app.wait_status(&key, CampaignStatus::Completed, LONG)
        .await
        .unwrap();
    save(&app, &key, "pause-resume").await;

    let key = paced(&app).launch();
    app.wait_items(&key, 500, LONG).await.unwrap();
    app.herald_ok(&["cancel", &key]);
    app.ends_cancelled(&key).await;
    save(&app, &key, "cancel").await;

    let key = paced(&app).launch();
    app.wait_items(&key, 800, LONG).await.unwrap();
    app.kill_worker();
    app.start_worker().unwrap();
    app.wait_status(&key, CampaignStatus::Completed, LONG)
        .await
        .unwrap();
    save(&app, &key, "killed-worker").await;

    app.kill_worker();
    app.start_worker_with_env(&[("HERALD_FAULT_FAIL_AFTER_COMMIT_EVERY", "3")])
        .unwrap();
    let key = app.campaign("h").page_size(100).lanes(2).launch();
    app.wait_status(&key, CampaignStatus::Completed, LONG)
        .await
        .unwrap();
    save(&app, &key, "fault-after-commit").await;
}
