//! `ldirectord check`: table and JSON output, filters and exit codes, against loopback servers.

mod support;

use assert_cmd::Command;
use support::*;
use tokio::io::AsyncWriteExt;

fn config(dir: &tempfile::TempDir, up: u16, down: u16) -> std::path::PathBuf {
    let path = dir.path().join("check.cf");
    std::fs::write(
        &path,
        format!(
            "checktimeout=2\n\
             virtual=127.0.0.1:80\n    real=127.0.0.1:{up} masq\n    real=127.0.0.1:{down} masq\n    service=http\n    receive=\"alive\"\n\
             virtual=127.0.0.1:81\n    real=127.0.0.1:{up} masq\n    checktype=connect\n"
        ),
    )
    .unwrap();
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn table_json_filters_and_exit_codes() {
    let up = serve(|mut s| async move {
        if read_head(&mut s).await.is_some() {
            let _ = s.write_all(&response("200 OK", &[], "alive")).await;
        }
    })
    .await;
    let down = closed_port().await;
    let dir = tempfile::tempdir().unwrap();
    let cf = config(&dir, up.port(), down.port());

    let run = |args: Vec<String>| {
        tokio::task::spawn_blocking(move || {
            Command::cargo_bin("ldirectord")
                .unwrap()
                .args(args)
                .output()
                .unwrap()
        })
    };
    let cf_s = cf.display().to_string();

    let out = run(vec!["check".into(), cf_s.clone()]).await.unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.starts_with("VIRTUAL"), "{text}");
    assert!(text.contains("up") && text.contains("refused"), "{text}");

    let out = run(vec![
        "check".into(),
        cf_s.clone(),
        "--real".into(),
        format!("127.0.0.1:{}", up.port()),
    ])
    .await
    .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );

    let out = run(vec![
        "check".into(),
        cf_s.clone(),
        "--virtual".into(),
        "127.0.0.1:80".into(),
        "--json".into(),
    ])
    .await
    .unwrap();
    let rows: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let rows = rows.as_array().unwrap();
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0]["verdict"], "up");
    assert_eq!(rows[1]["verdict"], "down");
    assert_eq!(rows[1]["reason"]["kind"], "refused");

    let out = run(vec![
        "check".into(),
        dir.path().join("missing.cf").display().to_string(),
    ])
    .await
    .unwrap();
    assert_eq!(out.status.code(), Some(2));
}
