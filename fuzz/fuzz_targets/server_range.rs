//! Any Range header on an allowed and a refused file through the gate's router: 451, 200 whole, 206 exact, or 416.
#![no_main]
use std::sync::OnceLock;

use weightgate_fuzz::oracles::{Server, server_range};

static SERVER: OnceLock<Server> = OnceLock::new();

libfuzzer_sys::fuzz_target!(|data: &[u8]| server_range(SERVER.get_or_init(Server::new), data));
