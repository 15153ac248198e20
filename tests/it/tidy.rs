//! Conventions turned into failures: file docs, no debugging leftovers, the dependency direction.

use std::path::{Path, PathBuf};

use hc_tests::binaries::{BINARIES, workspace_root};

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if path.is_dir() {
            if !(name == "target"
                || name.starts_with('.')
                || name == "corpus"
                || name == "artifacts")
            {
                rust_files(&path, out);
            }
        } else if name.ends_with(".rs") {
            out.push(path);
        }
    }
}

fn all_rust_files() -> Vec<PathBuf> {
    let mut files = Vec::new();
    rust_files(&workspace_root(), &mut files);
    assert!(files.len() > 20, "found the sources: {files:?}");
    files
}

#[test]
fn every_rust_file_starts_with_a_module_doc() {
    let missing: Vec<_> = all_rust_files()
        .into_iter()
        .filter(|f| !std::fs::read_to_string(f).unwrap().starts_with("//!"))
        .collect();
    assert!(
        missing.is_empty(),
        "files without a leading //! doc: {missing:?}"
    );
}

#[test]
fn no_debugging_leftovers() {
    // Spelled in pieces so this file does not match itself.
    let banned = [
        concat!("dbg", "!("),
        concat!("todo", "!("),
        concat!("unimplemented", "!("),
    ];
    let mut found = Vec::new();
    for file in all_rust_files() {
        let text = std::fs::read_to_string(&file).unwrap();
        for word in banned {
            if text.contains(word) {
                found.push(format!("{}: {word}", file.display()));
            }
        }
    }
    assert!(found.is_empty(), "{found:?}");
}

/// The names of the packages `manifest` depends on (all dependency tables).
fn dependencies(manifest: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(manifest).unwrap();
    let mut deps = Vec::new();
    let mut in_deps = false;
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with('[') {
            in_deps = line.ends_with("dependencies]");
        } else if in_deps && !line.is_empty() && !line.starts_with('#') {
            let name = line.split(['=', '.', ' ']).next().unwrap().trim();
            deps.push(name.to_owned());
        }
    }
    deps
}

#[test]
fn dependencies_flow_one_way() {
    let root = workspace_root();
    let core = dependencies(&root.join("hc-core/Cargo.toml"));
    for bin in BINARIES {
        assert!(
            !core.contains(&bin.to_string()),
            "hc-core must not depend on {bin}"
        );
        let deps = dependencies(&root.join(bin).join("Cargo.toml"));
        assert!(
            deps.contains(&"hc-core".to_owned()),
            "{bin} builds on hc-core"
        );
        for other in BINARIES {
            assert!(
                !deps.contains(&other.to_string()),
                "{bin} must not depend on {other}"
            );
        }
    }
}
