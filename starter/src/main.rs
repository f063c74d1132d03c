//! `herald`: the operator's command line. It parses arguments, calls the control layer
//! (`herald_control`) and prints what comes back.
//!
//! - `main.rs`: arguments, and turning any failure into one line on stderr and an exit code
//!   (`herald_control::error::exit_code`).
//! - `commands.rs`: one function per subcommand, printing its result.
//! - `launch.rs`: launching, dry runs and saved audiences.
//! - `users.rs`: seeding, importing and showing users.
//! - `consent.rs`: categories, opt-outs, the suppression list and the default frequency cap.
//! - `watch.rs`: the live progress bar.
//! - `shared.rs`: what every subcommand uses (connecting, the actor, the progress bar).
//!
//! Exit codes: 0 success, 2 the request was refused as it stands (bad input, unknown
//! campaign, wrong status; nothing changed), 1 anything else (a service is down, ours).

mod commands;
mod consent;
mod launch;
mod shared;
mod users;
mod watch;

use clap::{Args, Parser, Subcommand};
use herald_control::config::CliConfig;
use herald_wire::{CampaignKey, Rate, Segment};

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "herald",
    version,
    about = "Send one message to millions of users; pause and resume without skipping anyone."
)]
struct Cli {
    #[command(flatten)]
    config: CliConfig,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Manage the audience.
    Users {
        #[command(subcommand)]
        command: UsersCommand,
    },
    /// Launch a campaign and print its key (or, with --dry-run, count its audience).
    Launch(launch::LaunchArgs),
    /// Render a campaign (a launched one's key, or launch flags) for users, as their page
    /// would: its title, body, and an e-mail's subject and HTML, with the variables it reads
    /// and those a user lacks. Three random recipients when no --user is given. Writes nothing.
    Preview {
        #[command(flatten)]
        of: launch::TryArgs,
        /// A user to render it for (repeat, or comma-separated; at most 20).
        #[arg(long = "user", value_delimiter = ',')]
        users: Vec<i64>,
        #[arg(long)]
        json: bool,
    },
    /// Send a campaign (a launched one's key, or launch flags) now to up to 20 users through
    /// its channel, marked as a test ("[Test]" subject, webhook type herald.message.test, ids
    /// of their own); kept in the test-send log, never in the campaign's ledger.
    TestSend {
        #[command(flatten)]
        of: launch::TryArgs,
        /// The users to send it to (comma-separated or repeated).
        #[arg(long = "to", value_delimiter = ',', required = true)]
        to: Vec<i64>,
        #[arg(long)]
        json: bool,
    },
    /// Save, list and delete named audience filters.
    Audience {
        #[command(subcommand)]
        command: launch::AudienceCommand,
    },
    /// Pause a campaign before its next page; it can be resumed later.
    Pause(RequestArgs),
    /// Resume a paused campaign from the next unprocessed recipient.
    Resume(RequestArgs),
    /// Cancel a campaign for good (status 4).
    Cancel(RequestArgs),
    /// Change a running campaign's speed limit: recipients per second (1–10000000), or
    /// "none"; its next pages follow it within a second.
    Rate {
        #[arg(value_parser = parse_key)]
        key: CampaignKey,
        #[arg(value_parser = parse_rate)]
        rate: RateLimit,
    },
    /// A campaign's deliveries: counts by outcome and error class, the most common errors,
    /// and its failed recipients with their last error.
    Report {
        #[arg(value_parser = parse_key)]
        key: CampaignKey,
        /// Print JSON instead of text.
        #[arg(long, conflicts_with = "csv")]
        json: bool,
        /// Print every failed recipient as CSV (user_id,email,attempts,error_class,error,last_try).
        #[arg(long)]
        csv: bool,
        /// Failed recipients to show in text or JSON (0–10000).
        #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(i64).range(0..=10_000))]
        failed: i64,
    },
    /// Send again to a completed webhook or e-mail campaign's failed recipients, with the
    /// same idempotency ids; it goes back to in progress and completes again.
    RetryFailed {
        #[arg(value_parser = parse_key)]
        key: CampaignKey,
    },
    /// Show a campaign's status and counters.
    Status {
        #[arg(value_parser = parse_key)]
        key: CampaignKey,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Follow a campaign live until it ends.
    Watch {
        #[arg(value_parser = parse_key)]
        key: CampaignKey,
    },
    /// List campaigns, newest first.
    List {
        #[arg(long, default_value_t = 20)]
        limit: i64,
        #[arg(long)]
        json: bool,
    },
    /// Show a user's in-app inbox.
    Inbox {
        user: i64,
        #[arg(long, default_value_t = 20)]
        limit: i64,
        #[arg(long)]
        json: bool,
    },
    /// Mark a campaign's message read for a user (idempotent).
    Read {
        user: i64,
        #[arg(value_parser = parse_key)]
        key: CampaignKey,
    },
    /// Make, list and revoke the API's keys, each with scopes.
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
    /// Settings every process reads alike; with none named, shows them.
    Settings {
        #[command(subcommand)]
        command: Option<consent::SettingsCommand>,
    },
    /// Declare and list campaign categories (what users opt out of).
    Categories {
        #[command(subcommand)]
        command: consent::CategoriesCommand,
    },
    /// Opt a user out of a category, on one channel or on all (idempotent); or, with
    /// --file, the users of a CSV list.
    OptOut {
        #[arg(required_unless_present = "file", conflicts_with = "file")]
        user: Option<i64>,
        /// A CSV of opt-outs to import: a user id a line, then optionally a category and a
        /// channel for that line (else --category and --channel); an optional header line.
        /// A bad line imports nothing.
        #[arg(long)]
        file: Option<std::path::PathBuf>,
        /// The category ("marketing" or a declared one).
        #[arg(long, default_value = "marketing")]
        category: String,
        /// inbox, webhook, email, or all.
        #[arg(long, default_value = "all")]
        channel: String,
    },
    /// A user's opt-outs: category, channel, when and how.
    Preferences {
        user: i64,
        #[arg(long)]
        json: bool,
    },
    /// The addresses no campaign sends to: list, add, import, remove.
    Suppressions {
        #[command(subcommand)]
        command: consent::SuppressionsCommand,
    },
    /// Create or upgrade the database's schema. Other commands and workers only check it
    /// and say when this is needed (a worker migrates only with HERALD_MIGRATE=true).
    Migrate,
}

#[derive(Subcommand)]
enum UsersCommand {
    /// Add N test users, optionally carrying a segment. Test data for trying Herald out and
    /// for benchmarks; refused on a database that is not on this machine unless
    /// --allow-remote.
    Seed {
        #[arg(long)]
        count: i64,
        #[arg(long, value_parser = parse_segment)]
        segment: Option<Segment>,
        /// Give each user a locale, a time zone and the demo attributes, chosen by id: plan
        /// (free, pro, team by id mod 3), country (8 codes by id mod 8), age (18 + id mod
        /// 60), bucket (id mod 100), last_seen (id mod 90 days ago).
        #[arg(long)]
        attrs: bool,
        /// Seed a database on another machine anyway.
        #[arg(long)]
        allow_remote: bool,
    },
    /// Import users from a CSV file with a header row (id required; email, name, locale,
    /// timezone, segments (space-separated) and created_at by name; every other column an
    /// attribute) or NDJSON (one {"id": …, "email": …, "attrs": {…}} per line). Upserts by
    /// id: a column the file has replaces the stored value, an empty cell or null clears it.
    /// A refused row is reported with its line and the others go on.
    Import {
        file: std::path::PathBuf,
        /// csv or ndjson; by default from the file's extension.
        #[arg(long, value_parser = parse_format)]
        format: Option<herald_control::import::Format>,
        /// Types of attributes new to Herald: plan=text,age=int,last_seen=time (text, int,
        /// number, bool, time). Untyped ones take the type their values in the first 1,000
        /// rows look like, and the import says so.
        #[arg(long, value_parser = parse_types)]
        types: Option<std::collections::BTreeMap<String, herald_wire::audience::AttrType>>,
        /// Check the whole file first, and import nothing if any row is refused.
        #[arg(long)]
        strict: bool,
    },
    /// One user as stored, as JSON.
    Show { id: i64 },
}

#[derive(Subcommand)]
pub(crate) enum KeysCommand {
    /// Make a key and print it (it is shown this once; only its hash is kept).
    Create {
        name: String,
        /// What it may do, comma-separated: read (campaigns, reports, users, metrics),
        /// operate (pause, resume, cancel, rate, retry-failed), launch (campaigns and users),
        /// admin (everything).
        #[arg(long, default_value = "read", value_parser = parse_scopes)]
        scopes: Scopes,
    },
    /// Every key: its scopes, who made it and when, open sessions, and whether it is revoked.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Refuse the key from now on, and end its dashboard sessions.
    Revoke { name: String },
}

#[derive(Clone, Debug)]
pub(crate) struct Scopes(pub(crate) Vec<herald_wire::keys::Scope>);

fn parse_scopes(s: &str) -> Result<Scopes, String> {
    herald_wire::keys::Scope::parse_list(s)
        .map(Scopes)
        .map_err(|e| e.to_string())
}

#[derive(Args)]
struct RequestArgs {
    #[arg(value_parser = parse_key)]
    key: CampaignKey,
    /// Why; recorded on the campaign and shown by `status`.
    #[arg(long)]
    reason: Option<String>,
}

fn parse_key(s: &str) -> Result<CampaignKey, String> {
    CampaignKey::parse(s).map_err(|e| e.to_string())
}

/// `herald rate`'s argument: a rate, or none.
#[derive(Clone, Copy, Debug)]
pub(crate) struct RateLimit(pub(crate) Option<Rate>);

fn parse_rate(s: &str) -> Result<RateLimit, String> {
    match s {
        "none" | "unlimited" => Ok(RateLimit(None)),
        s => s
            .parse()
            .map(|r| RateLimit(Some(r)))
            .map_err(|e: herald_wire::InvalidInput| format!("{e} (or \"none\" for no limit)")),
    }
}

fn parse_segment(s: &str) -> Result<Segment, String> {
    Segment::parse(s).map_err(|e| e.to_string())
}

fn parse_format(s: &str) -> Result<herald_control::import::Format, String> {
    use herald_control::import::Format;
    match s {
        "csv" => Ok(Format::Csv),
        "ndjson" | "jsonl" => Ok(Format::Ndjson),
        _ => Err(format!("{s:?} is not a format: csv or ndjson")),
    }
}

fn parse_types(
    s: &str,
) -> Result<std::collections::BTreeMap<String, herald_wire::audience::AttrType>, String> {
    herald_control::import::parse_types(s).map_err(|e| e.to_string())
}

#[tokio::main]
async fn main() {
    // Behave like a Unix tool when stdout closes early (`herald list | head`): exit quietly
    // instead of panicking on the broken pipe.
    // SAFETY: `signal` only resets the process-wide disposition of SIGPIPE to the default;
    // no handler runs, so it is sound even with the runtime's threads already started.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) if !e.use_stderr() => e.exit(), // --help, --version
        Err(e) => {
            // clap's own report spans several lines; keep the one that says what is wrong.
            eprintln!(
                "herald: {}",
                herald_control::config::first_line(&e.to_string())
            );
            std::process::exit(2);
        }
    };
    let filter = tracing_subscriber::EnvFilter::try_new(&cli.config.log).unwrap_or_else(|e| {
        eprintln!(
            "herald: RUST_LOG {:?} is not a log filter ({e})",
            cli.config.log
        );
        std::process::exit(2);
    });
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
    if let Err(e) = commands::run(cli.config.services, cli.command).await {
        eprintln!("herald: {}", herald_control::error::one_line(e.chain()));
        std::process::exit(herald_control::error::exit_code(e.chain()));
    }
}

#[cfg(test)]
mod tests {
    /// clap's own checks of the definitions (unique ids, valid conflicts), which a release
    /// build skips.
    #[test]
    fn the_commands_are_well_formed() {
        use clap::CommandFactory;
        super::Cli::command().debug_assert();
    }
}
