//! The shape of the code, checked on every test run (see `docs/architecture.md`): no
//! function over 60 lines outside tests (applied migrations are history and are never
//! edited, so they are not held to it), no cycle between the modules of a crate, and
//! apalis' tables named only in `jobs/src/queue.rs`.

use std::{
    collections::{BTreeMap, BTreeSet},
    path::{Path, PathBuf},
};

const CRATES: [&str; 4] = ["api", "jobs", "entity", "migration"];
const MAX_FUNCTION_LINES: usize = 60;

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The crate's source files with their text up to their test module.
fn sources(krate: &str) -> Vec<(PathBuf, String)> {
    let root = tests::workspace_root().join(krate).join("src");
    let mut files = Vec::new();
    rust_files(&root, &mut files);
    files.sort();
    files
        .into_iter()
        .map(|path| {
            let text = std::fs::read_to_string(&path).unwrap();
            let code = match text.find("#[cfg(test)]") {
                Some(at) => text[..at].to_owned(),
                None => text,
            };
            (path, code)
        })
        .collect()
}

/// `(name, first line, length)` of every function: from its `fn` line to the closing
/// brace at the same indentation.
fn functions(code: &str) -> Vec<(String, usize, usize)> {
    let lines: Vec<&str> = code.lines().collect();
    let mut found = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let trimmed = line.trim_start();
        let indent = line.len() - trimmed.len();
        let signature = trimmed
            .trim_start_matches("pub ")
            .trim_start_matches("pub(crate) ")
            .trim_start_matches("const ")
            .trim_start_matches("async ");
        let Some(rest) = signature.strip_prefix("fn ") else {
            continue;
        };
        let name: String = rest
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect();
        let close = format!("{}}}", " ".repeat(indent));
        let end = lines[i..]
            .iter()
            .position(|l| *l == close || (l.trim_end().ends_with(';') && l.trim_start() == *l))
            .map_or(1, |n| n + 1);
        found.push((name, i + 1, end));
    }
    found
}

#[test]
fn no_function_is_longer_than_sixty_lines() {
    let mut long = Vec::new();
    for krate in CRATES.into_iter().filter(|k| *k != "migration") {
        for (path, code) in sources(krate) {
            for (name, line, length) in functions(&code) {
                if length > MAX_FUNCTION_LINES {
                    long.push(format!("{}:{line} {name} ({length} lines)", path.display()));
                }
            }
        }
    }
    assert!(
        long.is_empty(),
        "functions over {MAX_FUNCTION_LINES} lines:\n{}",
        long.join("\n")
    );
}

/// The top-level module of a file (`engine` for `src/engine/fold.rs`; `lib` for `lib.rs`).
fn module_of(root: &Path, path: &Path) -> String {
    let relative = path.strip_prefix(root).unwrap();
    let first = relative.components().next().unwrap().as_os_str();
    first.to_string_lossy().trim_end_matches(".rs").to_owned()
}

/// Edges `module → module` from `crate::x` paths.
fn module_graph(krate: &str) -> BTreeMap<String, BTreeSet<String>> {
    let root = tests::workspace_root().join(krate).join("src");
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (path, code) in sources(krate) {
        let from = module_of(&root, &path);
        if from == "lib" || from == "main" {
            continue;
        }
        let mut targets = BTreeSet::new();
        for (at, _) in code.match_indices("crate::") {
            let target: String = code[at + 7..]
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            if !target.is_empty() && target != from {
                targets.insert(target);
            }
        }
        // `use crate::{a, b::c}` lists.
        for (at, _) in code.match_indices("use crate::{") {
            let list = &code[at + 12..];
            let mut depth = 1;
            let mut item = String::new();
            for c in list.chars() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 1 => break,
                    '}' => depth -= 1,
                    _ => {}
                }
                if depth == 1 && (c == ',' || c.is_whitespace()) {
                    item.clear();
                } else if depth == 1 && (c.is_alphanumeric() || c == '_') {
                    item.push(c);
                } else if depth >= 1 && c == ':' && !item.is_empty() && item != from {
                    targets.insert(std::mem::take(&mut item));
                }
            }
        }
        graph.entry(from).or_default().extend(targets);
    }
    graph
}

fn find_cycle(graph: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        node: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(at) = path.iter().position(|n| n == node) {
            let mut cycle = path[at..].to_vec();
            cycle.push(node.to_owned());
            return Some(cycle);
        }
        if done.contains(node) {
            return None;
        }
        path.push(node.to_owned());
        for next in graph.get(node).into_iter().flatten() {
            if let Some(cycle) = visit(next, graph, path, done) {
                return Some(cycle);
            }
        }
        path.pop();
        done.insert(node.to_owned());
        None
    }
    let mut done = BTreeSet::new();
    graph
        .keys()
        .find_map(|node| visit(node, graph, &mut Vec::new(), &mut done))
}

#[test]
fn the_modules_of_a_crate_form_no_cycle() {
    for krate in CRATES {
        let graph = module_graph(krate);
        assert!(
            find_cycle(&graph).is_none(),
            "{krate}: modules in a cycle: {:?}",
            find_cycle(&graph).unwrap()
        );
    }
}

#[test]
fn the_cycle_check_sees_a_cycle() {
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    graph.entry("a".into()).or_default().insert("b".into());
    graph.entry("b".into()).or_default().insert("a".into());
    assert_eq!(find_cycle(&graph).unwrap(), ["a", "b", "a"]);
    let long = "fn f() {\n".to_owned() + &"    x();\n".repeat(70) + "}\n";
    assert_eq!(functions(&long), [("f".to_owned(), 1, 72)]);
}

#[test]
fn only_the_queue_module_names_apalis_tables() {
    let mut offenders = Vec::new();
    for krate in CRATES {
        for (path, code) in sources(krate) {
            if path.ends_with("jobs/src/queue.rs") {
                continue;
            }
            for needle in [
                "apalis.jobs",
                "apalis.workers",
                "FROM Jobs",
                "UPDATE Jobs",
                "INTO Jobs",
                "Workers SET",
            ] {
                if code.contains(needle) {
                    offenders.push(format!("{} ({needle})", path.display()));
                }
            }
        }
    }
    assert!(offenders.is_empty(), "{offenders:?}");
}
