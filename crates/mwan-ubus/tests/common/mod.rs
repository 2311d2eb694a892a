//! Loading ../shared/ubus-vectors/*.json for the tests.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

pub fn vectors_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/ubus-vectors")
}

pub fn all_vector_files() -> Vec<PathBuf> {
    let dir = vectors_dir();
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    files
}

pub struct Frame {
    pub dir: String,
    pub role: String,
    pub conn: u64,
    pub note: String,
    pub bytes: Vec<u8>,
    pub seq: u16,
    pub kind: u8,
    pub fds: u64,
    /// Seconds since the relay started.
    pub t: f64,
    /// The capture's own reading of the DATA attribute, as plain JSON.
    pub data_json: Option<serde_json::Value>,
}

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

/// The capture renders blobmsg as {"name": {"type": .., "value": ..}}; turn
/// it into what libubox's JSON formatter would print (int8 -> bool).
fn typed_to_plain(v: &serde_json::Value) -> serde_json::Value {
    use serde_json::Value as J;
    let ty = v["type"]
        .as_str()
        .unwrap_or_else(|| panic!("typed value without type: {v}"));
    let val = &v["value"];
    match ty {
        "table" => J::Object(
            val.as_object()
                .unwrap()
                .iter()
                .map(|(k, x)| (k.clone(), typed_to_plain(x)))
                .collect(),
        ),
        "array" => J::Array(val.as_array().unwrap().iter().map(typed_to_plain).collect()),
        "int8" => J::Bool(val.as_i64().unwrap() != 0),
        _ => val.clone(),
    }
}

pub fn load_frames(path: &Path) -> Vec<Frame> {
    let text = std::fs::read_to_string(path).unwrap();
    let list: serde_json::Value = serde_json::from_str(&text).unwrap();
    list.as_array()
        .unwrap()
        .iter()
        .map(|f| {
            let decoded = &f["decoded"];
            let data_json = decoded["attrs"].as_array().unwrap().iter().find_map(|a| {
                (a["id"] == 7).then(|| {
                    serde_json::Value::Object(
                        a["blobmsg"]
                            .as_object()
                            .unwrap()
                            .iter()
                            .map(|(k, x)| (k.clone(), typed_to_plain(x)))
                            .collect(),
                    )
                })
            });
            Frame {
                dir: f["dir"].as_str().unwrap().to_owned(),
                role: f["role"].as_str().unwrap().to_owned(),
                conn: f["conn"].as_u64().unwrap(),
                note: f["note"].as_str().unwrap().to_owned(),
                bytes: unhex(f["hex"].as_str().unwrap()),
                seq: decoded["seq"].as_u64().unwrap() as u16,
                kind: decoded["type"].as_u64().unwrap() as u8,
                fds: f["fds"].as_u64().unwrap_or(0),
                t: f["t"].as_f64().unwrap(),
                data_json,
            }
        })
        .collect()
}

/// The two capture runs: files a..i (and 00) are run 1, j* are run 2.
/// Returns each run's frames, files in time order, so every connection's
/// frames are in the order they crossed the socket.
pub fn runs() -> Vec<Vec<Frame>> {
    let mut run1 = Vec::new();
    let mut run2 = Vec::new();
    for file in all_vector_files() {
        let frames = load_frames(&file);
        let name = file.file_name().unwrap().to_string_lossy().into_owned();
        let first_t = frames.first().map_or(0.0, |f| f.t);
        if name.starts_with('j') {
            run2.push((first_t, frames));
        } else {
            run1.push((first_t, frames));
        }
    }
    [run1, run2]
        .into_iter()
        .map(|mut run| {
            run.sort_by(|a, b| a.0.total_cmp(&b.0));
            run.into_iter().flat_map(|(_, f)| f).collect()
        })
        .collect()
}
