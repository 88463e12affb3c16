//! The redis-cli sessions of the README and the docs pages work when pasted
//! into redis-cli: every `127.0.0.1:6379> command` line of a checked block
//! is run, in order, through `redis-cli --no-raw` (redis-cli's interactive
//! formatting), and its output must be the lines that follow it in the
//! page, exactly.
//!
//! Checked: the README's walkthrough on a fresh server; the `XPROCESS.INFO`
//! example of docs/reference.md, which shows the index after the whole
//! walkthrough, on a server that ran it; and docs/operations.md's
//! `MODULE LOAD` block on a server started without the module. The Lua
//! script of docs/performance.md comes with no session to compare, so its
//! test runs the page's `EVALSHA` and `XPROCESS` lines and checks what the
//! page says of them. A prompt block that cannot be run as written is listed
//! in [`NOT_RUN`] with the reason; every other prompt block of the pages must
//! be one of the checked ones, so a new example cannot go unchecked unsaid.

mod common;

use common::*;
use std::io::Write;
use std::ops::Range;
use std::process::{Command, Stdio};

const PROMPT: &str = "127.0.0.1:6379> ";

/// The pages whose prompt blocks are accounted for: the README, every page
/// of docs/ and the examples' README.
fn pages() -> Vec<String> {
    let docs = concat!(env!("CARGO_MANIFEST_DIR"), "/docs");
    let mut pages: Vec<String> = std::fs::read_dir(docs)
        .expect("docs/")
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".md"))
        .map(|name| format!("docs/{name}"))
        .collect();
    pages.sort();
    assert!(pages.len() >= 4, "docs pages: {pages:?}");
    pages.insert(0, "README.md".into());
    pages.push("examples/README.md".into());
    pages
}

/// Prompt blocks that are not run: page, first command, why.
const NOT_RUN: &[(&str, &str, &str)] = &[(
    "docs/operations.md",
    "CONFIG SET notify-keyspace-events Kd",
    "it shows the commands without their output, and SUBSCRIBE never returns",
)];

/// The first command of the checked blocks of the docs pages (the README's
/// are those of its walkthrough).
const INFO_EXAMPLE: (&str, &str) = ("docs/reference.md", "XPROCESS.INFO ");
const MODULE_LOAD_EXAMPLE: (&str, &str) = ("docs/operations.md", "MODULE LOAD ");

/// What the pages write where a path of the reader's own belongs.
const MODULE_PATH_PLACEHOLDER: &str = "/path/to/libxprocess.so";

/// A command and the output lines the page shows for it.
type Step = (String, Vec<String>);

/// A code block of a page.
struct Block {
    page: String,
    /// The line of its opening fence, from 1.
    line: usize,
    /// What follows the opening fence, e.g. `lua`.
    lang: String,
    text: Vec<String>,
}

impl Block {
    /// The commands and their output, when the block is a redis-cli session
    /// (it starts with a prompt line); else nothing.
    fn steps(&self) -> Vec<Step> {
        let mut steps: Vec<Step> = Vec::new();
        for line in &self.text {
            match line.strip_prefix(PROMPT) {
                Some(cmd) => steps.push((cmd.to_string(), Vec::new())),
                None => match steps.last_mut() {
                    Some((_, out)) => out.push(line.clone()),
                    None => {
                        assert!(
                            !self.text.iter().any(|l| l.starts_with(PROMPT)),
                            "{}:{}: output before any command",
                            self.page,
                            self.line
                        );
                        return Vec::new();
                    }
                },
            }
        }
        steps
    }

    fn first_command(&self) -> String {
        self.steps()
            .first()
            .map(|s| s.0.clone())
            .unwrap_or_default()
    }
}

fn read(page: &str) -> String {
    let path = format!("{}/{page}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// The code blocks of `page`, in order.
fn blocks(page: &str) -> Vec<Block> {
    let mut found = Vec::new();
    let mut open: Option<Block> = None;
    for (no, line) in read(page).lines().enumerate() {
        if let Some(lang) = line.strip_prefix("```") {
            match open.take() {
                Some(block) => found.push(block),
                None => {
                    open = Some(Block {
                        page: page.to_string(),
                        line: no + 1,
                        lang: lang.trim().to_string(),
                        text: Vec::new(),
                    })
                }
            }
        } else if let Some(block) = open.as_mut() {
            block.text.push(line.to_string());
        }
    }
    assert!(open.is_none(), "{page}: a code block is not closed");
    found
}

/// The redis-cli sessions of `page`.
fn sessions(page: &str) -> Vec<Block> {
    blocks(page)
        .into_iter()
        .filter(|b| !b.steps().is_empty())
        .collect()
}

/// The lines (from 1) of the section of `page` whose heading starts with
/// `heading`, up to the next heading of the same or a higher level.
fn section(page: &str, heading: &str) -> Range<usize> {
    let level = heading.split(' ').next().unwrap().len();
    let mut start = None;
    let mut in_code = false;
    for (no, line) in read(page).lines().enumerate() {
        if line.starts_with("```") {
            in_code = !in_code;
        }
        if in_code || !line.starts_with('#') {
            continue;
        }
        let this = line.split(' ').next().unwrap().len();
        match start {
            None if line.starts_with(heading) => start = Some(no + 1),
            Some(s) if this <= level => return s..no + 1,
            _ => {}
        }
    }
    let s = start.unwrap_or_else(|| panic!("{page}: no section '{heading}'"));
    s..usize::MAX
}

/// The commands of the README's walkthrough and what each shows, in order.
fn walkthrough() -> Vec<Step> {
    let lines = section("README.md", "## Walkthrough");
    let steps: Vec<Step> = sessions("README.md")
        .into_iter()
        .filter(|b| lines.contains(&b.line))
        .flat_map(|b| b.steps())
        .collect();
    assert!(
        steps.len() >= 30,
        "{} steps: the section moved?",
        steps.len()
    );
    assert!(
        steps.iter().any(|(cmd, _)| cmd.contains(" KEY $order ")),
        "the producer-retry story is part of it"
    );
    steps
}

/// The one session of `page` that starts with `first`.
fn example((page, first): (&str, &str)) -> Vec<Step> {
    let mut found: Vec<Block> = sessions(page)
        .into_iter()
        .filter(|b| b.first_command().starts_with(first))
        .collect();
    assert_eq!(found.len(), 1, "{page}: sessions starting with '{first}'");
    found.remove(0).steps()
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

/// Runs `steps` in order and compares each output with the page's, after
/// passing both through `mask`.
fn run(port: u16, page: &str, steps: &[Step], mask: impl Fn(&[String]) -> Vec<String>) {
    for (cmd, want) in steps {
        let got = cli(port, cmd);
        assert_eq!(mask(&got), mask(want), "{page}: {PROMPT}{cmd}");
    }
}

fn exact(lines: &[String]) -> Vec<String> {
    lines.to_vec()
}

#[test]
fn the_walkthrough_works_as_written() {
    let srv = Server::start();
    run(srv.port(), "README.md", &walkthrough(), exact);
}

/// `oldest-key-age` is the age of the oldest business key in ms, rounded to
/// the second, so it grows as time passes (the page says so): any integer
/// is taken for its value. Every other line must be as shown.
#[test]
fn the_index_info_after_the_walkthrough_is_as_shown() {
    let info = example(INFO_EXAMPLE);
    let srv = Server::start();
    run(srv.port(), "README.md", &walkthrough(), exact);
    let mask = |lines: &[String]| -> Vec<String> {
        let mut out = lines.to_vec();
        for i in 1..out.len() {
            if !lines[i - 1].ends_with(") oldest-key-age") {
                continue;
            }
            if let Some((slot, n)) = lines[i].split_once(") (integer) ") {
                if !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) {
                    out[i] = format!("{slot}) (integer) <age>");
                }
            }
        }
        out
    };
    assert!(
        info[0].1.iter().any(|l| l.ends_with(") oldest-key-age")),
        "the example shows oldest-key-age"
    );
    run(srv.port(), INFO_EXAMPLE.0, &info, mask);
}

/// The page's module path is a placeholder: the test loads the module under
/// test instead. `MODULE LOAD` needs `enable-module-command`, as the page
/// says for Redis 7.
#[test]
fn module_load_at_run_time_works_as_written() {
    let path = module_path().display().to_string();
    let steps: Vec<Step> = example(MODULE_LOAD_EXAMPLE)
        .into_iter()
        .map(|(cmd, out)| (cmd.replace(MODULE_PATH_PLACEHOLDER, &path), out))
        .collect();
    assert!(steps[0].0.contains(&path), "{:?}", steps[0]);
    let srv = Server::without_module(&["--enable-module-command", "yes"]);
    run(srv.port(), MODULE_LOAD_EXAMPLE.0, &steps, exact);
}

/// The page's script, called as its `EVALSHA` line shows, does what its
/// `XPROCESS` line does, and consumers can switch from one to the other one
/// at a time: each takes an entry the other processed for a duplicate,
/// because XPROCESS keeps using the script's Set at the dedupe key.
#[test]
fn the_lua_script_and_xprocess_share_the_dedupe_set() {
    let page = "docs/performance.md";
    let lines = section(page, "## The Lua script it replaces");
    let code: Vec<Block> = blocks(page)
        .into_iter()
        .filter(|b| lines.contains(&b.line))
        .collect();
    let script = code
        .iter()
        .find(|b| b.lang == "lua")
        .expect("the script")
        .text
        .join("\n");
    let one_line = |first: &str| -> String {
        let b = code
            .iter()
            .find(|b| b.text.len() == 1 && b.text[0].starts_with(first))
            .unwrap_or_else(|| panic!("{page}: no '{first}' line"));
        b.text[0].clone()
    };
    let evalsha = one_line("EVALSHA <sha1> ");
    let xprocess = one_line("XPROCESS ");
    let id = "1700000000000-0";
    assert!(evalsha.ends_with(id) && xprocess.ends_with(id));

    let srv = Server::start();
    let mut con = srv.conn();
    let sha: String = q(&mut con, &["SCRIPT", "LOAD", &script]);
    let evalsha = evalsha.replace("<sha1>", &sha);
    let port = srv.port();
    let expect = |cmd: &str, want: &[&str]| assert_eq!(cli(port, cmd), want, "{cmd}");

    expect("XGROUP CREATE payments billing $ MKSTREAM", &["OK"]);
    expect(
        &format!("XADD payments {id} customer alice amount 250 order 1001"),
        &[&format!("\"{id}\"")],
    );
    expect(
        "XREADGROUP GROUP billing consumer-a COUNT 10 STREAMS payments >",
        &[
            "1) 1) \"payments\"",
            &format!("   2) 1) 1) \"{id}\""),
            "         2) 1) \"customer\"",
            "            2) \"alice\"",
            "            3) \"amount\"",
            "            4) \"250\"",
            "            5) \"order\"",
            "            6) \"1001\"",
        ],
    );
    // Processed by the script, a duplicate for XPROCESS.
    expect(&evalsha, &["(integer) 1"]);
    expect(&xprocess, &["1) (integer) 0"]);
    expect("TYPE {payments}:xprocess:billing", &["set"]);
    expect("HGET charged alice", &["\"250\""]);

    // Processed by XPROCESS, a duplicate for the script.
    let next = "1700000000001-0";
    expect(
        &format!("XADD payments {next} customer bob amount 100 order 1002"),
        &[&format!("\"{next}\"")],
    );
    expect(&xprocess.replace(id, next), &["1) (integer) 1"]);
    expect(&evalsha.replace(id, next), &["(integer) 0"]);
    expect("HGET charged bob", &["\"100\""]);
    expect("SCARD {payments}:xprocess:billing", &["(integer) 2"]);
    expect(
        "XPENDING payments billing",
        &["1) (integer) 0", "2) (nil)", "3) (nil)", "4) (nil)"],
    );
}

/// Every redis-cli session of the pages is run by a test above, or listed in
/// NOT_RUN with its reason; and NOT_RUN names no session that is gone.
#[test]
fn every_prompt_block_is_run_or_says_why_not() {
    let walkthrough = section("README.md", "## Walkthrough");
    let mut listed = vec![0; NOT_RUN.len()];
    for page in pages() {
        for block in sessions(&page) {
            let first = block.first_command();
            let checked = match page.as_str() {
                "README.md" => walkthrough.contains(&block.line),
                _ => [INFO_EXAMPLE, MODULE_LOAD_EXAMPLE]
                    .iter()
                    .any(|(p, f)| *p == page && first.starts_with(f)),
            };
            let not_run = NOT_RUN
                .iter()
                .position(|(p, f, _)| *p == page && first == *f);
            if let Some(i) = not_run {
                listed[i] += 1;
            }
            assert!(
                checked != not_run.is_some(),
                "{page}:{}: a session starting with '{first}' must be run by a test here \
                 or listed in NOT_RUN with the reason, not both",
                block.line
            );
        }
    }
    for (i, n) in listed.iter().enumerate() {
        assert_eq!(*n, 1, "NOT_RUN {:?}: sessions found", NOT_RUN[i]);
    }
}
