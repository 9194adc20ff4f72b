//! `leadflow`: operator and developer commands.
//!
//!   leadflow create-tables --template template.yaml [--name LogicalId=physical-name ...]
//!   leadflow list-leads [--table NAME] [--full]
//!   leadflow replay-quarantine [--table NAME] [--limit N] [--dry-run]
//!   leadflow list-lead-gone [--table NAME] [--limit N]
//!   leadflow renormalize-phones [--table NAME] [--dry-run] [--full]
//!   leadflow providers [--names | --check FILE]
//!   leadflow backfill [--table NAME] [--dry-run] [--page-size N] [--max-pages N]
//!
//! `replay-quarantine` and `backfill` read `REPORT_TIME_ZONE` (and `replay-quarantine`
//! `PRIVACY_PEPPER`) as the functions do: set them to the stack's values.
//!
//! DynamoDB is reached through the SDK's standard configuration (`AWS_ENDPOINT_URL_DYNAMODB`
//! for a local server); `--table` defaults to `TABLE_NAME`.

use std::collections::HashMap;
use std::process::ExitCode;

use leadflow::store::Store;
use leadflow_tools::{backfill, commands, leads, phones, providers, replay};

fn usage() -> &'static str {
    "usage:
  leadflow create-tables --template template.yaml [--name LogicalId=physical-name ...]
  leadflow list-leads [--table NAME] [--full]
  leadflow replay-quarantine [--table NAME] [--limit N] [--dry-run]
  leadflow list-lead-gone [--table NAME] [--limit N]
  leadflow renormalize-phones [--table NAME] [--dry-run] [--full]
      re-parses phones stored raw because they did not parse (DEFAULT_COUNTRY and
      BLOCKED_IDENTIFIERS as the functions read them); claims free numbers, reports taken ones
  leadflow providers [--names | --check FILE]
      the platforms and the variables each reads; --check fails naming every declared
      secret FILE (NAME=value lines, e.g. events/local.env) leaves unset
  leadflow backfill [--table NAME] [--dry-run] [--page-size N] [--max-pages N]
      the issue-13 migration: writes the sharded day keys (gsi2) on leads and touchpoints
      stored before them and mirrors linked reviews into their leads; resumes from its
      checkpoint, safe to repeat; when done the rollup reads gsi2 (docs/data-model.md).
      Then, after a change of REPORT_TIME_ZONE (set it as the stack has it), moves every
      lead and touchpoint to its local day in the new zone (docs/operations.md)"
}

struct Args {
    flags: HashMap<String, Vec<String>>,
    switches: Vec<String>,
}

impl Args {
    fn parse(rest: &[String]) -> Result<Args, String> {
        let mut flags: HashMap<String, Vec<String>> = HashMap::new();
        let mut switches = Vec::new();
        let mut it = rest.iter();
        while let Some(a) = it.next() {
            match a.as_str() {
                "--full" | "--dry-run" | "--names" => switches.push(a.clone()),
                f if f.starts_with("--") => {
                    let v = it.next().ok_or_else(|| format!("{f} needs a value"))?;
                    flags.entry(f.to_string()).or_default().push(v.clone());
                }
                other => return Err(format!("unexpected argument {other:?}")),
            }
        }
        Ok(Args { flags, switches })
    }

    fn one(&self, flag: &str) -> Option<String> {
        self.flags.get(flag).and_then(|v| v.last().cloned())
    }

    fn all(&self, flag: &str) -> &[String] {
        self.flags.get(flag).map(Vec::as_slice).unwrap_or_default()
    }

    fn has(&self, switch: &str) -> bool {
        self.switches.iter().any(|s| s == switch)
    }

    fn table(&self) -> Result<String, String> {
        self.one("--table")
            .or_else(|| std::env::var("TABLE_NAME").ok())
            .ok_or_else(|| "give --table or set TABLE_NAME".to_string())
    }

    /// `--limit N`, 100 by default.
    fn limit(&self) -> Result<usize, String> {
        self.one("--limit")
            .map(|l| l.parse().map_err(|_| "--limit takes a number".to_string()))
            .transpose()
            .map(|l| l.unwrap_or(100))
    }
}

async fn run(argv: Vec<String>) -> Result<(), String> {
    let Some(command) = argv.first() else {
        return Err(usage().to_string());
    };
    if matches!(command.as_str(), "-h" | "--help" | "help") {
        println!("{}", usage());
        return Ok(());
    }
    let args = Args::parse(&argv[1..])?;
    if command == "providers" {
        return providers::run(args.has("--names"), args.one("--check").as_deref());
    }
    // Operators run this from a workstation or CI: the full credential chain (profiles, web
    // identity, IMDS), unlike the functions' environment-only configuration.
    leadflow::config::drop_blank_endpoint_overrides();
    let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .timeout_config(leadflow::config::sdk_timeouts())
        .load()
        .await;
    match command.as_str() {
        "create-tables" => {
            let path = args
                .one("--template")
                .unwrap_or_else(|| "template.yaml".into());
            let text = std::fs::read_to_string(&path).map_err(|e| format!("{path}: {e}"))?;
            let names = commands::parse_table_names(args.all("--name"))?;
            let client = aws_sdk_dynamodb::Client::new(&sdk);
            commands::create_tables(&client, &text, &names).await?;
            Ok(())
        }
        "list-leads" => {
            leads::list_leads(&Store::new(&sdk, args.table()?), args.has("--full")).await
        }
        "replay-quarantine" => {
            let limit = args.limit()?;
            // The functions' pepper, so a replay of a suppressed person stores nothing, and
            // their reporting zone, so a replayed lead is filed on the day they would file it.
            let env = |k: &str| std::env::var(k).ok();
            let pepper = leadflow::privacy::Pepper::privacy(env)?;
            let zone = leadflow::report_zone::ReportZone::from_lookup(env)?;
            replay::replay_quarantine(
                &Store::new(&sdk, args.table()?)
                    .with_pepper(pepper)
                    .with_report_zone(zone),
                limit,
                args.has("--dry-run"),
            )
            .await
        }
        "list-lead-gone" => {
            let limit = args.limit()?;
            leads::list_lead_gone(&Store::new(&sdk, args.table()?), limit).await
        }
        "renormalize-phones" => {
            let cfg = leadflow::normalize::NormalizeConfig::from_lookup(|k| std::env::var(k).ok())?;
            phones::renormalize_phones(
                &Store::new(&sdk, args.table()?),
                &cfg,
                args.has("--dry-run"),
                args.has("--full"),
            )
            .await
            .map(|_| ())
        }
        "backfill" => {
            let number = |flag: &str| -> Result<Option<u64>, String> {
                args.one(flag)
                    .map(|v| {
                        v.parse::<u64>()
                            .ok()
                            .filter(|n| *n > 0)
                            .ok_or_else(|| format!("{flag} takes a positive number"))
                    })
                    .transpose()
            };
            let (zone, zone_set) = backfill::zone_from(|k| std::env::var(k).ok())?;
            let options = backfill::Options {
                page_size: number("--page-size")?.unwrap_or(1000).min(10_000) as i32,
                max_pages: number("--max-pages")?,
                dry_run: args.has("--dry-run"),
            };
            let store = Store::new(&sdk, args.table()?).with_report_zone(zone);
            let outcome = backfill::run(&store, zone_set, options, chrono::Utc::now()).await?;
            println!(
                "{}",
                serde_json::to_string_pretty(&outcome).map_err(|e| e.to_string())?
            );
            Ok(())
        }
        other => Err(format!("unknown command {other:?}\n{}", usage())),
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    match run(argv).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("leadflow: {e}");
            ExitCode::FAILURE
        }
    }
}
