//! The shape of the code, checked on every test run (see `docs/architecture.md`): no
//! function over 60 lines outside tests (applied migrations are history and are never
//! edited, so they are not held to it), no cycle between the modules of a crate (files,
//! through `crate::` and `super::` paths, grouped `use` lists included), and
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
            .trim_start_matches("pub(super) ")
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

/// The module path of a file: `engine::fold` for `src/engine/fold.rs`, `engine` for
/// `src/engine/mod.rs`, empty for `lib.rs` and `main.rs`.
fn module_of(root: &Path, path: &Path) -> Vec<String> {
    let relative = path.strip_prefix(root).unwrap();
    let mut parts: Vec<String> = relative
        .components()
        .map(|c| {
            c.as_os_str()
                .to_string_lossy()
                .trim_end_matches(".rs")
                .to_owned()
        })
        .collect();
    if matches!(
        parts.last().map(String::as_str),
        Some("mod" | "lib" | "main")
    ) {
        parts.pop();
    }
    parts
}

/// Every path a file's code names through `crate::` or `super::` (each `super` resolved
/// against the file's module), grouped `use` lists expanded: `use super::{a, b::{c}}`
/// gives `a` and `b::c`.
fn named_paths(code: &str, module: &[String]) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    // Comments name things (doc links) without depending on them.
    let code: String = code
        .lines()
        .filter(|l| !l.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n");
    let bytes: Vec<char> = code.chars().collect();
    let mut i = 0;
    while i < bytes.len() {
        let at = |i: usize, word: &str| bytes[i..].iter().take(7).copied().eq(word.chars());
        let starts_word = i == 0
            || !(bytes[i - 1].is_alphanumeric() || bytes[i - 1] == '_' || bytes[i - 1] == ':');
        let base: Option<Vec<String>> = if starts_word && at(i, "crate::") {
            i += 7;
            Some(Vec::new())
        } else if starts_word && at(i, "super::") {
            let mut base = module.to_vec();
            while at(i, "super::") {
                base.pop();
                i += 7;
            }
            Some(base)
        } else {
            None
        };
        match base {
            Some(base) => i = expand(&bytes, i, base, &mut out),
            None => i += 1,
        }
    }
    out
}

/// Reads a path (or a `{…}` list of paths) at `i` after `base`; returns where it ended.
fn expand(code: &[char], mut i: usize, mut base: Vec<String>, out: &mut Vec<Vec<String>>) -> usize {
    loop {
        if code.get(i) == Some(&'{') {
            i += 1;
            loop {
                while code.get(i).is_some_and(|c| c.is_whitespace() || *c == ',') {
                    i += 1;
                }
                match code.get(i) {
                    Some('}') | None => return i + 1,
                    // `*` and other non-paths: step over them.
                    _ => i = expand(code, i, base.clone(), out).max(i + 1),
                }
            }
        }
        let word: String = code[i..]
            .iter()
            .take_while(|c| c.is_alphanumeric() || **c == '_')
            .collect();
        if word.is_empty() {
            out.push(base);
            return i;
        }
        i += word.len();
        base.push(word);
        if code[i..].iter().take(2).collect::<String>() == "::" {
            i += 2;
        } else {
            out.push(base);
            return i;
        }
    }
}

/// Edges `module → module` between the files of a crate, from the paths they name (a path
/// counts for the longest module of the crate it starts with).
fn module_graph_of(root: &Path, files: &[(PathBuf, String)]) -> BTreeMap<String, BTreeSet<String>> {
    let modules: BTreeSet<Vec<String>> = files.iter().map(|(p, _)| module_of(root, p)).collect();
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (path, code) in files {
        let from = module_of(root, path);
        if from.is_empty() {
            continue;
        }
        let mut targets = BTreeSet::new();
        for named in named_paths(code, &from) {
            let target = (1..=named.len())
                .rev()
                .map(|n| named[..n].to_vec())
                .find(|prefix| modules.contains(prefix));
            // A module naming its own items, or its parent's (`super::X` in a child of
            // `mod.rs`), is not an edge between siblings.
            if let Some(target) = target
                && target != from
                && !from.starts_with(&target)
            {
                targets.insert(target.join("::"));
            }
        }
        graph.entry(from.join("::")).or_default().extend(targets);
    }
    graph
}

fn module_graph(krate: &str) -> BTreeMap<String, BTreeSet<String>> {
    let root = tests::workspace_root().join(krate).join("src");
    module_graph_of(&root, &sources(krate))
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
    let private = "pub(super) async fn g() {\n".to_owned() + &"    x();\n".repeat(70) + "}\n";
    assert_eq!(functions(&private), [("g".to_owned(), 1, 72)]);
}

#[test]
fn the_cycle_check_follows_super_and_grouped_uses() {
    let root = PathBuf::from("/src");
    let file = |p: &str, code: &str| (root.join(p), code.to_owned());
    // Siblings naming each other through `super::`, one in a grouped list.
    let files = [
        file("lib.rs", "pub mod engine;"),
        file("engine/mod.rs", "mod apply; mod store;"),
        file("engine/apply.rs", "use super::{key::Key, store};"),
        file("engine/store.rs", "use super::apply::Plan;"),
        file("engine/key.rs", "pub struct Key;"),
    ];
    let graph = module_graph_of(&root, &files);
    assert_eq!(
        find_cycle(&graph).unwrap(),
        ["engine::apply", "engine::store", "engine::apply"]
    );
    // The same through `crate::` paths in a nested list; a child naming its parent is not one.
    let files = [
        file("lib.rs", ""),
        file("a.rs", "use crate::{b::{self, x}, c};"),
        file("b.rs", "fn f() { crate::a::g() }"),
        file("c/mod.rs", ""),
        file("c/d.rs", "use super::Thing;"),
    ];
    let graph = module_graph_of(&root, &files);
    assert_eq!(find_cycle(&graph).unwrap(), ["a", "b", "a"]);
    assert!(graph["c::d"].is_empty(), "{graph:?}");
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

/// The resolvers of GraphQL fields that return a list (in `#[Object]` impls), each with
/// the cost of its line: (file, field, whether a `complexity` attribute precedes it).
fn list_fields(code: &str) -> Vec<(String, bool)> {
    let lines: Vec<&str> = code.lines().collect();
    let mut out = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let trimmed = line.trim_start();
        let Some(rest) = trimmed.strip_prefix("async fn ") else {
            continue;
        };
        if !line.starts_with("    ") {
            continue; // a free function, not a field
        }
        let signature: String = lines[i..]
            .iter()
            .take_while(|l| !l.trim_end().ends_with('{'))
            .chain(lines[i..].iter().find(|l| l.trim_end().ends_with('{')))
            .copied()
            .collect();
        let returns = signature.rsplit("->").next().unwrap_or_default();
        if !signature.contains("->") || !returns.contains("Vec<") {
            continue;
        }
        let costed = lines[..i]
            .iter()
            .rev()
            .take_while(|l| {
                let l = l.trim_start();
                l.starts_with("///") || l.starts_with("#[")
            })
            .any(|l| l.contains("complexity"));
        out.push((
            rest.split('(').next().unwrap_or_default().to_owned(),
            costed,
        ));
    }
    out
}

#[test]
fn every_list_field_has_a_cost() {
    let mut uncosted = Vec::new();
    let mut seen = 0;
    for (path, code) in sources("api") {
        let name = path.to_string_lossy();
        if !name.contains("graphql") || name.ends_with("guard.rs") || name.ends_with("loaders.rs") {
            continue;
        }
        for (field, costed) in list_fields(&code) {
            seen += 1;
            if !costed {
                uncosted.push(format!("{}: {field}", path.display()));
            }
        }
    }
    assert!(seen > 20, "the scan finds the list fields ({seen})");
    assert!(
        uncosted.is_empty(),
        "list fields without a cost: {uncosted:#?}"
    );
    let sample = "    /// Doc.\n    async fn things(&self) -> ApiResult<Vec<Thing>> {\n";
    assert_eq!(list_fields(sample), [("things".to_owned(), false)]);
}
