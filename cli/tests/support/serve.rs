//! `weightgate serve` for a test: started from a command the test builds (listening on
//! `127.0.0.1:0`), its address read from the first line it logs, its log collected, and killed
//! when dropped.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub struct Server {
    pub child: Child,
    /// `HOST:PORT` it listens on.
    pub addr: String,
    /// What the server logged on stderr so far (`tracing` lines from the CLI's subscriber).
    log: Arc<Mutex<Vec<String>>>,
}

impl Server {
    /// Starts `cmd`, a `weightgate serve ... --listen 127.0.0.1:0` command, at log level info.
    pub fn spawn(mut cmd: Command) -> Server {
        let mut child = cmd
            // The first line the server logs names its address; pin the level whatever the
            // caller's.
            .env("RUST_LOG", "info")
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
        let first = lines.next().unwrap().unwrap();
        assert!(
            first.contains("INFO") && first.contains("listening url=http://"),
            "{first}"
        );
        let addr = first.rsplit("http://").next().unwrap().trim().to_string();
        // Keep draining stderr so the server never blocks on a full pipe.
        let log = Arc::new(Mutex::new(vec![first]));
        let sink = log.clone();
        std::thread::spawn(move || {
            for l in lines.map_while(Result::ok) {
                eprintln!("[serve] {l}");
                sink.lock().unwrap().push(l);
            }
        });
        Server { child, addr, log }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Every line logged so far.
    pub fn log_lines(&self) -> Vec<String> {
        self.log.lock().unwrap().clone()
    }

    /// Waits up to 10 s for a logged line containing every one of `parts`, and returns it.
    pub fn wait_for_log(&self, parts: &[&str]) -> String {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(l) = self
                .log
                .lock()
                .unwrap()
                .iter()
                .find(|l| parts.iter().all(|p| l.contains(p)))
            {
                return l.clone();
            }
            assert!(
                Instant::now() < deadline,
                "no log line with {parts:?} in {:?}",
                self.log.lock().unwrap()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Whether a line containing `needle` was logged so far (no waiting).
    pub fn logged_now(&self, needle: &str) -> bool {
        self.log.lock().unwrap().iter().any(|l| l.contains(needle))
    }

    /// Whether a line containing `needle` is logged within 10 s.
    pub fn log_has(&self, needle: &str) -> bool {
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if self.log.lock().unwrap().iter().any(|l| l.contains(needle)) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        false
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
