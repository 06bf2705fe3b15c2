//! Crash safety: `mlops datasets put` is killed with SIGKILL at random moments, 50 times. Every
//! version that became visible must read back whole, and `store verify` must find no corruption,
//! before and after garbage collection.

// Test helpers may panic: a failure is a failed test.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

const KILLS: usize = 50;

fn mlops(store: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_mlops"));
    c.arg("--store").arg(store);
    c
}

#[test]
fn killed_writers_never_leave_a_broken_version() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let csv = dir.path().join("big.csv");
    // Each write gets different data, so a killed writer's uploads are its own garbage.
    let write_csv = |run: usize| {
        let mut text = String::from("id,segment,score,label\n");
        for i in 0..150_000u64 {
            let seg = (i + run as u64) % 97;
            text.push_str(&format!("{i},seg-{seg},{}.{},{}\n", i % 1000, i % 7, i % 2));
        }
        std::fs::write(&csv, text).unwrap();
    };
    write_csv(0);
    let put = |store: &Path| {
        let mut c = mlops(store);
        c.args([
            "datasets",
            "put",
            "big",
            csv.to_str().unwrap(),
            "--part-bytes",
            "200000",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null());
        c
    };

    // One undisturbed write tells how long a write takes here.
    let started = Instant::now();
    assert!(put(&store).status().unwrap().success());
    let full = started.elapsed();

    let mut rng = mlops_testkit::rng::SplitMix64::new(0x5eed);
    let (mut finished, mut killed) = (1usize, 0usize);
    for run in 1..=KILLS {
        write_csv(run);
        let mut child = put(&store).spawn().unwrap();
        let delay = full.mul_f64(rng.unit() * 1.1);
        std::thread::sleep(delay);
        match child.try_wait().unwrap() {
            Some(status) => {
                assert!(status.success(), "an undisturbed write must succeed");
                finished += 1;
            }
            None => {
                child.kill().unwrap(); // SIGKILL on Unix
                child.wait().unwrap();
                killed += 1;
            }
        }
    }
    assert!(
        killed >= KILLS / 2,
        "most writers must die mid-write to test anything (killed {killed})"
    );

    let check = |when: &str| {
        let out = mlops(&store).args(["store", "verify"]).output().unwrap();
        assert!(
            out.status.success(),
            "{when}: store verify found problems:\n{}",
            String::from_utf8_lossy(&out.stdout)
        );
        let log = mlops(&store)
            .args(["datasets", "log", "big", "--json"])
            .output()
            .unwrap();
        let versions: serde_json::Value = serde_json::from_slice(&log.stdout).unwrap();
        let versions = versions.as_array().unwrap().clone();
        for (i, v) in versions.iter().enumerate() {
            assert_eq!(v["version"], i as u64 + 1, "{when}: versions have no gaps");
            assert_eq!(
                v["manifest"]["rows"], 150_000,
                "{when}: every version is whole"
            );
            let out_file = dir.path().join(format!("v{}.parquet", i + 1));
            let spec = format!("big@{}", i + 1);
            let got = mlops(&store)
                .args(["datasets", "get", &spec, "-o", out_file.to_str().unwrap()])
                .output()
                .unwrap();
            assert!(
                got.status.success(),
                "{when}: {spec} reads back: {}",
                String::from_utf8_lossy(&got.stderr)
            );
            assert!(String::from_utf8_lossy(&got.stdout).contains("wrote 150000 rows"));
        }
        versions.len()
    };
    let visible = check("after the kills");
    assert!(
        visible >= finished && visible <= finished + killed,
        "{visible} versions for {finished} finished and {killed} killed writers"
    );

    // Killed writers leave staging uploads and unreferenced parts; gc takes them, nothing else.
    let gc = mlops(&store)
        .args(["store", "gc", "--grace", "0s"])
        .output()
        .unwrap();
    assert!(gc.status.success());
    assert_eq!(check("after gc"), visible);
    let leftovers: Vec<_> = walk(&store)
        .into_iter()
        .filter(|p| p.to_string_lossy().contains('#') || p.starts_with(store.join("staging")))
        .collect();
    assert!(
        leftovers.is_empty(),
        "gc leaves no abandoned uploads: {leftovers:?}"
    );
    eprintln!(
        "{finished} writes finished, {killed} killed (one write takes {full:?}), {visible} versions; gc: {}",
        String::from_utf8_lossy(&gc.stdout).trim()
    );
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}
