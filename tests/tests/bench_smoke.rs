//! The benchmark program runs every scenario at a tiny size against the real binary and
//! prints a JSON line per scenario with its figures (no timing is asserted: speed is
//! measured by running the bench itself, see `docs/performance.md`).

use std::process::Command;

use serde_json::Value;
use tests::{binary, postgres_url, skip_notice};

fn smoke(database_url: Option<&str>) -> Vec<Value> {
    let mut command = Command::new(env!("CARGO_BIN_EXE_bench"));
    command
        .args(["all", "--smoke", "--server-binary"])
        .arg(binary())
        // The comparison of two builds in one run, here the same build twice.
        .arg(format!("--compare=same={}", binary().display()))
        .env_remove("BENCH_DATABASE_URL");
    if let Some(url) = database_url {
        command.args(["--database-url", url]);
    }
    let output = command.output().expect("run the bench");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "bench failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter(|value| value.get("scenario").is_some())
        .collect()
}

fn check(reports: &[Value], backend: &str) {
    let scenario = |name: &str| {
        reports
            .iter()
            .find(|r| r["scenario"] == name)
            .unwrap_or_else(|| panic!("no {name} report in {reports:?}"))
    };
    // The same journeys as Hotmart's and as Kiwify's: every delivery processed, both ways.
    let checkouts = scenario("checkouts");
    assert_eq!(checkouts["errors"], 0, "{checkouts}");
    assert_eq!(
        checkouts["hotmart_processed"], checkouts["hotmart_deliveries"],
        "{checkouts}"
    );
    assert_eq!(
        checkouts["kiwify_processed"], checkouts["kiwify_deliveries"],
        "{checkouts}"
    );
    assert!(
        checkouts["kiwify_deliveries"].as_u64().unwrap() > 100,
        "{checkouts}"
    );
    assert!(
        checkouts["kiwify_to_hotmart"].as_f64().unwrap() > 0.0,
        "{checkouts}"
    );
    assert_eq!(
        checkouts["hotmart_same_processed"], checkouts["hotmart_deliveries"],
        "{checkouts}"
    );
    assert!(
        checkouts["hotmart_to_same"].as_f64().unwrap() > 0.0,
        "{checkouts}"
    );
    let webhooks = scenario("webhooks");
    assert_eq!(webhooks["backend"], backend);
    assert_eq!(webhooks["errors"], 0, "{webhooks}");
    // 300 unique deliveries + 10 % re-sends, every one stored and none left pending.
    assert_eq!(webhooks["deliveries"], 330);
    assert_eq!(webhooks["stored"], 330);
    assert_eq!(webhooks["statuses"]["DUPLICATE"], 30, "{webhooks}");
    assert_eq!(webhooks["statuses"]["PROCESSED"], 300, "{webhooks}");
    assert_eq!(webhooks["statuses"]["PENDING"], 0, "{webhooks}");
    for key in [
        "accepted_per_sec",
        "baseline_per_sec",
        "ratio_to_baseline",
        "end_to_end_per_sec",
        "deals",
        "peak_rss_mib",
    ] {
        assert!(
            webhooks[key].as_f64().unwrap_or(0.0) > 0.0,
            "{key}: {webhooks}"
        );
    }
    let latency = scenario("latency");
    assert_eq!(latency["errors"], 0, "{latency}");
    assert!(latency["ack_p99_ms"].as_f64().unwrap_or(0.0) > 0.0);
    // The server's own histograms were read: bucket bounds (ms) and a share of requests.
    for key in [
        "server_handler_p99_bound_ms",
        "server_inbox_p99_bound_ms",
        "server_handler_p99_bound_without_processing_ms",
    ] {
        let bound = latency[key].as_f64().unwrap_or(f64::NAN);
        assert!(bound > 0.0 && bound.is_finite(), "{key}: {latency}");
    }
    let within = latency["server_handler_within_10ms_pct"]
        .as_f64()
        .unwrap_or(f64::NAN);
    assert!((0.0..=100.0).contains(&within), "{latency}");
    let import = scenario("import");
    assert_eq!(import["run"]["status"], "SUCCEEDED", "{import}");
    assert_eq!(import["run"]["salesSeen"], 1000, "{import}");
    assert!(import["sales_per_sec"].as_f64().unwrap_or(0.0) > 0.0);
    let graphql = scenario("graphql");
    assert_eq!(graphql["deals"], 5000, "{graphql}");
    assert!(graphql["listed"].as_u64().unwrap_or(0) > 100, "{graphql}");
    for key in ["first_page_p99_ms", "deep_page_p99_ms", "timeline_p99_ms"] {
        assert!(
            graphql[key].as_f64().unwrap_or(0.0) > 0.0,
            "{key}: {graphql}"
        );
    }
    // Every deal exported (those the loads added meanwhile too), one line each under the
    // header; the webhooks offered meanwhile all acknowledged; both erasures timed.
    let exports = scenario("exports");
    assert_eq!(exports["deals"], 5000, "{exports}");
    let rows = exports["rows"].as_u64().unwrap_or(0);
    assert!(rows >= 5000, "{exports}");
    assert_eq!(exports["file_lines"].as_u64(), Some(rows + 1), "{exports}");
    assert_eq!(exports["ack_errors"], 0, "{exports}");
    for key in [
        "export_secs",
        "peak_rss_mib",
        "ack_during_p99_ms",
        "erase_many_secs",
    ] {
        assert!(
            exports[key].as_f64().unwrap_or(0.0) > 0.0,
            "{key}: {exports}"
        );
    }
    // Outbound events: messages reached the receiver; every rate was measured.
    let outbound = scenario("outbound");
    assert!(
        outbound["messages_received"].as_u64().unwrap_or(0)
            >= outbound["deliveries"].as_u64().unwrap_or(1) / 2,
        "{outbound}"
    );
    for key in [
        "with_to_without",
        "dispatch_per_sec",
        "beside_hanging_to_alone",
    ] {
        assert!(
            outbound[key].as_f64().unwrap_or(0.0) > 0.0,
            "{key}: {outbound}"
        );
    }
}

#[test]
fn every_scenario_runs_on_sqlite() {
    check(&smoke(None), "sqlite");
}

#[test]
fn every_scenario_runs_on_postgres() {
    let Some(url) = postgres_url() else {
        skip_notice("every_scenario_runs_on_postgres");
        return;
    };
    check(&smoke(Some(&url)), "postgres");
}
