//! The import graph of `src/` holds the layers written in `src/lib.rs`: a module uses
//! only modules on lower lines of the "Layers" list there, and siblings inside a module
//! never import each other in a circle. Reads the `crate::`, `super::` and `use` paths of
//! every non-test source file, so a new upward import fails this test with its file.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Every `.rs` file under `dir`.
fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The module path of a source file: `src/suite/record/dims.rs` → [suite, record, dims].
fn module_of(src: &Path, file: &Path) -> Vec<String> {
    let rel = file.strip_prefix(src).unwrap().with_extension("");
    let mut parts: Vec<String> = rel
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    if parts.last().is_some_and(|p| p == "mod") {
        parts.pop();
    }
    parts
}

/// The production code of a file: up to its first `#[cfg(test)]`, without comments;
/// nothing for test-only files.
fn production(file: &Path, text: &str) -> String {
    let name = file.file_stem().unwrap().to_string_lossy();
    if name == "tests" || name == "testdata" || name.ends_with("_tests") {
        return String::new();
    }
    let code = match text.find("#[cfg(test)]") {
        Some(i) => &text[..i],
        None => text,
    };
    // Comments (doc links to other modules included) are not imports.
    code.lines()
        .map(|l| match l.find("//") {
            Some(i) => &l[..i],
            None => l,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Module paths referenced by `text`, resolved to absolute paths of modules that exist
/// (`crate::a::b::Item` → [a, b] when `a/b` is a module, else [a]).
fn references(
    text: &str,
    here: &[String],
    modules: &BTreeSet<Vec<String>>,
) -> BTreeSet<Vec<String>> {
    let mut found = BTreeSet::new();
    // Expand `use x::{a, b::c}` groups one level, enough for this code base.
    let mut paths: Vec<String> = Vec::new();
    let bytes: Vec<char> = text.chars().collect();
    let mut i = 0;
    while i < bytes.len() {
        let rest: String = bytes[i..bytes.len().min(i + 7)].iter().collect();
        if rest.starts_with("crate::") || rest.starts_with("super::") || rest.starts_with("self::")
        {
            if i > 0 && (bytes[i - 1].is_alphanumeric() || bytes[i - 1] == '_') {
                i += 1;
                continue;
            }
            let mut j = i;
            while j < bytes.len()
                && (bytes[j].is_alphanumeric() || bytes[j] == '_' || bytes[j] == ':')
            {
                j += 1;
            }
            let head: String = bytes[i..j].iter().collect();
            if j < bytes.len() && bytes[j] == '{' && head.ends_with("::") {
                let mut depth = 0;
                let mut k = j;
                let mut inner = String::new();
                while k < bytes.len() {
                    match bytes[k] {
                        '{' => depth += 1,
                        '}' => {
                            depth -= 1;
                            if depth == 0 {
                                break;
                            }
                        }
                        c => inner.push(c),
                    }
                    k += 1;
                }
                for item in inner.split(',') {
                    let item = item.trim().trim_start_matches('{').trim();
                    if !item.is_empty() {
                        paths.push(format!("{head}{item}"));
                    }
                }
            } else {
                paths.push(head);
            }
            i = j;
        } else {
            i += 1;
        }
    }
    for path in paths {
        let mut parts: Vec<&str> = path.split("::").filter(|p| !p.is_empty()).collect();
        let mut base: Vec<String> = match parts.first() {
            Some(&"crate") => Vec::new(),
            Some(&"self") => here.to_vec(),
            Some(&"super") => here[..here.len().saturating_sub(1)].to_vec(),
            _ => continue,
        };
        parts.remove(0);
        while parts.first() == Some(&"super") {
            base.pop();
            parts.remove(0);
        }
        // The longest prefix that is a module.
        let mut best = None;
        let mut cur = base.clone();
        for p in parts {
            let p = p.split_whitespace().next().unwrap_or("");
            cur.push(p.to_string());
            if modules.contains(&cur) {
                best = Some(cur.clone());
            } else {
                break;
            }
        }
        if let Some(m) = best {
            found.insert(m);
        }
    }
    found
}

/// The layers listed in `src/lib.rs` (`//! - \`a\` \`b\`` lines under "Layers"), top first.
fn layers(lib: &str) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    let mut inside = false;
    for line in lib.lines() {
        let line = line.trim_start_matches("//!").trim();
        if line.starts_with("Layers") {
            inside = true;
            continue;
        }
        if inside {
            match line.strip_prefix("- ") {
                Some(items) => out.push(
                    items
                        .split('`')
                        .enumerate()
                        .filter(|(i, _)| i % 2 == 1)
                        .map(|(_, s)| s.to_string())
                        .collect(),
                ),
                None if out.is_empty() => {}
                None => break,
            }
        }
    }
    out
}

/// Module → the modules it references, for every production file.
fn graph() -> BTreeMap<Vec<String>, BTreeSet<Vec<String>>> {
    let src = crate::common::root().join("src");
    let mut files = Vec::new();
    sources(&src, &mut files);
    let modules: BTreeSet<Vec<String>> = files
        .iter()
        .map(|f| module_of(&src, f))
        .filter(|m| {
            m.first()
                .is_some_and(|p| p != "main" && p != "lib" && p != "bin")
        })
        .collect();
    let mut edges: BTreeMap<Vec<String>, BTreeSet<Vec<String>>> = BTreeMap::new();
    for file in &files {
        let here = module_of(&src, file);
        if !modules.contains(&here) {
            continue;
        }
        let text = production(file, &std::fs::read_to_string(file).unwrap());
        let refs = references(&text, &here, &modules);
        edges.entry(here).or_default().extend(refs);
    }
    edges
}

#[test]
fn top_level_modules_use_only_lower_layers() {
    let lib = std::fs::read_to_string(crate::common::root().join("src/lib.rs")).unwrap();
    let layers = layers(&lib);
    assert!(
        layers.len() >= 5,
        "no Layers list in src/lib.rs: {layers:?}"
    );
    let level = |m: &str| layers.iter().position(|l| l.iter().any(|x| x == m));
    let mut wrong = Vec::new();
    for (from, tos) in graph() {
        let Some(a) = level(&from[0]) else {
            wrong.push(format!("`{}` is in no layer of src/lib.rs", from[0]));
            continue;
        };
        for to in tos {
            if to[0] == from[0] {
                continue;
            }
            match level(&to[0]) {
                Some(b) if b > a => {}
                _ => wrong.push(format!("{} uses {}", from.join("::"), to.join("::"))),
            }
        }
    }
    wrong.sort();
    wrong.dedup();
    assert!(
        wrong.is_empty(),
        "imports against the layers of src/lib.rs:\n{}",
        wrong.join("\n")
    );
}

#[test]
fn sibling_modules_never_import_each_other_in_a_circle() {
    // Sibling edges: a::b uses a::c (or something inside a::c).
    let mut sibling: BTreeMap<Vec<String>, BTreeSet<Vec<String>>> = BTreeMap::new();
    for (from, tos) in graph() {
        for to in tos {
            let common = from.iter().zip(&to).take_while(|(a, b)| a == b).count();
            // Parent ↔ child references are allowed; only siblings count.
            if common < from.len() && common < to.len() {
                let a = from[..=common].to_vec();
                let b = to[..=common].to_vec();
                sibling.entry(a).or_default().insert(b);
            }
        }
    }
    let mut cycles = Vec::new();
    for start in sibling.keys() {
        // Depth-first search for a path back to `start`.
        let mut stack = vec![(start.clone(), vec![start.join("::")])];
        let mut seen = BTreeSet::new();
        while let Some((node, path)) = stack.pop() {
            for next in sibling.get(&node).into_iter().flatten() {
                if next == start {
                    cycles.push(format!("{} -> {}", path.join(" -> "), start.join("::")));
                } else if seen.insert(next.clone()) {
                    let mut p = path.clone();
                    p.push(next.join("::"));
                    stack.push((next.clone(), p));
                }
            }
        }
    }
    cycles.sort();
    cycles.dedup();
    assert!(
        cycles.is_empty(),
        "modules importing each other in a circle:\n{}",
        cycles.join("\n")
    );
}
