//! Benchmarks of the real `checkout-crm` binary, each on a fresh database.
//!
//! ```text
//! cargo run --release -p tests --bin bench -- <webhooks|latency|import|graphql|checkouts|exports|outbound|all> [options]
//! ```
//!
//! Every scenario prints a table and one JSON line (`{"scenario": …}`) with its figures.
//! `--smoke` runs every scenario at a tiny size (seconds), as CI does.

mod baseline;
mod checkouts;
mod exports;
mod graphql;
mod import;
mod load;
mod moves;
mod outbound;
mod report;
mod server;
mod webhooks;

use std::path::PathBuf;

use clap::{Parser, ValueEnum};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Scenario {
    Webhooks,
    Latency,
    Import,
    Graphql,
    Checkouts,
    Exports,
    Outbound,
    All,
}

#[derive(Debug, Clone, Parser)]
#[command(name = "bench", about = "Benchmarks of the checkout-crm server")]
pub struct Args {
    #[arg(value_enum, default_value = "all")]
    scenario: Scenario,
    /// A PostgreSQL server URL (`postgres://user@host:port/db`): each scenario creates
    /// and drops its own database there. SQLite when absent.
    #[arg(long, env = "BENCH_DATABASE_URL")]
    pub database_url: Option<String>,
    /// Unique deliveries of the `webhooks` scenario (duplicates come on top).
    #[arg(long, default_value_t = 50_000)]
    pub deliveries: usize,
    /// Share of exact re-sends added to the deliveries.
    #[arg(long, default_value_t = 0.10)]
    pub duplicates: f64,
    /// Requests in flight in the `webhooks` scenario (keep-alive connections).
    #[arg(long, default_value_t = 64)]
    pub concurrency: usize,
    /// Offered load of the `latency` scenario, requests per second.
    #[arg(long, default_value_t = 1_000.0)]
    pub rate: f64,
    /// Duration of the `latency` scenario, seconds.
    #[arg(long, default_value_t = 30)]
    pub seconds: u64,
    /// Sales served by the fake Hotmart API in the `import` scenario.
    #[arg(long, default_value_t = 100_000)]
    pub sales: usize,
    /// Deals in the database of the `graphql` scenario.
    #[arg(long, default_value_t = 1_000_000)]
    pub deals: usize,
    /// Requests per measured query in the `graphql` scenario.
    #[arg(long, default_value_t = 500)]
    pub samples: usize,
    /// Tiny sizes for every scenario (a smoke test, not a measurement).
    #[arg(long)]
    pub smoke: bool,
    /// Where runs keep their files (a temporary directory when absent).
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// The `checkout-crm` binary to measure (default: build and use the release binary).
    #[arg(long)]
    pub server_binary: Option<PathBuf>,
    /// `checkouts` only: another build to measure on the same Hotmart deliveries in the same
    /// run, as `label=path` (for example the engine before a change); repeatable.
    #[arg(long, value_parser = parse_compare)]
    pub compare: Vec<(String, PathBuf)>,
    /// `checkouts` only: how many times each build is measured, in turn (the best is kept).
    #[arg(long, default_value_t = 1)]
    pub rounds: usize,
}

fn parse_compare(value: &str) -> Result<(String, PathBuf), String> {
    let (label, path) = value
        .split_once('=')
        .ok_or_else(|| format!("expected label=path, got {value:?}"))?;
    let path = PathBuf::from(path);
    if !path.is_file() {
        return Err(format!("{} is not a file", path.display()));
    }
    Ok((label.to_owned(), path))
}

impl Args {
    fn shrink(&mut self) {
        self.deliveries = self.deliveries.min(300);
        self.concurrency = self.concurrency.min(8);
        self.rate = self.rate.min(100.0);
        self.seconds = self.seconds.min(2);
        self.sales = self.sales.min(1_000);
        self.deals = self.deals.min(5_000);
        self.samples = self.samples.min(10);
    }

    pub fn backend(&self) -> &'static str {
        if self.database_url.is_some() {
            "postgres"
        } else {
            "sqlite"
        }
    }

    /// A fresh directory for one scenario's files.
    pub fn run_dir(&self) -> tempfile::TempDir {
        match &self.dir {
            Some(dir) => {
                std::fs::create_dir_all(dir).expect("create --dir");
                tempfile::tempdir_in(dir).unwrap()
            }
            None => tempfile::tempdir().unwrap(),
        }
    }
}

#[tokio::main]
async fn main() {
    let mut args = Args::parse();
    if args.smoke {
        args.shrink();
    }
    let binary = args
        .server_binary
        .clone()
        .unwrap_or_else(|| tests::build_binary(true));
    let scenarios = match args.scenario {
        Scenario::All => vec![
            Scenario::Webhooks,
            Scenario::Latency,
            Scenario::Import,
            Scenario::Graphql,
            Scenario::Checkouts,
            Scenario::Exports,
            Scenario::Outbound,
        ],
        one => vec![one],
    };
    report::machine();
    for scenario in scenarios {
        let report = match scenario {
            Scenario::Webhooks => webhooks::throughput(&args, &binary).await,
            Scenario::Latency => webhooks::latency(&args, &binary).await,
            Scenario::Import => import::run(&args, &binary).await,
            Scenario::Graphql => graphql::run(&args, &binary).await,
            Scenario::Checkouts => checkouts::run(&args, &binary).await,
            Scenario::Exports => exports::run(&args, &binary).await,
            Scenario::Outbound => outbound::run(&args, &binary).await,
            Scenario::All => unreachable!(),
        };
        report.print();
    }
}
