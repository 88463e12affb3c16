//! The README's walkthrough works when pasted into redis-cli: every
//! `127.0.0.1:6379> command` line of the "Walkthrough" section is run, in
//! order, through `redis-cli --no-raw` (redis-cli's interactive formatting)
//! against a fresh server, and its output must be the lines that follow it
//! in the README, exactly.

mod common;

use common::*;
use std::io::Write;
use std::process::{Command, Stdio};

const PROMPT: &str = "127.0.0.1:6379> ";

/// (command, expected output lines) of the README's walkthrough, in order.
fn walkthrough() -> Vec<(String, Vec<String>)> {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md"))
        .expect("README.md");
    let start = readme
        .find("## Walkthrough")
        .expect("a Walkthrough section");
    // The section ends at the next top-level section, whatever follows it.
    let end = readme[start + 1..]
        .find("\n## ")
        .map_or(readme.len(), |at| start + 1 + at);
    let mut steps: Vec<(String, Vec<String>)> = Vec::new();
    let mut in_block = false;
    for line in readme[start..end].lines() {
        if line.starts_with("```") {
            in_block = !in_block;
            continue;
        }
        if !in_block {
            continue;
        }
        match line.strip_prefix(PROMPT) {
            Some(cmd) => steps.push((cmd.to_string(), Vec::new())),
            None => {
                let (_, out) = steps.last_mut().expect("output before any command");
                out.push(line.to_string());
            }
        }
    }
    steps
}

fn cli(port: u16, line: &str) -> Vec<String> {
    let bin = std::env::var("REDIS_CLI").unwrap_or_else(|_| "redis-cli".into());
    let mut child = Command::new(bin)
        .args(["-p", &port.to_string(), "--no-raw"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("redis-cli");
    writeln!(child.stdin.take().unwrap(), "{line}").unwrap();
    let out = child.wait_with_output().unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect()
}

#[test]
fn the_walkthrough_works_as_written() {
    let steps = walkthrough();
    assert!(
        steps.len() >= 30,
        "{} steps: the section moved?",
        steps.len()
    );
    assert!(
        steps.iter().any(|(cmd, _)| cmd.contains(" KEY $order ")),
        "the producer-retry story is part of it"
    );
    let srv = Server::start();
    for (cmd, want) in &steps {
        let got = cli(srv.port(), cmd);
        assert_eq!(&got, want, "README: {PROMPT}{cmd}");
    }
}
