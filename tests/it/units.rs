//! The systemd units: one per binary and one binary per unit, `systemd-analyze verify` clean,
//! and sandboxed to an exposure of at most 2.0 by `systemd-analyze security --offline=yes`.

use std::path::Path;
use std::process::Command;

use hc_tests::binaries::{BINARIES, binary, workspace_root};

/// The exposure level every unit must stay at or under: 2.0, which `--threshold` takes in tenths.
const MAX_EXPOSURE_TENTHS: u32 = 20;

fn unit_names(ext: &str) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(workspace_root().join("systemd"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter_map(|n| n.strip_suffix(ext).map(str::to_owned))
        .collect();
    names.sort();
    names
}

#[test]
fn every_binary_has_a_unit_and_every_unit_a_binary() {
    let mut binaries: Vec<String> = BINARIES.iter().map(|s| s.to_string()).collect();
    binaries.sort();
    assert_eq!(unit_names(".service"), binaries);
    let crates: Vec<String> = binaries
        .iter()
        .filter(|b| workspace_root().join(b).join("src/main.rs").exists())
        .cloned()
        .collect();
    assert_eq!(
        crates, binaries,
        "every unit names a binary crate of the workspace"
    );
    for timer in unit_names(".timer") {
        assert!(
            binaries.contains(&timer),
            "{timer}.timer starts a service of ours"
        );
    }
}

/// Copies the units into `dir` with `ExecStart=` pointing at the built binaries.
fn units_with_built_binaries(dir: &Path) {
    for entry in std::fs::read_dir(workspace_root().join("systemd")).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_str().unwrap().to_owned();
        if !(name.ends_with(".service") || name.ends_with(".timer")) {
            continue;
        }
        let mut text = std::fs::read_to_string(&path).unwrap();
        for bin in BINARIES {
            text = text.replace(
                &format!("ExecStart=/usr/local/bin/{bin}\n"),
                &format!("ExecStart={}\n", binary(bin).display()),
            );
        }
        std::fs::write(dir.join(name), text).unwrap();
    }
}

#[test]
fn units_verify_cleanly() {
    let dir = tempdir();
    units_with_built_binaries(&dir);
    for name in unit_names(".service")
        .iter()
        .map(|n| format!("{n}.service"))
        .chain(unit_names(".timer").iter().map(|n| format!("{n}.timer")))
    {
        let out = Command::new("systemd-analyze")
            .arg("verify")
            .arg(dir.join(&name))
            .output()
            .expect("systemd-analyze is installed (Debian package systemd)");
        // verify prints unknown keys and other problems but may still exit 0: any output fails.
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            out.status.success() && text.trim().is_empty(),
            "{name}: {text}"
        );
    }
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn services_are_sandboxed() {
    let dir = tempdir();
    units_with_built_binaries(&dir);
    for name in unit_names(".service") {
        let out = Command::new("systemd-analyze")
            .args(["security", "--offline=yes", "--no-pager"])
            .arg(format!("--threshold={MAX_EXPOSURE_TENTHS}"))
            .arg(dir.join(format!("{name}.service")))
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{name}.service exposure above {MAX_EXPOSURE_TENTHS} tenths: {}",
            text.lines().last().unwrap_or_default()
        );
    }
    std::fs::remove_dir_all(dir).unwrap();
}

fn tempdir() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "hc-units-{}-{}",
        std::process::id(),
        rand::random::<u64>()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}
