//! Differential test against the `uci_rs` crate: where uci_rs reads a real
//! config, writing its tree back out and parsing that with our parser must
//! give the same Config as parsing the file directly. Where uci_rs cannot
//! read a file, the test records why; docs/configuration.md ("Parser")
//! lists the cases, which are the reason we read UCI ourselves.

use mwan_core::config::{parse, Config};
use std::io::BufWriter;
use std::path::PathBuf;
use uci_rs::UciCommand;

fn fixtures() -> Vec<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/fixtures/mwan3-real");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("fixtures directory")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "uci"))
        .collect();
    files.sort();
    files
}

fn ours(text: &str) -> Config {
    parse("f", text)
        .expect("our parser accepts every fixture")
        .config
}

/// What uci_rs makes of the file, as UCI text, or why it failed.
fn through_uci_rs(text: &str) -> Result<String, String> {
    let uci = uci_rs::parse_raw_to_uci("mwan3", text.to_string()).map_err(|e| format!("{e:?}"))?;
    let mut buf = BufWriter::new(Vec::new());
    uci.write_in(&mut buf).map_err(|e| format!("{e:?}"))?;
    let bytes = buf.into_inner().map_err(|e| e.to_string())?;
    String::from_utf8(bytes).map_err(|e| e.to_string())
}

#[test]
fn uci_rs_agrees_where_it_can_read_the_file() {
    let mut report = Vec::new();
    for path in fixtures() {
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        let text = String::from_utf8_lossy(&std::fs::read(&path).unwrap()).to_string();
        let direct = ours(&text);
        match through_uci_rs(&text) {
            Err(e) => report.push(format!("{name}: uci_rs fails: {e}")),
            Ok(exported) => match parse("f", &exported) {
                Err(r) => report.push(format!(
                    "{name}: uci_rs output unreadable: {}",
                    r.problems[0]
                )),
                Ok(l) if l.config != direct => {
                    report.push(format!("{name}: uci_rs reads different values"))
                }
                Ok(_) => report.push(format!("{name}: same")),
            },
        }
    }
    for line in &report {
        println!("{line}");
    }
    let disagreements: Vec<&String> = report
        .iter()
        .filter(|l| !l.ends_with(": same") && !l.contains("uci_rs fails"))
        .collect();
    assert!(
        disagreements.is_empty(),
        "uci_rs and our parser disagree: {disagreements:#?}"
    );
    // The files uci_rs cannot read (docs/configuration.md, "Parser"): quoted
    // section types (05) and a stray shell prompt line (19).
    let failures: Vec<&str> = report
        .iter()
        .filter(|l| l.contains("uci_rs fails"))
        .map(|l| &l[..2])
        .collect();
    assert_eq!(failures, ["05", "19"], "{report:#?}");
}

/// Values of `option`/`list` `name` in the first section, as uci_rs reads them.
fn uci_rs_values(text: &str, name: &str) -> Result<Vec<String>, String> {
    let uci = uci_rs::parse_raw_to_uci("mwan3", text.to_string()).map_err(|e| format!("{e:?}"))?;
    let sections = uci.get_all_sections();
    let (_, section) = sections.first().ok_or("no section")?;
    let (_, values) = uci
        .get_option(section, name)
        .map_err(|e| format!("{e:?}"))?;
    Ok(values.clone())
}

#[test]
fn uci_rs_gaps_that_made_us_read_uci_ourselves() {
    // 1. An unquoted last value without a final newline is an error.
    assert!(uci_rs_values("config interface 'wan'\n\toption up 3", "up").is_err());
    assert_eq!(
        ours("config interface 'wan'\n\toption up 3").interfaces[0].up,
        3
    );
    // 2. Escapes inside double quotes are kept verbatim (libuci unescapes them).
    assert_eq!(
        uci_rs_values("config rule 'r'\n\toption ipset \"a\\\"b\"\n", "ipset").unwrap(),
        ["a\\\"b"]
    );
    // 3. Repeated list values are merged away (libuci keeps every entry).
    assert_eq!(
        uci_rs_values(
            "config interface 'wan'\n\tlist track_ip '192.0.2.1'\n\tlist track_ip '192.0.2.1'\n",
            "track_ip"
        )
        .unwrap(),
        ["192.0.2.1"]
    );
    // 4. Quoted section types (written by 2013-era tools) are rejected.
    assert!(uci_rs_values("config 'interface' 'wan'\n\toption up '3'\n", "up").is_err());
    // 5. One stray line fails the whole file (mwan3 loads with `uci -S`, which skips it).
    assert!(uci_rs_values(
        "config interface 'wan'\nroot@router:~# \n\toption up '3'\n",
        "up"
    )
    .is_err());
    // 6. Errors carry no line number: ours say FILE:LINE.
    let e = uci_rs::parse_raw_to_uci(
        "mwan3",
        "config interface 'wan'\n\toption up 'x\n".to_string(),
    )
    .err()
    .map(|e| format!("{e:?}"));
    assert!(e.is_some_and(|e| !e.contains(":2")));
}
