//! Loading ../shared/ubus-vectors/*.json for the tests.
#![allow(dead_code)]

use mwan_ubus::blocking::BlockingClient;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

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
    /// Capture file name (e.g. `j3_delete_then_add_instance.json`) and the
    /// frame's position in it: the frame's identity for coverage checks.
    pub file: String,
    pub index: usize,
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
    let file = path.file_name().unwrap().to_string_lossy().into_owned();
    list.as_array()
        .unwrap()
        .iter()
        .enumerate()
        .map(|(index, f)| {
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
                file: file.clone(),
                index,
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

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// A running double on a socket in a private temp dir; killed on drop.
pub struct Double {
    child: Option<Child>,
    pub dir: PathBuf,
    pub socket: PathBuf,
    /// Arguments after `--socket PATH` (e.g. `--netifd FILE`).
    args: Vec<String>,
}

impl Double {
    pub fn start() -> Double {
        Self::start_with(&[])
    }

    /// With extra arguments after `--socket PATH`.
    pub fn start_with(args: &[&str]) -> Double {
        let dir = std::env::temp_dir().join(format!(
            "mwan-ubus-double-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::SeqCst)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let socket = dir.join("ubus.sock");
        let args = args.iter().map(|a| a.to_string()).collect();
        let mut d = Double {
            child: None,
            dir,
            socket,
            args,
        };
        d.spawn();
        d
    }

    pub fn spawn(&mut self) {
        let child = Command::new(env!("CARGO_BIN_EXE_mwan-ubus-double"))
            .arg("--socket")
            .arg(&self.socket)
            .args(&self.args)
            .spawn()
            .expect("start mwan-ubus-double");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::os::unix::net::UnixStream::connect(&self.socket).is_err() {
            assert!(Instant::now() < deadline, "double did not come up");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGUSR1: its netifd restarts; SIGUSR2: its netifd publishes.
    pub fn signal(&self, sig: libc::c_int) {
        if let Some(c) = &self.child {
            // SAFETY: kill(2) of our own child.
            unsafe {
                libc::kill(c.id() as libc::pid_t, sig);
            }
        }
    }

    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            // SAFETY: kill(2) of our own child.
            unsafe {
                libc::kill(c.id() as libc::pid_t, libc::SIGTERM);
            }
            c.wait().expect("wait for double");
        }
    }

    pub fn client(&self) -> BlockingClient {
        BlockingClient::connect(&self.socket, Duration::from_secs(10)).unwrap()
    }
}

impl Drop for Double {
    fn drop(&mut self) {
        self.stop();
        if let Err(e) = std::fs::remove_dir_all(&self.dir) {
            eprintln!("cleanup {}: {e}", self.dir.display());
        }
    }
}

type Job = Box<dyn FnOnce(&mut mwan_ubus::Client) + Send>;

/// A ubus client on its own thread (a mio loop driving a Session): the
/// test reads its events and hands it jobs. Stops on drop.
pub struct BusThread {
    pub events: std::sync::mpsc::Receiver<mwan_ubus::Event>,
    jobs: std::sync::mpsc::Sender<Job>,
    handle: Option<std::thread::JoinHandle<()>>,
}

impl BusThread {
    /// `on_event` runs inside the thread for every event (e.g. to answer
    /// INVOKEs); every event is also forwarded to `events`.
    pub fn spawn(
        socket: &Path,
        client: mwan_ubus::Client,
        mut on_event: impl FnMut(&mut mwan_ubus::Client, &mwan_ubus::Event) + Send + 'static,
    ) -> BusThread {
        let (tx, rx) = std::sync::mpsc::channel();
        let (job_tx, job_rx) = std::sync::mpsc::channel::<Job>();
        let socket = socket.to_owned();
        let handle = std::thread::spawn(move || {
            let mut poll = mio::Poll::new().unwrap();
            let mut events = mio::Events::with_capacity(16);
            let mut session = mwan_ubus::Session::new(socket, mio::Token(1), client);
            let mut out = session.start(poll.registry(), Instant::now());
            loop {
                for e in out.drain(..) {
                    on_event(session.client(), &e);
                    if tx.send(e).is_err() {
                        return;
                    }
                }
                loop {
                    match job_rx.try_recv() {
                        Ok(job) => job(session.client()),
                        Err(std::sync::mpsc::TryRecvError::Empty) => break,
                        Err(std::sync::mpsc::TryRecvError::Disconnected) => return,
                    }
                }
                let now = Instant::now();
                out.extend(session.flush(poll.registry(), now));
                let timeout = session
                    .next_timeout(now)
                    .map_or(Duration::from_millis(20), |t| {
                        t.min(Duration::from_millis(20))
                    });
                poll.poll(&mut events, Some(timeout)).unwrap();
                let now = Instant::now();
                for ev in events.iter() {
                    out.extend(session.ready(poll.registry(), ev, now));
                }
                out.extend(session.on_timeout(poll.registry(), now));
            }
        });
        BusThread {
            events: rx,
            jobs: job_tx,
            handle: Some(handle),
        }
    }

    pub fn run(&self, job: impl FnOnce(&mut mwan_ubus::Client) + Send + 'static) {
        self.jobs.send(Box::new(job)).unwrap();
    }

    pub fn wait_for(
        &self,
        what: &str,
        pred: impl Fn(&mwan_ubus::Event) -> bool,
    ) -> Vec<mwan_ubus::Event> {
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut seen = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.events.recv_timeout(left) {
                Ok(e) => {
                    let done = pred(&e);
                    seen.push(e);
                    if done {
                        return seen;
                    }
                }
                Err(_) => panic!("timed out waiting for {what}; saw {seen:?}"),
            }
        }
    }
}

impl Drop for BusThread {
    fn drop(&mut self) {
        // Closing the job channel ends the thread's loop.
        let (dead, _) = std::sync::mpsc::channel();
        self.jobs = dead;
        if let Some(h) = self.handle.take() {
            if h.join().is_err() && !std::thread::panicking() {
                panic!("bus thread panicked");
            }
        }
    }
}
