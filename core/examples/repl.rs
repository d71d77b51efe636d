//! A tiny line-oriented SQL shell on the core engine (no runtime):
//! `cargo run -p cascade --example repl`, then type statements ending in `;`.

use cascade::{Engine, EngineConfig, Identity, StdHost};
use std::io::BufRead;

fn main() {
    let engine = Engine::new(EngineConfig::new(1, StdHost::shared()));
    let conn = engine
        .connect(Identity::new("sys", "root", "admin"))
        .expect("connect");
    let mut buf = String::new();
    for line in std::io::stdin().lock().lines() {
        let Ok(line) = line else { break };
        buf.push_str(&line);
        buf.push('\n');
        if !line.trim_end().ends_with(';') {
            continue;
        }
        let sql = std::mem::take(&mut buf);
        match futures::executor::block_on(conn.execute(&sql)) {
            Ok(r) => {
                if !r.columns.is_empty() {
                    let names: Vec<_> = r.columns.iter().map(|c| c.name.as_str()).collect();
                    println!("{}", names.join("\t"));
                    for row in &r.rows {
                        let cells: Vec<String> = row.iter().map(|v| v.to_string()).collect();
                        println!("{}", cells.join("\t"));
                    }
                }
                println!(
                    "-- {} rows, {} affected, {:.3} ms, query id {}",
                    r.rows.len(),
                    r.rows_affected,
                    r.elapsed.as_secs_f64() * 1e3,
                    r.query_id
                );
            }
            Err(e) => println!("{e}"),
        }
    }
}
