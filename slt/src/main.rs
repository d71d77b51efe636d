//! `cascade-slt [--timeout-ms N] [--threads N] [--pipelines N] [--top N] [--show-wrong N]
//! [--check] [--list-refused CODE] [FILE|DIR ...]`: runs the sqllogictest
//! corpus (default: the whole corpus folder, see `cascade_slt::corpus_dir`)
//! through the cascade engine and prints the report, records of
//! `slt/different.txt` counted as deliberately different. With `--check`,
//! exits 1 when a record is wrong or crashed, a listed record is stale or
//! the pass count is below `slt/pass-floor.txt` (only meaningful on the
//! whole corpus). `--list-refused CODE` (0: every code) prints every
//! refused record with that code as `<file>:<line> <code> <sql>`, the
//! shape of a `slt/different.txt` line.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use cascade_slt::{corpus_dir, pass_floor, report, runner};

fn main() -> ExitCode {
    match run() {
        Ok(code) => code,
        Err(e) => {
            eprintln!("cascade-slt: {e}");
            ExitCode::from(2)
        }
    }
}

fn number(args: &mut impl Iterator<Item = String>, flag: &str) -> Result<u64, String> {
    args.next()
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| format!("{flag} needs a number"))
}

fn run() -> Result<ExitCode, String> {
    let mut opts = runner::Options {
        different: std::sync::Arc::new(cascade_slt::different::Different::load()?),
        ..runner::Options::default()
    };
    let (mut top, mut show_wrong, mut check) = (25, 50, false);
    let mut list_refused: Option<u16> = None;
    let mut paths = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--timeout-ms" => opts.timeout = Duration::from_millis(number(&mut args, &a)?),
            "--threads" => opts.threads = number(&mut args, &a)? as usize,
            "--pipelines" => opts.pipelines = Some(number(&mut args, &a)? as usize),
            "--top" => top = number(&mut args, &a)? as usize,
            "--show-wrong" => show_wrong = number(&mut args, &a)? as usize,
            "--check" => check = true,
            "--list-refused" => list_refused = Some(number(&mut args, &a)? as u16),
            "-h" | "--help" => {
                println!(
                    "usage: cascade-slt [--timeout-ms N] [--threads N] [--pipelines N] [--top N] [--show-wrong N] [--check] [--list-refused CODE] [FILE|DIR ...]"
                );
                return Ok(ExitCode::SUCCESS);
            }
            f if f.starts_with('-') => return Err(format!("unknown flag {f}")),
            p => paths.push(PathBuf::from(p)),
        }
    }
    let root = corpus_dir().ok();
    if paths.is_empty() {
        paths.push(corpus_dir()?);
    }
    let files = runner::test_files(&paths).map_err(|e| e.to_string())?;
    if files.is_empty() {
        return Err("no *.test files".to_string());
    }
    let runs = runner::run_files(&files, &opts);
    let root = root.and_then(|r| r.canonicalize().ok());
    let canon: Vec<_> = runs
        .into_iter()
        .map(|mut r| {
            if let Ok(p) = r.path.canonicalize() {
                r.path = p;
            }
            r
        })
        .collect();
    print!(
        "{}",
        report::render(&canon, root.as_deref(), top, show_wrong)
    );
    if let Some(code) = list_refused {
        for r in &canon {
            let file = root
                .as_deref()
                .and_then(|root| r.path.strip_prefix(root).ok())
                .unwrap_or(&r.path);
            for x in r.refused.iter().filter(|x| code == 0 || x.code == code) {
                let sql = x.sql.split_whitespace().collect::<Vec<_>>().join(" ");
                println!("{}:{} {} {sql}", file.display(), x.line, x.code);
            }
        }
    }
    if check {
        let t = report::total(&canon);
        let stale: usize = canon.iter().map(|r| r.stale.len()).sum();
        let floor = pass_floor()?;
        let load_errors = canon.iter().filter(|r| r.load_error.is_some()).count();
        if t.wrong > 0 || t.crashed > 0 || load_errors > 0 || stale > 0 || t.passed < floor {
            eprintln!(
                "cascade-slt: FAILED: {} wrong, {} crashed, {load_errors} unreadable files, {stale} stale entries of slt/different.txt, {} passed (floor {floor})",
                t.wrong, t.crashed, t.passed
            );
            return Ok(ExitCode::FAILURE);
        }
    }
    Ok(ExitCode::SUCCESS)
}
