//! The README's first command: `switchyard up --demo` runs the bundled samples through the
//! embedded queue and prints a table of answers.

// A failed unwrap is the test's failure message.
#![allow(clippy::unwrap_used)]

mod support;

use std::process::Stdio;
use std::time::Duration;

use support::up::{UpArgs, read_log};

/// The classifier model loads in the dev profile too; a loaded 2-core machine is slow at it.
const DEMO_LIMIT: Duration = Duration::from_secs(300);

/// The table row whose input column is `input`.
fn row<'a>(table: &'a str, input: &str) -> &'a str {
    table
        .lines()
        .find(|line| line.contains(input))
        .unwrap_or_else(|| panic!("no row for {input:?} in:\n{table}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_runs_every_sample_and_prints_the_answers() {
    let up = UpArgs::new();
    let (output, log) = demo(&up, &[]).await;
    let table = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "demo failed ({}):\n{table}\n{log}",
        output.status
    );
    let header = table.lines().next().unwrap_or_default();
    for column in ["ALGORITHM", "INPUT", "STATUS", "ANSWER", "MS"] {
        assert!(header.contains(column), "{header:?}");
    }
    let coffee = row(&table, "coffee.png");
    assert!(coffee.starts_with("image_classifier"), "{coffee}");
    assert!(coffee.contains(" done "), "{coffee}");
    assert!(coffee.contains("espresso"), "{coffee}");
    let morning = row(&table, "Good morning");
    assert!(morning.starts_with("language_detection"), "{morning}");
    assert!(morning.contains(" done "), "{morning}");
    assert!(morning.contains(" en ("), "{morning}");
    // The series' flow: the meme's caption read by OCR, then its language detected.
    let meme = row(&table, "meme.jpg (caption)");
    assert!(meme.starts_with("ocr "), "{meme}");
    assert!(meme.contains(" done "), "{meme}");
    assert!(
        meme.contains("Quando a fila de tarefas finalmente esvazia"),
        "{meme}"
    );
    let caption = row(&table, "text read from meme.jpg");
    assert!(caption.starts_with("language_detection"), "{caption}");
    assert!(caption.contains(" pt ("), "{caption}");
    let echo = table
        .lines()
        .find(|line| line.starts_with("echo "))
        .unwrap_or_else(|| panic!("no echo row in:\n{table}"));
    assert!(echo.contains(" done "), "{echo}");
    assert_eq!(
        echo.matches("hello, switchyard").count(),
        2,
        "input and answer: {echo}"
    );
    let summary = table.lines().last().unwrap_or_default();
    assert!(
        summary.contains("tasks,") && summary.contains("done"),
        "{summary}"
    );
    let (total, done) = {
        let numbers: Vec<&str> = summary.split_whitespace().collect();
        (numbers[0], numbers[2])
    };
    assert_eq!(total, done, "{summary}");

    // A clean stop: the runner leaves discovery before discovery stops.
    assert!(log.contains("deregistered from discovery"), "{log}");
    assert!(!log.contains("could not deregister"), "{log}");
}

async fn demo(up: &UpArgs, extra: &[&str]) -> (std::process::Output, String) {
    let log = up.data.path().join("up.log");
    let child = up
        .command(&[&["--demo"][..], extra].concat(), &log)
        .stdout(Stdio::piped())
        .spawn()
        .expect("the switchyard binary runs");
    let output = tokio::time::timeout(DEMO_LIMIT, child.wait_with_output())
        .await
        .unwrap_or_else(|_| {
            panic!(
                "the demo did not end within {DEMO_LIMIT:?}:\n{}",
                read_log(&log)
            )
        })
        .unwrap();
    (output, read_log(&log))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_tesseract_the_demo_says_how_to_install_it_and_runs_the_rest() {
    let up = UpArgs::new();
    let (output, log) = demo(
        &up,
        &[
            "--algorithms",
            "echo,ocr",
            "--tesseract-library",
            "/nonexistent/libtesseract.so.5",
        ],
    )
    .await;
    let table = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{table}\n{log}");
    let ocr = row(&table, "(not run)");
    assert!(
        ocr.starts_with("ocr ") && ocr.contains(" unavail "),
        "{ocr}"
    );
    let hint = "sudo apt-get install tesseract-ocr tesseract-ocr-eng";
    let explained = row(&table, "ocr is unavailable: Tesseract is not available");
    assert!(explained.contains(hint), "{explained}");
    assert!(
        log.contains("algorithm unavailable on this machine"),
        "{log}"
    );
    assert!(log.contains(hint), "{log}");
    let echo = row(&table, "hello, switchyard");
    assert!(echo.contains(" done "), "{echo}");
    assert!(table.contains("1 tasks, 1 done"), "{table}");
}
