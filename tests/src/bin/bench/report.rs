//! Output: a readable table and one JSON line per scenario.

use serde_json::{Map, Value, json};

/// What a figure is compared with.
pub enum Target {
    None,
    AtLeast(f64),
    AtMost(f64),
}

pub struct Row {
    metric: String,
    value: f64,
    unit: &'static str,
    target: Target,
}

pub struct Report {
    scenario: &'static str,
    title: String,
    rows: Vec<Row>,
    json: Map<String, Value>,
    notes: Vec<String>,
}

impl Report {
    pub fn new(scenario: &'static str, title: String) -> Report {
        let mut json = Map::new();
        json.insert("scenario".into(), json!(scenario));
        Report {
            scenario,
            title,
            rows: Vec::new(),
            json,
            notes: Vec::new(),
        }
    }

    /// A figure: shown in the table, and in the JSON line under `key`.
    pub fn figure(
        &mut self,
        key: &str,
        metric: &str,
        value: f64,
        unit: &'static str,
        target: Target,
    ) {
        let rounded = (value * 100.0).round() / 100.0;
        self.json.insert(key.into(), json!(rounded));
        self.rows.push(Row {
            metric: metric.into(),
            value,
            unit,
            target,
        });
    }

    /// p50 and p99 of `samples` as two figures (`{key}_p50_ms`, `{key}_p99_ms`); the
    /// target applies to p99.
    pub fn latency(
        &mut self,
        key: &str,
        metric: &str,
        samples: &mut [std::time::Duration],
        p99_target: Target,
    ) {
        for (p, target) in [(50.0, Target::None), (99.0, p99_target)] {
            self.figure(
                &format!("{key}_p{p:.0}_ms"),
                &format!("{metric} p{p:.0}"),
                crate::load::percentile_ms(samples, p),
                "ms",
                target,
            );
        }
    }

    /// A value for the JSON line only (sizes, backend, …).
    pub fn fact(&mut self, key: &str, value: Value) {
        self.json.insert(key.into(), value);
    }

    pub fn note(&mut self, note: String) {
        self.notes.push(note);
    }

    pub fn print(&self) {
        println!();
        println!("== {}: {}", self.scenario, self.title);
        println!(
            "{:<44} {:>14}  {:<6} {:<12} ",
            "metric", "value", "unit", "target"
        );
        let mut missed = Vec::new();
        for row in &self.rows {
            let (target, met) = match row.target {
                Target::None => (String::new(), true),
                Target::AtLeast(t) => (format!(">= {}", pretty(t)), row.value >= t),
                Target::AtMost(t) => (format!("<= {}", pretty(t)), row.value <= t),
            };
            let mark = if target.is_empty() {
                ""
            } else if met {
                "met"
            } else {
                "MISSED"
            };
            if !met {
                missed.push(json!(row.metric));
            }
            println!(
                "{:<44} {:>14}  {:<6} {:<12} {mark}",
                row.metric,
                pretty(row.value),
                row.unit,
                target
            );
        }
        for note in &self.notes {
            println!("  note: {note}");
        }
        let mut json = self.json.clone();
        json.insert("missed".into(), Value::Array(missed));
        println!("{}", Value::Object(json));
    }
}

fn pretty(value: f64) -> String {
    if value.abs() >= 100.0 {
        format!("{value:.0}")
    } else if value.abs() >= 10.0 {
        format!("{value:.1}")
    } else {
        format!("{value:.2}")
    }
}

/// Prints what the figures were measured on.
pub fn machine() {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split_once(':'))
        .map(|(_, m)| m.trim().to_owned())
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(0);
    let memory_gib = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find(|l| l.starts_with("MemTotal:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kib| kib.parse::<f64>().ok())
        })
        .map(|kib| kib / 1024.0 / 1024.0)
        .unwrap_or(0.0);
    println!("machine: {model}, {cores} cores, {memory_gib:.0} GiB");
    println!(
        "{}",
        json!({"machine": {"cpu": model, "cores": cores, "memory_gib": memory_gib.round()}})
    );
}
